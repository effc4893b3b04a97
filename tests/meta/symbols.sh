#!/bin/sh
# The shared library exports exactly the version script's symbols: every
# XCP_EXTERN function of the public headers, nothing internal (xcp__*).
set -eu
top=${abs_top_builddir:-.}
src=${abs_top_srcdir:-.}
so=$top/lib/libxcp/.libs/libxcp.so
sym=$src/lib/libxcp/libxcp.sym
[ -f "$so" ] || { echo "no $so"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRW]$/ {sub(/@.*/, "", $3); print $3}' |
    grep -v '^LIBXCP_' | sort -u > "$tmp/exported"
sed -n 's/^ *\(xcp_[A-Za-z0-9_]*\);$/\1/p' "$sym" | sort -u > "$tmp/declared"
fail=0
if grep -q '^xcp__' "$tmp/exported"; then
    echo "internal symbols exported:"; grep '^xcp__' "$tmp/exported" | head
    fail=1
fi
extra=$(comm -23 "$tmp/exported" "$tmp/declared")
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
[ -z "$extra" ] || { echo "exported but not in libxcp.sym:"; echo "$extra" | head; fail=1; }
[ -z "$missing" ] || { echo "in libxcp.sym but not defined:"; echo "$missing" | head; fail=1; }
n=$(wc -l < "$tmp/exported")
if [ $fail -eq 0 ]; then echo "1 passed, 0 failed ($n symbols)"; else echo "0 passed, 1 failed"; fi
exit $fail
