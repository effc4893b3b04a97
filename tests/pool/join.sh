#!/bin/sh
# tests/pool/join.sh - pool membership (docs/design-pool.md §6) on three
# tools/netns-pool hosts that start unpooled: XAPI's pre-join refusals with
# XAPI's errors (a joiner with a running VM, a joiner that is itself the
# coordinator of others, a wrong password: the coordinator's
# SESSION_AUTHENTICATION_FAILED, a member joining again: HOST_IS_SLAVE);
# `xe pool-join` on hosts 2 and 3 makes a pool of three: every host's
# database lists the three, a member's write answers HOST_IS_SLAVE with
# host 1's address, a write on host 1 reaches host 3's replica, every
# corosync.conf lists three nodes and was written by libxcp, and the three
# are quorate; `xe pool-eject` of host 3 leaves two hosts everywhere, and
# host 3 unpooled (its corosync stopped, its configuration and key gone,
# same uuid) and usable. Prints the time to join a host.
# Skips (77) without root, namespaces, corosync or the cluster library.
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/pool/lib.sh"
client=$src/tests/pool/join_client.py
[ -f "$b/lib/libxcp/.libs/xcp-cluster.so" ] ||
    skip "no cluster module (configure found no corosync libraries)"
pool_env xpj 81 xcp-pool-join corosync corosync-cfgtool corosync-quorumtool

cleanup() {
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
join_rpc() { # join_rpc HOST MASTER_ADDRESS PASSWORD [force]
    h=$1
    shift
    "$pool" exec "$h" python3 "$client" "http://$(addr "$h")" \
        "$XCP_POOL_PASSWORD" "$@"
}
hosts_on() { xe_on "$1" host-list params=uuid --minimal | tr ',' '\n' | grep -c .; }
conf() { echo "$XCP_POOL_DIR/h$1/root/etc/corosync/corosync.conf"; }
nodes_in() { grep -c '^ *nodeid:' "$(conf "$1")" 2>/dev/null; }
corosync_of() { # pids of corosync in host $1's namespace
    for p in $(ip netns pids "$XCP_POOL_NAME$1"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = corosync ] && echo "$p"
    done
}
quorate3() {
    "$pool" exec "$1" corosync-quorumtool -s 2>/dev/null |
        grep -q '^Total votes: *3' &&
        "$pool" exec "$1" corosync-quorumtool -s | grep -q '^Quorate: *Yes'
}
logs() {
    for i in 1 2 3; do
        echo "--- host $i xcpd"
        tail -n 15 "$XCP_POOL_DIR/h$i/log/xcpd.log"
    done
}

"$pool" up 3 >/dev/null || {
    echo "not ok - up 3"
    exit 1
}
a1=$(addr 1)
tpl="Debian Bookworm 12"
h3uuid=$(xe_on 3 host-list --minimal)

# 1. Refusals before anything changes.
vm=$(xe_on 3 vm-install template="$tpl" new-name-label=busy)
xe_on 3 vm-start uuid="$vm" >/dev/null || not_ok "vm-start on host 3"
out=$(join_rpc 3 "$a1" "$XCP_POOL_PASSWORD")
check "a joiner with a running VM: JOINING_HOST_CANNOT_HAVE_RUNNING_VMS ($out)" \
    [ "$out" = "ERROR JOINING_HOST_CANNOT_HAVE_RUNNING_VMS" ]
xe_on 3 vm-shutdown uuid="$vm" --force >/dev/null || not_ok "vm-shutdown on host 3"
out=$(join_rpc 2 "$a1" wrong-password)
check "a wrong password: the coordinator's SESSION_AUTHENTICATION_FAILED ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR SESSION_AUTHENTICATION_FAILED'" - "$out"
check "and host 2 is still unpooled" [ ! -f "$XCP_POOL_DIR/h2/state/pool-role" ]
check "and host 1 too" [ ! -f "$XCP_POOL_DIR/h1/state/pool-role" ]

# 2. Host 2 joins host 1 (with xe, as XAPI's: pool-join).
t0=$(now_ms)
check "xe pool-join on host 2" xe_on 2 pool-join master-address="$a1" \
    master-username=root master-password="$XCP_POOL_PASSWORD"
check "host 2 answers again, as a member" until_ok 60 sh -c "[ \"\$('$pool' exec 2 '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = 2 ]"
t1=$(now_ms)
check "host 1 is the coordinator (pool-role)" \
    grep -q '^coordinator 1$' "$XCP_POOL_DIR/h1/state/pool-role"
check "host 2 is a member of host 1 (pool-role)" \
    grep -q "^member $a1 1\$" "$XCP_POOL_DIR/h2/state/pool-role"
out=$(join_rpc 2 "$a1" "$XCP_POOL_PASSWORD")
check "a member joining again: HOST_IS_SLAVE [coordinator] ($out)" \
    [ "$out" = "ERROR HOST_IS_SLAVE $a1" ]
out=$(join_rpc 1 "$(addr 3)" "$XCP_POOL_PASSWORD")
check "the coordinator of others joining: JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS ($out)" \
    [ "$out" = "ERROR JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS" ]

# 3. Host 3 joins.
t2=$(now_ms)
check "xe pool-join on host 3" xe_on 3 pool-join master-address="$a1" \
    master-username=root master-password="$XCP_POOL_PASSWORD"
check "host 3 answers again, as a member" until_ok 60 sh -c "[ \"\$('$pool' exec 3 '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = 3 ]"
t3=$(now_ms)
echo "# time to join a host (xe pool-join until the member answers): $((t1 - t0)) ms (first, makes the coordinator), $((t3 - t2)) ms (second)"
for i in 1 2 3; do
    check "host $i lists 3 hosts" until_ok 10 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = 3 ]"
    check "host $i's corosync.conf lists 3 nodes" until_ok 10 sh -c "[ \"\$(grep -c '^ *nodeid:' '$(conf $i)')\" = 3 ]"
    check "host $i's corosync.conf was written by libxcp" \
        grep -q '^# Written by libxcp' "$(conf "$i")"
    check "host $i is quorate with 3 votes" until_ok 30 quorate3 "$i"
