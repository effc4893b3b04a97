#!/bin/bash
# bench/bench_xen.sh - libxcp against xl on real Xen, in one boot of the
# lab's dom0 (`make bench-xen` runs it there through tools/xen-lab/bench):
# the same PV guest (same kernel, initrd, memory, vCPUs, no disk, no NIC)
# through xl (create, shutdown -w, save/restore, migrate to localhost) and
# through libxcp (xe embedded, then xe through xcpd) for VM.start, clean
# shutdown, suspend, resume and localhost migration, each N times, and the
# same guest as PVH for start, migrate and shutdown (a Xen without shadow
# paging, as Debian's, cannot live-migrate PV guests: xl cannot at all,
# libxcp moves them with a non-live stream). Prints each median, the ratio
# libxcp/xl, and the toolstack's own share of VM.start (the whole call
# minus the time spent inside libxl's domain create, which the xen driver
# logs with XCP_XEN_TIMING=1). Never fails on numbers; exits non-zero only
# if a step itself failed.
#
# Knobs: BENCH_N (or xcpbench_n=<n> on dom0's command line), default 3;
# BENCH_PVH=1 (xcpbench_pvh=1) adds the PVH rounds; BENCH_START_ONLY=1
# (xcpbench_start=1) measures VM.start alone; a base build (another
# tree's `make install DESTDIR=` stage, found in /host/base, which
# tools/xen-lab/bench puts there from BENCH_BASE) adds, in each round, the
# same operations through that build's xe and xcpd (own state directory),
# so that a change is measured before and after in one boot;
# results also go to $BENCH_OUT (default /host/bench.txt, the 9p share).
set -u
export XCP_HV=xen
export XCP_STATE_DIR=${XCP_STATE_DIR:-/var/lib/xcp}
export XCP_XEN_TIMING=1
export XCP_TRACE=1
GUEST=/boot/guest
CONS=/var/log/xen/console
MARK="XCPGUEST: userspace up"
N=${BENCH_N:-$(sed -n 's/.*xcpbench_n=\([0-9]*\).*/\1/p' /proc/cmdline)}
N=${N:-3}
# PVH rounds (live migration through HAP's log-dirty mode: under QEMU TCG
# one takes minutes, xl's and ours alike): BENCH_PVH=1 or xcpbench_pvh=1
PVH=${BENCH_PVH:-$(sed -n 's/.*xcpbench_pvh=\([0-9]*\).*/\1/p' /proc/cmdline)}
PVH=${PVH:-0}
# VM.start alone (each start followed by a hard shutdown, without waiting
# for the guest to boot): BENCH_START_ONLY=1 or xcpbench_start=1
ONLY=${BENCH_START_ONLY:-$(sed -n 's/.*xcpbench_start=\([0-9]*\).*/\1/p' /proc/cmdline)}
ONLY=${ONLY:-0}
OUT=${BENCH_OUT:-/host/bench.txt}
[ -d "$(dirname "$OUT")" ] && [ -w "$(dirname "$OUT")" ] || OUT=/tmp/bench.txt
: >"$OUT"
R=/tmp/bench # one file of seconds per (toolstack, operation)
rm -rf "$R"
mkdir -p "$R"
MEM_MIB=128
ARGS="console=hvc0 quiet"
XCPD_PID=""
# the base build, copied into RAM (libraries read over 9p are slow)
BASE=/opt/xcp-base
rm -rf "$BASE"
if [ -d /host/base/usr/local ]; then
    mkdir -p "$BASE/usr" && cp -a /host/base/usr/local "$BASE/usr/" ||
        BASE=""
else
    BASE=""
fi

