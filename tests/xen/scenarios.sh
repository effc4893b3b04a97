#!/bin/bash
# tests/xen/scenarios.sh - the XAPI way on real Xen, run in the lab's dom0
# (tools/xen-lab, `make check-xen`): xe, embedded and then through xcpd's
# unix socket, installs a VM from a template, sets it up for PV direct boot
# as XAPI users do, and drives it through its life while the guest's
# console shows it reacting. Each scenario prints "PASS name" or
# "FAIL name: reason"; the run ends with "N passed, M failed" and exits 0
# only if all passed. Results go to $XCP_LAB_OUT (default
# /host/results.txt, the host's 9p share) as well as stdout.
#
# Which scenarios run: $XCP_LAB_SET, or xcplab_set= on the kernel command
# line ('+'-separated names or groups), default "all". Groups: pv (the PV
# life cycle, the CI slice), devices (disks, NICs, bridges, CDs, hot-plug),
# hvm (PVH and HVM guests, an HVM guest booted from an ISO with its RFB
# console read by the host), contract, timing, behind (a pause behind the
# toolstack's back, which Xen signals to no one), guest (the console and
# the guest agent's data), remote (xe -s from the host, outside dom0, with
# tools/xen-lab/remote), reattach (kill -9 of xcpd while the guest lives
# on, or shuts down, reboots or crashes itself, or is paused, unpaused or
# destroyed with xl, and nothing of its dead domains is left), leaks
# (starts that fail leave nothing behind; no_leaks, in pv, checks the end
# of the run).
set -u
export XCP_HV=xen
export XCP_STATE_DIR=${XCP_STATE_DIR:-/var/lib/xcp}
GUEST=/boot/guest
CONS=/var/log/xen/console
OUT=${XCP_LAB_OUT:-/host/results.txt}
[ -d "$(dirname "$OUT")" ] && [ -w "$(dirname "$OUT")" ] || OUT=/tmp/results.txt
: >"$OUT"
TMO=${XCP_LAB_TMO:-300} # per xe call; the host may be loaded
MARK="XCPGUEST: userspace up"
SET=${XCP_LAB_SET:-$(sed -n 's/.*xcplab_set=\([^ ]*\).*/\1/p' /proc/cmdline)}
SET=" $(echo "${SET:-all}" | tr '+' ' ') "
# libxl's messages in xcpd's log from this level on (xcplab_xenlog=debug
# on the kernel command line: K_EXTRA of tools/xen-lab/boot)
XCP_XEN_LOG_LEVEL=${XCP_XEN_LOG_LEVEL:-$(sed -n \
    's/.*xcplab_xenlog=\([^ ]*\).*/\1/p' /proc/cmdline)}
export XCP_XEN_LOG_LEVEL
npass=0
nfail=0
why=""
VM=""

up() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }'; }
note() { echo "$*" | tee -a "$OUT"; }
# The failure reason; also in a file, as subshells ($(...)) lose variables.
bad() {
    why="$*"
    echo "$why" >/tmp/why
    return 1
}

# xe with a bound; its stderr is kept for the failure reason.
x() {
    local out rc
    out=$(timeout "$TMO" xe "$@" 2>/tmp/xe.err)
    rc=$?
    if [ $rc -ne 0 ]; then
        bad "xe $1 failed (rc $rc): $(tr '\n' ' ' </tmp/xe.err | cut -c1-600)"
        return 1
    fi
    [ -n "$out" ] && echo "$out"
    return 0
}

param() { x vm-param-get uuid="$1" param-name="$2"; }

# Waits up to $3 s (of dom0 uptime: each xe call may take seconds on a
# loaded host) until VM $1's power state is $2.
wait_power() {
    local t0 s
    t0=$(up)
    while :; do
        s=$(param "$1" power-state) && [ "$s" = "$2" ] && return 0
        awk -v a="$t0" -v b="$(up)" -v l="$3" 'BEGIN { exit !(b - a > l) }' &&
            break
        sleep 0.1
    done
    bad "power-state is '${s:-?}', not $2 after $3 s"
}

# Waits up to $4 s until VM $1's parameter $2 reads $3 (a figure the guest
# has to act on first, such as the vCPUs it brings online).
wait_param() {
    local t0 v
    t0=$(up)
    while :; do
        v=$(param "$1" "$2") && [ "$v" = "$3" ] && return 0
        awk -v a="$t0" -v b="$(up)" -v l="$4" 'BEGIN { exit !(b - a > l) }' &&
            break
        sleep 0.2
    done
    bad "$2 is '${v:-?}', not $3 after $4 s"
}

# Waits up to $3 s for pattern $2 in file $1.
wait_file() {
    local i=0
    while [ $i -lt $(($3 * 5)) ]; do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

# Console log of VM $1 (domains are named after the VM uuid).
clog() { echo "$CONS/guest-$1.log"; }
lines() { cat "$(clog "$1")" 2>/dev/null | wc -l; }

# Waits up to $3 s for pattern $2 in VM $1's console after line $4.
wait_console() {
    local i=0
    while [ $i -lt $(($3 * 5)) ]; do
        tail -n +"$(($4 + 1))" "$(clog "$1")" 2>/dev/null | grep -q "$2" &&
            return 0
        sleep 0.2
        i=$((i + 1))
    done
    bad "no '$2' on the guest console within $3 s"
}

# Waits up to $4 s for a "XCPGUEST: $2 ..." line of VM $1's console after
# line $5 that no longer lists device $3 (console lines end in \r).
wait_gone() {
    local i=0
    while [ $i -lt $(($4 * 5)) ]; do
        tail -n +"$(($5 + 1))" "$(clog "$1")" 2>/dev/null |
            grep "XCPGUEST: $2 " | grep -qv "$3" && return 0
        sleep 0.2
        i=$((i + 1))
    done
    bad "the guest still lists $3 in its $2 after $4 s"
}

# What QEMU (VM $1's device model) and libxl said at its start.
dm_story() {
    echo "---- /var/log/xen/qemu-dm-$1.log"
    tail -n 30 "/var/log/xen/qemu-dm-$1.log" 2>/dev/null
    echo "---- libxl in xcpd's log"
    grep 'libxl' /tmp/xcpd.log 2>/dev/null | tail -n 120
}

# vm-start of VM $1. libxl gives QEMU (qdisk, HVM) 10 s for its QMP
# set-up, which a host loaded by several TCG labs can miss: the driver
# then builds the domain again (XCP_XEN_DM_START_TRIES, hv/xen/xen_dm.h);
# when every try missed, QEMU's and libxl's words are shown.
vm_start() {
    x vm-start uuid="$1" && return 0
    case $why in *"device model did not start"*) dm_story "$1" >&2 ;; esac
    return 1
}

# Starts VM $1 and waits for the guest's userspace; $2 names the timing.
start_guest() {
    local n t0
    n=$(lines "$1")
    t0=$(up)
    vm_start "$1" || return 1
    echo "TIMING ${2:-vm-start} xe=$(since "$t0")s"
    wait_console "$1" "$MARK" 240 "$n" || return 1
    echo "TIMING ${2:-vm-start} to-userspace=$(since "$t0")s"
}

ensure_running() {
    local s
    s=$(param "$1" power-state) || return 1
    case $s in
    running) return 0 ;;
    paused) x vm-unpause uuid="$1" ;;
    suspended) x vm-resume uuid="$1" ;;
    *) start_guest "$1" ;;
    esac
}

ensure_halted() {
    local s
    s=$(param "$1" power-state) || return 1
    case $s in
    halted) return 0 ;;
    suspended) x vm-resume uuid="$1" && x vm-shutdown uuid="$1" --force ;;
    *) x vm-shutdown uuid="$1" --force ;;
    esac
}

# Runs scenario $1 (function sc_$1) if the set names it or one of its
# groups ($2...).
run() {
    local name=$1 g hit=0 t0
    shift
    for g in all "$name" "$@"; do
        case $SET in *" $g "*) hit=1 ;; esac
    done
    [ $hit = 1 ] || return 0
    why=""
    : >/tmp/why
    t0=$(up)
    echo "---- $name"
    if "sc_$name"; then
        note "PASS $name ($(since "$t0") s)"
        npass=$((npass + 1))
    else
        [ -n "$why" ] || why=$(cat /tmp/why)
        note "FAIL $name: ${why:-failed}"
        nfail=$((nfail + 1))
    fi
}

# ---- the scenarios ---------------------------------------------------------

sc_xen_up() {
    xl info >/tmp/xlinfo || bad "xl info failed"
    grep -q '^xen_major *: *4' /tmp/xlinfo || bad "not Xen 4"
}

# A VM for PV direct boot, the XAPI way: template, no disks, no HVM boot.
make_pv_vm() {
    local vm v
    vm=$(x vm-install template="Other install media" new-name-label="$1") ||
        return 1
    for v in $(x vbd-list vm-uuid="$vm" type=Disk params=vdi-uuid --minimal |
        tr ',' ' '); do
        x vdi-destroy uuid="$v" || return 1
    done
    for v in $(x vbd-list vm-uuid="$vm" --minimal | tr ',' ' '); do
        x vbd-destroy uuid="$v" || return 1
    done
    x vm-param-set uuid="$vm" HVM-boot-policy="" PV-kernel="$GUEST/vmlinux" \
        PV-ramdisk="$GUEST/initrd.gz" PV-args="console=hvc0 quiet" ||
        return 1
    echo "$vm"
}

# Clearing HVM-boot-policy makes the VM PV, as XAPI derives one from the
# other (the policy work of the sim-xapi branch). The scenario still sets
# domain-type itself afterwards, as a user may, so the rest can go on.
sc_install_pv() {
    VM=$(make_pv_vm lab-pv) || return 1
    [ -z "$(x vbd-list vm-uuid="$VM" --minimal)" ] || bad "VBDs remain"
}

sc_derive_domain_type() {
    local t
    t=$(param "$VM" domain-type) || return 1
    x vm-param-set uuid="$VM" domain-type=pv || return 1
    [ "$t" = pv ] || bad "domain-type is '$t' after HVM-boot-policy=\"\""
}

sc_memory_limits_set() {
    local rc=0
    x vm-memory-limits-set uuid="$VM" static-min=128MiB dynamic-min=128MiB \
        dynamic-max=160MiB static-max=192MiB || rc=1
    if [ $rc = 1 ]; then # the fallback keeps the other scenarios going
        local w=$why
        x vm-param-set uuid="$VM" memory-static-max=201326592 \
            memory-dynamic-max=167772160 memory-dynamic-min=134217728 \
            memory-static-min=134217728
        why=$w
        return 1
    fi
    [ "$(param "$VM" memory-dynamic-max)" = 167772160 ] ||
        bad "memory-dynamic-max is not 160 MiB"
}

sc_vcpus_set() {
    x vm-param-set uuid="$VM" VCPUs-max=2 VCPUs-at-startup=1 || return 1
    [ "$(param "$VM" VCPUs-max)" = 2 ] || bad "VCPUs-max did not stick"
}

sc_embedded_start() {
    [ ! -S "$XCP_STATE_DIR/xapi" ] || bad "xcpd is running already"
    start_guest "$VM" embedded-vm-start || return 1
    wait_power "$VM" running 5
}

sc_embedded_hard_shutdown() {
    x vm-shutdown uuid="$VM" --force || return 1
    wait_power "$VM" halted 5
}

XCPD_PID=""
# on the lab's network too, as XAPI listens (80, and 443 with TLS), when
# the lab gave it users to log in (the remote group's `xe -s` from outside)
XCPD_ARGS=""
[ -f /etc/xcp/users ] && XCPD_ARGS="--listen 0.0.0.0:80 --tls-listen 0.0.0.0:443
    --auth-file /etc/xcp/users"
sc_xcpd_up() {
    local t0 n
    # a restart (reattach) finds the socket a killed xcpd left: wait for
    # this one's "ready" (which may follow a guest's restart: up to 300 s
    # on a loaded host)
    n=$(grep -c '^xcpd: ready$' /tmp/xcpd.log 2>/dev/null)
    # shellcheck disable=SC2086
    xcpd $XCPD_ARGS >>/tmp/xcpd.log 2>&1 &
    XCPD_PID=$!
    t0=$(up)
    while [ "$(grep -c '^xcpd: ready$' /tmp/xcpd.log)" -le "${n:-0}" ]; do
        kill -0 $XCPD_PID 2>/dev/null ||
            bad "xcpd exited: $(tail -3 /tmp/xcpd.log)" || return 1
        awk -v a="$t0" -v b="$(up)" 'BEGIN { exit !(b - a > 300) }' &&
            { bad "xcpd not ready after 300 s"; return 1; }
        sleep 0.1
    done
    echo "TIMING xcpd-ready=$(since "$t0")s"
    x vm-list params=uuid >/dev/null
}

