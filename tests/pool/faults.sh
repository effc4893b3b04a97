#!/bin/sh
# tests/pool/faults.sh - the pool's fault suite (issue 13, item 7) on
# tools/netns-pool hosts pooled with xe pool-join, with clients writing
# throughout (tests/pool/master_client.py writer: one
# VM.add_to_other_config at a time, following HOST_IS_SLAVE, every
# acknowledged key logged):
#   3 hosts: the coordinator split off (1 | 2), a member split off, the
#     coordinator's host killed with two writers in flight, a flapping
#     link (a member's, then the coordinator's, cut and healed in a loop),
#     a member rejoining after 15 s of commits;
#   5 hosts (full suite only): splits 2 | 3 with the coordinator in the
#     minority and in the majority, then an even split of 4 (a fifth host
#     dead for longer than last_man_standing's window) that
#     auto_tie_breaker settles: exactly one side quorate, the pool's
#     coordinator in it.
# After each fault is healed the pool settles (one coordinator, the others
# its members) and every replica must hold every acknowledged write: no
# acknowledged change lost. All along, tests/pool/role_sampler.py with the
# namespaces' quorum: never two coordinators in quorate partitions.
# Prints, per fault, the writers' longest wait between two acknowledged
# writes (the failover time a client sees) and the catch-up time.
# make check runs a slice (3 hosts: the coordinator split off and killed);
# `make check-pool-faults` (XCP_POOL_FAULTS=full) runs everything.
# Skips (77) without root, namespaces, corosync or the cluster library.
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/pool/lib.sh"
member=$b/tests/pool/cluster_member
mc=$src/tests/pool/master_client.py
FULL=0 THREE=1
[ "${XCP_POOL_FAULTS:-}" = full ] && FULL=1
# five: the 5-host part alone
[ "${XCP_POOL_FAULTS:-}" = five ] && FULL=1 THREE=0
[ -f "$b/lib/libxcp/.libs/xcp-cluster.so" ] && [ -x "$member" ] ||
    skip "no cluster module (configure found no corosync libraries)"
pool_env xpz 84 xcp-pool-faults corosync corosync-cfgtool corosync-quorumtool

