#!/bin/sh
# tests/pool/forward.sh - clients, members' writes and forwarding in a pool
# (docs/design-pool.md §7) on three tools/netns-pool hosts: host 1 the
# coordinator, hosts 2 and 3 members whose replicas start as a copy of
# host 1's database and who share one pool secret (pool.join, which makes
# both, is another branch's: until it is here the test builds the pool
# as repl.sh does and writes the secret itself).
#  1. Clients on a member: login_with_password answers HOST_IS_SLAVE
#     [coordinator] (XenAPI.py follows it by hand, XO's xen-api by
#     itself); slave_local_login_with_password reads the replica and a
#     write on it answers HOST_IS_SLAVE; slave_login with the secret gives
#     a pool session, a wrong one SESSION_AUTHENTICATION_FAILED.
#  2. Members' writes through the coordinator: each member's start-up
#     makes its host row (other_config:corosync-nodeid) through the
#     coordinator, and a restart's writes (agent_start_time) reach it;
#     writes on a member's pool session run on the coordinator and are in
#     the member's replica when the call returns (latency printed); a
#     write to a row the coordinator no longer has: HANDLE_INVALID.
# Skips (77) without root, namespaces, corosync or the cluster library.
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/pool/lib.sh"
member=$b/tests/pool/cluster_member
client=$src/tests/pool/fwd_clients.py
N=${XCP_FWD_BENCH:-200}
[ -x "$member" ] || skip "no $member (configure found no corosync libraries)"
pool_env xpf 76 xcp-pool-fwd corosync corosync-cfgtool

cleanup() {
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
[ -z "${XCP_FWD_KEEP:-}" ] || cleanup() { "$pool" down >/dev/null 2>&1; }
trap cleanup EXIT
trap 'exit 1' INT TERM
cl() { # cl HOST ARGS...: fwd_clients.py in host HOST's namespace
    h=$1
    shift
    "$pool" exec "$h" python3 "$client" "$@"
}
supervise() {
    "$pool" exec "$1" "$member" supervise /etc/corosync/corosync.conf \
        /var/log/corosync/corosync.log >>"$XCP_POOL_DIR/sup$1" 2>&1 &
}
quorate() { "$pool" exec "$1" "$member" quorum >/dev/null; }
logs() {
    for i in 1 2 3; do
        echo "--- host $i xcpd"
        grep -i "pool\|repl\|error" "$XCP_POOL_DIR/h$i/log/xcpd.log" | tail -n 15
    done
}
# host_field ON HOST_NODEID FIELD: a field of the host row whose
# other_config:corosync-nodeid is HOST_NODEID, read with xe on host ON.
host_uuid() {
    xe_on "$1" host-list other-config:corosync-nodeid="$2" --minimal 2>/dev/null
}

"$pool" up 3 >/dev/null || {
    echo "not ok - up 3"
    exit 1
}
tpl="Debian Bookworm 12"
vm0=$(xe_on 1 vm-install template="$tpl" new-name-label=vm0)
xe_on 1 vm-install template="$tpl" new-name-label=bench >/dev/null

# The pool, as repl.sh builds it (pool.join is another branch's): the
# members' replicas are copies of host 1's database, one secret for all.
for i in 1 2 3; do "$pool" kill $i; done
for i in 2 3; do
    rm -f "$XCP_POOL_DIR/h$i/state/db.snap" "$XCP_POOL_DIR/h$i/state/db.journal"
    for f in db.snap db.journal; do
        [ ! -f "$XCP_POOL_DIR/h1/state/$f" ] ||
            cp "$XCP_POOL_DIR/h1/state/$f" "$XCP_POOL_DIR/h$i/state/$f"
    done
done
secret=$(openssl rand -hex 32)
nodes=""
for i in 1 2 3; do nodes="$nodes $i:host$i:$(addr $i)"; done
for i in 1 2 3; do
    # shellcheck disable=SC2086
    "$pool" exec $i "$member" conf /etc/corosync/corosync.conf xcp-fwd 1 $nodes
    supervise $i
    (umask 077 && echo "$secret" >"$XCP_POOL_DIR/h$i/state/pool-secret")
done
echo "coordinator 1" >"$XCP_POOL_DIR/h1/state/pool-role"
for i in 2 3; do
    echo "member $(addr 1) 1" >"$XCP_POOL_DIR/h$i/state/pool-role"
done
all=1
for i in 1 2 3; do until_ok 60 quorate $i || all=0; done
check "three hosts quorate" [ $all -eq 1 ]
# Members first: catch-up of a member that missed records is another
# branch's, so no member writes before every member is in the group. Their
# start-up writes find no coordinator yet (logged, lost); restart() below
# brings them, once host 1 serves.
for i in 2 3 1; do "$pool" start $i >/dev/null || not_ok "host $i starts"; done
restart() { # restart HOST: kill -9 its daemons, start them again
    "$pool" kill "$1"
    supervise "$1"
    until_ok 60 quorate "$1" || not_ok "host $1 quorate again"
    "$pool" start "$1" >/dev/null || not_ok "host $1 starts again"
}

# ---- 1. clients on a member ------------------------------------------------
out=$(cl 1 raw "$(url 2)" "$XCP_POOL_PASSWORD" pool.get_all 2>&1)
check "login_with_password on a member: HOST_IS_SLAVE [coordinator] ($out)" \
    [ "$out" = "ERROR HOST_IS_SLAVE $(addr 1)" ]
out=$(cl 1 raw "$(url 2)" wrong-password pool.get_all 2>&1)
check "also with a wrong password, at once ($out)" \
    [ "$out" = "ERROR HOST_IS_SLAVE $(addr 1)" ]
out=$(cl 1 raw "$(url 1)" "$XCP_POOL_PASSWORD" pool.get_all 2>&1)
check "the coordinator serves it ($out)" sh -c "echo \"\$1\" | grep -q '^OK'" - "$out"
# XenAPI.py is fetched (apt-get download, once) here, outside the
# hosts' namespaces, which have no route to a Debian mirror
python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import interop_xenapi
interop_xenapi.fetch_module()" "$src/tests/server" >/dev/null 2>&1 || true
out=$(cl 1 xenapi "$(url 2)" "$XCP_POOL_PASSWORD" 2>&1)
case $out in
*"SKIP no XenAPI.py"*) echo "# XenAPI.py: $out" ;;
*) check "XenAPI.py: member first, then the coordinator ($out)" \
    [ "$out" = "FOLLOWED $(addr 1) $(addr 1)" ] ;;