say() { echo "$*" | tee -a "$OUT"; }
die() {
    say "bench_xen: $*"
    [ -n "$XCPD_PID" ] && kill "$XCPD_PID" 2>/dev/null
    exit 1
}
t() { echo "$EPOCHREALTIME"; }
# records $3 - $2 seconds under $1 (and shows it on the serial log, so a
# run cut short still tells what it measured)
rec() {
    awk -v a="$2" -v b="$3" 'BEGIN { printf "%.4f\n", b - a }' >>"$R/$1"
    echo "bench_xen: $1 $(tail -1 "$R/$1") s"
}
median() {
    [ -s "$R/$1" ] || { echo "-"; return; }
    sort -n "$R/$1" | awk '{ v[NR] = $1 }
        END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2];
              else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == "n/a" ||
        b == 0) print "-"; else printf "%.2fx", a / b }'
}
# Runs "$@" (bounded: STEP_TMO s), timed, recording under $1; a failure
# is noted in $R/$1.failed and shown, and returns 1 for the caller to
# clean up.
STEP_TMO=180
timed() {
    local key=$1 a b
    shift
    echo "bench_xen: $key begins at uptime $(cut -d' ' -f1 /proc/uptime)"
    a=$(t)
    if ! timeout "$STEP_TMO" "$@" >/tmp/bench.cmd.out 2>/tmp/bench.cmd.err
    then
        echo "$* failed: $(tail -3 /tmp/bench.cmd.err | tr '\n' ' ')" |
            cut -c1-400 >>"$R/$key.failed"
        say "bench_xen: $key: $(tail -1 "$R/$key.failed")"
        return 1
    fi
    b=$(t)
    rec "$key" "$a" "$b"
    steps "$a" /tmp/bench.cmd.err /tmp/xcpd.log
}

# The library's trace lines (XCP_TRACE) stamped at or after $1 in files
# $2...: where a call's time went, relative to its start (xe's start-up
# is the time until its first "call").
steps() {
    local a=$1
    shift
    cat "$@" 2>/dev/null | awk -v a="$a" '$1 == "libxcp" && $2 == "trace:" &&
        $3 >= a { $1 = ""; $2 = ""; t = $3; $3 = "";
                  printf "bench_xen:   +%.3f%s\n", t - a, $0 }'
}

lines() { cat "$CONS/guest-$1.log" 2>/dev/null | wc -l; }
# Waits (up to 240 s) for $2 in console log $1 after line $3.
wait_console() {
    local i=0
    while [ $i -lt 1200 ]; do
        tail -n +"$(($3 + 1))" "$CONS/guest-$1.log" 2>/dev/null |
            grep -q "$2" && return 0
        sleep 0.2
        i=$((i + 1))
    done
    die "no '$2' on the console of $1 within 240 s"
}
# Waits until no domain's name starts with $1 (xl's own waits are done).
wait_gone() {
    local i=0
    while xl list | awk -v p="$1" 'index($1, p) == 1 { f = 1 } END { exit !f }'
    do
        [ $i -lt 300 ] || die "domain $1 still there after 60 s"
        sleep 0.2
        i=$((i + 1))
    done
}

# ---- xl ---------------------------------------------------------------------

XL=xl-bench
# xl's config for the guest as type $1 (pv, pvh)
xl_cfg() {
    cat >/tmp/xl-bench.cfg <<EOF
name = "$XL"
type = "$1"
kernel = "$GUEST/vmlinux"
ramdisk = "$GUEST/initrd.gz"
extra = "$ARGS"
memory = $MEM_MIB
maxmem = $MEM_MIB
vcpus = 1
maxvcpus = 1
on_poweroff = "preserve"
EOF
}

# xl migrate to this host: with -s "" (no ssh) the host argument is the
# receiving command itself, which xl runs through sh here. A Xen without
# shadow paging cannot live-migrate PV guests (libxc: "Failed to enable
# logdirty"): that is noted once and the row says n/a.
xl_migrate() { # $1=key
    local a b
    [ -e "$R/$1.unsupported" ] && return 0
    a=$(t)
    if xl migrate -s "" $XL "xl migrate-receive -e" \
        >/tmp/xl-migrate.out 2>&1; then
        b=$(t)
        rec "$1" "$a" "$b"
        return 0
    fi
    grep -m1 -o 'Failed to enable logdirty.*' /tmp/xl-migrate.out \
        >"$R/$1.unsupported" ||
        tail -1 /tmp/xl-migrate.out >"$R/$1.unsupported"
    say "bench_xen: xl migrate failed: $(tail -4 /tmp/xl-migrate.out |
        tr '\n' ' ')"
    # xl gives up without renaming the sender back when it thinks the
    # guest did not suspend
    xl list $XL >/dev/null 2>&1 || xl rename "$XL--migratedaway" $XL ||
        die "xl migrate lost the guest"
}

