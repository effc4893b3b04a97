#!/bin/sh
# Install what libxcp needs to build and test, from Debian's packages.
# Root: installs directly; otherwise through sudo when it is there.
set -eu
PKGS="build-essential autoconf automake libtool pkg-config python3
libxml2-dev libcurl4-openssl-dev libyaml-dev libssl-dev zlib1g-dev libzstd-dev libxxhash-dev
libcriterion-dev libjansson-dev libxen-dev qemu-utils clang libclang-rt-14-dev
libmicrohttpd-dev libhttp-parser-dev libgnutls28-dev libvncserver-dev libpam0g-dev libcrypt-dev openssl curl
e2fsprogs mount
libnbd-bin qemu-system-common
python3-pytest python3-mypy python3-setuptools python3-pip
golang-go
libncurses-dev tmux"
# Pools (tools/netns-pool, lib/libxcp/cluster): corosync 3 and its client libraries.
PKGS="$PKGS corosync libcpg-dev libvotequorum-dev libcorosync-common-dev"
# The daemon benchmark's peer (libvirtd's test driver), installed without
# its recommendations (which would pull in QEMU).
PEER_PKGS="libvirt-daemon libvirt-clients libvirt-dev
prometheus"  # promtool checks xcpd's /metrics (tests/xcpd/metrics.sh)
# The Xen lab (tools/xen-lab, `make check-xen` and CI's slice of it): QEMU
# to boot Xen in, the tools that pack its initramfs images, and the shared
# libraries of qemu-xen (the dom0 device model, whose .deb the lab unpacks
# without installing: its libraries come from the host); and a Linux
# console font, which the sim's RFB consoles draw their text with. Without
# recommends, as above.
LAB_PKGS="qemu-system-x86 cpio xz-utils perl libfdt1 libglib2.0-0
libjpeg62-turbo libpixman-1-0 libspice-server1 libusb-1.0-0
console-setup-linux"
missing() {
    m=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            m="$m $p"
    done
    echo "$m"
}
# shellcheck disable=SC2086
need=$(missing $PKGS)
# shellcheck disable=SC2086
need_peer="$(missing $PEER_PKGS)$(missing $LAB_PKGS)"
[ -z "$need$need_peer" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing:$need$need_peer"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
[ -z "$need" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need
# shellcheck disable=SC2086
[ -z "$need_peer" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install \
    -y -qq --no-install-recommends $need_peer
