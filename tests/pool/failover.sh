#!/bin/sh
# tests/pool/failover.sh - the election's outcome and catch-up
# (docs/design-pool.md §5, §5.1, lib/libxcp/pool) on three tools/netns-pool
# hosts whose members start from a copy of the coordinator's database (as
# repl.sh; pool.join is a later step):
#  - a cold start without the coordinator: the members wait for it;
#  - the coordinator's host killed: hosts 2 and 3 elect one within
#    seconds (host 2: same log, lowest node id); its pool-role says
#    coordinator and writes through it succeed; host 3's says member with
#    host 2's address and its writes answer HOST_IS_SLAVE with it;
#  - host 1 started again becomes a member of host 2 and catches up (its
#    xe shows what was written while it was dead); journals equal;
#  - a member killed, 200 commits made, restarted: caught up, no gap,
#    journals line for line equal; the same with 2,000;
#  - the coordinator cut off with a write of its own that nobody else
#    has: the others elect again; healed, it is a member, caught up by a
#    snapshot that discards its tail;
#  - all along, every 0.2 s, the hosts' pool-role files: never two live
#    hosts that wrote `coordinator` at once (a host killed, or cut off, or
#    restarted and not yet told the outcome, whose file its xcpd has not
#    rewritten since, writes nothing and does not count).
# Prints the failover time (kill -> first write acknowledged by the new
# coordinator) and the catch-up times of 200 and 2,000 records.
# Skips (77) without root, namespaces, corosync or the cluster library.
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/pool/lib.sh"
member=$b/tests/pool/cluster_member
client=$src/tests/pool/repl_client.py
BIG=${XCP_FAILOVER_BIG:-2000}
[ -x "$member" ] || skip "no $member (configure found no corosync libraries)"
pool_env xpf 78 xcp-pool-failover corosync corosync-cfgtool

