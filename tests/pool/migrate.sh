#!/bin/sh
# tests/pool/migrate.sh - live migration between hosts of a pool
# (VM.pool_migrate, api/vm_migrate.c) on three tools/netns-pool hosts
# joined with xe pool-join (host 1 the coordinator), on the sim:
#  1. a running 1 GiB VM on host 2 migrated to host 3, back to host 2 and
#     to the coordinator, each through the coordinator: power_state
#     running all along (sampled during the migration), resident_on
#     right, the domain in the destination's simulator only; xe
#     vm-migrate with a host name and with a uuid; the VM's RRD handed to
#     the destination (PUT /rrd) before the switch;
#  2. refusals with XAPI's codes: a halted VM (VM_BAD_POWER_STATE), a VM
#     whose disk is on another host's local SR (VM_REQUIRES_SR), a
#     destination without the memory (HOST_NOT_ENOUGH_FREE_MEMORY), a
#     disabled one (HOST_DISABLED); a stream opened on a client's session
#     (INTERNAL_ERROR, as XAPI's intra-pool calls); the VM runs on where
#     it was;
#  3. Async.VM.pool_migrate cancelled midway: TASK_CANCELLED, the VM
#     running where it was, no domain at the destination;
#  4. the destination's xcpd SIGKILLed midway: VM_MIGRATE_FAILED [vm,
#     source, destination, reason], the VM running on the source, no
#     domain left at the destination; then, its host down,
#     HOST_OFFLINE.
# Prints the downtime and total time of the 1 GiB migrations (the sim's
# figures, from the source's log) and the client's view of the call.
# XCP_SIM_MIGRATE_BANDWIDTH is 256 MiB/s so that a migration takes
# seconds (time to sample, cancel and kill).
# Skips (77) without root, namespaces, corosync or the cluster library.
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/pool/lib.sh"
client=$src/tests/pool/migrate_client.py
[ -f "$b/lib/libxcp/.libs/xcp-cluster.so" ] ||
    skip "no cluster module (configure found no corosync libraries)"
pool_env xpm 83 xcp-pool-migrate corosync corosync-cfgtool corosync-quorumtool
XCP_SIM_MIGRATE_BANDWIDTH=${XCP_SIM_MIGRATE_BANDWIDTH:-256MiB}
export XCP_SIM_MIGRATE_BANDWIDTH
XCP_LOG_LEVEL=${XCP_LOG_LEVEL:-info} # the sim's figures, in the source's log
export XCP_LOG_LEVEL