sc_start() {
    start_guest "$VM" xcpd-vm-start || return 1
    wait_power "$VM" running 5
}

sc_xl_create_timing() {
    local t0 n
    cat >/tmp/xl.cfg <<EOF
name = "xl-timing"
type = "pv"
kernel = "$GUEST/vmlinux"
ramdisk = "$GUEST/initrd.gz"
extra = "console=hvc0 quiet"
memory = 160
maxmem = 192
vcpus = 1
maxvcpus = 2
EOF
    n=$(lines xl-timing)
    t0=$(up)
    xl create /tmp/xl.cfg >/tmp/xl.out 2>&1 || bad "xl create: $(cat /tmp/xl.out)"
    echo "TIMING xl-create=$(since "$t0")s"
    wait_console xl-timing "$MARK" 240 "$n" || return 1
    echo "TIMING xl-create to-userspace=$(since "$t0")s"
    xl destroy xl-timing
}

sc_pause_unpause() {
    local d
    ensure_running "$VM" || return 1
    x vm-pause uuid="$VM" || return 1
    wait_power "$VM" paused 5 || return 1
    d=$(param "$VM" dom-id) || return 1
    xl list "$d" | tail -1 | awk '{print $5}' | grep -q p ||
        bad "Xen does not have domain $d paused"  || return 1
    x vm-unpause uuid="$VM" || return 1
    wait_power "$VM" running 5
}

sc_clean_shutdown() {
    local n
    ensure_running "$VM" || return 1
    n=$(lines "$VM")
    x vm-shutdown uuid="$VM" || return 1
    wait_power "$VM" halted 10 || return 1
    wait_console "$VM" "XCPGUEST: poweroff" 5 "$n" ||
        bad "halted, but the guest never ran /sbin/poweroff"
}

sc_start_again() {
    ensure_halted "$VM" || return 1
    start_guest "$VM" start-again
}

# reboots and checks for a new domain and a new userspace marker
reboot_with() {
    local n d0 d1
    ensure_running "$VM" || return 1
    d0=$(param "$VM" dom-id) || return 1
    n=$(lines "$VM")
    x vm-reboot uuid="$VM" "$@" || return 1
    wait_console "$VM" "$MARK" 240 "$n" || return 1
    wait_power "$VM" running 5 || return 1
    d1=$(param "$VM" dom-id) || return 1
    [ "$d0" != "$d1" ] || bad "still domain $d0 after the reboot"
}

sc_clean_reboot() { reboot_with; }
sc_hard_reboot() { reboot_with --force; }

sc_suspend_resume() {
    local n
    ensure_running "$VM" || return 1
    x vm-suspend uuid="$VM" || return 1
    wait_power "$VM" suspended 5 || return 1
    [ -z "$(xl list | awk -v u="$VM" '$1 == u')" ] ||
        bad "the domain is still there after suspend" || return 1
    n=$(lines "$VM")
    x vm-resume uuid="$VM" || return 1
    wait_power "$VM" running 5 || return 1
    wait_console "$VM" "XCPGUEST: alive" 40 "$n" ||
        bad "the guest did not go on after resume"
}

sc_memory_dynamic_range_set() {
    ensure_running "$VM" || return 1
    x vm-memory-dynamic-range-set uuid="$VM" min=128MiB max=144MiB ||
        return 1
    [ "$(param "$VM" memory-dynamic-max)" = 150994944 ] ||
        bad "memory-dynamic-max is not 144 MiB"
}

sc_vcpus_number_live() {
    ensure_running "$VM" || return 1
    x vm-vcpu-hotplug uuid="$VM" new-vcpus=2 || return 1
    # VM_metrics say what Xen reports: the vCPU counts once the guest has
    # brought it online
    wait_param "$VM" VCPUs-number 2 20
}

sc_hard_shutdown() {
    ensure_running "$VM" || return 1
    x vm-shutdown uuid="$VM" --force || return 1
    wait_power "$VM" halted 5
}

# Behind the toolstack's back: power_state follows within a second (5 s
# here, for a loaded host; the time from xl's return to the first xe call
# that shows it, xe's own start-up included, is printed).
behind_back() { # $1=xl command, $2=state expected
    local d t0
    ensure_running "$VM" || return 1
    d=$(param "$VM" dom-id) || return 1
    xl "$1" "$d" || bad "xl $1 $d failed" || return 1
    t0=$(up)
    wait_power "$VM" "$2" 5 || return 1
    echo "TIMING xl-$1-noticed=$(since "$t0")s"
}

# Xen raises no event for a pause (no VIRQ, nothing in xenstore): this
# one shows whether the toolstack notices anyway.
sc_xl_pause_noticed() {
    local rc=0
    behind_back pause paused || rc=1
    xl unpause "$(param "$VM" dom-id)"
    [ $rc = 0 ] && wait_power "$VM" running 5
}
sc_xl_destroy_noticed() { behind_back destroy halted; }

# ---- guest: consoles and the guest agent

# Waits up to $4 s until VM $1's parameter $2 matches the grep -E pattern
# $3; prints the time it took.
wait_match() {
    local t0 v
    t0=$(up)
    while :; do
        v=$(param "$1" "$2") && echo "$v" | grep -Eq "$3" &&
            echo "TIMING $2 ~ $3 after $(since "$t0")s" && return 0
        awk -v a="$t0" -v b="$(up)" -v l="$4" 'BEGIN { exit !(b - a > l) }' &&
            break
        sleep 0.2
    done
    bad "$2 is '${v:-?}', no match for '$3' after $4 s"
}

# `xe console` types a command into the running guest's console (a shell
# on hvc0) and shows its output: through the engine's driver when run
# embedded, through xcpd's CONNECT /console on the socket when xcpd runs.
# The VM has a vt100 console record. The one `xe console` session types
# the line again, up to 8 times, until the shell's answer (which only
# running it prints: the line itself says $((6 * 7))) has come back: a
# guest just booted on a loaded host may not have its shell's prompt up
# yet (busybox's ash swallows what comes before its terminal query is
# answered), and a fixed schedule of tries missed it once in the CI slice.
CON_WANT="XCPGUEST: console 42"
console_types() {
    local p n out=/tmp/console.out fifo=/tmp/console.in pid rc=0
    ensure_running "$VM" || return 1
    p=$(x console-list vm-uuid="$VM" params=protocol --minimal) || return 1
    echo "$p" | grep -qi vt100 || bad "no vt100 console record: '$p'" ||
        return 1
    rm -f "$fifo"
    mkfifo "$fifo" || bad "mkfifo $fifo failed" || return 1
    : >"$out"
    timeout "$TMO" xe console uuid="$VM" <"$fifo" >"$out" 2>/tmp/xe.err &
    pid=$!
    exec 7>"$fifo"
    for n in 1 2 3 4 5 6 7 8; do
        sleep 2
        # (a subshell: a write to a pipe whose reader is gone kills)
        kill -0 "$pid" 2>/dev/null &&
            (echo 'echo "XCPGUEST: console $((6 * 7))"' >&7) 2>/dev/null ||
            break # xe console ended
        wait_file "$out" "$CON_WANT" 15 && break
    done
    exec 7>&-
    wait "$pid" || rc=$?
    rm -f "$fifo"
    tail -5 "$out"
    echo "typed $n time(s)"
    if grep -q "$CON_WANT" "$out"; then
        return 0
    fi
    [ "$rc" = 0 ] || bad "xe console failed (rc $rc): $(tr '\n' ' ' \
        </tmp/xe.err | cut -c1-300)" || return 1
    bad "the console did not run the typed command ($n tries): $(tr '\n' \
        ' ' <"$out" | cut -c1-300)"
}
sc_embedded_console() { console_types; }
sc_console() { console_types; }

# The guest's agent (domU-init) writes its OS, tools version and the
# address of its NIC into xenstore; the driver's watch brings them into
# VM_guest_metrics, and a later change (dom0 asks the guest for another
# address) comes the same way.
sc_guest_agent() {
    local vm net d rc=0
    vm=$(make_pv_vm lab-agent) || return 1
    x vm-param-set uuid="$vm" domain-type=pv memory-static-max=201326592 \
        memory-dynamic-max=167772160 memory-dynamic-min=134217728 \
        memory-static-min=134217728 || return 1
    net=$(x network-create name-label=lab-agent-net) || return 1
    x vif-create vm-uuid="$vm" network-uuid="$net" device=0 \
        mac=02:16:3e:00:00:02 >/dev/null || return 1
    start_guest "$vm" agent-vm-start || rc=1
    [ $rc = 0 ] && wait_match "$vm" networks '0/ip: 10\.0\.77\.2' 60 || rc=1
    [ $rc = 0 ] &&
        wait_match "$vm" os-version 'name: XCP-lab-busybox-guest' 10 || rc=1
    [ $rc = 0 ] && wait_match "$vm" PV-drivers-version 'major: 8' 10 || rc=1
    if [ $rc = 0 ]; then
        d=$(param "$vm" dom-id) &&
            xenstore-write "/local/domain/$d/control/xcp-lab-ip" 10.0.77.9 &&
            wait_match "$vm" networks '0/ipv4/0: 10\.0\.77\.9' 30 || rc=1
    fi
    param "$vm" networks
    param "$vm" memory
    local w=$why
    x vm-uninstall uuid="$vm" --force >/dev/null
    x network-destroy uuid="$net"
    why=$w
    [ $rc = 0 ]
}

# A libxl failure reaches the caller as a XenAPI error with libxl's words.
sc_libxl_error_surfaces() {
    local vm
    echo "not a kernel" >"$GUEST/broken-kernel"
    vm=$(make_pv_vm lab-broken) || return 1
    x vm-param-set uuid="$vm" domain-type=pv PV-kernel="$GUEST/broken-kernel" ||
        return 1
    if x vm-start uuid="$vm"; then
        bad "a VM with a broken kernel started"
        return 1
    fi
    echo "error: $why"
    x vm-uninstall uuid="$vm" --force >/dev/null
    case $why in
    *xc_dom*|*kernel*|*loader*|*ELF*|*elf*) ;;
    *) bad "the error does not say what libxl said: $why"; return 1 ;;
    esac
    ! xl list | grep -q lab-broken || bad "a half-built domain was left"
}

sc_disk_vm() {
    local sr vdi
    ensure_halted "$VM" || return 1
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    [ -n "$sr" ] || bad "no file SR" || return 1
    vdi=$(x vdi-create sr-uuid="$sr" name-label=lab-disk \
        virtual-size=67108864) || return 1
    x vbd-create vm-uuid="$VM" vdi-uuid="$vdi" device=0 type=Disk \
        mode=RW >/dev/null || return 1
    start_guest "$VM" disk-vm-start || return 1
    wait_console "$VM" "XCPGUEST: disks.*xvda" 10 0 ||
        bad "the guest sees no xvda"
}

sc_vif_vm() {
    local net br d
    ensure_halted "$VM" || return 1
    net=$(x network-create name-label=lab-net) || return 1
    br=$(x network-param-get uuid="$net" param-name=bridge) || return 1
    x vif-create vm-uuid="$VM" network-uuid="$net" device=0 \
        mac=02:16:3e:00:00:01 >/dev/null || return 1
    start_guest "$VM" vif-vm-start || return 1
    wait_console "$VM" "XCPGUEST: nics.*eth0" 10 0 ||
        bad "the guest sees no eth0" || return 1
    d=$(param "$VM" dom-id) || return 1
    ip link show "$br" >/dev/null 2>&1 || bad "no bridge $br in dom0" ||
        return 1
    [ -e "/sys/class/net/$br/brif/vif$d.0" ] ||
        bad "vif$d.0 is not on $br" || return 1
    grep -q 02:16:3e:00:00:01 /sys/class/net/eth0/address 2>/dev/null ||
        xenstore-read "/local/domain/0/backend/vif/$d/0/mac" | grep -q 02:16:3e:00:00:01 ||
        bad "the VIF's MAC is not 02:16:3e:00:00:01"
}

