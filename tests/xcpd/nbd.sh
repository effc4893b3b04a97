#!/bin/sh
# xcpd's NBD server (tests/xcpd/test_nbd.py) against the built daemon,
# read by libnbd's nbdinfo and nbdcopy; make check provides XCP_HV=sim and
# the other test variables. Skipped (77) without libnbd-bin or
# qemu-storage-daemon (tools/deps.sh installs both).
command -v python3 >/dev/null 2>&1 || exit 77
exec python3 "${abs_top_srcdir:-$(dirname "$0")/../..}/tests/xcpd/test_nbd.py" \
    "${abs_top_builddir:-.}/cmd/xcpd/xcpd"