sampler=""
writers=""
cleanup() {
    for p in $writers; do kill "$p" 2>/dev/null; done
    [ -z "$sampler" ] || kill "$sampler" 2>/dev/null
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
D=$XCP_POOL_DIR
N=0
count_hosts() { xe_on "$1" host-list params=uuid --minimal 2>/dev/null | tr ',' '\n' | grep -c .; }
has_hosts() { [ "$(count_hosts "$1")" = "$2" ]; }
quorate_on() { "$pool" exec "$1" corosync-quorumtool -s 2>/dev/null | grep -q '^Quorate: *Yes'; }
logs() {
    for i in $(seq 1 $N); do
        echo "--- host $i xcpd"
        grep -i "pool\|repl" "$D/h$i/log/xcpd.log" | tail -n 25
    done
}
ev() { echo "$(now_ms) $*" >>"$D/events"; } # what the suite did, when
P() { # tools/netns-pool, the fault logged
    ev "$*"
    "$pool" "$@"
}
host_down() { # killed: the sampler ignores its file until it restarts
    ev "kill $1"
    stat -c %i "$D/h$1/state/pool-role" >"$D/stale$1" 2>/dev/null
    : >"$D/dead$1"
    "$pool" kill "$1"
}
host_start() {
    ev "start $1"
    rm -f "$D/dead$1"
    "$pool" start "$1" >/dev/null || not_ok "host $1 starts"
}
# The coordinator by the role files: the one host that says so, and
# whose members all name it.
coord() {
    cd_c=""
    for i in $(seq 1 $N); do
        [ -e "$D/dead$i" ] && continue
        case $(role $i) in "coordinator $i") cd_c="$cd_c $i" ;; esac
    done
    set -- $cd_c
    [ $# -eq 1 ] || return 1
    echo "$1"
}
settled() { # one coordinator, every live host its member, all quorate
    st_c=$(coord) || return 1
    st_a=$(addr "$st_c")
    for i in $(seq 1 $N); do
        [ -e "$D/dead$i" ] && continue
        quorate_on $i || return 1
        [ "$i" = "$st_c" ] && continue
        [ "$(role $i)" = "member $st_a $st_c" ] || return 1
    done
}
# writer HOST PREFIX SECONDS: a client in host HOST's namespace, writing
# to the pool through HOST first (HOST_IS_SLAVE sends it on).
writer() {
    "$pool" exec "$1" python3 "$mc" "$(url "$1")" "$XCP_POOL_PASSWORD" \
        writer "$vm" "$2" "$3" "$D/acks" >"$D/writer.$2" 2>&1 &
    writers="$writers $!"
}
writers_wait() {
    for p in $writers; do wait "$p"; done
    writers=""
}
gap_of() { sed -n 's/.*max_gap_ms \([0-9]*\).*/\1/p' "$D/writer.$1"; }
acked_of() { sed -n 's/^acked \([0-9]*\).*/\1/p' "$D/writer.$1"; }
holds_all() { # every live host holds every acknowledged write
    for i in $(seq 1 $N); do
        [ -e "$D/dead$i" ] && continue
        "$pool" exec $i python3 "$mc" "$(url $i)" "$XCP_POOL_PASSWORD" \
            holds "$vm" "$D/acks" 2>/dev/null | grep -q '^missing 0 of ' ||
            return 1
    done
}
# after NAME: the fault healed, the pool settles and no acknowledged
# write is missing anywhere; prints the writers' numbers.
after() {
    writers_wait
    check "$1: the pool settles" until_ok 90 settled ||
        echo "# roles: $(for i in $(seq 1 $N); do printf '%s; ' "$(role $i)"; done)"
    check "$1: every replica holds all $(wc -l <"$D/acks") acknowledged writes" \
        until_ok 60 holds_all
    if ! holds_all; then
        for i in $(seq 1 $N); do
            echo "# host $i: $("$pool" exec $i python3 "$mc" "$(url $i)" "$XCP_POOL_PASSWORD" holds "$vm" "$D/acks" 2>&1)"
        done
    fi
}
others() { # the hosts 1..N but $1, comma-separated
    seq 1 $N | grep -vx "$1" | paste -sd, -
}
other_than() { # a live host other than $1
    for i in $(seq 1 $N); do
        [ "$i" != "$1" ] && [ ! -e "$D/dead$i" ] && { echo $i; return; }
    done
}

form() { # form N: hosts 1..N up, joined to host 1 with xe
    N=$1
    "$pool" up "$N" >/dev/null || {
        echo "not ok - up $N"
        exit 1
    }
    a1=$(addr 1)
    for i in $(seq 2 "$N"); do
        xe_on $i pool-join master-address="$a1" master-username=root \
            master-password="$XCP_POOL_PASSWORD" >/dev/null ||
            not_ok "xe pool-join on host $i"
        until_ok 60 has_hosts $i $i || not_ok "host $i answers as a member"
    done
    for i in $(seq 1 "$N"); do
        check "$N hosts: host $i lists $N hosts, quorate" \
            until_ok 60 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' host-list params=uuid --minimal | tr ',' '\n' | grep -c .)\" = $N ] && '$pool' exec $i corosync-quorumtool -s | grep -q '^Quorate: *Yes'"
    done
    vm=$(xe_on 1 vm-install template="Debian Bookworm 12" new-name-label=w)
    for i in $(seq 2 "$N"); do
        until_ok 20 sh -c "[ \"\$('$pool' exec $i '$b/cmd/xe/xe' vm-list uuid=$vm params=name-label --minimal)\" = w ]" ||
            not_ok "host $i has the writers' VM"
    done
    : >"$D/acks"
    python3 "$src/tests/pool/role_sampler.py" "$D" "$N" "$XCP_POOL_NAME" &
    sampler=$!
}
unform() {
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    sampler=""
    check "$N hosts: never two coordinators in quorate partitions ($(wc -l <"$D/samples") samples, $(cat "$D/overlaps" 2>/dev/null | wc -l) at a partition's first instant)" \
        [ ! -s "$D/violations" ]
    if [ -s "$D/violations" ]; then
        head -n 5 "$D/violations"
        # the samples around the first one, and what the scenarios did when
        v=$(head -n 1 "$D/violations" | cut -d' ' -f1)
        awk -v v="$v" '$1 >= v - 5000 && $1 <= v + 1000' "$D/samples" | tr '\n' ';'
        echo
        cat "$D/events"
    fi
    [ $fails -eq 0 ] || logs
    "$pool" down >/dev/null 2>&1
    rm -f "$D/samples" "$D/violations" "$D/overlaps" "$D/events" "$D"/dead* \
        "$D"/stale*
}

# split_off TAG NAME GROUP REST SECONDS: the fault, a writer (keys TAG<n>)
# in REST's first host, healed after SECONDS.
split_off() {
    so_w=${4%%,*}
    so_c=$(coord)
    writer "$so_w" "$1" $(($5 + 8))
    sleep 3
    so_t0=$(now_ms)
    P split "$3" "$4"
    so_el=""
    case ",$3," in *",$so_c,"*)
        # the coordinator is in GROUP: REST (a majority) elects
        if elected_in "$4" 30; then so_el=$(($(now_ms) - so_t0)); fi ;;
    esac
    so_left=$(($5 * 1000 - ($(now_ms) - so_t0)))
    [ $so_left -le 0 ] || sleep "$((so_left / 1000)).$(printf %03d $((so_left % 1000)))"
    P unsplit
    after "$2"
    echo "# $2: ${so_el:+a coordinator elected in the majority ${so_el} ms after the split; }writer in host $so_w acked $(acked_of "$1"), longest wait $(gap_of "$1") ms (its calls time out after 3 s)"
}
elected_in() { # elected_in HOSTS SECONDS: one of HOSTS says coordinator
    ei_n=$(($2 * 10))
    while [ $ei_n -gt 0 ]; do
        for i in $(echo "$1" | tr ',' ' '); do
            case $(role $i) in "coordinator $i") return 0 ;; esac
        done
        sleep 0.1
        ei_n=$((ei_n - 1))
    done
    return 1
}
commas() { echo "$1" | tr ',' ' '; }

