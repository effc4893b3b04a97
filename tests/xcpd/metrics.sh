#!/bin/sh
# xcpd's /rrd_updates, /host_rrd, /vm_rrd and /metrics
# (tests/xcpd/test_metrics.py) against the built daemon; make check
# provides XCP_HV=sim and the other test variables.
command -v python3 >/dev/null 2>&1 || exit 77
exec python3 "${abs_top_srcdir:-$(dirname "$0")/../..}/tests/xcpd/test_metrics.py" \
    "${abs_top_builddir:-.}/cmd/xcpd/xcpd"
