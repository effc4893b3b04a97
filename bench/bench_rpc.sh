#!/bin/sh
# bench_rpc.sh - the daemon benchmark: xcpd on loopback (sim hypervisor)
# against libvirtd serving its test driver, both on this machine and both
# started by this script; each of our rows is run right before libvirt's.
# Ratios only, never pass/fail on numbers; it fails only when xcpd itself
# does (does not start, or answers errors). libvirt that cannot run only
# leaves its rows empty, with the reason.
#
#   bench/bench_rpc.sh [--quick]      (make bench-rpc / make bench-quick)
#
# Rows:
# - VM.get_record calls/s over HTTP/1.1 keep-alive, 1 and 64 clients (a
#   connection each), XML-RPC and JSON-RPC (bench_rpc get); libvirt:
#   virDomainLookupByUUIDString + virDomainGetXMLDesc per call, 1 and 64
#   threads (a connection each), and GetXMLDesc alone for reference.
# - change -> event latency, median and p99: VM.set_name_label seen by a
#   client parked in event.from (bench_rpc event); libvirt:
#   virDomainSetMetadata seen by a METADATA_CHANGE callback.
# - xe vm-list through the daemon's unix socket against the embedded engine
#   (daemon stopped); libvirt: virsh list --all through libvirtd.
# Full: 512 VMs, 5 s per rate row, 500 latency samples, median of 5 runs.
# --quick (CI): 32 VMs, 1 s per row (JSON-RPC and GetXMLDesc-only rows at 1
# client only), 50 samples, 3 runs: about 20 s.
#
# libvirt: a private libvirtd (this script's own config, sockets and pid
# file under the work dir, no hypervisor driver modules loaded: only the
# built-in test driver is needed) serving test:///default over its unix
# socket, killed at the end. When it cannot run, its rows say why.
#
# Environment: abs_top_builddir / abs_top_srcdir (set by make); XCPD, XE,
# BENCH_RPC, BENCH_VMS, LIBVIRT_PEER, LIBVIRTD, VIRSH override the binaries;
# BENCH_DIR (work dir; default a temp dir, removed).
set -eu

quick=0
if [ "${1:-}" = "--quick" ]; then
    quick=1
fi
if [ "$quick" = 1 ]; then
    n_vms=32 secs=1 samples=50 reps=3
    rows="xml:1 xml:64 json:1"
    xml_only="1"
else
    n_vms=512 secs=5 samples=500 reps=5
    rows="xml:1 xml:64 json:1 json:64"
    xml_only="1 64"
fi

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${abs_top_srcdir:-$(cd "$here/.." && pwd)}
builddir=${abs_top_builddir:-$srcdir}
BENCH_VMS=${BENCH_VMS:-$builddir/bench/bench_vms}
BENCH_RPC=${BENCH_RPC:-$builddir/bench/bench_rpc}
LIBVIRT_PEER=${LIBVIRT_PEER:-$builddir/bench/libvirt_peer}
LIBVIRTD=${LIBVIRTD:-$(command -v libvirtd || echo /usr/sbin/libvirtd)}
VIRSH=${VIRSH:-$(command -v virsh || echo /usr/bin/virsh)}
# The programs themselves rather than libtool's wrapper scripts: a wrapper
# costs ~0.3 s a call, which an installed xe does not pay.
libs=$builddir/lib/libxcp/.libs
LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
real() { # builddir-relative program
    if [ -x "$builddir/$(dirname "$1")/.libs/$(basename "$1")" ]; then
        echo "$builddir/$(dirname "$1")/.libs/$(basename "$1")"
    else
        echo "$builddir/$1"
    fi
}
XE=${XE:-$(real cmd/xe/xe)}
XCPD=${XCPD:-$(real cmd/xcpd/xcpd)}
BENCH_VMS_BIN=$(real bench/bench_vms)
[ -x "$BENCH_VMS_BIN" ] && BENCH_VMS=$BENCH_VMS_BIN
for p in "$BENCH_VMS" "$BENCH_RPC" "$XE"; do
    [ -x "$p" ] || { echo "bench_rpc.sh: $p not built" >&2; exit 1; }
