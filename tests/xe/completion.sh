#!/bin/sh
# The bash completion of xe (data/bash-completion/xe), driven as bash
# does: COMP_LINE/COMP_POINT set, _xe called, COMPREPLY checked, against
# the built xe on a fresh state directory with one VM.
srcdir=$(cd "${srcdir:-$(dirname "$0")/../..}" && pwd)
XE=${XE:-$PWD/cmd/xe/xe}
[ -x "$XE" ] || exit 77
command -v bash >/dev/null || exit 77
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xe-completion.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
XCP_STATE_DIR=$tmp/state XCP_HV=sim HOME=$tmp
export XCP_STATE_DIR XCP_HV HOME XE srcdir
mkdir -p "$XCP_STATE_DIR"
V=$("$XE" vm-install template="Other install media" new-name-label="web one") \
    || exit 1
SR=$("$XE" sr-list name-label="Local storage" --minimal) || exit 1
export V SR
cd "$tmp" && : >"$tmp/disk.img"
exec bash -c '
. "$srcdir/data/bash-completion/xe"
fail=0
# expect LINE WANT...: COMPREPLY holds exactly the WANT words, in order
expect() {
    line=$1; shift
    COMP_LINE="$XE $line"; COMP_POINT=${#COMP_LINE}
    _xe
    got=""; [ ${#COMPREPLY[@]} -gt 0 ] && got=$(printf "%s|" "${COMPREPLY[@]}")
    want=$(printf "%s|" "$@")
    [ "$#" -eq 0 ] && want=""
    if [ "$got" != "$want" ]; then
        echo "FAIL: xe $line<TAB> gave [$got], want [$want]" >&2
        fail=1
    fi
}
# has LINE WORD: WORD is among the candidates
has() {
    COMP_LINE="$XE $1"; COMP_POINT=${#COMP_LINE}
    _xe
    for c in "${COMPREPLY[@]}"; do [ "$c" = "$2" ] && return; done
    echo "FAIL: xe $1<TAB> lacks [$2]: [${COMPREPLY[*]}]" >&2
    fail=1
}
expect "vm-disk-a" vm-disk-add
expect "help vm-cd-l" vm-cd-list
has "" vm-start
has "" help
has "ho" host-enable
expect "vm-disk-add " disk-size= device= sr-uuid= vm=
expect "vm-disk-add d" disk-size= device=
expect "host-disable " auto-enable= host=
expect "sr-create device-c" device-config:
expect "vm-start vm=web" "web\\ one "
expect "vm-param-get uuid=$(printf %.4s "$V")" "$V "
expect "vdi-create sr-uuid=$(printf %.4s "$SR")" "$SR "
expect "vm-list params=name-label,power" "name-label,power-state "
has "vm-list params=" all
expect "vbd-create type=" Disk CD Floppy
expect "vm-shutdown force=" true false
expect "vm-shutdown --fo" --force
expect "vm-export filename=disk" "disk.img "
expect "no-such-command "
[ $fail -eq 0 ] && echo "PASS: xe bash completion"
exit $fail
'