# Localhost live migration (VM.pool_migrate to its own host, as `xl migrate
# localhost`) of a PV guest with a disk and a VIF: it runs on in a new
# domain (xenconsoled logs it under the "--incoming" name it was born
# with), with its devices, and leaves exactly one domain behind.
sc_migrate_local() {
    local vm sr vdi net br d0 d1 t0 n
    vm=$(make_pv_vm lab-migrate) || return 1
    x vm-param-set uuid="$vm" domain-type=pv || return 1
    x vm-memory-limits-set uuid="$vm" static-min=96MiB dynamic-min=96MiB \
        dynamic-max=96MiB static-max=96MiB || return 1
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    vdi=$(x vdi-create sr-uuid="$sr" name-label=lab-migrate-disk \
        virtual-size=16777216) || return 1
    x vbd-create vm-uuid="$vm" vdi-uuid="$vdi" device=0 type=Disk \
        mode=RW >/dev/null || return 1
    net=$(x network-create name-label=lab-migrate-net) || return 1
    br=$(x network-param-get uuid="$net" param-name=bridge) || return 1
    x vif-create vm-uuid="$vm" network-uuid="$net" device=0 \
        mac=02:16:3e:00:00:02 >/dev/null || return 1
    start_guest "$vm" migrate-vm-start || return 1
    wait_console "$vm" "XCPGUEST: nics.*eth0" 10 0 || return 1
    d0=$(param "$vm" dom-id) || return 1
    n=$(lines "$vm")
    t0=$(up)
    x vm-migrate uuid="$vm" host="$(x host-list --minimal)" live=true ||
        return 1
    echo "TIMING vm-migrate xe=$(since "$t0")s"
    wait_power "$vm" running 5 || return 1
    d1=$(param "$vm" dom-id) || return 1
    [ "$d1" != "$d0" ] || bad "still domain $d0 after the migration" ||
        return 1
    [ "$(xl list | awk -v u="$vm" 'index($1, u) == 1' | wc -l)" = 1 ] ||
        bad "xl list: $(xl list | grep "$vm" | tr '\n' ' ')" || return 1
    xl list "$d1" | tail -1 | awk -v u="$vm" '$1 != u { exit 1 }' ||
        bad "domain $d1 is not named $vm" || return 1
    [ -e "/sys/class/net/$br/brif/vif$d1.0" ] ||
        bad "vif$d1.0 is not on $br" || return 1
    xenstore-exists "/local/domain/0/backend/qdisk/$d1" ||
        xenstore-exists "/local/domain/0/backend/vbd/$d1" ||
        bad "domain $d1 has no disk back end" || return 1
    # the guest goes on: its heartbeat, in whichever log xenconsoled keeps
    local i=0
    while [ $i -lt 200 ]; do
        { tail -n +"$((n + 1))" "$(clog "$vm")"
          cat "$CONS/guest-$vm--incoming.log"; } 2>/dev/null |
            grep -q "XCPGUEST: alive" && break
        sleep 0.2
        i=$((i + 1))
    done
    if [ $i -ge 200 ]; then
        echo "guest console (last lines):"
        { cat "$(clog "$vm")"; cat "$CONS/guest-$vm--incoming.log"; } \
            2>/dev/null | tail -15
        bad "no heartbeat from the guest after migrating"
        return 1
    fi
    MVM=$vm # for migrate_local_rollback
}

# A localhost migration that fails (here the name the receiving domain is
# built under, "<name>--incoming", is taken) is VM_MIGRATE_FAILED with
# libxl's reason, and is undone: the guest runs on in the same domain under
# its own name, and no receiving or "--migratedaway" domain is left.
MVM=""
sc_migrate_local_rollback() {
    local vm=$MVM d0 d1 n n2 i=0
    [ -n "$vm" ] || bad "no VM left by migrate_local" || return 1
    ensure_running "$vm" || return 1
    d0=$(param "$vm" dom-id) || return 1
    printf 'name = "%s--incoming"\ntype = "pv"\nkernel = "%s"\nmemory = 96\n' \
        "$vm" "$GUEST/vmlinux" >/tmp/squat.cfg
    xl create -p /tmp/squat.cfg >/tmp/xl.out 2>&1 ||
        bad "xl create: $(cat /tmp/xl.out)" || return 1
    # after migrate_local the guest's console log is the "--incoming" one
    n=$(lines "$vm")
    n2=$(cat "$CONS/guest-$vm--incoming.log" 2>/dev/null | wc -l)
    if x vm-migrate uuid="$vm" host="$(x host-list --minimal)" live=true
    then
        xl destroy "$vm--incoming"
        bad "the migration succeeded with its receiver's name taken"
        return 1
    fi
    echo "error: $why"
    xl destroy "$vm--incoming"
    case $why in
    *"migration process"*exist*) ;;
    *) bad "not VM_MIGRATE_FAILED with libxl's reason: $why"; return 1 ;;
    esac
    wait_power "$vm" running 5 || return 1
    d1=$(param "$vm" dom-id) || return 1
    [ "$d1" = "$d0" ] || bad "domain $d0 became $d1" || return 1
    [ "$(xl list | awk -v u="$vm" 'index($1, u) == 1 { print $1 }')" = \
        "$vm" ] || bad "xl list: $(xl list | grep "$vm" | tr '\n' ' ')" ||
        return 1
    while [ $i -lt 200 ]; do
        { tail -n +"$((n + 1))" "$(clog "$vm")"
          tail -n +"$((n2 + 1))" "$CONS/guest-$vm--incoming.log"; } \
            2>/dev/null | grep -q "XCPGUEST: alive" && break
        sleep 0.2
        i=$((i + 1))
    done
    [ $i -lt 200 ] || bad "no heartbeat from the guest after the failure" ||
        return 1
    x vm-shutdown uuid="$vm" --force && x vm-uninstall uuid="$vm" --force \
        >/dev/null
}

# ---- devices: what the guest's /init reports of them (domU-init) -------

# Backend entries of domain $1's devices of kind $2 (vbd, vif), sorted.
fe_devs() { xenstore-list "/local/domain/$1/device/$2" 2>/dev/null | sort | tr '\n' ' '; }

# A network of its own with MTU 1400: the VIF made on it takes the
# network's MTU (as XAPI derives it); dom0's vif port has it (the back
# end's mtu key, which netback applies) and the guest is offered it in
# the front end's mtu key (libxl writes it, as xenopsd does; Linux's
# netfront ignores it: the lab guest applies it itself, as PV drivers
# that read it do); the guest's eth0 has the VIF's MAC and MTU and
# answers a ping from dom0 over the bridge, full-sized packets too.
NET2="" BR2=""
sc_vif_mtu_ping() {
    local v d
    ensure_halted "$VM" || return 1
    NET2=$(x network-create name-label=lab-mtu MTU=1400) || return 1
    BR2=$(x network-param-get uuid="$NET2" param-name=bridge) || return 1
    for v in $(x vif-list vm-uuid="$VM" --minimal | tr ',' ' '); do
        x vif-destroy uuid="$v" || return 1
    done
    v=$(x vif-create vm-uuid="$VM" network-uuid="$NET2" device=0 \
        mac=02:16:3e:00:00:02) || return 1
    [ "$(x vif-param-get uuid="$v" param-name=MTU)" = 1400 ] ||
        bad "the VIF's MTU is not the network's 1400" || return 1
    x vm-param-set uuid="$VM" \
        PV-args="console=hvc0 quiet xcpip=10.77.0.2/24" || return 1
    start_guest "$VM" vif-mtu-start || return 1
    wait_console "$VM" "XCPGUEST: nic eth0 mac=02:16:3e:00:00:02" 30 0 ||
        return 1
    d=$(param "$VM" dom-id) || return 1
    [ "$(xenstore-read "/local/domain/0/backend/vif/$d/0/mtu")" = 1400 ] ||
        bad "the back end does not have MTU 1400" || return 1
    [ "$(xenstore-read "/local/domain/$d/device/vif/0/mtu")" = 1400 ] ||
        bad "the guest is not offered MTU 1400 (device/vif/0/mtu)" ||
        return 1
    wait_console "$VM" "XCPGUEST: nic eth0 mac=02:16:3e:00:00:02 mtu=1400" \
        30 0 || { grep "XCPGUEST: nic eth0" "$(clog "$VM")" | tail -1
        return 1; }
    [ "$(cat "/sys/class/net/vif$d.0/mtu")" = 1400 ] ||
        bad "dom0's vif$d.0 has MTU $(cat "/sys/class/net/vif$d.0/mtu")" ||
        return 1
    [ -e "/sys/class/net/$BR2/brif/vif$d.0" ] ||
        bad "vif$d.0 is not on $BR2" || return 1
    ip addr add 10.77.0.1/24 dev "$BR2" 2>/dev/null
    ping -c 3 -W 5 10.77.0.2 >/tmp/ping.out 2>&1 ||
        bad "no answer from the guest: $(tail -2 /tmp/ping.out | tr '\n' ' ')" ||
        return 1
    # 1372 bytes of data + 28 of headers: a packet of the whole MTU
    ping -c 2 -W 5 -s 1372 10.77.0.2 >/tmp/ping.out 2>&1 ||
        bad "no answer to 1400-byte packets: $(tail -2 /tmp/ping.out |
            tr '\n' ' ')"
}

# VIF.plug/unplug on the running guest: eth1 appears with its network's
# MTU, joins its bridge, and goes again.
sc_vif_hotplug() {
    local v d n
    ensure_running "$VM" || return 1
    d=$(param "$VM" dom-id) || return 1
    v=$(x vif-create vm-uuid="$VM" network-uuid="$NET2" device=1 \
        mac=02:16:3e:00:00:03) || return 1
    n=$(lines "$VM")
    x vif-plug uuid="$v" || return 1
    # with its network's MTU, on both ends
    wait_console "$VM" "XCPGUEST: nic eth1 mac=02:16:3e:00:00:03 mtu=1400" \
        60 "$n" || return 1
    [ -e "/sys/class/net/$BR2/brif/vif$d.1" ] ||
        bad "vif$d.1 is not on $BR2" || return 1
    [ "$(cat "/sys/class/net/vif$d.1/mtu")" = 1400 ] ||
        bad "dom0's vif$d.1 has MTU $(cat "/sys/class/net/vif$d.1/mtu")" ||
        return 1
    n=$(lines "$VM")
    x vif-unplug uuid="$v" || return 1
    wait_gone "$VM" nics eth1 60 "$n" || return 1
    [ ! -e "/sys/class/net/$BR2/brif/vif$d.1" ] ||
        bad "vif$d.1 is still on $BR2" || return 1
    x vif-destroy uuid="$v"
}

# A VIF on a network whose bridge cannot be made (its "bridge" is dom0's
# lo, no bridge): VIF.plug fails BRIDGE_NOT_AVAILABLE [lo], as XAPI's,
# not INTERNAL_ERROR with the words of libxl's hot-plug script; nothing is
# plugged.
sc_vif_bridge_not_available() {
    local net v d rc=0
    ensure_running "$VM" || return 1
    d=$(param "$VM" dom-id) || return 1
    net=$(x network-create name-label=lab-lo bridge=lo) || return 1
    v=$(x vif-create vm-uuid="$VM" network-uuid="$net" device=5 \
        mac=02:16:3e:00:00:05) || return 1
    if x vif-plug uuid="$v"; then
        bad "the VIF was plugged into lo" || rc=1
    else
        echo "error: $why"
        case $why in
        *"Could not find bridge"*"bridge: lo"*) why="" ;;
        *) bad "not BRIDGE_NOT_AVAILABLE [lo]: $why"; rc=1 ;;
        esac
    fi
    [ ! -e "/sys/class/net/vif$d.5" ] || bad "vif$d.5 was made" || rc=1
    local w=$why
    x vif-unplug uuid="$v" --force >/dev/null 2>&1
    x vif-destroy uuid="$v" && x network-destroy uuid="$net" || rc=1
    why=$w
    [ $rc = 0 ] || bad "${why:-cleaning up failed}"
}

