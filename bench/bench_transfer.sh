#!/bin/sh
# bench_transfer.sh - VDI transfers through xcpd (HTTP, HTTPS) against
# qemu-img convert of the same data, and xcpd's memory per transfer; see
# bench/bench_transfer.py.   bench/bench_transfer.sh [MIB] [REPS]
top=$(cd "$(dirname "$0")/.." && pwd)
export abs_top_srcdir=${abs_top_srcdir:-$top} abs_top_builddir=${abs_top_builddir:-$top}
exec python3 -B "$top/bench/bench_transfer.py" "$@"
