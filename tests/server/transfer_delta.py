#!/usr/bin/python3
"""Delta exports: /export_raw_vdi?base= with Python's standard library, as
Xen Orchestra's delta backups use it, over HTTP and HTTPS.

A 64 MiB disk with 16 MiB of data is snapshotted (S1), about 5% of it is
rewritten (three 1 MiB pieces and one 64 KiB piece, through XAPI's chunk
frames), and snapshotted again (S2). For VDIs whose images are qcow2 and
VHD, from their chains and (qcow2 and VHD with CBT on) from their
changed-block tracking:
 - vhd, base=S1: a differencing VHD (footer type 4) whose parent uuid is
   S1's, with the parent locators vhd-util writes for "<S1 uuid>.vhd"
   beside it, no larger than the changed 2 MiB blocks plus its metadata;
   uploaded (format=vhd) onto a VDI that holds S1's data, only its blocks
   are written: the VDI then equals S2 (and qemu-img compare agrees);
 - qcow2, base=S1: an image backed by "<S1 uuid>.qcow2" (qemu-img info),
   no larger than the changed clusters plus metadata; next to a qcow2 of
   S1's data under that name, qemu-img check passes and qemu-img compare
   finds it equal to S2; uploaded onto a copy of S1, the copy equals S2;
 - raw, base=S1: the whole disk, S2's bytes wherever S2 differs from S1;
 - the leaf itself relative to S1 (the chain above the shared image);
 - a base of another disk: every range either holds is sent (the result
   applied to a copy of that disk equals the exported one);
 - errors: a base uuid or ref that names nothing is 404 and fails the
   client's task with UUID_INVALID / HANDLE_INVALID; base with
   format=tar is 400 INVALID_VALUE ["base", ...].
"""

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Daemon, XenAPI, export, put,  # noqa: E402
                     wait_task, install_signal_exit, log)

MiB = 1 << 20
KiB = 1 << 10
SIZE = 64 * MiB
C = Checks("transfer_delta")
# The rewritten pieces: (offset, length), inside 2 MiB blocks 5, 12, 25
# and 30 (four VHD blocks; 3 MiB + 64 KiB of 64 MiB: 4.8%).
CHANGES = [(10 * MiB, MiB), (24 * MiB + 512 * KiB, MiB), (50 * MiB, MiB),
           (61 * MiB, 64 * KiB)]


def new_vdi(x, s, fmt, name="d"):
    sr = x.call("SR.get_all", s)[0]
    rec = {"name_label": name, "name_description": "", "SR": sr,
           "virtual_size": str(SIZE), "type": "user", "sharable": False,
           "read_only": False, "other_config": {}, "xenstore_data": {},
           "sm_config": {"image-format": fmt}, "tags": []}
    return x.call("VDI.create", s, rec)


def pattern(seed):
    """16 MiB of data: 1 MiB every 4 MiB, zeros between."""
    b = bytearray(SIZE)
    h = hashlib.sha256(seed.encode()).digest()
    for off in range(0, SIZE, 4 * MiB):
        piece = b""
        while len(piece) < MiB:
            h = hashlib.sha256(h).digest()
            piece += h * 64
        b[off:off + MiB] = piece[:MiB]
    return bytes(b)


def upload(where, x, s, vdi, body, fmt="raw", what="upload"):
    q = "/import_raw_vdi?vdi=%s&session_id=%s&format=%s" % (vdi, s, fmt)
    r, _ = put(where, q, body)
    C.eq(r.status, 200, "%s: status" % what)
    rec = wait_task(x, s, r.getheader("task-id", ""))
    C.eq(rec["status"], "success", "%s: task succeeds %r" %
         (what, rec.get("error_info")))


def frames(data, pieces):
    out = b""
    for off, n in pieces:
        out += struct.pack("<QI", off, n) + data[off:off + n]
    return out + struct.pack("<QI", 0, 0)


def qemu_img(*args):
    return subprocess.run(["qemu-img"] + list(args), capture_output=True,
                          text=True)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def same(a, b):
    return hashlib.sha256(a).digest() == hashlib.sha256(b).digest()