done
check "host 3 kept its uuid in the pool" \
    [ "$(xe_on 1 host-list uuid="$h3uuid" --minimal)" = "$h3uuid" ]
check "host 3's running-VM test VM is not in the pool (its VMs are dropped)" \
    [ -z "$(xe_on 1 vm-list uuid="$vm" --minimal)" ]
check "each host's control domain is in the pool database" \
    [ "$(xe_on 1 vm-list is-control-domain=true params=uuid --minimal | tr ',' '\n' | grep -c .)" = 3 ]
check "host 3's local SR came with its PBD" \
    [ -n "$(xe_on 1 pbd-list host-uuid="$h3uuid" --minimal)" ]
check "host 3's CPUs came" \
    [ -n "$(xe_on 1 host-cpu-list host-uuid="$h3uuid" --minimal)" ]

# 4. Members answer HOST_IS_SLAVE to writes; the coordinator's writes
# reach every replica.
pool_uuid=$(xe_on 1 pool-list --minimal)
out=$(xe_on 2 pool-param-set uuid="$pool_uuid" name-label=nope 2>&1)
check "a write on host 2: HOST_IS_SLAVE with host 1's address ($out)" \
    sh -c "echo \"\$1\" | grep -q 'Master IP address: $a1'" - "$out"
check "a write on host 1" xe_on 1 pool-param-set uuid="$pool_uuid" name-label=joined
check "appears in host 3's replica" until_ok 10 sh -c "[ \"\$('$pool' exec 3 '$b/cmd/xe/xe' pool-param-get uuid=$pool_uuid param-name=name-label)\" = joined ]"
# the totem timeouts follow pool.other_config (XAPI's Cluster has them
# too); a value out of range leaves the default
check "token timeout set in pool.other_config" xe_on 1 pool-param-set \
    uuid="$pool_uuid" other-config:xcp_corosync_token_ms=2500 \
    other-config:xcp_corosync_token_coefficient_ms=nonsense
