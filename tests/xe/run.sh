#!/bin/sh
# Golden transcripts for xe.
#
# Every tests/xe/<name>.cmd is a shell fragment run with a fresh temporary
# XCP_STATE_DIR, XCP_HV=sim and an empty HOME. In it, "xe ARGS..." runs the
# xe under test and appends to the transcript: the command line, its
# stdout+stderr (interleaved as printed) and "[exit N]" when N is not 0.
# "V=$(xe ...)" also captures that output in V for later lines; stdin is
# /dev/null unless the fragment pipes something in ("echo yes | xe ...").
#
# The transcript is normalised before it is compared with <name>.out:
# each distinct uuid becomes <uuid-1>, <uuid-2>, ... in order of first
# appearance, MAC addresses <mac-N>, timestamps other than the epoch
# <time>, and this machine's host name (which the sim driver reports as
# the host's name-label) <hostname>, the fragment's state directory
# ($XCP_STATE_DIR) <state>. The simulated host gets a fixed size
# (XCP_SIM_HOST_MEMORY, XCP_SIM_HOST_CPUS) so memory figures are stable.
# UPDATE=1 rewrites the .out files instead of comparing.
#
# Usage: tests/xe/run.sh [name ...]      (default: every .cmd)
# Environment: XE (the binary; default ./cmd/xe/xe from the build dir),
#              UPDATE=1, KEEP=1 (keep the state directories),
#              XE_DAEMON=path/to/xcpd: run each fragment with that daemon
#              serving its state dir (unix socket only), so that every xe
#              command goes through the socket instead of the embedded
#              engine; the transcripts must not change.

here=$(cd "$(dirname "$0")" && pwd)
XE=${XE:-$PWD/cmd/xe/xe}
if [ ! -x "$XE" ]; then
    echo "run.sh: no xe binary at $XE (set XE=)" >&2
    exit 77
fi

normalise() {
    XE_STATE=$state/state XE_HOSTNAME=$(hostname 2>/dev/null || uname -n) \
        perl -e '
        my (%u, %m); my ($nu, $nm) = (0, 0);
        my $h = quotemeta($ENV{XE_HOSTNAME});
        my $st = quotemeta($ENV{XE_STATE});
        my $hex = "[0-9a-f]";
        while (my $l = <STDIN>) {
            $l =~ s{$st}{<state>}g;
            $l =~ s{(${hex}{8}-${hex}{4}-${hex}{4}-${hex}{4}-${hex}{12})}
                   {$u{$1} //= "<uuid-" . ++$nu . ">"}ge;
            $l =~ s{\b((?:${hex}{2}:){5}${hex}{2})\b}
                   {$m{$1} //= "<mac-" . ++$nm . ">"}ge;
            $l =~ s{\b(?!19700101T00:00:00Z)\d{8}T\d\d:\d\d:\d\dZ}{<time>}g;
            # bytes on disk depend on the host file system
            $l =~ s{(physical-utilisation \( RO\): )\d+}{$1<bytes>};
            if ($h ne "") {
                $l =~ s{(?<=: )${h}(?=\n|\z)}{<hostname>};
                $l =~ s{(?<=on host: )$h\b}{<hostname>}g;
            }
            print $l;
        }'
}

# Quote one word the way a reader would type it.
quote() {
    case $1 in
    '' | *[!A-Za-z0-9_=:,./@%+-]*)
        printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf '%s' "$1" ;;
    esac
}

# XE_DAEMON mode: start the daemon on $XCP_STATE_DIR and wait until it
# serves. Root on the socket needs no password; for other users the auth
# file accepts xe's default credentials (root, "null").
start_daemon() {
    # The first boot is done by the embedded engine, as in the default
    # mode: an engine that has just created its objects lists them in
    # another order than one that loaded them from disk.
    "$XE" pool-list >/dev/null 2>&1
    printf 'root:%s\n' "$(openssl passwd -6 null)" >"$state/auth" || return 1
    "$XE_DAEMON" --state-dir "$XCP_STATE_DIR" --auth-file "$state/auth" \
        >"$state/xcpd.log" 2>&1 &
    daemon_pid=$!
    tries=0
    until grep -q '^xcpd: ready' "$state/xcpd.log" 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -gt 300 ] || ! kill -0 "$daemon_pid" 2>/dev/null; then
            echo "run.sh: $XE_DAEMON did not start:" >&2
            cat "$state/xcpd.log" >&2
            return 1
        fi
        sleep 0.1
    done
}

stop_daemon() {
    kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid"
}

# Runs one .cmd fragment; the transcript goes to $transcript.
run_one() {
    name=$1
    state=$(mktemp -d "${TMPDIR:-/tmp}/xe-golden.XXXXXX") || exit 2
    transcript=$state/transcript
    : >"$transcript"
    (
        XCP_STATE_DIR=$state/state
        XCP_HV=sim
        XCP_SIM_HOST_MEMORY=16GiB
        XCP_SIM_HOST_CPUS=4
        HOME=$state
        export XCP_STATE_DIR XCP_HV XCP_SIM_HOST_MEMORY XCP_SIM_HOST_CPUS HOME
        unset XE_EXTRA_ARGS TRACEPARENT
        mkdir -p "$XCP_STATE_DIR"
        if [ -n "${XE_DAEMON:-}" ]; then
            start_daemon || exit 2
            trap stop_daemon EXIT
        fi
        xe() {
            line='$ xe'
            for a in "$@"; do
                line="$line $(quote "$a")"
            done
            printf '%s\n' "$line" >>"$transcript"
            "$XE" "$@" >"$state/out" 2>&1
            rc=$?
            cat "$state/out" >>"$transcript"
            [ "$rc" -eq 0 ] || printf '[exit %d]\n' "$rc" >>"$transcript"
            cat "$state/out"
            return "$rc"
        }
        cd "$state" || exit 2
        . "$here/$name.cmd" </dev/null >/dev/null
    )
    normalise <"$transcript" >"$state/actual"
    if [ "${UPDATE:-0}" = 1 ]; then
        cp "$state/actual" "$here/$name.out"
        echo "UPDATED: $name"
        result=0
    elif diff -u "$here/$name.out" "$state/actual"; then
        echo "PASS: $name"
        result=0
    else
        echo "FAIL: $name"
        result=1
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "  state kept in $state"
    else
        rm -rf "$state"
    fi
    return $result
}

if [ $# -eq 0 ]; then
    set --
    for f in "$here"/*.cmd; do
        [ -e "$f" ] || continue
        set -- "$@" "$(basename "$f" .cmd)"
    done
fi

failed=0
for t in "$@"; do
    run_one "$t" || failed=$((failed + 1))
done
if [ "$failed" -ne 0 ]; then
    echo "$failed golden transcript(s) differ"
    exit 1
fi
exit 0