done

XCP_HV=sim
XCP_TEMPLATES=$srcdir/data/templates.yaml
XCP_SIM_HOST_MEMORY=64GiB
XCP_SIM_HOST_CPUS=8
# Both sides keep their state in memory between calls; the journal's fsync
# would only measure the disk (libvirt's test driver writes nothing).
XCP_DB_FSYNC=never
export XCP_HV XCP_TEMPLATES XCP_SIM_HOST_MEMORY XCP_SIM_HOST_CPUS XCP_DB_FSYNC
unset XCP_STATE_DIR 2>/dev/null || true

xcpd_pid=""
lv_pid=""
hold_pid=""
stop_pid() { # pid: SIGTERM, then wait for it (ours: started by this script)
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    stop_pid "$hold_pid"
    stop_pid "$lv_pid"
    stop_pid "$xcpd_pid"
    if [ -z "${BENCH_DIR:-}" ]; then
        rm -rf "$work"
    fi
}
if [ -n "${BENCH_DIR:-}" ]; then
    work=$BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/xcp-bench-rpc-XXXXXX")
fi
trap cleanup EXIT
trap 'exit 130' INT TERM

kv() { sed -n "s/^$1 //p" "$2"; }
calc() {
    e=$1
    shift
    awk "$@" "BEGIN { $e }"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# wait_for FILE PATTERN SECONDS PID: until FILE has a line matching PATTERN;
# fails when PID exits first or time runs out.
wait_for() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        kill -0 "$4" 2>/dev/null || return 1
        i=$((i + 1))
        [ "$i" -le $(($3 * 10)) ] || return 1
        sleep 0.1
    done
}

echo "libxcp daemon benchmarks: xcpd on loopback against libvirtd's test" \
     "driver; $n_vms VMs, $(nproc) CPUs, load $(loadavg) at start"
echo "work dir $work"
echo

# ---- the two daemons ------------------------------------------------------------
# Both run for the whole benchmark and each of our rows is followed at once
# by libvirt's, so that the two see the same load from the rest of the
# machine (an idle daemon costs nothing).
fail=0
xcpd_reason=""
if [ ! -x "$XCPD" ]; then
    xcpd_reason="xcpd not built ($XCPD)"
fi
state=$work/state
user=bench
pw=bench-$$
if [ -z "$xcpd_reason" ]; then
    "$BENCH_VMS" populate "$n_vms" "$state" >"$work/populate.out"
    printf '%s:%s\n' "$user" "$(openssl passwd -6 "$pw")" >"$work/auth"
    "$XCPD" --state-dir "$state" --listen 127.0.0.1:0 \
        --auth-file "$work/auth" --socket "$state/xapi" \
        </dev/null >"$work/xcpd.log" 2>&1 &
    xcpd_pid=$!
    if ! wait_for "$work/xcpd.log" '^xcpd: ready' 60 "$xcpd_pid"; then
        echo "bench_rpc.sh: xcpd did not start; its output:" >&2
        cat "$work/xcpd.log" >&2
        exit 1
    fi
    port=$(sed -n 's|^xcpd: listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' \
        "$work/xcpd.log" | head -n 1)
    [ -n "$port" ] || { echo "bench_rpc.sh: no port in xcpd's output" >&2
                        cat "$work/xcpd.log" >&2; exit 1; }
    x_addr=127.0.0.1:$port
fi

lv_reason=""
lv=$work/lv
lv_uri="test+unix:///default?socket=$lv/sock/libvirt-sock"
if [ ! -x "$LIBVIRT_PEER" ]; then
    lv_reason="libvirt_peer not built (needs libvirt-dev: tools/deps.sh)"
elif [ ! -x "$LIBVIRTD" ]; then
    lv_reason="libvirtd not installed (libvirt-daemon: tools/deps.sh)"
else
    mkdir -p "$lv/sock" "$lv/no-drivers"
    # Sockets, pid file and log of our own; no authentication on the unix
    # socket (it is ours, mode 0700). The daemon's worker pool is left at
    # its defaults (5..20 threads).
    cat >"$lv/libvirtd.conf" <<EOF