# Whatever a failed step left of the xl guest goes.
xl_clean() {
    local d
    for d in $(xl list | awk -v p="$XL" 'index($1, p) == 1 { print $2 }')
    do
        xl destroy "$d"
    done
    return 1
}

xl_round() { # $1=type: pv does every operation, pvh start/migrate/shutdown
    local ty=$1 k=xl n
    [ "$ty" = pv ] || k=xl.$ty
    xl_cfg "$ty"
    n=$(lines $XL)
    timed $k.start xl create -q /tmp/xl-bench.cfg || xl_clean || return
    if [ "$ONLY" = 1 ]; then
        xl destroy $XL
        wait_gone $XL
        return
    fi
    wait_console $XL "$MARK" "$n"
    if [ "$ty" = pv ]; then
        rm -f /tmp/xl-bench.save
        timed $k.suspend xl save $XL /tmp/xl-bench.save || xl_clean ||
            return
        wait_gone $XL
        timed $k.resume xl restore /tmp/xl-bench.save || xl_clean || return
        rm -f /tmp/xl-bench.save
        sleep 1
    fi
    xl_migrate $k.migrate
    sleep 1
    # `xl shutdown -w` returns when Xen reports the domain shut down; the
    # domain (on_poweroff=preserve) still holds its memory and devices.
    # VM.clean_shutdown returns when the VM is Halted: its domain
    # destroyed. So xl's equivalent is shutdown -w, then destroy.
    timed $k.shutdown xl shutdown -w $XL || xl_clean || return
    timed $k.destroy xl destroy $XL || xl_clean || return
    # the two commands' own times (not the bench's bookkeeping between)
    rec $k.halted 0 "$({ tail -1 "$R/$k.shutdown"; tail -1 "$R/$k.destroy"; } |
        awk '{ s += $1 } END { print s }')"
    wait_gone $XL
}

# ---- libxcp -----------------------------------------------------------------

# The same guest as a VM, made the XAPI way; $1 is its domain type.
make_vm() {
    local vm v
    vm=$(xe vm-install template="Other install media" \
        new-name-label=bench-$1) || die "vm-install failed"
    for v in $(xe vbd-list vm-uuid="$vm" type=Disk params=vdi-uuid \
        --minimal | tr ',' ' '); do
        xe vdi-destroy uuid="$v" || die "vdi-destroy failed"
    done
    for v in $(xe vbd-list vm-uuid="$vm" --minimal | tr ',' ' '); do
        xe vbd-destroy uuid="$v" || die "vbd-destroy failed"
    done
    for v in $(xe vif-list vm-uuid="$vm" --minimal | tr ',' ' '); do
        xe vif-destroy uuid="$v" || die "vif-destroy failed"
    done
    xe vm-param-set uuid="$vm" HVM-boot-policy="" \
        PV-kernel="$GUEST/vmlinux" PV-ramdisk="$GUEST/initrd.gz" \
        PV-args="$ARGS" VCPUs-max=1 VCPUs-at-startup=1 ||
        die "vm-param-set failed"
    xe vm-param-set uuid="$vm" domain-type="$1" ||
        die "vm-param-set domain-type=$1 failed"
    xe vm-memory-limits-set uuid="$vm" static-min=${MEM_MIB}MiB \
        dynamic-min=${MEM_MIB}MiB dynamic-max=${MEM_MIB}MiB \
        static-max=${MEM_MIB}MiB || die "vm-memory-limits-set failed"
    echo "$vm"
}