# A new disk on a running guest: $1=device (slot), $2=mode, $3=what the
# guest must report for it; unplugged again afterwards (unplug_disk).
HOT_VBD="" HOT_DEV=""
hotplug_disk() {
    local sr vdi vbd n dev
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    # $4: a VDI of the caller's, else a new one of 16 MiB
    vdi=${4:-$(x vdi-create sr-uuid="$sr" name-label="lab-hot$1" \
        virtual-size=16777216)} || return 1
    vbd=$(x vbd-create vm-uuid="$VM" vdi-uuid="$vdi" device="$1" type=Disk \
        mode="$2") || return 1
    dev=xvd$(echo abcdefgh | cut -c$(($1 + 1)))
    n=$(lines "$VM")
    x vbd-plug uuid="$vbd" || return 1
    if ! wait_console "$VM" "XCPGUEST: disk $dev $3" 60 "$n"; then
        # what the guest and the back end say, for the log
        tail -n +"$((n + 1))" "$(clog "$VM")" | grep XCPGUEST | tail -5
        xenstore-ls -f "/local/domain/$(param "$VM" dom-id)/device/vbd" |
            grep -E '/state|backend ' | head -8
        tail -n 5 /var/log/xen/qemu-dm-"$VM"*.log 2>/dev/null
        # a disk nothing serves stays out of the scenarios after this one
        # (a guest booted with it waits for it)
        local w=$why
        x vbd-unplug uuid="$vbd" force=true >/dev/null
        x vbd-destroy uuid="$vbd"
        why=$w
        return 1
    fi
    HOT_VBD=$vbd
    HOT_DEV=$dev
}

# Unplugs VBD $1 (guest device $2), waits until the guest no longer has
# it, and destroys the VBD (its slot is free for the next scenario).
unplug_disk() {
    local n
    n=$(lines "$VM")
    x vbd-unplug uuid="$1" || return 1
    wait_gone "$VM" disks "$2" 60 "$n" || return 1
    x vbd-destroy uuid="$1"
}

sc_vbd_hotplug() {
    ensure_running "$VM" || return 1
    hotplug_disk 1 RW "ro=0 removable=0 write=ok" || return 1
    unplug_disk "$HOT_VBD" "$HOT_DEV"
}

# A read-only disk of the file SR (qcow2; the API makes no raw VDIs): QEMU's
# qdisk back end (Debian 12's QEMU 7.2) cannot open a read-only qcow2 or
# VHD image ("Block node is read-only"), so VBD.plug refuses it with that
# reason instead of plugging a disk the guest never sees. (A read-only
# device the guest does see: the CD of sc_cd, a raw ISO through blkback.)
sc_vbd_readonly() {
    local sr vdi vbd
    ensure_running "$VM" || return 1
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    vdi=$(x vdi-create sr-uuid="$sr" name-label=lab-ro-qcow2 \
        virtual-size=16777216) || return 1
    vbd=$(x vbd-create vm-uuid="$VM" vdi-uuid="$vdi" device=2 type=Disk \
        mode=RO) || return 1
    if x vbd-plug uuid="$vbd"; then
        bad "a read-only qcow2 disk was plugged"
        return 1
    fi
    echo "error: $why"
    case $why in
    *"Block node is read-only"*) why="" ;;
    *) bad "not the reason why: $why"; return 1 ;;
    esac
    [ "$(x vbd-param-get uuid="$vbd" param-name=currently-attached)" = \
        false ] || bad "the refused VBD is attached" || return 1
    x vbd-destroy uuid="$vbd" && x vdi-destroy uuid="$vdi"
}

# ---- livedisk: the disks of running guests (issue 10) ----------------------

# The image file of VDI $1.
vdi_file() { find "$XCP_STATE_DIR/sr" -name "$(x vdi-param-get uuid="$1" \
    param-name=location)" | head -1; }
# The guest writes 64 KiB block $2 of its disk $1 (domU-init), and says so.
guest_write() {
    local n
    n=$(lines "$VM")
    xenstore-write "/local/domain/$(param "$VM" dom-id)/control/xcp-lab-write" \
        "$1 $2" || return 1
    wait_console "$VM" "XCPGUEST: wrote $1 $2" 30 "$n"
}

# A running PV guest's disk grows online (xe vdi-resize of an attached
# VDI, QEMU's block_resize): the guest sees the new size.
sc_livedisk_resize() {
    local vdi n sec
    ensure_running "$VM" || return 1
    hotplug_disk 1 RW "ro=0 removable=0 write=ok" || return 1
    vdi=$(x vbd-param-get uuid="$HOT_VBD" param-name=vdi-uuid) || return 1
    n=$(lines "$VM")
    x vdi-resize uuid="$vdi" disk-size=33554432 || return 1
    [ "$(x vdi-param-get uuid="$vdi" param-name=virtual-size)" = 33554432 ] ||
        bad "virtual-size not 32 MiB" || return 1
    sec=$(xenstore-ls -f "/local/domain/0/backend" 2>/dev/null |
        grep "/$(param "$VM" dom-id)/.*/sectors " | tr '\n' ' ')
    echo "back end: $sec"
    wait_console "$VM" "XCPGUEST: sizes .*$HOT_DEV=65536 " 60 "$n" ||
        return 1
    unplug_disk "$HOT_VBD" "$HOT_DEV"
}

# Changed block tracking switched on while the guest runs (QEMU's
# persistent dirty bitmap on the qcow2 image, stored when QEMU lets the
# image go): a snapshot then starts an epoch, and the blocks the guest
# writes after it are what VDI.list_changed_blocks reports. (dom0 has no
# qemu-img: the library reads the bitmaps QEMU stored.)
sc_livedisk_cbt() {
    local vdi vbd s1 b64
    ensure_running "$VM" || return 1
    hotplug_disk 1 RW "ro=0 removable=0 write=ok" || return 1
    vdi=$(x vbd-param-get uuid="$HOT_VBD" param-name=vdi-uuid) || return 1
    vbd=$HOT_VBD
    x vdi-enable-cbt uuid="$vdi" || return 1
    [ "$(x vdi-param-get uuid="$vdi" param-name=cbt-enabled)" = true ] ||
        bad "cbt-enabled is not true" || return 1
    guest_write "$HOT_DEV" 3 || return 1
    unplug_disk "$vbd" "$HOT_DEV" || return 1
    s1=$(x vdi-snapshot uuid="$vdi") || return 1
    vbd=$(x vbd-create vm-uuid="$VM" vdi-uuid="$vdi" device=1 type=Disk \
        mode=RW) || return 1
    x vbd-plug uuid="$vbd" || return 1
    sleep 3
    guest_write "$HOT_DEV" 7 || return 1
    unplug_disk "$vbd" "$HOT_DEV" || return 1
    b64=$(x vdi-list-changed-blocks vdi-from-uuid="$s1" vdi-to-uuid="$vdi") ||
        return 1
    echo "changed: $(echo "$b64" | cut -c1-16)"
    # block 7: bit 0x01 of the first byte (block 0 is the guest's own
    # write at plug): base64's second character then is one of Q..f
    case $b64 in ?[Q-Za-f]*) ;; *) bad "changed blocks $b64, want block 7";
        return 1 ;; esac
}

# The host's qemu-img, brought into dom0 by tools/xen-lab/build.
QIMG=/xcp-tests/qemu-img
# The first 5 bytes of 64 KiB block $2 of what image $1 shows (its chain).
image_block() {
    "$QIMG" convert -U -O raw "$1" /tmp/img.raw 2>/tmp/qimg.err ||
        bad "qemu-img convert $1: $(cat /tmp/qimg.err)" || return 1
    dd if=/tmp/img.raw bs=65536 skip="$2" count=1 2>/dev/null | head -c 5
    rm -f /tmp/img.raw
}
# qemu-img check of image $1 and of every image below it.
check_chain() {
    local i
    for i in $("$QIMG" info -U --backing-chain "$1" | sed -n 's/^image: //p')
    do
        "$QIMG" check -U -q "$i" >/tmp/qimg.err 2>&1 ||
            bad "qemu-img check $i: $(tr '\n' ' ' </tmp/qimg.err)" ||
            return 1
    done
}

# VDI.snapshot of a running guest's disk is point-in-time: the guest
# writes A into a block, the snapshot is taken, the guest writes B into
# the same block, and again (B, a second snapshot, C); each snapshot holds
# what was written before it, the disk (once QEMU lets it go) holds C, and
# every image of the chains is clean. (QEMU keeps its image open: its
# writes must move onto the new leaf at the snapshot.) The disk then still
# grows online (QEMU's node is found after the moves).
sc_livedisk_snapshot() {
    local vdi vbd s1 s2 f b n
    [ -x "$QIMG" ] || bad "no qemu-img in dom0" || return 1
    ensure_running "$VM" || return 1
    hotplug_disk 1 RW "ro=0 removable=0 write=ok" || return 1
    vbd=$HOT_VBD
    vdi=$(x vbd-param-get uuid="$vbd" param-name=vdi-uuid) || return 1
    guest_write "$HOT_DEV" "3 snapA" || return 1
    s1=$(x vdi-snapshot uuid="$vdi") || return 1
    guest_write "$HOT_DEV" "3 snapB" || return 1
    s2=$(x vdi-snapshot uuid="$vdi") || return 1
    guest_write "$HOT_DEV" "3 snapC" || return 1
    for f in "$s1 snapA" "$s2 snapB"; do
        set -- $f
        b=$(image_block "$(vdi_file "$1")" 3) || return 1
        echo "snapshot $1: block 3 reads '$b'"
        [ "$b" = "$2" ] || bad "a snapshot's block 3 reads '$b', not" \
            "$2 (written before it)" || return 1
    done
    check_chain "$(vdi_file "$s1")" && check_chain "$(vdi_file "$s2")" ||
        return 1
    n=$(lines "$VM")
    x vdi-resize uuid="$vdi" disk-size=33554432 || return 1
    wait_console "$VM" "XCPGUEST: sizes .*$HOT_DEV=65536 " 60 "$n" ||
        return 1
    # the snapshots go while the guest runs: the collector merges their
    # hidden parents under the leaf QEMU writes (never into it)
    x vdi-destroy uuid="$s1" && x vdi-destroy uuid="$s2" || return 1
    x sr-scan uuid="$(x sr-list type=file --minimal | cut -d, -f1)" ||
        return 1
    sleep 10
    guest_write "$HOT_DEV" "4 snapD" || return 1
    unplug_disk "$vbd" "$HOT_DEV" || return 1
    f=$(vdi_file "$vdi")
    echo "disk: chain $("$QIMG" info -U --backing-chain "$f" |
        sed -n 's/^image: //p' | tr '\n' ' ')"
    for b in "3 snapC" "4 snapD"; do
        set -- $b
        b=$(image_block "$f" "$1") || return 1
        echo "disk: block $1 reads '$b'"
        [ "$b" = "$2" ] || bad "the disk's block $1 reads '$b', not $2" ||
            return 1
    done
    check_chain "$f"
}

