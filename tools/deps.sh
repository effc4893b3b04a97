#!/bin/sh
# Install what libxcp needs to build and test, from Debian's packages.
# Root: installs directly; otherwise through sudo when it is there.
set -eu
PKGS="build-essential autoconf automake libtool pkg-config python3
libxml2-dev libcurl4-openssl-dev libyaml-dev libssl-dev zlib1g-dev
libcriterion-dev libjansson-dev libxen-dev qemu-utils clang libclang-rt-14-dev
libmicrohttpd-dev libpam0g-dev libcrypt-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing:$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
