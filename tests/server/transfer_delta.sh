#!/bin/sh
# make check wrapper: runs tests/server/transfer_delta.py with the system
# Python (standard library only; qemu-img checks the images). Exit 0 pass,
# 1 fail, 77 skip.
srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" -B "$srcdir/tests/server/transfer_delta.py" "$@"
