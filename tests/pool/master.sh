#!/bin/sh
# tests/pool/master.sh - the coordinator's hand-over and the emergency
# calls (docs/design-pool.md §5.2, §5.3) on three tools/netns-pool hosts
# pooled with xe pool-join:
#  - xe pool-designate-new-master host 2, then host 3, while a client
#    writes all along (one VM.add_to_other_config at a time, following
#    HOST_IS_SLAVE): each hand-over makes the host the coordinator of the
#    next epoch (pool-role files, pool.master on every replica), the
#    others answer HOST_IS_SLAVE with its address, the writes continue,
#    and every acknowledged write is on every replica; the journals'
#    tails are equal;
#  - XAPI's answers: the coordinator itself is a no-op; on a member
#    HOST_IS_SLAVE; a dead host CANNOT_CONTACT_HOST; a bad ref
#    HANDLE_INVALID;
#  - cold starts without the coordinator (its corosync up, its daemon
#    down): the members wait; xe pool-emergency-transition-to-master on a
#    member behind another elects the other (refused, naming it); on one
#    with the longest log it makes it the coordinator; refused with the
#    coordinator in the partition; xe pool-emergency-reset-master points a
#    waiting member at another host (refused while it follows a live
#    coordinator, INVALID_VALUE for no host's address); xe
#    pool-recover-slaves lists the members that accept it; the absent
#    host, back, is a member caught up;
#  - all along, every 0.2 s, the hosts' pool-role files: never two
#    coordinators (tests/pool/role_sampler.py).
# Prints the hand-over times and the writer's longest wait.
# Skips (77) without root, namespaces, corosync or the cluster library.
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/pool/lib.sh"
member=$b/tests/pool/cluster_member
mc=$src/tests/pool/master_client.py
[ -f "$b/lib/libxcp/.libs/xcp-cluster.so" ] && [ -x "$member" ] ||
    skip "no cluster module (configure found no corosync libraries)"
pool_env xpm 83 xcp-pool-master corosync corosync-cfgtool corosync-quorumtool

sampler=""
writer=""
cleanup() {
    [ -z "$writer" ] || kill "$writer" 2>/dev/null
    [ -z "$sampler" ] || kill "$sampler" 2>/dev/null
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
D=$XCP_POOL_DIR
mcall() { # mcall HOST ARGS...: master_client.py against host HOST
    mc_h=$1
    shift
    "$pool" exec "$mc_h" python3 "$mc" "$(url "$mc_h")" "$XCP_POOL_PASSWORD" "$@"
}
count_hosts() { xe_on "$1" host-list params=uuid --minimal | tr ',' '\n' | grep -c .; }
master_on() { # the pool.master uuid in host $1's replica
    xe_on "$1" host-list params=uuid \
        uuid="$(xe_on "$1" pool-param-get uuid="$pool_uuid" param-name=master 2>/dev/null)" --minimal 2>/dev/null
}
is_master() { [ "$(master_on "$1")" = "$2" ]; }
tails_equal() { # the last lines both journals have (up to 100; each
    # host compacts its journal into its snapshot on its own schedule)
    te_n=$(wc -l <"$D/h$1/state/db.journal")
    te_m=$(wc -l <"$D/h$2/state/db.journal")
    [ "$te_m" -lt "$te_n" ] && te_n=$te_m
    [ "$te_n" -gt 100 ] && te_n=100
    [ "$te_n" -gt 0 ] &&
        [ "$(tail -n "$te_n" "$D/h$1/state/db.journal")" = \
            "$(tail -n "$te_n" "$D/h$2/state/db.journal")" ]
}
logs() {
    for i in 1 2 3; do
        echo "--- host $i xcpd"
        grep -i "pool\|repl" "$D/h$i/log/xcpd.log" | tail -n 20
    done
}

"$pool" up 3 >/dev/null || {
    echo "not ok - up 3"
    exit 1
}
a1=$(addr 1)
a2=$(addr 2)
a3=$(addr 3)
for i in 2 3; do
    check "xe pool-join on host $i" xe_on $i pool-join master-address="$a1" \
        master-username=root master-password="$XCP_POOL_PASSWORD"
    check "host $i answers as a member" until_ok 60 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = $i ]"
