#!/usr/bin/python3
"""Interop: the Python XenAPI module (XenAPI.py) against xcpd, unchanged.

The module is taken from Debian's python3-os-xenapi package, which ships
a copy of XAPI's XenAPI.py (standard library only): the package is
downloaded and unpacked into a cache with `apt-get download` + `dpkg -x`,
so none of its OpenStack dependencies are installed.

Over HTTP, HTTPS (a transport without certificate verification, as
scripts talking to self-signed hosts use) and the unix socket (an AF_UNIX
transport: this copy's own UDSTransport no longer works with Python 3.7+): login_with_password (which also
reads the API version through pool.get_master and host.get_API_version_*),
VM.get_all_records, VM.start, Async.VM.start followed through the task,
XenAPI.Failure for a wrong power state, the module's automatic re-login
when the session was ended server-side, and logout.
"""

import glob
import importlib.util
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Daemon, UnixTransport,  # noqa: E402
                     XenAPI as Raw, install_signal_exit, log, PASSWORD,
                     USER)

C = Checks("interop_xenapi")


def fetch_module():
    """Path of XenAPI.py from python3-os-xenapi, cached; None if it
    cannot be had (no Debian mirror)."""
    cache = os.environ.get("XCP_INTEROP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "libxcp-interop")
    dest = os.path.join(cache, "os-xenapi", "XenAPI.py")
    if os.path.exists(dest):
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    work = tempfile.mkdtemp(prefix="os-xenapi-")
    try:
        r = subprocess.run(["apt-get", "download", "python3-os-xenapi"],
                           cwd=work, capture_output=True, text=True)
        debs = glob.glob(os.path.join(work, "*.deb"))
        if r.returncode != 0 or not debs:
            log("apt-get download failed: %s" % (r.stderr or r.stdout))
            return None
        subprocess.run(["dpkg", "-x", debs[0], os.path.join(work, "x")],
                       check=True)
        found = glob.glob(os.path.join(
            work, "x", "usr", "lib", "python3*", "dist-packages",
            "os_xenapi", "client", "XenAPI.py"))
        if not found:
            log("XenAPI.py not in %s" % debs[0])
            return None
        tmp = dest + ".tmp"
        shutil.copyfile(found[0], tmp)
        os.rename(tmp, dest)
        return dest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load(path):
    spec = importlib.util.spec_from_file_location("XenAPI", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class InsecureTransport(xmlrpc.client.SafeTransport):
    def __init__(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__(context=ctx)


def wait_task(x, task, timeout=30):
    deadline = time.monotonic() + timeout
    while x.xenapi.task.get_status(task) == "pending":
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return x.xenapi.task.get_record(task)


def scenario(XenAPI, d, kind, sockpath):
    if kind == "http":
        x = XenAPI.Session("http://127.0.0.1:%d/" % d.http[2])
    elif kind == "https":
        x = XenAPI.Session("https://127.0.0.1:%d/" % d.https[2],
                           transport=InsecureTransport())
    else:
        # The UDSTransport of this copy of XenAPI.py predates Python 3.7's
        # Transport.send_request signature, so the socket is reached as
        # XAPI's current XenAPI.py does it: an AF_UNIX HTTP transport.
        x = XenAPI.Session("http://localhost/",
                           transport=UnixTransport(sockpath))

    def end_session(ref):
        raw = Raw(d.http)
        s = raw.login()
        raw.call("session.logout", ref)
        raw.call("session.logout", s)
    run_scenario(C, XenAPI, x, kind, end_session)


def run_scenario(C, XenAPI, x, kind, end_session):
    """The scenario on a session x of a XenAPI module (XenAPI.py, or the
    Python binding's xcp.XenAPI, embedded, in tests/python): the VMs
    <kind>-a and <kind>-b exist, halted; end_session(ref) ends a session
    behind the client's back."""
    t = "[%s] " % kind
    x.xenapi.login_with_password(USER, PASSWORD, "1.0", "interop-xenapi")
    C.ok(str(x._session).startswith("OpaqueRef:"), t + "login_with_password",
         repr(x._session))
    C.ok(x.API_version.count(".") == 1 and all(
        p.isdigit() for p in x.API_version.split(".")),
        t + "API version read through pool.get_master/host.get_API_version_*",
        repr(x.API_version))
    recs = x.xenapi.VM.get_all_records()
    names = {r["name_label"]: ref for ref, r in recs.items()}
    a, b = "%s-a" % kind, "%s-b" % kind
    C.ok(a in names and b in names, t + "VM.get_all_records lists the VMs",
         repr(sorted(names)))
    if a not in names or b not in names:
        return
    x.xenapi.VM.start(names[a], False, False)
    C.eq(x.xenapi.VM.get_power_state(names[a]), "Running",
         t + "VM.start: power_state")
    try:
        x.xenapi.VM.start(names[a], False, False)
        C.ok(False, t + "starting a running VM raises XenAPI.Failure")
    except XenAPI.Failure as f:
        C.eq(f.details[:1], ["VM_BAD_POWER_STATE"],
             t + "starting a running VM raises XenAPI.Failure")
    task = x.xenapi.Async.VM.start(names[b], False, False)
    C.ok(str(task).startswith("OpaqueRef:"), t + "Async.VM.start gives a task",
         repr(task))
    rec = wait_task(x, task)
    C.eq((rec["status"], rec["progress"]), ("success", 1.0),
         t + "the task succeeds")
    C.eq(x.xenapi.VM.get_power_state(names[b]), "Running",
         t + "Async.VM.start: power_state")
    x.xenapi.task.destroy(task)
    # The session ends on the server: the module logs in again by itself.
    old = x._session
    end_session(old)
    n = len(x.xenapi.VM.get_all())
    C.ok(n >= 2 and x._session != old,
         t + "after SESSION_INVALID the module re-logs in and retries",
         repr((n, old, x._session)))
    x.xenapi.session.logout()
    C.ok(x._session is None, t + "logout")


def main():
    install_signal_exit(C, watchdog_s=300)
    path = fetch_module()
    if path is None:
        print("SKIP: cannot get XenAPI.py (python3-os-xenapi) from Debian")
        return 77
    XenAPI = load(path)
    with Daemon("xenapi") as d:
        d.make_vms(["%s-%s" % (k, v) for k in ("http", "https", "unix")
                    for v in "ab"])
        d.start()
        for kind in ("http", "https", "unix"):
            C.section(kind, scenario, XenAPI, d, kind, d.unix[1])
        C.eq(d.stop(), 0, "xcpd exits 0 on SIGTERM")
    return C.finish()


if __name__ == "__main__":
    sys.exit(main())
