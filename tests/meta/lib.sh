# The meta checks' common frame, sourced (not run) by those that count
# cases: $src (the source tree), $tmp (a directory removed at exit),
# ok/bad to count a case, and meta_done to report and give the status.
set -eu
src=${abs_top_srcdir:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
meta_done() {
    echo "$pass passed, $fail failed"
    [ $fail -eq 0 ]
}