esac
out=$(cl 1 xo "$(url 3)" "$XCP_POOL_PASSWORD" 2>&1 | tail -n 1)
case $out in
SKIP*) echo "# xen-api: $out" ;;
*) check "XO's xen-api follows HOST_IS_SLAVE to the coordinator ($out)" \
    [ "$out" = "CONNECTED $(addr 1) $(addr 1)" ] ;;
esac
out=$("$pool" exec 1 "$b/cmd/xe/xe" -s "$(addr 2)" -p 80 --nossl -u root \
    -pw "$XCP_POOL_PASSWORD" host-list params=address --minimal 2>&1)
check "xe -s a member follows HOST_IS_SLAVE to the coordinator ($out)" \
    [ "$out" = "$(addr 1)" ]
out=$(cl 1 local "$(url 2)" "$XCP_POOL_PASSWORD" "$vm0" 2>&1)
check "slave_local_login_with_password: reads on the member, writes HOST_IS_SLAVE ($out)" \
    [ "$out" = "READ vm0 WRITE HOST_IS_SLAVE $(addr 1)" ]
h1=$(xe_on 1 pool-param-get uuid="$(xe_on 1 pool-list --minimal)" param-name=master)
h1ref=$(cl 1 raw "$(url 1)" "$XCP_POOL_PASSWORD" host.get_by_uuid "$h1" | cut -d' ' -f2)
out=$(cl 1 secret "$(url 2)" "$h1ref" "$secret" 2>&1)
check "slave_login with the pool secret: a pool session ($out)" [ "$out" = "OK True" ]
out=$(cl 1 secret "$(url 1)" "$h1ref" "$(openssl rand -hex 32)" 2>&1)
check "slave_login with another secret: SESSION_AUTHENTICATION_FAILED ($out)" \
    [ "$out" = "ERROR SESSION_AUTHENTICATION_FAILED $h1ref Pool credentials invalid" ]
out=$(cl 1 raw "$(url 1)" "$XCP_POOL_PASSWORD" pool.member_commit "T 1" 2>&1)
check "pool.member_commit on a client's session: refused as XAPI's internal calls ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR INTERNAL_ERROR Internal API'" - "$out"

# ---- 2. members' writes through the coordinator ---------------------------
check "no host row for the members yet" \
    [ "$(xe_on 1 host-list --minimal | tr ',' '\n' | grep -c .)" = 1 ]