# The seconds the driver spent in libxl_domain_create_new, last logged in
# file $1.
libxl_create_s() {
    grep 'xen: timing: libxl_domain_create_new' "$1" | tail -1 |
        awk '{ print $(NF - 1) }'
}

# One round of libxcp through xe; $1 names it (emb, xcpd, xcpd.pvh,
# base), $2 is the log where the driver's timing lines go (xe's stderr
# when embedded, which vm-start appends to /tmp/bench.emb.log; xcpd's log
# otherwise), $3 the VM, $4 1 for every operation (the PV VMs), else
# start, migrate, shutdown.
xe_round() {
    local k=$1 log=$2 vm=$3 full=$4 n a b lx
    n=$(lines "$vm")
    a=$(t)
    xe vm-start uuid="$vm" 2>/tmp/bench.cmd.err || die "$k: vm-start failed"
    b=$(t)
    cat /tmp/bench.cmd.err >>/tmp/bench.emb.log
    rec "$k.start" "$a" "$b"
    steps "$a" /tmp/bench.cmd.err /tmp/xcpd.log
    lx=$(libxl_create_s "$log")
    [ -n "$lx" ] && echo "$lx" >>"$R/$k.libxl_create" &&
        awk -v a="$a" -v b="$b" -v l="$lx" \
            'BEGIN { printf "%.4f\n", b - a - l }' >>"$R/$k.own"
    [ -n "$lx" ] && echo "bench_xen: $k.libxl_create $lx s"
    if [ "$ONLY" = 1 ]; then
        timeout "$STEP_TMO" xe vm-shutdown uuid="$vm" --force
        return
    fi
    wait_console "$vm" "$MARK" "$n"
    if [ "$full" = 1 ]; then
        timed "$k.suspend" xe vm-suspend uuid="$vm" &&
            timed "$k.resume" xe vm-resume uuid="$vm" || xe_clean "$vm" ||
            return
        sleep 1
    fi
    timed "$k.migrate" xe vm-migrate uuid="$vm" host="$HOST" live=true
    grep -h 'xen: timing: libxl' /tmp/bench.cmd.err | sed 's/^/bench_xen:   /'
    sleep 1
    timed "$k.shutdown" xe vm-shutdown uuid="$vm" || xe_clean "$vm" || return
    # a no-op call: what xe's own start-up (and the daemon's round trip)
    # costs in each of the calls above; and xe's start-up alone (loading
    # and linking its libraries, no call)
    timed "$k.noop" xe vm-param-get uuid="$vm" param-name=power-state
    timed "$k.startup" xe help vm-start
}

# One round through the library with one session held open, as an
# orchestrator linking libxcp does (bench/xen_lib.c: no process start-up,
# no login per call); $1 names it (lib: embedded, no daemon; libd: a
# remote session to xcpd over its unix socket), $2 the session's target,
# $3 the VM. Records the call times xen_lib reports.
lib_round() {
    local k=$1 vm=$3 n r
    LIB=/xcp-tests/xen_lib
    [ -x "$LIB" ] || LIB=$(dirname "$0")/xen_lib
    [ -x "$LIB" ] || { say "bench_xen: no xen_lib: no $k column"; return; }
    coproc XL_LIB { "$LIB" "$2" 2>>/tmp/bench.lib.err; }
    read -r r <&"${XL_LIB[0]}" || r="died"
    if [ "$r" != ready ]; then
        echo "$2: $r $(tail -2 /tmp/bench.lib.err | tr '\n' ' ')" \
            >>"$R/$k.start.failed"
        say "bench_xen: $k: cannot open a session: $r"
        return
    fi
    lib_op() { # $1=op: the call's time under $k.$1
        local a
        echo "bench_xen: $k.$1 begins at uptime $(cut -d' ' -f1 /proc/uptime)"
        echo "$1 $vm ${2:-}" >&"${XL_LIB[1]}"
        read -r r a <&"${XL_LIB[0]}" || r=died
        if [ "$r" != ok ]; then
            echo "$1: $r $a" >>"$R/$k.$1.failed"
            say "bench_xen: $k.$1: $r $a"
            return 1
        fi
        rec "$k.$1" 0 "$a"
    }
    n=$(lines "$vm")
    if lib_op start; then
        if [ "$ONLY" = 1 ]; then
            lib_op hard_shutdown
        else
            wait_console "$vm" "$MARK" "$n"
            lib_op suspend && lib_op resume
            sleep 1
            lib_op migrate "$HOST"
            sleep 1
            lib_op shutdown || lib_op hard_shutdown
        fi
    fi
    echo quit >&"${XL_LIB[1]}"
    wait "$XL_LIB_PID" 2>/dev/null
}

