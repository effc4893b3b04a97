#!/bin/sh
# bench_vms.sh - VM lifecycle, `xe vm-list` and memory per VM record, on the
# sim hypervisor, printed beside XAPI's published figures and a peer run in
# the same script (`cat` of vm-list's output: the floor for printing it).
# Ratios only, never pass/fail.
#
#   bench/bench_vms.sh [--quick]      (make bench / make bench-quick)
#
# Full: 512 VMs created (VM.create, 64 MiB, 1 vCPU), started and shut down
# (clean) through the API in one process, and 512 through xe, one process
# per command (vm-install / vm-start / vm-shutdown); xe vm-list at 512 VMs
# and at 10,000 (populated through the API in one process, no disks),
# median of 5 runs; RSS per VM record at 10,000; the sim storm: 512 domains
# created, started and hard-shut-down on the sim driver alone, in one
# process, against libvirt's test driver doing define/start/destroy/undefine
# in this process (test:///default, through bench/libvirt_peer; the row says
# why when it cannot run), and against another build's bench_sim when
# BENCH_SIM_BASE names one (the older sim: say, before every driver call
# took an flock on the state log and replayed what other processes
# appended; the rows are the median of 3 interleaved storms each and the
# ratio ours/base is printed). --quick: 32 VMs, 1,000, 3 runs, a storm of
# 64 (under a minute); BENCH_STORM_N sets the storm's size alone.
#
# Environment: abs_top_builddir / abs_top_srcdir (set by make), XE (an xe
# binary; default: the build's, run without libtool's wrapper script, which
# costs ~0.3 s a call that an installed xe does not pay), BENCH_DIR (work
# dir; default a temp dir, removed). The database keeps its default fsync
# policy. Clean shutdowns include the sim guest's acknowledgement delay
# (XCP_SIM_SHUTDOWN_DELAY_MS, 20 ms by default), as a real guest takes time.
set -eu

quick=0
if [ "${1:-}" = "--quick" ]; then
    quick=1
fi
if [ "$quick" = 1 ]; then
    n_life=32 n_big=1000 reps=3 n_storm=64
else
    n_life=512 n_big=10000 reps=5 n_storm=512
fi
n_storm=${BENCH_STORM_N:-$n_storm} # the storm's size alone

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${abs_top_srcdir:-$(cd "$here/.." && pwd)}
builddir=${abs_top_builddir:-$srcdir}
BENCH_VMS=${BENCH_VMS:-$builddir/bench/bench_vms}
BENCH_SIM=${BENCH_SIM:-$builddir/bench/bench_sim}
LIBVIRT_PEER=${LIBVIRT_PEER:-$builddir/bench/libvirt_peer}
if [ -z "${XE:-}" ]; then
    if [ -x "$builddir/cmd/xe/.libs/xe" ]; then
        XE=$builddir/cmd/xe/.libs/xe
        libs=$builddir/lib/libxcp/.libs
        LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        export LD_LIBRARY_PATH
    else
        XE=$builddir/cmd/xe/xe
    fi
fi
for p in "$BENCH_VMS" "$BENCH_SIM" "$XE"; do
    [ -x "$p" ] || { echo "bench_vms.sh: $p not built" >&2; exit 1; }
done

XCP_HV=sim
XCP_TEMPLATES=$srcdir/data/templates.yaml
# 512 running VMs of the template's 128 MiB must fit.
XCP_SIM_HOST_MEMORY=256GiB
XCP_SIM_HOST_CPUS=64
export XCP_HV XCP_TEMPLATES XCP_SIM_HOST_MEMORY XCP_SIM_HOST_CPUS
unset XCP_DB_FSYNC XCP_STATE_DIR 2>/dev/null || true

if [ -n "${BENCH_DIR:-}" ]; then
    work=$BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/xcp-bench-vms-XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
kv() { sed -n "s/^$1 //p" "$2"; }
# calc EXPR VAR=VALUE...: awk arithmetic, printed as given by EXPR's format
calc() {
    e=$1
    shift
    awk "$@" "BEGIN { $e }"
}

# A state dir after first boot (not timed: XAPI's figures are on a host
# that is up).
fresh_xe_dir() {
    XCP_STATE_DIR=$1
    export XCP_STATE_DIR
    "$XE" vm-list --minimal >/dev/null </dev/null
}

echo "libxcp VM benchmarks: sim hypervisor, $(nproc) CPUs, work dir $work"
echo "xe: $XE"
echo

# ---- lifecycle ------------------------------------------------------------
xapi_life=989
xapi_scaled=$(calc 'printf "%.1f", x * n / 512' -v x=$xapi_life -v n=$n_life)

"$BENCH_VMS" lifecycle "$n_life" "$work/api" >"$work/api.out"
a_c=$(kv create "$work/api.out")
a_s=$(kv start "$work/api.out")
a_d=$(kv shutdown "$work/api.out")