restart 2
restart 3
for i in 2 3; do
    check "host $i's start-up made its host row on the coordinator" \
        until_ok 20 sh -c "[ -n \"\$('$pool' exec 1 '$b/cmd/xe/xe' host-list other-config:corosync-nodeid=$i --minimal)\" ]"
done
h2=$(host_uuid 1 2)
h3=$(host_uuid 1 3)
check "three hosts in the pool's database" \
    [ "$(xe_on 1 host-list --minimal | tr ',' '\n' | grep -c .)" = 3 ]
check "host 2's row has its own address" \
    [ "$(xe_on 1 host-param-get uuid="$h2" param-name=address)" = "$(addr 2)" ]
check "host 3 holds host 2's row (replicated)" \
    until_ok 10 sh -c "[ \"\$('$pool' exec 3 '$b/cmd/xe/xe' host-param-get uuid=$h2 param-name=address)\" = $(addr 2) ]"
check "host 2's dom0 is resident on it" \
    [ "$(xe_on 1 vm-list is-control-domain=true resident-on="$h2" --minimal | tr ',' '\n' | grep -c .)" = 1 ]
t0=$(xe_on 1 host-param-get uuid="$h2" param-name=other-config param-key=agent_start_time)
sleep 1.1
restart 2
check "host 2's restart wrote agent_start_time on the coordinator" \
    until_ok 20 sh -c "t=\$('$pool' exec 1 '$b/cmd/xe/xe' host-param-get uuid=$h2 param-name=other-config param-key=agent_start_time) && [ -n \"\$t\" ] && [ \"\$t\" != '$t0' ]"
check "and still one row for host 2" \
    [ "$(xe_on 1 host-list other-config:corosync-nodeid=2 --minimal | tr ',' '\n' | grep -c .)" = 1 ]
j1=$XCP_POOL_DIR/h1/state/db.journal
check "the three journals are line for line equal" \
    until_ok 10 sh -c "cmp -s '$j1' '$XCP_POOL_DIR/h2/state/db.journal' && cmp -s '$j1' '$XCP_POOL_DIR/h3/state/db.journal'"
h2ref=$(cl 1 raw "$(url 1)" "$XCP_POOL_PASSWORD" host.get_by_uuid "$h2" | cut -d' ' -f2)
lat=$(cl 2 poolbench "$(url 2)" "$h2ref" "$secret" bench "$N" 2>&1)
check "member writes through the coordinator ($lat)" \
    sh -c "echo \"\$1\" | grep -Eq '^[0-9.]+ [0-9.]+ [0-9.]+\$'" - "$lat"
echo "# member write through the coordinator (VM.set_name_label on host 2's pool session) x $N, p50 p99 mean ms: $lat"
check "the coordinator has the member's last write" \
    [ "$(xe_on 1 vm-list name-label=bench --minimal | tr ',' '\n' | grep -c .)" = 1 ]

# A member's transaction whose row is gone on the coordinator.
gone=$(xe_on 1 vm-install template="$tpl" new-name-label=gone)
goneref=$(cl 1 raw "$(url 1)" "$XCP_POOL_PASSWORD" VM.get_by_uuid "$gone" | cut -d' ' -f2)
xe_on 1 vm-uninstall uuid="$gone" force=true >/dev/null
out=$(cl 1 commit "$(url 1)" "$h2ref" "$secret" "T 1 S $goneref 1 name_label 'x")
check "a member's write to a row that vanished: HANDLE_INVALID ($out)" \
    [ "$out" = "ERROR HANDLE_INVALID VM $goneref" ]
out=$(cl 1 commit "$(url 1)" "$h2ref" "$secret" "T 1 Q x")
check "a body that is no transaction: INVALID_VALUE ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR INVALID_VALUE body'" - "$out"
out=$(cl 1 commit "$(url 2)" "$h2ref" "$secret" "T 1")
check "pool.member_commit on a member: HOST_IS_SLAVE ($out)" \
    [ "$out" = "ERROR HOST_IS_SLAVE $(addr 1)" ]

# ---- 3. forwarding ----------------------------------------------------------
# Diskless: the local SR of the copied database is host 1's alone (a VM
# with a disk there answers VM_REQUIRES_SR elsewhere: shared SRs come
# with pool.join).
vmA=$(xe_on 1 vm-install template="$tpl" new-name-label=fwdA)
for v in $(xe_on 1 vbd-list vm-uuid="$vmA" --minimal | tr ',' ' '); do
    xe_on 1 vbd-destroy uuid="$v"