# Whatever a failed step left of VM $1 goes.
xe_clean() {
    timeout "$STEP_TMO" xe vm-shutdown uuid="$1" --force >/dev/null 2>&1 ||
        timeout "$STEP_TMO" xe vm-reset-powerstate uuid="$1" --force \
            >/dev/null 2>&1
    return 1
}

xcpd_up() {
    xcpd >>/tmp/xcpd.log 2>&1 &
    XCPD_PID=$!
    i=0
    while [ ! -S "$XCP_STATE_DIR/xapi" ] && [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ -S "$XCP_STATE_DIR/xapi" ] ||
        die "xcpd did not start: $(tail -3 /tmp/xcpd.log)"
}

xcpd_down() {
    kill "$XCPD_PID"
    wait "$XCPD_PID"
    XCPD_PID=""
}

say "bench_xen: $N rounds, guest ${MEM_MIB} MiB, 1 vCPU, no devices;" \
    "each round xl, then xe embedded, then xe through xcpd (interleaved:" \
    "the host's load changes alike for all three)"
# embedded: xe opens the state dir itself (no xcpd running)
[ ! -S "$XCP_STATE_DIR/xapi" ] || die "xcpd is running already"
VM=$(make_vm pv)
VMH=$(make_vm pvh)
HOST=$(xe host-list --minimal)
: >/tmp/bench.emb.log
: >/tmp/xcpd.log
# Runs "$@" with the base build's xe and xcpd, its xen driver (else the
# library, copied away from its install prefix, loads this build's from
# XCP_MODULEDIR) and their own state dir.
in_base() {
    PATH=$BASE/usr/local/bin:$BASE/usr/local/sbin:$PATH \
        LD_LIBRARY_PATH=$BASE/usr/local/lib \
        XCP_HV_MODULE_DIR=$BASE/usr/local/lib/libxcp \
        XCP_STATE_DIR=/var/lib/xcp-base "$@"
}
base_round() {
    local HOST=$HOSTB
    xcpd_up
    xe_round base /tmp/xcpd.log "$VMB" 1
    xcpd_down
}
VMB=""
if [ -n "$BASE" ]; then
    VMB=$(in_base make_vm pv) && HOSTB=$(in_base xe host-list --minimal)
    if [ -n "$VMB" ] && [ -n "$HOSTB" ]; then
        say "bench_xen: base build from /host/base: xe-base is its xe" \
            "through its xcpd"
    else
        say "bench_xen: the base build could not make its VM: no xe-base"
        BASE=""
    fi
fi
for i in $(seq "$N"); do
    say "bench_xen: round $i at uptime $(cut -d' ' -f1 /proc/uptime)"
    xl_round pv
    xe_round emb /tmp/bench.emb.log "$VM" 1
    lib_round lib local "$VM"
    xcpd_up
    xe_round xcpd /tmp/xcpd.log "$VM" 1
    lib_round libd "unix:$XCP_STATE_DIR/xapi" "$VM"
    xcpd_down
    [ -z "$BASE" ] || in_base base_round
done
if [ "$PVH" = 1 ]; then
    for i in $(seq "$N"); do
        xl_round pvh
        xcpd_up
        xe_round xcpd.pvh /tmp/xcpd.log "$VMH" 0
        xcpd_down
    done
fi
say "bench_xen: rounds done"

