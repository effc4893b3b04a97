#!/usr/bin/env bash
# bench_disk.sh - disks users trust, against a peer in the same run
# (issue 10, item 8).  Prints ratios peer time / our time: above 1 means
# we are faster.
#
#   1. Snapshot and clone time of a file SR VDI of 1 GiB and of 10 TiB
#      (VHD: 1 GiB and its 2040 GiB limit), which must not grow with the
#      size; peer: `qemu-img create -b` of a child of an image that size.
#      Ours is the SR driver in one process (a snapshot makes two files:
#      the hidden parent's link and two children); the peer is one
#      qemu-img process per child, so its rows include a process start.
#   2. Random 4 KiB writes (one flush at the end, qemu-io in writeback
#      mode) and a sequential read through our image layer against qemu-io
#      on the same images, qcow2 and VHD (qemu's vpc driver), both starting
#      from an identical fresh image, the same offsets; the reads read the
#      same image (the one we wrote), page cache warm for both.
#
#   bench/bench_disk.sh [writes] [size-MiB] [work-dir]
#       (defaults: 4096 writes, 1024 MiB, a temp dir; BENCH_COW=N cows)
set -euo pipefail

writes=${1:-4096}
mib=${2:-1024}
cows=${BENCH_COW:-50}
top=${abs_top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
h="$top/bench/bench_disk"
[ -x "$h" ] || { echo "build bench/bench_disk first (make bench-disk)" >&2; exit 1; }
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null ||
    { echo "qemu-img and qemu-io are needed" >&2; exit 1; }
if [ -n "${3:-}" ]; then
    work=$3
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/xcp-bench-disk-XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.6f", b - a }'; }
ratio() { awk -v p="$1" -v o="$2" 'BEGIN { printf "%.2fx", (o > 0 ? p / o : 0) }'; }
qfmt() { [ "$1" = vhd ] && echo vpc || echo "$1"; }

echo "bench_disk: $cows snapshots/clones per size; $writes random 4 KiB" \
     "writes on ${mib} MiB; $(qemu-img --version | head -1)"
echo
echo "== snapshot and clone time (ms per operation) =="
printf "%-6s %-9s %9s %9s %12s %8s %8s\n" format size snapshot clone \
    "qemu-img -b" "ratio-s" "ratio-c"
for fmt in qcow2 vhd; do
    if [ "$fmt" = vhd ]; then sizes="1073741824 2190433320960"; else
        sizes="1073741824 10995116277760"; fi
    for size in $sizes; do
        d="$work/sr-$fmt-$size"
        read -r _ snap _ clone < <("$h" cow "$d" "$fmt" "$size" "$cows")
        base="$work/base-$fmt-$size.$fmt"
        qemu-img create -q -f "$(qfmt "$fmt")" "$base" "$size"
        t=$(now)
        for i in $(seq "$cows"); do
            qemu-img create -q -f "$(qfmt "$fmt")" -b "$base" \
                -F "$(qfmt "$fmt")" "$work/child-$i.$fmt" 2>/dev/null ||
            qemu-img create -q -f "$(qfmt "$fmt")" "$work/child-$i.$fmt" \
                "$size"
        done
        peer=$(awk -v s="$(since "$t")" -v n="$cows" 'BEGIN { printf "%.3f", s * 1000 / n }')
        rm -f "$work"/child-*."$fmt" "$base"
        rm -rf "$d"
        label=$(awk -v s="$size" 'BEGIN { if (s >= 2^40) printf "%.0fTiB", s / 2^40; else printf "%.0fGiB", s / 2^30 }')
        printf "%-6s %-9s %9s %9s %12s %8s %8s\n" "$fmt" "$label" "$snap" \
            "$clone" "$peer" "$(ratio "$peer" "$snap")" "$(ratio "$peer" "$clone")"
    done
done
echo "(qemu-img's vpc driver makes no differencing VHDs: its VHD rows are"
echo " a plain create of that size, the nearest it has)"

echo
echo "== random 4 KiB writes, then a sequential read (MB/s) =="
printf "%-6s %-14s %10s %10s %8s\n" format what ours qemu-io ratio
size=$((mib << 20))
"$h" offsets "$size" "$writes" 42 > "$work/offsets"
awk '{ printf "write -q -P 0x5a %s 4k\n", $1 } END { print "flush" }' \
    "$work/offsets" > "$work/qemu-cmds"
for fmt in qcow2 vhd; do
    q=$(qfmt "$fmt")
    extra=
    [ "$fmt" = vhd ] && extra="-o subformat=dynamic"
    # shellcheck disable=SC2086
    qemu-img create -q -f "$q" $extra "$work/fresh.$fmt" "${mib}M"
    cp --sparse=always "$work/fresh.$fmt" "$work/ours.$fmt"
    cp --sparse=always "$work/fresh.$fmt" "$work/theirs.$fmt"
    tw=$("$h" write "$work/ours.$fmt" "$fmt" "$work/offsets")
    t=$(now)
    # writeback: as ours, one flush at the end (qemu-io's default,
    # writethrough, would sync every write)
    qemu-io -t writeback -f "$q" "$work/theirs.$fmt" < "$work/qemu-cmds" \
        >/dev/null
    tqw=$(since "$t")
    wmb=$(awk -v n="$writes" -v s="$tw" 'BEGIN { printf "%.1f", n * 4096 / 1e6 / s }')
    qmb=$(awk -v n="$writes" -v s="$tqw" 'BEGIN { printf "%.1f", n * 4096 / 1e6 / s }')
    printf "%-6s %-14s %10s %10s %8s\n" "$fmt" "random write" "$wmb" "$qmb" \
        "$(ratio "$tqw" "$tw")"
    # Both read the image we wrote, page cache warm for both.
    "$h" read "$work/ours.$fmt" "$fmt" >/dev/null
    tr_=$("$h" read "$work/ours.$fmt" "$fmt")
    t=$(now)
    qemu-io -t writeback -f "$q" -r -c "read -q 0 ${mib}M" \
        "$work/ours.$fmt" >/dev/null
    tqr=$(since "$t")
    rmb=$(awk -v m="$mib" -v s="$tr_" 'BEGIN { printf "%.0f", m * 1.048576 / s }')
    qrb=$(awk -v m="$mib" -v s="$tqr" 'BEGIN { printf "%.0f", m * 1.048576 / s }')
    printf "%-6s %-14s %10s %10s %8s\n" "$fmt" "sequential read" "$rmb" "$qrb" \
        "$(ratio "$tqr" "$tr_")"
    if [ "$fmt" = qcow2 ]; then
        qemu-img compare -q -f qcow2 -F qcow2 "$work/ours.$fmt" \
            "$work/theirs.$fmt" || echo "  (ours and qemu-io's images differ!)"
    fi
    rm -f "$work/fresh.$fmt" "$work/ours.$fmt" "$work/theirs.$fmt"
done