# Image files in the file SR.
sr_files() { ls "$XCP_STATE_DIR"/sr/*/ | grep -c -E '[.](qcow2|vhd)$'; }

# Images in the backing chain of image file $1 (QEMU may hold it: -U).
chain_len() { "$QIMG" info -U --backing-chain "$1" | grep -c '^image: '; }

# Leaf coalesce of a running guest's disk: Xen's QEMU keeps its image open
# and cannot be paused, so QEMU itself streams the parent's data into the
# leaf it writes (block-stream) and then points the leaf past it; the
# parent, unreferenced, goes. The guest writes before the snapshot (into
# what becomes the parent) and keeps writing while the collector works;
# then the chain is one image shorter, every write reads back from the
# disk, and every image is clean.
sc_livedisk_coalesce() {
    local vdi s f n0 n1 b t0 c0 c task=""
    [ -x "$QIMG" ] || bad "no qemu-img in dom0" || return 1
    ensure_running "$VM" || return 1
    hotplug_disk 1 RW "ro=0 removable=0 write=ok" || return 1
    vdi=$(x vbd-param-get uuid="$HOT_VBD" param-name=vdi-uuid) || return 1
    for b in 1 2 3; do guest_write "$HOT_DEV" "$b old$b" || return 1; done
    n0=$(sr_files)
    s=$(x vdi-snapshot uuid="$vdi") || return 1
    f=$(vdi_file "$vdi")
    c0=$(chain_len "$f")
    x vdi-destroy uuid="$s" || return 1
    x sr-scan uuid="$(x sr-list type=file --minimal | cut -d, -f1)" ||
        return 1
    # the guest writes on while the collector runs
    for b in 4 5 2 6; do guest_write "$HOT_DEV" "$b new$b" || return 1; done
    t0=$(up)
    while c=$(chain_len "$f") && [ "$c" -ge "$c0" ]; do
        awk -v a="$t0" -v b="$(up)" 'BEGIN { exit !(b - a > 300) }' && break
        [ -n "${task:-}" ] || task=$(x task-list \
            name-label="Garbage collection" params=name-description,progress)
        sleep 1
    done
    echo "collector task seen: ${task:-none}" | tr '\n' ' '; echo
    n1=$(sr_files)
    echo "chain of the disk: $c0 images after the snapshot, $c now;" \
        "image files: $n0 before the snapshot, $n1 now"
    grep -a "SR collector" /tmp/xcpd.log | tail -6
    [ "$c" -lt "$c0" ] || bad "the chain stays $c images long" || return 1
    [ "$n1" = "$n0" ] || bad "$n1 image files, want $n0" || return 1
    guest_write "$HOT_DEV" "7 new7" || return 1
    unplug_disk "$HOT_VBD" "$HOT_DEV" || return 1
    for b in "1 old1" "2 new2" "3 old3" "4 new4" "5 new5" "6 new6" \
        "7 new7"; do
        set -- $b
        b=$(image_block "$f" "$1") || return 1
        [ "$b" = "$(echo "$2" | cut -c1-5)" ] ||
            bad "the disk's block $1 reads '$b', not $2" || return 1
    done
    check_chain "$f"
}
# Whether disk image $1 still holds what its parent held: blocks 40-47 of
# /tmp/stream.raw, the data written before the plug (files, not <(...):
# dom0 may have no /dev/fd). Removes the scratch files.
parent_data_kept() {
    _ok=0
    "$QIMG" convert -U -O raw "$1" /tmp/img.raw &&
        dd if=/tmp/img.raw of=/tmp/img.part bs=65536 skip=40 count=8 \
            2>/dev/null &&
        dd if=/tmp/stream.raw of=/tmp/stream.part bs=65536 skip=40 \
            count=8 2>/dev/null &&
        cmp -s /tmp/img.part /tmp/stream.part ||
        _ok=1
    rm -f /tmp/img.raw /tmp/stream.raw /tmp/img.part /tmp/stream.part
    [ "$_ok" = 0 ] || bad "the disk lost the data its parent held"
}


# kill -9 of xcpd while QEMU streams a running disk's parent (96 MiB of
# data, so that the copy takes a while) into its leaf: QEMU's job goes on;
# the next xcpd follows it (or finds it over) and its collector removes
# the parent; the disk reads all it held and every image is clean once
# QEMU lets it go.
sc_livedisk_coalesce_kill() {
    local sr vdi s f c0 c t0 rc=0
    [ -x "$QIMG" ] || bad "no qemu-img in dom0" || return 1
    ensure_running "$VM" || return 1
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    vdi=$(x vdi-create sr-uuid="$sr" name-label=lab-stream \
        virtual-size=100663296) || return 1
    f=$(vdi_file "$vdi")
    # data the guest's parent will hold (written before the plug)
    head -c 100663296 /dev/urandom >/tmp/stream.raw &&
        "$QIMG" convert -n -f raw -O qcow2 /tmp/stream.raw "$f" ||
        bad "cannot fill $f" || return 1
    hotplug_disk 1 RW "ro=0 removable=0 write=ok" "$vdi" || return 1
    guest_write "$HOT_DEV" "2 live2" || return 1
    s=$(x vdi-snapshot uuid="$vdi") || return 1
    c0=$(chain_len "$f")
    x vdi-destroy uuid="$s" || return 1
    x sr-scan uuid="$sr" || return 1
    # killed a second after the pass was asked for: the collector has
    # started QEMU's copy (the chain still 2 images long), or not yet
    sleep 1
    echo "chain $(chain_len "$f") images when xcpd is killed"
    xcpd_kill9
    sc_xcpd_up || return 1
    guest_write "$HOT_DEV" "3 live3" || return 1
    t0=$(up)
    while c=$(chain_len "$f") && [ "$c" -ge "$c0" ]; do
        awk -v a="$t0" -v b="$(up)" 'BEGIN { exit !(b - a > 600) }' && break
        sleep 2
    done
    echo "chain of the disk: $c0 images after the snapshot, $c now"
    grep -a "SR collector" /tmp/xcpd.log | tail -4
    [ "$c" -lt "$c0" ] || bad "the chain stays $c images long" || return 1
    unplug_disk "$HOT_VBD" "$HOT_DEV" || return 1
    for b in "2 live2" "3 live3"; do
        set -- $b
        b=$(image_block "$f" "$1") || return 1
        [ "$b" = "$2" ] || bad "the disk's block $1 reads '$b', not $2" ||
            return 1
    done
    parent_data_kept "$f" || rc=1
    [ "$rc" = 0 ] || return 1
    check_chain "$f"
}

# Lines of xcpd's log that say $1.
log_count() { grep -a -c "$1" /tmp/xcpd.log; }
# Waits up to $3 s until xcpd's log says $1 more than $2 times.
wait_log() {
    local t0
    t0=$(up)
    while [ "$(log_count "$1")" -le "$2" ]; do
        awk -v a="$t0" -v b="$(up)" -v l="$3" 'BEGIN { exit !(b - a > l) }' &&
            { bad "xcpd's log does not say '$1' after $3 s"; return 1; }
        sleep 0.2
    done
}
# Restarts xcpd with its INFO lines in its log (what the scenarios below
# wait for), and the environment assignments the caller prefixed.
xcpd_info() { sc_xcpd_down && XCP_LOG_LEVEL=info sc_xcpd_up; }
STREAMS="streams its chain into its leaf"
CANCELS="its leaf coalesce by its back end is cancelled"

# A snapshot and an online resize of a running disk while QEMU streams its
# parent into it (the collector's leaf coalesce, slowed to 2 MiB/s by
# XCP_XEN_STREAM_SPEED so that the calls come during the copy), the guest
# writing all along: each call cancels QEMU's job first (its copy-on-read
# filter holds the disk meanwhile), the snapshot holds what was written
# before it, the guest sees the new size, and the collector plans the
# coalesce again and finishes it once the copy runs at full speed; every
# write reads back and every image is clean.
sc_livedisk_stream_busy() {
    local sr vdi s f c0 c t0 b n k rc=0
    [ -x "$QIMG" ] || bad "no qemu-img in dom0" || return 1
    ensure_running "$VM" || return 1
    XCP_XEN_STREAM_SPEED=2097152 xcpd_info || return 1
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    vdi=$(x vdi-create sr-uuid="$sr" name-label=lab-stream-busy \
        virtual-size=67108864) || return 1
    f=$(vdi_file "$vdi")
    head -c 67108864 /dev/urandom >/tmp/stream.raw &&
        "$QIMG" convert -n -f raw -O qcow2 /tmp/stream.raw "$f" ||
        bad "cannot fill $f" || return 1
    hotplug_disk 1 RW "ro=0 removable=0 write=ok" "$vdi" || return 1
    guest_write "$HOT_DEV" "2 busy2" || return 1
    s=$(x vdi-snapshot uuid="$vdi") || return 1
    c0=$(chain_len "$f")
    n=$(log_count "$STREAMS")
    k=$(log_count "$CANCELS")
    x vdi-destroy uuid="$s" && x sr-scan uuid="$sr" || return 1
    wait_log "$STREAMS" "$n" 120 || return 1
    # the guest writes during the copy, then a snapshot is taken
    guest_write "$HOT_DEV" "3 busy3" || return 1
    s=$(x vdi-snapshot uuid="$vdi") || return 1
    guest_write "$HOT_DEV" "3 late3" || return 1
    wait_log "$CANCELS" "$k" 10 || return 1
    b=$(image_block "$(vdi_file "$s")" 3) || return 1
    echo "snapshot during the copy: block 3 reads '$b'"
    [ "$b" = busy3 ] || bad "the snapshot's block 3 reads '$b', not busy3" ||
        return 1
    check_chain "$(vdi_file "$s")" || return 1
    n=$(log_count "$STREAMS")
    k=$(log_count "$CANCELS")
    x vdi-destroy uuid="$s" && x sr-scan uuid="$sr" || return 1
    # the collector plans again and streams again: a resize during it
    wait_log "$STREAMS" "$n" 180 || return 1
    guest_write "$HOT_DEV" "4 busy4" || return 1
    n=$(lines "$VM")
    x vdi-resize uuid="$vdi" disk-size=100663296 || return 1
    wait_log "$CANCELS" "$k" 10 || return 1
    wait_console "$VM" "XCPGUEST: sizes .*$HOT_DEV=196608 " 60 "$n" ||
        return 1
    guest_write "$HOT_DEV" "5 busy5" || return 1
    # full speed: the next xcpd follows the copy QEMU runs or starts one
    xcpd_info || return 1
    t0=$(up)
    while c=$(chain_len "$f") && [ "$c" -ge "$c0" ]; do
        awk -v a="$t0" -v b="$(up)" 'BEGIN { exit !(b - a > 600) }' && break
        sleep 2
    done
    echo "chain of the disk: $c0 images after the first snapshot, $c now"
    grep -a "SR collector\|cancelled" /tmp/xcpd.log | tail -6
    [ "$c" -lt "$c0" ] || bad "the chain stays $c images long" || return 1
    guest_write "$HOT_DEV" "6 busy6" || return 1
    unplug_disk "$HOT_VBD" "$HOT_DEV" || return 1
    for b in "2 busy2" "3 late3" "4 busy4" "5 busy5" "6 busy6"; do
        set -- $b
        b=$(image_block "$f" "$1") || return 1
        [ "$b" = "$2" ] || bad "the disk's block $1 reads '$b', not $2" ||
            return 1
    done
    parent_data_kept "$f" || rc=1
    [ "$rc" = 0 ] || return 1
    check_chain "$f"
}

# VM.snapshot of a running guest with two disks (QEMU serves both): the
# domain is held paused while its disks move onto their snapshots, so that
# they are of one instant (as XAPI pauses every tapdisk first); each
# snapshot holds what the guest wrote before, the guest runs on (not left
# paused), and its later writes are on the disks, not in the snapshots.
sc_livedisk_vm_snapshot() {
    local vbd1 vbd2 d1 d2 snap n s of b want
    [ -x "$QIMG" ] || bad "no qemu-img in dom0" || return 1
    ensure_running "$VM" && xcpd_info || return 1
    hotplug_disk 1 RW "ro=0 removable=0 write=ok" || return 1
    vbd1=$HOT_VBD d1=$HOT_DEV
    hotplug_disk 2 RW "ro=0 removable=0 write=ok" || return 1
    vbd2=$HOT_VBD d2=$HOT_DEV
    guest_write "$d1" "3 vmsA1" && guest_write "$d2" "3 vmsA2" || return 1
    n=$(log_count "paused for the snapshot of its disks")
    snap=$(x vm-snapshot uuid="$VM" new-name-label=lab-two-disks) ||
        return 1
    wait_log "paused for the snapshot of its disks" "$n" 5 || return 1
    case $(xl_state "$(param "$VM" dom-id)") in
    *p*) bad "the domain stays paused after the snapshot"; return 1 ;;
    esac
    [ "$(param "$VM" power-state)" = running ] ||
        bad "power-state is not running after the snapshot" || return 1
    guest_write "$d1" "3 vmsB1" && guest_write "$d2" "3 vmsB2" || return 1
    n=0
    for s in $(x vbd-list vm-uuid="$snap" type=Disk params=vdi-uuid \
        --minimal | tr ',' ' '); do
        of=$(x vdi-param-get uuid="$s" param-name=snapshot-of) || return 1
        case $of in
        "$(x vbd-param-get uuid="$vbd1" param-name=vdi-uuid)") want=vmsA1 ;;
        "$(x vbd-param-get uuid="$vbd2" param-name=vdi-uuid)") want=vmsA2 ;;
        *) continue ;;
        esac
        b=$(image_block "$(vdi_file "$s")" 3) || return 1
        echo "snapshot of $of: block 3 reads '$b'"
        [ "$b" = "$want" ] || bad "a snapshot's block 3 reads '$b', not" \
            "$want" || return 1
        check_chain "$(vdi_file "$s")" || return 1
        n=$((n + 1))
    done
    [ "$n" = 2 ] || bad "$n snapshots of the two hot disks" || return 1
    unplug_disk "$vbd2" "$d2" && unplug_disk "$vbd1" "$d1" || return 1
    x snapshot-uninstall uuid="$snap" force=true >/dev/null ||
        echo "(the snapshot stays: $why)"
    why=""
}

# The domain ids that device models (QEMU, "-xen-domid <id>") serve now,
# dom0's own (the lab's) left out.
dm_domids() {
    local f c id
    for f in /proc/[0-9]*/cmdline; do
        c=$(tr '\0' ' ' 2>/dev/null <"$f")
        case $c in *qemu-system*" -xen-domid "*) ;; *) continue ;; esac
        id=${c#* -xen-domid }
        id=${id%% *}
        [ "$id" = 0 ] || echo "$id"
    done
}

