#!/usr/bin/env python3
"""xcpd's /cli against the sim driver, played from the client's side byte
by byte (thin_cli.py: XAPI's newcli protocol): the handshake, output,
--minimal, errors and exit codes, logins (bad password, no user, local
root on the unix socket, session_id=), a prompt, vm-export/vm-import and
vdi-export/vdi-import through HttpGet/HttpPut against the daemon's own
handlers, a client that fails a transfer, a newer major version and an
oversized command line. Every output is compared with libxcp's own xe
run against the same daemon: byte for byte the same. Usage:
test_cli.py PATH-TO-XCPD PATH-TO-XE. Exit 0 when every test passed."""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
XE = sys.argv.pop(2)
import test_xcpd as base  # noqa: E402  (the Daemon and RPC helpers)
import thin_cli  # noqa: E402

from test_xcpd import FAILED, PASSWORD, Daemon, check, run  # noqa: E402


class Env:
    def __init__(self):
        self.d = Daemon()
        self.tmp = tempfile.mkdtemp(prefix="xcpd-cli.")

    def tcp(self):
        return socket.create_connection(("127.0.0.1", self.d.http),
                                        timeout=60)

    def unix(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.d.sock)
        return s

    def thin(self, *words, password=PASSWORD, user="root", lines=(),
             connect=None, **kw):
        r = thin_cli.run(connect or self.tcp, self.d.http, words, user=user,
                         password=password, stdin_lines=lines, **kw)
        return r

    def xe(self, *words, password=PASSWORD, user="root", stdin=""):
        p = subprocess.run([XE, "-s", "127.0.0.1", "-p", str(self.d.http),
                            "--nossl", "-u", user, "-pw", password, *words],
                           capture_output=True, text=True, input=stdin,
                           timeout=120)
        return p.returncode, p.stdout, p.stderr

    def same(self, *words, **kw):
        """Run words through /cli and through libxcp's xe: identical."""
        r = self.thin(*words, **kw)
        mine = (r.code, r.out, r.err)
        theirs = self.xe(*words, **{k: v for k, v in kw.items()
                                    if k in ("password", "user")})
        check(mine == theirs, "%s: /cli %r != xe %r" % (words, mine, theirs))
        return r

    def path(self, name):
        return os.path.join(self.tmp, name)


E = None


def t_handshake():
    r = E.thin("host-list", "--minimal")
    check(r.server_version == (0, 2), "version %r" % (r.server_version,))
    check(r.code == 0 and len(r.out.strip()) == 36, "host-list %r" % r.out)
    check(r.commands[-1] == ("Exit", [0]), "ends with Exit 0")


def t_lists_same_as_xe():
    for name in ("web1", "web2"):
        code, out, err = E.xe("vm-install", "template=Other install media",
                              "new-name-label=" + name)
        check(code == 0, "vm-install: %r" % err)
    E.same("vm-list")
    E.same("vm-list", "--minimal")
    E.same("vm-list", "params=all")
    E.same("template-list", "params=name-label")
    E.same("sr-list")
    uuid = E.xe("vm-list", "name-label=web1", "--minimal")[1].strip()
    r = E.same("vm-param-get", "uuid=" + uuid, "param-name=name-label")
    check(r.out == "web1\n", "param-get %r" % r.out)
    # whole lines a Print: the client's newline completes each one
    check(all(n != "Print" or not a[0].endswith("\n")
              or a[0].endswith("\n\n") for n, a in r.commands), "Print")


def t_errors_same_as_xe():
    r = E.same("vm-param-get", "uuid=nope", "param-name=name-label")
    check(r.code == 1 and r.err == ("The uuid you supplied was invalid.\n"
                                    "type: VM\nuuid: nope\n"), repr(r.err))
    r = E.same("no-such-command")
    check(r.code == 1 and r.err == ("Unknown command: no-such-command\n"
                                    "For usage run: 'xe help'\n"),
          repr(r.err))
    r = E.same("vm-param-get", "param-name=name-label")
    check(r.code == 1 and r.err.startswith("Required parameter not found: "),
          repr(r.err))
    check(r.commands[-1] == ("Exit", [1]), "exit 1")
    E.same("vm-start", "vm=no-such-vm")