sampler=""
cleanup() {
    [ -z "$sampler" ] || kill "$sampler" 2>/dev/null
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
D=$XCP_POOL_DIR
logs() {
    for i in 1 2 3; do
        echo "--- host $i xcpd"
        grep -i "pool\|repl" "$D/h$i/log/xcpd.log" | tail -n 15
    done
}
name_on() { xe_on "$1" vm-param-get uuid="$2" param-name=name-label 2>&1; }
jeq() { cmp -s "$D/h$1/state/db.journal" "$D/h$2/state/db.journal"; }

# A host is "dead" from its kill until it starts; "stale" from its start
# until its xcpd rewrites its pool-role (the file's inode changes: every
# write is a rename), since until then the file is what it was when the
# host died and the host takes no write (a coordinator waits for a round
# of states to confirm it).
# (tests/pool/role_sampler.py reads DIR/deadI and DIR/staleI.)
host_down() { # host_down I: kill host I, remember its pool-role's inode
    stat -c %i "$D/h$1/state/pool-role" >"$D/stale$1"
    : >"$D/dead$1"
    "$pool" kill "$1"
}
host_up() { # host_up I: corosync, quorum, xcpd
    supervise "$1"
    until_ok 60 quorate "$1" || not_ok "host $1 quorate again"
    rm -f "$D/dead$1"
    "$pool" start "$1" >/dev/null || not_ok "host $1 starts again"
}
"$pool" up 3 >/dev/null || {
    echo "not ok - up 3"
    exit 1
}
tpl="Debian Bookworm 12"
vm0=$(xe_on 1 vm-install template="$tpl" new-name-label=vm0)
pool_form3 xcp-failover
python3 "$src/tests/pool/role_sampler.py" "$D" 3 &
sampler=$!
a1=$("$pool" addr 1)
a2=$("$pool" addr 2)

check "host 1 takes writes once confirmed" \
    until_ok 30 sh -c "[ \"\$('$pool' exec 1 python3 '$client' 'http://$a1' '$XCP_POOL_PASSWORD' set vm0 vm0a)\" = OK ]"
for i in 2 3; do
    check "host $i follows" until_ok 20 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' vm-param-get uuid=$vm0 param-name=name-label)\" = vm0a ]"
done

# 0. A cold start of the pool with the coordinator not there yet: the
# members wait for it (no election: none of them saw it leave) and point
# clients at it; it comes and takes writes in the same epoch.
for i in 1 2 3; do host_down $i; done
for i in 1 2 3; do supervise $i; done
for i in 1 2 3; do until_ok 60 quorate $i || not_ok "host $i quorate"; done
for i in 2 3; do
    rm -f "$D/dead$i"
    "$pool" start $i >/dev/null || not_ok "host $i starts"
done
sleep 5
for i in 2 3; do
    check "cold start: host $i waits for host 1 ($(role $i))" \
        [ "$(role $i)" = "member $a1 1" ]
done
out=$(cli 2 set vm0a nope 2>&1)
check "cold start: host 2 answers HOST_IS_SLAVE $a1 ($out)" \
    [ "$out" = "ERROR HOST_IS_SLAVE $a1" ]
rm -f "$D/dead1"
"$pool" start 1 >/dev/null || not_ok "host 1 starts"
check "cold start: host 1 takes writes once it is there" \
    until_ok 30 sh -c "[ \"\$('$pool' exec 1 python3 '$client' 'http://$a1' '$XCP_POOL_PASSWORD' set vm0a vm0a)\" = OK ]"
check "cold start: still epoch 1 (no xcp_pool_epochs)" \
    sh -c "! '$pool' exec 1 '$b/cmd/xe/xe' pool-param-get uuid=\$('$pool' exec 1 '$b/cmd/xe/xe' pool-list --minimal) param-name=other-config param-key=xcp_pool_epochs 2>/dev/null | grep -q :"

# 1. The coordinator's host dies: hosts 2 and 3 elect host 2.
host_down 1
t0=$(now_ms)
t1=""
while [ $(($(now_ms) - t0)) -lt 60000 ]; do
    if [ "$(cli 2 set vm0a vm0b 2>&1)" = OK ]; then
        t1=$(now_ms)
        break
    fi
    sleep 0.1
done
check "host 2 takes writes after host 1's death" [ -n "$t1" ]
[ -z "$t1" ] || echo "# failover: coordinator killed -> first write acknowledged by the new one: $((t1 - t0)) ms"
check "host 2's pool-role: coordinator 2 ($(role 2))" [ "$(role 2)" = "coordinator 2" ]
check "host 3's pool-role: member of host 2 ($(role 3))" \
    until_ok 10 sh -c "[ \"\$(cat '$D/h3/state/pool-role')\" = 'member $a2 2' ]"
out=$(cli 3 set vm0b nope 2>&1)
check "host 3 answers HOST_IS_SLAVE $a2 ($out)" [ "$out" = "ERROR HOST_IS_SLAVE $a2" ]
vm2=$(xe_on 2 vm-install template="$tpl" new-name-label=while-dead 2>&1)
check "xe vm-install through host 2 ($vm2)" \
    sh -c "echo '$vm2' | grep -Eq '^[0-9a-f-]{36}\$'"
check "host 3 has it" until_ok 20 sh -c "[ \"\$('$pool' exec 3 '$b/cmd/xe/xe' vm-list uuid=$vm2 params=name-label --minimal)\" = while-dead ]"
check "pool.other_config:xcp_pool_epochs on host 3 names epoch 2" \
    sh -c "'$pool' exec 3 '$b/cmd/xe/xe' pool-param-get uuid=\$('$pool' exec 3 '$b/cmd/xe/xe' pool-list --minimal) param-name=other-config param-key=xcp_pool_epochs | grep -q '^2:'"

# 2. Host 1 comes back: a member of host 2, caught up.
host_up 1
check "host 1's pool-role: member of host 2" \
    until_ok 30 sh -c "[ \"\$(cat '$D/h1/state/pool-role')\" = 'member $a2 2' ]"
check "host 1's xe shows the VM made while it was dead" \
    until_ok 30 sh -c "[ \"\$('$pool' exec 1 '$b/cmd/xe/xe' vm-list uuid=$vm2 params=name-label --minimal)\" = while-dead ]"
check "and the rename" [ "$(name_on 1 "$vm0")" = vm0b ]
out=$(cli 1 set vm0b nope 2>&1)
check "host 1 answers HOST_IS_SLAVE $a2 ($out)" [ "$out" = "ERROR HOST_IS_SLAVE $a2" ]
check "journals equal (1, 2, 3)" until_ok 10 sh -c "cmp -s '$D/h1/state/db.journal' '$D/h2/state/db.journal' && cmp -s '$D/h3/state/db.journal' '$D/h2/state/db.journal'"
check "host 1 caught up by records" grep -q "caught up to seq .* by records" "$D/h1/log/xcpd.log"

# 3. A member dies, N commits happen, it comes back.
catch_up() { # catch_up N: host 3 killed, N commits through host 2, back
    host_down 3
    lat=$(cli 2 bench vm0b "$1")
    check "$1 commits with host 3 down ($lat)" [ -n "$lat" ]
    case $lat in ERROR*) not_ok "bench: $lat" ;; esac
    seq2=$(wc -l <"$D/h2/state/db.journal")
    grep -c "caught up" "$D/h3/log/xcpd.log" >"$D/cu_before" 2>/dev/null
    ts=$(now_ms)
    host_up 3
    if until_ok 120 jeq 2 3; then
        te=$(now_ms)
        ok "host 3 caught up after $1 commits: journals line for line equal"
        echo "# catch-up of $1 records: $((te - ts)) ms from start to journals equal (xcpd start included); $(grep "caught up" "$D/h3/log/xcpd.log" | tail -n 1 | sed 's/.*caught up/caught up/')"
    else
        not_ok "host 3 caught up after $1 commits ($(wc -l <"$D/h3/state/db.journal") of $seq2 lines)"
    fi
    check "no gap: host 3's journal numbers every transaction once" \
        sh -c "awk '{print \$4}' '$D/h3/state/db.journal' | sort -n | uniq -d | grep -q . && exit 1; \
               awk 'NR>1 && \$4 != p + 1 {exit 1} {p = \$4}' '$D/h3/state/db.journal'"
}
catch_up 200
catch_up "$BIG"
# Host 3 acks again: with host 1 down, a write needs it.
host_down 1
check "a write acknowledged by hosts 2 and 3 alone" \
    until_ok 30 sh -c "[ \"\$('$pool' exec 2 python3 '$client' 'http://$a2' '$XCP_POOL_PASSWORD' set vm0b vm0c)\" = OK ]"