done
vmAref=$(cl 1 raw "$(url 1)" "$XCP_POOL_PASSWORD" VM.get_by_uuid "$vmA" | cut -d' ' -f2)
out=$(cl 1 raw "$(url 1)" "$XCP_POOL_PASSWORD" VM.start_on "$vmAref" "$h2ref" false false 2>&1)
check "VM.start_on host 2 through the coordinator ($out)" [ "$out" = "OK " ]
check "the coordinator's database: Running on host 2" \
    [ "$(xe_on 1 vm-param-get uuid="$vmA" param-name=power-state)/$(xe_on 1 vm-param-get uuid="$vmA" param-name=resident-on)" = "running/$h2" ]
check "host 2's replica says so too" \
    [ "$(xe_on 2 vm-param-get uuid="$vmA" param-name=resident-on)" = "$h2" ]
check "the domain runs in host 2's simulator, not host 1's" \
    sh -c "grep -rqs '$vmA' '$XCP_POOL_DIR/h2/state/sim' && ! grep -rqs '$vmA' '$XCP_POOL_DIR/h1/state/sim'"
out=$(cl 1 raw "$(url 1)" "$XCP_POOL_PASSWORD" VM.start_on "$vmAref" "$h2ref" false false 2>&1)
check "host 2's refusal comes back as it is ($out)" \
    [ "$out" = "ERROR VM_BAD_POWER_STATE $vmAref halted running" ]
check "xe vm-shutdown on the coordinator runs on host 2" \
    sh -c "'$pool' exec 1 '$b/cmd/xe/xe' vm-shutdown uuid=$vmA force=true >/dev/null &&
        [ \"\$('$pool' exec 1 '$b/cmd/xe/xe' vm-param-get uuid=$vmA param-name=power-state)\" = halted ]"
xe_on 1 vm-param-set uuid="$vmA" affinity="$h3"
check "xe vm-start of a VM with affinity host 3 starts it there" \
    sh -c "'$pool' exec 1 '$b/cmd/xe/xe' vm-start uuid=$vmA >/dev/null &&
        [ \"\$('$pool' exec 1 '$b/cmd/xe/xe' vm-param-get uuid=$vmA param-name=resident-on)\" = $h3 ]"
check "pause and unpause there" \
    sh -c "'$pool' exec 1 '$b/cmd/xe/xe' vm-pause uuid=$vmA &&
        [ \"\$('$pool' exec 3 '$b/cmd/xe/xe' vm-param-get uuid=$vmA param-name=power-state)\" = paused ] &&
        '$pool' exec 1 '$b/cmd/xe/xe' vm-unpause uuid=$vmA"
net=$(xe_on 1 network-list --minimal | cut -d, -f1)
vif=$(xe_on 1 vif-create vm-uuid="$vmA" network-uuid="$net" device=3 mac=random)
check "VIF.plug of the VM's new VIF runs on host 3" \
    sh -c "'$pool' exec 1 '$b/cmd/xe/xe' vif-plug uuid=$vif &&
        [ \"\$('$pool' exec 3 '$b/cmd/xe/xe' vif-param-get uuid=$vif param-name=currently-attached)\" = true ] &&
        grep -rqsi \"nic \$('$pool' exec 1 '$b/cmd/xe/xe' vif-param-get uuid=$vif param-name=MAC)\" '$XCP_POOL_DIR/h3/state/sim'"
check "and VIF.unplug" \
    sh -c "'$pool' exec 1 '$b/cmd/xe/xe' vif-unplug uuid=$vif &&
        [ \"\$('$pool' exec 1 '$b/cmd/xe/xe' vif-param-get uuid=$vif param-name=currently-attached)\" = false ]"
check "hard shutdown there" \
    sh -c "'$pool' exec 1 '$b/cmd/xe/xe' vm-shutdown uuid=$vmA force=true"
xe_on 1 vm-param-set uuid="$vmA" affinity=
lat=$(cl 1 fwdbench "$(url 1)" "$XCP_POOL_PASSWORD" "$vmA" "$h2" 10 2>&1)
check "forwarded start/shutdown timed ($lat)" \
    sh -c "echo \"\$1\" | grep -Eq '^[0-9.]+ [0-9.]+ [0-9.]+ / '" - "$lat"
echo "# forwarded VM.start_on host 2 / VM.hard_shutdown x 10, p50 p99 mean ms: $lat"
check "the journals still agree" \
    until_ok 10 sh -c "cmp -s '$j1' '$XCP_POOL_DIR/h2/state/db.journal' && cmp -s '$j1' '$XCP_POOL_DIR/h3/state/db.journal'"

[ $fails -eq 0 ] || logs
[ $fails -eq 0 ]
