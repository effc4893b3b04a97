#!/usr/bin/env bash
# bench_coalesce.sh - coalesce speed: the image layer's commit (what the
# SR collector runs: a node's own clusters written into its parent)
# against `qemu-img commit` of the same chain, in the same run.
#
# The chain: a parent with BASE MiB written and a child (backed by it)
# with MIB MiB of its own, half of it over the parent's data, half past
# it; each contender commits a fresh copy of that chain (cp --sparse),
# five rounds alternating, best of each (the machine may be shared).  qemu-img commit runs with -d
# (the child is kept, as ours keeps it) and is followed by `sync -d` of
# the parent: qemu-img does not flush what it wrote, ours fdatasyncs the
# parent before the collector points any child at it, so both are timed
# to the data being durable.  MB/s counts the child's own data.  VHD has no peer (qemu-img cannot commit a vpc child): its row is
# ours alone.
#
#   bench/bench_coalesce.sh [MIB] [work-dir]     (defaults: 256, a temp dir)
set -euo pipefail

mib=${1:-256}
base=$mib
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${2:-}" ]; then
    work=$2
    mkdir -p "$work"
    trap 'rm -f "$work"/bench-coalesce-*' EXIT
else
    work=$(mktemp -d /tmp/xcp-bench-XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi
command -v qemu-img >/dev/null || { echo "qemu-img not found" >&2; exit 1; }

# commit CHILD PARENT FORMAT (the image layer's commit, child opened
# without its parent, as the collector opens a node), or
# chain PARENT CHILD FORMAT BASE_MIB MIB (VHD: qemu-img cannot make a child)
cat > "$work/bench-coalesce-harness.c" <<'CEOF'
#include "image.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fill(const char *path, const char *fmt, uint64_t off,
                uint64_t len, int byte, char *err)
{
    size_t chunk = 1u << 20;
    unsigned char *buf = malloc(chunk);
    xcp__image *im;
    int ret = buf ? xcp__image_open(&im, path, fmt, 0, err, 1024) : -1;

    if (buf)
        memset(buf, byte, chunk);
    for (; ret == 0 && len; off += chunk, len -= chunk)
        ret = xcp__image_write(im, off, buf, chunk, err, 1024);
    if (ret == 0)
        ret = xcp__image_close(im);
    free(buf);
    return ret;
}

int main(int argc, char **argv)
{
    xcp__image *child = NULL, *parent = NULL;
    char err[1024];
    uint64_t base, mib;
    const char *slash;
    int ret;

    if (argc == 7 && !strcmp(argv[1], "chain")) {
        base = strtoull(argv[5], NULL, 10) << 20;
        mib = strtoull(argv[6], NULL, 10) << 20;
        slash = strrchr(argv[2], '/');
        ret = xcp__image_create(argv[2], argv[4], base + mib, NULL, err,
                                sizeof(err));
        if (ret == 0)
            ret = fill(argv[2], argv[4], 0, base, 0x11, err);
        if (ret == 0)
            ret = xcp__image_create(argv[3], argv[4], 0,
                                    slash ? slash + 1 : argv[2], err,
                                    sizeof(err));
        if (ret == 0)
            ret = fill(argv[3], argv[4], base / 2, mib, 0x22, err);
        if (ret)
            fprintf(stderr, "%s\n", err);
        return ret != 0;
    }
    if (argc < 4)
        return 2;
    ret = xcp__image_open(&parent, argv[2], argv[3], 0, err, sizeof(err));
    if (ret == 0)
        ret = xcp__image_open(&child, argv[1], argv[3],
                              XCP__IMAGE_RDONLY | XCP__IMAGE_NO_PARENT, err,
                              sizeof(err));
    if (ret == 0)
        ret = xcp__image_commit(child, parent, err, sizeof(err));
    xcp__image_close(child);
    if (xcp__image_close(parent) < 0 && ret == 0)
        ret = -1;
    if (ret)
        fprintf(stderr, "%s\n", err);
    return ret != 0;
}
CEOF
sr="$top/lib/libxcp/sr"
# The image layer and what it calls: CBT (bitmaps, the VHD log, which
# syncs directories with core's path.c).
gcc -std=gnu11 -O2 -I"$sr" -I"$top/include" "$work/bench-coalesce-harness.c" \
    "$sr/image.c" "$sr/image_cbt.c" "$sr/qcow2.c" "$sr/qcow2_header.c" \
    "$sr/qcow2_alloc.c" "$sr/qcow2_chain.c" "$sr/qcow2_bitmap.c" \
    "$sr/vhd.c" "$sr/vhd_meta.c" "$sr/vhd_chain.c" \
    "$top/lib/libxcp/core/path.c" -o "$work/bench-coalesce-harness"
h="$work/bench-coalesce-harness"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
mbs() { awk -v s="$1" -v m="$mib" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }'; }
ratio() {
    awk -v p="$1" -v o="$2" 'BEGIN { printf "%.2fx", (o > 0 ? p / o : 0) }'
}
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }

# chain FMT: a fresh chain bench-coalesce-{p,c}.FMT (untimed); qcow2 is
# made with qemu's tools, VHD (which they cannot chain) with ours
chain() {
    local f=$1 p="$work/bench-coalesce-p.$1" c="$work/bench-coalesce-c.$1"
    rm -f "$p" "$c"
    if [ "$f" = qcow2 ]; then
        qemu-img create -q -f qcow2 "$p" "$((base + mib))M"
        qemu-io -f qcow2 -c "write -q -P 0x11 0 ${base}M" "$p" >/dev/null
        qemu-img create -q -f qcow2 -b "$(basename "$p")" -F qcow2 "$c"
        qemu-io -f qcow2 -c "write -q -P 0x22 $((base / 2))M ${mib}M" \
            "$c" >/dev/null
    else
        "$h" chain "$p" "$c" vhd "$base" "$mib"
    fi
    sync
}

echo "child=${mib}MiB of its own over a ${base}MiB parent  dir=$work" \
     "($(qemu-img --version | head -1))"
ours="" theirs=""
for round in 1 2 3 4 5; do
    chain qcow2
    t=$(now)
    "$h" "$work/bench-coalesce-c.qcow2" "$work/bench-coalesce-p.qcow2" qcow2
    ours=$(best "$ours" "$(since "$t")")
    qemu-img compare -q "$work/bench-coalesce-c.qcow2" \
        "$work/bench-coalesce-p.qcow2" ||
        { echo "ours: the parent does not read as the child" >&2; exit 1; }
    chain qcow2
    t=$(now)
    qemu-img commit -q -d -f qcow2 "$work/bench-coalesce-c.qcow2"
    sync -d "$work/bench-coalesce-p.qcow2"
    theirs=$(best "$theirs" "$(since "$t")")
done
printf "%-14s ours %6s MB/s | %-20s %6s MB/s | ratio %s\n" "qcow2 commit" \
    "$(mbs "$ours")" "qemu-img commit+sync" "$(mbs "$theirs")" \
    "$(ratio "$theirs" "$ours")"
vhd=""
for round in 1 2 3 4 5; do
    chain vhd
    t=$(now)
    "$h" "$work/bench-coalesce-c.vhd" "$work/bench-coalesce-p.vhd" vhd
    vhd=$(best "$vhd" "$(since "$t")")
done
printf "%-14s ours %6s MB/s | %-20s %6s      | (no peer: qemu-img cannot commit a vpc child)\n" \
    "vhd commit" "$(mbs "$vhd")" "-" "-"