# ---- 3 hosts ----
if [ $THREE -eq 1 ]; then
form 3
c=$(coord)
check "3 hosts: host 1 is the coordinator" [ "$c" = 1 ]

# The coordinator split off: the two others elect, the old one's writes
# (none acknowledged) go; healed, it is a member.
split_off cs. "3 hosts, coordinator split off" "$c" "$(others "$c")" 10

# The coordinator's host killed with two writers in flight.
c=$(coord)
w=$(other_than "$c")
writer "$w" k1. 18
writer "$w" k2. 18
sleep 4
host_down "$c"
t0=$(now_ms)
el=""
elected_in "$(others "$c")" 30 && el=$(($(now_ms) - t0))
sleep 6
host_start "$c"
after "3 hosts, coordinator killed with writes in flight"
echo "# 3 hosts, coordinator killed: a coordinator elected ${el:-?} ms after the kill; writers acked $(acked_of k1.) + $(acked_of k2.), longest waits $(gap_of k1.) / $(gap_of k2.) ms"

if [ $FULL -eq 1 ]; then
    # A member split off: the coordinator keeps writing.
    c=$(coord)
    m=$(other_than "$c")
    split_off ms. "3 hosts, member split off" "$m" "$c,$(others "$c" | tr ',' '\n' | grep -vx "$m" | paste -sd, -)" 8

    # Flapping links: a member's, then the coordinator's.
    c=$(coord)
    m=$(other_than "$c")
    w=$(seq 1 3 | grep -vx "$c" | grep -vx "$m")
    writer "$c" fm. 20
    for k in 1 2 3 4 5 6; do
        P cut "$m"
        sleep 1.5
        P heal "$m"
        sleep 1.5
    done
    after "3 hosts, a member's link flapping (6 x 1.5 s)"
    echo "# member's link flapping: writer acked $(acked_of fm.), longest wait $(gap_of fm.) ms"
    c=$(coord)
    w=$(other_than "$c")
    writer "$w" fc. 30
    for k in 1 2 3 4; do
        P cut "$c"
        sleep 3
        P heal "$c"
        sleep 3
    done
    after "3 hosts, the coordinator's link flapping (4 x 3 s)"
    echo "# coordinator's link flapping: writer acked $(acked_of fc.), longest wait $(gap_of fc.) ms"

    # A member rejoining after many commits.
    c=$(coord)
    m=$(other_than "$c")
    host_down "$m"
    "$pool" exec "$c" python3 "$mc" "$(url "$c")" "$XCP_POOL_PASSWORD" \
        writer "$vm" rj. 15 "$D/acks" >"$D/writer.rj." 2>&1
    t0=$(now_ms)
    host_start "$m"
    check "3 hosts, a member back after $(acked_of rj.) commits holds them" \
        until_ok 60 sh -c "'$pool' exec $m python3 '$mc' '$(url "$m")' '$XCP_POOL_PASSWORD' holds $vm '$D/acks' | grep -q '^missing 0 of '"
    t1=$(now_ms)
    echo "# member rejoining after $(acked_of rj.) commits: start to all held $((t1 - t0)) ms (xcpd's start-up included)"
    after "3 hosts, a member rejoining after many commits"
