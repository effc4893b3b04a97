#!/bin/sh
# make check wrapper: runs tests/server/xva_xo.py (Xen Orchestra's npm
# xen-api with /import/ and /export/). Exit 0 pass, 1 fail, 77 skip.
srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" -B "$srcdir/tests/server/xva_xo.py" "$@"
