#!/bin/sh
# xe's remote options against the real daemon (cmd/xcpd/xcpd): the same
# commands give the same output over http (-s -p --nossl), https (-s -p,
# certificate not verified), -pwf, ~/.xe, the daemon's unix socket (no -s)
# and the embedded engine once the daemon is gone; failed logins and
# unreachable servers print what XAPI's xe prints. Skips (77) when xcpd
# has not been built.
#
# Environment (set by make check): abs_top_builddir, XCP_HV=sim.

top=${abs_top_builddir:-$PWD}
XCPD=${XCPD:-$top/cmd/xcpd/xcpd}
XE=${XE:-$top/cmd/xe/xe}
if [ ! -x "$XCPD" ] || [ ! -x "$XE" ]; then
    echo "xe_remote.sh: no $XCPD or $XE: skipped" >&2
    exit 77
fi

base=$(mktemp -d "${TMPDIR:-/tmp}/xe-remote.XXXXXX") || exit 2
XCP_STATE_DIR=$base/state
HOME=$base
XCP_HV=${XCP_HV:-sim}
export XCP_STATE_DIR HOME XCP_HV
unset XE_EXTRA_ARGS
mkdir -p "$XCP_STATE_DIR"
PW='pa55 word'
daemon_pid=
starts=0
failures=0
checks=0

