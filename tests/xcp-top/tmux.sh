#!/bin/sh
# xcp-top's screen under tmux, on a daemon (xcpd) it reaches through the
# state directory's socket: keys sent with send-keys, the screen read with
# capture-pane. Sorting and its reversal, the filter, pausing, unpausing
# and shutting down a VM after confirmation (the power state checked
# through xe), a refused action's XenAPI error, the help page, quitting.
# Then batch mode remote, over TCP with -s/-p/--nossl and a password.
XE=${XE:-$PWD/cmd/xe/xe}
XCPD=${XCPD:-$PWD/cmd/xcpd/xcpd}
TOP=${TOP:-$PWD/cmd/xcp-top/xcp-top}
[ -x "$XE" ] && [ -x "$XCPD" ] && [ -x "$TOP" ] || exit 77
command -v tmux >/dev/null && command -v openssl >/dev/null || exit 77
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xcp-top-tmux.XXXXXX") || exit 2
XCP_STATE_DIR=$tmp/state XCP_HV=sim HOME=$tmp TERM=xterm
export XCP_STATE_DIR XCP_HV HOME TERM
mkdir -p "$XCP_STATE_DIR"
T="Other install media"
WEB=$("$XE" vm-install template="$T" new-name-label=web1) || exit 1
DB=$("$XE" vm-install template="$T" new-name-label=db1) || exit 1
"$XE" vm-param-set uuid="$DB" VCPUs-max=2 VCPUs-at-startup=2 || exit 1
"$XE" vm-start uuid="$WEB" && "$XE" vm-start uuid="$DB" || exit 1
printf 'root:%s\n' "$(openssl passwd -6 secret)" >"$tmp/auth"
# A TCP port for the remote check: the daemon says if it is taken.
port=$((20000 + $$ % 20000))
"$XCPD" --state-dir "$XCP_STATE_DIR" --auth-file "$tmp/auth" \
    --listen 127.0.0.1:$port --auth-fail-delay 0 >"$tmp/xcpd.log" 2>&1 &