def t_logins():
    r = E.same("vm-list", password="wrong")
    check(r.code == 1 and r.err == ("Authentication failed\n"
                                    "For usage run: 'xe help'\n"),
          repr(r.err))
    r = E.thin("vm-list", user="", password="")
    check(r.code == 1 and r.err == ("Username/password must be specified\n"
                                    "For usage run: 'xe help'\n"),
          repr(r.err))
    # as newcli on the host: the unix socket, "null" for a password
    if os.geteuid() == 0:
        r = E.thin("host-list", "--minimal", password="null",
                   connect=E.unix)
        check(r.code == 0 and len(r.out.strip()) == 36,
              "local root: %r %r" % (r.out, r.err))
    # a forwarded command: a session_id= line instead of credentials
    c = E.d.tcp()
    s = base.login(c)
    r = E.thin(body="session_id=%s\nhost-list\n--minimal" % s)
    check(r.code == 0 and len(r.out.strip()) == 36,
          "session_id: %r %r" % (r.out, r.err))
    r = E.thin(body="session_id=OpaqueRef:bogus\nhost-list")
    check(r.code == 1 and "session" in r.err.lower(), "bad session %r"
          % r.err)


def t_prompt():
    code, out, err = E.xe("vm-install", "template=Other install media",
                          "new-name-label=doomed")
    check(code == 0, err)
    r = E.thin("vm-uninstall", "vm=doomed", lines=["no"])
    check(("Prompt", []) in r.commands, "no Prompt: %r" % r.commands)
    check(r.code == 0 and r.out.endswith(
        "Type 'yes' to continue\nAborted (you typed: 'no')\n"), repr(r.out))
    r = E.thin("vm-uninstall", "vm=doomed", lines=["yes"])
    check(r.code == 0, r.err)
    check(E.xe("vm-list", "name-label=doomed", "--minimal")[1] == "\n",
          "doomed VM still there")


def tasks():
    """The tasks there are (uuids): neither the commands of /cli nor
    libxcp's xe over the remote driver leave one."""
    return set(E.xe("task-list", "params=uuid", "--minimal")[1].strip()
               .split(","))


def thin_no_task(*words, **kw):
    before = tasks()
    r = E.thin(*words, **kw)
    check(tasks() == before, "%s left tasks: %r" % (words[0],
                                                   tasks() - before))
    return r


def xe_no_task(*words):
    """libxcp's xe -s: its transfers go through tasks of its own, which
    it destroys (as XAPI's xe does), success or not."""
    before = tasks()
    r = E.xe(*words)
    check(tasks() == before, "xe %s left tasks: %r" % (words[0],
                                                      tasks() - before))
    return r


def t_vm_export_import():
    f = E.path("web1.xva")
    r = thin_no_task("vm-export", "vm=web1", "filename=" + f)
    check(r.code == 0 and r.out == "Export succeeded\n", "%r %r"
          % (r.out, r.err))
    gets = [a for n, a in r.commands if n == "HttpGet"]
    check(len(gets) == 1 and gets[0][0] == f
          and gets[0][1].startswith("/export?session_id=OpaqueRef:")
          and "&task_id=OpaqueRef:" in gets[0][1], "HttpGet %r" % gets)
    with tarfile.open(f) as t:
        check("ova.xml" in t.getnames(), "not an XVA: %r" % t.getnames())
    # the same output as libxcp's xe (which writes the file itself)
    code, out, err = xe_no_task("vm-export", "vm=web1",
                                "filename=" + E.path("web1-xe.xva"))
    check((code, out, err) == (r.code, r.out, r.err), "xe %r" % out)
    r = thin_no_task("vm-import", "filename=" + f)
    check(r.code == 0 and len(r.out.strip()) == 36, "%r %r" % (r.out, r.err))
    check(any(n == "HttpPut" and a[1].startswith("/import?")
              for n, a in r.commands), "HttpPut %r" % r.commands)
    name = E.xe("vm-param-get", "uuid=" + r.out.strip(),
                "param-name=name-label")[1]
    check(name == "web1\n", "imported %r" % name)
    code, out, err = xe_no_task("vm-import", "filename=" + f)
    check(code == 0 and len(out.strip()) == 36, "xe import %r" % err)


