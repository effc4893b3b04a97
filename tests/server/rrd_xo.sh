#!/bin/sh
# make check wrapper: runs tests/server/rrd_xo.py (Xen Orchestra's stats
# poll of /rrd_updates with npm xen-api). Exit 0 pass, 1 fail, 77 skip.
srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" -B "$srcdir/tests/server/rrd_xo.py" "$@"