# A disk hot-plugged into a guest started without any: no QEMU serves the
# domain yet (libxl starts the qdisk back end only at create), so one is
# started for the plug; the guest sees the disk and writes it. Suspended
# and resumed, the new domain has the disk (served by the QEMU libxl
# starts) and the old one's QEMU is gone, as is the last one's after the
# hard shutdown.
sc_vbd_hotplug_diskless() {
    local VM d d1 rc=0 z before
    VM=$(make_pv_vm lab-hotplug) || return 1
    x vm-param-set uuid="$VM" domain-type=pv || return 1
    x vm-memory-limits-set uuid="$VM" static-min=96MiB dynamic-min=96MiB \
        dynamic-max=96MiB static-max=96MiB || return 1
    start_guest "$VM" diskless-vm-start || return 1
    d=$(param "$VM" dom-id) || return 1
    ! dm_domids | grep -qx "$d" ||
        bad "domain $d has a device model before any disk" || rc=1
    [ $rc = 0 ] && { hotplug_disk 1 RW "ro=0 removable=0 write=ok" || rc=1; }
    [ $rc = 0 ] && { dm_domids | grep -qx "$d" ||
        bad "the guest sees xvdb, but no QEMU serves domain $d"; } || rc=1
    if [ $rc = 0 ]; then
        before=$(fe_devs "$d" vbd)
        x vm-suspend uuid="$VM" && wait_power "$VM" suspended 5 &&
            x vm-resume uuid="$VM" && wait_power "$VM" running 5 &&
            d1=$(param "$VM" dom-id) || rc=1
    fi
    if [ $rc = 0 ]; then
        [ "$(fe_devs "$d1" vbd)" = "$before" ] ||
            bad "disks before suspend: $before; after: $(fe_devs "$d1" vbd)" ||
            rc=1
        ! dm_domids | grep -qx "$d" || bad "QEMU of domain $d left" || rc=1
        dm_domids | grep -qx "$d1" || bad "no QEMU serves domain $d1" || rc=1
        d=$d1
    fi
    [ $rc = 0 ] && { unplug_disk "$HOT_VBD" "$HOT_DEV" || rc=1; }
    local w=$why
    x vm-shutdown uuid="$VM" --force
    ! dm_domids | grep -qx "$d" || w="${w:-QEMU of domain $d left}" rc=1
    z=$(awk '/^Name:/ { n = $2 } /^State:/ && $2 == "Z" && n ~ /qemu/ {
        c++ } END { print c + 0 }' /proc/[0-9]*/status 2>/dev/null)
    [ "$z" = 0 ] || w="${w:-$z QEMU zombie(s) left}" rc=1
    x vm-uninstall uuid="$VM" --force >/dev/null
    why=$w
    [ $rc = 0 ] || bad "$why"
}

# An ISO from an iso SR as the guest's CD (xvdd, read-only),
# ejected and inserted again on the running guest.
ISO_DIR=/var/lib/xcp/isos
CD_VBD=""
sc_cd() {
    local d n p
    ensure_running "$VM" || return 1
    iso_sr || return 1
    x cd-list | grep -q lab.iso || bad "lab.iso is not in cd-list" || return 1
    n=$(lines "$VM")
    # (xe has no vm-cd-add yet: the VBD as vm-cd-add makes it)
    p=$(x vdi-list sr-uuid="$ISO_SR" name-label=lab.iso --minimal) ||
        return 1
    CD_VBD=$(x vbd-create vm-uuid="$VM" vdi-uuid="$p" type=CD device=3 \
        mode=RO) || return 1
    x vbd-plug uuid="$CD_VBD" || return 1
    wait_console "$VM" "XCPGUEST: disk xvdd ro=1 .*write=failed" \
        30 "$n" || return 1
    d=$(param "$VM" dom-id) || return 1
    x vm-cd-eject uuid="$VM" || return 1
    p=$(cd_params "$d")
    [ -z "$p" ] || bad "the CD's back end still has '$p' after eject" ||
        return 1
    x vm-cd-insert uuid="$VM" cd-name=lab2.iso || return 1
    p=$(cd_params "$d")
    case $p in *lab2.iso) ;; *) bad "the CD's back end has '$p'" ;; esac
}

# The image path the back end of domain $1's CD drive has ("" if none).
cd_params() {
    local f b
    for f in $(xenstore-list "/local/domain/$1/device/vbd" 2>/dev/null); do
        b=$(xenstore-read "/local/domain/$1/device/vbd/$f/backend") ||
            continue
        [ "$(xenstore-read "$b/device-type" 2>/dev/null)" = cdrom ] ||
            continue
        xenstore-read "$b/params" 2>/dev/null
        return 0
    done
}

# Suspended and resumed with a hot-plugged disk attached and another one
# unplugged: the new domain has exactly the disks attached at suspend.
sc_resume_devices() {
    local d before after
    ensure_running "$VM" || return 1
    hotplug_disk 1 RW "ro=0" || return 1
    d=$(param "$VM" dom-id) || return 1
    before=$(fe_devs "$d" vbd)
    x vm-suspend uuid="$VM" || return 1
    wait_power "$VM" suspended 5 || return 1
    x vm-resume uuid="$VM" || return 1
    wait_power "$VM" running 5 || return 1
    d=$(param "$VM" dom-id) || return 1
    after=$(fe_devs "$d" vbd)
    [ "$before" = "$after" ] ||
        bad "disks before suspend: $before; after resume: $after" ||
        return 1
    unplug_disk "$HOT_VBD" "$HOT_DEV"
}

# No VIF of a stopped VM is left on a bridge.
sc_bridge_ports_after_stop() {
    ensure_running "$VM" || return 1
    x vm-shutdown uuid="$VM" --force || return 1
    wait_power "$VM" halted 5 || return 1
    [ -z "$(ls "/sys/class/net/$BR2/brif" 2>/dev/null)" ] ||
        bad "ports left on $BR2: $(ls "/sys/class/net/$BR2/brif" | tr '\n' ' ')"
}

# A network destroyed takes the bridge libxcp made for it along.
sc_network_destroy_bridge() {
    local v
    ensure_halted "$VM" || return 1
    for v in $(x vif-list network-uuid="$NET2" --minimal | tr ',' ' '); do
        x vif-destroy uuid="$v" || return 1
    done
    ip link show "$BR2" >/dev/null 2>&1 || bad "no bridge $BR2 to start with" ||
        return 1
    x network-destroy uuid="$NET2" || return 1
    ! ip link show "$BR2" >/dev/null 2>&1 || bad "bridge $BR2 is still there"
}

# ---- hvm: PVH and HVM guests ------------------------------------------------

# The same Debian kernel booted as a PVH guest reaches userspace.
sc_pvh_guest() {
    local vm rc=0
    vm=$(make_pv_vm lab-pvh) || return 1
    x vm-param-set uuid="$vm" domain-type=pvh || return 1
    [ "$(param "$vm" HVM-boot-policy)" = "" ] ||
        bad "a PVH VM has an HVM boot policy" || rc=1
    if [ $rc = 0 ] && start_guest "$vm" pvh-vm-start; then
        wait_console "$vm" "XCPGUEST: userspace up (PVH guest" 5 0 ||
            bad "not a PVH guest: $(grep 'userspace up' "$(clog "$vm")")" ||
            rc=1
        [ "$(param "$vm" domain-type)" = pvh ] || bad "domain-type changed" ||
            rc=1
    else
        rc=1
    fi
    x vm-shutdown uuid="$vm" --force >/dev/null
    x vm-uninstall uuid="$vm" --force >/dev/null
    return $rc
}

# An ISO SR holding lab.iso and lab2.iso (1 MiB of noise each: a PV CD
# needs no content; an HVM firmware finds nothing to boot on them).
ISO_SR=""
iso_sr() {
    [ -n "$ISO_SR" ] && return 0
    mkdir -p "$ISO_DIR"
    head -c 1048576 /dev/urandom >"$ISO_DIR/lab.iso"
    cp "$ISO_DIR/lab.iso" "$ISO_DIR/lab2.iso"
    ISO_SR=$(x sr-create name-label=lab-isos type=iso content-type=iso \
        device-config:location="$ISO_DIR") || return 1
    x sr-scan uuid="$ISO_SR"
}

# A CD into a running HVM guest and out again: QEMU's drive (which the
# guest's firmware and OS see) gets the ISO, then none (the back end's
# params, which libxl_cdrom_insert keeps with QEMU's medium).
sc_cd_hvm() {
    local vm d p rc=0
    iso_sr || return 1
    vm=$(x vm-install template="Other install media" \
        new-name-label=lab-hvm-cd) || return 1
    x vbd-create vm-uuid="$vm" type=CD device=3 mode=RO >/dev/null ||
        return 1
    x vm-start uuid="$vm" >/dev/null || rc=1
    [ $rc = 0 ] && { d=$(param "$vm" dom-id) || rc=1; }
    [ $rc = 0 ] && { x vm-cd-insert uuid="$vm" cd-name=lab.iso || rc=1; }
    # QEMU's own words, for a failure
    if [ $rc != 0 ]; then
        cat "/var/log/xen/qemu-dm-$vm.log" 2>/dev/null | tail -n 40
        echo "device models: $(dm_domids | tr '\n' ' ')"
        dmesg | tail -n 8
        xl cd-insert "$d" hdd "$ISO_DIR/lab.iso" 2>&1 | tail -n 8
    fi
    if [ $rc = 0 ]; then
        p=$(cd_params "$d")
        echo "inserted: '$p'"
        case $p in *lab.iso) ;; *) bad "the CD's back end has '$p'"; rc=1 ;; esac
    fi
    [ $rc = 0 ] && { x vm-cd-eject uuid="$vm" || rc=1; }
    if [ $rc = 0 ]; then
        p=$(cd_params "$d")
        echo "ejected: '$p'"
        case $p in *.iso*) bad "the CD's back end still has '$p'"; rc=1 ;; esac
    fi
    local w=$why
    x vm-shutdown uuid="$vm" --force >/dev/null
    x vm-uninstall uuid="$vm" --force >/dev/null
    why=$w
    [ $rc = 0 ]
}

# SeaBIOS's lines of domain $1 (Xen prints an HVM guest's port 0xe9 output
# as "(d<id>) ...").
bios() { xl dmesg | grep "(d$1) " | sed "s/.*(d$1) //"; }

# Starts HVM VM $1 and prints where its firmware tried to boot first.
first_boot_device() {
    local d i=0
    x vm-start uuid="$1" >/dev/null || return 1
    d=$(param "$1" dom-id) || return 1
    while [ $i -lt 600 ]; do
        bios "$d" | grep -q "Booting from" && break
        sleep 0.2
        i=$((i + 1))
    done
    bios "$d" | grep -E "Booting from|Boot failed|No bootable" >&2
    bios "$d" | grep -m1 "Booting from" | sed 's/Booting from //'
}

# HVM-boot-policy "BIOS order" with HVM-boot-params order honoured: a
# blank disk and an empty CD drive, "dc" tries the CD first, "cd" the disk
# first (SeaBIOS's own lines, as Xen logs them).
sc_hvm_boot_order() {
    local vm sr vdi first rc=0
    vm=$(x vm-install template="Other install media" \
        new-name-label=lab-hvm) || return 1
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    vdi=$(x vdi-create sr-uuid="$sr" name-label=lab-blank \
        virtual-size=16777216) || return 1
    x vbd-create vm-uuid="$vm" vdi-uuid="$vdi" device=0 type=Disk \
        mode=RW >/dev/null || return 1
    x vbd-create vm-uuid="$vm" type=CD device=3 mode=RO >/dev/null ||
        return 1
    [ "$(param "$vm" HVM-boot-policy)" = "BIOS order" ] ||
        bad "HVM-boot-policy is not 'BIOS order'" || return 1
    x vm-param-set uuid="$vm" HVM-boot-params:order=dc || return 1
    first=$(first_boot_device "$vm") || rc=1
    echo "order=dc: first '$first'"
    case $rc$first in 0DVD/CD*) ;; *) bad "order=dc booted '$first' first"; rc=1 ;; esac
    x vm-shutdown uuid="$vm" --force >/dev/null
    if [ $rc = 0 ]; then
        x vm-param-set uuid="$vm" HVM-boot-params:order=cd || return 1
        first=$(first_boot_device "$vm") || rc=1
        echo "order=cd: first '$first'"
        case $rc$first in 0Hard\ Disk*) ;; *) bad "order=cd booted '$first' first"; rc=1 ;; esac
        x vm-shutdown uuid="$vm" --force >/dev/null
    fi
    x vm-uninstall uuid="$vm" --force >/dev/null
    return $rc
}