def t_vdi_export_import():
    sr = E.xe("sr-list", "name-label=Local storage", "--minimal")[1].strip()
    vdi = E.xe("vdi-create", "sr-uuid=" + sr, "name-label=d",
               "virtual-size=1MiB")[1].strip()
    src = E.path("pattern.raw")
    data = bytes((i * 7 + i // 4096) & 0xff for i in range(1 << 20))
    with open(src, "wb") as f:
        f.write(data)
    r = thin_no_task("vdi-import", "uuid=" + vdi, "filename=" + src)
    check(r.code == 0 and r.out == "" and r.err == "", "%r %r"
          % (r.out, r.err))
    puts = [a for n, a in r.commands if n == "HttpPut"]
    check(puts and puts[0][1].startswith("/import_raw_vdi?session_id="),
          "HttpPut %r" % puts)
    out = E.path("back.raw")
    r = thin_no_task("vdi-export", "uuid=" + vdi, "filename=" + out)
    check(r.code == 0, r.err)
    with open(out, "rb") as f:
        check(f.read() == data, "exported data differ")
    code, _, err = xe_no_task("vdi-export", "uuid=" + vdi,
                              "filename=" + E.path("xe.raw"))
    with open(E.path("xe.raw"), "rb") as f:
        check(code == 0 and f.read() == data, "xe's export differs " + err)
    code, _, err = xe_no_task("vdi-import", "uuid=" + vdi,
                              "filename=" + src)
    check(code == 0, "xe vdi-import " + err)
    r = E.thin("vdi-export", "uuid=" + vdi, "filename=" + out + ".vhd",
               "format=vhd")
    check(r.code == 0, r.err)
    with open(out + ".vhd", "rb") as f:
        check(f.read(8) == b"conectix", "not a VHD")


def t_client_fails_transfer():
    """newcli refuses to overwrite a file (O_EXCL) and answers Failed: the
    command ends, its task goes."""
    f = E.path("exists.xva")
    open(f, "w").close()
    t0 = time.time()
    r = thin_no_task("vm-export", "vm=web1", "filename=" + f)
    check(r.code == 1, "exit %r" % r.code)
    check(time.time() - t0 < 20, "took %.1f s" % (time.time() - t0))


def t_console():
    """xe console: HttpConnect to the daemon's /console, the VM's text."""
    vm = E.xe("vm-install", "template=Other install media",
              "new-name-label=con")[1].strip()
    check(E.xe("vm-start", "uuid=" + vm)[0] == 0, "vm-start")
    r = E.thin("console", "vm=con")
    cons = [a for n, a in r.commands if n == "HttpConnect"]
    check(r.code == 0 and cons and cons[0][0].startswith("/console?ref="),
          "console %r %r" % (r.commands, r.err))
    check(b"login:" in r.console, "console said %r" % r.console)
    check(r.out.startswith("Connecting to console on VM con."), r.out)


def t_load():
    """device-config:<key>-filename: the client's file through Load."""
    host = E.xe("host-list", "--minimal")[1].strip()
    sr = "11111111-2222-3333-4444-555555555555"
    check(E.xe("sr-introduce", "uuid=" + sr, "name-label=intro",
               "type=file", "content-type=user")[0] == 0, "sr-introduce")
    f = E.path("cfg")
    with open(f, "w") as fh:
        fh.write("from the client")
    r = E.thin("pbd-create", "host-uuid=" + host, "sr-uuid=" + sr,
               "device-config:foo-filename=" + f)
    check(("Load", [f]) in r.commands and r.code == 0, "%r" % r.commands)
    cfg = E.xe("pbd-param-get", "uuid=" + r.out.strip(),
               "param-name=device-config")[1]
    check(cfg == "foo: from the client\n", "device-config %r" % cfg)
    E.same("pbd-create", "host-uuid=" + host, "sr-uuid=" + sr,
           "device-config:foo-filename=" + f + ".missing")


def t_debug():
    """The command's server side as Debug messages (newcli shows them with
    --debug): each XenAPI call, its outcome; the output is unchanged.
    libxcp's xe prints the same lines with --debug, and with
    --debug-on-fail only when the command fails."""
    r = E.same("vm-param-get", "uuid=nope", "param-name=name-label")
    check(any(d.startswith("VM.get_by_uuid: UUID_INVALID (")
              for d in r.debug), "debug %r" % r.debug)
    r = E.same("vm-list", "name-label=web1", "--minimal")
    check(r.debug and all(d.endswith(" ms)") for d in r.debug),
          "debug %r" % r.debug)
    check(r.commands.index(("Debug", [r.debug[-1]]))
          < [n for n, _ in r.commands].index("Print"), "Debug after Print")
    code, out, err = E.xe("--debug", "vm-list", "name-label=web1",
                          "--minimal")
    check(code == 0 and out == r.out
          and "debug: VM records (some fields): ok (" in err, "xe --debug "
          "%r %r" % (out, err))
    code, out, err = E.xe("--debug-on-fail", "vm-list", "--minimal")
    check(code == 0 and "debug" not in err, "on-fail, no fail %r" % err)
    code, out, err = E.xe("--debug-on-fail", "vm-param-get", "uuid=nope",
                          "param-name=name-label")
    check(code == 1 and "\nDebug info:\n\ndebug: VM.get_by_uuid: "
          "UUID_INVALID (" in err, "on-fail %r" % err)


def t_dump_database():
    """pool-dump-database: the stock xe's HttpGet of /pool/xmldbdump, which
    xcpd serves with the code libxcp's xe writes the file with: XAPI's
    database XML, the same tables and rows either way."""
    import xml.etree.ElementTree as ET
    f = E.path("db.xml")
    r = thin_no_task("pool-dump-database", "file-name=" + f)
    gets = [a for n, a in r.commands if n == "HttpGet"]
    check(r.code == 0 and r.out == "" and r.err == "", "%r %r"
          % (r.out, r.err))
    check(len(gets) == 1 and gets[0][1].startswith(
        "/pool/xmldbdump?session_id=OpaqueRef:")
        and "&task_id=OpaqueRef:" in gets[0][1], "HttpGet %r" % gets)
    code, out, err = xe_no_task("pool-dump-database",
                                "file-name=" + E.path("db-xe.xml"))
    check(code == 0 and out == "" and err == "", err)

    def rows(path):
        db = ET.parse(path).getroot()
        check(db.tag == "database" and db.find("manifest") is not None,
              "not a database dump")
        return {t.get("name"): sorted(x.get("ref") for x in t)
                for t in db.findall("table")}
    # (tables a running VM's guest agent may change meanwhile left out)
    stable = ("pool", "host", "VM", "VDI", "SR", "PBD", "network")
    mine = {k: v for k, v in rows(f).items() if k in stable}
    theirs = {k: v for k, v in rows(E.path("db-xe.xml")).items()
              if k in stable}
    check(len(mine) == len(stable) and mine == theirs, "dumps differ: %r" % (
        [(k, mine.get(k), theirs.get(k)) for k in set(mine) | set(theirs)
         if mine.get(k) != theirs.get(k)],))
    vms = set(E.xe("vm-list", "name-label=web1", "--minimal")[1].strip()
              .split(","))
    db = ET.parse(f).getroot()
    names = set(x.get("name_label") for t in db.findall("table")
                if t.get("name") == "VM" for x in t if x.get("uuid") in vms)
    check(vms and names == {"web1"}, "VM rows %r" % names)
    # without a live session: 401, and no file for the thin client
    s = E.tcp()
    s.sendall(b"GET /pool/xmldbdump?session_id=OpaqueRef:bogus HTTP/1.0"
              b"\r\n\r\n")
    head = thin_cli.read_head(s)
    s.close()
    check(head.split(b"\r\n")[0].endswith(b"401 Unauthorized"),
          "bogus session: %r" % head)
    r = E.same("pool-dump-database")
    check(r.code == 1 and "file-name" in r.err, r.err)
    # XAPI's WLB handlers: the pool has no WLB server (the task's error)
    r = thin_no_task("pool-retrieve-wlb-report", "report=pool_health",
                     "filename=" + E.path("report"))
    check(r.code == 1 and r.err == "No WLB connection is configured.\n"
          and not os.path.exists(E.path("report")), "%r" % r.err)
    check(any(n == "HttpGet" and a[1].startswith("/wlb_report?session_id=")
              and a[1].endswith("&report=pool_health")
              for n, a in r.commands), "%r" % r.commands)
    check((r.code, r.out, r.err) == E.xe("pool-retrieve-wlb-report",
                                         "report=pool_health", "filename="
                                         + E.path("report")), "xe differs")


def t_blob():
    """blob-put then blob-get: the same bytes through the stock xe's
    HttpPut/HttpGet of /blob and through libxcp's xe -s (the remote
    driver's GET/PUT of the same handler), the same output; a public
    blob read without a session, a private one refused; bad input."""
    import urllib.request
    import urllib.error
    import xmlrpc.client
    x = xmlrpc.client.ServerProxy("http://127.0.0.1:%d/" % E.d.http)
    s = x.session.login_with_password("root", PASSWORD)["Value"]
    ref = x.blob.create(s, "text/plain", False)["Value"]
    uuid = x.blob.get_uuid(s, ref)["Value"]
    # never written: no bytes to read, XAPI's 404 (not an empty 200)
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/blob?session_id=%s&ref=%s"
                               % (E.d.http, s, ref), timeout=30)
        check(False, "a blob never written served")
    except urllib.error.HTTPError as e:
        check(e.code == 404, "blob never written: HTTP %d" % e.code)
    code, _, err = xe_no_task("blob-get", "uuid=" + uuid,
                              "filename=" + E.path("never.out"))
    check(code == 1 and "invalid object reference" in err
          and "class: blob" in err
          and not os.path.exists(E.path("never.out")),
          "xe blob-get of a blob never written: %r %r" % (code, err))
    data = bytes(range(256)) * 4000 + b"end"
    src = E.path("blob.in")
    with open(src, "wb") as f:
        f.write(data)
    r = thin_no_task("blob-put", "uuid=" + uuid, "filename=" + src)
    check((r.code, r.out, r.err) == (0, "Blob put succeeded\n", ""),
          "%r %r" % (r.out, r.err))
    puts = [a for n, a in r.commands if n == "HttpPut"]
    check(len(puts) == 1 and puts[0][1].startswith("/blob?session_id=")
          and puts[0][1].endswith("&ref=" + ref), "HttpPut %r" % puts)
    check(x.blob.get_size(s, ref)["Value"] == str(len(data)),
          "size %r" % x.blob.get_size(s, ref))
    out = E.path("blob.out")
    r = thin_no_task("blob-get", "uuid=" + uuid, "filename=" + out)
    check((r.code, r.out, r.err) == (0, "Blob get succeeded\n", ""),
          "%r %r" % (r.out, r.err))
    with open(out, "rb") as f:
        check(f.read() == data, "blob-get's bytes differ")
    # libxcp's xe -s: the same output, bytes the other way round
    data2 = b"second\n" * 1000
    with open(src, "wb") as f:
        f.write(data2)
    r2 = xe_no_task("blob-put", "uuid=" + uuid, "filename=" + src)
    check(r2 == (0, "Blob put succeeded\n", ""), "xe put %r" % (r2,))
    r2 = xe_no_task("blob-get", "uuid=" + uuid, "filename=" + out + "2")
    check(r2 == (0, "Blob get succeeded\n", ""), "xe get %r" % (r2,))
    with open(out + "2", "rb") as f:
        check(f.read() == data2, "xe blob-get's bytes differ")
    # a private blob needs a session; a public one does not (XAPI's)
    url = "http://127.0.0.1:%d/blob?ref=%s" % (E.d.http, ref)
    try:
        urllib.request.urlopen(url, timeout=30)
        check(False, "private blob read without a session")
    except urllib.error.HTTPError as e:
        check(e.code == 401, "private blob: HTTP %d" % e.code)
    x.blob.set_public(s, ref, True)
    with urllib.request.urlopen(url, timeout=30) as resp:
        check(resp.read() == data2, "public blob's bytes differ")
        # sent as its mime_type, as XAPI's handler does
        check(resp.headers.get("Content-Type") == "text/plain",
              "Content-Type %r" % resp.headers.get("Content-Type"))
    req = urllib.request.Request(url, data=b"x", method="PUT")
    try:
        urllib.request.urlopen(req, timeout=30)
        check(False, "anonymous PUT accepted")
    except urllib.error.HTTPError as e:
        check(e.code == 401, "anonymous PUT: HTTP %d" % e.code)
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/blob?session_id=%s&ref="
                               "OpaqueRef:nope" % (E.d.http, s), timeout=30)
        check(False, "unknown blob served")
    except urllib.error.HTTPError as e:
        check(e.code == 404 and e.read().startswith(b"HANDLE_INVALID"),
              "unknown blob: HTTP %d" % e.code)
    # a PUT of unknown length (HTTP/1.0, no Content-Length, not chunked)
    # is refused and its task fails, as XAPI's "Need content length";
    # the blob keeps its bytes
    task = x.task.create(s, "blob put", "")["Value"]
    k = socket.create_connection(("127.0.0.1", E.d.http), timeout=30)
    k.sendall(("PUT /blob?session_id=%s&ref=%s&task_id=%s HTTP/1.0\r\n\r\n"
               % (s, ref, task)).encode() + b"lost bytes")
    k.shutdown(socket.SHUT_WR)
    head = b""
    while True:
        b = k.recv(4096)
        if not b:
            break
        head += b
    k.close()
    check(head.startswith(b"HTTP/1.1 411") or head.startswith(b"HTTP/1.0 411"),
          "PUT without a length: %r" % head[:40])
    rec = x.task.get_record(s, task)["Value"]
    check(rec["status"] == "failure" and
          rec["error_info"] == ["INTERNAL_ERROR", "Need content length"],
          "its task: %r %r" % (rec["status"], rec["error_info"]))
    x.task.destroy(s, task)
    with urllib.request.urlopen(url, timeout=30) as resp:
        check(resp.read() == data2, "the blob kept its bytes")
    # bad input: the same errors either way
    r = E.same("blob-get", "uuid=nope", "filename=" + out)
    check(r.code == 1 and ("UUID_INVALID" in r.err or "uuid" in r.err),
          r.err)
    r = E.same("blob-put", "uuid=" + uuid)
    check(r.code == 1 and "filename" in r.err, r.err)
    code, _, err = xe_no_task("blob-put", "uuid=" + uuid,
                              "filename=" + E.path("missing"))
    check(code == 1, "missing file: %r" % err)
    # blob.destroy takes its bytes
    x.blob.destroy(s, ref)
    check(os.listdir(os.path.join(E.d.state, "blobs")) == [],
          "blob file left: %r" % os.listdir(os.path.join(E.d.state,
                                                         "blobs")))