fi
unform
fi

# ---- 5 hosts ----
if [ $FULL -eq 1 ]; then
    form 5
    c=$(coord)
    rest=$(others "$c")
    x=${rest%%,*}
    rest3=$(echo "$rest" | tr ',' '\n' | grep -vx "$x" | paste -sd, -)
    split_off s23. "5 hosts, split 2 | 3, coordinator in the 2" "$c,$x" "$rest3" 10
    c=$(coord)
    rest=$(others "$c" | tr ',' '\n')
    maj="$c,$(echo "$rest" | sed -n 1,2p | paste -sd, -)"
    min=$(echo "$rest" | sed -n 3,4p | paste -sd, -)
    writer "$c" s32. 18
    sleep 3
    P split "$maj" "$min"
    sleep 10
    P unsplit
    after "5 hosts, split 3 | 2, coordinator in the 3"
    echo "# 5 hosts, coordinator in the majority: writer acked $(acked_of s32.), longest wait $(gap_of s32.) ms"

    # An even split of 4: a member dead for longer than last_man_standing's
    # window (10 s), then 2 | 2.
    c=$(coord)
    z=$(others "$c" | tr ',' '\n' | tail -n 1)
    host_down "$z"
    check "5 hosts, one dead: 4 votes expected after last_man_standing's window" \
        until_ok 40 sh -c "'$pool' exec $c corosync-quorumtool -s | grep -q '^Expected votes: *4'"
    live=$(seq 1 5 | grep -vx "$z")
    left=$(echo "$live" | sed -n 1,2p | paste -sd, -)
    right=$(echo "$live" | sed -n 3,4p | paste -sd, -)
    writer "${left%%,*}" even.l. 22
    writer "${right%%,*}" even.r. 22
    sleep 3
    P split "$left" "$right"
    sleep 8
    ql=0
    qr=0
    for i in $(commas "$left"); do quorate_on $i && ql=$((ql + 1)); done
    for i in $(commas "$right"); do quorate_on $i && qr=$((qr + 1)); done
    check "even split $left | $right: exactly one side quorate ($ql | $qr)" \
        sh -c "{ [ $ql = 2 ] && [ $qr = 0 ]; } || { [ $ql = 0 ] && [ $qr = 2 ]; }"
    [ $((ql + qr)) = 2 ] ||
        for i in ${left%%,*} ${right%%,*}; do
            echo "# host $i: $("$pool" exec $i corosync-quorumtool -s 2>&1 | grep -E 'Quorate|votes|Quorum:|Flags' | tr '\n' ';')"
            echo "# host $i: $(grep -E 'auto_tie|last_man|wait_for' "$D/h$i/root/etc/corosync/corosync.conf" | tr -s ' \n' ' ')"
        done
    side=$left
    [ $qr = 2 ] && side=$right
    check "even split: the pool's coordinator is on the quorate side ($side)" \
        until_ok 20 sh -c "c=\$(grep -l '^coordinator' $(for i in $(commas "$side"); do printf '%s ' "$D/h$i/state/pool-role"; done) 2>/dev/null | wc -l); [ \$c = 1 ]"
    sleep 2
    P unsplit
    host_start "$z"
    after "5 hosts, even split of 4"
    echo "# even split of 4 ($left | $right, quorate: $side): writers acked $(acked_of even.l.) / $(acked_of even.r.), longest waits $(gap_of even.l.) / $(gap_of even.r.) ms"
    unform
fi

[ $fails -eq 0 ]
