#!/bin/sh
# xcp-top -b against an embedded sim engine with running VMs: one header
# line and one line per host and VM per iteration, the figures parsed and
# checked (states, vCPUs, memory; CPU from the data sources, moving, when
# the engine has them), the filter, the sort and its reversal, and the
# command line's errors.
XE=${XE:-$PWD/cmd/xe/xe}
TOP=${TOP:-$PWD/cmd/xcp-top/xcp-top}
[ -x "$XE" ] && [ -x "$TOP" ] || exit 77
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xcp-top-batch.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
XCP_STATE_DIR=$tmp/state XCP_HV=sim HOME=$tmp
export XCP_STATE_DIR XCP_HV HOME
mkdir -p "$XCP_STATE_DIR"
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

T="Other install media"
WEB1=$("$XE" vm-install template="$T" new-name-label=web1) || exit 1
WEB2=$("$XE" vm-install template="$T" new-name-label="web 2") || exit 1
DB=$("$XE" vm-install template="$T" new-name-label=db1) || exit 1
"$XE" vm-param-set uuid="$DB" VCPUs-max=2 VCPUs-at-startup=2 || exit 1
# web1 with a disk and a NIC, whose sim counters move with its vCPU time.
"$XE" vm-disk-add uuid="$WEB1" disk-size=64MiB device=0 || exit 1
NET=$("$XE" network-list --minimal | cut -d, -f1)
"$XE" vif-create vm-uuid="$WEB1" network-uuid="$NET" device=0 >/dev/null \
    || exit 1
"$XE" vm-start uuid="$WEB1" || exit 1
"$XE" vm-start uuid="$DB" || exit 1
# The VMs xcp-top must list: not templates, not snapshots (dom0 too).
nvms=$("$XE" vm-list is-a-template=false is-a-snapshot=false --minimal \
    | tr ',' '\n' | grep -c .)
nhosts=$("$XE" host-list --minimal | tr ',' '\n' | grep -c .)
# Three iterations, long enough for the data sources' 5 s sampling (from
# the engine's start, in xcp-top's process) to give a rate twice.
"$TOP" -b -i 6 -n 3 >"$tmp/out" 2>"$tmp/err" || {
    cat "$tmp/err" >&2; die "xcp-top -b failed"; }
[ -s "$tmp/err" ] && { cat "$tmp/err" >&2; die "xcp-top -b wrote errors"; }
hdr='TYPE STATE CPU(%) VCPUS MEM(k) MEM(%) MAXMEM(k) RD(k/s) WR(k/s) RX(k/s) TX(k/s) UUID NAME'
# Per iteration: the header, then nhosts + nvms rows; every row with
# numbers or n/a where numbers go.
awk -v hdr="$hdr" -v want=$((nhosts + nvms)) '
    function num(x) { return x == "n/a" || x ~ /^-?[0-9]+(\.[0-9]+)?$/ }
    { line = $0; gsub(/ +/, " ", line) }
    line == hdr { if (it && rows != want) bad = bad " iteration " it \
                      " has " rows " rows, not " want
                  it++; rows = 0; next }
    { rows++
      if (NF < 13) bad = bad " short line: " $0
      if ($1 != "host" && $1 != "vm") bad = bad " bad type: " $0
      for (i = 3; i <= 11; i++) if (!num($i)) bad = bad " field " i ": " $0
      if (length($12) != 36 || $12 !~ /^[0-9a-f-]+$/) bad = bad " uuid: " $0 }
    END { if (it != 3) bad = bad " " it " headers, not 3"
          if (rows != want) bad = bad " last iteration has " rows " rows"
          if (bad != "") { print bad; exit 1 } }' "$tmp/out" \
    || die "batch layout (see above)"

# The last iteration's line of a VM.
row() { awk -v u="$1" '$12 == u { l = $0 } END { print l }' "$tmp/out"; }
set -- $(row "$WEB1")
[ "$2" = running ] || die "web1 state '$2', not running"
[ "$4" = 1 ] || die "web1 vcpus '$4', not 1"
awk -v m="$5" -v x="$7" 'BEGIN { exit !(m > 0 && x >= m) }' \
    || die "web1 memory '$5' of max '$7'"
set -- $(row "$DB")
[ "$2" = running ] || die "db1 state '$2'"
[ "$4" = 2 ] || die "db1 vcpus '$4', not 2"
set -- $(row "$WEB2")
[ "$2" = halted ] || die "web 2 state '$2', not halted"
[ "$5" = 0 ] || die "web 2 memory '$5' while halted"
[ "$3" = n/a ] || die "web 2 cpu '$3' while halted"
row "$WEB2" | grep -q ' web 2$' || die "name with a blank not last"
# vCPU time advances while a sim domain runs: CPU above 0, from the
# data sources (cpuN), in the last iteration; unknown in the first (no
# rate before two samples).
set -- $(row "$WEB1")
awk -v c="$3" 'BEGIN { exit !(c > 0) }' || die "web1 cpu '$3' not > 0"
set -- $(row "$DB")
awk -v c="$3" 'BEGIN { exit !(c > 0 && c <= 200) }' \
    || die "db1 cpu '$3' not in (0, 200]"
awk -v u="$WEB1" '$12 == u { print $3; exit }' "$tmp/out" | grep -qx 'n/a' \
    || die "web1 cpu known before two samples"