for i in 1 3; do
    check "host $i's corosync.conf has token 2500, coefficient 100" \
        until_ok 10 sh -c "grep -q '^ *token: 2500\$' '$(conf $i)' &&
            grep -q '^ *token_coefficient: 100\$' '$(conf $i)'"
done
check "host 3 still quorate after the reload" until_ok 30 quorate3 3

# 5. Eject host 3.
check "xe pool-eject of host 3" xe_on 1 pool-eject host-uuid="$h3uuid" --force
for i in 1 2; do
    check "host $i lists 2 hosts" until_ok 10 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = 2 ]"
    check "host $i's corosync.conf lists 2 nodes" until_ok 10 sh -c "[ \"\$(grep -c '^ *nodeid:' '$(conf $i)')\" = 2 ]"
done
check "host 3 restarts unpooled (one host, itself)" until_ok 60 sh -c "[ \"\$('$pool' exec 3 '$b/cmd/xe/xe' host-list params=uuid --minimal)\" = $h3uuid ]"
check "host 3 has no pool-role" [ ! -f "$XCP_POOL_DIR/h3/state/pool-role" ]
check "host 3's corosync stopped" until_ok 15 sh -c "[ -z \"\$(for p in \$(ip netns pids $XCP_POOL_NAME''3); do [ \"\$(cat /proc/\$p/comm 2>/dev/null)\" = corosync ] && echo \$p; done)\" ]"
check "host 3's corosync.conf and key are gone" \
    [ ! -e "$(conf 3)" ] && [ ! -e "$XCP_POOL_DIR/h3/root/etc/corosync/authkey" ]
check "host 3 is usable (vm-install)" sh -c "'$pool' exec 3 '$b/cmd/xe/xe' vm-install template='$tpl' new-name-label=after >/dev/null"
check "hosts 1 and 2 still write and replicate" sh -c "'$pool' exec 1 '$b/cmd/xe/xe' pool-param-set uuid=$pool_uuid name-label=two &&
    sleep 0.5 && [ \"\$('$pool' exec 2 '$b/cmd/xe/xe' pool-param-get uuid=$pool_uuid param-name=name-label)\" = two ]"


# 6. host.destroy (xe host-forget) of a dead member: host 3 joins again,
# is refused while live, then dies and is forgotten.
check "host 3 joins again" xe_on 3 pool-join master-address="$a1" \
    master-username=root master-password="$XCP_POOL_PASSWORD"
check "host 3 is a member again" until_ok 60 sh -c "[ \"\$('$pool' exec 1 '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = 3 ] && [ \"\$('$pool' exec 3 '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = 3 ]"
check "host 3 in the pool's quorum" until_ok 30 quorate3 1
out=$(xe_on 1 host-forget uuid="$h3uuid" --force 2>&1)
check "xe host-forget of a live member: HOST_IS_LIVE ($out)" \
    sh -c "echo \"\$1\" | grep -qi 'live'" - "$out"
"$pool" kill 3
check "host 1 sees host 3 gone" until_ok 30 sh -c "'$pool' exec 1 corosync-quorumtool -s | grep -q '^Total votes: *2'"
check "xe host-forget of the dead member" xe_on 1 host-forget uuid="$h3uuid" --force
for i in 1 2; do
    check "host $i lists 2 hosts" until_ok 10 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = 2 ]"
    check "host $i's corosync.conf lists 2 nodes" until_ok 10 sh -c "[ \"\$(grep -c '^ *nodeid:' '$(conf $i)')\" = 2 ]"
done

[ $fails -eq 0 ] || logs
[ $fails -eq 0 ]