unix_sock_dir = "$lv/sock"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$lv/libvirtd.log"
EOF
    # An empty driver directory: libvirtd skips the hypervisor, network
    # and storage modules (nothing on the host is touched) and still has
    # the test driver, which is built into libvirt itself.
    LIBVIRT_DRIVER_DIR=$lv/no-drivers "$LIBVIRTD" --config "$lv/libvirtd.conf" \
        --pid-file "$lv/libvirtd.pid" </dev/null >"$lv/out" 2>&1 &
    lv_pid=$!
    i=0
    while [ ! -S "$lv/sock/libvirt-sock" ]; do
        if ! kill -0 "$lv_pid" 2>/dev/null || [ "$i" -gt 150 ]; then
            why="no socket after 15 s"
            kill -0 "$lv_pid" 2>/dev/null || why="it exited"
            lv_reason="libvirtd ($LIBVIRTD) did not start, $why: $(tail \
                -q -n 2 "$lv/out" "$lv/libvirtd.log" 2>/dev/null |
                tr '\n' ' ' | cut -c1-200)"
            break
        fi
        i=$((i + 1))
        sleep 0.1
    done
fi
lv_version=$("$LIBVIRTD" --version 2>/dev/null |
    sed -n 's/^.*libvirtd (libvirt) //p' || true)

x_run() { # out-file args...: a bench_rpc run; xcpd failing fails the script
    f=$1
    shift
    [ -z "$xcpd_reason" ] || return 0
    "$BENCH_RPC" "$x_addr" "$user" "$pw" "$@" >"$f" 2>"$f.err" || {
        echo "bench_rpc.sh: bench_rpc $* failed:" >&2
        cat "$f.err" >&2
        exit 1
    }
}
lv_run() { # out-file args...: a libvirt_peer run; on failure, the reason
    f=$1
    shift
    if [ -z "$lv_reason" ] &&
        ! "$LIBVIRT_PEER" "$lv_uri" "$n_vms" "$@" >"$f" 2>"$f.err"; then
        lv_reason="libvirt_peer $*: $(tail -n 1 "$f.err")"
    fi
}

