#!/usr/bin/env python3
"""xcpd's NBD server (--nbd-listen) against the sim driver, read by libnbd's
nbdinfo and nbdcopy and by Xen Orchestra's @vates/nbd-client:
VDI.get_nbd_info's records (none until a network has an NBD purpose), a
VDI's data as qemu-img reads the same image, a bad or ended session
refused, no listing of the exports, the front end's negotiation by hand,
its bounds (a stalled client dropped, 64 clients at once, a negotiated
client idle past --nbd-idle-timeout closed, one reading on kept), concurrent
readers, a running VM's disk, the changed blocks between two snapshots as
a qemu:dirty-bitmap context equal to VDI.list_changed_blocks, TLS with the
certificate from get_nbd_info (plain refused then), and no
qemu-storage-daemon left after SIGTERM or kill -9 of xcpd. Usage:
test_nbd.py PATH-TO-XCPD. Exit 0 when every test passed, 77 (skip) when
libnbd-bin or qemu-storage-daemon is missing."""

import base64
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_xcpd as base  # noqa: E402  (the Daemon and RPC helpers)

from test_xcpd import (FAILED, Daemon, check, login, post,  # noqa: E402
                       run, value, xml_call)

MIB = 1 << 20
BLOCK = 64 << 10   # XAPI's changed block size


def call(conn, method, *args):
    r, body = post(conn, "/", xml_call(method, *args))
    return value(body)


def call_error(conn, method, *args):
    """The ErrorDescription of a call that must fail."""
    r, body = post(conn, "/", xml_call(method, *args))
    reply = xmlrpc.client.loads(body)[0][0]
    check(reply["Status"] == "Failure", "%s succeeded" % method)
    return reply["ErrorDescription"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def uri(info, tls_dir=None):
    """The NBD URI of a get_nbd_info record (libnbd's syntax)."""
    name = urllib.parse.quote(info["exportname"], safe="")
    scheme = "nbds" if tls_dir else "nbd"
    u = "%s://127.0.0.1:%s/%s" % (scheme, info["port"], name)
    return u + ("?tls-certificates=" + tls_dir if tls_dir else "")


def nbd(*args, ok=True):
    p = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=120)
    if ok:
        check(p.returncode == 0, "%s failed: %s" % (args[0], p.stderr))
    return p


def image_of(state, vdi_location):
    """The image file of a VDI in the state directory's SRs."""
    for root, _, files in os.walk(state):
        for f in files:
            if f == vdi_location or (f.startswith(vdi_location + ".") and
                                     not f.endswith(".cbtlog")):
                return os.path.join(root, f)
    raise AssertionError("no image for %s" % vdi_location)


def qemu_raw(path, out):
    nbd("qemu-img", "convert", "-O", "raw", "-U", path, out)
    with open(out, "rb") as f:
        return f.read()


