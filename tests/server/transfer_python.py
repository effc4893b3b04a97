#!/usr/bin/python3
"""VDI transfers (/import_raw_vdi, /export_raw_vdi) with Python's standard
library, as XenServer's SDK samples use them, over HTTP and HTTPS.

Per transport:
 - raw import with Content-Length (http.client), the task's result is the
   VDI ref; export back, byte for byte;
 - raw import as XenServer's sample sends it: `PUT ... HTTP/1.0`, no
   Content-Length, the `200 OK` read BEFORE the body, which then runs
   until the client closes;
 - XAPI's chunk framing (?chunked): frames at scattered offsets, with a
   Content-Length and until close; a body without its last frame fails;
 - session by cookie and by Basic credentials;
 - export as VHD and as qcow2: `qemu-img info`/`check` pass and `qemu-img
   compare` finds them equal to the data; sparse regions are not sent
   (the stream is smaller than the disk);
 - import of a dynamic VHD made by `qemu-img convert` into a VDI that
   held other data: the VDI then equals the image (zeros where the image
   has no block);
 - import of qcow2 images (qemu-img's v3 and v2 with 4 KiB clusters, our
   own export) into VDIs of either image format that held other data,
   of an overlay with a backing file (only what it holds changes); a
   qcow2 cut short, compressed, larger than the VDI, or no qcow2 at all
   fails its task with VDI_IO_ERROR;
 - an import by sr_id (no vdi) makes "Imported VDI" of the body's length
   (task result, name, size, data); a VHD, a body of unknown length or an
   import cut short leave no VDI behind;
 - an SR on an 8 MiB tmpfs: SR_FULL before a byte is written for a raw
   import of a declared length it cannot hold, SR_FULL (not
   VDI_IO_ERROR) when writes of an unknown length run out of space;
 - a client that vanishes in the middle of a Content-Length upload fails
   its task within seconds (VDI_IO_ERROR);
 - unknown format: 404 and the client's task fails with INVALID_VALUE;
 - exports sent from the image files (sendfile on HTTP): a VDI whose
   data lies in both files of a snapshot chain, the snapshot, a VHD VDI,
   as raw, vhd and qcow2, checked with qemu-img; a
   client gone mid-export (raw, qcow2) fails the export's task within
   seconds. Once more on a daemon with XCP_NO_SENDFILE (the fallback).
Last, kill -9 of xcpd in the middle of an import: the daemon comes back,
every image passes `qemu-img check`, and the VDI takes a new import.
Then xe vdi-import / vdi-export (raw and vhd): embedded, through the
daemon's socket, and with -s over HTTP and HTTPS; a progress bar on a
terminal (a pty as stderr), nothing on stderr otherwise.
"""

import base64
import hashlib
import http.client
import os
import pty
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Daemon, XE, XenAPI, insecure_context,  # noqa: E402
                     export, put, raw_socket, read_head, wait_task,
                     install_signal_exit, log, PASSWORD, USER)

MiB = 1 << 20
SIZE = 16 * MiB
C = Checks("transfer_python")


def new_vdi(x, s, size=SIZE, name="t"):
    sr = x.call("SR.get_all", s)[0]
    rec = {"name_label": name, "name_description": "", "SR": sr,
           "virtual_size": str(size), "type": "user", "sharable": False,
           "read_only": False, "other_config": {}, "xenstore_data": {},
           "sm_config": {}, "tags": []}
    return x.call("VDI.create", s, rec)


def pattern(size=SIZE):
    """Data with holes: 1 MiB of random bytes every 4 MiB, zeros between,
    and a random last sector."""
    b = bytearray(size)
    for off in range(0, size, 4 * MiB):
        b[off:off + MiB] = os.urandom(MiB)
    b[size - 512:] = os.urandom(512)
    return bytes(b)


def task_of(r):
    return r.getheader("task-id", "")


def same(a, b):
    return hashlib.sha256(a).digest() == hashlib.sha256(b).digest()


def check_exported(x, s, where, vdi, data, what):
    r, got = export(where, vdi, s)
    C.eq(r.status, 200, "%s: export status" % what)
    C.ok(same(got, data), "%s: the VDI holds the data" % what,
         "%d bytes back" % len(got))


def t_raw(where, x, s):
    data = pattern()
    vdi = new_vdi(x, s)
    r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s" % (vdi, s), data)
    C.eq(r.status, 200, "raw import with Content-Length")
    rec = wait_task(x, s, task_of(r))
    C.eq(rec["status"], "success", "raw import: task succeeds")
    C.ok(vdi in rec["result"], "raw import: the task's result is the VDI",
         rec["result"])
    check_exported(x, s, where, vdi, data, "raw import")
    return vdi, data


