#!/usr/bin/env bash
# bench_vhd.sh - the VHD library's sequential write and read against
# qemu-img and dd in the same run.
#
# Writes MIB MiB (default 256) of non-zero data into a new dynamic VHD in
# 1 MiB requests and fdatasyncs it, then reads it all back; the peers are
# qemu-io on QEMU's vpc driver (the same writes into a qemu-made image,
# then flush; reading our image) and dd of a raw file (conv=fdatasync:
# the disk's own speed).
# Prints MB/s and the ratio (ours / peer: above 1 means we are faster).
#
#   bench/bench_vhd.sh [MIB] [work-dir]     (defaults: 256, a temp dir)
set -euo pipefail

mib=${1:-256}
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${2:-}" ]; then
    work=$2
    mkdir -p "$work"
    trap 'rm -f "$work"/bench-vhd-*' EXIT
else
    work=$(mktemp -d /tmp/xcp-bench-XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi
command -v qemu-img >/dev/null || { echo "qemu-img not found" >&2; exit 1; }

# write PATH MIB | read PATH   (over the library, nothing else)
cat > "$work/bench-vhd-harness.c" <<'CEOF'
#include "vhd.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    size_t chunk = 1u << 20;
    unsigned char *buf = malloc(chunk);
    char err[1024];
    xcp__vhd *v;
    uint64_t size, off;
    int ret = 0;

    if (argc < 3 || !buf)
        return 2;
    memset(buf, 0x5a, chunk);
    if (strcmp(argv[1], "write") == 0) {
        size = strtoull(argv[3], NULL, 10) << 20;
        ret = xcp__vhd_create(argv[2], size, NULL, err, sizeof(err));
        ret = ret ? ret : xcp__vhd_open(&v, argv[2], 0, err, sizeof(err));
        for (off = 0; ret == 0 && off < size; off += chunk)
            ret = xcp__vhd_write(v, off, buf, chunk, err, sizeof(err));
        if (ret == 0)
            ret = xcp__vhd_close(v);
    } else {
        ret = xcp__vhd_open(&v, argv[2], XCP__VHD_RDONLY, err, sizeof(err));
        size = ret ? 0 : xcp__vhd_virtual_size(v);
        for (off = 0; ret == 0 && off < size; off += chunk)
            ret = xcp__vhd_read(v, off, buf, chunk, err, sizeof(err));
        if (ret == 0)
            xcp__vhd_close(v);
    }
    if (ret)
        fprintf(stderr, "%s\n", err);
    return ret != 0;
}
CEOF
gcc -std=gnu11 -O2 -I"$top/lib/libxcp/sr" "$work/bench-vhd-harness.c" \
    "$top/lib/libxcp/sr/vhd.c" "$top/lib/libxcp/sr/vhd_meta.c" \
    "$top/lib/libxcp/sr/vhd_chain.c" -o "$work/bench-vhd-harness"
h="$work/bench-vhd-harness"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
mbs() { awk -v s="$1" -v m="$mib" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }'; }
ratio() {
    awk -v p="$1" -v o="$2" 'BEGIN { printf "%.2fx", (o > 0 ? p / o : 0) }'
}
row() {  # name ours-seconds peer-name peer-seconds
    printf "%-26s ours %6s MB/s | %-22s %6s MB/s | ratio %s\n" "$1" \
        "$(mbs "$2")" "$3" "$(mbs "$4")" "$(ratio "$4" "$2")"
}

echo "size=${mib}MiB  dir=$work  ($(qemu-img --version | head -1))"
raw="$work/bench-vhd-src.raw"
ours="$work/bench-vhd-ours.vhd"
theirs="$work/bench-vhd-qemu.vhd"

t=$(now)
"$h" write "$ours" "$mib"
tw=$(since "$t")
qemu-img create -q -f vpc -o subformat=dynamic "$theirs" "${mib}M"
t=$(now)
qemu-io -f vpc -c "write -q -P 0x5a 0 ${mib}M" -c flush "$theirs" >/dev/null
tqw=$(since "$t")
t=$(now)
dd if=/dev/zero of="$raw" bs=1M count="$mib" conv=fdatasync status=none
tdd=$(since "$t")
row "sequential write" "$tw" "qemu-io (vpc)" "$tqw"
row "sequential write" "$tw" "dd (raw, fdatasync)" "$tdd"

# Same image, same page cache for both readers.
t=$(now)
"$h" read "$ours"
tr_=$(since "$t")
t=$(now)
qemu-io -f vpc -r -c "read -q 0 ${mib}M" "$ours" >/dev/null
tqr=$(since "$t")
t=$(now)
dd if="$raw" of=/dev/null bs=1M status=none
tddr=$(since "$t")
row "sequential read" "$tr_" "qemu-io (vpc)" "$tqr"
row "sequential read" "$tr_" "dd (raw)" "$tddr"