# An HVM guest booted from a real ISO in an ISO SR (lab-boot.iso of
# tools/xen-lab/build: isolinux, the lab's kernel and ramdisk), as an
# installer is, with HVM boot order "dc" (the CD before a blank disk):
# its firmware boots the CD, the guest reaches userspace on its serial
# line (QEMU's pty, read here), and the host reads its RFB console
# through xcpd's /console, CONNECT and WebSocket (tools/xen-lab/remote).
sc_hvm_iso() {
    local vm sr vdi iso d tty pid="" i=0 rc=0 t0 first=""
    [ -n "$XCPD_ARGS" ] || bad "no /etc/xcp/users: xcpd is not on the network" ||
        return 1
    iso_sr || return 1
    cp "$GUEST/lab-boot.iso" "$ISO_DIR/" && x sr-scan uuid="$ISO_SR" ||
        return 1
    iso=$(x vdi-list sr-uuid="$ISO_SR" name-label=lab-boot.iso --minimal) ||
        return 1
    [ -n "$iso" ] || bad "lab-boot.iso is not in the ISO SR" || return 1
    vm=$(x vm-install template="Other install media" \
        new-name-label=lab-hvm-iso) || return 1
    x vm-memory-limits-set uuid="$vm" static-min=256MiB dynamic-min=256MiB \
        dynamic-max=256MiB static-max=256MiB || return 1
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    vdi=$(x vdi-create sr-uuid="$sr" name-label=lab-hvm-blank \
        virtual-size=16777216) || return 1
    x vbd-create vm-uuid="$vm" vdi-uuid="$vdi" device=0 type=Disk \
        mode=RW >/dev/null || return 1
    x vbd-create vm-uuid="$vm" vdi-uuid="$iso" type=CD device=3 \
        mode=RO >/dev/null || return 1
    x vm-param-set uuid="$vm" HVM-boot-params:order=dc || return 1
    t0=$(up)
    vm_start "$vm" >/dev/null || rc=1
    echo "TIMING hvm-iso xe=$(since "$t0")s"
    [ $rc = 0 ] && { d=$(param "$vm" dom-id) || rc=1; }
    [ $rc = 0 ] && { tty=$(xenstore-read "/local/domain/$d/serial/0/tty") ||
        bad "domain $d has no serial pty" || rc=1; }
    if [ $rc = 0 ]; then
        cat "$tty" >/tmp/hvm-serial.log 2>&1 &
        pid=$!
        # (by dom0's clock: on a loaded host each grep takes a while; the
        # firmware reads the kernel from the CD through emulated IDE,
        # which under TCG took 1455 s in a lab at load 10-15)
        while ! grep -q "$MARK" /tmp/hvm-serial.log &&
            awk -v a="$t0" -v b="$(up)" 'BEGIN { exit !(b - a < 2400) }'; do
            sleep 1
            i=$((i + 1))
            [ $((i % 60)) = 0 ] && echo "hvm-iso: $(since "$t0") s," \
                "serial: $(tail -c 120 /tmp/hvm-serial.log | tr -c \
                '[:print:]' ' ')" >&2
        done
        grep -q "$MARK" /tmp/hvm-serial.log ||
            bad "no '$MARK' on the serial line within 2400 s: $(tail -c \
                300 /tmp/hvm-serial.log | tr '\r\n' '  ')" || rc=1
        grep XCPGUEST /tmp/hvm-serial.log | head -3
        first=$(bios "$d" | grep -m1 "Booting from" | sed 's/Booting from //')
        echo "first boot device: '$first'"
    fi
    [ $rc = 0 ] && echo "TIMING hvm-iso to-userspace=$(since "$t0")s"
    case $rc$first in 0DVD/CD*) ;; 0*) bad "booted '$first' first"; rc=1 ;; esac
    [ $rc = 0 ] && { host_steps hvm-ready hvm-done "VM=$vm" || rc=1; }
    local w=$why
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    x vm-shutdown uuid="$vm" --force >/dev/null
    x vm-uninstall uuid="$vm" --force >/dev/null
    why=$w
    [ $rc = 0 ]
}

sc_vm_uninstall() {
    ensure_halted "$VM" || return 1
    x vm-uninstall uuid="$VM" --force >/dev/null
}

sc_xcpd_down() {
    [ -n "$XCPD_PID" ] || return 0
    kill -TERM "$XCPD_PID"
    wait "$XCPD_PID" || bad "xcpd exited with $?"
}

# The driver contract suite (tests/contract) on real Xen, with a PV guest,
# four tests at a time on the one host (each its own guests' uuids and
# names), as tests/contract/shared_host.sh runs it on the sim.
sc_contract() {
    mkdir -p "$XCP_STATE_DIR/contract"
    XCP_HV_CONTRACT_TYPE=pv XCP_HV_CONTRACT_KERNEL=$GUEST/vmlinux \
        XCP_HV_CONTRACT_RAMDISK=$GUEST/initrd.gz \
        XCP_HV_CONTRACT_CMDLINE="console=hvc0 quiet" \
        XCP_HV_CONTRACT_BOOT_MS=300000 XCP_HV_CONTRACT_TIMEOUT_MS=120000 \
        XCP_HV_CONTRACT_DIR=$XCP_STATE_DIR/contract \
        timeout 1200 /xcp-tests/test_hv_contract --jobs 4 \
        >/tmp/contract.log 2>&1 ||
        bad "$(grep -E '\[FAIL\]|\[----\]|Synthesis' /tmp/contract.log |
            tr '\n' ' ' | cut -c1-900)" || return 1
    grep Synthesis /tmp/contract.log
}

# ---- remote: xe -s from outside dom0 (the host, tools/xen-lab/remote) ----

# Hands the host (tools/xen-lab/remote) the lines $3 in /host/$1, waits
# up to 900 s for its results in /host/$2 and merges them into this run's
# PASS/FAIL lines.
host_steps() {
    local t0 l
    rm -f "/host/$2"
    printf '%s\n' "$3" >"/host/$1.tmp" && mv "/host/$1.tmp" "/host/$1" ||
        bad "cannot write /host/$1" || return 1
    t0=$(up)
    while [ ! -f "/host/$2" ]; do
        awk -v a="$t0" -v b="$(up)" 'BEGIN { exit !(b - a > 900) }' &&
            { bad "no results from the host within 900 s"; return 1; }
        sleep 1
    done
    while IFS= read -r l; do
        case $l in
        PASS*) note "$l"; npass=$((npass + 1)) ;;
        FAIL*) note "$l"; nfail=$((nfail + 1)) ;;
        SKIP*) note "$l" ;;
        esac
    done <"/host/$2"
    grep -q . "/host/$2" || bad "the host ran nothing"
}

# dom0 hands the host a halted PV guest and its own management address in
# /host/remote-ready, then waits for the host's results in
# /host/remote-done, merged here into this run's PASS/FAIL lines.
sc_remote() {
    local addr n
    [ -n "$XCPD_ARGS" ] || bad "no /etc/xcp/users: xcpd is not on the network" ||
        return 1
    ensure_halted "$VM" || return 1
    addr=$(ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
    [ -n "$addr" ] || bad "dom0's eth0 has no address" || return 1
    n=$(lines "$VM")
    host_steps remote-ready remote-done "$(printf 'VM=%s\nADDR=%s' "$VM" \
        "$addr")" || return 1
    # what the host asked for happened here (the guest may not have
    # reached userspace when the host's vm-shutdown came: its kernel then
    # powers off without /sbin/poweroff's line, so only Xen is asked)
    [ "$(param "$VM" power-state)" = halted ] ||
        bad "the VM is not halted after the host's vm-shutdown" || return 1
    [ "$(lines "$VM")" -gt "$n" ] ||
        bad "the host's vm-start did not boot the guest" || return 1
    [ -z "$(xl list | awk -v u="$VM" '$1 == u')" ] ||
        bad "the VM's domain is still there"
}

# ---- reattach: kill -9 of xcpd while guests live, and what Xen did ------

xcpd_kill9() {
    # a reattach scenario that failed may have left xcpd down
    [ -n "$XCPD_PID" ] || sc_xcpd_up || return 1
    kill -KILL "$XCPD_PID"
    wait "$XCPD_PID" 2>/dev/null
    XCPD_PID=""
    echo "xcpd killed (-9)" >>/tmp/xcpd.log
}

# domain $1's state letters in xl list ("" once it is gone)
xl_state() { xl list | awk -v d="$1" '$2 == d { print $5 }'; }

# Waits up to $2 s until Xen has domain $1 shut down (by its guest).
wait_xl_shutdown() {
    local i=0
    while [ $i -lt $(($2 * 5)) ]; do
        case $(xl_state "$1") in *s*|"") return 0 ;; esac
        sleep 0.2
        i=$((i + 1))
    done
    bad "domain $1 is not shut down after $2 s: $(xl_state "$1")"
}

# The reattach group's guest: PV, with a disk (which a qdisk QEMU serves)
# and a NIC on a bridge of its own, so that what a dead domain leaves
# behind shows (domain_leaks).
RVM="" RNET=""
reattach_vm() {
    local vm sr vdi
    [ -n "$RVM" ] && return 0
    vm=$(make_pv_vm lab-reattach) || return 1
    x vm-param-set uuid="$vm" domain-type=pv || return 1
    x vm-memory-limits-set uuid="$vm" static-min=96MiB dynamic-min=96MiB \
        dynamic-max=96MiB static-max=96MiB || return 1
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    vdi=$(x vdi-create sr-uuid="$sr" name-label=lab-reattach-disk \
        virtual-size=16777216) || return 1
    x vbd-create vm-uuid="$vm" vdi-uuid="$vdi" device=0 type=Disk \
        mode=RW >/dev/null || return 1
    RNET=$(x network-create name-label=lab-reattach-net) || return 1
    x vif-create vm-uuid="$vm" network-uuid="$RNET" device=0 \
        mac=02:16:3e:00:00:07 >/dev/null || return 1
    RVM=$vm
}

# The guest runs on while xcpd dies; a new xcpd finds it (same domain,
# running) and manages it: pause, unpause.
sc_reattach_running() {
    local d VM
    reattach_vm || return 1
    VM=$RVM
    ensure_running "$VM" || return 1
    d=$(param "$VM" dom-id) || return 1
    xcpd_kill9 || return 1
    [ -n "$(xl_state "$d")" ] || bad "the guest died with xcpd" || return 1
    sc_xcpd_up || return 1
    wait_power "$VM" running 10 || return 1
    [ "$(param "$VM" dom-id)" = "$d" ] ||
        bad "dom-id is $(param "$VM" dom-id), not $d" || return 1
    x vm-pause uuid="$VM" || return 1
    wait_power "$VM" paused 5 || return 1
    case $(xl_state "$d") in *p*) ;;
    *) bad "Xen does not have domain $d paused"; return 1 ;; esac
    x vm-unpause uuid="$VM" || return 1
    wait_power "$VM" running 5
}

# With xcpd killed, the guest of domain $2 (VM $VM) is made to end itself
# by writing $3 at its xenstore key $1 (control/shutdown: poweroff or
# reboot, control/xcp-lab-crash: a kernel crash), shows line $4 on its
# console and is shut down in Xen (xl state letter $5) before xcpd
# comes back.
end_while_down() {
    local n
    n=$(lines "$VM")
    xcpd_kill9 || return 1
    xenstore-write "/local/domain/$2/$1" "$3" ||
        bad "xenstore-write $1 failed" || return 1
    wait_console "$VM" "$4" 60 "$n" ||
        { tail -3 "$(clog "$VM")"; return 1; }
    wait_xl_shutdown "$2" 60 || return 1
    echo "domain $2 is '$(xl_state "$2")' with xcpd down"
    case $(xl_state "$2") in *$5*) ;;
    *) bad "domain $2 is '$(xl_state "$2")' in xl list, not '$5'"
        return 1 ;; esac
}

