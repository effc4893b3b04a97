#!/bin/sh
# tests/pool/placement.sh - VM placement and host maintenance in a pool
# (lib/libxcp/api/placement.c, host.c, pool/fwd.c, pool.c's live) on three
# tools/netns-pool hosts joined with xe pool-join:
#  1. VM.start without a host on the coordinator spreads diskless VMs
#     sized a third of a host's free memory two a host; a seventh finds
#     no host with the memory (VM.get_possible_hosts is empty, its start
#     answers HOST_NOT_ENOUGH_FREE_MEMORY); a host with room again takes
#     it; a VM with a disk on host 1's local SR goes to host 1 and
#     assert_can_boot_here elsewhere answers VM_REQUIRES_SR.
#  2. xe host-disable of a member: VM.start_on there HOST_DISABLED,
#     get_possible_hosts and placement skip it; xe host-enable.
#  3. host.get_vms_which_prevent_evacuation (XAPI's map) and xe
#     host-get-vms-which-prevent-evacuation: no room elsewhere
#     (HOST_NOT_ENOUGH_FREE_MEMORY [vm]), a disk on a local SR
#     (VM_REQUIRES_SR), nothing once there is room.
#  4. host_metrics.live: a killed member is not live within seconds (its
#     VMs stay as they were), VM.start_on there HOST_NOT_LIVE, a call for
#     its VMs HOST_OFFLINE; started again, live again.
#  5. xe host-shutdown of an enabled member: HOST_NOT_DISABLED; of a
#     disabled one: host.enable meanwhile HOST_DISABLED_UNTIL_REBOOT, its
#     VMs halted, its daemon and corosync stop, not live; xe host-reboot of a disabled member: its VMs halted, the
#     daemon restarts, live false then true, still disabled.
#  6. host.evacuate (xe host-evacuate): refused with the plan's error when
#     no other host is enabled, nothing moved; then every VM of the host
#     live-migrated elsewhere, still running.
# Prints how long the pool takes to see a member die and come back.
# Skips (77) without root, namespaces, corosync or the cluster library.
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/pool/lib.sh"
client=$src/tests/pool/fwd_clients.py
[ -f "$b/lib/libxcp/.libs/xcp-cluster.so" ] ||
    skip "no cluster module (configure found no corosync libraries)"
XCP_SIM_HOST_MEMORY=${XCP_SIM_HOST_MEMORY:-8GiB}
pool_env xpp 86 xcp-pool-place corosync corosync-cfgtool corosync-quorumtool

cleanup() {
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
[ -z "${XCP_PLACE_KEEP:-}" ] || cleanup() {
    rm -rf "$XCP_PLACE_KEEP"
    mkdir -p "$XCP_PLACE_KEEP"
    for i in 1 2 3; do cp "$XCP_POOL_DIR/h$i/log/xcpd.log" "$XCP_PLACE_KEEP/h$i.log"; done
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}

trap cleanup EXIT
trap 'exit 1' INT TERM
logs() {
    for i in 1 2 3; do
        echo "--- host $i xcpd"
        tail -n 25 "$XCP_POOL_DIR/h$i/log/xcpd.log"
    done
}
# rpc ARGS...: a XenAPI call on the coordinator (host 1) as root; prints
# "OK <python value>" or "ERROR <code> <params...>".
rpc() {
    "$pool" exec 1 python3 "$client" raw "http://$(addr 1)" \
        "$XCP_POOL_PASSWORD" "$@" 2>&1
}
field() { rpc "$@" | sed -n 's/^OK //p'; } # the value alone
ref_of() { field "$1.get_by_uuid" "$2"; }   # ref_of CLASS UUID
live_of() { # live_of HOSTREF: its host_metrics.live on host 1
    field host_metrics.get_live "$(field host.get_metrics "$1")"
}
live_is() { [ "$(live_of "$1")" = "$2" ]; } # live_is HOSTREF True|False
resident() { xe_on 1 vm-param-get uuid="$1" param-name=resident-on; }
power() { xe_on 1 vm-param-get uuid="$1" param-name=power-state; }
hosts_on() { xe_on "$1" host-list params=uuid --minimal | tr ',' '\n' | grep -c .; }
quorate_n() { # quorate_n HOST VOTES
    "$pool" exec "$1" corosync-quorumtool -s 2>/dev/null |
        grep -q "^Total votes: *$2" &&
        "$pool" exec "$1" corosync-quorumtool -s | grep -q '^Quorate: *Yes'
}

"$pool" up 3 >/dev/null || {
    echo "not ok - up 3"
    exit 1
}
a1=$(addr 1)
tpl="Debian Bookworm 12"
for i in 2 3; do
    check "xe pool-join on host $i" xe_on "$i" pool-join master-address="$a1" \
        master-username=root master-password="$XCP_POOL_PASSWORD"
    check "host $i answers again, as a member" until_ok 60 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = $i ]"