done
for i in 1 2 3; do
    check "host $i lists 3 hosts" until_ok 20 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = 3 ]"
done
h1=$(xe_on 1 host-list address="$a1" --minimal)
h2=$(xe_on 1 host-list address="$a2" --minimal)
h3=$(xe_on 1 host-list address="$a3" --minimal)
pool_uuid=$(xe_on 1 pool-list --minimal)
check "host 1 is pool.master" [ "$(master_on 1)" = "$h1" ]
python3 "$src/tests/pool/role_sampler.py" "$D" 3 &
sampler=$!
vm=$(xe_on 1 vm-install template="Debian Bookworm 12" new-name-label=w)
check "a VM to write to ($vm)" sh -c "echo '$vm' | grep -Eq '^[0-9a-f-]{36}\$'"
for i in 2 3; do
    check "host $i has it" until_ok 20 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' vm-list uuid=$vm params=name-label --minimal)\" = w ]"
done

# 1. A writer all along: hand-over to host 2, then to host 3.
"$pool" exec 1 python3 "$mc" "$(url 1)" "$XCP_POOL_PASSWORD" writer "$vm" \
    w 24 "$D/acks" >"$D/writer.out" 2>&1 &
writer=$!
sleep 3
designate() { # designate FROM TO TO_UUID TO_ADDR
    t0=$(now_ms)
    out=$(xe_on "$1" pool-designate-new-master host-uuid="$3" 2>&1)
    t1=$(now_ms)
    check "xe pool-designate-new-master on host $1 to host $2 ($out)" [ -z "$out" ]
    echo "# hand-over host $1 -> host $2: $((t1 - t0)) ms (xe's call until it returned)"
    check "host $2's pool-role: coordinator $2 ($(role "$2"))" \
        [ "$(role "$2")" = "coordinator $2" ]
    for o in 1 2 3; do
        [ "$o" = "$2" ] && continue
        check "host $o's pool-role: member of host $2" \
            until_ok 10 sh -c "[ \"\$(cat '$D/h$o/state/pool-role')\" = 'member $4 $2' ]"
        out=$(mcall "$o" rpc VM.add_to_other_config "vm:$vm" x y 2>&1)
        check "a login on host $o: HOST_IS_SLAVE $4 ($out)" \
            [ "$out" = "ERROR HOST_IS_SLAVE $4" ]
    done
    for o in 1 2 3; do
        check "pool.master is host $2 on host $o" until_ok 10 is_master "$o" "$3"
    done
}
designate 1 2 "$h2" "$a2"
sleep 3
designate 2 3 "$h3" "$a3"
check "epochs 2 and 3 begun in host 1's replica (xcp_pool_epochs $(xe_on 1 pool-param-get uuid="$pool_uuid" param-name=other-config param-key=xcp_pool_epochs 2>&1))" \
    sh -c "[ \"\$('$pool' exec 1 '$b/cmd/xe/xe' pool-param-get uuid=$pool_uuid param-name=other-config param-key=xcp_pool_epochs | tr ' ' '\n' | grep -c :)\" -ge 2 ]"

# 2. XAPI's answers.
out=$(xe_on 3 pool-designate-new-master host-uuid="$h3" 2>&1)
check "designating the coordinator itself: a no-op ($out)" \
    sh -c "[ -z \"\$1\" ] && [ \"\$(cat '$D/h3/state/pool-role')\" = 'coordinator 3' ]" - "$out"
out=$(mcall 3 rpc pool.designate_new_master OpaqueRef:nope 2>&1)
check "a bad ref: HANDLE_INVALID ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR HANDLE_INVALID host OpaqueRef:nope'" - "$out"
out=$(mcall 1 rpc --local pool.designate_new_master "host:$h1" 2>&1)
check "on a member: HOST_IS_SLAVE $a3 ($out)" [ "$out" = "ERROR HOST_IS_SLAVE $a3" ]

