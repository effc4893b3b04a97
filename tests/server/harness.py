"""Shared pieces of the server tests (tests/server): a check counter, the
xcpd daemon on a fresh state directory, and small XenAPI clients (XML-RPC
over HTTP, HTTPS and the unix socket; raw JSON-RPC; raw HTTP).

Standard library only: the tests run with /usr/bin/python3 on a bare
Debian 12.

Environment (set by make check's AM_TESTS_ENVIRONMENT; defaults below
let the tests run by hand from the build directory): abs_top_builddir,
abs_top_srcdir, XCP_HV=sim, XCP_TEMPLATES, XCP_SIM_HOST_MEMORY,
XCP_SIM_HOST_CPUS, XCP_DB_FSYNC. XCPD_TEST_VERBOSE=1 echoes the daemon's
log at the end.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("abs_top_srcdir") or os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.environ.get("abs_top_builddir") or os.getcwd()

os.environ.setdefault("XCP_HV", "sim")
os.environ.setdefault("XCP_TEMPLATES", os.path.join(SRCDIR, "data", "templates.yaml"))
os.environ.setdefault("XCP_SIM_HOST_MEMORY", "64GiB")
os.environ.setdefault("XCP_SIM_HOST_CPUS", "8")
os.environ.setdefault("XCP_DB_FSYNC", "never")
# The sim's modelled guest agent reports (a VM_guest_metrics record, a VM
# mod event) a moment after each start; these tests count events and want
# a quiet pool, so the agent waits for more guest time than a test lasts.
os.environ.setdefault("XCP_SIM_AGENT_DELAY_MS", "1000000000")

XE = os.path.join(BUILDDIR, "cmd", "xe", "xe")
XCPD = os.path.join(BUILDDIR, "cmd", "xcpd", "xcpd")
TEMPLATE = "Debian Bookworm 12"
USER = "root"
PASSWORD = "interop-secret"

# Unbuffered-ish output: make check captures stdout into the .log file and
# a hung test must still show how far it got.
sys.stdout.reconfigure(line_buffering=True)


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# Checks


class Checks:
    """Counts checks; every check prints one PASS/FAIL line."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.t0 = time.monotonic()

    def ok(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            log("PASS: %s" % what)
        else:
            self.failed += 1
            log("FAIL: %s%s" % (what, (" -- " + detail) if detail else ""))
        return bool(cond)

    def eq(self, got, want, what):
        return self.ok(got == want, what, "expected %r, got %r" % (want, got))

    def section(self, what, fn, *args):
        """Run fn(*args); an exception counts as one failed check."""
        log("---- %s" % what)
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - a test must report, not die
            self.failed += 1
            log("FAIL: %s: unexpected exception %s: %s" % (what, type(e).__name__, e))
            for line in traceback.format_exc().rstrip().splitlines():
                log("    " + line)
            return None

    def finish(self):
        log("%s: %.1f s" % (self.name, time.monotonic() - self.t0))
        log("%d passed, %d failed" % (self.passed, self.failed))
        return 0 if self.failed == 0 and self.passed > 0 else 1


# ---------------------------------------------------------------------------
# XenAPI errors and clients


class Failure(Exception):
    """A XenAPI failure envelope: .code and .params (strings)."""

    def __init__(self, desc):
        desc = list(desc) if desc else ["(empty ErrorDescription)"]
        self.desc = desc
        self.code = desc[0]
        self.params = desc[1:]
        super().__init__(repr(desc))


def unwrap(resp):
    """XML-RPC result struct → Value, or raise Failure."""
    if not isinstance(resp, dict) or "Status" not in resp:
        raise AssertionError("not a XenAPI result struct: %r" % (resp,))
    if resp["Status"] == "Success":
        if "Value" not in resp:
            raise AssertionError("Success without Value: %r" % (resp,))
        return resp["Value"]
    if resp["Status"] == "Failure":
        raise Failure(resp.get("ErrorDescription"))
    raise AssertionError("bad Status %r" % (resp["Status"],))


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over an AF_UNIX stream socket (as XenAPI.py's xapi_local())."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path, timeout=60):
        super().__init__()
        self.unix_path = path
        self.timeout = timeout

    def make_connection(self, host):
        if self._connection and self._connection[0] == host:
            return self._connection[1]
        self._connection = host, UnixHTTPConnection(self.unix_path, self.timeout)
        return self._connection[1]


class TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        c = super().make_connection(host)
        c.timeout = self.timeout
        return c


class TimeoutSafeTransport(xmlrpc.client.SafeTransport):
    def __init__(self, timeout, context):
        super().__init__(context=context)
        self.timeout = timeout

    def make_connection(self, host):
        c = super().make_connection(host)
        c.timeout = self.timeout
        return c


def insecure_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class XenAPI:
    """Minimal XML-RPC XenAPI client on xmlrpc.client, in the manner of
    XenAPI.py: x.call("VM.get_all", s) -> Value, raises Failure."""

    def __init__(self, where, timeout=60):
        # where: ("http", host, port) | ("https", host, port) | ("unix", path)
        self.where = where
        kind = where[0]
        if kind == "http":
            self.proxy = xmlrpc.client.ServerProxy(
                "http://%s:%d" % where[1:], transport=TimeoutTransport(timeout),
                allow_none=True)
        elif kind == "https":
            self.proxy = xmlrpc.client.ServerProxy(
                "https://%s:%d" % where[1:],
                transport=TimeoutSafeTransport(timeout, insecure_context()),
                allow_none=True)
        elif kind == "unix":
            self.proxy = xmlrpc.client.ServerProxy(
                "http://_var_lib_xcp_xapi/", transport=UnixTransport(where[1], timeout),
                allow_none=True)
        else:
            raise ValueError(kind)

    def raw(self, method, *args):
        return getattr(self.proxy, method)(*args)

    def call(self, method, *args):
        return unwrap(self.raw(method, *args))

    def login(self, user=USER, password=PASSWORD, *extra):
        return self.call("session.login_with_password", user, password, *extra)

    def close(self):
        try:
            self.proxy("close")()
        except Exception:  # noqa: BLE001
            pass


def expect_failure(fn, *args):
    """Run fn(*args); return the Failure it raised, or None (with the
    successful result wrapped in a Failure-shaped object for messages)."""
    try:
        r = fn(*args)
    except Failure as f:
        return f
    return _NoFailure(r)


class _NoFailure:
    code = None
    params = None

    def __init__(self, result):
        self.result = result
        self.desc = ["(no failure; result %.200r)" % (result,)]

    def __repr__(self):
        return self.desc[0]


def failure_is(f, code, params=None):
    if f.code != code:
        return False
    return params is None or f.params == list(params)


def describe(f):
    return repr(f.desc) if hasattr(f, "desc") else repr(f)


# ---------------------------------------------------------------------------
# Raw HTTP


class HTTPResult:
    def __init__(self, status, headers, body, closed=False, error=None):
        self.status = status          # int, or None when no response
        self.headers = headers        # dict, lower-case names
        self.body = body              # bytes
        self.closed = closed          # peer closed / reset without a status
        self.error = error

    def __repr__(self):
        if self.status is None:
            return "<no response: %s>" % (self.error,)
        return "<HTTP %s %s %r>" % (self.status, self.headers.get("content-type"),
                                    self.body[:300])

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def http_post(addr, path, body, content_type="text/xml", timeout=30,
              headers=None):
    """POST body (bytes) with http.client; addr = ("http"|"https", host,
    port) or ("unix", path)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if addr[0] == "http":
        c = http.client.HTTPConnection(addr[1], addr[2], timeout=timeout)
    elif addr[0] == "https":
        c = http.client.HTTPSConnection(addr[1], addr[2], timeout=timeout,
                                        context=insecure_context())
    else:
        c = UnixHTTPConnection(addr[1], timeout=timeout)
    h = {"Content-Type": content_type}
    if headers:
        h.update(headers)
    try:
        c.request("POST", path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return HTTPResult(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        return HTTPResult(None, {}, b"", closed=True, error="%s: %s" % (type(e).__name__, e))
    finally:
        c.close()


def raw_exchange(host, port, data, timeout=30, chunk=65536, tls=False):
    """Send bytes on a fresh TCP (or TLS) connection (tolerating the peer
    closing early, as a server does when it refuses a body), then read
    until the response is complete or the connection closes. Returns
    HTTPResult."""
    s = socket.create_connection((host, port), timeout=timeout)
    if tls:
        s = insecure_context().wrap_socket(s)
    err = None
    try:
        try:
            for i in range(0, len(data), chunk):
                s.sendall(data[i:i + chunk])
        except OSError as e:  # EPIPE/ECONNRESET: the server stopped reading
            err = "send: %s" % e
        buf = b""
        try:
            while True:
                part = s.recv(65536)
                if not part:
                    break
                buf += part
                res = parse_response(buf)
                if res is not None:
                    return res
        except OSError as e:
            err = (err + "; " if err else "") + "recv: %s" % e
        res = parse_response(buf, eof=True)
        if res is not None:
            return res
        return HTTPResult(None, {}, buf, closed=True, error=err or "closed without a response")
    finally:
        s.close()


def parse_response(buf, eof=False):
    """A complete HTTP response in buf (Content-Length or close-delimited),
    or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", head[0])
    if not m:
        return HTTPResult(None, {}, buf, closed=True, error="bad status line %r" % head[0])
    headers = {}
    for line in head[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = buf[end + 4:]
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(body) >= n:
            return HTTPResult(int(m.group(1)), headers, body[:n])
        return None
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, p = b"", 0
        while True:
            e = body.find(b"\r\n", p)
            if e < 0:
                return None
            size = int(body[p:e].split(b";")[0], 16)
            if size == 0:
                return HTTPResult(int(m.group(1)), headers, out)
            if len(body) < e + 2 + size + 2:
                return None
            out += body[e + 2:e + 2 + size]
            p = e + 2 + size + 2
    if eof:
        return HTTPResult(int(m.group(1)), headers, body)
    return None


def xml_call(method, *params):
    """A methodCall body, as xmlrpc.client writes it."""
    return xmlrpc.client.dumps(tuple(params), method, allow_none=True).encode("utf-8")


def xml_result(res):
    """Decode an XML-RPC response body → Value or raise Failure."""
    (v,), _ = xmlrpc.client.loads(res.body.decode("utf-8"))
    return unwrap(v)


def json_body(method, params, id=1, version="2.0"):
    d = {"id": id, "method": method, "params": params}
    if version:
        d["jsonrpc"] = version
    return json.dumps(d).encode("utf-8")


def json_result(res):
    """Decode a JSON-RPC 1.0/2.0 response → value or raise Failure."""
    d = res.json()
    if d.get("jsonrpc") == "2.0":
        if "error" in d:
            e = d["error"]
            if isinstance(e, dict):
                raise Failure([e.get("message")] + list(e.get("data") or []))
            raise Failure(e)
        return d["result"]
    if d.get("error") is not None:
        raise Failure(d["error"])
    return d["result"]


# ---------------------------------------------------------------------------
# The daemon


class Daemon:
    """xcpd on a fresh state directory, with test VMs made beforehand by
    the embedded xe. Use as a context manager; cleanup kills the daemon
    (if still running) and removes the directory."""

    def __init__(self, name, auth_fail_delay_ms=200, extra_args=()):
        self.tmp = tempfile.mkdtemp(prefix="xcpd-%s-" % name)
        self.state = os.path.join(self.tmp, "state")
        os.mkdir(self.state)
        self.sock_path = os.path.join(self.tmp, "xapi.sock")
        self.auth_file = os.path.join(self.tmp, "auth")
        self.log_path = os.path.join(self.tmp, "xcpd.log")
        self.auth_fail_delay_ms = auth_fail_delay_ms
        self.extra_args = list(extra_args)
        self.proc = None
        self.http = self.https = None
        self.unix = None
        self.vms = {}  # name -> uuid
        self.exit_code = None

    # -- setup
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def xe(self, *args):
        env = dict(os.environ, XCP_STATE_DIR=self.state)
        r = subprocess.run([XE] + list(args), env=env, capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("xe %s failed (%d): %s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout.strip()

    def make_vms(self, names):
        if not os.access(XE, os.X_OK):
            raise RuntimeError("%s not built" % XE)
        for n in names:
            self.vms[n] = self.xe("vm-install", "template=" + TEMPLATE,
                                  "new-name-label=" + n)
        return self.vms

    def write_auth(self):
        r = subprocess.run(["openssl", "passwd", "-6", PASSWORD],
                           capture_output=True, text=True, check=True)
        with open(self.auth_file, "w") as f:
            f.write("# test users\n%s:%s\n" % (USER, r.stdout.strip()))

    def start(self, timeout=30):
        if not os.access(XCPD, os.X_OK):
            raise RuntimeError("%s not built (the daemon is missing)" % XCPD)
        self.write_auth()
        argv = [XCPD, "--state-dir", self.state,
                "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0",
                "--auth-file", self.auth_file,
                "--auth-fail-delay", str(self.auth_fail_delay_ms),
                "--socket", self.sock_path] + self.extra_args
        log("starting: %s" % " ".join(argv))
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if re.search(r"^xcpd: ready\s*$", text, re.M):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("xcpd exited with %d before 'ready':\n%s"
                                   % (self.proc.returncode, text))
            if time.monotonic() > deadline:
                raise RuntimeError("xcpd not ready after %d s:\n%s" % (timeout, text))
            time.sleep(0.05)
        for m in re.finditer(r"^xcpd: listening on (https?)://([0-9.]+):(\d+)\s*$", text, re.M):
            if m.group(1) == "http":
                self.http = ("http", m.group(2), int(m.group(3)))
            else:
                self.https = ("https", m.group(2), int(m.group(3)))
        m = re.search(r"^xcpd: listening on unix:(\S+)\s*$", text, re.M)
        if m:
            self.unix = ("unix", m.group(1))
        if not self.http or not self.https:
            raise RuntimeError("no http/https listener lines in:\n%s" % text)
        if self.http[2] == 0 or self.https[2] == 0:
            raise RuntimeError("listener reported port 0:\n%s" % text)
        log("xcpd pid %d: %s, %s, %s" % (self.proc.pid, self.http, self.https, self.unix))
        return self

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM; returns the exit status (negative: killed by a
        signal; None: had to be killed after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_code = None
                log("---- xcpd did not stop within %d s; its log (tail):\n%s"
                    % (timeout, self.log_tail(60)))
                return None
        self.exit_code = self.proc.returncode
        if self.exit_code != 0:
            # A daemon that did not stop cleanly says why in its log
            # (a panic, a backtrace): show it where the failure is read.
            log("---- xcpd exited with %r; its log (tail):\n%s"
                % (self.exit_code, self.log_tail(60)))
        return self.exit_code

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()
        if os.environ.get("XCPD_TEST_VERBOSE"):
            log("---- xcpd log\n" + self.log_text())
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])


def install_signal_exit(checks=None, watchdog_s=None):
    """SIGTERM/SIGINT/SIGHUP (make interrupted) → SystemExit, so finally
    blocks kill the daemon and remove the state directory. With
    watchdog_s, a test still running after that long fails (SIGALRM)."""
    def h(sig, frame):
        raise SystemExit(128 + sig)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, h)
    if watchdog_s:
        def alarm(sig, frame):
            if checks is not None:
                checks.ok(False, "watchdog: test still running after %d s" % watchdog_s)
                checks.finish()
            raise SystemExit(1)
        signal.signal(signal.SIGALRM, alarm)
        signal.alarm(watchdog_s)


def wait_for(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


class LatencyProbe(threading.Thread):
    """A well-behaved client: logs in and loops VM.get_all_records over one
    keep-alive XML-RPC connection, recording each call's latency. A call
    that fails or takes more than its timeout is recorded as an error."""

    def __init__(self, addr, interval=0.02, timeout=10):
        super().__init__(daemon=True)
        self.addr = addr
        self.interval = interval
        self.timeout = timeout
        self.lock = threading.Lock()
        self.samples = []  # (t_start, latency, error or None)
        self.stop_ev = threading.Event()
        self.calls = 0

    def run(self):
        x = None
        while not self.stop_ev.is_set():
            t = time.monotonic()
            err = None
            try:
                if x is None:
                    x = XenAPI(self.addr, timeout=self.timeout)
                    self.session = x.login()
                recs = x.call("VM.get_all_records", self.session)
                if not isinstance(recs, dict) or not recs:
                    err = "VM.get_all_records: %r" % (type(recs),)
            except Exception as e:  # noqa: BLE001
                err = "%s: %s" % (type(e).__name__, e)
                x = None
            lat = time.monotonic() - t
            with self.lock:
                self.samples.append((t, lat, err))
                self.calls += 1
            self.stop_ev.wait(self.interval)

    def mark(self):
        return time.monotonic()

    def report_since(self, t0, t1=None):
        """(worst latency, number of calls, errors) for calls that started
        at or after t0 (and before t1), plus one still in flight."""
        now = time.monotonic()
        with self.lock:
            s = [x for x in self.samples if x[0] >= t0 and (t1 is None or x[0] < t1)]
            last_end = max((x[0] + x[1] for x in self.samples), default=t0)
        worst = max((x[1] for x in s), default=0.0)
        # a call still running now counts with its age so far
        inflight = now - max(last_end, t0)
        worst = max(worst, inflight - self.interval) if inflight > 1.0 else worst
        errors = [x[2] for x in s if x[2]]
        return worst, len(s), errors

    def stop(self):
        self.stop_ev.set()
        self.join(self.timeout + 5)


# ---- HTTP transfer helpers (transfer_python, xva_python) ----------------

def connect(where, timeout=60):
    """An http.client connection to where = (kind, host, port)."""
    kind, host, port = where
    if kind == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=insecure_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)


def raw_socket(where, timeout=60):
    """A plain (or TLS-wrapped) socket to where = (kind, host, port)."""
    kind, host, port = where
    s = socket.create_connection((host, port), timeout=timeout)
    if kind == "https":
        s = insecure_context().wrap_socket(s, server_hostname=host)
    return s


def read_head(s):
    """Read a response head from socket s: (status, {header: value})."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = s.recv(4096)
        if not got:
            break
        buf += got
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1]) if head and head[0] else 0
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs


def wait_task(x, s, task, timeout=60):
    """task's record once it is no longer pending (or after timeout s)."""
    deadline = time.monotonic() + timeout
    while True:
        rec = x.call("task.get_record", s, task)
        if rec["status"] != "pending" or time.monotonic() > deadline:
            return rec
        time.sleep(0.1)


def export(where, vdi, s, fmt=None, base=None, task=None):
    """GET /export_raw_vdi of vdi (format, base= delta, task_id when
    given): (response, its body read whole)."""
    c = connect(where)
    q = "/export_raw_vdi?vdi=%s&session_id=%s" % (vdi, s)
    if fmt:
        q += "&format=" + fmt
    if base:
        q += "&base=" + base
    if task:
        q += "&task_id=" + task
    c.request("GET", q)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def put(where, path, body, headers=None):
    """PUT body at path: (response, its body read whole)."""
    c = connect(where)
    c.request("PUT", path, body, headers or {})
    r = c.getresponse()
    text = r.read()
    c.close()
    return r, text


def run_node(checks, script, env, what, timeout=600):
    """Run a Node client script (its PASS:/FAIL: lines logged and counted
    into checks) and check that it exited 0; returns the finished run."""
    env = dict(env)
    env.pop("NODE_OPTIONS", None)
    p = subprocess.run(["node", script], env=env, capture_output=True,
                       text=True, timeout=timeout)
    for line in (p.stdout + p.stderr).splitlines():
        log(line)
        if line.startswith("PASS: "):
            checks.passed += 1
        elif line.startswith("FAIL: "):
            checks.failed += 1
    checks.eq(p.returncode, 0, "%s node client exit status" % what)
    return p