done
check "three hosts quorate" until_ok 30 quorate_n 1 3
h1=$(xe_on 1 host-list other-config:corosync-nodeid=1 --minimal)
h2=$(xe_on 1 host-list other-config:corosync-nodeid=2 --minimal)
h3=$(xe_on 1 host-list other-config:corosync-nodeid=3 --minimal)
r1=$(ref_of host "$h1")
r2=$(ref_of host "$h2")
r3=$(ref_of host "$h3")
for r in "$r1" "$r2" "$r3"; do
    check "host $r is live" until_ok 15 live_is "$r" True
done

# ---- 1. placement ----------------------------------------------------------
# Each member's free memory as it recorded it; VMs of a third of the
# least, so that two fit on a host and three do not.
free=$(xe_on 1 host-compute-free-memory uuid="$h1")
for r in "$r2" "$r3"; do
    f=$(field host_metrics.get_memory_free "$(field host.get_metrics "$r")")
    [ "$f" -lt "$free" ] && free=$f
done
mem=$((free / 3 / 1048576 * 1048576))
echo "# host free memory $free, VM memory $mem"
mkvm() { # mkvm NAME: a diskless VM of $mem bytes; prints its uuid
    u=$(xe_on 1 vm-install template="$tpl" new-name-label="$1")
    for v in $(xe_on 1 vbd-list vm-uuid="$u" --minimal | tr ',' ' '); do
        xe_on 1 vbd-destroy uuid="$v"
    done
    xe_on 1 vm-memory-limits-set uuid="$u" static-min="$mem" \
        dynamic-min="$mem" dynamic-max="$mem" static-max="$mem"
    echo "$u"
}
vms=""
for n in 1 2 3 4 5 6; do
    vms="$vms $(mkvm "p$n")"
done
seven=$(mkvm p7)
# timed PASSWORD VM...: VM.start of each (no host), in ms, one session.
timed() {
    "$pool" exec 1 python3 -c '
import sys, time, xmlrpc.client
p = xmlrpc.client.ServerProxy(sys.argv[1])
s = p.session.login_with_password("root", sys.argv[2], "1.0", "t")["Value"]
out = []
for u in sys.argv[3:]:
    vm = p.VM.get_by_uuid(s, u)["Value"]
    t = time.monotonic()
    r = p.VM.start(s, vm, False, False)
    out.append("%.1f" % ((time.monotonic() - t) * 1000) if r["Status"] == "Success"
               else "ERROR:" + ",".join(r["ErrorDescription"]))
print(" ".join(out))' "http://$a1" "$XCP_POOL_PASSWORD" "$@"
}
lat=$(timed $vms)
for u in $vms; do
    check "VM.start of $u without a host" [ "$(power "$u")" = running ]
done
echo "# VM.start without a host, placed by the coordinator, ms each: $lat"
placed=$(for u in $vms; do resident "$u"; done | sort | uniq -c |
    awk '{print $1}' | tr '\n' ' ')
