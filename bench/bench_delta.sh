#!/bin/sh
# bench_delta.sh - delta exports (base=) against full ones, and XVA export
# of a 2-disk VM against tar of the same bytes; see bench/bench_delta.py.
#   bench/bench_delta.sh [MIB] [REPS]
top=$(cd "$(dirname "$0")/.." && pwd)
export abs_top_srcdir=${abs_top_srcdir:-$top} abs_top_builddir=${abs_top_builddir:-$top}
exec python3 -B "$top/bench/bench_delta.py" "$@"
