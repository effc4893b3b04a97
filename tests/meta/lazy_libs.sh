#!/bin/sh
# What xe loads: the Xen libraries (the xen driver is a module,
# lib/libxcp/xcp-hv-xen.so), libpam and libvncserver (dlopened at the first
# PAM login and RFB console), libcrypto and libzstd (at the first XVA
# export or import), libxml2 with the ICU it pulls in (at the first XML
# parse: an XML-RPC message, a template's disks) and libcurl (dlopened at
# the first http(s) session; tests/client/xe_remote.sh checks xe through
# the daemon's unix socket) are loaded only by a process that uses them,
# so xe's start-up (the first cost of every xe command, local or remote)
# does not pay for them. Checked on the library's DT_NEEDED and on what the
# dynamic loader maps for `xe help` and for an embedded `xe vm-list` on
# the sim; and the xen driver still loads when asked for. Prints the
# number of objects xe maps.
. "$(dirname "$0")/lib.sh"
top=${abs_top_builddir:-.}
so=$top/lib/libxcp/.libs/libxcp.so
xe=$top/cmd/xe/xe
LAZY='libxen|libpam\.|libvncserver|libcurl|libcrypto|libzstd|libxml2|libicu'
[ -f "$so" ] && [ -x "$xe" ] || { echo "build first: no $so or $xe"; exit 1; }

needed=$(readelf -d "$so" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p')
if echo "$needed" | grep -Eq "$LAZY"; then
    bad "libxcp.so links $(echo "$needed" | grep -E "$LAZY" | tr '\n' ' ')"
else
    ok
fi

# The real program behind libtool's wrapper script, if there is one (the
# wrapper's sh and sed would add their own objects to the count).
if [ -x "$top/cmd/xe/.libs/xe" ]; then
    xe=$top/cmd/xe/.libs/xe
    LD_LIBRARY_PATH=$top/lib/libxcp/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
fi
# The objects the loader maps while running xe "$@".
mapped() {
    XCP_STATE_DIR=$tmp/state XCP_HV=sim LD_DEBUG=files "$xe" "$@" 2>&1 \
        >/dev/null | sed -n 's/.*file=\([^ ]*\).*generating link map.*/\1/p' |
        sort -u
}
for cmd in "help vm-start" "vm-list"; do
    # shellcheck disable=SC2086
    m=$(mapped $cmd)
    if [ -z "$m" ]; then
        bad "xe $cmd: LD_DEBUG=files reported nothing"
    elif echo "$m" | grep -Eq "$LAZY"; then
        bad "xe $cmd maps $(echo "$m" | grep -E "$LAZY" | tr '\n' ' ')"
    else
        ok
    fi
    echo "xe $cmd maps $(echo "$m" | wc -l) objects"
done

# libxml2 still loads when XML comes: vm-install parses the template's
# disks (<provision>), and the VM gets them.
out=$(XCP_STATE_DIR=$tmp/state XCP_HV=sim LD_DEBUG=files "$xe" vm-install \
    template="Debian Bookworm 12" new-name-label=lazy-xml 2>&1)
vm=$(echo "$out" | grep -E '^[0-9a-f]{8}-' | tail -1)
if ! echo "$out" | grep -q 'file=libxml2'; then
    bad "vm-install did not map libxml2"
elif [ -z "$vm" ] || [ -z "$(XCP_STATE_DIR=$tmp/state XCP_HV=sim "$xe" \
    vbd-list vm-uuid="$vm" type=Disk --minimal)" ]; then
    bad "vm-install with libxml2 loaded late: no disk ($out)"
else
    ok
fi

# The xen driver, when built, still loads on demand: asked for on a host
# without Xen, its open fails with the driver's own words (not "did not
# load"), after the loader mapped the Xen libraries.
if grep -q '^#define XCP_HAVE_XEN 1' "$top/config.h" 2>/dev/null; then
    out=$(XCP_STATE_DIR=$tmp/state-xen XCP_HV=xen LD_DEBUG=files "$xe" \
        vm-list 2>&1 || true)
    if echo "$out" | grep -q 'did not load'; then
        bad "the xen driver did not load: $(echo "$out" | grep 'did not')"
    elif ! echo "$out" | grep -q 'file=libxenlight'; then
        bad "XCP_HV=xen did not map libxenlight"
    else
        ok
    fi
fi
meta_done
