#!/bin/sh
# The quick start's second command (and CI's): install what is missing,
# build, run every test: unit, API, contract, xe transcripts, crash
# consistency, meta checks, the sanitizer build, a bounded fuzzing slice,
# an install check, and a quick benchmark.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
sh tools/build.sh
status=0
run() {
    echo "==== $*"
    if ! "$@"; then
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
find . -name 'test-suite.log' -path './tests/*' -newer configure \
    -exec grep -l 'FAIL' {} + 2>/dev/null | head -5 | while read -r f; do
    echo "---- $f"; tail -50 "$f"
done
if [ $status -eq 0 ]; then echo "ALL TESTS PASSED"; else echo "SOME TESTS FAILED"; fi
exit $status
