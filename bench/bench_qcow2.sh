#!/usr/bin/env bash
# bench_qcow2.sh - our qcow2 library and file SR against qemu-img.
#
# Times create, snapshot, clone and full copy both ways and prints the
# ratio (qemu-img time / our time: above 1 means we are faster).  Ours is
# timed twice: one process per operation, as `qemu-img` is run, and all
# operations in one process, as the toolstack calls the library.
#
#   bench/bench_qcow2.sh [count] [work-dir]     (defaults: 200, a temp dir)
#
# Both sides fdatasync what they create; run it on the filesystem you
# care about (work-dir), since sync costs dominate on real disks.
set -euo pipefail

count=${1:-200}
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${2:-}" ]; then
    work=$2
    mkdir -p "$work"
    trap 'rm -rf "$work"/ours "$work"/qemu "$work"/harness*' EXIT
else
    work=$(mktemp -d /tmp/xcp-bench-XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi
command -v qemu-img >/dev/null || { echo "qemu-img not found" >&2; exit 1; }

# A small driver over the library, compiled here so the bench needs no
# build system.  Modes:
#   create N DIR      N images of 1 GiB          (one process)
#   create1 PATH      one image
#   srinit DIR        a file SR in DIR
#   snapshot N DIR    N snapshots of one VDI     (one process)
#   clone N DIR       N clones of one VDI        (one process)
#   vdi DIR           one VDI; prints its location
#   snapshot1 DIR LOC / clone1 DIR LOC   one snapshot / clone
#   fill PATH MIB     write MIB MiB of data into PATH
#   copy SRC DST      full copy (flatten)
cat > "$work/harness.c" <<'EOF'
#include <xcp/sys/sr.h>
#include "qcow2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const xcp_sr_type xcp__sr_type_file;
#define SR_UUID "0be4c400-0000-4000-8000-000000000000"

static xcp_sr_kv dc;
static xcp_sr_target sr = { SR_UUID, &dc, 1, NULL };

static void die(const char *what, const char *why)
{
    fprintf(stderr, "%s: %s\n", what, why);
    exit(1);
}

static void cow(const char *loc, int clone)
{
    xcp_sr_cow_result r;
    xcp_sr_error e;
    int ret = clone ? xcp__sr_type_file.ops->vdi_clone(&sr, loc, &r, &e)
                    : xcp__sr_type_file.ops->vdi_snapshot(&sr, loc, &r, &e);

    if (ret)
        die("cow", e.reason);
}

int main(int argc, char **argv)
{
    const xcp_sr_ops *ops = xcp__sr_type_file.ops;
    xcp_sr_vdi_create_params p = { 1, NULL, 1ull << 30, NULL };
    xcp_sr_vdi_info v;
    xcp_sr_error e;
    xcp__qcow2 *q;
    char err[1024], path[4096];
    uint64_t size;
    long i, n;

    if (argc < 3)
        die("usage", "mode args");
    if (!strcmp(argv[1], "create1"))
        return xcp__qcow2_create(argv[2], 1ull << 30, NULL, err, sizeof(err))
                   ? (die("create", err), 1) : 0;
    if (!strcmp(argv[1], "create")) {
        n = atol(argv[2]);
        for (i = 0; i < n; i++) {
            snprintf(path, sizeof(path), "%s/%ld.qcow2", argv[3], i);
            if (xcp__qcow2_create(path, 1ull << 30, NULL, err, sizeof(err)))
                die("create", err);
        }
        return 0;
    }
    if (!strcmp(argv[1], "fill")) {
        char *buf = malloc(1 << 20);
        if (xcp__qcow2_open(&q, argv[2], NULL, 0, err, sizeof(err)))
            die("open", err);
        for (i = 0; i < atol(argv[3]); i++) {
            memset(buf, (int)(i % 251) + 1, 1 << 20);
            if (xcp__qcow2_write(q, (uint64_t)i << 20, buf, 1 << 20, err,
                                 sizeof(err)))
                die("write", err);
        }
        free(buf);
        return xcp__qcow2_close(q);
    }
    if (!strcmp(argv[1], "copy")) {
        if (xcp__qcow2_open(&q, argv[2], NULL, XCP__QCOW2_RDONLY, err,
                            sizeof(err)))
            die("open", err);
        if (xcp__qcow2_copy(q, argv[3], NULL, err, sizeof(err)))
            die("copy", err);
        return xcp__qcow2_close(q);
    }
    /* The SR directory: DIR in every mode below. */
    dc.key = "location";
    dc.value = argv[!strcmp(argv[1], "snapshot") ||
                    !strcmp(argv[1], "clone") ? 3 : 2];
    if (!strcmp(argv[1], "srinit"))
        return ops->sr_create(&sr, &size, &e) ? (die("sr", e.reason), 1) : 0;
    if (!strcmp(argv[1], "vdi")) {
        if (ops->vdi_create(&sr, &p, &v, &e))
            die("vdi", e.reason);
        printf("%s\n", v.location);
        return 0;
    }
    if (!strcmp(argv[1], "snapshot1") || !strcmp(argv[1], "clone1")) {
        cow(argv[3], argv[1][0] == 'c');
        return 0;
    }
    n = atol(argv[2]);
    if (ops->vdi_create(&sr, &p, &v, &e))
        die("vdi", e.reason);
    for (i = 0; i < n; i++) {
        /* Snapshots pile up on one VDI (chain limit 30), so each round
         * works on a fresh VDI, as a backup job would. */
        if (i % 25 == 0 && i && ops->vdi_create(&sr, &p, &v, &e))
            die("vdi", e.reason);
        cow(v.location, argv[1][0] == 'c');
    }
    return 0;
}
EOF
gcc -std=gnu11 -O2 -I"$top/include" -I"$top/lib/libxcp/sr" \
    "$work/harness.c" "$top/lib/libxcp/sr/qcow2.c" \
    "$top/lib/libxcp/sr/file.c" "$top/lib/libxcp/sr/registry.c" \
    -o "$work/harness"
h="$work/harness"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
ratio() {
    awk -v q="$1" -v o="$2" 'BEGIN { printf "%.1fx", (o > 0 ? q / o : 0) }'
}
least() { awk -v a="$1" -v b="$2" 'BEGIN { print (b < a ? b : a) }'; }
fresh() {
    rm -rf "$work/ours" "$work/qemu"
    mkdir -p "$work/ours" "$work/qemu"
}
report() {  # name qemu per-process in-process
    printf "%-20s qemu-img %7.3fs | ours/process %7.3fs (%s)" \
        "$1" "$2" "$3" "$(ratio "$2" "$3")"
    printf " | ours/in-process %7.3fs (%s)\n" "$4" "$(ratio "$2" "$4")"
}

echo "count=$count  dir=$work  ($(qemu-img --version | head -1))"

# --- create: N empty 1 GiB images -----------------------------------
fresh
t=$(now)
for i in $(seq "$count"); do
    qemu-img create -q -f qcow2 "$work/qemu/$i.qcow2" 1G
done
tq=$(since "$t")
t=$(now)
for i in $(seq "$count"); do "$h" create1 "$work/ours/$i.qcow2"; done
tp=$(since "$t")
rm -rf "$work/ours"; mkdir "$work/ours"
t=$(now); "$h" create "$count" "$work/ours"; ti=$(since "$t")
report "create 1G" "$tq" "$tp" "$ti"

# --- snapshot / clone: XAPI-style, on the file SR -------------------
# qemu-img side of one snapshot: the leaf becomes the parent, then two
# overlays on it (the VDI again, and the snapshot).
qemu_cow() {
    local n=$1 d=$2 i v=a
    qemu-img create -q -f qcow2 "$d/$v.qcow2" 1G
    for i in $(seq "$n"); do
        if (( i % 25 == 0 )); then
            v=v$i
            qemu-img create -q -f qcow2 "$d/$v.qcow2" 1G
        fi
        mv "$d/$v.qcow2" "$d/p$i.qcow2"
        qemu-img create -q -f qcow2 -b "p$i.qcow2" -F qcow2 "$d/$v.qcow2" 1G
        qemu-img create -q -f qcow2 -b "p$i.qcow2" -F qcow2 "$d/s$i.qcow2" 1G
    done
}
ours_cow_process() {
    local n=$1 d=$2 mode=$3 i loc
    "$h" srinit "$d"; loc=$("$h" vdi "$d")
    for i in $(seq "$n"); do
        if (( i % 25 == 0 )); then loc=$("$h" vdi "$d"); fi
        "$h" "${mode}1" "$d" "$loc"
    done
}
for mode in snapshot clone; do
    fresh
    t=$(now); qemu_cow "$count" "$work/qemu"; tq=$(since "$t")
    t=$(now)
    ours_cow_process "$count" "$work/ours" "$mode"
    tp=$(since "$t")
    rm -rf "$work/ours"; mkdir "$work/ours"; "$h" srinit "$work/ours"
    t=$(now); "$h" "$mode" "$count" "$work/ours"; ti=$(since "$t")
    report "$mode (file SR)" "$tq" "$tp" "$ti"
done

# --- full copy of a 3-level chain with 256 MiB of data --------------
# Alternating runs, best of three each, so neither side pays for the
# other's writeback; qemu-img's output is fdatasync'ed like ours.
fresh
d=$work/ours
"$h" create1 "$d/base.qcow2"; "$h" fill "$d/base.qcow2" 192
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/mid.qcow2" 1G
"$h" fill "$d/mid.qcow2" 64
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2" 1G
sync
tq=999; tp=999
for run in 1 2 3; do
    rm -f "$work/qemu/flat.qcow2" "$d/flat.qcow2"
    t=$(now)
    qemu-img convert -O qcow2 "$d/top.qcow2" "$work/qemu/flat.qcow2"
    sync -d "$work/qemu/flat.qcow2"
    tq=$(least "$tq" "$(since "$t")")
    t=$(now)
    "$h" copy "$d/top.qcow2" "$d/flat.qcow2"
    tp=$(least "$tp" "$(since "$t")")
done
if ! qemu-img compare -q "$work/qemu/flat.qcow2" "$d/flat.qcow2"; then
    echo "copies differ!" >&2
    exit 1
fi
printf "%-20s qemu-img %7.3fs | ours %7.3fs (%s)\n" "full copy 256M of 1G" \
    "$tq" "$tp" "$(ratio "$tq" "$tp")"
