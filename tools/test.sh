#!/bin/bash
# The quick start's second command (and CI's): install what is missing,
# build, run every test: unit, API, contract, xe transcripts, crash
# consistency, meta checks, the sanitizer build, a bounded fuzzing slice,
# an install check, a quick benchmark, and the PV slice of `make check-xen`
# (real Xen under QEMU; XCP_CI_XEN=0 leaves it out).
set -eu -o pipefail
cd "$(dirname "$0")/.."
sh tools/deps.sh
sh tools/build.sh
status=0
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Run a stage; count the tests its output reports (automake's "# PASS:"
# and "# FAIL:" totals, else "N passed, M failed"), or the stage itself.
run() {
    echo "==== $*"
    if "$@" 2>&1 | tee "$log"; then rc=0; else rc=1; fi   # pipefail
    p=$(sed -n 's/^# PASS: *\([0-9]*\)$/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^# FAIL: *\([0-9]*\)$/\1/p' "$log" | tail -1)
    e=$(sed -n 's/^# ERROR: *\([0-9]*\)$/\1/p' "$log" | tail -1)
    if [ -z "$p" ]; then
        p=$(sed -n 's/^.*[^0-9]\{0,1\}\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*$/\1/p' "$log" | tail -1)
        f=$(sed -n 's/^.*[^0-9]\{0,1\}\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*$/\2/p' "$log" | tail -1)
    fi
    p=${p:-0} f=${f:-0} e=${e:-0}
    f=$((f + e))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then p=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
        echo "==== FAILED: $*"
        status=1
    fi
}
run make -j"$(nproc)" check
run sh tools/install-check.sh
if grep -q '^check-sanitize:' Makefile; then
    run make check-sanitize
fi
if grep -q '^fuzz-smoke:' Makefile; then
    run make fuzz-smoke
fi
if grep -q '^bench-quick:' Makefile; then
    run make bench-quick
fi
# Real Xen under QEMU (tools/xen-lab/ci-slice: the PV life cycle through
# xe and xcpd in a dom0 running this build, bounded at 10 minutes).
# Its lab (the .debs, the images) lives in the clone unless XCP_XEN_LAB
# says otherwise: nothing from an earlier run outside the clone is used.
if [ "${XCP_CI_XEN:-1}" = 1 ]; then
    XCP_XEN_LAB=${XCP_XEN_LAB:-$PWD/.xen-lab} run sh tools/xen-lab/ci-slice
fi
# Each failed test's own log, from this tree and the sanitizer build, so a
# red run says why.
find . -name '*.trs' 2>/dev/null | sort | while read -r t; do
    grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$t" || continue
    l=${t%.trs}.log
    echo "---- $l (last 120 lines)"
    tail -120 "$l" 2>/dev/null || echo "(no log)"
done
if [ $status -eq 0 ]; then echo "ALL TESTS PASSED"; else echo "SOME TESTS FAILED"; fi
echo "$passed passed, $failed failed"
exit $status
