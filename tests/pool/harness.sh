#!/bin/sh
# tests/pool/harness.sh - tools/netns-pool end to end: three hosts come up,
# each answers session.login_with_password over XML-RPC at its address (and
# reaches the others through the bridge); a killed host is gone until
# started again on the same state; a cut host is unreachable from the
# others but answers itself, until healed; every host sees the shared
# directory, where a file SR can live; down leaves no namespace, link,
# process or directory.
# Skips (77) where network namespaces cannot be made (not root, no iproute2).
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/pool/lib.sh"
login=$src/tests/pool/login.py
pool_env xpt 77 xcp-pool-test

cleanup() {
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Is pid $1 a live process? (Not a zombie: the orphaned daemons of this
# machine may wait for a reaper that never comes.)
alive() {
    st=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) &&
        [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
# login FROM TO [TIMEOUT]: log in from host FROM to host TO's address;
# prints login.py's line, returns its status.
login() {
    "$pool" exec "$1" python3 "$login" "http://$(addr "$2"):80/" \
        "$XCP_POOL_PASSWORD" "${3:-20}"
}

t0=$(date +%s.%N)
if ! "$pool" up 3; then
    echo "not ok - up 3"
    cat "$XCP_POOL_DIR"/h*/log/xcpd.log 2>/dev/null | tail -n 40
    exit 1
fi
t1=$(date +%s.%N)
echo "# up 3: $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s"

# Each host answers at its own address, as itself.
uuid1="" uuid2="" uuid3=""
for i in 1 2 3; do
    check "host $i's address is $XCP_POOL_NET.$i" [ "$(addr $i)" = "$XCP_POOL_NET.$i" ]
    out=$(login $i $i)
    eval "uuid$i=\${out%% *}"
    check "host $i answers login_with_password at its address: $out" \
        [ "${out#* }" = "host$i $XCP_POOL_NET.$i" ]
done
check "three distinct hosts" [ "$(printf '%s\n' "$uuid1" "$uuid2" "$uuid3" |
    sort -u | wc -l)" -eq 3 ]
check "host 1 reaches host 2 through the bridge" \
    [ "$(login 1 2 | cut -d' ' -f1)" = "$uuid2" ]
out=$("$pool" exec 1 python3 "$login" "http://$(addr 1):80/" wrong 20)
check "a wrong password is refused: $out" \
    [ "$out" = "ERROR SESSION_AUTHENTICATION_FAILED root Authentication failure" ]
check "the host's state dir is its XCP_STATE_DIR" \
    [ "$("$pool" exec 2 printenv XCP_STATE_DIR)" = "$XCP_POOL_DIR/h2/state" ]
check "the host has its own /run" \
    "$pool" exec 2 sh -c "[ -d /run/corosync ] && [ ! -e /run/netns/${XCP_POOL_NAME}2 ]"

# The shared directory: what one host writes, the others read.
sh_dir=$("$pool" shared)
"$pool" exec 1 sh -c "echo from-host1 > $sh_dir/probe"
check "host 3 sees host 1's file in the shared directory" \
    [ "$("$pool" exec 3 cat "$sh_dir/probe")" = from-host1 ]
# A file SR there: made by host 1, its VDI's image seen by host 2.
xe=$b/cmd/xe/xe
sr=$("$pool" exec 1 "$xe" sr-create name-label=shared1 type=file shared=true \
    device-config:location="$sh_dir/sr1" content-type=user 2>&1)
check "host 1 makes a file SR in the shared directory: $sr" \
    [ "$("$pool" exec 1 "$xe" sr-param-get uuid="$sr" param-name=name-label)" = shared1 ]
vdi=$("$pool" exec 1 "$xe" vdi-create sr-uuid="$sr" name-label=d1 \
    virtual-size=1MiB 2>&1)
check "host 2 sees the image of host 1's new VDI $vdi" \
    "$pool" exec 2 test -f "$sh_dir/sr1/$vdi.qcow2"

# kill: everything of host 2 is gone; start: the same host again.
pid2=$(cat "$XCP_POOL_DIR/h2/xcpd.pid")
check "host 2's pid file names its xcpd" \
    sh -c "grep -q xcpd /proc/$pid2/comm && ip netns pids ${XCP_POOL_NAME}2 | grep -qx $pid2"
"$pool" kill 2
check "kill 2 leaves no process in its namespace" \
    [ -z "$(ip netns pids "${XCP_POOL_NAME}2")" ]
check "kill 2 killed its xcpd" eval "! alive $pid2"
out=$(login 1 2 5)
check "host 2 is unreachable once killed: $out" [ "${out%% *}" = UNREACHABLE ]
check "status shows host 2 without xcpd" \
    sh -c "'$pool' status | grep -q '^host 2 .* xcpd - up\$'"
check "start 2" "$pool" start 2
check "host 2 is back with the same identity (same state)" \
    [ "$(login 1 2 | cut -d' ' -f1)" = "$uuid2" ]

# cut: host 3 is alone, but alive; heal: back.
"$pool" cut 3
out=$(login 1 3 3)
check "host 1 cannot reach the cut host 3: $out" [ "${out%% *}" = UNREACHABLE ]
out=$(login 3 1 3)
check "the cut host 3 cannot reach host 1: $out" [ "${out%% *}" = UNREACHABLE ]
check "the cut host 3 still answers itself" \
    [ "$(login 3 3 | cut -d' ' -f1)" = "$uuid3" ]
check "host 1 still reaches host 2" [ "$(login 1 2 | cut -d' ' -f1)" = "$uuid2" ]
check "status shows host 3 cut" \
    sh -c "'$pool' status | grep -q '^host 3 .* cut\$'"
"$pool" heal 3
check "host 1 reaches host 3 once healed" \
    [ "$(login 1 3 | cut -d' ' -f1)" = "$uuid3" ]

# up again is idempotent: nothing restarted.
pids_before=$(cat "$XCP_POOL_DIR"/h*/xcpd.pid | tr '\n' ' ')
"$pool" up 3 >/dev/null
check "up 3 on running hosts restarts nothing" \
    [ "$(cat "$XCP_POOL_DIR"/h*/xcpd.pid | tr '\n' ' ')" = "$pids_before" ]

# down: nothing left behind.
all_pids="$pids_before"
"$pool" down
check "down removes the namespaces" \
    sh -c "! ip netns list | grep -q '^${XCP_POOL_NAME}[0-9]'"
check "down removes the bridge" sh -c "! ip link show ${XCP_POOL_NAME}br >/dev/null 2>&1"
check "down removes the veths" sh -c "! ip link | grep -q '${XCP_POOL_NAME}v'"
for p in $all_pids; do
    check "down stopped xcpd $p" eval "! alive $p"
done
check "down removes the directory" [ ! -e "$XCP_POOL_DIR" ]

[ $fails -eq 0 ] || {
    echo "$fails failure(s)"
    exit 1
}
