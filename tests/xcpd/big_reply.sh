#!/bin/sh
# Large replies stream (issue 7, item 7): xcpd serving VM.get_all_records
# of 4,000 VMs (~28 MB of XML) to 4 concurrent readers must grow by less
# than one reply in all (the old code held up to three copies per reader)
# and come back to its baseline when idle; `xe vm-list --minimal` through
# the daemon must peak under 50 MB (it fetched and decoded every whole
# record: 147 MB). bench/big_reply.py does the work; make bench-big-reply
# runs it at 10,000 VMs.
command -v python3 >/dev/null 2>&1 || exit 77
top=${abs_top_builddir:-.}
src=${abs_top_srcdir:-$(dirname "$0")/../..}
bin() { # the real binary, not libtool's wrapper, when there is one
    d=$(dirname "$1")
    if [ -x "$d/.libs/$(basename "$1")" ]; then
        echo "$d/.libs/$(basename "$1")"
    else
        echo "$1"
    fi
}
LD_LIBRARY_PATH=$top/lib/libxcp/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
XCP_TEMPLATES=${XCP_TEMPLATES:-$src/data/templates.yaml}
export LD_LIBRARY_PATH XCP_TEMPLATES
# make bench-big-reply sets BIG_REPLY_CHECK= : figures only, no bounds.
# Under ASan (make check-sanitize) RSS says nothing (shadow memory, the
# quarantine of freed blocks): the replies are still checked, at 1,000 VMs.
if [ -n "${ASAN_OPTIONS:-}" ]; then
    BIG_REPLY_CHECK=${BIG_REPLY_CHECK-}
    BIG_REPLY_VMS=${BIG_REPLY_VMS:-1000}
fi
# shellcheck disable=SC2086
exec python3 "$src/bench/big_reply.py" ${BIG_REPLY_CHECK---check --check-xe} \
    --vms "${BIG_REPLY_VMS:-4000}" --reps 1 \
    --xcpd "$(bin "$top/cmd/xcpd/xcpd")" \
    --xe "$(bin "$top/cmd/xe/xe")" --bench-vms "$(bin "$top/bench/bench_vms")"