class Setup:
    def __init__(self, *extra):
        self.port = free_port()
        self.d = Daemon("--nbd-listen", "127.0.0.1:%d" % self.port, *extra)
        self.c = c = self.d.unix()
        self.s = login(c)
        self.tmp = tempfile.mkdtemp(prefix="nbd-test.")
        self.sr = call(c, "pool.get_default_SR", self.s,
                       call(c, "pool.get_all", self.s)[0])
        self.net = self.mgmt_network()
        self.vdi = self.new_vdi("nbd", 8 * MIB)
        self.data = bytes(range(256)) * (3 * MIB // 256)
        self.put(self.vdi, self.data)

    def mgmt_network(self):
        for pif in call(self.c, "PIF.get_all", self.s):
            if call(self.c, "PIF.get_management", self.s, pif):
                ip = call(self.c, "PIF.get_IP", self.s, pif)
                check(ip != "", "the management PIF has no IP")
                self.ip = ip
                return call(self.c, "PIF.get_network", self.s, pif)
        raise AssertionError("no management PIF")

    def new_vdi(self, name, size):
        rec = {"name_label": name, "name_description": "", "SR": self.sr,
               "virtual_size": str(size), "type": "user", "sharable": False,
               "read_only": False, "other_config": {}, "xenstore_data": {},
               "sm_config": {}, "tags": []}
        return call(self.c, "VDI.create", self.s, rec)

    def put(self, vdi, data, fmt="raw"):
        t = self.d.unix()
        t.request("PUT", "/import_raw_vdi?vdi=%s&format=%s&session_id=%s"
                  % (vdi, fmt, self.s), data)
        r = t.getresponse()
        body = r.read()
        check(r.status == 200, "import %d %r" % (r.status, body[:300]))

    def info(self, vdi, session=None):
        return call(self.c, "VDI.get_nbd_info", session or self.s, vdi)

    def purpose(self, add, p):
        call(self.c, "network.%s_purpose" % ("add" if add else "remove"),
             self.s, self.net, p)

    def image(self, vdi):
        return image_of(self.d.state,
                        call(self.c, "VDI.get_location", self.s, vdi))

    def close(self):
        if os.environ.get("KEEPLOG"):
            shutil.copy(self.d.log, "/tmp/nbd-xcpd.log")
        self.d.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def t_records(st):
    check(st.info(st.vdi) == [], "records before any NBD network")
    st.purpose(True, "insecure_nbd")
    infos = st.info(st.vdi)
    uuid = call(st.c, "VDI.get_uuid", st.s, st.vdi)
    check(len(infos) == 1, "one record per address: %r" % (infos,))
    i = infos[0]
    # XAPI's form, with a token standing for the session on NBD alone
    check(re.fullmatch(r"/%s\?session_id=OpaqueRef:[0-9a-f-]{36}" % uuid,
                       i["exportname"]), "exportname %r" % i["exportname"])
    check(st.s not in i["exportname"], "the API session in the name")
    check(i["address"] == st.ip, "address %r" % i["address"])
    check(int(i["port"]) == st.port, "port %r" % i["port"])
    check(i["cert"].startswith("-----BEGIN CERTIFICATE-----"), "cert")
    check(i["subject"] != "", "subject")
    # JSON-RPC (Xen Orchestra's transport): the same record, port a number
    body = json.dumps({"jsonrpc": "2.0", "method": "VDI.get_nbd_info",
                       "params": [st.s, st.vdi], "id": 1})
    r, reply = post(st.c, "/jsonrpc", body.encode(),
                    {"Content-Type": "application/json"})
    j = json.loads(reply)["result"]
    check(j == [dict(i, port=st.port)] and j[0]["port"] == st.port,
          "JSON-RPC %r" % (j,))
    # nbd and insecure_nbd exclude each other, on any network, as XAPI
    err = call_error(st.c, "network.add_purpose", st.s, st.net, "nbd")
    check(err == ["NETWORK_INCOMPATIBLE_PURPOSES", "nbd", "insecure_nbd"],
          "incompatible: %r" % (err,))


def t_read(st):
    i = st.info(st.vdi)[0]
    p = nbd("nbdinfo", "--json", uri(i))
    j = json.loads(p.stdout)
    check(j["exports"][0]["export-size"] == 8 * MIB, "size %r" % p.stdout)
    check(j["exports"][0]["is_read_only"], "read-only export")
    out = os.path.join(st.tmp, "copy.raw")
    nbd("nbdcopy", uri(i), out)
    with open(out, "rb") as f:
        got = f.read()
    want = qemu_raw(st.image(st.vdi), os.path.join(st.tmp, "qemu.raw"))
    check(got == want, "nbdcopy differs from qemu-img's view")
    check(got[:len(st.data)] == st.data, "the imported data")
    # the export named again is the same export
    check(st.info(st.vdi) == [i], "get_nbd_info twice")


def t_bad_session(st):
    i = dict(st.info(st.vdi)[0])
    uuid = call(st.c, "VDI.get_uuid", st.s, st.vdi)
    for bad in ("OpaqueRef:00000000-0000-0000-0000-000000000000", st.s, ""):
        i["exportname"] = "/%s?session_id=%s" % (uuid, bad)
        p = nbd("nbdinfo", "--size", uri(i), ok=False)
        check(p.returncode != 0, "session %r is served" % bad)
    # no listing of the exports: the names are capabilities
    no_listing(st, uri(st.info(st.vdi)[0]))
    # a session that ended: its export is gone
    s2 = login(st.c)
    i2 = st.info(st.vdi, s2)[0]
    nbd("nbdinfo", "--size", uri(i2))
    call(st.c, "session.logout", s2)
    p = nbd("nbdinfo", "--size", uri(i2), ok=False)
    check(p.returncode != 0, "an ended session's export is served")
    # the other session's export is still there
    nbd("nbdinfo", "--size", uri(st.info(st.vdi)[0]))


def no_listing(st, u):
    """nbdinfo --list shows no export (refused, or nothing): neither the
    names handed out nor any session."""
    name = st.info(st.vdi)[0]["exportname"]
    p = nbd("nbdinfo", "--list", "--json", u, ok=False)
    check(name not in p.stdout and st.s not in p.stdout and
          st.s.split(":")[1] not in p.stdout, "the listing shows %r" % name)
    if p.returncode == 0:
        check(json.loads(p.stdout)["exports"] == [], p.stdout)


# The fixed newstyle negotiation by hand (NetworkBlockDevice doc/proto.md)
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3e889045565a9
OPT_LIST, OPT_GO = 3, 7
REP_ACK, REP_SERVER = 1, 2
ERR_UNSUP, ERR_POLICY, ERR_UNKNOWN = (1 << 31) + 1, (1 << 31) + 2, \
    (1 << 31) + 6


def recv_all(sk, n):
    b = b""
    while len(b) < n:
        got = sk.recv(n - len(b))
        if not got:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += got
    return b


def raw_client(port):
    """A plain connection past the greeting (fixed newstyle, no zeroes)."""
    sk = socket.create_connection(("127.0.0.1", port), timeout=60)
    hello = recv_all(sk, 18)
    check(hello[:16] == b"NBDMAGICIHAVEOPT", "greeting %r" % hello)
    sk.sendall(struct.pack(">I", 3))
    return sk


def raw_option(sk, opt, data=b""):
    """Send an option; its replies [(type, data)] up to the last one."""
    sk.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)
    replies = []
    while True:
        magic, ropt, rtype, rlen = struct.unpack(">QIII", recv_all(sk, 20))
        check(magic == REPLY_MAGIC and ropt == opt, "reply %x" % magic)
        replies.append((rtype, recv_all(sk, rlen)))
        if rtype == REP_ACK or rtype & (1 << 31):
            return replies


def go(name):
    n = name.encode()
    return struct.pack(">I", len(n)) + n + struct.pack(">H", 0)


def t_negotiation(st):
    """The front end's answers, by hand (insecure_nbd): no listing, names
    not handed out unknown, unknown options unsupported."""
    name = st.info(st.vdi)[0]["exportname"]
    sk = raw_client(st.port)
    try:
        r = raw_option(sk, OPT_LIST)
        check(r == [(ERR_POLICY, b"")], "NBD_OPT_LIST answered %r" % r)
        uuid = call(st.c, "VDI.get_uuid", st.s, st.vdi)
        for bad in ("", uuid, "/" + uuid, name + "x",
                    "/%s?session_id=%s" % (uuid, st.s)):
            r = raw_option(sk, OPT_GO, go(bad))
            check(r == [(ERR_UNKNOWN, b"")], "GO %r: %r" % (bad, r))
        r = raw_option(sk, 99)
        check(r == [(ERR_UNSUP, b"")], "option 99: %r" % r)
        # the name handed out is served on the same connection
        r = raw_option(sk, OPT_GO, go(name))
        check(r[-1][0] == REP_ACK, "GO %r: %r" % (name, r))
    finally:
        sk.close()


def t_stalled_client(st):
    """A client that says nothing after the greeting is dropped (10 s),
    not kept forever."""
    sk = raw_client(st.port)
    try:
        start = time.time()
        sk.settimeout(60)
        check(sk.recv(1) == b"", "a stalled client got bytes")
        check(time.time() - start < 55, "a stalled client was kept")
    except OSError as e:
        check(False, "a stalled client was kept: %s" % e)
    finally:
        sk.close()


