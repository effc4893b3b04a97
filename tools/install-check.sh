#!/bin/sh
# `make install` into a temporary prefix lays out what users link against
# (lib/libxcp.so*, include/xcp/*.h, lib/pkgconfig/libxcp.pc, bin/xe), and an
# example builds against it with pkg-config alone.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s install DESTDIR="$tmp" >/dev/null
prefix=$(sed -n 's/^prefix=//p' libxcp.pc)
root=$tmp$prefix
fail=0
for f in lib/libxcp.so include/xcp/xcp.h include/xcp/classes.h \
         lib/pkgconfig/libxcp.pc bin/xe share/libxcp/templates.yaml \
         share/man/man1/xe.1 share/man/man8/xcpd.8 share/man/man3/libxcp.3 \
         share/bash-completion/completions/xe \
         bin/xcp-top share/man/man1/xcp-top.1; do
    [ -e "$root/$f" ] || { echo "missing after install: $f"; fail=1; }
done
# the manual pages render without warnings (when man is there)
if command -v man >/dev/null 2>&1; then
    for m in man1/xe.1 man8/xcpd.8 man3/libxcp.3 man1/xcp-top.1; do
        w=$(MANWIDTH=80 man --warnings -l "$root/share/man/$m" 2>&1 >/dev/null)
        [ -z "$w" ] || { echo "man $m: $w"; fail=1; }
    done
fi
# every public header of the tree is installed (a new one left out of
# Makefile.am's lists breaks <xcp/xcp.h> for users)
for h in include/xcp/*.h include/xcp/sys/*.h; do
    [ -e "$root/$h" ] || { echo "public header not installed: $h"; fail=1; }
done
sed "s|^prefix=.*|prefix=$root|" "$root/lib/pkgconfig/libxcp.pc" > "$tmp/libxcp.pc"
cc -o "$tmp/hello" examples/hello.c $(PKG_CONFIG_PATH=$tmp pkg-config --cflags --libs libxcp) \
    -Wl,-rpath,"$root/lib" || fail=1
if [ $fail -eq 0 ]; then
    XCP_STATE_DIR="$tmp/state" XCP_HV=sim XCP_TEMPLATES="$PWD/data/templates.yaml" \
        "$tmp/hello" >/dev/null || fail=1
fi
if [ $fail -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail
