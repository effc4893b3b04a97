#!/usr/bin/python3
"""Bad input against xcpd: malformed, truncated, oversized and deeply
nested bodies, wrong types and arities, unknown methods, invalid UTF-8,
bad sessions, slow and idle clients, clients vanishing during long polls.

Each case checks the exact HTTP status or XenAPI error code the wire spec
(xenapi-wire.md) gives, then that a well-behaved client running meanwhile
(a thread looping VM.get_all_records) was never kept waiting more than
MAX_LATENCY seconds, and that the daemon is still alive. Also checks the
response envelopes (content types, JSON-RPC 1.0/2.0, compact XML, <i4>
ref counts). At the end the daemon must exit 0 on SIGTERM, promptly, with
a long poll pending.
"""

import json
import os
import re
import socket
import sys
import time
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Daemon, Failure, LatencyProbe, XenAPI,  # noqa: E402
                     failure_is, http_post, insecure_context,
                     install_signal_exit, json_body, json_result, log,
                     parse_response, raw_exchange, xml_call, xml_result, PASSWORD, USER)

MAX_LATENCY = 2.0
LIMIT = 300 * 1024

C = Checks("bad_input")
S = {}  # session, refs


# ---------------------------------------------------------------------------
# request builders


def xml_req(method, *vals):
    """methodCall with raw <value> fragments (str or bytes)."""
    parts = [b'<?xml version="1.0"?><methodCall><methodName>', method.encode(),
             b"</methodName><params>"]
    for v in vals:
        parts += [b"<param>", v if isinstance(v, bytes) else v.encode(), b"</param>"]
    parts.append(b"</params></methodCall>")
    return b"".join(parts)


def xs(s):
    return "<value>%s</value>" % escape(s)


def xb(b):
    return "<value><boolean>%d</boolean></value>" % (1 if b else 0)


def http_req(method, path, body=b"", headers=(), version="1.1"):
    h = ["%s %s HTTP/%s" % (method, path, version), "Host: 127.0.0.1"]
    h += ["%s: %s" % kv for kv in headers]
    if method in ("POST", "PUT"):
        h.append("Content-Length: %d" % len(body))
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


class Ctx:
    def __init__(self, d, probe):
        self.d = d
        self.probe = probe

    def post(self, path, body, ctype="text/xml", timeout=30):
        return http_post(self.d.http, path, body, ctype, timeout=timeout)

    def xml(self, body, path="/"):
        return self.post(path, body)

    def js(self, body):
        return self.post("/jsonrpc", body, "application/json")


def status_is(res, want, what):
    return C.ok(res.status == want, what, "expected HTTP %s, got %r" % (want, res))


def xml_failure(res, code, params, what):
    if res.status != 200:
        return C.ok(False, what, "expected HTTP 200 + %s, got %r" % (code, res))
    try:
        v = xml_result(res)
        return C.ok(False, what, "expected %s, got success %.200r" % (code, v))
    except Failure as f:
        return C.ok(failure_is(f, code, params), what,
                    "expected %r, got %r" % ([code] + (list(params) if params else ["..."]), f.desc))


def xml_success(res, what, check=None):
    if res.status != 200:
        return C.ok(False, what, "got %r" % res)
    try:
        v = xml_result(res)
    except Failure as f:
        return C.ok(False, what, "failure %r" % f.desc)
    return C.ok(check is None or check(v), what, "value %.200r" % (v,))


def json_failure(res, code, params, what):
    if res.status != 200:
        return C.ok(False, what, "expected HTTP 200 + %s, got %r" % (code, res))
    try:
        v = json_result(res)
        return C.ok(False, what, "expected %s, got success %.200r" % (code, v))
    except Failure as f:
        return C.ok(failure_is(f, code, params), what,
                    "expected %r, got %r" % ([code] + (list(params) if params else ["..."]), f.desc))


def refused(res):
    """413, or the connection closed/reset without a response."""
    return res.status == 413 or (res.status is None and res.closed)


# ---------------------------------------------------------------------------
# cases


def case(ctx, name, fn):
    t0 = ctx.probe.mark()
    C.section(name, fn, ctx)
    t1 = time.monotonic()
    # let the probe make a couple of calls after the case
    base = ctx.probe.calls
    deadline = time.monotonic() + 3
    while ctx.probe.calls < base + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    worst, n, errors = ctx.probe.report_since(t0)
    C.ok(n >= 2 and worst <= MAX_LATENCY and not errors,
         "[%s] concurrent client served throughout (worst %.3f s over %d calls, case took %.1f s)"
         % (name, worst, n, t1 - t0), "errors: %r" % errors[:3])
    C.ok(ctx.d.alive(), "[%s] daemon alive" % name, ctx.d.log_tail())


def c_envelopes(ctx):
    s = S["s"]
    r = ctx.xml(xml_call("VM.get_all_records", s))
    C.eq(r.status, 200, "XML-RPC success: HTTP 200")
    C.eq(r.headers.get("content-type"), "text/xml", "XML-RPC content-type exactly text/xml")
    C.eq(r.headers.get("access-control-allow-origin"), "*", "XML-RPC reply has Access-Control-Allow-Origin: *")
    body = r.body.decode("utf-8", "replace")
    C.ok(not re.search(r">\s+<", body), "XML-RPC reply is compact (no whitespace between tags)",
         repr(re.search(r".{0,40}>\s+<.{0,40}", body).group(0)) if re.search(r">\s+<", body) else "")
    C.ok("<fault>" not in body and "<name>Status</name><value>Success</value>" in body,
         "XML-RPC reply is a Status/Value struct, no <fault>", body[:200])
    C.ok("<string>" not in body and "<int>" not in body and "<i8>" not in body,
         "XML-RPC strings and ints untyped (no <string>/<int>/<i8>)", body[:200])
    for path in ("/RPC2", "/xmlrpc", "/json", "/some/other/path"):
        r = ctx.xml(xml_call("VM.get_all", s), path)
        xml_success(r, "POST %s is XML-RPC" % path, lambda v: isinstance(v, list))

    # event.from: valid_ref_counts as <i4>
    r = ctx.xml(xml_req("event.from", xs(s), "<value><array><data>%s</data></array></value>" % xs("vm"),
                        xs(""), "<value><double>0.1</double></value>"))
    body = r.body.decode("utf-8", "replace")
    m = re.search(r"<name>valid_ref_counts</name><value><struct>(.*?)</struct>", body)
    C.ok(m and re.search(r"<member><name>vm</name><value><i4>\d+</i4></value></member>", m.group(1))
         and not re.search(r"<value>\d+</value>", m.group(1)),
         "event.from valid_ref_counts written as <value><i4>N</i4></value>", body[:300])

    # system.listMethods bare over XML-RPC
    r = ctx.xml(xml_req("system.listMethods"))
    body = r.body.decode("utf-8", "replace")
    C.ok(r.status == 200 and body.find("<name>Status</name>") < 0 and "<array>" in body,
         "system.listMethods over XML-RPC: bare array", body[:200])

    # JSON-RPC 2.0
    r = ctx.js(json_body("VM.get_all_records", [s], id=7))
    C.eq(r.headers.get("content-type"), "application/json", "JSON-RPC content-type exactly application/json")
    d = r.json()
    C.ok(d.get("jsonrpc") == "2.0" and "error" not in d and d.get("id") == 7 and isinstance(d.get("result"), dict),
         "JSON-RPC 2.0 success: jsonrpc 2.0, result, no error key, id 7 echoed", repr(d)[:200])
    recs = d.get("result") or {}
    vm = recs.get(S["a"], {})
    C.ok(isinstance(vm.get("memory_static_max"), int) and not isinstance(vm.get("memory_static_max"), bool),
         "JSON-RPC ints are JSON numbers", repr(vm.get("memory_static_max")))
    C.ok(vm.get("is_a_template") is False, "JSON-RPC bools are JSON booleans", repr(vm.get("is_a_template")))
    r = ctx.js(json_body("VM.get_all", [s], id="abc"))
    d = r.json()
    C.ok(d.get("id") == "abc", "JSON-RPC string id echoed as a string", repr(d)[:200])
    r = ctx.js(json_body("VM.get_record", [s, "OpaqueRef:NULL"], id=3))
    d = r.json()
    e = d.get("error")
    C.ok(r.status == 200 and d.get("jsonrpc") == "2.0" and d.get("id") == 3 and isinstance(e, dict)
         and e.get("code") == 1 and e.get("message") == "HANDLE_INVALID"
         and e.get("data") == ["VM", "OpaqueRef:NULL"] and "result" not in d,
         "JSON-RPC 2.0 failure: error {code 1, message CODE, data [...]}", repr(d)[:300])
    # JSON-RPC 1.0
    r = ctx.js(json_body("VM.get_all", [s], id=5, version=None))
    d = r.json()
    C.ok("error" in d and d["error"] is None and isinstance(d.get("result"), list) and d.get("id") == 5
         and "jsonrpc" not in d,
         "JSON-RPC 1.0 success: result, error null, id echoed", repr(d)[:200])
    r = ctx.js(json_body("VM.get_record", [s, "OpaqueRef:NULL"], id=6, version=None))
    d = r.json()
    C.ok(d.get("result", "missing") is None and d.get("error") == ["HANDLE_INVALID", "VM", "OpaqueRef:NULL"]
         and d.get("id") == 6,
         "JSON-RPC 1.0 failure: result null, error [CODE, params...]", repr(d)[:200])
    # 2.0: params absent -> [], params an object -> one-element array
    r = ctx.js(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "system.listMethods"}).encode())
    try:
        v = json_result(r)
        C.ok(isinstance(v, list) and "VM.get_all_records" in v,
             "JSON-RPC 2.0 without params: system.listMethods", repr(v)[:100])
    except Exception as e:  # noqa: BLE001
        C.ok(False, "JSON-RPC 2.0 without params: system.listMethods", "%r %r" % (e, r))
    # a session obtained over JSON works over XML-RPC and back
    r = ctx.js(json_body("session.login_with_password", [USER, PASSWORD], id=1))
    sj = json_result(r)
    r = ctx.xml(xml_call("VM.get_all", sj))
    xml_success(r, "session from JSON-RPC login works over XML-RPC", lambda v: isinstance(v, list))
    ctx.xml(xml_call("session.logout", sj))
    # routing is by path, whatever the content type (curl --data sends a form type)
    for ct in ("application/x-www-form-urlencoded", "application/octet-stream", None):
        hdrs = [("Content-Type", ct)] if ct else []
        res = raw_exchange(*ctx.d.http[1:], http_req("POST", "/", xml_call("VM.get_all", s), hdrs))
        C.ok(res.status == 200 and b"<value>Success</value>" in res.body,
             "POST / with content-type %s is XML-RPC" % ct, repr(res))
    res = raw_exchange(*ctx.d.http[1:], http_req("POST", "/jsonrpc", json_body("VM.get_all", [s]),
                                                 [("Content-Type", "application/x-www-form-urlencoded")]))
    C.ok(res.status == 200 and b'"result"' in res.body, "POST /jsonrpc with a form content type is JSON-RPC",
         repr(res))
    # CORS pre-flight
    res = raw_exchange(*ctx.d.http[1:], http_req("OPTIONS", "/jsonrpc", headers=[
        ("Origin", "http://example.com"), ("Access-Control-Request-Method", "POST")]))
    C.ok(res.status == 200 and res.headers.get("access-control-allow-origin") == "*",
         "OPTIONS /jsonrpc (CORS pre-flight): 200 with Access-Control-Allow-Origin", repr(res))
    # Expect: 100-continue (libcurl sends it for large bodies)
    body = xml_call("VM.get_all", s)
    sk = socket.create_connection(ctx.d.http[1:], timeout=10)
    try:
        sk.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nExpect: 100-continue\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body))
        sk.settimeout(3)
        try:
            first = sk.recv(4096)
        except socket.timeout:
            first = b""
        sk.settimeout(10)
        sk.sendall(body)
        buf = first
        while b"</methodResponse>" not in buf:
            part = sk.recv(65536)
            if not part:
                break
            buf += part
    finally:
        sk.close()
    C.ok(first.startswith(b"HTTP/1.1 100") and b"HTTP/1.1 200" in buf and b"<value>Success</value>" in buf,
         "Expect: 100-continue: 100 Continue, then the answer", repr(buf[:80]))
    # two pipelined requests on one connection: two answers, in order
    req = (http_req("POST", "/", xml_call("VM.get_by_uuid", s, ctx.d.vms["bi-a"]), [("Content-Type", "text/xml")])
           + http_req("POST", "/", xml_call("VM.get_by_uuid", s, ctx.d.vms["bi-b"]), [("Content-Type", "text/xml")]))
    sk = socket.create_connection(ctx.d.http[1:], timeout=10)
    try:
        sk.sendall(req)
        buf = b""
        while buf.count(b"</methodResponse>") < 2:
            part = sk.recv(65536)
            if not part:
                break
            buf += part
    finally:
        sk.close()
    i, j = buf.find(S["a"].encode()), buf.find(S["b"].encode())
    C.ok(buf.count(b"HTTP/1.1 200") == 2 and 0 <= i < j, "pipelined requests: two answers in order", repr(buf[:100]))
    # HTTP/1.0 request, no keep-alive
    body = xml_call("VM.get_all", s)
    res = raw_exchange(*ctx.d.http[1:], http_req("POST", "/", body, [("Content-Type", "text/xml")], "1.0"))
    C.ok(res.status == 200 and b"Success" in res.body, "HTTP/1.0 request answered", repr(res))


def c_malformed(ctx):
    s = S["s"]
    status_is(ctx.xml(b'<?xml version="1.0"?><methodCall><methodName>VM.get_all</methodName><params>'
                      b'<param><value>' + s.encode() + b'</value></param></methodCall>'),
              500, "malformed XML (mismatched tags): HTTP 500")
    full = xml_call("VM.get_all_records", s)
    status_is(ctx.xml(full[:len(full) // 2]), 500, "truncated XML: HTTP 500")
    status_is(ctx.xml(full.rstrip()[:-1]), 500, "XML missing its last '>': HTTP 500")
    status_is(ctx.xml(b"hello, this is not XML at all\n"), 500, "body that is not XML: HTTP 500")
    status_is(ctx.xml(b""), 500, "empty body: HTTP 500")
    status_is(ctx.xml(b"\x00\x01\x02\xff\xfe binary"), 500, "binary garbage: HTTP 500")
    status_is(ctx.xml(b'<?xml version="1.0"?><methodCall><methodName>system.listMethods</methodName></methodCall>'),
              500, "methodCall without <params>: HTTP 500")
    status_is(ctx.xml(b'<?xml version="1.0"?><methodCall><params></params></methodCall>'),
              500, "methodCall without <methodName>: HTTP 500")
    status_is(ctx.xml(b'<?xml version="1.0"?><methodResponse><params></params></methodResponse>'),
              500, "a methodResponse as request: HTTP 500")
    status_is(ctx.xml(b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;'
                      b'&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><methodCall>'
                      b'<methodName>VM.get_by_name_label</methodName><params><param><value>' + s.encode()
                      + b'</value></param><param><value>&c;</value></param></params></methodCall>'),
              500, "DTD with entities: HTTP 500")
    status_is(ctx.xml(xml_req("VM.get_all", "<value><int>notanumber</int></value>")), 500,
              "<int> with non-numeric text: HTTP 500")
    status_is(ctx.xml(xml_req("VM.get_all", "<value><frobnicate>1</frobnicate></value>")), 500,
              "unknown value tag: HTTP 500")
    status_is(ctx.xml(full.rstrip() + b"<methodCall>"), 500, "XML with a second root element: HTTP 500")
    status_is(ctx.xml(full.rstrip() + b"garbage"), 500, "XML with text after the root element: HTTP 500")
    # JSON
    status_is(ctx.js(json.dumps({"jsonrpc": "2.0", "method": "VM.get_all", "params": [s]}).encode()),
              500, "JSON-RPC 2.0 without id (notification): HTTP 500")
    status_is(ctx.js(json.dumps({"jsonrpc": "2.0", "method": "VM.get_all", "params": [s], "id": None}).encode()),
              500, "JSON-RPC with id null: HTTP 500")
    status_is(ctx.js(json.dumps({"method": "VM.get_all", "params": [s]}).encode()),
              500, "JSON-RPC 1.0 without id: HTTP 500")
    status_is(ctx.js(json.dumps([{"jsonrpc": "2.0", "method": "VM.get_all", "params": [s], "id": 1},
                                 {"jsonrpc": "2.0", "method": "VM.get_all", "params": [s], "id": 2}]).encode()),
              500, "JSON-RPC batch array: HTTP 500")
    status_is(ctx.js(b'{"jsonrpc": "2.0", "id": 1, "method": "VM.get_all", "params": ['),
              500, "truncated JSON: HTTP 500")
    status_is(ctx.js(b"this is not json"), 500, "body that is not JSON: HTTP 500")
    status_is(ctx.js(json_body("VM.get_all", [s]) + b" trailing"), 500, "JSON with trailing garbage: HTTP 500")
    status_is(ctx.js(b""), 500, "empty JSON-RPC body: HTTP 500")
    status_is(ctx.js(json.dumps({"jsonrpc": "3.0", "method": "VM.get_all", "params": [s], "id": 1}).encode()),
              500, "JSON-RPC version 3.0: HTTP 500")
    status_is(ctx.js(json.dumps({"method": "VM.get_all", "id": 1}).encode()),
              500, "JSON-RPC 1.0 without params: HTTP 500")
    status_is(ctx.js(json.dumps({"jsonrpc": "2.0", "params": [s], "id": 1}).encode()),
              500, "JSON-RPC without method: HTTP 500")
    status_is(ctx.js(json.dumps({"jsonrpc": "2.0", "method": 42, "params": [s], "id": 1}).encode()),
              500, "JSON-RPC with a non-string method: HTTP 500")
    status_is(ctx.js(json.dumps({"jsonrpc": "2.0", "method": "VM.get_all", "params": [s], "id": [1]}).encode()),
              500, "JSON-RPC with an array id: HTTP 500")


def c_huge(ctx):
    s = S["s"]
    host, port = ctx.d.http[1:]
    big = 1 << 20
    body = xml_req("VM.get_by_name_label", xs(s), xs("x" * big))
    res = raw_exchange(host, port, http_req("POST", "/", body, [("Content-Type", "text/xml")]))
    C.ok(refused(res), "1 MiB XML-RPC body: 413 or refused", repr(res))
    log("  (1 MiB XML-RPC: %s)" % (res.status or res.error))
    body = json_body("VM.get_by_name_label", [s, "x" * big])
    res = raw_exchange(host, port, http_req("POST", "/jsonrpc", body, [("Content-Type", "application/json")]))
    C.ok(refused(res), "1 MiB JSON-RPC body: 413 or refused", repr(res))
    # a declared 64 MiB body (only the headers sent): answered, not waited for
    s2 = socket.create_connection((host, port), timeout=10)
    try:
        s2.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 67108864\r\n\r\n")
        s2.settimeout(5)
        try:
            data = s2.recv(4096)
        except socket.timeout:
            data = None
        except OSError as e:
            data = b"(reset: %s)" % str(e).encode()
    finally:
        s2.close()
    C.ok(data is not None and (data.startswith(b"HTTP/1.1 413") or data.startswith(b"HTTP/1.0 413") or not data
                               or data.startswith(b"(reset")),
         "Content-Length: 64 MiB refused (413 or close) before the body is sent", repr(data)[:100])
    # exactly at the limit: processed normally; one byte more: 413
    head = len(xml_req("VM.get_by_name_label", xs(s), xs("")))
    body = xml_req("VM.get_by_name_label", xs(s), xs("y" * (LIMIT - head)))
    res = raw_exchange(host, port, http_req("POST", "/", body, [("Content-Type", "text/xml")]))
    xml_success(res, "%d-byte body (exactly 300 KiB) is served" % len(body), lambda v: v == [])
    body = xml_req("VM.get_by_name_label", xs(s), xs("y" * (LIMIT - head + 1)))
    res = raw_exchange(host, port, http_req("POST", "/", body, [("Content-Type", "text/xml")]))
    C.ok(refused(res), "%d-byte body (300 KiB + 1): 413 or refused" % len(body), repr(res))
    body = json_body("VM.get_by_name_label", [s, "z" * (LIMIT + 1)])
    res = raw_exchange(*ctx.d.https[1:], http_req("POST", "/jsonrpc", body, [("Content-Type", "application/json")]),
                       tls=True)
    C.ok(refused(res), "over 300 KiB over HTTPS: 413 or refused", repr(res))


def c_nesting(ctx):
    s = S["s"]
    n = 10000
    body = ('{"jsonrpc":"2.0","id":1,"method":"VM.get_all_records","params":["%s",%s%s]}'
            % (s, "[" * n, "]" * n)).encode()
    status_is(ctx.js(body), 500, "JSON-RPC array nested 10,000 deep (%d bytes): HTTP 500" % len(body))
    body = ('{"jsonrpc":"2.0","id":1,"method":"VM.get_all_records","params":["%s",%s1%s]}'
            % (s, '{"a":' * n, "}" * n)).encode()
    status_is(ctx.js(body), 500, "JSON-RPC object nested 10,000 deep: HTTP 500")
    n = 5000
    body = xml_req("VM.get_all_records", xs(s), "<value><array><data>" * n + "</data></array></value>" * n)
    status_is(ctx.xml(body), 500, "XML-RPC array nested %d deep (%d bytes): HTTP 500" % (n, len(body)))
    n = 4000
    body = xml_req("VM.get_all_records", xs(s),
                   "<value><struct><member><name>a</name>" * n + "<value>x</value>"
                   + "</member></struct></value>" * n)
    status_is(ctx.xml(body), 500, "XML-RPC struct nested %d deep (%d bytes): HTTP 500" % (n, len(body)))
    n = 10000
    body = xml_req("VM.get_all_records", xs(s), "<value><array><data>" * n + "</data></array></value>" * n)
    res = raw_exchange(*ctx.d.http[1:], http_req("POST", "/", body, [("Content-Type", "text/xml")]))
    C.ok(res.status in (413, 500) or refused(res),
         "XML-RPC array nested 10,000 deep (%d bytes, over the limit): 413 or 500" % len(body), repr(res))


def c_wide(ctx):
    s = S["s"]
    host, port = ctx.d.http[1:]
    n = 100000
    members = "".join("<member><name>k%d</name><value>v</value></member>" % i for i in range(n))
    body = xml_req("VM.get_by_name_label", xs(s), "<value><struct>%s</struct></value>" % members)
    res = raw_exchange(host, port, http_req("POST", "/", body, [("Content-Type", "text/xml")]))
    C.ok(refused(res), "XML-RPC struct with 100k members (%d bytes): 413 or refused" % len(body), repr(res))
    obj = "{" + ",".join('"%x":0' % i for i in range(n)) + "}"
    body = ('{"jsonrpc":"2.0","id":1,"method":"VM.get_by_name_label","params":["%s",%s]}' % (s, obj)).encode()
    res = raw_exchange(host, port, http_req("POST", "/jsonrpc", body, [("Content-Type", "application/json")]))
    C.ok(refused(res), "JSON-RPC object with 100k members (%d bytes): 413 or refused" % len(body), repr(res))
    # within the limit: many members parsed, then a type error
    n = 25000
    obj = "{" + ",".join('"%x":0' % i for i in range(n)) + "}"
    body = ('{"jsonrpc":"2.0","id":1,"method":"VM.get_by_name_label","params":["%s",%s]}' % (s, obj)).encode()
    t0 = time.monotonic()
    res = ctx.js(body)
    dt = time.monotonic() - t0
    json_failure(res, "INTERNAL_ERROR", None, "JSON-RPC object with 25k members (%d bytes) where a string is expected: "
                 "INTERNAL_ERROR" % len(body))
    C.ok(dt < 5, "... answered in %.2f s" % dt)
    n = 5000
    members = "".join("<member><name>k%d</name><value>v</value></member>" % i for i in range(n))
    body = xml_req("VM.get_by_name_label", xs(s), "<value><struct>%s</struct></value>" % members)
    xml_failure(ctx.xml(body), "INTERNAL_ERROR", None,
                "XML-RPC struct with 5k members where a string is expected: INTERNAL_ERROR")
    arr = "<value><array><data>" + "<value>x</value>" * 15000 + "</data></array></value>"
    xml_failure(ctx.xml(xml_req("VM.get_by_name_label", xs(s), arr)), "INTERNAL_ERROR", None,
                "XML-RPC array of 15k strings where a string is expected: INTERNAL_ERROR")


def c_types(ctx):
    s, b = S["s"], S["b"]
    try:
        # bool params: only <boolean> (XML) / JSON booleans
        xml_failure(ctx.xml(xml_req("VM.start", xs(s), xs(b), "<value><string>true</string></value>", xb(False))),
                    "INTERNAL_ERROR", None, "XML-RPC string 'true' for a bool: INTERNAL_ERROR")
        xml_failure(ctx.xml(xml_req("VM.start", xs(s), xs(b), xb(False), "<value><int>1</int></value>")),
                    "INTERNAL_ERROR", None, "XML-RPC <int> for a bool: INTERNAL_ERROR")
        json_failure(ctx.js(json_body("VM.start", [s, b, "true", False])), "INTERNAL_ERROR", None,
                     "JSON-RPC string 'true' for a bool: INTERNAL_ERROR")
        json_failure(ctx.js(json_body("VM.start", [s, b, False, 0])), "INTERNAL_ERROR", None,
                     "JSON-RPC number 0 for a bool: INTERNAL_ERROR")
        xml_failure(ctx.xml(xml_req("VM.get_record", xs(s), "<value><boolean>1</boolean></value>")),
                    "INTERNAL_ERROR", None, "XML-RPC <boolean> for a ref: INTERNAL_ERROR")
        # int params: decimal strings and <int>/<i4>/<i8> accepted, others refused
        for i, (v, what) in enumerate((("<value>7</value>", "untyped '7'"),
                                       ("<value><string>8</string></value>", "<string>8</string>"),
                                       ("<value><int>9</int></value>", "<int>9</int>"),
                                       ("<value><i4>10</i4></value>", "<i4>10</i4>"),
                                       ("<value><i8>4294967296</i8></value>", "<i8>4294967296</i8>"),
                                       ("<value>4294967297</value>", "untyped 4294967297 (> 2^32)"))):
            want = re.search(r">(\d+)<", v).group(1)
            r = ctx.xml(xml_req("VM.set_user_version", xs(s), xs(b), v))
            if xml_success(r, "XML-RPC int param as %s accepted" % what):
                r = ctx.xml(xml_req("VM.get_user_version", xs(s), xs(b)))
                xml_success(r, "... and stored as %s" % want, lambda got, w=want: str(got) == w)
        r = ctx.js(json_body("VM.set_user_version", [s, b, "11"]))
        try:
            json_result(r)
            C.ok(True, "JSON-RPC decimal string '11' for an int accepted")
            v = json_result(ctx.js(json_body("VM.get_user_version", [s, b])))
            C.ok(v == 11, "... and stored as the number 11", repr(v))
        except Exception as e:  # noqa: BLE001
            C.ok(False, "JSON-RPC decimal string '11' for an int accepted", repr(e))
        r = ctx.js(json_body("VM.set_user_version", [s, b, 12]))
        try:
            json_result(r)
            C.ok(True, "JSON-RPC number 12 for an int accepted")
        except Exception as e:  # noqa: BLE001
            C.ok(False, "JSON-RPC number 12 for an int accepted", repr(e))
        xml_failure(ctx.xml(xml_req("VM.set_user_version", xs(s), xs(b), xs("abc"))), "INTERNAL_ERROR", None,
                    "XML-RPC 'abc' for an int: INTERNAL_ERROR")
        xml_failure(ctx.xml(xml_req("VM.set_user_version", xs(s), xs(b), xs("12abc"))), "INTERNAL_ERROR", None,
                    "XML-RPC '12abc' for an int: INTERNAL_ERROR")
        xml_failure(ctx.xml(xml_req("VM.set_user_version", xs(s), xs(b), xb(True))), "INTERNAL_ERROR", None,
                    "XML-RPC <boolean> for an int: INTERNAL_ERROR")
        xml_failure(ctx.xml(xml_req("VM.set_user_version", xs(s), xs(b), xs("99999999999999999999999"))),
                    "INTERNAL_ERROR", None, "XML-RPC int beyond 64 bits: INTERNAL_ERROR")
        json_failure(ctx.js(json_body("VM.set_user_version", [s, b, "abc"])), "INTERNAL_ERROR", None,
                     "JSON-RPC 'abc' for an int: INTERNAL_ERROR")
        json_failure(ctx.js(json_body("VM.set_user_version", [s, b, [1]])), "INTERNAL_ERROR", None,
                     "JSON-RPC array for an int: INTERNAL_ERROR")
        json_failure(ctx.js(json_body("VM.set_user_version", [s, b, 1.5])), "INTERNAL_ERROR", None,
                     "JSON-RPC 1.5 for an int: INTERNAL_ERROR")
        # enums: case-insensitive on input; bad value refused
        r = ctx.xml(xml_req("VM.set_actions_after_crash", xs(s), xs(b), xs("DESTROY")))
        xml_success(r, "enum value in other case accepted (DESTROY)")
        r = ctx.xml(xml_req("VM.get_actions_after_crash", xs(s), xs(b)))
        xml_success(r, "... read back in datamodel case", lambda v: v == "destroy")
        r = ctx.xml(xml_req("VM.set_actions_after_crash", xs(s), xs(b), xs("explode")))
        C.ok(r.status == 200 and b"Failure" in r.body and b"Success" not in r.body,
             "unknown enum value refused with a failure envelope", repr(r))
        # float params take ints and decimal strings too; datetimes compact or RFC 3339
        vm_arr = "<value><array><data>%s</data></array></value>" % xs("vm")
        xml_success(ctx.xml(xml_req("event.from", xs(s), vm_arr, xs(""), "<value><int>0</int></value>")),
                    "event.from timeout as <int>0</int> accepted", lambda v: "token" in v)
        xml_success(ctx.xml(xml_req("event.from", xs(s), vm_arr, xs(""), xs("0.5"))),
                    "event.from timeout as the string '0.5' accepted", lambda v: "token" in v)
        for v, what in (("<value><dateTime.iso8601>20240101T00:00:00Z</dateTime.iso8601></value>", "compact dateTime"),
                        (xs("2024-01-01T00:00:00Z"), "RFC 3339 string"),
                        (xs("2024-01-01T00:00:00+02:00"), "RFC 3339 with offset")):
            xml_success(ctx.xml(xml_req("message.get_since", xs(s), v)), "datetime param as %s accepted" % what,
                        lambda r: isinstance(r, dict))
        xml_failure(ctx.xml(xml_req("VM.get_by_name_label", xs(s), "<value><nil/></value>")), "INTERNAL_ERROR", None,
                    "<nil/> for a string: INTERNAL_ERROR")
        # map param given a string
        xml_failure(ctx.xml(xml_req("VM.set_other_config", xs(s), xs(b), xs("a=b"))), "INTERNAL_ERROR", None,
                    "XML-RPC string for a map: INTERNAL_ERROR")
    finally:
        x = XenAPI(ctx.d.http)
        try:
            if x.call("VM.get_power_state", s, b) != "Halted":
                log("  (VM b was started by a wrongly accepted call; hard_shutdown)")
                x.call("VM.hard_shutdown", s, b)
        except Failure:
            pass


def c_dispatch(ctx):
    s, a = S["s"], S["a"]
    xml_failure(ctx.xml(xml_call("VM.no_such_method", s)), "MESSAGE_METHOD_UNKNOWN", ["VM.no_such_method"],
                "unknown method with a session: MESSAGE_METHOD_UNKNOWN [name]")
    xml_failure(ctx.xml(xml_req("no_such_method")), "MESSAGE_METHOD_UNKNOWN", ["no_such_method"],
                "unknown method, no args: MESSAGE_METHOD_UNKNOWN [name]")
    xml_failure(ctx.xml(xml_call("Async.VM.no_such_method", s)), "MESSAGE_METHOD_UNKNOWN", ["VM.no_such_method"],
                "unknown Async. method: MESSAGE_METHOD_UNKNOWN [name without Async.]")
    xml_failure(ctx.xml(xml_call("VM.no_such_method", "OpaqueRef:dead")), "SESSION_INVALID", ["OpaqueRef:dead"],
                "unknown method with a dead session: SESSION_INVALID (session checked first)")
    json_failure(ctx.js(json_body("VM.nope", [s])), "MESSAGE_METHOD_UNKNOWN", ["VM.nope"],
                 "JSON-RPC unknown method: MESSAGE_METHOD_UNKNOWN")
    xml_failure(ctx.xml(xml_call("vm.get_all", s)), "MESSAGE_METHOD_UNKNOWN", ["vm.get_all"],
                "class names are case-sensitive: vm.get_all unknown")
    xml_success(ctx.xml(xml_call("VM_get_all", s)), "underscore spelling VM_get_all accepted",
                lambda v: isinstance(v, list) and a in v)
    # arity
    xml_failure(ctx.xml(xml_call("VM.get_record", s)), "MESSAGE_PARAMETER_COUNT_MISMATCH",
                ["VM.get_record", "1", "0"], "VM.get_record(s): MESSAGE_PARAMETER_COUNT_MISMATCH [m, 1, 0]")
    xml_failure(ctx.xml(xml_call("VM.get_record", s, a, "extra")), "MESSAGE_PARAMETER_COUNT_MISMATCH",
                ["VM.get_record", "1", "2"], "VM.get_record(s, vm, x): MESSAGE_PARAMETER_COUNT_MISMATCH [m, 1, 2]")
    xml_failure(ctx.xml(xml_call("Async.VM.start", s, a)), "MESSAGE_PARAMETER_COUNT_MISMATCH",
                ["VM.start", "3", "1"], "Async.VM.start(s, vm): MESSAGE_PARAMETER_COUNT_MISMATCH [VM.start, 3, 1]")
    xml_failure(ctx.xml(xml_call("VM.get_record", "OpaqueRef:dead")), "MESSAGE_PARAMETER_COUNT_MISMATCH",
                ["VM.get_record", "1", "0"], "arity checked before the session")
    json_failure(ctx.js(json_body("VM.get_all_records", [s, "x"])), "MESSAGE_PARAMETER_COUNT_MISMATCH",
                 ["VM.get_all_records", "0", "1"], "JSON-RPC VM.get_all_records(s, x): count mismatch [m, 0, 1]")
    xml_success(ctx.xml(xml_call("session.login_with_password", USER, PASSWORD, "1.1", "t", "surplus")),
                "login_with_password with 5 args: surplus trailing arg ignored",
                lambda v: v.startswith("OpaqueRef:"))
    # sessions
    xml_failure(ctx.xml(xml_call("VM.get_all", "OpaqueRef:dead")), "SESSION_INVALID", ["OpaqueRef:dead"],
                "made-up session: SESSION_INVALID [ref]")
    xml_failure(ctx.xml(xml_call("VM.get_all", "")), "SESSION_INVALID", [""], "empty session: SESSION_INVALID ['']")
    xml_failure(ctx.xml(xml_call("VM.get_all", "OpaqueRef:NULL")), "SESSION_INVALID", ["OpaqueRef:NULL"],
                "NULL session: SESSION_INVALID")
    json_failure(ctx.js(json_body("VM.get_all", ["OpaqueRef:dead"])), "SESSION_INVALID", ["OpaqueRef:dead"],
                 "JSON-RPC made-up session: SESSION_INVALID")
    xml_failure(ctx.xml(xml_call("VM.get_all", a)), "SESSION_INVALID", [a], "a VM ref as session: SESSION_INVALID")
    xml_success(ctx.xml(xml_req("system.isAlive:probe", xs("hello"))), "system.isAlive:<x> echoes its first parameter",
                lambda v: v == "hello")
    xml_failure(ctx.xml(xml_call("VM.get_all_records_where", s, 'field "uuid" = ')), "INVALID_VALUE", None,
                "get_all_records_where with a bad expression: INVALID_VALUE")
    xml_success(ctx.xml(xml_call("VM.get_all_records_where", s, 'field "name__label" = "bi-b"')),
                "get_all_records_where with a good expression", lambda v: list(v) == [S["b"]])
    xml_failure(ctx.xml(xml_call("Async.VM.get_name_label", s, a)), "Fault", None,
                "Async. on a sync-only (generated getter) message: ['Fault', ...]")
    xml_failure(ctx.xml(xml_call("event.from", s, ["vm"], "not-a-token", 0.1)),
                "EVENT_FROM_TOKEN_PARSE_FAILURE", ["not-a-token"],
                "event.from with a bad token: EVENT_FROM_TOKEN_PARSE_FAILURE")


def c_utf8(ctx):
    s = S["s"]
    for raw, what in ((b"ab\xffcd", "0xFF byte"), (b"ab\xc0\xafcd", "overlong '/'"),
                      (b"ab\xed\xa0\x80cd", "UTF-16 surrogate"), (b"ab\xe2\x82", "truncated sequence")):
        body = xml_req("VM.get_by_name_label", xs(s).encode(), b"<value>" + raw + b"</value>")
        r = ctx.xml(body)
        xml_failure(r, "INVALID_VALUE", None, "XML-RPC %s in a string: INVALID_VALUE" % what)
        try:
            xml_result(r)
        except Failure as f:
            C.ok(f.params[:1] == ["Invalid UTF-8 string in parameter"] and len(f.params) == 2
                 and f.params[1].startswith("ab"),
                 "... params ['Invalid UTF-8 string in parameter', <arg>]", repr(f.desc))
        except Exception as e:  # noqa: BLE001
            C.ok(False, "... response is valid XML", repr(e))
    body = (b'{"jsonrpc":"2.0","id":1,"method":"VM.get_by_name_label","params":["' + s.encode()
            + b'","ab\xffcd"]}')
    json_failure(ctx.js(body), "INVALID_VALUE", None, "JSON-RPC 0xFF byte in a string: INVALID_VALUE")
    json_failure(ctx.js(json_body("VM.get_by_name_label", [s, "ab\x01cd"])), "INVALID_VALUE", None,
                 "JSON-RPC control character U+0001 in a string: INVALID_VALUE")
    body = xml_req("VM.get_all_records_where", xs(s).encode(),
                   b"<value><struct><member><name>k\xff</name><value>v</value></member></struct></value>")
    xml_failure(ctx.xml(body), "INVALID_VALUE", None, "XML-RPC bad UTF-8 in a struct member name: INVALID_VALUE")
    body = xml_req("VM.no_such_method", xs(s).encode(), b"<value>\xff</value>")
    xml_failure(ctx.xml(body), "INVALID_VALUE", None, "UTF-8 checked before the method lookup")
    # other legal spellings of a string
    a = S["a"]

    def desc_is(want):
        return lambda _: XenAPI(ctx.d.http).call("VM.get_name_description", s, a) == want

    xml_success(ctx.xml(xml_req("VM.set_name_description", xs(s), xs(a),
                                "<value>a&lt;b&#x41;&#66;<![CDATA[c&d]]></value>")),
                "entities, character references and CDATA decode", desc_is("a<bABc&d"))
    pretty = ('<?xml version="1.0"?>\n<methodCall>\n  <methodName>VM.set_name_description</methodName>\n'
              '  <params>\n    <param>\n      <value><string>%s</string></value>\n    </param>\n'
              '    <param><value>%s</value></param>\n    <param>\n      <value><string>spaced</string></value>\n'
              '    </param>\n  </params>\n</methodCall>\n' % (s, a)).encode()
    xml_success(ctx.xml(pretty), "indented XML-RPC request (whitespace between tags) accepted", desc_is("spaced"))
    body = (b'<?xml version="1.0" encoding="ISO-8859-1"?>'
            + xml_req("VM.set_name_description", xs(s), xs(a), b"<value>caf\xe9</value>")[len(b'<?xml version="1.0"?>'):])
    xml_success(ctx.xml(body), "XML declared ISO-8859-1: a Latin-1 byte decodes (not INVALID_VALUE)",
                desc_is("caf\u00e9"))
    body = ('{"jsonrpc":"2.0","id":1,"method":"VM.set_name_description","params":["%s","%s",'
            '"\\u00e9\\ud83d\\ude00"]}' % (s, a)).encode()
    try:
        json_result(ctx.js(body))
        C.ok(desc_is("\u00e9\U0001f600")(None), "JSON \\u escapes and surrogate pairs decode")
    except Exception as e:  # noqa: BLE001
        C.ok(False, "JSON \\u escapes and surrogate pairs decode", repr(e))
    # valid non-ASCII is fine and round-trips
    name = "vm-\u00e9\u4e2d\U0001f600"
    r = ctx.xml(xml_call("VM.set_name_description", s, S["a"], name))
    xml_success(r, "valid non-ASCII UTF-8 accepted")
    xml_success(ctx.xml(xml_call("VM.get_name_description", s, S["a"])), "... and round-trips",
                lambda v: v == name)


def c_slowloris(ctx):
    host, port = ctx.d.http[1:]
    socks = []
    try:
        for _ in range(20):
            socks.append(socket.create_connection((host, port), timeout=5))
        msg = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nX-Slow: "
        t_end = time.monotonic() + 3.0
        i = 0
        alive = len(socks)
        while time.monotonic() < t_end:
            for sk in list(socks):
                try:
                    sk.send(msg[i % len(msg):i % len(msg) + 1] if i < len(msg) else b"a")
                except OSError:
                    socks.remove(sk)
            i += 1
            time.sleep(0.1)
        alive = len(socks)
        log("  (%d of 20 slow connections still open after 3 s)" % alive)
    finally:
        for sk in socks:
            sk.close()
    # a complete request sent one byte at a time is still answered correctly
    body = xml_call("VM.get_all", S["s"])
    req = http_req("POST", "/", body, [("Content-Type", "text/xml")])
    sk = socket.create_connection((host, port), timeout=10)
    try:
        gap = min(0.01, 2.5 / len(req))
        for j in range(len(req)):
            sk.send(req[j:j + 1])
            time.sleep(gap)
        buf = b""
        sk.settimeout(10)
        while True:
            part = sk.recv(65536)
            if not part:
                break
            buf += part
            if b"</methodResponse>" in buf:
                break
    finally:
        sk.close()
    C.ok(buf.startswith(b"HTTP/1.1 200") and b"<value>Success</value>" in buf,
         "a %d-byte request sent byte by byte is answered" % len(req), repr(buf[:120]))


def c_idle(ctx):
    host, port = ctx.d.http[1:]
    socks = []
    try:
        for _ in range(200):
            socks.append(socket.create_connection((host, port), timeout=5))
        C.ok(len(socks) == 200, "200 idle connections opened")
        time.sleep(1.0)
        t0 = time.monotonic()
        r = ctx.xml(xml_call("VM.get_all", S["s"]))
        dt = time.monotonic() - t0
        C.ok(r.status == 200 and dt < MAX_LATENCY, "a new client is served while 200 connections idle (%.3f s)" % dt,
             repr(r))
        # the TLS listener too
        t0 = time.monotonic()
        r = http_post(ctx.d.https, "/", xml_call("VM.get_all", S["s"]))
        dt = time.monotonic() - t0
        C.ok(r.status == 200 and dt < MAX_LATENCY, "a new HTTPS client is served meanwhile (%.3f s)" % dt, repr(r))
    finally:
        for sk in socks:
            sk.close()
    # the same on TLS: idle handshakes
    socks = []
    try:
        for _ in range(50):
            socks.append(socket.create_connection(ctx.d.https[1:], timeout=5))
        time.sleep(0.5)
        t0 = time.monotonic()
        r = http_post(ctx.d.https, "/", xml_call("VM.get_all", S["s"]))
        dt = time.monotonic() - t0
        C.ok(r.status == 200 and dt < MAX_LATENCY,
             "HTTPS client served while 50 TLS connections never handshake (%.3f s)" % dt, repr(r))
    finally:
        for sk in socks:
            sk.close()


def abandon_polls(host, port, session, token, n, wait):
    """n clients park an event.from(token, 30 s) and vanish after wait s."""
    socks = []
    for _ in range(n):
        sk = socket.create_connection((host, port), timeout=5)
        sk.sendall(http_req("POST", "/", xml_call("event.from", session, ["vm"], token, 30.0),
                            [("Content-Type", "text/xml")]))
        socks.append(sk)
    time.sleep(wait)
    for sk in socks:
        sk.close()


def c_vanish(ctx):
    s, a = S["s"], S["a"]
    host, port = ctx.d.http[1:]
    x = XenAPI(ctx.d.http)
    token = x.call("event.from", s, ["vm"], "", 0.1)["token"]
    abandon_polls(host, port, s, token, 20, 0.5)
    time.sleep(0.2)
    # wake the abandoned waiters
    x.call("VM.set_name_label", s, a, "bi-a-renamed")
    time.sleep(0.5)
    C.ok(ctx.d.alive(), "20 clients gone during event.from, then a change: daemon alive")
    ev = x.call("event.from", s, ["vm"], token, 5.0)
    C.ok(any(e["ref"] == a and e["snapshot"]["name_label"] == "bi-a-renamed" for e in ev["events"]),
         "event.from still works afterwards", repr(ev["events"])[:200])
    # a session with abandoned long polls is logged out
    s2 = x.login()
    tok2 = x.call("event.from", s2, ["vm"], "", 0.1)["token"]
    abandon_polls(host, port, s2, tok2, 5, 0.3)
    x.call("session.logout", s2)
    time.sleep(0.3)
    C.ok(ctx.d.alive(), "logout of a session whose long polls were abandoned: daemon alive")
    # clients gone while their failed login is being delayed
    for _ in range(10):
        sk = socket.create_connection((host, port), timeout=5)
        sk.sendall(http_req("POST", "/", xml_call("session.login_with_password", USER, "bad"),
                            [("Content-Type", "text/xml")]))
        sk.close()
    time.sleep(ctx.d.auth_fail_delay_ms / 1000.0 + 0.5)
    C.ok(ctx.d.alive(), "10 clients gone during a failed login's delay: daemon alive")
    # a long poll abandoned at the TLS level
    tls = []
    for _ in range(5):
        raw = socket.create_connection(ctx.d.https[1:], timeout=5)
        sk = insecure_context().wrap_socket(raw)
        sk.sendall(http_req("POST", "/", xml_call("event.from", s, ["vm"], ev["token"], 30.0),
                            [("Content-Type", "text/xml")]))
        tls.append(sk)
    time.sleep(0.3)
    for sk in tls:
        sk.close()
    x.call("VM.set_name_label", s, a, "bi-a")
    time.sleep(0.5)
    C.ok(ctx.d.alive(), "5 TLS clients gone during event.from, then a change: daemon alive")


def c_longpolls(ctx):
    """300 event.from long polls parked at once; one change wakes them all."""
    import select
    s, a = S["s"], S["a"]
    n = 300
    x = XenAPI(ctx.d.http)
    token = x.call("event.from", s, ["vm"], "", 0.1)["token"]
    socks = []
    try:
        req = http_req("POST", "/", xml_call("event.from", s, ["vm"], token, 30.0), [("Content-Type", "text/xml")])
        for _ in range(n):
            sk = socket.create_connection(ctx.d.http[1:], timeout=10)
            sk.sendall(req)
            socks.append(sk)
        time.sleep(1.5)
        ready, _, _ = select.select(socks, [], [], 0)
        C.ok(not ready, "%d long polls parked (none answered before a change)" % n, "%d answered" % len(ready))
        t0 = time.monotonic()
        r = ctx.xml(xml_call("VM.get_all", s))
        C.ok(r.status == 200 and time.monotonic() - t0 < MAX_LATENCY,
             "a new client is served while %d long polls are parked" % n)
        x.call("VM.set_name_label", s, a, "woken-all")
        t0 = time.monotonic()
        bufs = {sk: b"" for sk in socks}
        done = {}
        while len(done) < n and time.monotonic() - t0 < 15:
            pend = [sk for sk in socks if sk not in done]
            ready, _, _ = select.select(pend, [], [], 0.5)
            for sk in ready:
                try:
                    part = sk.recv(65536)
                except OSError:
                    part = b""
                bufs[sk] += part
                res = parse_response(bufs[sk], eof=not part)
                if res is not None or not part:
                    done[sk] = (res, time.monotonic() - t0)
        good = [v for v in done.values() if v[0] is not None and v[0].status == 200 and b"woken-all" in v[0].body]
        worst = max((v[1] for v in done.values()), default=-1)
        C.ok(len(good) == n and worst < 5, "one change wakes all %d long polls with the event" % n,
             "%d of %d good, slowest %.2f s" % (len(good), n, worst))
        log("  (all %d woken within %.2f s)" % (n, worst))
    finally:
        for sk in socks:
            sk.close()
        x.call("VM.set_name_label", s, a, "bi-a")


def c_storm(ctx):
    """Many clients at once, mixing XML-RPC and JSON-RPC, sync and Async
    clones (of a template), renames and destroys, while event.from watchers mirror the VM
    set: afterwards every watcher's mirror equals VM.get_all."""
    import threading
    s = S["s"]
    # clones of a template (no disks, so no image chains to grow)
    b = XenAPI(ctx.d.http).call("VM.get_by_name_label", s, "Debian Bookworm 12")[0]
    workers, rounds = 16, 15
    errors = []
    stop = threading.Event()
    mirrors = []

    def watcher(i):
        x = XenAPI(ctx.d.http if i % 2 == 0 else ctx.d.https)
        ws = x.login()
        vms, token = {}, ""
        while True:
            ev = x.call("event.from", ws, ["vm"], token, 1.0)
            for e in ev["events"]:
                if e["operation"] == "del":
                    vms.pop(e["ref"], None)
                else:
                    vms[e["ref"]] = e["snapshot"]["name_label"]
            token = ev["token"]
            if stop.is_set() and not ev["events"]:
                break
        mirrors.append(vms)
        x.call("session.logout", ws)

    def worker(i):
        try:
            x = XenAPI(ctx.d.http)
            for r in range(rounds):
                name = "storm-%d-%d" % (i, r)
                if (i + r) % 2:
                    task = x.call("Async.VM.clone", s, b, name)
                    for _ in range(600):
                        rec = x.call("task.get_record", s, task)
                        if rec["status"] != "pending":
                            break
                        time.sleep(0.02)
                    if rec["status"] != "success":
                        raise AssertionError("clone task %r" % rec)
                    ref = re.fullmatch(r"<value>(OpaqueRef:[^<]+)</value>", rec["result"]).group(1)
                    x.call("task.destroy", s, task)
                else:
                    ref = json_result(ctx.js(json_body("VM.clone", [s, b, name], id=i)))
                x.call("VM.set_name_label", s, ref, name + "-renamed")
                if r % 3 != 2:
                    x.call("VM.destroy", s, ref)
        except Exception as e:  # noqa: BLE001
            errors.append("worker %d: %r" % (i, e))

    watchers = [threading.Thread(target=watcher, args=(i,), daemon=True) for i in range(4)]
    for th in watchers:
        th.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(120)
    dt = time.monotonic() - t0
    C.ok(not errors, "%d clients x %d clone/rename/destroy rounds (XML and JSON, sync and Async): no error (%.1f s)"
         % (workers, rounds, dt), repr(errors[:3]))
    stop.set()
    for th in watchers:
        th.join(30)
    x = XenAPI(ctx.d.http)
    recs = x.call("VM.get_all_records", s)
    truth = {ref: r["name_label"] for ref, r in recs.items()}
    C.ok(len(mirrors) == 4 and all(m == truth for m in mirrors),
         "4 event.from watchers' mirrors equal VM.get_all_records afterwards",
         "; ".join("missing %r extra %r" % (sorted(set(truth) - set(m))[:2], sorted(set(m) - set(truth))[:2])
                   for m in mirrors))
    kept = [n for n in truth.values() if n.startswith("storm-")]
    C.eq(len(kept), workers * (rounds // 3), "the VMs not destroyed are all there")
    for ref, name in truth.items():
        if name.startswith("storm-"):
            x.call("VM.destroy", s, ref)


def c_broken_http(ctx):
    host, port = ctx.d.http[1:]
    # body shorter than its Content-Length, then close
    sk = socket.create_connection((host, port), timeout=5)
    body = xml_call("VM.get_all", S["s"])
    sk.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n" + body[:100])
    sk.close()
    # not HTTP at all
    res = raw_exchange(host, port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200), timeout=5)
    log("  (TLS hello on the plain port: %r)" % (res,))
    res = raw_exchange(host, port, b"HELLO THERE\r\n\r\n", timeout=5)
    C.ok(res.status is None or 400 <= res.status < 600, "garbage request line: 4xx/5xx or close", repr(res))
    # plain HTTP on the TLS port
    res = raw_exchange(*ctx.d.https[1:], http_req("POST", "/", body, [("Content-Type", "text/xml")]), timeout=5)
    log("  (plain HTTP on the TLS port: %r)" % (res,))
    # huge header
    res = raw_exchange(host, port, b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n"
                       b"Content-Length: 0\r\n\r\n", timeout=10)
    C.ok(res.status is None or 400 <= res.status < 600, "200 KB header: 4xx/5xx or close", repr(res))
    # chunked request body
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    res = raw_exchange(host, port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + chunk, timeout=10)
    log("  (chunked request: %r)" % (res,))
    C.ok(ctx.d.alive(), "daemon alive after broken HTTP")


def final_shutdown(d):
    """SIGTERM with a long poll pending: exit 0, promptly."""
    s = S["s"]
    x = XenAPI(d.http)
    token = x.call("event.from", s, ["vm"], "", 0.1)["token"]
    sk = socket.create_connection(d.http[1:], timeout=15)
    sk.sendall(http_req("POST", "/", xml_call("event.from", s, ["vm"], token, 60.0), [("Content-Type", "text/xml")]))
    time.sleep(0.3)
    t0 = time.monotonic()
    rc = d.stop(timeout=20)
    dt = time.monotonic() - t0
    C.eq(rc, 0, "daemon exits 0 on SIGTERM")
    C.ok(dt < 10, "SIGTERM with a 60 s long poll pending: exit within 10 s (%.2f s)" % dt)
    try:
        data = sk.recv(4096)
    except OSError as e:
        data = ("error %s" % e).encode()
    sk.close()
    log("  (pending long poll got: %r)" % data[:100])


def main():
    install_signal_exit(C, 300)
    with Daemon("bad", auth_fail_delay_ms=200) as d:
        try:
            d.make_vms(["bi-a", "bi-b"])
            d.start()
        except Exception as e:  # noqa: BLE001
            C.ok(False, "daemon starts with test VMs", str(e))
            return C.finish()
        x = XenAPI(d.http)
        S["s"] = x.login()
        S["a"] = x.call("VM.get_by_uuid", S["s"], d.vms["bi-a"])
        S["b"] = x.call("VM.get_by_uuid", S["s"], d.vms["bi-b"])
        probe = LatencyProbe(d.http)
        probe.start()
        ctx = Ctx(d, probe)
        if not wait_for_probe(probe):
            C.ok(False, "latency probe works", repr(probe.samples[:3]))
        for name, fn in (("envelopes", c_envelopes), ("malformed", c_malformed), ("huge", c_huge),
                         ("nesting", c_nesting), ("wide", c_wide), ("types", c_types),
                         ("dispatch", c_dispatch), ("utf8", c_utf8), ("slowloris", c_slowloris),
                         ("idle", c_idle), ("vanish", c_vanish), ("long-polls", c_longpolls),
                         ("storm", c_storm),
                         ("broken-http", c_broken_http)):
            case(ctx, name, fn)
            if not d.alive():
                log("daemon died; log tail:\n" + d.log_tail(60))
                break
        worst, n, errors = probe.report_since(0)
        probe.stop()
        log("latency probe: %d calls, worst %.3f s" % (n, worst))
        C.ok(d.alive(), "daemon still running at the end", d.log_tail())
        if d.alive():
            C.section("shutdown", final_shutdown, d)
        if C.failed:
            log("---- daemon log (tail)\n" + d.log_tail(60))
    return C.finish()


def wait_for_probe(probe):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with probe.lock:
            if any(e is None for _, _, e in probe.samples):
                return True
        time.sleep(0.05)
    return False


if __name__ == "__main__":
    sys.exit(main())
