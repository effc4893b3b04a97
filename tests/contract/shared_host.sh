#!/bin/sh
# tests/contract/shared_host.sh - the driver contract suite as it runs on a
# real Xen host (tests/xen/scenarios.sh, group contract): every test
# process drives the same host at once (criterion --jobs 4, one shared
# XCP_HV_CONTRACT_DIR), each with its own guests. On the sim this needs
# one host open in several processes, as Xen is. Twice, the second time
# over the state the first left.
set -u
b=${abs_top_builddir:-.}
dir=$(mktemp -d "${TMPDIR:-/tmp}/xcp-contract-shared.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
rc=0
for round in 1 2; do
    if ! XCP_HV_CONTRACT_DIR=$dir "$b/tests/contract/test_hv_contract" \
        --jobs 4 >"$dir/out" 2>&1; then
        echo "round $round failed:"
        cat "$dir/out"
        rc=1
    fi
    grep Synthesis "$dir/out"
done
exit $rc
