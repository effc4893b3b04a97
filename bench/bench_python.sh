#!/bin/sh
# bench_python.sh - make bench-python: bench/bench_python.py with Debian's
# python3 (see that file). --quick: small sizes.
srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" -B "$srcdir/bench/bench_python.py" "$@"
