#!/bin/sh
# tests/pool/repl.sh - the database on the replication channel
# (docs/design-pool.md §3, lib/libxcp/pool) on three tools/netns-pool
# hosts: host 1 the coordinator, hosts 2 and 3 members whose replicas start
# as a copy of host 1's database (pool.join is a later step). Writes
# through host 1's API (xe) appear in both members' databases (read with
# xe in each namespace); a member's own write is refused with
# HOST_IS_SLAVE; a member killed and restarted holds what it had
# acknowledged and applies what follows; a cut coordinator refuses writes
# with POOL_NOT_QUORATE and changes nothing, and once healed (deposed by
# the members' election) becomes a member of the new coordinator and
# follows it. Prints the commit latency of
# VM.set_name_label through the pool and on an unpooled host (host 4).
# Skips (77) without root, namespaces, corosync or the cluster library.
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/pool/lib.sh"
member=$b/tests/pool/cluster_member
client=$src/tests/pool/repl_client.py
N=${XCP_REPL_BENCH:-300}
[ -x "$member" ] || skip "no $member (configure found no corosync libraries)"
pool_env xpr 79 xcp-pool-repl corosync corosync-cfgtool

cleanup() {
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
logs() {
    for i in 1 2 3; do
        echo "--- host $i xcpd"
        grep -i "pool\|repl" "$XCP_POOL_DIR/h$i/log/xcpd.log" | tail -n 10
    done
}
name_on() { xe_on "$1" vm-param-get uuid="$2" param-name=name-label 2>&1; }

"$pool" up 4 >/dev/null || {
    echo "not ok - up 4"
    exit 1
}
tpl="Debian Bookworm 12"
# A VM on host 1 before the pool forms, and one on host 4 (unpooled).
vm0=$(xe_on 1 vm-install template="$tpl" new-name-label=vm0)
xe_on 4 vm-install template="$tpl" new-name-label=bench >/dev/null

# The members' replicas: copies of host 1's database (join comes later).
pool_form3 xcp-repl

# 1. Writes through the coordinator reach both members.
check "the coordinator's xe writes (vm-install)" \
    sh -c "xe_out=\$('$pool' exec 1 '$b/cmd/xe/xe' vm-install template='$tpl' new-name-label=vm1) && echo \"\$xe_out\" >'$XCP_POOL_DIR/vm1'"
vm1=$(cat "$XCP_POOL_DIR/vm1" 2>/dev/null)
xe_on 1 vm-param-set uuid="$vm0" name-label=renamed0 >/dev/null ||
    not_ok "vm-param-set on the coordinator"
for i in 2 3; do
    check "host $i's database has the new VM (xe on host $i)" \
        until_ok 10 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' vm-list uuid=$vm1 params=name-label --minimal)\" = vm1 ]"
    check "host $i's database has the rename" \
        [ "$(name_on $i "$vm0")" = renamed0 ]
    check "host $i has the new VM's disk rows" \
        [ "$(xe_on $i vbd-list vm-uuid="$vm1" --minimal | tr ',' '\n' | grep -c .)" = \
          "$(xe_on 1 vbd-list vm-uuid="$vm1" --minimal | tr ',' '\n' | grep -c .)" ]
done
j1=$(wc -l <"$XCP_POOL_DIR/h1/state/db.journal")
check "the members' journals are line for line the coordinator's" \
    sh -c "cmp -s '$XCP_POOL_DIR/h1/state/db.journal' '$XCP_POOL_DIR/h2/state/db.journal' &&
        cmp -s '$XCP_POOL_DIR/h1/state/db.journal' '$XCP_POOL_DIR/h3/state/db.journal'"

# 2. A member does not write: HOST_IS_SLAVE with the coordinator.
out=$(xe_on 2 vm-param-set uuid="$vm0" name-label=nope 2>&1)
check "a member's own write is refused with HOST_IS_SLAVE ($out)" \
    sh -c "echo \"\$1\" | grep -q '$("$pool" addr 1)'" - "$out"
check "and changes nothing there" [ "$(name_on 2 "$vm0")" = renamed0 ]

# 3. A member killed and restarted holds what it acknowledged.
"$pool" kill 2
supervise 2
until_ok 60 quorate 2 || not_ok "host 2 quorate again"
"$pool" start 2 >/dev/null || not_ok "host 2 starts again"
check "restarted host 2 holds the new VM" [ "$(name_on 2 "$vm1")" = vm1 ]
check "restarted host 2 holds the rename" [ "$(name_on 2 "$vm0")" = renamed0 ]
check "a write after the restart" \
    sh -c "[ \"\$('$pool' exec 1 python3 '$client' '$(url 1)' '$XCP_POOL_PASSWORD' set vm1 vm1b)\" = OK ]"
for i in 2 3; do
    check "host $i applies it" until_ok 10 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' vm-param-get uuid=$vm1 param-name=name-label)\" = vm1b ]"
done

# 4. Latency: VM.set_name_label through the pool, and on a single host.
lat_pool=$(cli 1 bench vm1b "$N")
lat_one=$(cli 4 bench bench "$N")
check "latency measured" [ -n "$lat_pool" ] && [ -n "$lat_one" ]
echo "# VM.set_name_label x $N, p50 p99 mean ms: pool of 3 (coordinator) $lat_pool; single host $lat_one"
check "the members followed all $N" until_ok 20 sh -c "[ \"\$('$pool' exec 3 '$b/cmd/xe/xe' vm-param-get uuid=$vm1 param-name=name-label)\" = vm1b ] &&
    cmp -s '$XCP_POOL_DIR/h1/state/db.journal' '$XCP_POOL_DIR/h3/state/db.journal'"

# 5. A cut coordinator is inquorate: writes refused, nothing changed.
"$pool" cut 1
check "the cut coordinator loses quorum" until_ok 30 sh -c "! '$pool' exec 1 '$member' quorum"
before=$(wc -c <"$XCP_POOL_DIR/h1/state/db.journal")
out=$(cli 1 set vm1b cutname)
check "a write on the inquorate coordinator: POOL_NOT_QUORATE ($out)" \
    sh -c "echo \"\$1\" | grep -q '^ERROR POOL_NOT_QUORATE $("$pool" addr 1) 1 2\$'" - "$out"
check "and its database is unchanged" \
    [ "$(name_on 1 "$vm1")" = vm1b ] && [ "$(wc -c <"$XCP_POOL_DIR/h1/state/db.journal")" = "$before" ]
out=$(xe_on 1 vm-param-set uuid="$vm1" name-label=cutname 2>&1)
check "xe shows it" sh -c "echo \"\$1\" | grep -qi 'quorum'" - "$out"
echo "$out" | sed 's/^/# xe: /'
check "reads still work on the cut coordinator" [ "$(name_on 1 "$vm0")" = renamed0 ]
"$pool" heal 1
check "healed, quorate again" until_ok 30 quorate 1
# While host 1 was away the members elected a coordinator among themselves
# for epoch 2 (host 2: equal logs, lowest node id; design §5). Healed, host
# 1 learns it in the round of states that follows, becomes a member
# (pool-role) and answers HOST_IS_SLAVE with host 2's address; its write
# is refused, and nobody takes it. (tests/pool/failover.sh has the rest.)
a2=$("$pool" addr 2)
check "the deposed coordinator's pool-role says member of host 2" \
    until_ok 20 sh -c "grep -qx 'member $a2 2' '$XCP_POOL_DIR/h1/state/pool-role'"
out=$(cli 1 set vm1b lost)
check "a write of the deposed coordinator: HOST_IS_SLAVE $a2 ($out)" \
    [ "$out" = "ERROR HOST_IS_SLAVE $a2" ]
for i in 2 3; do
    check "host $i did not take it" [ "$(name_on $i "$vm1")" = vm1b ]
done
check "a write through the new coordinator reaches the deposed one" \
    sh -c "[ \"\$('$pool' exec 2 python3 '$client' '$(url 2)' '$XCP_POOL_PASSWORD' set vm1b vm1c)\" = OK ]"
check "host 1 applies it" until_ok 20 sh -c "[ \"\$('$pool' exec 1 '$b/cmd/xe/xe' vm-param-get uuid=$vm1 param-name=name-label)\" = vm1c ]"

[ $fails -eq 0 ] || logs
[ $fails -eq 0 ]
