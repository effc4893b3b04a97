#!/bin/sh
# The Go binding's tests (make check): `go test` of bindings/go against the
# built libxcp and xcpd, then examples/go/hello on a fresh state directory.
# Go's caches live under the build tree, offline (GOPROXY=off): nothing is
# downloaded, nothing written outside the tree but $TMPDIR.
set -eu
src=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${abs_top_builddir:-$src}
if ! command -v go >/dev/null 2>&1; then
    echo "SKIP: go is not installed (Debian: golang-go, tools/deps.sh)"
    exit 77
fi
# cgo finds libxcp through the source tree (bindings/go/cgo_tree.go): an
# out-of-tree build (the sanitizer's) has no library there.
if [ ! -e "$src/lib/libxcp/.libs/libxcp.so" ] || [ "$(cd "$src" && pwd)" != "$(cd "$build" && pwd)" ]; then
    echo "SKIP: the Go binding builds against an in-tree build of libxcp only"
    exit 77
fi
export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOTELEMETRY=off
export GOCACHE="$build/bindings/go/.cache/build"
export GOPATH="$build/bindings/go/.cache/path"
export GOMODCACHE="$GOPATH/pkg/mod"
export XCPD="$build/cmd/xcpd/xcpd"
export XCP_HV=${XCP_HV:-sim}
cd "$src/bindings/go"
go vet ./...
log="${TMPDIR:-/tmp}/go-test.$$.log"
{ go test -count=1 -v ./... 2>&1; echo "go-test-exit: $?"; } | tee "$log"
rc=$(sed -n 's/^go-test-exit: //p' "$log")
pass=$(grep -c '^--- PASS' "$log" || true)
fail=$(grep -c '^--- FAIL' "$log" || true)
rm -f "$log"
[ "$rc" -eq 0 ] || [ "$fail" -gt 0 ] || fail=1
# The example lists the VMs of an embedded engine.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out=$(cd "$src/examples/go/hello" && go run . "$dir/state")
case $out in
"0 VMs in $dir/state") pass=$((pass + 1)) ;;
*) echo "examples/go/hello printed: $out"; fail=$((fail + 1)) ;;
esac
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$rc" -eq 0 ]
