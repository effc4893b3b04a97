# tests/pool/lib.sh - what the pool tests (harness.sh, cluster.sh, repl.sh)
# share; sourced, after `set -u`. Sets src (source tree), b (build tree)
# and pool (tools/netns-pool); defines skip, ok/not_ok/check (counting
# failures in $fails) and pool_env.
src=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
b=${abs_top_builddir:-$src}
pool=$src/tools/netns-pool
fails=0

skip() {
    echo "SKIP: $*"
    exit 77
}

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