def t_until_close(where, x, s):
    """XenServer's sample: HTTP/1.0, no length, the 200 before the body."""
    data = pattern()
    vdi = new_vdi(x, s)
    k = raw_socket(where)
    k.sendall(("PUT /import_raw_vdi?vdi=%s&session_id=%s HTTP/1.0\r\n"
               "Host: x\r\n\r\n" % (vdi, s)).encode())
    status, hdrs = read_head(k)
    C.eq(status, 200, "until close: 200 before the body")
    task = hdrs.get("task-id", "")
    C.ok(task.startswith("OpaqueRef:"), "until close: task-id header", task)
    progress = 0.0
    for off in range(0, len(data), 1 << 18):
        if off == len(data) // 2 + (1 << 18):
            # a piece after a pause updates the task's progress
            time.sleep(0.7)
            k.sendall(data[off:off + (1 << 18)])
            time.sleep(0.5)
            progress = x.call("task.get_progress", s, task)
            continue
        k.sendall(data[off:off + (1 << 18)])
    C.ok(0.3 < progress < 1.0, "until close: the task's progress moves",
         "%r" % progress)
    k.shutdown(socket.SHUT_WR)
    k.recv(1)
    k.close()
    rec = wait_task(x, s, task)
    C.eq(rec["status"], "success", "until close: task succeeds")
    check_exported(x, s, where, vdi, data, "until close")


def frames(data, order):
    """XAPI's chunk frames of data's 1 MiB pieces, in order, then the
    last frame."""
    out = b""
    for i in order:
        piece = data[i * MiB:(i + 1) * MiB]
        if piece.count(0) == len(piece):
            continue
        out += struct.pack("<QI", i * MiB, len(piece)) + piece
    return out + struct.pack("<QI", 0, 0)


def t_chunked(where, x, s):
    data = pattern()
    n = SIZE // MiB
    body = frames(data, list(range(n - 1, -1, -1)))  # backwards
    vdi = new_vdi(x, s)
    r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s&chunked"
               % (vdi, s), body)
    C.eq(r.status, 200, "chunked with Content-Length")
    rec = wait_task(x, s, task_of(r))
    C.eq(rec["status"], "success", "chunked: task succeeds")
    check_exported(x, s, where, vdi, data, "chunked")
    C.ok(len(body) < SIZE, "chunked: zero pieces not sent",
         "%d bytes" % len(body))

    # until close, HTTP/1.0, and a Basic login
    vdi = new_vdi(x, s)
    k = raw_socket(where)
    auth = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
    k.sendall(("PUT /import_raw_vdi?vdi=%s&chunked HTTP/1.0\r\n"
               "Authorization: Basic %s\r\n\r\n" % (vdi, auth)).encode())
    status, hdrs = read_head(k)
    C.eq(status, 200, "chunked until close (Basic): 200 first")
    k.sendall(body)
    k.shutdown(socket.SHUT_WR)
    k.recv(1)
    k.close()
    rec = wait_task(x, s, hdrs.get("task-id", ""))
    C.eq(rec["status"], "success", "chunked until close: task succeeds")
    check_exported(x, s, where, vdi, data, "chunked until close")

    # without its last frame
    task = x.call("task.create", s, "t", "")
    r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s&chunked"
               "&task_id=%s" % (vdi, s, task), body[:-12])
    rec = wait_task(x, s, task)
    C.eq(rec["status"], "failure", "chunked without its last frame fails")
    C.eq(rec["error_info"][:1], ["VDI_IO_ERROR"], "... with VDI_IO_ERROR")


def qemu_img(*args):
    return subprocess.run(["qemu-img"] + list(args), capture_output=True,
                          text=True)