def t_host_backup():
    """host-backup: the stock xe's HttpGet of /host_backup and libxcp's
    xe -s give a tar of the state directory's database (same members);
    host-restore: HttpPut of /host_restore stages it for the next start;
    a file that is not a backup fails the same way either way."""
    f = E.path("host.tar")
    r = thin_no_task("host-backup", "file-name=" + f)
    check((r.code, r.out, r.err) == (0, "", ""), "%r %r" % (r.out, r.err))
    gets = [a for n, a in r.commands if n == "HttpGet"]
    check(len(gets) == 1 and gets[0][1].startswith(
        "/host_backup?session_id=OpaqueRef:"), "HttpGet %r" % gets)
    with tarfile.open(f) as t:
        names = t.getnames()
    check(names[0] == "xcp-host-backup" and ("db.journal" in names
                                             or "db.snap" in names),
          "members %r" % names)
    code, out, err = xe_no_task("host-backup", "file-name=" + f + "2")
    check((code, out, err) == (0, "", ""), "xe %r" % err)
    with tarfile.open(f + "2") as t:
        check(t.getnames() == names, "xe's backup differs")
    r = thin_no_task("host-restore", "file-name=" + f)
    check((r.code, r.out, r.err) == (0, "", ""), "%r %r" % (r.out, r.err))
    check(any(n == "HttpPut" and a[1].startswith("/host_restore?session_id=")
              for n, a in r.commands), "HttpPut %r" % r.commands)
    stage = os.path.join(E.d.state, "host-restore")
    check(os.path.isdir(stage) and os.path.exists(
        os.path.join(stage, "xcp-host-backup")), "not staged")
    code, out, err = xe_no_task("host-restore", "file-name=" + f + "2")
    check((code, out, err) == (0, "", ""), "xe restore %r" % err)
    bad = E.path("bad.tar")
    with open(bad, "w") as b:
        b.write("not a backup\n")
    r = E.same("host-restore", "file-name=" + bad)
    check(r.code == 1 and "restore script failed" in r.err, r.err)
    # the staged restore is the good one still; drop it (later tests)
    check(os.path.isdir(stage), "a bad restore removed the staged one")
    import shutil
    shutil.rmtree(stage)