cleanup() {
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
[ -z "${XCP_MIGRATE_KEEP:-}" ] || cleanup() { "$pool" down >/dev/null 2>&1; }
trap cleanup EXIT
trap 'exit 1' INT TERM
ref_of() { # ref_of CLASS UUID: the ref, asked of the coordinator
    "$pool" exec 1 python3 -c "
import sys, xmlrpc.client
p = xmlrpc.client.ServerProxy(sys.argv[1])
s = p.session.login_with_password('root', sys.argv[2])['Value']
print(getattr(p, sys.argv[3]).get_by_uuid(s, sys.argv[4])['Value'])" \
        "$(url 1)" "$XCP_POOL_PASSWORD" "$1" "$2"
}
mc() { # mc ARGS...: migrate_client.py against the coordinator, from host 1
    "$pool" exec 1 python3 "$client" "$(url 1)" "$XCP_POOL_PASSWORD" "$@"
}
# on_sim HOST VM: whether host HOST's simulator has a domain of VM: its
# snapshot's domains, then its log's records in order (a domain's block,
# or "gone <domid>")
on_sim() {
    awk -v u="$2" '/^domain [0-9]+$/ { d = $2; next }
        /^uuid / && d != "" { m[d] = $2; d = ""; next }
        /^gone [0-9]+$/ { delete m[$2] }
        END { for (k in m) if (m[k] == u) f = 1; exit !f }' \
        "$XCP_POOL_DIR/h$1/state/sim/state" "$XCP_POOL_DIR/h$1/state/sim/log" \
        2>/dev/null
}
# only_on HOST VM: the VM's domain in HOST's simulator and no other
only_on() {
    for oo_i in 1 2 3; do
        if [ "$oo_i" = "$1" ]; then
            on_sim "$oo_i" "$2" || return 1
        else
            ! on_sim "$oo_i" "$2" || return 1
        fi
    done
}
logs() {
    for i in 1 2 3; do
        echo "--- host $i xcpd"
        tail -n 15 "$XCP_POOL_DIR/h$i/log/xcpd.log"
    done
}
# figures HOST: the last "migrated" line of host HOST's log, as
# "downtime <us> us, total <ms> ms"
figures() {
    grep "migrated to" "$XCP_POOL_DIR/h$1/log/xcpd.log" | tail -n 1 |
        sed 's/.*downtime \([0-9]*\) us, total \([0-9]*\) ms.*/downtime \1 us, total \2 ms/'
}

"$pool" up 3 >/dev/null || {
    echo "not ok - up 3"
    exit 1
}
a1=$(addr 1)
for i in 2 3; do
    xe_on $i pool-join master-address="$a1" master-username=root \
        master-password="$XCP_POOL_PASSWORD" >/dev/null ||
        not_ok "xe pool-join on host $i"
    until_ok 60 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = $i ]" ||
        not_ok "host $i answers as a member"
done
h1=$(xe_on 1 host-list address="$(addr 1)" --minimal)
h2=$(xe_on 1 host-list address="$(addr 2)" --minimal)
h3=$(xe_on 1 host-list address="$(addr 3)" --minimal)
check "three hosts in the pool" [ -n "$h1" ] && [ -n "$h2" ] && [ -n "$h3" ]

tpl="Debian Bookworm 12"
vm=$(xe_on 1 vm-install template="$tpl" new-name-label=mig)
# no disk: the hosts share no SR (a local SR's disk pins its VM, part 2)
for v in $(xe_on 1 vbd-list vm-uuid="$vm" --minimal | tr ',' ' '); do
    xe_on 1 vbd-destroy uuid="$v"
done
xe_on 1 vm-memory-limits-set uuid="$vm" static-min=1GiB dynamic-min=1GiB \
    dynamic-max=1GiB static-max=1GiB || not_ok "1 GiB VM"
check "xe vm-start on=host 2 (through the coordinator)" \
    xe_on 1 vm-start uuid="$vm" on="$h2"
out=$(mc state "$vm")
check "running on host 2 ($out)" [ "$out" = "Running $h2" ]
check "its domain in host 2's simulator only" until_ok 10 only_on 2 "$vm"

# ---- 1. migrations ----------------------------------------------------------
# the VM's RRD on host 2 has a few samples (one each 5 s) to hand on
sleep 6
check "host 3 holds no RRD of the VM before it goes there" \
    [ ! -e "$XCP_POOL_DIR/h3/state/rrd/$vm" ]
out0=""
for pair in "2 3" "3 2" "2 1"; do
    # shellcheck disable=SC2086
    set -- $pair
    eval "ht_uuid=\$h$2"
    out0=$(mc sample "$vm" "$ht_uuid")
    check "host $1 -> host $2: the task succeeds, power_state Running all along ($out0)" \
        sh -c "echo \"\$1\" | grep -q '^OK [0-9]* Running\$'" - "$out0"
    out=$(mc state "$vm")
    check "host $1 -> host $2: Running, resident_on host $2 ($out)" \
        [ "$out" = "Running $ht_uuid" ]
    check "host $1 -> host $2: the domain in host $2's simulator only" \
        until_ok 10 only_on "$2" "$vm"
    out=$(xe_on 1 console-list vm-uuid="$vm" params=location --minimal)
    check "host $1 -> host $2: the VM's consoles are served by host $2 ($out)" \
        sh -c "[ -n \"\$1\" ] && ! echo \"\$1\" | tr ',' '\n' | grep -v -q '^https://$(addr "$2")/console'" - "$out"
    [ "$pair" != "2 3" ] ||
        check "host 2 handed the VM's RRD to host 3 (PUT /rrd, kept for the VM there)" \
            sh -c "[ -s '$XCP_POOL_DIR/h3/state/rrd/$vm' ] && ! grep -q 'RRD was not handed' '$XCP_POOL_DIR/h2/log/xcpd.log'"
    echo "# 1 GiB VM, host $1 -> host $2: $(figures "$1") (the sim's); the call, as the client saw it: $(echo "$out0" | cut -d' ' -f2) ms"
