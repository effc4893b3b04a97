#!/usr/bin/env bash
# bench_cbt.sh - VDI.list_changed_blocks on a 2 TiB disk (issue 10, item
# 8), against peers in the same run.
#
# A GIB GiB (default 2048) qcow2 VDI with tracking on gets a snapshot S1,
# WRITES 4 KiB guest writes by QEMU (qemu-io, which keeps the disk's
# dirty bitmap itself) spread over the disk, a snapshot S2, as many
# writes again; then VDI.list_changed_blocks(S1, disk) through the public
# API (two tracking epochs ORed: S2's bitmap and the disk's, 4 MiB each
# at 2 TiB, and the 5.6 MB base64 answer), REPS times in one process.
# Peers, on the same two bitmaps:
#   qemu-img bitmap --merge   QEMU reading both bitmaps (S2's from its
#                             image, then the disk's: two runs, as -b
#                             applies to a whole run) and writing their
#                             union into a new bitmap of the disk
#   base64 of the bitmap      coreutils encoding the result alone (4 MiB
#                             at 2 TiB)
#   cat of the bitmap         reading the bitmap bytes (the floor)
# Prints seconds and ratios (peer / ours: above 1 means we are faster).
#
#   bench/bench_cbt.sh [GIB] [WRITES] [REPS] [work-dir]
#   (defaults 2048, 2000, 5, a temp dir); BENCH_CBT=path/to/bench_cbt.
set -euo pipefail

gib=${1:-2048}
writes=${2:-2000}
reps=${3:-5}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_CBT:-$PWD/bench/bench_cbt}
[ -x "$bin" ] || { echo "bench_cbt.sh: no $bin (make bench/bench_cbt)" >&2; exit 1; }
command -v qemu-io >/dev/null || { echo "qemu-io not found" >&2; exit 1; }
if [ -n "${4:-}" ]; then
    work=$4
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/xcp-bench-cbt-XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi
export XCP_HV=sim XCP_TEMPLATES=${XCP_TEMPLATES:-$top/data/templates.yaml}
state="$work/state"

kv() { sed -n "s/^$1 //p"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.6f", b - a }'; }
ratio() { awk -v p="$1" -v o="$2" 'BEGIN { printf "%.2fx", (o > 0 ? p / o : 0) }'; }
row() {  # name ours-seconds peer-name peer-seconds
    printf "%-30s ours %9.4f s | %-26s %9.4f s | ratio %s\n" "$1" "$2" \
        "$3" "$4" "$(ratio "$4" "$2")"
}
# WRITES qemu-io writes of 4 KiB, spread over the disk (seed $2).
guest_writes() {
    local args=() i off blocks=$((gib * 16384))
    for ((i = 0; i < writes; i++)); do
        off=$(( ((i * 7919 + $2 * 104729) % blocks) * 65536 ))
        args+=(-c "write -q $off 4k")
    done
    qemu-io -f qcow2 "${args[@]}" "$1" >/dev/null
}

out=$("$bin" create "$state" "$gib")
vdi=$(kv vdi <<<"$out"); vfile=$(kv file <<<"$out")
s1=$("$bin" snapshot "$state" "$vdi" | kv snap)
guest_writes "$vfile" 1
out=$("$bin" snapshot "$state" "$vdi")
s2=$(kv snap <<<"$out"); s2file=$(kv file <<<"$out")
guest_writes "$vfile" 2
echo "disk ${gib} GiB, $((2 * writes)) guest writes of 4 KiB in two epochs, $reps calls  ($(qemu-img --version | head -1))"

out=$("$bin" list "$state" "$s1" "$vdi" "$reps")
ours=$(kv median <<<"$out")
echo "list_changed_blocks: median $ours s, min $(kv min <<<"$out") s, $(kv set <<<"$out") blocks set, $(kv b64 <<<"$out") base64 characters"
bitmap=$(kv bitmap <<<"$out")

# QEMU's OR of the same two epochs, into a scratch bitmap of the disk.
qemu-img bitmap --add "$vfile" bench-peer
t=$(now)
qemu-img bitmap --merge "xcp-cbt:$s1" -b "$s2file" -F qcow2 "$vfile" \
    bench-peer
qemu-img bitmap --merge "xcp-cbt:$s2" "$vfile" bench-peer
tq=$(since "$t")
qemu-img bitmap --remove "$vfile" bench-peer
row "list_changed_blocks (API)" "$ours" "qemu-img bitmap --merge" "$tq"

t=$(now)
base64 -w0 "$bitmap" >/dev/null
tb=$(since "$t")
row "list_changed_blocks (API)" "$ours" "base64 of the result" "$tb"
t=$(now)
cat "$bitmap" >/dev/null
tc=$(since "$t")
row "list_changed_blocks (API)" "$ours" "cat of the bitmap" "$tc"
qemu-img check -q "$vfile" && echo "qemu-img check: clean"
