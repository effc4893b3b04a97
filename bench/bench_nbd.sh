#!/bin/sh
# bench_nbd.sh - NBD read rate through xcpd against qemu-nbd serving the
# same image, plain and TLS; see bench/bench_nbd.py.
#   bench/bench_nbd.sh [MIB] [REPS]
top=$(cd "$(dirname "$0")/.." && pwd)
export XCP_HV=${XCP_HV:-sim} XCP_TEMPLATES=${XCP_TEMPLATES:-$top/data/templates.yaml}
for tool in nbdcopy qemu-nbd qemu-storage-daemon; do
    command -v $tool >/dev/null 2>&1 || { echo "bench_nbd: $tool missing"; exit 0; }
done
exec python3 -B "$top/bench/bench_nbd.py" \
    "${abs_top_builddir:-$top}/cmd/xcpd/xcpd" "$@"