done
check "the host 2 -> host 3 migration's log has the sim's figures" \
    sh -c "grep 'migrated to' '$XCP_POOL_DIR/h2/log/xcpd.log' | grep -q 'downtime'"
check "xe vm-migrate host=<name> (host 1 -> host 3)" \
    xe_on 1 vm-migrate uuid="$vm" host="$(xe_on 1 host-param-get uuid="$h3" param-name=name-label)"
check "resident on host 3 after xe vm-migrate" \
    [ "$(mc state "$vm")" = "Running $h3" ]
check "xe vm-migrate host=<uuid> (host 3 -> host 2)" \
    xe_on 1 vm-migrate uuid="$vm" host="$h2"
check "resident on host 2 ($(mc state "$vm"))" [ "$(mc state "$vm")" = "Running $h2" ]
until_ok 10 only_on 2 "$vm" || not_ok "domain on host 2 only after xe vm-migrate"

# ---- 2. refusals ------------------------------------------------------------
halted=$(xe_on 1 vm-install template="$tpl" new-name-label=halted)
out=$(mc migrate "$halted" "$h3")
check "a halted VM: VM_BAD_POWER_STATE ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR VM_BAD_POWER_STATE OpaqueRef:[^ ]* running halted'" - "$out"
# a VM with a disk on host 1's local SR, started on host 1
disky=$(xe_on 1 vm-install template="$tpl" new-name-label=disky)
xe_on 1 vm-start uuid="$disky" on="$h1" || not_ok "disky starts on host 1"
out=$(mc migrate "$disky" "$h2")
check "a disk on host 1's local SR, to host 2: VM_REQUIRES_SR ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR VM_REQUIRES_SR OpaqueRef:[^ ]* OpaqueRef:'" - "$out"
check "and it runs on host 1" [ "$(mc state "$disky")" = "Running $h1" ]
xe_on 1 vm-shutdown uuid="$disky" --force >/dev/null
# memory: a VM holding most of host 3's memory
hog=$(xe_on 1 vm-install template="$tpl" new-name-label=hog)
for v in $(xe_on 1 vbd-list vm-uuid="$hog" --minimal | tr ',' ' '); do
    xe_on 1 vbd-destroy uuid="$v"
done
# all of host 3's free memory but 640 MiB: less than the 1 GiB VM needs
free3=$(xe_on 1 host-param-get uuid="$h3" param-name=memory-free)
hogmb=$((free3 / 1048576 - 640))
xe_on 1 vm-memory-limits-set uuid="$hog" static-min=${hogmb}MiB \
    dynamic-min=${hogmb}MiB dynamic-max=${hogmb}MiB static-max=${hogmb}MiB ||
    not_ok "a ${hogmb} MiB VM"
out=$(xe_on 1 vm-start uuid="$hog" on="$h3" 2>&1)
check "a $hogmb MiB VM starts on host 3 ($out)" \
    [ "$(mc state "$hog")" = "Running $h3" ]
