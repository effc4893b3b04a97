#!/bin/sh
# make check wrapper: runs tests/interop/xva_interop.py (an XVA reader and
# an XAPI-style fixture written from XAPI's format description, against
# xe vm-export/vm-import) with the system Python. Exit 0 pass, 1 fail,
# 77 skip.
srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" -B "$srcdir/tests/interop/xva_interop.py" "$@"