def t_vhd(where, x, s, tmp):
    data = pattern()
    vdi = new_vdi(x, s)
    r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s" % (vdi, s), data)
    C.eq(r.status, 200, "vhd: raw data in")
    r, img = export(where, vdi, s, "vhd")
    C.eq(r.status, 200, "vhd export status")
    C.eq(r.getheader("Content-Type"), "application/vhd", "vhd content type")
    C.ok(r.getheader("Content-Disposition", "").endswith('.vhd"'),
         "vhd file name")
    C.eq(int(r.getheader("Content-Length", "-1")), len(img),
         "vhd Content-Length")
    C.ok(len(img) < SIZE, "vhd export: sparse blocks not sent",
         "%d bytes for %d" % (len(img), SIZE))
    vhd = os.path.join(tmp, "e.vhd")
    raw = os.path.join(tmp, "d.raw")
    with open(vhd, "wb") as f:
        f.write(img)
    with open(raw, "wb") as f:
        f.write(data)
    # qemu-img check has no VHD checker: its reader and the VHD library's
    # (the sr layer's strict opener, via xe on a file SR) must both take it
    p = qemu_img("info", "-f", "vpc", "--output=json", vhd)
    C.ok(p.returncode == 0 and '"virtual-size": %d' % SIZE in p.stdout,
         "qemu-img info of the exported VHD", p.stdout + p.stderr)
    p = qemu_img("compare", "-f", "vpc", "-F", "raw", vhd, raw)
    C.eq(p.returncode, 0, "qemu-img compare: exported VHD = data" +
         (": " + p.stdout + p.stderr if p.returncode else ""))

    # qcow2 export: qemu-img check and compare
    r, img = export(where, vdi, s, "qcow2")
    C.eq(r.status, 200, "qcow2 export status")
    C.eq(r.getheader("Content-Type"), "application/x-qemu-disk",
         "qcow2 content type")
    C.ok(len(img) < SIZE, "qcow2 export: empty clusters not sent",
         "%d bytes for %d" % (len(img), SIZE))
    q = os.path.join(tmp, "e.qcow2")
    with open(q, "wb") as f:
        f.write(img)
    p = qemu_img("check", "-f", "qcow2", q)
    C.eq(p.returncode, 0, "qemu-img check of the exported qcow2" +
         (": " + p.stdout + p.stderr if p.returncode else ""))
    p = qemu_img("compare", "-f", "qcow2", "-F", "raw", q, raw)
    C.eq(p.returncode, 0, "qemu-img compare: exported qcow2 = data" +
         (": " + p.stdout + p.stderr if p.returncode else ""))
    t_qcow2(where, x, s, tmp, raw, img)

    # import: qemu-img's dynamic VHD of other data into this VDI
    other = bytearray(SIZE)
    other[5 * MiB:6 * MiB] = os.urandom(MiB)
    with open(raw, "wb") as f:
        f.write(other)
    src = os.path.join(tmp, "q.vhd")
    p = qemu_img("convert", "-f", "raw", "-O", "vpc", "-o",
                 "subformat=dynamic,force_size=on", raw, src)
    C.eq(p.returncode, 0, "qemu-img convert to vhd" + p.stderr)
    with open(src, "rb") as f:
        body = f.read()
    r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s&format=vhd"
               % (vdi, s), body)
    C.eq(r.status, 200, "vhd import status")
    rec = wait_task(x, s, task_of(r))
    C.eq(rec["status"], "success", "vhd import: task succeeds")
    check_exported(x, s, where, vdi, bytes(other),
                   "vhd import over other data")

    # a VHD cut short fails the task
    r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s&format=vhd"
               % (vdi, s), body[:len(body) // 2])
    rec = wait_task(x, s, task_of(r))
    C.eq(rec["status"], "failure", "a VHD cut short fails")


def import_image(where, x, s, vdi, body, fmt="qcow2"):
    """PUT body as fmt into vdi, in a task of ours: (HTTP status, the
    task's record). A refused upload may be cut before the client has
    sent it all (XAPI closes too): status None then."""
    task = x.call("task.create", s, "import", "")
    try:
        r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s&format=%s"
                   "&task_id=%s" % (vdi, s, fmt, task), body)
        status = r.status
    except (OSError, http.client.HTTPException):
        status = None
    return status, wait_task(x, s, task)


def other_data():
    """Data unlike pattern()'s, where pattern() has holes: an import of
    an image without a parent must leave zeros there."""
    b = bytearray(SIZE)
    b[2 * MiB:3 * MiB] = os.urandom(MiB)
    b[9 * MiB:10 * MiB] = os.urandom(MiB)
    return bytes(b)