# Disk and network rates (vbd_xvda_read/write, vif_0_rx/tx; the host's
# pif_eth0_rx/tx carry the guests' traffic): moving for web1, unknown for
# db1 that has neither.
set -- $(row "$WEB1")
awk -v rd="$8" -v wr="$9" -v rx="${10}" -v tx="${11}" \
    'BEGIN { exit !(rd > 0 && wr > 0 && rx > 0 && tx > 0) }' \
    || die "web1 disk/net rates '$8 $9 ${10} ${11}' not all > 0"
set -- $(row "$DB")
[ "$8 $9 ${10} ${11}" = "n/a n/a n/a n/a" ] \
    || die "db1 disk/net rates '$8 $9 ${10} ${11}' without devices"
awk '$1 == "host" { h = $0 } END { split(h, f); exit !(f[10] > 0 && f[11] > 0) }' \
    "$tmp/out" || die "host network rates not > 0"

# The requests of two refreshes (XCP_TRACE=1 names each): the first takes
# a token (event.from on the pool) and the four classes' records in bulk,
# the second one event.from (what changed since); data sources only for
# hosts and running VMs (none after the first refusal when the engine has
# none); never a per-VM record or field read.
XCP_TRACE=1 "$TOP" -b -n 2 -i 0.2 2>&1 >/dev/null \
    | awk '$1 == "libxcp" && $2 == "trace:" && $4 == "engine" && $5 == "runs" { print $6 }' \
    >"$tmp/calls"
nev=$(grep -c '^event\.from$' "$tmp/calls")
[ "$nev" -eq 2 ] || { cat "$tmp/calls" >&2; die "$nev event.from, not 2"; }
bulk=$(grep -cE '^(host|host_metrics|VM|VM_metrics)\.get_all' "$tmp/calls")
[ "$bulk" -eq 4 ] || { cat "$tmp/calls" >&2; die "$bulk bulk reads, not 4"; }
nds=$(grep -c 'get_data_sources$' "$tmp/calls")
running=$(awk '$1 == "TYPE" { n = 0 } $1 == "vm" && $2 == "running" { n++ }
    END { print n }' "$tmp/out")
[ "$nds" -eq $((2 * (nhosts + running))) ] \
    || die "$nds data-source reads, not 2 x (hosts + $running running)"
other=$(grep -vcE '^(session\.|event\.from$|(host|host_metrics|VM|VM_metrics)\.get_all|(host|VM)\.get_data_sources$)' "$tmp/calls")
[ "$other" -eq 0 ] || { cat "$tmp/calls" >&2; die "other requests"; }

# Filter (regex on name or uuid, case-insensitive): the host and web*.
"$TOP" -b -n 1 -f '^WEB' >"$tmp/f" || die "filter run"
[ "$(awk '$1 == "vm"' "$tmp/f" | wc -l)" -eq 2 ] \
    || { cat "$tmp/f" >&2; die "filter ^WEB: not 2 VMs"; }
grep -q " db1$" "$tmp/f" && die "filter kept db1"
[ "$(awk '$1 == "host"' "$tmp/f" | wc -l)" -eq "$nhosts" ] \
    || die "filter dropped a host"
"$TOP" -b -n 1 -f "$DB" | grep -q " db1$" || die "filter by uuid"

# Sort by name, and reversed.
"$TOP" -b -n 1 -S name -f 'web|^db1$' | awk '$1 == "vm" { print $NF }' \
    >"$tmp/s"
[ "$(tr '\n' ' ' <"$tmp/s")" = "db1 2 web1 " ] \
    || { cat "$tmp/s" >&2; die "sort by name"; }
"$TOP" -b -n 1 -S name -r -f 'web|^db1$' | awk '$1 == "vm" { print $NF }' \
    >"$tmp/s"
[ "$(tr '\n' ' ' <"$tmp/s")" = "web1 2 db1 " ] \
    || { cat "$tmp/s" >&2; die "reversed sort by name"; }
# By vCPUs: db1 (2) first.
"$TOP" -b -n 1 -S vcpus -f 'web|^db1$' | awk '$1 == "vm" { print $NF; exit }' \
    | grep -qx db1 || die "sort by vcpus"
# Hosts only.
[ "$("$TOP" -b -n 1 -H | awk '$1 == "vm"' | wc -l)" -eq 0 ] \
    || die "-H listed VMs"

# A paused VM shows as paused (state from the records).
"$XE" vm-pause uuid="$WEB1" || die "vm-pause"
"$TOP" -b -n 1 -f web1 | awk '$1 == "vm" { print $2 }' | grep -qx paused \
    || die "paused web1 not shown paused"

# The command line.
"$TOP" --help | grep -q '^Usage: xcp-top' || die "--help"
for bad in "-S bogus" "-S type" "-i 0" "-i x" "-n 0" "-p 70000" "--nope" \
    "-f (" "-i"; do
    # shellcheck disable=SC2086
    if "$TOP" -b $bad >"$tmp/o" 2>"$tmp/e"; then
        die "xcp-top $bad succeeded"
    elif ! grep -q '^xcp-top: ' "$tmp/e"; then
        die "xcp-top $bad: no message"
    fi
done
# An unreachable server: the transport error, exit 1.
if "$TOP" -b -n 1 -s 127.0.0.1 -p 1 --nossl 2>"$tmp/e"; then
    die "unreachable server succeeded"
fi
grep -q 'CONNECTION_FAILED' "$tmp/e" || { cat "$tmp/e" >&2;
    die "unreachable server: no CONNECTION_FAILED"; }

[ $fail -eq 0 ] && echo "PASS: xcp-top batch"
exit $fail