CMD_READ, REQ_MAGIC, SIMPLE_REPLY_MAGIC = 0, 0x25609513, 0x67446698


def nbd_read(sk, handle, offset, length):
    """One NBD_CMD_READ on a negotiated connection (simple replies)."""
    sk.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_READ, handle,
                           offset, length))
    magic, err, h = struct.unpack(">IIQ", recv_all(sk, 16))
    check(magic == SIMPLE_REPLY_MAGIC and err == 0 and h == handle,
          "read reply %x %d %d" % (magic, err, h))
    return recv_all(sk, length)


def t_idle_timeout():
    """--nbd-idle-timeout 2: a client that reads on, a request a second
    for 6 s, is served throughout; once it stops talking after its
    negotiation, it is closed within a few seconds (the default, an hour,
    is what every other test runs under)."""
    st = Setup("--nbd-idle-timeout", "2")
    try:
        st.purpose(True, "insecure_nbd")
        name = st.info(st.vdi)[0]["exportname"]
        sk = raw_client(st.port)
        try:
            r = raw_option(sk, OPT_GO, go(name))
            check(r[-1][0] == REP_ACK, "GO %r: %r" % (name, r))
            for k in range(7):
                if k:
                    time.sleep(1)
                got = nbd_read(sk, k + 1, k * 4096, 4096)
                check(got == st.data[k * 4096:(k + 1) * 4096],
                      "read %d: not the imported data" % k)
            start = time.time()     # the last byte moved
            sk.settimeout(60)
            check(sk.recv(1) == b"", "an idle client got bytes")
            waited = time.time() - start
            check(1.5 < waited < 15, "an idle client closed after %.1f s "
                  "(timeout 2 s)" % waited)
        except OSError as e:
            check(False, "an idle client was kept: %s" % e)
        finally:
            sk.close()
        # a timeout that is not a number is refused
        p = subprocess.run([base.XCPD, "--nbd-idle-timeout", "x"],
                           capture_output=True, text=True)
        check(p.returncode == 2 and "bad number" in p.stderr,
              "--nbd-idle-timeout x: %d %r" % (p.returncode, p.stderr))
    finally:
        st.close()


def t_connection_limit(st):
    """64 clients at once at most: the next one is closed at once, and a
    slot is free again when a client leaves."""
    held = [raw_client(st.port) for _ in range(64)]
    try:
        sk = socket.create_connection(("127.0.0.1", st.port), timeout=30)
        check(sk.recv(18) == b"", "a 65th client was served")
        sk.close()
        held.pop().close()
        deadline = time.time() + 30
        while True:
            try:
                raw_client(st.port).close()
                break
            except (AssertionError, EOFError, OSError):
                check(time.time() < deadline, "no slot after one left")
                time.sleep(0.1)
    finally:
        for sk in held:
            sk.close()


def concurrent_copies(st, u, tag):
    """Four nbdcopy at once, and one with four connections: each the
    image's bytes."""
    want = qemu_raw(st.image(st.vdi), os.path.join(st.tmp, "want.raw"))
    outs = [os.path.join(st.tmp, "%s%d.raw" % (tag, k)) for k in range(5)]
    procs = [subprocess.Popen(["nbdcopy", u, o], stderr=subprocess.PIPE)
             for o in outs[:4]]
    procs.append(subprocess.Popen(["nbdcopy", "--connections=4", u,
                                   outs[4]], stderr=subprocess.PIPE))
    for p, o in zip(procs, outs):
        err = p.communicate(timeout=300)[1]
        check(p.returncode == 0, "nbdcopy %s: %s" % (o, err))
        with open(o, "rb") as f:
            check(f.read() == want, "concurrent copy %s differs" % o)


# Xen Orchestra's NBD client, from npm into the interop tests' cache. The
# registry we can reach has xen-api 4.7.6 and async-map 0.1.4 only: the
# NBD code uses neither's newer parts.
XO_NBD = {"dependencies": {"@vates/nbd-client": "3.6.0"},
          "overrides": {"@xen-orchestra/async-map": "0.1.4",
                        "xen-api": "4.7.6"}}