check "six VMs spread two a host ($placed)" [ "$placed" = "2 2 2 " ]
check "the domains run in the hosts' simulators" sh -c "
    for u in $vms; do
        h=\$('$pool' exec 1 '$b/cmd/xe/xe' vm-param-get uuid=\$u param-name=resident-on)
        i=1; [ \$h = $h2 ] && i=2; [ \$h = $h3 ] && i=3
        grep -rqs \$u '$XCP_POOL_DIR/h'\$i/state/sim || exit 1
    done"
v7=$(ref_of VM "$seven")
lat=$("$pool" exec 1 python3 -c '
import sys, time, xmlrpc.client
p = xmlrpc.client.ServerProxy(sys.argv[1])
s = p.session.login_with_password("root", sys.argv[2], "1.0", "t")["Value"]
ts = []
for i in range(100):
    t = time.monotonic()
    p.VM.get_possible_hosts(s, sys.argv[3])
    ts.append((time.monotonic() - t) * 1000)
ts.sort()
print("p50 %.2f p99 %.2f" % (ts[49], ts[98]))' "http://$a1" "$XCP_POOL_PASSWORD" "$v7")
echo "# VM.get_possible_hosts (3 hosts) x 100, ms: $lat"
out=$(rpc VM.get_possible_hosts "$v7")
check "no host has room for a seventh: get_possible_hosts is empty ($out)" \
    [ "$out" = "OK []" ]
out=$(rpc VM.assert_can_boot_here "$v7" "$r2")
check "assert_can_boot_here on host 2: HOST_NOT_ENOUGH_FREE_MEMORY ($out)" \
    sh -c "echo \"\$1\" | grep -Eq '^ERROR HOST_NOT_ENOUGH_FREE_MEMORY [0-9]+ [0-9]+\$'" - "$out"
out=$(rpc VM.start "$v7" false false)
check "its start finds no memory: HOST_NOT_ENOUGH_FREE_MEMORY ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR HOST_NOT_ENOUGH_FREE_MEMORY'" - "$out"
check "and it stays halted" [ "$(power "$seven")" = halted ]
# Room on host 3 again: a VM of host 3 stopped.
for u in $vms; do [ "$(resident "$u")" = "$h3" ] && stop3=$u; done
xe_on 1 vm-shutdown uuid="$stop3" --force >/dev/null
out=$(rpc VM.get_possible_hosts "$v7")
check "one VM of host 3 stopped: get_possible_hosts is host 3 ($out)" \
    [ "$out" = "OK ['$r3']" ]
check "xe vm-start of the seventh lands on host 3" \
    sh -c "'$pool' exec 1 '$b/cmd/xe/xe' vm-start uuid=$seven && [ \"\$('$pool' exec 1 '$b/cmd/xe/xe' vm-param-get uuid=$seven param-name=resident-on)\" = $h3 ]"
xe_on 1 vm-shutdown uuid="$seven" --force >/dev/null
# A disk on host 1's local SR: only host 1 sees it.
dvm=$(xe_on 1 vm-install template="$tpl" new-name-label=disk)
xe_on 1 vm-memory-limits-set uuid="$dvm" static-min=268435456 \
    dynamic-min=268435456 dynamic-max=268435456 static-max=268435456
dref=$(ref_of VM "$dvm")
sr=$(xe_on 1 vdi-list vbd-uuids="$(xe_on 1 vbd-list vm-uuid="$dvm" type=Disk --minimal | cut -d, -f1)" params=sr-uuid --minimal 2>/dev/null)
[ -n "$sr" ] || sr=$(xe_on 1 vm-disk-list uuid="$dvm" vbd-params=none vdi-params=sr-uuid --minimal 2>/dev/null)
srref=$(ref_of SR "$sr")
out=$(rpc VM.assert_can_boot_here "$dref" "$r2")
check "a VM with a disk on host 1's SR, on host 2: VM_REQUIRES_SR [vm, sr] ($out)" \
    [ "$out" = "ERROR VM_REQUIRES_SR $dref $srref" ]
out=$(rpc VM.get_possible_hosts "$dref")
check "its possible hosts: host 1 alone ($out)" [ "$out" = "OK ['$r1']" ]
check "xe vm-start puts it on host 1" \
    sh -c "'$pool' exec 1 '$b/cmd/xe/xe' vm-start uuid=$dvm && [ \"\$('$pool' exec 1 '$b/cmd/xe/xe' vm-param-get uuid=$dvm param-name=resident-on)\" = $h1 ]"

# ---- 2. disable / enable ---------------------------------------------------
check "xe host-disable of host 3 (a member)" xe_on 1 host-disable uuid="$h3"
check "host 3 disabled in every replica" until_ok 10 sh -c "
    for i in 1 2 3; do [ \"\$('$pool' exec \$i '$b/cmd/xe/xe' host-param-get uuid=$h3 param-name=enabled)\" = false ] || exit 1; done"
out=$(rpc VM.start_on "$v7" "$r3" false false)
check "VM.start_on the disabled host: HOST_DISABLED [host] ($out)" \
    [ "$out" = "ERROR HOST_DISABLED $r3" ]
out=$(rpc VM.get_possible_hosts "$v7")
check "get_possible_hosts skips it ($out)" [ "$out" = "OK []" ]
out=$(rpc VM.start "$v7" false false)
check "VM.start does not place there (no other room: HOST_NOT_ENOUGH_FREE_MEMORY) ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR HOST_NOT_ENOUGH_FREE_MEMORY'" - "$out"
check "still halted" [ "$(power "$seven")" = halted ]
check "xe host-enable of host 3" xe_on 1 host-enable uuid="$h3"
check "host 3 enabled again" until_ok 10 sh -c "[ \"\$('$pool' exec 3 '$b/cmd/xe/xe' host-param-get uuid=$h3 param-name=enabled)\" = true ]"
out=$(rpc VM.get_possible_hosts "$v7")
check "and possible again ($out)" [ "$out" = "OK ['$r3']" ]

# ---- 3. what prevents evacuation -------------------------------------------
# Host 1 is full, host 3 has room for one VM: of host 2's two, the
# binpack places one there and not the other.
out=$(rpc host.get_vms_which_prevent_evacuation "$r2")
n=$(echo "$out" | grep -o "'HOST_NOT_ENOUGH_FREE_MEMORY'" | grep -c .)
k=$(echo "$out" | grep -o "': \[" | grep -c .)
check "one of host 2's VMs has no room elsewhere: [HOST_NOT_ENOUGH_FREE_MEMORY, vm] ($out)" \
    [ "$n/$k" = 1/1 ]
out=$(rpc host.get_vms_which_prevent_evacuation "$r1")
check "host 1's disk VM: VM_REQUIRES_SR ($out)" \
    sh -c "echo \"\$1\" | grep -q \"'$dref': \\['VM_REQUIRES_SR', '$dref', '$srref'\\]\"" - "$out"
out=$(xe_on 1 host-get-vms-which-prevent-evacuation uuid="$h1")
check "xe host-get-vms-which-prevent-evacuation names it with its reason" \
    sh -c "echo \"\$1\" | grep -q 'VM_REQUIRES_SR,$dref,$srref'" - "$out"
out=$(rpc host.assert_can_evacuate "$r1")
check "host.assert_can_evacuate: CANNOT_EVACUATE_HOST ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR CANNOT_EVACUATE_HOST .*VM_REQUIRES_SR,$dref,$srref'" - "$out"
# Host 3 emptied: host 2's VMs would fit there.
for u in $vms; do
    [ "$(resident "$u")" = "$h3" ] && xe_on 1 vm-shutdown uuid="$u" --force >/dev/null
done
out=$(rpc host.get_vms_which_prevent_evacuation "$r2")
check "room on host 3: nothing prevents host 2's evacuation ($out)" [ "$out" = "OK {}" ]
check "host.assert_can_evacuate host 2" [ "$(rpc host.assert_can_evacuate "$r2")" = "OK " ]

# ---- 4. live follows the group -----------------------------------------------
for u in $vms; do [ "$(resident "$u")" = "$h2" ] && on2=$u; done
t0=$(now_ms)
"$pool" kill 2
check "a killed member is not live" until_ok 30 live_is "$r2" False
t1=$(now_ms)
echo "# a killed member seen not live after $((t1 - t0)) ms"
check "its VM stays running on it (no HA)" \
    [ "$(power "$on2")/$(resident "$on2")" = "running/$h2" ]
out=$(rpc VM.start_on "$v7" "$r2" false false)
check "VM.start_on the dead host: HOST_NOT_LIVE ($out)" [ "$out" = "ERROR HOST_NOT_LIVE" ]
out=$(rpc VM.hard_shutdown "$(ref_of VM "$on2")")
check "a call for its VM: HOST_OFFLINE [host] ($out)" [ "$out" = "ERROR HOST_OFFLINE $r2" ]
out=$(rpc VM.get_possible_hosts "$v7")
check "placement skips it ($out)" sh -c "! echo \"\$1\" | grep -q '$r2'" - "$out"
t0=$(now_ms)
"$pool" start 2 >/dev/null
check "started again, it is live" until_ok 60 live_is "$r2" True
t1=$(now_ms)
echo "# a restarted member seen live after $((t1 - t0)) ms (xcpd's start included)"
check "three hosts quorate again" until_ok 30 quorate_n 1 3

# ---- 5. shutdown and reboot -------------------------------------------------
out=$(rpc host.shutdown "$r3")
check "host.shutdown of an enabled member: HOST_NOT_DISABLED ($out)" \
    [ "$out" = "ERROR HOST_NOT_DISABLED" ]
out=$(xe_on 1 host-reboot uuid="$h2" 2>&1)
check "xe host-reboot of an enabled member fails ($out)" \
    sh -c "echo \"\$1\" | grep -qi 'disabled'" - "$out"
xe_on 1 vm-start uuid="$seven" >/dev/null
check "a VM runs on host 3" [ "$(resident "$seven")" = "$h3" ]
xe_on 1 host-disable uuid="$h3"
t0=$(now_ms)
check "xe host-shutdown of the disabled member" xe_on 1 host-shutdown uuid="$h3"
# At once (the daemon stops a second after the call returned): a host on
# its way down cannot be enabled.
out=$(rpc host.enable "$r3")
check "host.enable while it goes down: HOST_DISABLED_UNTIL_REBOOT ($out)" \
    [ "$out" = "ERROR HOST_DISABLED_UNTIL_REBOOT $r3" ]
check "its VM was halted" [ "$(power "$seven")" = halted ]
check "its daemon stops" until_ok 30 sh -c "! '$pool' status | grep -q '^host 3 .* xcpd [0-9]'"
check "and its corosync" until_ok 30 sh -c "[ -z \"\$(for p in \$(ip netns pids ${XCP_POOL_NAME}3); do [ \"\$(cat /proc/\$p/comm 2>/dev/null)\" = corosync ] && echo \$p; done)\" ]"
check "the pool sees it not live" until_ok 30 live_is "$r3" False
t1=$(now_ms)
echo "# xe host-shutdown until the pool sees the host down: $((t1 - t0)) ms"
out=$(rpc host.shutdown "$r3")
check "host.shutdown of the host that is down: HOST_OFFLINE ($out)" \
    [ "$out" = "ERROR HOST_OFFLINE $r3" ]
"$pool" start 3 >/dev/null
check "powered on again (started), host 3 is live" until_ok 60 live_is "$r3" True
check "and still disabled" [ "$(xe_on 1 host-param-get uuid="$h3" param-name=enabled)" = false ]
check "xe host-enable of host 3" xe_on 1 host-enable uuid="$h3"

# Reboot of host 2 with its VM running.
check "host 2 runs its VM" [ "$(power "$on2")/$(resident "$on2")" = "running/$h2" ]
xe_on 1 host-disable uuid="$h2"
down_before=$(grep -c "$r2 (node 2) is no longer live" "$XCP_POOL_DIR/h1/log/xcpd.log")
check "xe host-reboot of the disabled member" xe_on 1 host-reboot uuid="$h2"
check "its VM was halted" [ "$(power "$on2")" = halted ]
check "the pool sees host 2 leave" until_ok 30 sh -c "[ \$(grep -c '$r2 (node 2) is no longer live' '$XCP_POOL_DIR/h1/log/xcpd.log') -gt $down_before ]"
check "and come back: live" until_ok 60 live_is "$r2" True
check "host 2 answers as a member again" until_ok 60 sh -c "[ \"\$('$pool' exec 2 '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = 3 ]"
check "its replica says so: halted, no domain" \
    [ "$(xe_on 2 vm-param-get uuid="$on2" param-name=power-state)/$(xe_on 2 vm-param-get uuid="$on2" param-name=dom-id)" = "halted/-1" ]
check "host 2 still disabled after its reboot" \
    [ "$(xe_on 1 host-param-get uuid="$h2" param-name=enabled)" = false ]
check "xe host-enable of host 2" xe_on 1 host-enable uuid="$h2"
check "three hosts quorate at the end" until_ok 30 quorate_n 1 3

# ---- 6. evacuation (host.evacuate, xe host-evacuate) ------------------------
# Three small VMs started on host 2; with hosts 1 and 3 disabled there is
# nowhere to go (the plan's NO_HOSTS_AVAILABLE, nothing moves); enabled,
# host-evacuate moves all three, two at a time, and they keep running.
small=""
for n in 1 2 3; do
    u=$(xe_on 1 vm-install template="$tpl" new-name-label="ev$n")
    for v in $(xe_on 1 vbd-list vm-uuid="$u" --minimal | tr ',' ' '); do
        xe_on 1 vbd-destroy uuid="$v"
    done
    xe_on 1 vm-memory-limits-set uuid="$u" static-min=128MiB \
        dynamic-min=128MiB dynamic-max=128MiB static-max=128MiB
    check "VM ev$n started on host 2" xe_on 1 vm-start uuid="$u" on="$h2"
    small="$small $u"
done
xe_on 1 host-disable uuid="$h1"
xe_on 1 host-disable uuid="$h3"
out=$(xe_on 1 host-evacuate uuid="$h2" 2>&1)
check "host-evacuate with no other enabled host fails ($out)" \
    sh -c "echo \"\$1\" | grep -q 'no servers available'" - "$out"
for u in $small; do
    check "ev VM $u still on host 2" [ "$(resident "$u")" = "$h2" ]
done
xe_on 1 host-enable uuid="$h1"
xe_on 1 host-enable uuid="$h3"
t0=$(now_ms)
check "xe host-evacuate of host 2" xe_on 1 host-evacuate uuid="$h2" batch-size=2
t1=$(now_ms)
echo "# host-evacuate of 3 running VMs (batches of 2): $((t1 - t0)) ms"
for u in $small; do
    check "VM $u running elsewhere ($(resident "$u"))" \
        sh -c "[ \"\$1\" = running ] && [ \"\$2\" != '$h2' ]" - \
        "$(power "$u")" "$(resident "$u")"
done
check "nothing but dom0 runs on host 2" [ -z "$(xe_on 1 vm-list \
    resident-on="$h2" is-control-domain=false power-state=running --minimal)" ]
out=$(xe_on 1 host-evacuate uuid="$h2" batch-size=x 2>&1)
check "batch-size must be a number ($out)" sh -c "echo \"\$1\" | grep -q 'not an integer'" - "$out"

[ $fails -eq 0 ] || logs
[ $fails -eq 0 ]