# ---- VM.get_record rates ------------------------------------------------------
for r in $rows; do
    proto=${r%%:*} c=${r#*:}
    x_run "$work/x-$proto-$c.out" get "$secs" "$c" "$proto"
    # libvirt has one protocol: its figure for C threads serves both rows.
    [ -s "$work/l-$c.out" ] || lv_run "$work/l-$c.out" get "$secs" "$c"
done
for c in $xml_only; do
    lv_run "$work/l-xml-$c.out" get "$secs" "$c" xml
done

# ---- event latency --------------------------------------------------------------
x_run "$work/x-event.out" event "$samples"
lv_run "$work/l-event.out" event "$samples"

# ---- listing ------------------------------------------------------------------
if [ -z "$xcpd_reason" ]; then
    # xe without -s talks to the daemon on <state dir>/xapi while it runs.
    [ -S "$state/xapi" ] || {
        echo "bench_rpc.sh: no socket $state/xapi: xe would not use xcpd" >&2
        exit 1
    }
    XCP_STATE_DIR=$state
    export XCP_STATE_DIR
    "$BENCH_VMS" time "$reps" "$work/list-daemon" "$XE" vm-list \
        </dev/null >"$work/t-list-daemon"
fi
if [ -z "$lv_reason" ] && [ -x "$VIRSH" ]; then
    "$LIBVIRT_PEER" "$lv_uri" "$n_vms" hold >"$lv/hold.out" 2>&1 &
    hold_pid=$!
    if wait_for "$lv/hold.out" '^ready' 30 "$hold_pid"; then
        "$BENCH_VMS" time "$reps" "$work/list-virsh" \
            "$VIRSH" -q -c "$lv_uri" list --all </dev/null \
            >"$work/t-list-virsh" 2>"$work/t-list-virsh.err" || true
    fi
    stop_pid "$hold_pid"
    hold_pid=""
fi
stop_pid "$lv_pid"
lv_pid=""
if [ -z "$xcpd_reason" ]; then
    stop_pid "$xcpd_pid"
    xcpd_pid=""
    "$BENCH_VMS" time "$reps" "$work/list-embedded" "$XE" vm-list \
        </dev/null >"$work/t-list-embedded"
    unset XCP_STATE_DIR
fi

# ---- report -------------------------------------------------------------------
# have FILE: whether a rate run left its figures there
have() { [ -s "$1" ] && [ -n "$(kv calls "$1")" ]; }
# have_lat FILE: whether a latency run has figures (none when it got no
# sample: "samples 0" alone must not be read as 0 us, nor divided by)
have_lat() { [ -s "$1" ] && [ -n "$(kv median_us "$1")" ]; }
rate() { calc 'printf "%.0f", c / s' -v c="$(kv calls "$1")" \
    -v s="$(kv seconds "$1")"; }

echo "VM.get_record: calls/s for $secs s per row over loopback, each client" \
     "a thread with its own keep-alive connection, the $n_vms VMs in turn"
echo "  libvirt${lv_version:+ $lv_version}: virDomainLookupByUUIDString +" \
     "virDomainGetXMLDesc per call (two RPCs) on the test driver through" \
     "libvirtd's unix socket, a connection per thread"
printf "  %-10s %7s %10s %6s %7s %11s %6s %7s %12s\n" "" clients "xcpd/s" \
    errors bytes "libvirt/s" errors bytes "ours/libvirt"
for r in $rows; do
    proto=${r%%:*} c=${r#*:}
    name=XML-RPC
    [ "$proto" = json ] && name=JSON-RPC
    xf=$work/x-$proto-$c.out
    lf=$work/l-$c.out
    if [ -n "$xcpd_reason" ]; then
        xs="n/a" xe_="" xb=""
    else
        xs=$(rate "$xf") xe_=$(kv errors "$xf") xb=$(kv bytes "$xf")
        # No errors, and some calls: a row that measured nothing fails too.
        [ "$xe_" = 0 ] && [ "$(kv calls "$xf")" != 0 ] || fail=1
    fi
    if have "$lf"; then
        ls_=$(rate "$lf") le=$(kv errors "$lf") lb=$(kv bytes "$lf")
    else
        ls_="n/a" le="" lb=""
    fi
    ratio=$(calc 'if (x > 0 && l > 0) printf "%.2fx", x / l; else printf "-"' \
        -v x="${xs#n/a}" -v l="${ls_#n/a}")
    printf "  %-10s %7s %10s %6s %7s %11s %6s %7s %12s\n" "$name" "$c" \
        "$xs" "$xe_" "$xb" "$ls_" "$le" "$lb" "$ratio"
done
for c in $xml_only; do
    lf=$work/l-xml-$c.out
    if have "$lf"; then
        calc 'printf "  libvirt virDomainGetXMLDesc alone (one RPC, handles" \
              " looked up beforehand), %d thread(s): %.0f/s, %d errors\n",
              c, n / s, e' -v c="$c" -v n="$(kv calls "$lf")" \
            -v s="$(kv seconds "$lf")" -v e="$(kv errors "$lf")"
    fi
done
if [ -n "$xcpd_reason" ]; then
    echo "  xcpd: $xcpd_reason"
fi
if [ -n "$lv_reason" ]; then
    echo "  libvirt: $lv_reason"
fi
if [ -z "$xcpd_reason" ]; then
    for r in $rows; do
        f=$work/x-${r%%:*}-${r#*:}.out
        n=$(kv reconnects "$f")
        [ "$n" = 0 ] ||
            echo "  note: xcpd closed $n keep-alive connections ($r), the" \
                 "client reconnected"
    done
fi
echo

echo "Change -> event latency, $samples samples, each change made 2 ms after" \
     "the listener is waiting"
echo "  xcpd: VM.set_name_label -> the client parked in event.from(session," \
     "[\"vm\"], token, 30.0) holds the event"
echo "  libvirt: virDomainSetMetadata(description) -> the" \
     "METADATA_CHANGE callback runs (default event loop, own connection)"
printf "  %-12s %10s %10s %10s %6s\n" "" median p99 mean lost
lat_row() { # label file
    if have_lat "$2"; then
        calc 'printf "  %-12s %7.0f us %7.0f us %7.0f us %6d\n",
              l, m, p, a, n' -v l="$1" -v m="$(kv median_us "$2")" \
            -v p="$(kv p99_us "$2")" -v a="$(kv mean_us "$2")" \
            -v n="$(kv lost "$2")"
    else
        printf "  %-12s %10s\n" "$1" "n/a"
    fi
}
lat_row xcpd "$work/x-event.out"
lat_row libvirt "$work/l-event.out"
if have_lat "$work/x-event.out" && have_lat "$work/l-event.out"; then
    calc 'printf "  %-12s %9.2fx %9.2fx %9.2fx\n", "libvirt/ours",
          lm / xm, lp / xp, la / xa' \
        -v xm="$(kv median_us "$work/x-event.out")" \
        -v xp="$(kv p99_us "$work/x-event.out")" \
        -v xa="$(kv mean_us "$work/x-event.out")" \
        -v lm="$(kv median_us "$work/l-event.out")" \
        -v lp="$(kv p99_us "$work/l-event.out")" \
        -v la="$(kv mean_us "$work/l-event.out")"
fi
if [ -s "$work/x-event.out" ]; then
    e=$(kv errors "$work/x-event.out")
    n=$(kv lost "$work/x-event.out")
    if [ "$e" != 0 ] || [ "$n" != 0 ] ||
        [ "$(kv samples "$work/x-event.out")" = 0 ]; then
        echo "  xcpd: $e errors, $n events lost (not seen within 5 s)"
        fail=1
    fi
fi
[ -z "$xcpd_reason" ] || echo "  xcpd: $xcpd_reason"
[ -z "$lv_reason" ] || echo "  libvirt: $lv_reason"
echo

echo "xe vm-list at $n_vms VMs, median of $reps runs (a process per run)"
list_row() { # label file
    if [ -s "$2" ]; then
        calc 'printf "  %-36s %8.4f s %10.0f B\n", l, m, b' -v l="$1" \
            -v m="$(kv median "$2")" -v b="$(kv bytes "$2")"
    else
        printf "  %-36s %10s\n" "$1" "n/a"
    fi
}
list_row "xe vm-list through xcpd (unix socket)" "$work/t-list-daemon"
list_row "xe vm-list, embedded engine" "$work/t-list-embedded"
list_row "virsh list --all through libvirtd" "$work/t-list-virsh"
if [ -s "$work/t-list-daemon" ] && [ -s "$work/t-list-embedded" ]; then
    calc 'printf "  embedded/daemon %.2fx", e / d' \
        -v d="$(kv median "$work/t-list-daemon")" \
        -v e="$(kv median "$work/t-list-embedded")"
    if [ -s "$work/t-list-virsh" ]; then
        calc 'printf ", virsh/(xe through xcpd) %.2fx", v / d' \
            -v d="$(kv median "$work/t-list-daemon")" \
            -v v="$(kv median "$work/t-list-virsh")"
    fi
    echo
    # Same engine, same records: the two outputs must be the same bytes.
    cmp -s "$work/list-daemon" "$work/list-embedded" ||
        echo "  note: the daemon's and the embedded engine's outputs differ"
fi
[ -z "$xcpd_reason" ] || echo "  xcpd: $xcpd_reason"
if [ -n "$lv_reason" ]; then
    echo "  libvirt: $lv_reason"
elif [ ! -s "$work/t-list-virsh" ]; then
    echo "  libvirt: virsh not installed (libvirt-clients) or it failed"
fi
echo
echo "load $(loadavg) at end"
if [ "$fail" = 1 ]; then
    echo "bench_rpc.sh: xcpd answered errors (see above)" >&2
    exit 1
fi
exit 0