def xo_nbd_modules():
    """The directory holding @vates/nbd-client (installed on first use),
    or None with why printed when node or npm cannot provide it."""
    root = os.environ.get("XCP_INTEROP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or
        os.path.join(os.environ.get("HOME", "/tmp"), ".cache"),
        "libxcp-interop")
    d = os.path.join(root, "nbd-client")
    if not (shutil.which("node") and shutil.which("npm")):
        print("SKIP xo: node or npm missing")
        return None
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pkg = os.path.join(d, "node_modules", "@vates", "nbd-client")
        if not os.path.isdir(pkg):
            with open(os.path.join(d, "package.json"), "w") as f:
                json.dump(XO_NBD, f)
            p = subprocess.run(["npm", "install", "--no-audit", "--no-fund"],
                               cwd=d, capture_output=True, text=True,
                               timeout=600)
            if p.returncode != 0 or not os.path.isdir(pkg):
                print("SKIP xo: npm install failed: %s" % p.stderr[-500:])
                return None
    return d


def xo_reads(st, infos, tls):
    """@vates/nbd-client reads the VDI whole, one connection and four."""
    modules = xo_nbd_modules()
    if modules is None:
        return
    want = qemu_raw(st.image(st.vdi), os.path.join(st.tmp, "xo.raw"))
    # the sim's addresses are not this machine's: the server listens here
    recs = [dict(i, port=int(i["port"]), address="127.0.0.1") for i in infos]
    if not tls:
        for r in recs:
            del r["cert"]
    p = subprocess.run(["node", os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "nbd_xo.mjs"), modules, json.dumps(recs)],
        capture_output=True, text=True, timeout=180)
    check(p.returncode == 0, "XO's NBD client: %s" % p.stderr[-1000:])
    got = json.loads(p.stdout)
    w = {"size": len(want), "sha256": hashlib.sha256(want).hexdigest()}
    check(got == {"single": w, "multi": w}, "XO read %r, want %r" % (got, w))


def t_xo_client(st):
    """XO's client on an insecure_nbd network: plain, and with the
    certificate it is given (TLS is optional there, XO asks for it)."""
    infos = st.info(st.vdi)
    xo_reads(st, infos, False)
    xo_reads(st, infos, True)


def t_concurrent(st):
    concurrent_copies(st, uri(st.info(st.vdi)[0]), "plain")