echo "# host 3's free memory with it: $(xe_on 1 host-param-get uuid="$h3" param-name=memory-free) bytes"
out=$(mc migrate "$vm" "$h3")
check "to a host without the memory: HOST_NOT_ENOUGH_FREE_MEMORY ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR HOST_NOT_ENOUGH_FREE_MEMORY [0-9]* [0-9]*\$'" - "$out"
check "resident on host 2 ($(mc state "$vm"))" [ "$(mc state "$vm")" = "Running $h2" ]
until_ok 10 only_on 2 "$vm" || not_ok "domain on host 2 only after the refusal"
xe_on 1 vm-shutdown uuid="$hog" --force >/dev/null
if xe_on 1 host-disable uuid="$h3" >/dev/null 2>&1; then
    out=$(mc migrate "$vm" "$h3")
    check "to a disabled host: HOST_DISABLED [host] ($out)" \
        [ "$out" = "ERROR HOST_DISABLED $(ref_of host "$h3")" ]
    xe_on 1 host-enable uuid="$h3" >/dev/null || not_ok "host-enable host 3"
else
    echo "# host-disable of a member not available here: HOST_DISABLED not checked"
fi

out=$(mc raw "$vm")
check "CONNECT /migrate_receive on a client's session: refused in the stream, as XAPI's intra-pool calls ($out)" \
    sh -c "echo \"\$1\" | grep -q '^HTTP/1.1 200 OK | error INTERNAL_ERROR: Internal API'" - "$out"
check "and the VM runs on host 2" [ "$(mc state "$vm")" = "Running $h2" ]

# ---- 3. cancel midway ---------------------------------------------------------
out=$(mc cancel "$vm" "$h3" 1.5)
check "Async.VM.pool_migrate cancelled after 1.5 s: TASK_CANCELLED ($out)" \
    sh -c "echo \"\$1\" | grep -q '^CANCELLED TASK_CANCELLED'" - "$out"
check "the VM runs on host 2 ($(mc state "$vm"))" \
    [ "$(mc state "$vm")" = "Running $h2" ]
check "its domain in host 2's simulator only" until_ok 10 only_on 2 "$vm"
out=$(mc migrate "$vm" "$h3")
check "it migrates after the cancel, host 2 -> host 3 ($out)" [ "$out" = OK ]
out=$(mc migrate "$vm" "$h2")
check "and back, host 3 -> host 2 ($out)" [ "$out" = OK ]

# ---- 4. the destination killed midway ---------------------------------------------
mc sample "$vm" "$h3" >"$XCP_POOL_DIR/killed.out" 2>&1 &
mpid=$!
# under way (the VM's operation recorded), then a second into the stream
until_ok 30 sh -c "'$pool' exec 1 '$b/cmd/xe/xe' vm-param-get uuid=$vm param-name=current-operations | grep -q pool_migrate" ||
    not_ok "the migration to be killed starts"
sleep 1
kill -9 "$(cat "$XCP_POOL_DIR/h3/xcpd.pid")"
wait $mpid
out=$(cat "$XCP_POOL_DIR/killed.out")
h2ref=$(ref_of host "$h2")
check "destination's xcpd SIGKILLed midway: VM_MIGRATE_FAILED [vm, host 2, host 3, reason] ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR VM_MIGRATE_FAILED OpaqueRef:[^ ]* $h2ref OpaqueRef:'" - "$out"
check "power_state Running all along ($out)" \
    sh -c "echo \"\$1\" | grep -q ' Running\$'" - "$out"
check "the VM runs on host 2 ($(mc state "$vm"))" \
    [ "$(mc state "$vm")" = "Running $h2" ]
check "no domain left in host 3's simulator, host 2's runs" \
    until_ok 10 only_on 2 "$vm"
"$pool" kill 3
sleep 4 # corosync's token timeout: host 3 leaves the group
out=$(mc migrate "$vm" "$h3")
check "to a host that is down: HOST_OFFLINE ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR HOST_OFFLINE OpaqueRef:'" - "$out"
check "and the VM runs on host 2" [ "$(mc state "$vm")" = "Running $h2" ]

[ $fails -eq 0 ] || logs
[ $fails -eq 0 ]
