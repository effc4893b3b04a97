#!/bin/sh
# xe event-wait through a daemon: it blocks while no VM matches, returns
# once another xe makes one match (event.from), and =/= waits for a field
# to leave a value.
XE=${XE:-$PWD/cmd/xe/xe}
XCPD=${XCPD:-$PWD/cmd/xcpd/xcpd}
[ -x "$XE" ] && [ -x "$XCPD" ] || exit 77
command -v openssl >/dev/null || exit 77
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xe-event.XXXXXX") || exit 2
XCP_STATE_DIR=$tmp/state XCP_HV=sim HOME=$tmp
export XCP_STATE_DIR XCP_HV HOME
mkdir -p "$XCP_STATE_DIR"
V=$("$XE" vm-install template="Other install media" new-name-label=ev) \
    || exit 1
# Embedded (no daemon yet): a condition that holds returns at once; one
# that does not is refused at once (this xe holds the state directory,
# nothing else could change it), never a wait.
"$XE" event-wait class=vm uuid="$V" name-label=ev || {
    echo "FAIL: embedded event-wait on a met condition" >&2; exit 1; }
t0=$(date +%s)
out=$(timeout 20 "$XE" event-wait class=vm uuid="$V" name-label=never 2>&1)
rc=$?
case $rc:$out in
1:"Error: event-wait needs a running xcpd: no vm matches yet"*) ;;
*) echo "FAIL: embedded event-wait said ($rc): $out" >&2; exit 1 ;;
esac
[ $(($(date +%s) - t0)) -lt 10 ] || {
    echo "FAIL: embedded event-wait took long" >&2; exit 1; }
printf 'root:%s\n' "$(openssl passwd -6 null)" >"$tmp/auth"
"$XCPD" --state-dir "$XCP_STATE_DIR" --auth-file "$tmp/auth" \
    >"$tmp/xcpd.log" 2>&1 &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon; rm -rf "$tmp"' EXIT
tries=0
until grep -q '^xcpd: ready' "$tmp/xcpd.log" 2>/dev/null; do
    tries=$((tries + 1))
    [ $tries -lt 300 ] && kill -0 $daemon 2>/dev/null || {
        cat "$tmp/xcpd.log" >&2; exit 1; }
    sleep 0.1
done
fail=0

# wait_for DESC ARGS...: event-wait in the background; the caller then
# makes the change and calls finished.
waiting() {
    "$XE" event-wait "$@" >"$tmp/out" 2>&1 &
    waiter=$!
    sleep 1
    if ! kill -0 $waiter 2>/dev/null; then
        echo "FAIL: event-wait $* returned before the change:" >&2
        cat "$tmp/out" >&2
        fail=1
    fi
}
finished() {
    i=0
    while kill -0 $waiter 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 $waiter 2>/dev/null; then
        echo "FAIL: event-wait did not see: $1" >&2
        kill $waiter
        fail=1
    elif ! wait $waiter; then
        echo "FAIL: event-wait failed after: $1" >&2
        cat "$tmp/out" >&2
        fail=1
    fi
}

waiting class=vm uuid="$V" name-label=renamed
"$XE" vm-param-set uuid="$V" name-label=renamed || fail=1
finished "name-label=renamed"

waiting class=vm uuid="$V" power-state=/=halted
"$XE" vm-start uuid="$V" || fail=1
finished "power-state no longer halted"

[ $fail -eq 0 ] && echo "PASS: event-wait"
exit $fail