daemon=$!
tm() { tmux -L "xcp-top-test-$$" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null; kill -TERM $daemon 2>/dev/null;
      wait $daemon; rm -rf "$tmp"' EXIT
tries=0
until grep -q '^xcpd: ready' "$tmp/xcpd.log" 2>/dev/null; do
    tries=$((tries + 1))
    [ $tries -lt 300 ] && kill -0 $daemon 2>/dev/null || {
        cat "$tmp/xcpd.log" >&2; exit 1; }
    sleep 0.1
done
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

screen() { tm capture-pane -p -t top; }
# wait_for REGEX [SECONDS]: until the screen shows it.
wait_for() {
    i=0
    while [ $i -lt $((${2:-10} * 10)) ]; do
        screen | grep -qE "$1" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "--- screen:" >&2
    screen >&2
    return 1
}
# The VM rows' names, top to bottom.
order() { screen | awk '$2 == "vm" { printf "%s ", $1 }'; }
state() { "$XE" vm-param-get uuid="$1" param-name=power-state; }
until_state() {
    i=0
    while [ $i -lt 100 ]; do
        [ "$(state "$1")" = "$2" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

tm new-session -d -s top -x 150 -y 30 "$TOP -i 1 -S vcpus" \
    || { die "tmux"; exit 1; }
wait_for 'web1' || die "no VM on screen"
wait_for 'sort vcpus' || die "title without the sort"
screen | grep -q "q quit .*x shutdown" || die "no help line"
screen | grep -qE ' host +up ' || die "no host row"
[ "$(order)" = "db1 web1 " ] || die "sort by vcpus: $(order)"
tm send-keys -t top r
wait_for 'sort vcpus \(reversed\)' || die "r did not reverse"
[ "$(order)" = "web1 db1 " ] || die "reversed: $(order)"
# xentop's S: the next column (memory), then Left back to vcpus.
tm send-keys -t top S
wait_for 'sort mem ' || die "S did not change the sort"
tm send-keys -t top Left
wait_for 'sort vcpus' || die "Left did not change the sort"

# Filter: only web1, then the selection is on it.
tm send-keys -t top / && wait_for 'Filter' || die "no filter prompt"
tm send-keys -t top 'we.1' Enter
wait_for 'filtered' || die "filter not applied"
[ "$(order)" = "web1 " ] || die "filter: $(order)"

# Pause, refused (n), then accepted (y): xe sees it paused.
tm send-keys -t top p
wait_for "Pause VM 'web1'\\? \\[y/N\\]" || die "no pause confirmation"
tm send-keys -t top n
wait_for "cancelled" || die "no cancellation"
[ "$(state "$WEB")" = running ] || die "pause despite n"
tm send-keys -t top p
wait_for "Pause VM 'web1'" && tm send-keys -t top y
until_state "$WEB" paused || die "web1 not paused after p y"
wait_for '^web1 +vm +paused ' || die "screen does not show web1 paused"
# Pausing again: the server's error, on the message line.
tm send-keys -t top p
wait_for "Pause VM 'web1'" && tm send-keys -t top y
wait_for "VM_BAD_POWER_STATE" || die "no error for a second pause"
tm send-keys -t top u
wait_for "Unpause VM 'web1'" && tm send-keys -t top y
until_state "$WEB" running || die "web1 not running after u y"
# Shut down (a task, reported when done).
tm send-keys -t top x
wait_for "Shut down VM 'web1'" && tm send-keys -t top y
until_state "$WEB" halted || die "web1 not halted after x y"
wait_for "Shut down 'web1': done" || die "shutdown's end not reported"
[ "$(state "$DB")" = running ] || die "db1 changed"
# A refused shutdown (halted already): the task's error, parameters too.
tm send-keys -t top x
wait_for "Shut down VM 'web1'" && tm send-keys -t top y
wait_for "Shut down 'web1': VM_BAD_POWER_STATE \\[" \
    || die "refused shutdown's error not shown"
# A suspended VM: u resumes it (VM.resume, a task).
"$XE" vm-start uuid="$WEB" && "$XE" vm-suspend uuid="$WEB" || die "suspend"
wait_for '^web1 +vm +suspended ' || die "web1 not shown suspended"
tm send-keys -t top u
wait_for "Resume VM 'web1'" && tm send-keys -t top y
until_state "$WEB" running || die "web1 not resumed after u y"
wait_for "Resume 'web1': done" || die "resume's end not reported"

# VMs made and destroyed while it runs (event.from's add and del).
tm send-keys -t top / && wait_for 'Filter' && tm send-keys -t top Enter
NEW=$("$XE" vm-install template="$T" new-name-label=fresh) || die "install"
wait_for '^fresh ' || die "new VM not shown"
"$XE" vm-uninstall uuid="$NEW" force=true >/dev/null || die "uninstall"
i=0
while screen | grep -q '^fresh ' && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
screen | grep -q '^fresh ' && die "destroyed VM still shown"

# Clear the filter; help page; quit.
tm send-keys -t top / && wait_for 'Filter' && tm send-keys -t top Enter
wait_for 'db1' || die "filter not cleared"
# Sorted by CPU (Left from vcpus), db1's figure from the data sources
# (the daemon samples every 5 s; it has run for more than 10 by now).
tm send-keys -t top Left
wait_for 'sort cpu' || die "Left did not sort by cpu"
wait_for '^db1 +vm +running +[0-9]+\.[0-9] ' 12 || die "no CPU figure for db1"
tm send-keys -t top h
wait_for 'xcp-top keys' || die "no help page"
tm send-keys -t top q   # leaves the help page
wait_for 'q quit' || die "help page did not close"
tm send-keys -t top q
i=0
while tm has-session -t top 2>/dev/null && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
tm has-session -t top 2>/dev/null && die "q did not quit"

# Remote, batch: over TCP with credentials, then a wrong password.
"$TOP" -b -n 1 -s 127.0.0.1 -p $port --nossl -u root -pw secret \
    >"$tmp/r" 2>"$tmp/e" || { cat "$tmp/e" >&2; die "remote batch"; }
grep -q " db1$" "$tmp/r" || die "remote batch without db1"
awk -v u="$DB" '$12 == u { exit $2 != "running" }' "$tmp/r" \
    || die "remote batch: db1 not running"
if "$TOP" -b -n 1 -s 127.0.0.1 -p $port --nossl -u root -pw wrong \
    2>"$tmp/e"; then
    die "wrong password accepted"
fi
grep -q SESSION_AUTHENTICATION_FAILED "$tmp/e" \
    || { cat "$tmp/e" >&2; die "wrong password: no XenAPI error"; }

# The daemon restarts under a batch run through its socket: a new session
# at the next refresh (its sessions died with it), every iteration printed,
# and the state directory left to the daemon (never the engine embedded).
"$TOP" -b -n 4 -i 1 >"$tmp/re" 2>"$tmp/re.err" &
top=$!
sleep 1.5
kill -TERM $daemon
wait $daemon
: >"$tmp/xcpd.log"
"$XCPD" --state-dir "$XCP_STATE_DIR" --auth-file "$tmp/auth" \
    >"$tmp/xcpd.log" 2>&1 &
daemon=$!
wait $top || { cat "$tmp/re.err" >&2; die "batch run lost the restart"; }
[ "$(grep -c '^TYPE' "$tmp/re")" -eq 4 ] || die "iterations lost"
tries=0
until grep -q '^xcpd: ready' "$tmp/xcpd.log" 2>/dev/null; do
    tries=$((tries + 1))
    [ $tries -lt 300 ] && kill -0 $daemon 2>/dev/null || {
        cat "$tmp/xcpd.log" >&2; die "daemon did not restart"; break; }
    sleep 0.1
done

[ $fail -eq 0 ] && echo "PASS: xcp-top under tmux"
exit $fail