fresh_xe_dir "$work/xe"
: >"$work/uuids"
t=$(now)
i=0
while [ "$i" -lt "$n_life" ]; do
    "$XE" vm-install template="Other install media" \
        new-name-label="bench-$i" >>"$work/uuids" </dev/null
    i=$((i + 1))
done
x_c=$(since "$t")
t=$(now)
while read -r u; do
    "$XE" vm-start uuid="$u" </dev/null
done <"$work/uuids"
x_s=$(since "$t")
t=$(now)
while read -r u; do
    "$XE" vm-shutdown uuid="$u" </dev/null
done <"$work/uuids"
x_d=$(since "$t")

life_row() { # label create start shutdown
    calc 'tot = c + s + d;
          printf "  %-26s %8.3fs %8.3fs %9.3fs %8.3fs %8.2f ms %8.1fx\n",
                 l, c, s, d, tot, tot * 1000 / n, x / tot' \
        -v l="$1" -v c="$2" -v s="$3" -v d="$4" -v n="$n_life" \
        -v x="$xapi_scaled"
}
echo "VM lifecycle: $n_life VMs created, then started, then shut down" \
     "(clean), one call at a time"
if [ "$n_life" = 512 ]; then
    echo "XAPI: 16 min 29 s (989 s) for 512 VMs create+pause+shutdown"
else
    echo "XAPI: 989 s for 512 VMs create+pause+shutdown, scaled to" \
         "$n_life VMs: ${xapi_scaled} s"
fi
printf "  %-26s %9s %9s %10s %9s %11s %9s\n" "" create start shutdown \
    total "per VM" "XAPI/ours"
life_row "API, one process" "$a_c" "$a_s" "$a_d"
life_row "xe, a process per command" "$x_c" "$x_s" "$x_d"
calc 'printf "  (xe vm-install clones a template: 128 MiB, 1 vCPU; the API " \
      "run uses VM.create, 64 MiB; shutdowns include %d x 20 ms of guest " \
      "acknowledgement)\n", n' -v n="$n_life"
echo

# ---- sim storm --------------------------------------------------------------
# The sim driver alone against libvirt's test driver, both in this process.
# One storm of bench_sim $1 (fresh host), its output in $2.
storm() {
    rm -rf "$work/storm"
    mkdir -p "$work/storm"
    "$1" storm "$n_storm" "$work/storm" >"$2"
}
# The storm (of 3, with a base) whose total is the median, in $1.
median_storm() { # out files...
    out=$1
    shift
    cp "$(for f in "$@"; do echo "$(kv seconds "$f") $f"; done |
        sort -n | awk '{ f[NR] = $2 } END { print f[int((NR + 1) / 2)] }')" \
        "$out"
}
if [ -n "${BENCH_SIM_BASE:-}" ]; then
    [ -x "$BENCH_SIM_BASE" ] ||
        { echo "bench_vms.sh: BENCH_SIM_BASE=$BENCH_SIM_BASE" \
            "is not a program" >&2; exit 1; }
    for r in 1 2 3; do # interleaved: the machine's load alike for both
        storm "$BENCH_SIM" "$work/storm.$r.out"
        storm "$BENCH_SIM_BASE" "$work/base-storm.$r.out"
    done
    median_storm "$work/storm.out" "$work"/storm.?.out
    median_storm "$work/base-storm.out" "$work"/base-storm.?.out
else
    storm "$BENCH_SIM" "$work/storm.out"
fi
lv_reason=
if [ ! -x "$LIBVIRT_PEER" ]; then
    lv_reason="libvirt_peer not built (needs libvirt-dev: tools/deps.sh)"
elif ! "$LIBVIRT_PEER" test:///default 0 storm "$n_storm" \
        >"$work/lv-storm.out" 2>"$work/lv-storm.err"; then
    lv_reason="libvirt_peer: $(tail -n 1 "$work/lv-storm.err")"
fi
storm_row() { # label create start shutdown total cpu
    calc 'printf "  %-24s %8.3fs %8.3fs %9.3fs %8.3fs %8.3fs %8.1f us\n",
                 l, c, s, d, t, u, t * 1e6 / n' \
        -v l="$1" -v c="$2" -v s="$3" -v d="$4" -v t="$5" -v u="$6" \
        -v n="$n_storm"
}
echo "sim storm: $n_storm VMs create/start/hard_shutdown/destroy," \
     "in-process (one call at a time, each change durable)"
printf "  %-24s %9s %9s %10s %9s %9s %11s\n" "" create start shutdown \
    total cpu "per VM"
o=$work/storm.out
storm_row "sim driver" "$(kv create "$o")" "$(kv start "$o")" \
    "$(kv shutdown "$o")" "$(kv seconds "$o")" "$(kv cpu "$o")"