cleanup() {
    [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null \
        && wait "$daemon_pid"
    [ -n "${KEEP:-}" ] || rm -rf "$base"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect NAME WANT_FILE GOT_FILE
same() {
    checks=$((checks + 1))
    if cmp -s "$2" "$3"; then
        echo "ok: $1"
    else
        fail "$1"
        diff -u "$2" "$3" | head -80
    fi
}

start_daemon() {
    # Each daemon its own log: the redirection happens in the child, so a
    # log left by an earlier daemon could say "ready" before this one has
    # even started.
    starts=$((starts + 1))
    log=$base/xcpd.$starts.log
    "$XCPD" --state-dir "$XCP_STATE_DIR" --listen 127.0.0.1:0 \
        --tls-listen 127.0.0.1:0 --auth-file "$base/auth" \
        --auth-fail-delay 10 >"$log" 2>&1 &
    daemon_pid=$!
    tries=0
    until grep -q '^xcpd: ready' "$log" 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -gt 300 ] || ! kill -0 "$daemon_pid" 2>/dev/null; then
            echo "xcpd did not start:"
            cat "$log"
            exit 1
        fi
        sleep 0.1
    done
    HTTP=$(sed -n 's|^xcpd: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' \
        "$log")
    HTTPS=$(sed -n 's|^xcpd: listening on https://127.0.0.1:\([0-9]*\)$|\1|p' \
        "$log")
    if [ -z "$HTTP" ] || [ -z "$HTTPS" ]; then
        echo "no ports in the daemon's log:"
        cat "$log"
        exit 1
    fi
}

printf 'root:%s\nalice:%s\n' "$(openssl passwd -6 "$PW")" \
    "$(openssl passwd -6 other)" >"$base/auth" || exit 2

# Commands whose output must not depend on the way xe reaches the engine.
run_set() {
    out=$1
    shift
    : >"$out"
    {
        "$XE" "$@" vm-list
        "$XE" "$@" vm-list params=all is-control-domain=true
        "$XE" "$@" host-list params=all
        "$XE" "$@" sr-list params=uuid,name-label,type,allowed-operations
        "$XE" "$@" network-list
        "$XE" "$@" template-list params=name-label,memory-static-max
        "$XE" "$@" vdi-list params=uuid,name-label,virtual-size,vbd-uuids
        "$XE" "$@" vm-param-get uuid=00000000-0000-0000-0000-000000000000 \
            param-name=name-label
        echo "exit $?"
        "$XE" "$@" vm-start vm=running-vm
        echo "exit $?"
    } >>"$out" 2>&1
}

# A first boot and a running VM, made by the embedded engine.
"$XE" pool-list >/dev/null 2>&1
V=$("$XE" vm-install template="Debian Bookworm 12" new-name-label=running-vm)
"$XE" vm-start uuid="$V" || fail "vm-start"

start_daemon
run_set "$base/http" -s 127.0.0.1 -p "$HTTP" --nossl -u root -pw "$PW"
run_set "$base/https" -s 127.0.0.1 -p "$HTTPS" -u root -pw "$PW"
printf 'alice\nother\n' >"$base/pwf"
run_set "$base/pwfout" -s 127.0.0.1 -p "$HTTP" --nossl -pwf "$base/pwf"
run_set "$base/socket"
printf 'server=127.0.0.1\nport=%s\nusername=root\npassword=%s\n' \
    "$HTTPS" "$PW" >"$HOME/.xe"
run_set "$base/rcfile"
rm -f "$HOME/.xe"
grep -q 'name-label ( RW): running-vm' "$base/http" \
    || fail "remote vm-list does not show the VM"
same "https equals http" "$base/http" "$base/https"
same "-pwf equals http" "$base/http" "$base/pwfout"
same "socket equals http" "$base/http" "$base/socket"
same "~/.xe equals http" "$base/http" "$base/rcfile"

# xe through the daemon's socket, every local command, does not load
# libcurl (nor the TLS, DNS and authentication libraries it links): the
# unix transport is the library's own; xe -s over http does load it.
maps_curl() {
    LD_DEBUG=files "$XE" "$@" vm-list 2>&1 >/dev/null | grep -q 'file=libcurl'
}
checks=$((checks + 1))
if maps_curl; then
    fail "xe through the unix socket maps libcurl"
elif ! maps_curl -s 127.0.0.1 -p "$HTTP" --nossl -u root -pw "$PW"; then
    fail "xe -s over http did not map libcurl (is LD_DEBUG working?)"
else
    echo "ok: xe through the socket does not map libcurl"
fi

# Changes made remotely are seen through the socket.
desc=$("$XE" vm-param-get uuid="$V" param-name=name-description)
"$XE" -s 127.0.0.1 -p "$HTTP" --nossl -u root -pw "$PW" \
    vm-param-set uuid="$V" name-description="set remotely" \
    || fail "remote vm-param-set"
checks=$((checks + 1))
[ "$("$XE" vm-param-get uuid="$V" param-name=name-description)" \
    = "set remotely" ] || fail "socket does not see the remote change"

# Failed logins and unreachable servers, as XAPI's xe reports them.
printf 'Authentication failed\nFor usage run: '"'"'xe help'"'"'\n' \
    >"$base/want-auth"
"$XE" -s 127.0.0.1 -p "$HTTP" --nossl -u root -pw wrong vm-list \
    >"$base/got" 2>&1
echo "exit $?" >>"$base/got"
echo "exit 1" >>"$base/want-auth"
same "wrong password" "$base/want-auth" "$base/got"
"$XE" -s 127.0.0.1 -p "$HTTPS" -u nobody -pw "$PW" vm-list \
    >"$base/got" 2>&1
echo "exit $?" >>"$base/got"
same "unknown user over https" "$base/want-auth" "$base/got"

# Stop the daemon: its ports refuse, and xe without -s falls back to the
# embedded engine, which then gives the same answers.
kill -TERM "$daemon_pid" && wait "$daemon_pid"
daemon_pid=
printf 'Unable to contact server. Please check server and port settings.\nexit 1\n' \
    >"$base/want-refused"
"$XE" -s 127.0.0.1 -p "$HTTP" --nossl -u root -pw "$PW" vm-list \
    >"$base/got" 2>&1
echo "exit $?" >>"$base/got"
same "connection refused (http)" "$base/want-refused" "$base/got"
"$XE" -s 127.0.0.1 -p "$HTTPS" -u root -pw "$PW" vm-list >"$base/got" 2>&1
echo "exit $?" >>"$base/got"
same "connection refused (https)" "$base/want-refused" "$base/got"
"$XE" vm-param-set uuid="$V" name-description="$desc"
run_set "$base/embedded"
same "embedded equals remote" "$base/http" "$base/embedded"

# A daemon killed outright leaves its socket behind: xe must not hang on
# it but use the embedded engine.
start_daemon
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=
checks=$((checks + 1))
if [ -S "$XCP_STATE_DIR/xapi" ]; then
    "$XE" vm-list params=name-label name-label=running-vm --minimal \
        >"$base/got" 2>&1
    if [ "$(cat "$base/got")" = "running-vm" ]; then
        echo "ok: stale socket ignored"
    else
        fail "stale socket: $(cat "$base/got")"
    fi
else
    echo "ok: (the killed daemon left no socket)"
fi

if [ "$failures" -ne 0 ]; then
    for f in "$base"/xcpd.*.log; do
        echo "---- $f"
        cat "$f"
    done
fi
echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