def blocks_of_map(text, nblocks):
    """nbdinfo --map output of a dirty bitmap to XAPI's bitmap bytes."""
    bits = bytearray((nblocks + 7) // 8)
    for line in text.splitlines():
        f = line.split()
        if len(f) < 3 or f[2] != "1":
            continue
        off, length = int(f[0]), int(f[1])
        for b in range(off // BLOCK, (off + length + BLOCK - 1) // BLOCK):
            bits[b // 8] |= 0x80 >> (b % 8)
    return bytes(bits)


def t_changed_blocks(st):
    c, s = st.c, st.s
    vdi = st.new_vdi("cbt", 16 * MIB)
    call(c, "VDI.enable_cbt", s, vdi)
    st.put(vdi, b"\x11" * (16 * MIB))
    a = call(c, "VDI.snapshot", s, vdi, {})
    # XAPI's chunk frames: data written at two places only
    frames = (struct.pack("<QI", 1 * MIB, 65536) + b"\x22" * 65536 +
              struct.pack("<QI", 9 * MIB + 4096, 200 << 10) +
              b"\x33" * (200 << 10) + struct.pack("<QI", 0, 0))
    st.put(vdi, frames, "raw&chunked")
    b = call(c, "VDI.snapshot", s, vdi, {})
    want = base64.b64decode(call(c, "VDI.list_changed_blocks", s, a, b))
    i = st.info(b)[0]
    p = nbd("nbdinfo", "--json", uri(i))
    ctxs = json.loads(p.stdout)["exports"][0]["contexts"]
    dirty = [x for x in ctxs if x.startswith("qemu:dirty-bitmap:")]
    a_uuid = call(c, "VDI.get_uuid", s, a)
    check(dirty == ["qemu:dirty-bitmap:xcp-cbt:" + a_uuid],
          "contexts %r" % (ctxs,))
    p = nbd("nbdinfo", "--map=" + dirty[0], uri(i))
    got = blocks_of_map(p.stdout, 16 * MIB // BLOCK)
    check(got == want, "dirty bitmap %s != list_changed_blocks %s" %
          (got.hex(), want.hex()))
    st.cbt = (b, dirty[0], want)   # read again over TLS (t_tls)
    changed = [k for k in range(16 * MIB // BLOCK)
               if want[k // 8] & (0x80 >> (k % 8))]
    check(changed == [16, 144, 145, 146, 147], "changed blocks %r" % changed)
    # the snapshot's data through NBD is the snapshot's
    out = os.path.join(st.tmp, "snap.raw")
    nbd("nbdcopy", uri(i), out)
    with open(out, "rb") as f:
        got = f.read()
    check(got[1 * MIB:1 * MIB + 65536] == b"\x22" * 65536, "new data")
    check(got[:MIB] == b"\x11" * MIB, "old data")


def t_running_vm(st):
    c, s = st.c, st.s
    tmpl = call(c, "VM.get_by_name_label", s, "Other install media")[0]
    vm = call(c, "VM.clone", s, tmpl, "nbd-vm")
    call(c, "VM.provision", s, vm)
    call(c, "VBD.create", s, {
        "VM": vm, "VDI": st.vdi, "userdevice": "1", "bootable": False,
        "mode": "RW", "type": "Disk", "unpluggable": True, "empty": False,
        "other_config": {}, "qos_algorithm_type": "",
        "qos_algorithm_params": {}})
    call(c, "VM.start", s, vm, False, False)
    i = st.info(st.vdi)[0]
    out = os.path.join(st.tmp, "live.raw")
    nbd("nbdcopy", uri(i), out)
    with open(out, "rb") as f:
        check(f.read()[:len(st.data)] == st.data, "a running VM's disk")
    call(c, "VM.hard_shutdown", s, vm)


def t_vhd(st):
    """A VHD VDI: QEMU's vpc driver reads a dynamic VHD, not a
    differencing one (a snapshot's leaf): get_nbd_info says so."""
    c, s = st.c, st.s
    rec = {"name_label": "vhd", "name_description": "", "SR": st.sr,
           "virtual_size": str(8 * MIB), "type": "user", "sharable": False,
           "read_only": False, "other_config": {}, "xenstore_data": {},
           "sm_config": {"image-format": "vhd"}, "tags": []}
    vdi = call(c, "VDI.create", s, rec)
    st.put(vdi, st.data)
    i = st.info(vdi)[0]
    out = os.path.join(st.tmp, "vhd.raw")
    nbd("nbdcopy", uri(i), out)
    with open(out, "rb") as f:
        got = f.read()
    check(got == qemu_raw(st.image(vdi), os.path.join(st.tmp, "qv.raw")),
          "nbdcopy differs from qemu-img's view of the VHD")
    check(got[:len(st.data)] == st.data, "the VHD's data")
    # QEMU would read a differencing VHD without its parent: refused
    snap = call(c, "VDI.snapshot", s, vdi, {})
    for v in (snap, vdi):
        err = call_error(c, "VDI.get_nbd_info", s, v)
        check(err[0] == "SR_BACKEND_FAILURE" and "differencing" in err[2],
              "a differencing VHD: %r" % (err,))


def t_tls(st):
    st.purpose(False, "insecure_nbd")
    st.purpose(True, "nbd")
    err = call_error(st.c, "network.add_purpose", st.s, st.net,
                     "insecure_nbd")
    check(err == ["NETWORK_INCOMPATIBLE_PURPOSES", "insecure_nbd", "nbd"],
          "incompatible: %r" % (err,))
    i = st.info(st.vdi)[0]
    certs = os.path.join(st.tmp, "certs")
    os.makedirs(certs, exist_ok=True)
    with open(os.path.join(certs, "ca-cert.pem"), "w") as f:
        f.write(i["cert"])
    p = nbd("nbdinfo", "--json", uri(i, certs))
    check(json.loads(p.stdout)["TLS"] is True, p.stdout)
    out = os.path.join(st.tmp, "tls.raw")
    nbd("nbdcopy", uri(i, certs), out)
    with open(out, "rb") as f:
        check(f.read()[:len(st.data)] == st.data, "data over TLS")
    p = nbd("nbdinfo", "--size", uri(i), ok=False)
    check(p.returncode != 0, "plain NBD served where TLS is required")
    no_listing(st, uri(i, certs))
    concurrent_copies(st, uri(i, certs), "tls")
    xo_reads(st, st.info(st.vdi), True)
    # the dirty bitmap context over TLS too
    snap, ctx, want = st.cbt
    p = nbd("nbdinfo", "--map=" + ctx, uri(st.info(snap)[0], certs))
    check(blocks_of_map(p.stdout, len(want) * 8) == want,
          "dirty bitmap over TLS: %r" % p.stdout)
    # a certificate that is not the host's is refused by the client
    other = os.path.join(st.tmp, "other")
    os.makedirs(other, exist_ok=True)
    nbd("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", os.path.join(other, "k.pem"), "-out",
        os.path.join(other, "ca-cert.pem"), "-days", "1", "-subj",
        "/CN=localhost")
    p = nbd("nbdinfo", "--size", uri(i, other), ok=False)
    check(p.returncode != 0, "the client trusted another certificate")


def qsd_children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/comm" % d) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if int(fields[1]) == pid and comm.startswith("qemu-storage"):
            kids.append(int(d))
    return kids


def gone(pid, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def t_stop(sig):
    d = Daemon("--nbd-listen", "127.0.0.1:%d" % free_port())
    try:
        kids = qsd_children(d.proc.pid)
        check(len(kids) == 1, "one qemu-storage-daemon: %r" % kids)
        with open("/proc/%d/status" % kids[0]) as f:
            blk = [int(x.split()[1], 16) for x in f
                   if x.startswith("SigBlk:")][0]
        check(not blk & (1 << (signal.SIGTERM - 1)),
              "SIGTERM blocked in qemu-storage-daemon (xcpd's mask)")
        d.proc.send_signal(sig)
        d.proc.wait(30)
        check(gone(kids[0]), "qemu-storage-daemon outlived xcpd (%s)" % sig)
    finally:
        d.stop()


def t_busy_port():
    """A port in use fails xcpd's start, as its other listeners do."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    tmp = tempfile.mkdtemp(prefix="nbd-test.")
    try:
        p = subprocess.run(
            [base.XCPD, "--state-dir", os.path.join(tmp, "state"),
             "--no-socket", "--listen", "127.0.0.1:0", "--nbd-listen",
             "127.0.0.1:%d" % busy.getsockname()[1]],
            capture_output=True, text=True, timeout=120)
        check(p.returncode != 0, "xcpd started on a busy NBD port")
        check("nbd: cannot listen" in p.stderr, p.stderr[-500:])
    finally:
        busy.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    for tool in ("nbdinfo", "nbdcopy", "qemu-storage-daemon", "qemu-img"):
        if shutil.which(tool) is None:
            print("SKIP: %s not installed (tools/deps.sh)" % tool)
            sys.exit(77)
    st = Setup()
    try:
        for name, fn in (("records", t_records), ("read", t_read),
                         ("bad_session", t_bad_session),
                         ("negotiation", t_negotiation),
                         ("stalled_client", t_stalled_client),
                         ("connection_limit", t_connection_limit),
                         ("concurrent", t_concurrent),
                         ("xo_client", t_xo_client),
                         ("changed_blocks", t_changed_blocks),
                         ("running_vm", t_running_vm), ("vhd", t_vhd),
                         ("tls", t_tls)):
            run(name, lambda fn=fn: fn(st))
    finally:
        st.close()
    run("sigterm_stops_server", lambda: t_stop(signal.SIGTERM))
    run("kill9_stops_server", lambda: t_stop(signal.SIGKILL))
    run("busy_port_fails_start", t_busy_port)
    run("idle_timeout", t_idle_timeout)
    print("%d failed" % len(FAILED))
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