# a row: label, then the keys of xl, xe through xcpd, xe embedded (and,
# with a base build, the base's xe through its xcpd: key $5; rowlib,
# the library's table, has no base column)
row() {
    local a d e b=""
    a=$(median "$2")
    [ -e "$R/$2.unsupported" ] && a="n/a"
    d=$(median "$3")
    e=$(median "$4")
    [ -e "$R/$2.failed" ] && a="$a!"
    [ -e "$R/$3.failed" ] && d="$d!"
    [ -e "$R/$4.failed" ] && e="$e!"
    if [ -n "$BASE" ] && [ -z "${NOBASE:-}" ]; then
        b=$(median "${5:--}")
        [ -e "$R/${5:--}.failed" ] && b="$b!"
        b=$(printf ' %8s %6s' "$b" "$(ratio "$b" "$a")")
    fi
    say "$(printf '%-22s %8s %8s %6s %10s %6s' "$1" "$a" "$d" \
        "$(ratio "$d" "$a")" "$e" "$(ratio "$e" "$a")")$b"
}

say ""
say "median of $N, seconds           xl  xe-xcpd  ratio xe-embedded " \
    " ratio$([ -z "$BASE" ] || echo "  xe-base  ratio")"
for op in start shutdown suspend resume migrate; do
    row "$op (PV)" "xl.$op" "xcpd.$op" "emb.$op" "base.$op"
done
# the same end state on both sides: the domain gone (VM Halted)
row "shutdown, to halted" "xl.halted" "xcpd.shutdown" "emb.shutdown" \
    "base.shutdown"
for op in start migrate shutdown; do
    row "$op (PVH)" "xl.pvh.$op" "xcpd.pvh.$op" "-"
done
# the library with one session held (no xe process, no login per call)
rowlib() { NOBASE=1 row "$@"; }
say ""
say "library, one session held   xl  lib-xcpd ratio lib-embedded ratio"
for op in start suspend resume migrate; do
    rowlib "$op (PV)" "xl.$op" "libd.$op" "lib.$op"
done
rowlib "shutdown, to halted" "xl.halted" "libd.shutdown" "lib.shutdown"
say ""
say "$(printf '%-22s %8s %8s %6s %10s %6s' "xe no-op call" - \
    "$(median xcpd.noop)" "" "$(median emb.noop)" "")$([ -z "$BASE" ] ||
    printf ' %8s' "$(median base.noop)")"
say "$(printf '%-22s %8s %8s %6s %10s %6s' "xe start-up, no call" - \
    "$(median xcpd.startup)" "" "$(median emb.startup)" "")$([ -z "$BASE" ] ||
    printf ' %8s' "$(median base.startup)")"
say "shutdown (PV): xl = 'xl shutdown -w' (returns once Xen reports the" \
    "domain shut down; 'xl destroy' after it took $(median xl.destroy) s);" \
    "libxcp = VM.clean_shutdown (returns once the VM is Halted: domain" \
    "destroyed, memory free), xe's start-up included"
for f in "$R"/*.unsupported; do
    [ -e "$f" ] && say "$(basename "$f" .unsupported): n/a: $(cat "$f")"
done
for f in "$R"/*.failed; do # "!" in the table
    [ -e "$f" ] && say "$(basename "$f" .failed) failed $(wc -l <"$f")" \
        "time(s): $(tail -1 "$f")"
done
say "VM.start (PV) inside libxl_domain_create_new: xcpd" \
    "$(median xcpd.libxl_create) s, embedded $(median emb.libxl_create) s"
say "VM.start (PV), the toolstack's own share (xe's start-up included):" \
    "xcpd $(median xcpd.own) s, embedded $(median emb.own) s$([ -z "$BASE" ] ||
    echo ", base through its xcpd $(median base.own) s")"
# where the time went inside the driver (XCP_XEN_TIMING), for the record
echo "bench_xen: driver timing lines (embedded, then xcpd):"
grep -h 'xen: timing' /tmp/bench.emb.log /tmp/bench.cmd.err /tmp/xcpd.log \
    2>/dev/null | sed 's/^/bench_xen:   /'
say "bench_xen: done"