def changed_blocks(unit):
    """The units (bytes) that CHANGES touch."""
    blocks = set()
    for off, n in CHANGES:
        blocks.update(range(off // unit, (off + n - 1) // unit + 1))
    return len(blocks)


class Disk:
    """A VDI of fmt with S1, the rewrite, S2."""

    def __init__(self, where, x, s, fmt, cbt):
        self.fmt = fmt
        self.vdi = new_vdi(x, s, fmt)
        self.base_data = pattern("base")
        upload(where, x, s, self.vdi, self.base_data, what="%s: data in" % fmt)
        if cbt:
            x.call("VDI.enable_cbt", s, self.vdi)
        self.s1 = x.call("VDI.snapshot", s, self.vdi, {})
        later = bytearray(self.base_data)
        for off, n in CHANGES:
            later[off:off + n] = os.urandom(n)
        self.later = bytes(later)
        q = "/import_raw_vdi?vdi=%s&session_id=%s&chunked" % (self.vdi, s)
        r, _ = put(where, q, frames(self.later, CHANGES))
        C.eq(r.status, 200, "%s: the rewrite (chunk frames)" % fmt)
        rec = wait_task(x, s, r.getheader("task-id", ""))
        C.eq(rec["status"], "success", "%s: the rewrite succeeds" % fmt)
        self.s2 = x.call("VDI.snapshot", s, self.vdi, {})
        self.s1_uuid = x.call("VDI.get_uuid", s, self.s1)
        self.s2_uuid = x.call("VDI.get_uuid", s, self.s2)


def copy_of_base(where, x, s, d, fmt, what):
    c = new_vdi(x, s, fmt, "copy")
    upload(where, x, s, c, d.base_data, what=what + ": a copy of S1")
    return c


def check_locators(img, name, what):
    """The parent locators vhd-util writes for a parent beside the child
    (MacX file://./name, W2ku and W2ru .\\name in UTF-16LE), each payload
    within the file, after the header and BAT and before the first
    block."""
    header = img[512:1536]
    bat_off = struct.unpack(">Q", header[16:24])[0]
    entries = struct.unpack(">I", header[28:32])[0]
    bat = struct.unpack(">%dI" % entries, img[bat_off:bat_off + 4 * entries])
    used = [e * 512 for e in bat if e != 0xffffffff]
    first_block = min(used) if used else len(img) - 512
    want = {b"MacX": ("file://./" + name).encode(),
            b"W2ku": (".\\" + name).encode("utf-16-le"),
            b"W2ru": (".\\" + name).encode("utf-16-le")}
    got = {}
    for i in range(8):
        e = header[576 + 24 * i:576 + 24 * (i + 1)]
        code = e[0:4]
        if code == b"\0\0\0\0":
            continue
        space, length = struct.unpack(">II", e[4:12])
        off = struct.unpack(">Q", e[16:24])[0]
        space = space * 512 if space < 512 else space
        C.ok(length <= space and off >= bat_off + 4 * entries
             and off + space <= first_block,
             "%s: locator %s lies between the BAT and the blocks" %
             (what, code), "offset %d, space %d, length %d, BAT at %d, "
             "first block at %d" % (off, space, length, bat_off,
                                    first_block))
        got[code] = img[off:off + length]
    C.eq(got, want, "%s: the parent locators (MacX, W2ku, W2ru)" % what)


def t_vhd(where, x, s, tmp, d, what):
    r, img = export(where, d.s2, s, "vhd", d.s1)
    C.eq(r.status, 200, "%s: vhd delta status" % what)
    bound = changed_blocks(2 * MiB) * (2 * MiB + 512) + 64 * KiB
    C.ok(len(img) <= bound, "%s: vhd delta holds only the changed blocks"
         % what, "%d bytes, bound %d" % (len(img), bound))
    footer = img[-512:]
    C.eq(struct.unpack(">I", footer[60:64])[0], 4,
         "%s: the footer says differencing" % what)
    header = img[512:1536]
    C.eq(header[40:56].hex(), d.s1_uuid.replace("-", ""),
         "%s: the parent uuid is S1's" % what)
    C.eq(header[64:64 + 2 * 40].decode("utf-16-be"), d.s1_uuid + ".vhd",
         "%s: the parent name" % what)
    check_locators(img, d.s1_uuid + ".vhd", what)
    c = copy_of_base(where, x, s, d, d.fmt, what)
    upload(where, x, s, c, img, "vhd", what + ": the delta onto the copy")
    r, got = export(where, c, s)
    C.ok(same(got, d.later), "%s: base + delta (vhd) = S2" % what)
    write(os.path.join(tmp, "got.raw"), got)
    p = qemu_img("compare", "-f", "raw", "-F", "raw",
                 os.path.join(tmp, "got.raw"), os.path.join(tmp, "s2.raw"))
    C.eq(p.returncode, 0, "%s: qemu-img compare (vhd applied)%s" %
         (what, ": " + p.stdout + p.stderr if p.returncode else ""))
    x.call("VDI.destroy", s, c)
    return len(img)


def t_qcow2(where, x, s, tmp, d, what):
    r, img = export(where, d.s2, s, "qcow2", d.s1)
    C.eq(r.status, 200, "%s: qcow2 delta status" % what)
    bound = changed_blocks(64 * KiB) * 64 * KiB + 6 * 64 * KiB
    C.ok(len(img) <= bound, "%s: qcow2 delta holds only the changed "
         "clusters" % what, "%d bytes, bound %d" % (len(img), bound))
    delta = os.path.join(tmp, "delta.qcow2")
    write(delta, img)
    base = os.path.join(tmp, d.s1_uuid + ".qcow2")
    p = qemu_img("convert", "-f", "raw", "-O", "qcow2",
                 os.path.join(tmp, "s1.raw"), base)
    C.eq(p.returncode, 0, "qemu-img convert of S1's data " + p.stderr)
    p = qemu_img("info", "--output=json", delta)
    C.ok('"backing-filename": "%s.qcow2"' % d.s1_uuid in p.stdout,
         "%s: backed by <S1 uuid>.qcow2" % what, p.stdout + p.stderr)
    p = qemu_img("check", "-f", "qcow2", delta)
    C.eq(p.returncode, 0, "%s: qemu-img check of the delta%s" %
         (what, ": " + p.stdout + p.stderr if p.returncode else ""))
    p = qemu_img("compare", "-f", "qcow2", "-F", "raw", delta,
                 os.path.join(tmp, "s2.raw"))
    C.eq(p.returncode, 0, "%s: qemu-img compare: S1 + delta = S2%s" %
         (what, ": " + p.stdout + p.stderr if p.returncode else ""))
    os.unlink(base)
    c = copy_of_base(where, x, s, d, d.fmt, what)
    upload(where, x, s, c, img, "qcow2", what + ": the delta onto the copy")
    r, got = export(where, c, s)
    C.ok(same(got, d.later), "%s: base + delta (qcow2) = S2" % what)
    x.call("VDI.destroy", s, c)
    return len(img)


def t_raw(where, x, s, d, what):
    r, body = export(where, d.s2, s, "raw", d.s1)
    C.eq(r.status, 200, "%s: raw delta status" % what)
    C.eq(len(body), SIZE, "%s: a raw delta is the whole disk" % what)
    bad = sent = 0
    for off in range(0, SIZE, 64 * KiB):
        got = body[off:off + 64 * KiB]
        want = d.later[off:off + 64 * KiB]
        if got.count(0) != len(got):
            sent += 1
            if got != want:
                bad += 1
        elif want != d.base_data[off:off + 64 * KiB]:
            bad += 1
    C.eq(bad, 0, "%s: raw delta: S2's bytes wherever S2 differs" % what)
    C.ok(sent <= changed_blocks(64 * KiB) + 32,
         "%s: raw delta: only changed pieces carry data" % what,
         "%d pieces of 64 KiB" % sent)


def t_leaf(where, x, s, d, what):
    r, img = export(where, d.vdi, s, "qcow2", d.s1)
    C.eq(r.status, 200, "%s: the leaf relative to S1" % what)
    bound = changed_blocks(64 * KiB) * 64 * KiB + 6 * 64 * KiB
    C.ok(len(img) <= bound, "%s: leaf delta: the changed clusters" % what,
         "%d bytes, bound %d" % (len(img), bound))


def t_destroyed(where, x, s, tmp, d, what):
    """XO's CBT backups keep only a snapshot's tracking: the changed-block
    bitmaps still give the delta when the base's data is gone."""
    x.call("VDI.data_destroy", s, d.s1)
    C.eq(x.call("VDI.get_type", s, d.s1), "cbt_metadata",
         "%s: S1 keeps its tracking only" % what)
    t_vhd(where, x, s, tmp, d, what + " (S1 data destroyed)")


def t_other_disk(where, x, s, fmt):
    a = new_vdi(x, s, fmt, "a")
    b = new_vdi(x, s, fmt, "b")
    da = pattern("a")
    db = bytearray(SIZE)
    db[3 * MiB:5 * MiB] = os.urandom(2 * MiB)
    upload(where, x, s, a, da, what="other disk: a")
    upload(where, x, s, b, bytes(db), what="other disk: b")
    r, img = export(where, a, s, "vhd", b)
    C.eq(r.status, 200, "a base of another disk: 200")
    upload(where, x, s, b, img, "vhd", "other disk: applied to b")
    r, got = export(where, b, s)
    C.ok(same(got, da), "a base of another disk: b + delta = a")
    x.call("VDI.destroy", s, a)
    x.call("VDI.destroy", s, b)


def t_errors(where, x, s, d):
    for base, code in (("00000000-0000-0000-0000-000000000000",
                        "UUID_INVALID"),
                       ("OpaqueRef:nothing", "HANDLE_INVALID")):
        task = x.call("task.create", s, "t", "")
        r, _ = export(where, d.s2, s, "vhd", base, task)
        C.eq(r.status, 404, "base %s: 404" % base)
        rec = wait_task(x, s, task)
        C.eq(rec["status"], "failure", "base %s: the task fails" % base)
        C.eq(rec["error_info"][:1], [code], "base %s: %s" % (base, code))
        x.call("task.destroy", s, task)
    r, _ = export(where, d.s2, s, "tar", d.s1)
    C.eq(r.status, 400, "base with format=tar: 400")


def run(d, where, tmp):
    x = XenAPI(where)
    s = x.login()
    sizes = {}
    for fmt in ("qcow2", "vhd"):
        for cbt in (False, True):
            what = "%s %s%s" % (where[0], fmt, " cbt" if cbt else "")
            disk = Disk(where, x, s, fmt, cbt)
            write(os.path.join(tmp, "s1.raw"), disk.base_data)
            write(os.path.join(tmp, "s2.raw"), disk.later)
            r, full = export(where, disk.s2, s, "vhd")
            sizes[what] = (t_vhd(where, x, s, tmp, disk, what), len(full))
            t_qcow2(where, x, s, tmp, disk, what)
            t_raw(where, x, s, disk, what)
            t_leaf(where, x, s, disk, what)
            if cbt:
                t_destroyed(where, x, s, tmp, disk, what)
            else:
                t_errors(where, x, s, disk)
    for what, (delta, full) in sorted(sizes.items()):
        log("%s: vhd delta %d bytes, full export %d bytes (%.1f%%)" %
            (what, delta, full, 100.0 * delta / full))
    t_other_disk(where, x, s, "qcow2")
    text = d.log_text()
    C.ok("(cbt)" in text, "the CBT exports used the changed-block bitmaps")
    C.ok("(chain)" in text, "the others used the chains")
    x.close()


def main():
    install_signal_exit(C, watchdog_s=900)
    if shutil.which("qemu-img") is None:
        log("SKIP: qemu-img not installed")
        return 77
    tmp = tempfile.mkdtemp(prefix="delta-")
    os.environ["XCP_LOG_LEVEL"] = "info"  # how each delta was found
    try:
        with Daemon("delta") as d:
            d.start()
            for where in (d.http, d.https):
                C.section("delta exports over %s" % where[0], run, d, where,
                          tmp)
            C.eq(d.stop(), 0, "xcpd stops cleanly")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return C.finish()


if __name__ == "__main__":
    sys.exit(main())
