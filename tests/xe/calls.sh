#!/bin/sh
# The calls xe makes for a lifecycle command on one VM (XCP_TRACE=1 names
# each): with uuid= it fetches that VM alone (VM.get_by_uuid, get_record),
# never every VM's record; waiting for the Async task takes its status,
# result and error from event.from's snapshots (two event.from, then
# task.destroy), no task.get_* call. The outcome is unchanged: power
# states, a task's error (VM_BAD_POWER_STATE), a template's uuid or an
# unknown one matching no VM. Embedded engine, sim driver.
#
# Environment (set by make check): abs_top_builddir.

top=${abs_top_builddir:-$PWD}
XE=${XE:-$top/cmd/xe/xe}
[ -x "$XE" ] || { echo "calls.sh: no xe at $XE: skipped"; exit 77; }
base=$(mktemp -d "${TMPDIR:-/tmp}/xe-calls.XXXXXX") || exit 2
trap 'rm -rf "$base"' EXIT
XCP_STATE_DIR=$base/state HOME=$base XCP_HV=sim
export XCP_STATE_DIR HOME XCP_HV
unset XE_EXTRA_ARGS XCP_TRACE
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# traced CMD...: runs xe, its output in $base/out, the calls it made (one
# method a line) in $base/calls; returns xe's status
traced() {
    XCP_TRACE=1 "$XE" "$@" >"$base/out" 2>"$base/err"
    rc=$?
    awk '$1 == "libxcp" && $2 == "trace:" && $4 == "call" { print $5 }' \
        "$base/err" >"$base/calls"
    grep -v '^libxcp trace:' "$base/err" >>"$base/out"
    return $rc
}

# calls_ok WHAT: no whole-table read, no task.get_* polling
calls_ok() {
    if grep -q 'get_all_records' "$base/calls"; then
        fail "$1 read every VM record: $(tr '\n' ' ' <"$base/calls")"
    elif grep -q '^task\.get_' "$base/calls"; then
        fail "$1 polled the task: $(tr '\n' ' ' <"$base/calls")"
    elif [ "$(grep -c '^event\.from$' "$base/calls")" -gt 2 ]; then
        fail "$1 took more than two event.from: $(tr '\n' ' ' \
            <"$base/calls")"
    else
        echo "ok: $1: $(tr '\n' ' ' <"$base/calls")"
    fi
}

power() {
    state=$("$XE" vm-param-get uuid="$A" param-name=power-state)
    [ "$state" = "$1" ] || fail "power state $state after $2, not $1"
}

A=$("$XE" vm-install template="Other install media" new-name-label=alpha) ||
    { echo "FAIL: vm-install"; exit 1; }
T=$("$XE" template-list name-label="Other install media" --minimal)
# a second VM, so that a whole-table read would show
"$XE" vm-install template="Other install media" new-name-label=beta \
    >/dev/null || fail "vm-install beta"

for op in start suspend resume; do
    traced vm-$op uuid="$A" || fail "vm-$op: $(cat "$base/out")"
    calls_ok "vm-$op uuid="
done
power running "vm-resume"

# a failed task: its error comes from the snapshot's error_info
if traced vm-start uuid="$A"; then
    fail "vm-start of a running VM succeeded"
elif ! grep -q 'expected: halted' "$base/out"; then
    fail "vm-start of a running VM: $(cat "$base/out")"
else
    calls_ok "vm-start of a running VM"
fi

traced vm-shutdown uuid="$A" --force || fail "vm-shutdown: $(cat "$base/out")"
calls_ok "vm-shutdown --force uuid="
power halted "vm-shutdown"

# uuid= still goes through the implied filters, and an unknown uuid or a
# template's matches nothing, as among all VMs
for u in "$T" 00000000-0000-0000-0000-000000000000; do
    if traced vm-start uuid="$u"; then
        fail "vm-start uuid=$u started something"
    elif ! grep -q 'No matching VMs found' "$base/out"; then
        fail "vm-start uuid=$u: $(cat "$base/out")"
    else
        echo "ok: vm-start uuid=$u matches no VM"
    fi
done
# a uuid= together with another filter: both apply
if traced vm-start uuid="$A" name-label=beta; then
    fail "vm-start uuid=A name-label=beta started A"
fi
traced vm-start uuid="$A" name-label=alpha ||
    fail "vm-start uuid=A name-label=alpha: $(cat "$base/out")"
power running "vm-start uuid= name-label="

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all passed"