def t_tls():
    """/cli on the TLS listener (newcli through stunnel)."""
    def tls():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx.wrap_socket(socket.create_connection(
            ("127.0.0.1", E.d.https), timeout=60))
    r = E.thin("vm-list", "--minimal", connect=tls)
    check((r.code, r.out, r.err) == E.xe("vm-list", "--minimal"),
          "tls %r" % r.out)


def t_version_and_size():
    try:
        r = E.thin("vm-list", major=1)
        check(False, "a major-1 client got %r" % r.commands)
    except (EOFError, ConnectionResetError):
        pass
    s = E.tcp()
    body = b"vm-list\n" + b"x" * (400 * 1024)
    s.sendall(b"POST /cli HTTP/1.0\r\ncontent-length: %d\r\n\r\n"
              % len(body) + body)
    head = thin_cli.read_head(s)
    check(head.startswith(b"HTTP/1.1 413"), "oversized: %r" % head)
    s.close()
    # the daemon still answers
    check(E.thin("host-list", "--minimal").code == 0, "daemon gone")


def main():
    global E
    E = Env()
    try:
        for fn in (t_handshake, t_lists_same_as_xe, t_errors_same_as_xe,
                   t_logins, t_prompt, t_vm_export_import,
                   t_vdi_export_import, t_client_fails_transfer,
                   t_console, t_load, t_debug, t_dump_database, t_blob,
                   t_host_backup, t_tls,
                   t_version_and_size):
            run(fn.__name__[2:], fn)
    finally:
        rc = E.d.stop()
        if rc != 0:
            FAILED.append("clean stop (exit %d)" % rc)
        if os.environ.get("KEEPLOG"):
            print("kept", E.tmp)
        else:
            shutil.rmtree(E.tmp, ignore_errors=True)
    if FAILED:
        print("FAILED:", ", ".join(FAILED))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