wait "$writer"
writer=""
w=$(cat "$D/writer.out")
echo "# writer across two hand-overs: $w"
acked=$(echo "$w" | sed -n 's/^acked \([0-9]*\).*/\1/p')
check "the writer's writes were acknowledged (${acked:-0})" [ "${acked:-0}" -gt 20 ]
check "the writer followed HOST_IS_SLAVE" sh -c "echo '$w' | grep -q 'redirects [1-9]'"
for i in 1 2 3; do
    out=$(mcall "$i" holds "$vm" "$D/acks" 2>&1)
    check "host $i holds every acknowledged write ($out)" \
        sh -c "echo '$out' | grep -q '^missing 0 of '"
done
for i in 1 2; do
    check "journal tails equal: host $i and host 3" until_ok 20 tails_equal $i 3 ||
        for j in $i 3; do
            echo "# host $j: $(wc -l <"$D/h$j/state/db.journal") lines, last: $(tail -n 1 "$D/h$j/state/db.journal" | cut -c1-60)"
        done
done

# 3. A dead host cannot be designated.
"$pool" kill 2
check "host 2 gone from host 3's group" \
    until_ok 30 sh -c "'$pool' exec 3 corosync-quorumtool -s | grep -q '^Total votes: *2'"
out=$(mcall 3 rpc pool.designate_new_master "host:$h2" 2>&1)
check "a dead host: CANNOT_CONTACT_HOST ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR CANNOT_CONTACT_HOST OpaqueRef:'" - "$out"
check "and host 3 is still the coordinator, writing" \
    sh -c "[ \"\$(cat '$D/h3/state/pool-role')\" = 'coordinator 3' ] && '$pool' exec 3 '$b/cmd/xe/xe' vm-param-set uuid=$vm name-label=after"

# 4. Cold starts without the coordinator: the members wait for it (no
# election: none of them saw it leave) until a person runs the emergency
# transition on one of them.
# A host is "dead" from its kill until it starts, and "stale" until its
# xcpd rewrites its pool-role (role_sampler.py reads deadI and staleI).
host_down() {
    stat -c %i "$D/h$1/state/pool-role" >"$D/stale$1"
    : >"$D/dead$1"
    "$pool" kill "$1"
}
host_start() {
    rm -f "$D/dead$1"
    "$pool" start "$1" >/dev/null || not_ok "host $1 starts"
}
quorate_on() { "$pool" exec "$1" corosync-quorumtool -s 2>/dev/null | grep -q '^Quorate: *Yes'; }
is_role() { [ "$(role "$1")" = "$2" ]; }
cold_start() { # cold_start ABSENT PRESENT...: all killed; then ABSENT's
    # corosync alone (its daemon stays down) and the others' daemons
    cs_ab=$1
    shift
    for i in 1 2 3; do host_down $i; done
    supervise "$cs_ab"
    for i in "$@"; do host_start $i; done
    for i in "$@"; do
        check "cold start without host $cs_ab: host $i quorate" until_ok 60 quorate_on $i
    done
    sleep 3
}
# 4a. Host 2 is behind (it was dead for host 3's last write): the
# emergency on host 2 elects host 1, which holds the longer log.
cold_start 3 1 2
for i in 1 2; do
    check "host $i waits for host 3 ($(role $i))" is_role $i "member $a3 3"
done
out=$(mcall 1 rpc VM.add_to_other_config "vm:$vm" x y 2>&1)
check "host 1 answers HOST_IS_SLAVE $a3 ($out)" [ "$out" = "ERROR HOST_IS_SLAVE $a3" ]
out=$(xe_on 2 pool-emergency-transition-to-master 2>&1)
check "emergency on host 2, behind host 1: refused, host 1 elected ($out)" \
    sh -c "echo \"\$1\" | grep -q 'node 1 ($a1) holds a longer log'" - "$out"
check "host 1's pool-role: coordinator 1" until_ok 10 is_role 1 "coordinator 1"
check "host 2's pool-role: member of host 1" until_ok 10 is_role 2 "member $a1 1"
check "host 1 takes writes" until_ok 20 sh -c "[ \"\$('$pool' exec 1 python3 '$mc' '$(url 1)' '$XCP_POOL_PASSWORD' rpc VM.add_to_other_config vm:$vm e1 1)\" = 'OK ' ]"
check "pool.master is host 1 on host 2" until_ok 10 is_master 2 "$h1"
host_start 3
check "host 3, the old coordinator, back: a member of host 1" \
    until_ok 30 is_role 3 "member $a1 1"
