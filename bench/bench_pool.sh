#!/bin/sh
# bench/bench_pool.sh - a pool's figures at scale on this machine (issue 13,
# item 8), with tools/netns-pool: N simulated hosts (BENCH_POOL_HOSTS,
# default 16) each with its own xcpd and corosync, joined one by one with
# `xe pool-join` (time of each join); BENCH_POOL_VMS VMs (default 1000)
# made on the coordinator; then the time for a committed change to be
# acknowledged and to reach every replica (p50/p99, event.from on every
# member), beside the same call on an unpooled host (host N+1, never
# joined: the peer of the ratio); then the coordinator's host killed and
# the time until another takes a write. XAPI's figures are printed
# beside ours: XAPI pools stop at 64 hosts, XAPI's members hold no
# database (they ask the coordinator, whose database is written to disk
# and copied to members for recovery every few minutes), and a dead
# coordinator waits for a person (pool-emergency-transition-to-master).
# Needs root, namespaces, corosync and the cluster module; prints SKIP
# otherwise. `make bench-pool`; `make bench-pool BENCH_POOL_HOSTS=64`.
set -u
. "${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/pool/lib.sh"
N=${BENCH_POOL_HOSTS:-16}
V=${BENCH_POOL_VMS:-1000}
W=${BENCH_POOL_WRITES:-200}
py=$src/bench/bench_pool.py
skip() { # a benchmark that cannot run says so and succeeds
    echo "SKIP bench-pool: $*"
    exit 0
}
[ -f "$b/lib/libxcp/.libs/xcp-cluster.so" ] || skip "no cluster module"
pool_env xbp 83 xcp-bench-pool corosync corosync-cfgtool
XCP_POOL_TIMEOUT=300
export XCP_POOL_TIMEOUT
cleanup() {
    "$pool" down >/dev/null 2>&1
    rm -rf "$XCP_POOL_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
last=$((N + 1))

t0=$(now_ms)
"$pool" up "$last" >/dev/null || {
    echo "FAIL: up $last"
    exit 1
}
echo "up: $last unpooled hosts in $(($(now_ms) - t0)) ms"
a1=$(addr 1)
joins=""
# BENCH_POOL_TOKEN_MS: the pool's totem token (pool.other_config, set
# once the pool exists): many hosts sharing a few cores need more than
# the default 1 s + 0.1 s per host to keep their membership
tok=${BENCH_POOL_TOKEN_MS:-}
for i in $(seq 2 "$N"); do
    t=$(now_ms)
    if ! xe_on "$i" pool-join master-address="$a1" master-username=root \
        master-password="$XCP_POOL_PASSWORD" >/dev/null; then
        echo "FAIL: host $i does not join"
        exit 1
    fi
    # joined once it answers as a member again (it restarts)
    until_ok 120 sh -c "\"$pool\" exec $i \"$b/cmd/xe/xe\" pool-list \
        --minimal" || {
        echo "FAIL: host $i does not come back after its join"
        exit 1
    }
    joins="$joins $(($(now_ms) - t))"
    if [ "$i" = 2 ] && [ -n "$tok" ]; then
        xe_on 1 pool-param-set uuid="$(xe_on 1 pool-list --minimal)" \
            other-config:xcp_corosync_token_ms="$tok" >/dev/null
        echo "token: ${tok} ms + 100 ms per host"
    fi
done
echo "$joins" | tr ' ' '\n' | grep . | sort -n | awk -v n="$N" '
    { v[NR] = $1; s += $1 }
    END { printf "join: %d hosts, each %d-%d ms (median %d), %.1f s in all\n",
          n - 1, v[1], v[NR], v[int((NR + 1) / 2)], s / 1000 }'
hosts=$(xe_on 1 host-list --minimal | tr ',' '\n' | grep -c .)
[ "$hosts" = "$N" ] || {
    echo "FAIL: the coordinator lists $hosts hosts, not $N"
    exit 1
}
"$pool" exec "$last" python3 "$py" fill "$(url 1)" "$XCP_POOL_PASSWORD" \
    "$V" || exit 1
members=""
for i in $(seq 2 "$N"); do members="$members $(url "$i")"; done
# shellcheck disable=SC2086
"$pool" exec "$last" python3 "$py" propagate "$(url 1)" "$(url "$last")" \
    "$XCP_POOL_PASSWORD" "$W" $members || exit 1
# The peer of the commit: the same corosync group machinery without the
# database (lib/libxcp/cluster's replication alone, tests/pool/
# cluster_member in a group of its own on the same hosts' corosyncs).
coord_id=$(xe_on 1 host-param-get uuid="$(xe_on 1 pool-param-get \
    uuid="$(xe_on 1 pool-list --minimal)" param-name=master)" \
    param-name=other-config param-key=corosync-nodeid 2>/dev/null)
if [ -x "$b/tests/pool/cluster_member" ] && [ -n "$coord_id" ]; then
    rp=""
    for i in $(seq 1 "$N"); do
        "$pool" exec "$i" "$b/tests/pool/cluster_member" repl "$coord_id" \
            "$N" "$W" "$XCP_POOL_DIR/repl$i" 120 \
            >"$XCP_POOL_DIR/repl$i.out" 2>&1 &
        rp="$rp $!"
    done
    for p in $rp; do wait "$p"; done
    sed -n 's/^commit latency: /raw corosync replication (no database), commit: /p' \
        "$XCP_POOL_DIR/repl1.out"
else
    echo "raw corosync replication: not measured (tests/pool/cluster_member" \
        "not built: make check builds it)"
fi
rss=$(for p in $(ip netns pids "${XCP_POOL_NAME}2"); do
    c=$(cat "/proc/$p/comm" 2>/dev/null)
    r=$(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null)
    echo "$c=$((${r:-0} / 1024))MB"
done | tr '\n' ' ')
echo "a member's processes: $rss"
urls=""
for i in $(seq 2 "$N"); do urls="$urls $(url "$i")"; done
"$pool" kill 1
# shellcheck disable=SC2086
"$pool" exec "$last" python3 "$py" failover $urls "$XCP_POOL_PASSWORD" ||
    exit 1
echo "XAPI beside: at most 64 hosts per pool; members hold no database" \
    "(reads and writes go to the coordinator; its database is copied to" \
    "members every 300 s for recovery only); a dead coordinator waits for" \
    "pool-emergency-transition-to-master by hand"
