#!/bin/sh
# docs/xe-commands.md and cmd/xe/cmd_xapi.c are what tools/gen-xe-commands.py
# makes of XAPI's command list, the model and the built xe: regenerated
# into a temporary tree and compared ("make xe-commands" rewrites them).
# It also checks that the table names every one of XAPI's commands and
# that an unsupported one fails with a XenAPI error, not "Unknown command".
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
XE=${XE:-$PWD/cmd/xe/xe}
[ -x "$XE" ] || { echo "commands.sh: no xe at $XE" >&2; exit 77; }
command -v python3 >/dev/null || exit 77
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xe-commands.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
export XCP_HV=sim XCP_STATE_DIR=$tmp/state HOME=$tmp
python3 "$srcdir/tools/gen-xe-commands.py" "$srcdir" "$XE" "$tmp/gen" || exit 1
fail=0
for f in docs/xe-commands.md cmd/xe/cmd_xapi.c; do
    if ! diff -u "$srcdir/$f" "$tmp/gen/$f"; then
        echo "FAIL: $f is stale: run make xe-commands" >&2
        fail=1
    fi
done
# One table row per command of XAPI's list.
want=$(grep -vc '^#' "$srcdir/tools/xapi-xe-commands.txt")
got=$(grep -c '^| `' "$srcdir/docs/xe-commands.md")
if [ "$want" -ne "$got" ]; then
    echo "FAIL: $want XAPI commands, $got rows" >&2
    fail=1
fi
# An unsupported command: XAPI's parameters, then its call's error.
out=$("$XE" pool-ha-disable 2>&1)
case $out in
"The function is not implemented"*"function: pool.disable_ha"*) ;;
*) echo "FAIL: pool-ha-disable said: $out" >&2; fail=1 ;;
esac
out=$("$XE" vmss-create 2>&1)
case $out in
"Required parameter not found: name-label"*) ;;
*) echo "FAIL: vmss-create said: $out" >&2; fail=1 ;;
esac
out=$("$XE" vmss-create name-label=a type=snapshot frequency=hourly \
      retained-snapshots=1 2>&1)
case $out in
*"MESSAGE_METHOD_UNKNOWN"*|*"method"*"VMSS.create"*) ;;
*) echo "FAIL: vmss-create said: $out" >&2; fail=1 ;;
esac
out=$("$XE" no-such-command 2>&1)
case $out in
"Unknown command: no-such-command"*) ;;
*) echo "FAIL: no-such-command said: $out" >&2; fail=1 ;;
esac
[ $fail -eq 0 ] && echo "PASS: xe commands table"
exit $fail