if [ -n "${BENCH_SIM_BASE:-}" ]; then
    o=$work/base-storm.out
    storm_row "sim driver, base build" "$(kv create "$o")" \
        "$(kv start "$o")" "$(kv shutdown "$o")" "$(kv seconds "$o")" \
        "$(kv cpu "$o")"
    calc 'printf "  ours/base: %.2fx (wall), %.2fx (CPU); base: %s\n",
                 sw / bw, sc / bc, b' \
        -v sw="$(kv seconds "$work/storm.out")" \
        -v sc="$(kv cpu "$work/storm.out")" \
        -v bw="$(kv seconds "$o")" -v bc="$(kv cpu "$o")" \
        -v b="$BENCH_SIM_BASE"
fi
if [ -z "$lv_reason" ]; then
    o=$work/lv-storm.out
    storm_row "libvirt test driver" "$(kv define "$o")" "$(kv start "$o")" \
        "$(calc 'printf "%.6f", a + b' -v a="$(kv destroy "$o")" \
            -v b="$(kv undefine "$o")")" \
        "$(kv seconds "$o")" "$(kv cpu "$o")"
    calc 'printf "  libvirt/ours: %.1fx (wall), %.1fx (CPU)\n", lw / sw,
                 lc / sc' \
        -v lw="$(kv seconds "$o")" -v lc="$(kv cpu "$o")" \
        -v sw="$(kv seconds "$work/storm.out")" \
        -v sc="$(kv cpu "$work/storm.out")"
    echo "  (libvirt: define, start, destroy + undefine; the sim builds a" \
         "domain in one call and destroys it in one)"
else
    echo "  libvirt test driver: not run: $lv_reason"
fi
echo

# ---- vm-list ----------------------------------------------------------------
# median/min of `xe vm-list [--minimal]` and `cat` of the same bytes.
list_times() { # dir tag
    XCP_STATE_DIR=$1
    export XCP_STATE_DIR
    "$BENCH_VMS" time "$reps" "$work/$2.list" "$XE" vm-list \
        >"$work/$2.t-list"
    "$BENCH_VMS" time "$reps" "$work/$2.min" "$XE" vm-list --minimal \
        >"$work/$2.t-min"
    "$BENCH_VMS" time "$reps" "$work/$2.cat" cat "$work/$2.list" \
        >"$work/$2.t-cat"
}
list_times "$work/xe" small

"$BENCH_VMS" populate "$n_big" "$work/big" >"$work/big.out"
list_times "$work/big" big

list_row() { # label file-tag-suffix
    s=$(kv median "$work/small.t-$2")
    b=$(kv median "$work/big.t-$2")
    calc 'printf "  %-22s %8.4fs %9.2fx %10.0f B  %8.4fs %9.2fx %10.0f B\n",
                 l, s, s / sc, sb, b, b / bc, bb' \
        -v l="$1" -v s="$s" -v b="$b" \
        -v sc="$(kv median "$work/small.t-cat")" \
        -v bc="$(kv median "$work/big.t-cat")" \
        -v sb="$(kv bytes "$work/small.t-$2")" \
        -v bb="$(kv bytes "$work/big.t-$2")"
}
echo "xe vm-list, median of $reps runs (x cat: time / time of cat of the" \
     "same bytes)"
printf "  %-22s %9s %10s %12s  %9s %10s %12s\n" "" "$n_life VMs" "x cat" \
    output "$n_big VMs" "x cat" output
list_row "xe vm-list" list
list_row "xe vm-list --minimal" min
list_row "cat (floor)" cat
if [ "$n_life" = 512 ]; then
    calc 'printf "  XAPI: xe vm-list at 512 VMs 0.449 s; ours %.4f s: %.1fx " \
          "faster\n", o, 0.449 / o' -v o="$(kv median "$work/small.t-list")"
else
    echo "  (XAPI's 0.449 s for xe vm-list is at 512 VMs: run make bench)"
fi
echo

# ---- memory per VM record ------------------------------------------------
jsize=$(cat "$work/big/db.journal" "$work/big/db.snap" 2>/dev/null | wc -c)
echo "Memory per VM record ($n_big VMs created through VM.create in one" \
     "process, engine open)"
calc 'printf "  RSS  %8.1f MiB -> %8.1f MiB: %7.0f bytes per VM\n",
             r0 / 1048576, r1 / 1048576, (r1 - r0) / n;
      printf "  heap %8.1f MiB -> %8.1f MiB: %7.0f bytes per VM (mallinfo2)\n",
             h0 / 1048576, h1 / 1048576, (h1 - h0) / n;
      printf "  on disk (db.journal + db.snap): %.0f bytes per VM\n", j / n;
      printf "  populate: %.2f s, %.3f ms per VM.create\n", t, t * 1000 / n' \
    -v n="$n_big" -v t="$(kv seconds "$work/big.out")" \
    -v r0="$(kv rss_before "$work/big.out")" \
    -v r1="$(kv rss_after "$work/big.out")" \
    -v h0="$(kv heap_before "$work/big.out")" \
    -v h1="$(kv heap_after "$work/big.out")" -v j="$jsize"
exit 0
