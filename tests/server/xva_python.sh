#!/bin/sh
# make check wrapper: runs tests/server/xva_python.py (XVA through xcpd's
# /export and /import with Python's standard library) with the system
# Python. Exit 0 pass, 1 fail, 77 skip.
srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" -B "$srcdir/tests/server/xva_python.py" "$@"