out=$(xe_on 3 pool-emergency-transition-to-master 2>&1)
check "emergency with the coordinator in the partition: refused ($out)" \
    sh -c "echo \"\$1\" | grep -q 'coordinator $a1 is in this host'" - "$out"
out=$(xe_on 2 pool-emergency-reset-master master-address="$a3" 2>&1)
check "reset to another while following the partition's coordinator: refused ($out)" \
    sh -c "echo \"\$1\" | grep -q 'follows $a1'" - "$out"
out=$(xe_on 2 pool-emergency-reset-master master-address=nowhere 2>&1)
check "reset to an address of no host: INVALID_VALUE ($out)" \
    sh -c "echo \"\$1\" | grep -qi 'invalid'" - "$out"
out=$(xe_on 2 pool-emergency-reset-master master-address="$a1" 2>&1)
check "reset to the coordinator it follows: done ($out)" \
    [ "$out" = "Host agent is now a slave of $a1." ]
out=$(xe_on 1 pool-recover-slaves 2>&1 | sort | tr '\n' ' ')
want=$(printf '%s\n%s\n' "$h2" "$h3" | sort | tr '\n' ' ')
check "xe pool-recover-slaves on host 1: hosts 2 and 3 ($out)" [ "$out" = "$want" ]
out=$(mcall 1 rpc VM.add_to_other_config "vm:$vm" e2 2 2>&1)
check "host 1 still writes ($out)" [ "$out" = "OK " ]
for i in 2 3; do
    check "journal tails equal: host $i and host 1" until_ok 30 tails_equal $i 1
done

# 4b. Equal logs, host 1 absent: emergency_reset_master on host 3 points
# it at host 2, and the emergency on host 2 makes it the coordinator.
cold_start 1 2 3
for i in 2 3; do
    check "host $i waits for host 1 ($(role $i))" is_role $i "member $a1 1"
done
out=$(xe_on 3 pool-emergency-reset-master master-address="$a2" 2>&1)
check "xe pool-emergency-reset-master on host 3 ($out)" \
    [ "$out" = "Host agent is now a slave of $a2." ]
check "host 3's pool-role names host 2 ($(role 3))" is_role 3 "member $a2 2"
out=$(mcall 3 rpc VM.add_to_other_config "vm:$vm" x y 2>&1)
check "host 3 answers HOST_IS_SLAVE $a2 ($out)" [ "$out" = "ERROR HOST_IS_SLAVE $a2" ]
t0=$(now_ms)
out=$(xe_on 2 pool-emergency-transition-to-master 2>&1)
t1=""
check "xe pool-emergency-transition-to-master on host 2 ($out)" \
    [ "$out" = "Host agent is now the master." ]
check "host 2's pool-role: coordinator 2" is_role 2 "coordinator 2"
check "host 2 takes writes" until_ok 20 sh -c "[ \"\$('$pool' exec 2 python3 '$mc' '$(url 2)' '$XCP_POOL_PASSWORD' rpc VM.add_to_other_config vm:$vm e3 3)\" = 'OK ' ]" && t1=$(now_ms)
[ -z "$t1" ] || echo "# emergency transition on host 2 (cold start) -> first write acknowledged: $((t1 - t0)) ms"
check "host 3: member of host 2" until_ok 10 is_role 3 "member $a2 2"
check "pool.master is host 2 on host 3" until_ok 10 is_master 3 "$h2"
host_start 1
check "host 1 back: a member of host 2" until_ok 30 is_role 1 "member $a2 2"
for i in 1 3; do
    out=$(mcall $i holds "$vm" "$D/acks" 2>&1)
    check "host $i still holds every acknowledged write ($out)" \
        sh -c "echo '$out' | grep -q '^missing 0 of '"
    check "journal tails equal: host $i and host 2" until_ok 30 tails_equal $i 2
done

kill "$sampler" 2>/dev/null
sampler=""
check "never two coordinators ($(wc -l <"$D/samples") samples)" \
    [ ! -s "$D/violations" ]
[ ! -s "$D/violations" ] || head -n 5 "$D/violations"
[ $fails -eq 0 ] || logs
[ $fails -eq 0 ]
