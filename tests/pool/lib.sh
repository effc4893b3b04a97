# tests/pool/lib.sh - what the pool tests (harness.sh, cluster.sh, repl.sh,
# failover.sh) share; sourced, after `set -u`. Sets src (source tree), b
# (build tree) and pool (tools/netns-pool); defines skip, ok/not_ok/check
# (counting failures in $fails), now_ms, role and pool_env; and, for the
# tests of the replicated database, until_ok, xe_on, url, cli, supervise, quorate and
# pool_form3 (which use $member and $client).
src=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
b=${abs_top_builddir:-$src}
pool=$src/tools/netns-pool
fails=0

skip() {
    echo "SKIP: $*"
    exit 77
}

now_ms() { date +%s%3N; } # wall clock, ms
# role HOST: host HOST's pool-role file (its state directory's)
role() { cat "$XCP_POOL_DIR/h$1/state/pool-role" 2>/dev/null; }

ok() { echo "ok - $*"; }
not_ok() {
    echo "not ok - $*"
    fails=$((fails + 1))
}
# check DESCRIPTION COMMAND...: the command must succeed.
check() {
    d=$1
    shift
    if "$@"; then ok "$d"; else not_ok "$d"; fi
}

# pool_env TAG NET DIRNAME [TOOL...]: skips (77) unless root with ip,
# unshare, python3, openssl and the TOOLs, a built xcpd and a network
# namespace that can be made; then exports the harness's settings for a
# pool named TAG<pid> on 10.NET.<pid-derived>.0/24 with its state under a
# new ${TMPDIR:-/tmp}/DIRNAME.XXXXXX.
pool_env() {
    pe_tag=$1 pe_net=$2 pe_dir=$3
    shift 3
    [ "$(id -u)" -eq 0 ] || skip "needs root"
    for t in ip unshare python3 openssl "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "no $t"
    done
    [ -x "$b/cmd/xcpd/xcpd" ] || skip "xcpd not built"
    XCP_POOL_NAME=$pe_tag$(($$ % 100000))
    XCP_POOL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$pe_dir.XXXXXX") || exit 1
    XCP_POOL_NET=10.$pe_net.$(($$ % 200 + 20))
    XCP_POOL_PASSWORD=pw-$$
    XCP_POOL_XCPD=$b/cmd/xcpd/xcpd
    XCP_POOL_TIMEOUT=120 # make check may run many daemons at once
    XCP_SIM_HOST_MEMORY=${XCP_SIM_HOST_MEMORY:-16GiB}
    export XCP_POOL_NAME XCP_POOL_DIR XCP_POOL_NET XCP_POOL_PASSWORD \
        XCP_POOL_XCPD XCP_POOL_TIMEOUT XCP_SIM_HOST_MEMORY
    if ! ip netns add "${XCP_POOL_NAME}probe" 2>/dev/null; then
        rm -rf "$XCP_POOL_DIR"
        skip "cannot make a network namespace"
    fi
    ip netns del "${XCP_POOL_NAME}probe"
}

# until_ok SECONDS CMD...: run CMD every 0.2 s until it succeeds (0) or
# SECONDS pass (1).
until_ok() {
    uo_n=$(($1 * 5))
    shift
    while ! "$@" >/dev/null 2>&1; do
        uo_n=$((uo_n - 1))
        [ $uo_n -gt 0 ] || return 1
        sleep 0.2
    done
}
xe_on() { # xe_on HOST ARGS...: host HOST's own xe
    xo_h=$1
    shift
    "$pool" exec "$xo_h" "$b/cmd/xe/xe" "$@"
}
addr() { "$pool" addr "$1"; } # addr HOST: its address
url() { echo "http://$("$pool" addr "$1")"; }
cli() { # cli HOST ARGS...: repl_client.py ($client) against host HOST
    cl_h=$1
    shift
    "$pool" exec "$cl_h" python3 "$client" "$(url "$cl_h")" \
        "$XCP_POOL_PASSWORD" "$@"
}
supervise() { # host $1's corosync, supervised by $member, in the background
    "$pool" exec "$1" "$member" supervise /etc/corosync/corosync.conf \
        /var/log/corosync/corosync.log >>"$XCP_POOL_DIR/sup$1" 2>&1 &
}
quorate() { "$pool" exec "$1" "$member" quorum >/dev/null; }

# pool_form3 CLUSTER: hosts 1-3 (up) as a pool whose members' replicas are
# copies of host 1's database (pool.join is a later step): the three
# killed, hosts 2 and 3 given host 1's db.snap and db.journal, corosync
# configured (cluster name CLUSTER) and supervised on each, pool-role
# files (host 1 the coordinator), the three quorate (checked), then
# their xcpd started again.
pool_form3() {
    for pf_i in 1 2 3; do "$pool" kill $pf_i; done
    for pf_i in 2 3; do
        rm -f "$XCP_POOL_DIR/h$pf_i/state/db.snap" \
            "$XCP_POOL_DIR/h$pf_i/state/db.journal"
        for pf_f in db.snap db.journal; do
            [ ! -f "$XCP_POOL_DIR/h1/state/$pf_f" ] ||
                cp "$XCP_POOL_DIR/h1/state/$pf_f" "$XCP_POOL_DIR/h$pf_i/state/$pf_f"
        done
    done
    pf_nodes=""
    for pf_i in 1 2 3; do
        pf_nodes="$pf_nodes $pf_i:host$pf_i:$("$pool" addr $pf_i)"
    done
    for pf_i in 1 2 3; do
        # shellcheck disable=SC2086
        "$pool" exec $pf_i "$member" conf /etc/corosync/corosync.conf "$1" 1 \
            $pf_nodes
        supervise $pf_i
    done
    echo "coordinator 1" >"$XCP_POOL_DIR/h1/state/pool-role"
    for pf_i in 2 3; do
        echo "member $("$pool" addr 1) 1" >"$XCP_POOL_DIR/h$pf_i/state/pool-role"
    done
    pf_all=1
    for pf_i in 1 2 3; do until_ok 60 quorate $pf_i || pf_all=0; done
    check "three hosts quorate" [ $pf_all -eq 1 ]
    for pf_i in 1 2 3; do
        "$pool" start $pf_i >/dev/null || not_ok "host $pf_i starts"
    done
}
