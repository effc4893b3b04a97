#!/bin/sh
# xcpd's /cli, XAPI's thin CLI protocol played byte by byte
# (tests/xcpd/test_cli.py), its output compared with the built xe's;
# make check provides XCP_HV=sim and the other test variables.
command -v python3 >/dev/null 2>&1 || exit 77
exec python3 "${abs_top_srcdir:-$(dirname "$0")/../..}/tests/xcpd/test_cli.py" \
    "${abs_top_builddir:-.}/cmd/xcpd/xcpd" "${abs_top_builddir:-.}/cmd/xe/xe"