host_up 1
check "host 1 follows again" until_ok 30 sh -c "[ \"\$('$pool' exec 1 '$b/cmd/xe/xe' vm-param-get uuid=$vm0 param-name=name-label)\" = vm0c ]"

# 4. A deposed coordinator's own tail: host 2 cut off, a write on it right
# away is journaled there (quorum is not yet known lost) but never
# acknowledged; hosts 1 and 3 elect host 1 (epoch 3); healed, host 2
# becomes its member and, since its last record is not the pool's, is
# caught up by a snapshot that discards that tail.
stat -c %i "$D/h2/state/pool-role" >"$D/stale2" # cut: a minority, no writes
j2=$(wc -l <"$D/h2/state/db.journal")
tok=$(cli 2 token)
"$pool" cut 2
out=$(cli 2 set vm0c tail 2>&1)
check "the cut coordinator does not acknowledge a write ($out)" \
    sh -c "echo '$out' | grep -q '^ERROR POOL_NOT_QUORATE'"
if [ "$(wc -l <"$D/h2/state/db.journal")" -gt "$j2" ]; then
    ok "the write is in the cut coordinator's journal (a tail of its own)"
    ev=$(cli 2 vmevents "$tok" 2>&1)
    check "event.from on it does not show the unacknowledged change ($(echo $ev))" \
        sh -c "echo '$ev' | grep -q '^token ' && ! echo '$ev' | grep -qx tail"
    tail=1
else
    echo "# the cut coordinator knew it was inquorate before the write: no tail to discard this time"
    tail=0
fi
check "hosts 1 and 3 elect host 1: writes through it" \
    until_ok 60 sh -c "[ \"\$('$pool' exec 1 python3 '$client' 'http://$a1' '$XCP_POOL_PASSWORD' set vm0c vm0d)\" = OK ]"
check "host 3 follows host 1" \
    until_ok 10 sh -c "[ \"\$(cat '$D/h3/state/pool-role')\" = 'member $a1 1' ]"
"$pool" heal 2
check "healed, host 2 is a member of host 1" \
    until_ok 30 sh -c "[ \"\$(cat '$D/h2/state/pool-role')\" = 'member $a1 1' ]"
check "host 2 has the pool's write, not its own" \
    until_ok 30 sh -c "[ \"\$('$pool' exec 2 '$b/cmd/xe/xe' vm-param-get uuid=$vm0 param-name=name-label)\" = vm0d ]"
[ $tail -eq 0 ] || check "host 2 was caught up by a snapshot" \
    grep -q "caught up to seq .* by snapshot" "$D/h2/log/xcpd.log"
tok=$(cli 1 token)
check "a write through host 1 reaches host 2" \
    sh -c "[ \"\$('$pool' exec 1 python3 '$client' 'http://$a1' '$XCP_POOL_PASSWORD' set vm0d vm0e)\" = OK ]"
ev=$(cli 1 vmevents "$tok" 2>&1)
check "event.from on host 1 shows the acknowledged change ($(echo $ev))" \
    sh -c "echo '$ev' | grep -qx vm0e"
check "host 2 applies it" until_ok 20 sh -c "[ \"\$('$pool' exec 2 '$b/cmd/xe/xe' vm-param-get uuid=$vm0 param-name=name-label)\" = vm0e ]"
check "host 2's journal continues host 1's" \
    sh -c "[ \"\$(tail -n 1 '$D/h2/state/db.journal')\" = \"\$(tail -n 1 '$D/h1/state/db.journal')\" ]"

kill "$sampler" 2>/dev/null
sampler=""
n=$(wc -l <"$D/samples")
check "never two hosts wrote coordinator at once ($n samples every 0.2 s)" \
    [ ! -s "$D/violations" ]
[ ! -s "$D/violations" ] || head -n 5 "$D/violations"
check "the samples saw host 1, host 2, then host 1 as the coordinator" \
    sh -c "awk '{print \$2}' '$D/samples' | uniq | tr '\\n' ' ' | grep -q '1 .*2 .*1'"

[ $fails -eq 0 ] || logs
[ $fails -eq 0 ]
