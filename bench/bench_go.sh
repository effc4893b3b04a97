#!/bin/sh
# make bench-go: the Go binding against the C API doing the same, in one
# run: a VM.get_record loop and a 512-VM lifecycle (VM.create, start,
# clean_shutdown, destroy) embedded (local: state dir) and remote (the
# built xcpd over HTTP XML-RPC), bench/bench_go/main.go against
# bench/bench_go_peer.c. Prints each phase's seconds and the Go/C ratio
# (1.00: the binding costs nothing over C). Never passes or fails on
# numbers.
#   bench/bench_go.sh [N [GETS]]   (default 512 VMs, 5000 get_record)
set -eu
src=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
build=${abs_top_builddir:-$src}
n=${1:-512}
gets=${2:-5000}
command -v go >/dev/null 2>&1 || { echo "bench-go: go is not installed (golang-go)"; exit 0; }
export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOTELEMETRY=off
export GOCACHE="$build/bindings/go/.cache/build" GOPATH="$build/bindings/go/.cache/path"
export XCP_HV=sim XCP_TEMPLATES="$src/data/templates.yaml" XCP_DB_FSYNC=never
export XCP_SIM_HOST_MEMORY=${XCP_SIM_HOST_MEMORY:-64GiB} XCP_SIM_HOST_CPUS=${XCP_SIM_HOST_CPUS:-8}
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
(cd "$src/bench/bench_go" && go build -o "$tmp/bench_go" .)
peer="$build/bench/bench_go_peer"
[ -x "$peer" ] || { echo "bench-go: build $peer first (make)"; exit 1; }

# The daemon, with a password file.
export BENCH_PASSWORD=bench
mkdir -p "$tmp/xcpd"
printf 'root:%s\n' "$(openssl passwd -6 "$BENCH_PASSWORD")" > "$tmp/auth"
"$build/cmd/xcpd/xcpd" --state-dir "$tmp/xcpd" --auth-file "$tmp/auth" \
    --listen 127.0.0.1:0 2>"$tmp/xcpd.log" &
pid=$!
i=0
until grep -q 'xcpd: ready' "$tmp/xcpd.log"; do
    i=$((i + 1)); [ $i -lt 600 ] || { cat "$tmp/xcpd.log"; exit 1; }
    sleep 0.05
done
url=$(sed -n 's/.*listening on \(http:\/\/127.0.0.1:[0-9]*\).*/\1/p' "$tmp/xcpd.log" | head -1)

run() { # NAME PROGRAM URI
    "$2" "$3" "$n" "$gets" > "$tmp/$1.out" || { echo "bench-go: $1 failed"; exit 1; }
}
run c_local "$peer" "local:$tmp/c_local"
run go_local "$tmp/bench_go" "local:$tmp/go_local"
run c_remote "$peer" "$url"
run go_remote "$tmp/bench_go" "$url"

get() { sed -n "s/^$2 //p" "$tmp/$1.out"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }'; }
echo "Go binding against the C API: $n VMs, $gets VM.get_record (seconds; Go/C)"
printf '%-12s %10s %10s %6s   %10s %10s %6s\n' phase "C local" "Go local" ratio "C remote" "Go remote" ratio
for ph in create start shutdown destroy get_record; do
    cl=$(get c_local $ph) gl=$(get go_local $ph) cr=$(get c_remote $ph) gr=$(get go_remote $ph)
    printf '%-12s %10.3f %10.3f %6.2f   %10.3f %10.3f %6.2f\n' "$ph" "$cl" "$gl" \
        "$(div "$gl" "$cl")" "$cr" "$gr" "$(div "$gr" "$cr")"
done
for side in local remote; do
    c=$(get c_$side get_record) g=$(get go_$side get_record)
    printf 'VM.get_record %s: C %.0f/s, Go %.0f/s\n' "$side" \
        "$(div "$gets" "$c")" "$(div "$gets" "$g")"
done