# The new xcpd applies the VM's actions_after_* to the domain $1 that
# ended meanwhile: $2 = halted (the domain reaped) or restart (a new
# domain, the guest up again); nothing of domain $1 is left either way.
after_restart() {
    local n d1
    n=$(lines "$VM")
    sc_xcpd_up || return 1
    if [ "$2" = restart ]; then
        wait_console "$VM" "$MARK" 240 "$n" || return 1
        wait_power "$VM" running 10 || return 1
        d1=$(param "$VM" dom-id) || return 1
        [ "$d1" != "$1" ] || bad "still domain $1 after the restart" ||
            return 1
    else
        wait_power "$VM" halted 10 || return 1
    fi
    domain_leaks "$1"
}

# The guest powers itself off (asked through xenstore by hand, as nobody
# else is there) while xcpd is down: the new xcpd applies
# actions_after_shutdown (destroy: halted, the domain reaped).
sc_reattach_guest_poweroff() {
    local d VM
    reattach_vm || return 1
    VM=$RVM
    ensure_running "$VM" || return 1
    d=$(param "$VM" dom-id) || return 1
    end_while_down control/shutdown "$d" poweroff "XCPGUEST: poweroff" s ||
        return 1
    after_restart "$d" halted || return 1
    start_guest "$VM" && wait_power "$VM" running 10
}

# The guest reboots itself while xcpd is down: the new xcpd applies
# actions_after_reboot (restart: a new domain, the guest up again).
sc_reattach_guest_reboot() {
    local d VM
    reattach_vm || return 1
    VM=$RVM
    ensure_running "$VM" || return 1
    d=$(param "$VM" dom-id) || return 1
    end_while_down control/shutdown "$d" reboot "XCPGUEST: reboot" s ||
        return 1
    after_restart "$d" restart
}

# The guest's kernel crashes while xcpd is down: the new xcpd applies
# actions_after_crash, "restart" (a new domain) and then, crashed again,
# "destroy" (halted).
sc_reattach_guest_crash() {
    local d VM
    reattach_vm || return 1
    VM=$RVM
    x vm-param-set uuid="$VM" actions-after-crash=restart || return 1
    ensure_running "$VM" || return 1
    d=$(param "$VM" dom-id) || return 1
    end_while_down control/xcp-lab-crash "$d" 1 "XCPGUEST: crashing" c ||
        return 1
    after_restart "$d" restart || return 1
    x vm-param-set uuid="$VM" actions-after-crash=destroy || return 1
    d=$(param "$VM" dom-id) || return 1
    end_while_down control/xcp-lab-crash "$d" 1 "XCPGUEST: crashing" c ||
        return 1
    after_restart "$d" halted
}

# Xen changes behind the back of a dead xcpd: a pause, an unpause and a
# destroy, each done while it is down, are what the next one finds.
behind_while_down() { # $1=xl command, $2=domid, $3=power state expected
    xcpd_kill9 || return 1
    xl "$1" "$2" || bad "xl $1 $2 failed" || return 1
    sc_xcpd_up || return 1
    wait_power "$VM" "$3" 10
}
sc_reattach_behind_back() {
    local d VM
    reattach_vm || return 1
    VM=$RVM
    ensure_running "$VM" || return 1
    d=$(param "$VM" dom-id) || return 1
    behind_while_down pause "$d" paused || return 1
    behind_while_down unpause "$d" running || return 1
    behind_while_down destroy "$d" halted || return 1
    domain_leaks "$d" || return 1
    # and the VM starts again from there
    start_guest "$VM" || return 1
    d=$(param "$VM" dom-id) || return 1
    x vm-shutdown uuid="$VM" --force || return 1
    domain_leaks "$d" || return 1
    x vm-uninstall uuid="$VM" --force >/dev/null || return 1
    x network-destroy uuid="$RNET" || return 1
    RVM=""
}

# |$1 - $2| <= $3
near() { awk -v a="$1" -v b="$2" -v t="$3" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }

# VM_metrics and host memory read what Xen reports.
sc_metrics_from_xen() {
    local d xm m hf xf
    ensure_running "$VM" || return 1
    sleep 2 # let the balloon settle
    d=$(param "$VM" dom-id) || return 1
    xm=$(xl list "$d" | awk 'NR == 2 { print $3 }')
    m=$(param "$VM" memory-actual) || return 1
    case $m in '' | *[!0-9]*) bad "memory-actual is '$m'"; return 1 ;; esac
    echo "memory-actual $m, xl list $xm MiB"
    near "$((m / 1048576))" "$xm" 1 ||
        bad "memory-actual is $((m / 1048576)) MiB, xl list says $xm" ||
        return 1
    xf=$(xl info | awk '/^free_memory/ { print $3 }')
    hf=$(x host-list params=memory-free --minimal) || return 1
    case $hf in '' | *[!0-9]*) bad "memory-free is '$hf'"; return 1 ;; esac
    echo "host memory-free $hf, xl info free_memory $xf MiB"
    near "$((hf / 1048576))" "$xf" 2 ||
        bad "host memory-free is $((hf / 1048576)) MiB, xl info says $xf" ||
        return 1
    hf=$(x host-param-get uuid="$(x host-list --minimal)" \
        param-name=memory-free-computed) || return 1
    case $hf in '' | *[!0-9]*) bad "memory-free-computed: '$hf'"; return 1 ;; esac
    near "$((hf / 1048576))" "$xf" 2 ||
        bad "memory-free-computed is $((hf / 1048576)) MiB, xl says $xf"
}

# ---- leaks: nothing of a dead domain stays behind -------------------------

# Fails (bad) naming what is left of the domains whose ids match the
# extended regex $1 (whole ids): domains, device models, their xenstore
# homes, back-end and /libxl entries, vif ports.
domain_leaks() {
    local p=$1 l t id f
    l=$(xl list | awk 'NR > 1 { print $2, $1 }' | grep -E "^($p) " |
        tr '\n' ' ')
    [ -z "$l" ] || bad "domains left: $l" || return 1
    # a device model exits on its own once libxl has destroyed its
    # domain (libxl does not wait for it): give it 15 s to go
    for t in $(seq 75); do
        l=$(dm_domids | grep -Ex "$p" | tr '\n' ' ')
        [ -n "$l" ] || break
        sleep 0.2
    done
    [ -z "$l" ] || bad "device models left for domains $l (after 15 s)" ||
        return 1
    l=$(xenstore-list /local/domain | grep -Ex "$p" | tr '\n' ' ')
    [ -z "$l" ] || bad "/local/domain has $l" || return 1
    l=""
    for t in $(xenstore-list /local/domain/0/backend 2>/dev/null); do
        for id in $(xenstore-list "/local/domain/0/backend/$t" 2>/dev/null |
            grep -Ex "$p"); do
            l="$l $t/$id"
        done
    done
    [ -z "$l" ] || bad "backend entries left:$l" || return 1
    l=$(xenstore-list /libxl 2>/dev/null | grep -Ex "$p" | tr '\n' ' ')
    [ -z "$l" ] || bad "/libxl has $l" || return 1
    l=""
    for f in /sys/class/net/vif*; do
        [ -e "$f" ] || continue
        id=${f##*/vif}
        echo "${id%%.*}" | grep -Eqx "$p" && l="$l ${f##*/}"
    done
    [ -z "$l" ] || bad "vif ports left: $l"
}

# Fails (bad) naming what a domain that is no more left behind: domains
# other than dom0 and what domain_leaks names of them, /vm entries,
# suspend images, image files without a VDI.
no_leaks() {
    local l f u
    domain_leaks '[1-9][0-9]*' || return 1
    l=$(xenstore-list /vm 2>/dev/null | tr '\n' ' ')
    [ -z "$l" ] || bad "/vm has $l" || return 1
    l=$(x vdi-list type=suspend --minimal) || return 1
    [ -z "$l" ] || bad "suspend images left: $l" || return 1
    l=""
    for f in "$XCP_STATE_DIR"/sr/*/*; do
        u=$(basename "$f" | grep -oE '^[0-9a-f]{8}-[0-9a-f-]{27}')
        [ -n "$u" ] || continue
        [ -n "$(x vdi-list uuid="$u" --minimal)" ] || l="$l $(basename "$f")"
    done
    [ -z "$l" ] || bad "image files without a VDI:$l"
}

# vm-start of VM $1 must fail (its error printed); then it is halted
# and uninstalled.
start_fails() {
    if x vm-start uuid="$1" >/dev/null; then
        bad "VM $1 started"
        x vm-shutdown uuid="$1" --force
        return 1
    fi
    echo "error: $why"
    why=""
    [ "$(param "$1" power-state)" = halted ] ||
        bad "power-state is $(param "$1" power-state) after the failure" ||
        return 1
    x vm-uninstall uuid="$1" --force >/dev/null
}

# Starts that fail leave nothing behind: one refused before any domain
# exists (the disk's image is gone), one that fails at device attach in
# libxl once the domain is built (a VIF whose "bridge" is lo: libxl's
# vif-bridge script finds no bridge and the hot-plug fails).
sc_failed_start_no_leaks() {
    local vm sr vdi f net
    ensure_halted "$VM" || return 1
    vm=$(make_pv_vm lab-nodisk) || return 1
    x vm-param-set uuid="$vm" domain-type=pv || return 1
    sr=$(x sr-list type=file --minimal | cut -d, -f1) || return 1
    vdi=$(x vdi-create sr-uuid="$sr" name-label=lab-gone \
        virtual-size=16777216) || return 1
    x vbd-create vm-uuid="$vm" vdi-uuid="$vdi" device=0 type=Disk \
        mode=RW >/dev/null || return 1
    f=$(find "$XCP_STATE_DIR/sr" -name "$vdi*" | head -1)
    [ -n "$f" ] || bad "no image file for VDI $vdi" || return 1
    rm -f "$f"
    start_fails "$vm" || return 1
    no_leaks || return 1
    vm=$(make_pv_vm lab-badbridge) || return 1
    x vm-param-set uuid="$vm" domain-type=pv || return 1
    net=$(x network-create name-label=lab-notabridge bridge=lo) || return 1
    x vif-create vm-uuid="$vm" network-uuid="$net" device=0 \
        mac=02:16:3e:00:00:09 >/dev/null || return 1
    start_fails "$vm" || return 1
    x network-destroy uuid="$net" || return 1
    no_leaks
}

sc_no_leaks() { no_leaks; }

echo "scenarios: set$SET; results to $OUT"
run xen_up pv
run install_pv pv
run derive_domain_type pv
run memory_limits_set pv
run vcpus_set pv
run embedded_start pv
run embedded_console pv guest
run embedded_hard_shutdown pv
run xcpd_up pv
run start pv
run xl_create_timing timing
run console pv guest
run guest_agent guest
run pause_unpause pv
run clean_shutdown pv
run start_again pv
run clean_reboot pv
run hard_reboot pv
run suspend_resume pv
run memory_dynamic_range_set pv
run vcpus_number_live pv
run hard_shutdown pv
run xl_pause_noticed behind pv
run xl_destroy_noticed pv
run libxl_error_surfaces pv
run disk_vm devices
run vif_vm devices
run migrate_local pv
run migrate_local_rollback pv
run vif_mtu_ping devices
run vif_hotplug devices
run vif_bridge_not_available devices
run vbd_hotplug devices
run vbd_readonly devices
run vbd_hotplug_diskless devices
run cd devices
run resume_devices devices
run bridge_ports_after_stop devices
run network_destroy_bridge devices
run pvh_guest hvm
run hvm_boot_order hvm
run cd_hvm hvm
run hvm_iso hvm
run remote remote
run reattach_running reattach
run reattach_guest_poweroff reattach
run reattach_guest_reboot reattach
run reattach_guest_crash reattach
run reattach_behind_back reattach
run metrics_from_xen reattach
run failed_start_no_leaks leaks
run vm_uninstall pv
run no_leaks pv
run xcpd_down pv
run livedisk_resize livedisk
run livedisk_cbt livedisk
run livedisk_snapshot livedisk
run livedisk_coalesce livedisk
run livedisk_coalesce_kill livedisk
run livedisk_stream_busy livedisk
run livedisk_vm_snapshot livedisk
run contract contract
[ -s /tmp/xcpd.log ] && { echo "---- xcpd log (tail)"; tail -40 /tmp/xcpd.log; }
note "$npass passed, $nfail failed"
[ $nfail = 0 ]