def t_qcow2(where, x, s, tmp, raw, ours):
    """qcow2 imports: qemu-img's (v3 64 KiB clusters, v2 4 KiB ones) and
    our own export, into VDIs of either image format that held other
    data; an overlay with a backing file applied over the VDI; images we
    cannot take fail their task with VDI_IO_ERROR."""
    with open(raw, "rb") as f:
        data = f.read()
    imgs = {"ours": ours}
    for name, opts in (("qemu-img v3", "cluster_size=65536"),
                       ("qemu-img v2 4k", "compat=0.10,cluster_size=4096")):
        q = os.path.join(tmp, "in.qcow2")
        p = qemu_img("convert", "-f", "raw", "-O", "qcow2", "-o", opts, raw, q)
        C.eq(p.returncode, 0, "qemu-img convert %s %s" % (name, p.stderr))
        with open(q, "rb") as f:
            imgs[name] = f.read()
    for name, body in imgs.items():
        for fmt in ("qcow2", "vhd"):
            what = "qcow2 import (%s) into a %s VDI" % (name, fmt)
            vdi = new_vdi(x, s)
            if fmt == "vhd":
                sr = x.call("SR.get_all", s)[0]
                vdi = x.call("VDI.create", s, {
                    "name_label": "v", "name_description": "", "SR": sr,
                    "virtual_size": str(SIZE), "type": "user",
                    "sharable": False, "read_only": False,
                    "other_config": {}, "xenstore_data": {},
                    "sm_config": {"image-format": "vhd"}, "tags": []})
            put(where, "/import_raw_vdi?vdi=%s&session_id=%s" % (vdi, s),
                other_data())
            status, rec = import_image(where, x, s, vdi, body)
            C.eq((status, rec["status"], rec["error_info"]),
                 (200, "success", []), what)
            C.ok(vdi in rec["result"], what + ": the result is the VDI",
                 rec["result"])
            check_exported(x, s, where, vdi, data, what)

    # an overlay (backing file) changes only what it holds
    base = os.path.join(tmp, "base.raw")
    with open(base, "wb") as f:
        f.write(data)
    ov = os.path.join(tmp, "ov.qcow2")
    p = qemu_img("create", "-f", "qcow2", "-b", base, "-F", "raw", ov)
    C.eq(p.returncode, 0, "qemu-img create overlay " + p.stderr)
    p = subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                        "write -P 0x55 %d 65536" % (3 * MiB), "-c",
                        "write -z %d 65536" % (0), ov],
                       capture_output=True, text=True)
    C.eq(p.returncode, 0, "qemu-io write into the overlay " + p.stderr)
    with open(ov, "rb") as f:
        body = f.read()
    vdi = new_vdi(x, s)
    put(where, "/import_raw_vdi?vdi=%s&session_id=%s" % (vdi, s), data)
    status, rec = import_image(where, x, s, vdi, body)
    C.eq((rec["status"], rec["error_info"]), ("success", []),
         "qcow2 overlay import")
    want = bytearray(data)
    want[3 * MiB:3 * MiB + 65536] = b"\x55" * 65536
    want[0:65536] = bytes(65536)
    check_exported(x, s, where, vdi, bytes(want),
                   "qcow2 overlay over the VDI's data")

    # what we cannot take
    vdi = new_vdi(x, s)
    status, rec = import_image(where, x, s, vdi, ours[:len(ours) // 2])
    C.eq((rec["status"], rec["error_info"][:1]), ("failure", ["VDI_IO_ERROR"]),
         "a qcow2 cut short fails with VDI_IO_ERROR")
    q = os.path.join(tmp, "c.qcow2")
    qemu_img("convert", "-c", "-f", "raw", "-O", "qcow2", raw, q)
    with open(q, "rb") as f:
        status, rec = import_image(where, x, s, vdi, f.read())
    C.ok(rec["status"] == "failure" and "compressed" in str(rec["error_info"]),
         "a compressed qcow2 fails, saying why", str(rec["error_info"]))
    q = os.path.join(tmp, "big.qcow2")
    qemu_img("create", "-f", "qcow2", q, str(2 * SIZE))
    with open(q, "rb") as f:
        status, rec = import_image(where, x, s, vdi, f.read())
    C.ok(rec["status"] == "failure" and "larger" in str(rec["error_info"]),
         "a qcow2 larger than the VDI fails", str(rec["error_info"]))
    status, rec = import_image(where, x, s, vdi, b"\0" * 65536)
    C.eq(rec["error_info"][:1], ["VDI_IO_ERROR"], "not a qcow2: VDI_IO_ERROR")


def t_sr_id(where, x, s):
    """An import by sr_id (no vdi) makes "Imported VDI" of the body's
    length, as XAPI's handler does; images, a body of unknown length or
    an import that fails leave no VDI behind."""
    sr = x.call("SR.get_all", s)[0]
    before = set(x.call("VDI.get_all", s))
    data = pattern()
    r, _ = put(where, "/import_raw_vdi?sr_id=%s&session_id=%s" % (sr, s),
               data)
    C.eq(r.status, 200, "sr_id import status")
    rec = wait_task(x, s, task_of(r))
    C.eq((rec["status"], rec["error_info"]), ("success", []),
         "sr_id import: task succeeds")
    made = set(x.call("VDI.get_all", s)) - before
    C.eq(len(made), 1, "sr_id import: one new VDI")
    vdi = made.pop() if made else ""
    C.ok(vdi in rec["result"], "sr_id import: the task's result is it",
         rec["result"])
    C.eq((x.call("VDI.get_name_label", s, vdi),
          x.call("VDI.get_virtual_size", s, vdi),
          x.call("VDI.get_SR", s, vdi)),
         ("Imported VDI", str(SIZE), sr), "sr_id import: name, size, SR")
    check_exported(x, s, where, vdi, data, "sr_id import")
    before = set(x.call("VDI.get_all", s))
    uuid = x.call("SR.get_uuid", s, sr)
    status, rec = import_image(where, x, s, "&sr_id=" + uuid, data[:4096],
                               "vhd")
    C.eq((status, rec["error_info"][:1]), (400, ["NOT_IMPLEMENTED"]),
         "sr_id import of a VHD: 400 NOT_IMPLEMENTED")
    k = raw_socket(where)
    k.sendall(("PUT /import_raw_vdi?sr_id=%s&session_id=%s HTTP/1.0\r\n"
               "\r\n" % (sr, s)).encode())
    status, hdrs = read_head(k)
    k.close()
    C.eq(status, 400, "sr_id import of unknown length: 400")
    task = x.call("task.create", s, "t", "")
    k = raw_socket(where)
    k.sendall(("PUT /import_raw_vdi?sr_id=%s&session_id=%s&task_id=%s "
               "HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % (sr, s, task, SIZE)).encode())
    k.sendall(data[:SIZE // 2])
    k.close()
    rec = wait_task(x, s, task, timeout=60)
    C.eq(rec["status"], "failure", "sr_id import cut short fails")
    C.eq(set(x.call("VDI.get_all", s)), before,
         "... and no VDI is left behind by the failures")


def t_full(where, x, s, state):
    """An SR on an 8 MiB tmpfs: a raw import of a declared length it
    cannot hold is refused with SR_FULL before a byte is written (the
    VDI keeps its data); one of unknown length that runs out of space
    fails with SR_FULL, not VDI_IO_ERROR, and leaves an image qemu-img
    check passes."""
    mnt = os.path.join(state, "full-%s" % where[0])  # where SRs may be
    os.mkdir(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs",
                        mnt], capture_output=True, text=True)
    if p.returncode != 0:
        log("SKIP full SR: cannot mount a tmpfs: " + p.stderr.strip())
        return
    try:
        host = x.call("host.get_all", s)[0]
        sr = x.call("SR.create", s, host, {"location": mnt}, "0", "small",
                    "", "file", "user", False, {})
        rec = {"name_label": "f", "name_description": "", "SR": sr,
               "virtual_size": str(SIZE), "type": "user", "sharable": False,
               "read_only": False, "other_config": {}, "xenstore_data": {},
               "sm_config": {}, "tags": []}
        vdi = x.call("VDI.create", s, rec)
        first = os.urandom(MiB)
        r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s"
                   % (vdi, s), first)
        C.eq(wait_task(x, s, task_of(r))["status"], "success",
             "full SR: a 1 MiB import fits")
        big = os.urandom(SIZE)
        status, rec = import_image(where, x, s, vdi, big, "raw")
        C.eq(rec["error_info"][:1], ["SR_FULL"],
             "full SR: a 16 MiB import is refused with SR_FULL")
        C.ok(len(rec["error_info"]) == 3 and
             int(rec["error_info"][1]) > int(rec["error_info"][2]),
             "... [requested, maximum], requested above maximum",
             str(rec["error_info"]))
        r, got = export(where, vdi, s)
        C.ok(got[:MiB] == first and got[MiB:] == bytes(SIZE - MiB),
             "... before a byte was written: the VDI kept its data")
        # unknown length: the writes run out of space
        task = x.call("task.create", s, "t", "")
        k = raw_socket(where)
        k.sendall(("PUT /import_raw_vdi?vdi=%s&session_id=%s&task_id=%s "
                   "HTTP/1.0\r\n\r\n" % (vdi, s, task)).encode())
        read_head(k)
        try:
            k.sendall(big)
            k.shutdown(socket.SHUT_WR)
            k.recv(1)
        except OSError:
            pass
        k.close()
        rec = wait_task(x, s, task, timeout=60)
        C.eq((rec["status"], rec["error_info"][:1]), ("failure", ["SR_FULL"]),
             "full SR, unknown length: the task fails with SR_FULL")
        # The next import repairs what the failed writes leaked (the
        # image stayed marked dirty), and the image then passes check.
        r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s"
                   % (vdi, s), first)
        C.eq(wait_task(x, s, task_of(r))["status"], "success",
             "full SR: the VDI takes an import again")
        for img in images(mnt):
            p = qemu_img("check", "-f", "qcow2", img)
            C.eq(p.returncode, 0, "full SR: qemu-img check of the image "
                 "after ENOSPC and a new import" +
                 (": " + p.stdout + p.stderr if p.returncode else ""))
        x.call("VDI.destroy", s, vdi)
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def t_vanish(where, x, s):
    """Content-Length declared, half sent, connection closed."""
    vdi = new_vdi(x, s)
    task = x.call("task.create", s, "t", "")
    k = raw_socket(where)
    k.sendall(("PUT /import_raw_vdi?vdi=%s&session_id=%s&task_id=%s "
               "HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % (vdi, s, task, SIZE)).encode())
    k.sendall(os.urandom(SIZE // 2))
    t0 = time.monotonic()
    k.close()
    rec = wait_task(x, s, task, timeout=60)
    dt = time.monotonic() - t0
    C.eq(rec["status"], "failure", "client gone mid-upload: task fails")
    C.ok(dt < 10, "... within seconds", "%.1f s" % dt)
    C.eq(rec["error_info"][:1], ["VDI_IO_ERROR"], "... with VDI_IO_ERROR")


def exported_images(where, x, s, vdi, want, tmp, what):
    """Export vdi as raw, vhd and qcow2: the raw body is want, byte for
    byte; the images pass qemu-img check (qcow2) and compare equal to
    want."""
    check_exported(x, s, where, vdi, want, what + ", raw")
    raw = os.path.join(tmp, "zc.raw")
    with open(raw, "wb") as f:
        f.write(want)
    for fmt, qfmt in (("vhd", "vpc"), ("qcow2", "qcow2")):
        r, img = export(where, vdi, s, fmt)
        C.eq(r.status, 200, "%s, %s: status" % (what, fmt))
        C.eq(int(r.getheader("Content-Length", "-1")), len(img),
             "%s, %s: the whole body" % (what, fmt))
        path = os.path.join(tmp, "zc." + fmt)
        with open(path, "wb") as f:
            f.write(img)
        if fmt == "qcow2":
            p = qemu_img("check", "-f", "qcow2", path)
            C.eq(p.returncode, 0, "%s: qemu-img check %s" %
                 (what, p.stdout + p.stderr if p.returncode else ""))
        p = qemu_img("compare", "-f", qfmt, "-F", "raw", path, raw)
        C.eq(p.returncode, 0, "%s, %s: qemu-img compare %s" %
             (what, fmt, p.stdout + p.stderr if p.returncode else ""))


def t_zero_copy(where, x, s, tmp):
    """Exports send the disk's data straight from the image files
    (sendfile over plain HTTP, read and written over TLS or with
    XCP_NO_SENDFILE): a VDI whose data lies in two files of its chain
    (a snapshot's parent and the leaf), a VDI of each image format, and
    a client gone mid-export."""
    data = pattern()
    vdi = new_vdi(x, s)
    r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s" % (vdi, s), data)
    C.eq(r.status, 200, "zero-copy: data in")
    snap = x.call("VDI.snapshot", s, vdi, {})
    # the leaf overwrites part of the parent's data and adds its own,
    # in chunk frames: 1 MiB at 4 MiB and at 6 MiB (a hole before)
    want = bytearray(data)
    new = os.urandom(2 * MiB)
    want[4 * MiB:5 * MiB] = new[:MiB]
    want[6 * MiB:7 * MiB] = new[MiB:]
    body = frames(bytes(want), [4, 6])
    r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s&chunked"
               % (vdi, s), body)
    C.eq((r.status, wait_task(x, s, task_of(r))["status"]), (200, "success"),
         "zero-copy: the leaf's writes in")
    exported_images(where, x, s, vdi, bytes(want), tmp,
                    "zero-copy through the chain")
    exported_images(where, x, s, snap, data, tmp, "zero-copy, the snapshot")

    # a VDI with VHD images: its data sectors are sent from the file
    sr = x.call("SR.get_all", s)[0]
    vhd = x.call("VDI.create", s, {
        "name_label": "v", "name_description": "", "SR": sr,
        "virtual_size": str(SIZE), "type": "user", "sharable": False,
        "read_only": False, "other_config": {}, "xenstore_data": {},
        "sm_config": {"image-format": "vhd"}, "tags": []})
    put(where, "/import_raw_vdi?vdi=%s&session_id=%s" % (vhd, s), data)
    exported_images(where, x, s, vhd, data, tmp, "zero-copy, a VHD VDI")

    # the client goes after the head and a few bytes of a large body
    for fmt in ("raw", "qcow2"):
        task = x.call("task.create", s, "t", "")
        k = raw_socket(where)
        k.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        k.sendall(("GET /export_raw_vdi?vdi=%s&session_id=%s&format=%s"
                   "&task_id=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                   % (vdi, s, fmt, task)).encode())
        status, _ = read_head(k)
        k.recv(1000)
        t0 = time.monotonic()
        k.close()
        rec = wait_task(x, s, task, timeout=60)
        C.eq((status, rec["status"]), (200, "failure"),
             "zero-copy %s: client gone mid-export: its task fails" % fmt)
        C.ok(time.monotonic() - t0 < 10, "... within seconds")
    check_exported(x, s, where, vdi, bytes(want),
                   "zero-copy: an export after the client gone")


def t_errors(where, x, s):
    vdi = new_vdi(x, s)
    task = x.call("task.create", s, "t", "")
    r, _ = export(where, vdi, s, "bogus&task_id=" + task)
    C.eq(r.status, 404, "unknown format: 404")
    rec = wait_task(x, s, task)
    C.eq(rec["status"], "failure", "unknown format: the task fails")
    C.eq(rec["error_info"], ["INVALID_VALUE", "format", "bogus"],
         "unknown format: INVALID_VALUE")
    r, _ = put(where, "/import_raw_vdi?vdi=%s&session_id=%s&format=vhd"
               "&chunked" % (vdi, s), b"x")
    C.eq(r.status, 400, "chunked vhd: 400")


def xe(d, *args, tty=False):
    """xe on d's state directory (its daemon when it runs): (rc, out,
    err); with tty, stderr is a terminal."""
    env = dict(os.environ, XCP_STATE_DIR=d.state)
    if not tty:
        p = subprocess.run([XE] + list(args), env=env, capture_output=True,
                           text=True, timeout=300)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen([XE] + list(args), env=env, stdout=subprocess.PIPE,
                         stderr=slave, text=True)
    os.close(slave)
    err = b""
    while True:
        try:
            got = os.read(master, 4096)
        except OSError:
            break
        if not got:
            break
        err += got
    out = p.communicate(timeout=300)[0]
    os.close(master)
    return p.returncode, out, err.decode("utf-8", "replace")


def t_xe(d, tmp, how, extra):
    """vdi-import and vdi-export, raw and vhd, by one way of reaching the
    engine (extra: xe's connection arguments)."""
    data = pattern()
    raw = os.path.join(tmp, "xe-in.raw")
    with open(raw, "wb") as f:
        f.write(data)
    sr = xe(d, *extra, "sr-list", "params=uuid",
            "--minimal")[1].strip().split(",")[0]
    rc, vdi, err = xe(d, *extra, "vdi-create", "sr-uuid=" + sr,
                      "name-label=xe", "virtual-size=%d" % SIZE)
    vdi = vdi.strip()
    C.eq(rc, 0, "%s: vdi-create %s" % (how, err))
    rc, out, err = xe(d, *extra, "vdi-import", "uuid=" + vdi,
                      "filename=" + raw)
    C.eq((rc, err), (0, ""), "%s: vdi-import raw, quiet off a terminal" % how)
    vhd = os.path.join(tmp, "xe-out.vhd")
    rc, out, err = xe(d, *extra, "vdi-export", "uuid=" + vdi,
                      "filename=" + vhd, "format=vhd", tty=True)
    C.eq(rc, 0, "%s: vdi-export vhd" % how)
    C.ok("%" in err and "MiB/s" in err,
         "%s: a progress bar on a terminal" % how, repr(err[-200:]))
    p = qemu_img("compare", "-f", "vpc", "-F", "raw", vhd, raw)
    C.eq(p.returncode, 0, "%s: qemu-img compare of xe's VHD %s"
         % (how, p.stdout + p.stderr))
    # into a VDI whose own image is a VHD, then into a qcow2 one
    rc, vdi2, err = xe(d, *extra, "vdi-create", "sr-uuid=" + sr,
                       "name-label=xe2", "virtual-size=%d" % SIZE,
                       "sm-config:image-format=vhd")
    vdi2 = vdi2.strip()
    rc, out, err = xe(d, *extra, "vdi-import", "uuid=" + vdi2,
                      "filename=" + vhd, "format=vhd")
    C.eq(rc, 0, "%s: vdi-import vhd into a VHD VDI %s" % (how, err))
    back = os.path.join(tmp, "xe-back.raw")
    rc, out, err = xe(d, *extra, "vdi-export", "uuid=" + vdi2,
                      "filename=" + back)
    with open(back, "rb") as f:
        C.ok(rc == 0 and same(f.read(), data),
             "%s: the VHD VDI holds the image's data" % how, err)
    rc, vdi2, err = xe(d, *extra, "vdi-create", "sr-uuid=" + sr,
                       "name-label=xe3", "virtual-size=%d" % SIZE)
    vdi2 = vdi2.strip()
    rc, out, err = xe(d, *extra, "vdi-import", "uuid=" + vdi2,
                      "filename=" + vhd, "format=vhd")
    C.eq(rc, 0, "%s: vdi-import vhd %s" % (how, err))
    back = os.path.join(tmp, "xe-back.raw")
    rc, out, err = xe(d, *extra, "vdi-export", "uuid=" + vdi2,
                      "filename=" + back)
    C.eq(rc, 0, "%s: vdi-export raw %s" % (how, err))
    with open(back, "rb") as f:
        C.ok(same(f.read(), data), "%s: what went in came back" % how)
    rc, out, err = xe(d, *extra, "vdi-import", "uuid=" + vdi2,
                      "filename=/etc/hostname", "format=vhd")
    C.ok(rc != 0 and "VDI_IO_ERROR" in out + err,
         "%s: a file that is no VHD fails with VDI_IO_ERROR" % how, out + err)


def run(d, where, tmp):
    x = XenAPI(where)
    s = x.login()
    C.section("%s raw" % where[0], t_raw, where, x, s)
    C.section("%s until close" % where[0], t_until_close, where, x, s)
    C.section("%s chunked" % where[0], t_chunked, where, x, s)
    C.section("%s vhd" % where[0], t_vhd, where, x, s, tmp)
    C.section("%s sr_id" % where[0], t_sr_id, where, x, s)
    C.section("%s full SR" % where[0], t_full, where, x, s, d.state)
    C.section("%s vanish" % where[0], t_vanish, where, x, s)
    C.section("%s errors" % where[0], t_errors, where, x, s)
    C.section("%s zero-copy" % where[0], t_zero_copy, where, x, s, tmp)


def images(state):
    out = []
    for root, _, files in os.walk(state):
        out += [os.path.join(root, f) for f in files
                if f.endswith((".qcow2", ".vhd"))]
    return out


def check_images(state, what):
    """Every image the SR holds passes qemu-img's check (qcow2) or opens
    (VHD: qemu-img has no VHD checker)."""
    found = images(state)
    for img in found:
        if img.endswith(".vhd"):
            p = qemu_img("info", "-f", "vpc", img)
        else:
            p = qemu_img("check", "-f", "qcow2", img)
        C.eq(p.returncode, 0, "%s: qemu-img on %s %s"
             % (what, os.path.basename(img),
                (p.stdout + p.stderr) if p.returncode else ""))
    C.ok(found, "%s: images found" % what)


def t_kill9(tmp):
    with Daemon("transfer-kill") as d:
        d.start()
        where = d.http
        x = XenAPI(where)
        s = x.login()
        vdi = new_vdi(x, s)
        data = pattern()
        k = raw_socket(where)
        k.sendall(("PUT /import_raw_vdi?vdi=%s&session_id=%s HTTP/1.1\r\n"
                   "Host: x\r\nContent-Length: %d\r\n\r\n"
                   % (vdi, s, SIZE)).encode())
        k.sendall(data[:SIZE // 2])
        time.sleep(0.5)
        d.proc.kill()
        d.proc.wait()
        k.close()
        log("xcpd killed in the middle of an import")
        check_images(d.state, "after kill -9")
        d.start()
        x = XenAPI(d.http)
        s = x.login()
        C.ok(x.call("VDI.get_uuid", s, vdi), "after kill -9: the VDI is there")
        r, _ = put(d.http, "/import_raw_vdi?vdi=%s&session_id=%s"
                   % (vdi, s), data)
        C.eq(r.status, 200, "after kill -9: a new import")
        check_exported(x, s, d.http, vdi, data, "after kill -9")
        C.eq(d.stop(), 0, "after kill -9: xcpd stops cleanly")


def main():
    install_signal_exit(C, watchdog_s=600)
    if shutil.which("qemu-img") is None:
        log("SKIP: qemu-img not installed")
        return 77
    tmp = tempfile.mkdtemp(prefix="transfer-")
    try:
        with Daemon("transfer") as d:
            C.section("xe embedded", t_xe, d, tmp, "embedded", [])
            d.start()
            for where in (d.http, d.https):
                run(d, where, tmp)
            # xe finds a local daemon at <state dir>/xapi
            os.symlink(d.sock_path, os.path.join(d.state, "xapi"))
            C.section("xe daemon", t_xe, d, tmp, "daemon socket", [])
            for where, flags in ((d.https, []), (d.http, ["--nossl"])):
                C.section("xe -s %s" % where[0], t_xe, d, tmp,
                          "xe -s " + where[0],
                          ["-s", where[1], "-p", str(where[2]), "-u", USER,
                           "-pw", PASSWORD] + flags)
            C.eq(d.stop(), 0, "xcpd stops cleanly")
            check_images(d.state, "every image written")
        C.section("kill -9 in an import", t_kill9, tmp)
        # exports as bytes on plain HTTP too: the sendfile fallback
        os.environ["XCP_NO_SENDFILE"] = "1"
        try:
            with Daemon("transfer-nosendfile") as d:
                d.start()
                x = XenAPI(d.http)
                C.section("no sendfile: zero-copy", t_zero_copy, d.http, x,
                          x.login(), tmp)
                C.eq(d.stop(), 0, "no sendfile: xcpd stops cleanly")
        finally:
            del os.environ["XCP_NO_SENDFILE"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return C.finish()


if __name__ == "__main__":
    sys.exit(main())
