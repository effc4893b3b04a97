#!/usr/bin/python3
"""Interop: Xen Orchestra's npm client `xen-api` (pinned 4.7.6) against
xcpd, over JSON-RPC and XML-RPC, HTTP and HTTPS, and the 'auto' transport
(which must stay on /jsonrpc). The scenario itself is interop_xo.mjs, run
once per transport on its own pair of fresh VMs. Then XO's console proxy
(interop_xo_console.mjs, with npm's ws as xo-server uses it) opens an HVM
VM's RFB console through the console record's location.

The client is installed with npm into a cache outside the source tree
(${XDG_CACHE_HOME:-$HOME/.cache}/libxcp-interop, or $XCP_INTEROP_CACHE),
reused when present, under a lock so parallel runs do not install at once.
When node or npm is missing they are installed from Debian's packages
(as root, or through passwordless sudo); if that is impossible the test
is skipped (exit 77).
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, Daemon, HERE, PASSWORD, USER, install_signal_exit, log  # noqa: E402

XEN_API_VERSION = "4.7.6"
WS_VERSION = "8.18.0"  # xo-server's console proxy: ws ^8
RUNS = (("json-rpc", "http"), ("xml-rpc", "http"), ("json-rpc", "https"),
        ("xml-rpc", "https"), ("auto", "http"))
SKIP = 77
IDLE_S = 65  # > event.from's 60.1 s, < the client's 66 s call timeout + margin

C = Checks("interop_xo")
CHILDREN = []  # node clients, killed on the way out whatever happens


def cache_dir():
    if os.environ.get("XCP_INTEROP_CACHE"):
        return os.environ["XCP_INTEROP_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else None)
    if not base:
        base = "/tmp/libxcp-interop-cache-%d" % os.getuid()
    return os.path.join(base, "libxcp-interop")


def ensure_node():
    """Returns None when node and npm are usable, else a reason to skip."""
    if shutil.which("node") and shutil.which("npm"):
        return None
    sudo = []
    if os.getuid() != 0:
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
            sudo = ["sudo", "-n"]
        else:
            return "node/npm missing and not root (no passwordless sudo) to install them"
    if not shutil.which("apt-get"):
        return "node/npm missing and no apt-get"
    log("node/npm missing: installing nodejs npm with apt-get")
    lock = open(os.path.join("/tmp", "libxcp-interop-apt.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        if not (shutil.which("node") and shutil.which("npm")):
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(sudo + ["apt-get", "update", "-qq"], env=env, timeout=600)
            r = subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "nodejs", "npm"], env=env,
                               timeout=1200)
            if r.returncode != 0:
                raise RuntimeError("apt-get install nodejs npm failed (%d)" % r.returncode)
    finally:
        lock.close()
    if not (shutil.which("node") and shutil.which("npm")):
        raise RuntimeError("node/npm still missing after apt-get install")
    return None


def node_version():
    out = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    m = re.match(r"v(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0), out


def installed(cache):
    try:
        with open(os.path.join(cache, "node_modules", "xen-api", "package.json")) as f:
            ok = json.load(f).get("version") == XEN_API_VERSION
        with open(os.path.join(cache, "node_modules", "ws", "package.json")) as f:
            ok = ok and json.load(f).get("version") == WS_VERSION
        return ok and os.path.isdir(os.path.join(cache, "node_modules", "undici"))
    except (OSError, ValueError):
        return False


def ensure_xen_api():
    cache = cache_dir()
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed(cache):
            log("xen-api %s already in %s" % (XEN_API_VERSION, cache))
        else:
            log("installing xen-api@%s into %s" % (XEN_API_VERSION, cache))
            t0 = time.monotonic()
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--save-exact", "--prefix", cache,
                                "xen-api@" + XEN_API_VERSION, "ws@" + WS_VERSION],
                               capture_output=True, text=True, timeout=600, cwd=cache)
            log(r.stdout + r.stderr)
            if r.returncode != 0 or not installed(cache):
                raise RuntimeError("npm install xen-api@%s failed (%d)" % (XEN_API_VERSION, r.returncode))
            log("installed in %.1f s" % (time.monotonic() - t0))
    return os.path.join(cache, "node_modules", "xen-api", "index.mjs")


def start_client(d, module, transport, scheme, a, b, idle=0, script="interop_xo.mjs", what=None):
    addr = d.http if scheme == "http" else d.https
    url = "%s://%s:%d" % (scheme, addr[1], addr[2])
    env = dict(os.environ, XEN_API_MODULE=module, XAPI_URL=url, XO_TRANSPORT=transport,
               XO_USER=USER, XO_PASS=PASSWORD, VM_A=a, VM_B=b, XO_IDLE_S=str(idle), VM_HVM=a,
               WS_MODULE=os.path.join(os.path.dirname(os.path.dirname(module)), "ws", "wrapper.mjs"))
    env.pop("NODE_OPTIONS", None)
    what = what or "%s over %s%s" % (transport, scheme, ", idle %d s" % idle if idle else "")
    p = subprocess.Popen(["node", os.path.join(HERE, script)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    CHILDREN.append(p)
    return p, what, url, time.monotonic(), idle


def finish_client(client):
    p, what, url, t0, idle = client
    log("---- xen-api: %s (%s)" % (what, url))
    try:
        out, _ = p.communicate(timeout=idle + 120)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        rc = "timeout"
    n_pass = n_fail = 0
    for line in out.splitlines():
        if line.startswith("PASS: "):
            n_pass += 1
        elif line.startswith("FAIL: "):
            n_fail += 1
        if re.match(r"^\[.*\] \d+ passed, \d+ failed$", line):
            line = "  (client: %s)" % line
        log(line)
    C.passed += n_pass
    C.failed += n_fail
    if rc != 0 and n_fail == 0:
        C.ok(False, "[%s] node client exit status" % what, "exit %r" % rc)
    log("  (%s: %.1f s)" % (what, time.monotonic() - t0))


def main():
    install_signal_exit(C, 900)
    try:
        why = ensure_node()
    except Exception as e:  # noqa: BLE001
        C.ok(False, "node and npm available", str(e))
        return C.finish()
    if why:
        log("SKIP: " + why)
        return SKIP
    (major, minor), vtext = node_version()
    if (major, minor) < (18, 17):
        log("SKIP: node %s is older than xen-api's undici needs (>= 18.17)" % vtext)
        return SKIP
    log("node %s" % vtext)
    try:
        module = ensure_xen_api()
        C.ok(True, "xen-api@%s installed" % XEN_API_VERSION)
    except Exception as e:  # noqa: BLE001
        C.ok(False, "xen-api@%s installed" % XEN_API_VERSION, str(e))
        return C.finish()

    with Daemon("xo", auth_fail_delay_ms=200) as d, Daemon("xo-idle", auth_fail_delay_ms=200) as d2:
        try:
            d.make_vms(["xo%d-%s" % (i, n) for i in range(len(RUNS)) for n in "ab"])
            d.vms["xo-hvm"] = d.xe("vm-install", "template=Other install media", "new-name-label=xo-hvm")
            d.start()
        except Exception as e:  # noqa: BLE001
            C.ok(False, "daemon starts with test VMs", str(e))
            return C.finish()
        # one client stays connected and idle past event.from's 60 s
        # timeout, on a second daemon that nothing else touches; meanwhile
        # the others run one after the other
        idler = None
        try:
            d2.make_vms(["xo-idle-a", "xo-idle-b"])
            d2.start()
            idler = start_client(d2, module, "json-rpc", "http", "xo-idle-a", "xo-idle-b", idle=IDLE_S)
        except Exception as e:  # noqa: BLE001
            C.ok(False, "second daemon starts", str(e))
        for i, (transport, scheme) in enumerate(RUNS):
            C.section("%s over %s" % (transport, scheme),
                      lambda *a: finish_client(start_client(*a)), d, module, transport, scheme,
                      "xo%d-a" % i, "xo%d-b" % i)
        C.section("console proxy", lambda: finish_client(start_client(
            d, module, "json-rpc", "https", "xo-hvm", "", script="interop_xo_console.mjs",
            what="console proxy over https")))
        if idler:
            C.section("idle client", finish_client, idler)
            C.ok(d2.alive(), "second daemon still running", d2.log_tail())
            C.eq(d2.stop(), 0, "second daemon exits 0 on SIGTERM")
        C.ok(d.alive(), "daemon still running", d.log_tail())
        C.eq(d.stop(), 0, "daemon exits 0 on SIGTERM")
        if C.failed:
            log("---- daemon log (tail)\n" + d.log_tail(60))
    return C.finish()


def kill_children():
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            p.wait()


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        kill_children()
    sys.exit(rc)
