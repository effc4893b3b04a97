#!/bin/sh
# xe host-backup / host-restore on the embedded engine: a backup, then
# changes (a VM installed), then the restore,
# which takes effect at the next opening of the state directory: the
# state is the old one again (the VM gone). Bad
# input: a file that is not a backup, a backup cut short, one with a
# member it must not have (RESTORE_SCRIPT_FAILED, nothing staged).
XE=${XE:-$PWD/cmd/xe/xe}
[ -x "$XE" ] || exit 77
command -v python3 >/dev/null 2>&1 || exit 77
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xe-backup.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
XCP_STATE_DIR=$tmp/state XCP_HV=sim HOME=$tmp
export XCP_STATE_DIR XCP_HV HOME
fail() { echo "FAIL: $*" >&2; exit 1; }

"$XE" vm-install template="Other install media" new-name-label=keep \
    >/dev/null || fail "vm-install"
"$XE" host-backup file-name="$tmp/b.tar" || fail "host-backup"
tar tf "$tmp/b.tar" >"$tmp/list" || fail "not a tar"
head -1 "$tmp/list" | grep -qx xcp-host-backup || fail "manifest not first"
grep -qx db.journal "$tmp/list" || fail "no database: $(cat "$tmp/list")"
grep -q '\.vhd$\|\.qcow2$\|\.raw$' "$tmp/list" && fail "disk images in it"
"$XE" vm-install template="Other install media" new-name-label=later \
    >/dev/null || fail "second vm-install"
[ "$("$XE" vm-list name-label=later --minimal)" != "" ] || fail "no later"
# the restore: nothing printed, in place at the next start
out=$("$XE" host-restore file-name="$tmp/b.tar" 2>&1) || fail "restore: $out"
[ -z "$out" ] || fail "restore printed: $out"
[ "$("$XE" vm-list name-label=later --minimal)" = "" ] ||
    fail "later still there after the restore"
[ "$("$XE" vm-list name-label=keep --minimal)" != "" ] || fail "keep gone"
[ ! -e "$XCP_STATE_DIR/host-restore" ] || fail "stage left"
# a second backup of the restored state restores too (snapshot or not)
"$XE" host-backup file-name="$tmp/b2.tar" || fail "host-backup 2"

# bad input
echo "not a backup" >"$tmp/bad"
out=$("$XE" host-restore file-name="$tmp/bad" 2>&1) && fail "bad accepted"
echo "$out" | grep -q "restore script failed" || fail "bad: $out"
head -c 700 "$tmp/b.tar" >"$tmp/short"
out=$("$XE" host-restore file-name="$tmp/short" 2>&1) && fail "short accepted"
echo "$out" | grep -q "restore script failed" || fail "short: $out"
# a damaged header (its checksum wrong): the tar reader's refusal
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[3] ^= 0x55; open(sys.argv[2], "wb").write(b)' "$tmp/b.tar" "$tmp/damaged" || fail "python"
out=$("$XE" host-restore file-name="$tmp/damaged" 2>&1) && fail "damaged accepted"
echo "$out" | grep -q "restore script failed" || fail "damaged: $out"
python3 - "$tmp/b.tar" "$tmp/evil.tar" <<'PY' || fail "python"
import io, sys, tarfile
src, dst = sys.argv[1:]
with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.USTAR_FORMAT) as o:
    for m in t.getmembers():
        data = t.extractfile(m).read()
        if m.name == "xcp-host-backup":
            data += b"../escape\n"
        o.addfile(m if m.name != "xcp-host-backup" else
                  tarfile.TarInfo(m.name), io.BytesIO(data)) \
            if m.name != "xcp-host-backup" else None
        if m.name == "xcp-host-backup":
            i = tarfile.TarInfo(m.name); i.size = len(data)
            o.addfile(i, io.BytesIO(data))
    i = tarfile.TarInfo("../escape"); i.size = 3
    o.addfile(i, io.BytesIO(b"bad"))
PY
out=$("$XE" host-restore file-name="$tmp/evil.tar" 2>&1) && fail "evil accepted"
echo "$out" | grep -q "unexpected member" || fail "evil: $out"
[ ! -e "$tmp/escape" ] && [ ! -e "$XCP_STATE_DIR/host-restore" ] ||
    fail "evil left files"
[ "$("$XE" vm-list name-label=keep --minimal)" != "" ] || fail "state lost"
exit 0
