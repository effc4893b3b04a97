#!/usr/bin/env python3
"""xcpd's metrics handlers against the sim driver, read as clients read
them: /rrd_updates as Xen Orchestra asks for it (cf=AVERAGE&host=true&
interval=5&json=true&start=...) parsed with json, and in XAPI's xport XML
parsed with ElementTree (legend "AVERAGE:host:<uuid>:cpu0", rows and
columns that match the data); /host_rrd and /vm_rrd (XAPI's RRD XML:
step 5, XAPI's ten archives and their rows); /metrics in Prometheus' text
format (checked by promtool when installed); and the refusals (400
without start or uuid, 401 without credentials, 404 for an unknown VM).
Usage: test_metrics.py PATH-TO-XCPD. Exit 0 when every test passed."""

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_xcpd import (FAILED, PASSWORD, Daemon, check, login, post,  # noqa
                       run, value, xml_call)


def call(conn, method, *args):
    r, body = post(conn, "/", xml_call(method, *args))
    return value(body)


def get(d, path, headers=None):
    c = d.tcp()
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


class Setup:
    def __init__(self):
        self.d = Daemon()
        c = self.d.unix()
        self.s = s = login(c)
        self.host = call(c, "host.get_all", s)[0]
        self.host_uuid = call(c, "host.get_uuid", s, self.host)
        tmpl = call(c, "VM.get_by_name_label", s, "Debian Bookworm 12")[0]
        self.vm = call(c, "VM.clone", s, tmpl, "metrics-vm")
        call(c, "VM.provision", s, self.vm)
        call(c, "VM.start", s, self.vm, False, False)
        self.vm_uuid = call(c, "VM.get_uuid", s, self.vm)
        # wait for the VM's first PDP (a 5 s boundary after its first sample)
        deadline = time.time() + 15
        while time.time() < deadline:
            r, body = post(c, "/", xml_call("VM.query_data_source", s,
                                            self.vm, "memory"))
            res = __import__("xmlrpc.client").client.loads(body)[0][0]
            if res["Status"] == "Success" and res["Value"] == res["Value"] \
                    and res["Value"] > 0:
                break
            time.sleep(0.2)
        self.c = c


def t_rrd_updates_json(st):
    start = int(time.time()) - 300
    r, body = get(st.d, "/rrd_updates?cf=AVERAGE&host=true&interval=5&"
                  "json=true&start=%d&session_id=%s" % (start, st.s))
    check(r.status == 200, "status %d: %r" % (r.status, body[:200]))
    check(r.getheader("Content-Type") == "application/json",
          r.getheader("Content-Type"))
    doc = json.loads(body)
    meta = doc["meta"]
    legend = meta["legend"]
    check(int(meta["step"]) == 5, "step %r" % meta["step"])
    check(int(meta["columns"]) == len(legend), "columns")
    check(int(meta["rows"]) == len(doc["data"]), "rows")
    check(len(doc["data"]) >= 1, "no rows")
    check("AVERAGE:host:%s:cpu0" % st.host_uuid in legend, legend[:5])
    check("AVERAGE:host:%s:memory_total_kib" % st.host_uuid in legend,
          "no memory_total_kib")
    key = "AVERAGE:vm:%s:memory" % st.vm_uuid
    check(key in legend, "no %s" % key)
    for row in doc["data"]:
        check(len(row["values"]) == len(legend), "row width")
        check(int(row["t"]) <= int(meta["end"]), "row time")
    # newest first, as XAPI; the VM's memory is its allocation
    vals = [float(v) for v in doc["data"][0]["values"]]
    mem = vals[legend.index(key)]
    check(mem > 0 or mem != mem, "memory %r" % mem)
    check(int(doc["data"][0]["t"]) == int(meta["end"]), "first row is end")


def t_rrd_updates_xml(st):
    r, body = get(st.d, "/rrd_updates?start=-60&host=true&session_id=%s"
                  % st.s)
    check(r.status == 200, "status %d" % r.status)
    check(r.getheader("Content-Type") == "text/xml", "type")
    root = ET.fromstring(body)
    check(root.tag == "xport", root.tag)
    legend = [e.text for e in root.find("meta/legend")]
    rows = root.findall("data/row")
    check(int(root.find("meta/columns").text) == len(legend), "columns")
    check(int(root.find("meta/rows").text) == len(rows), "rows")
    for row in rows:
        check(len(row.findall("v")) == len(legend), "row width")
    # no cf: every consolidation of the finest archive (AVERAGE only)
    check(all(e.startswith("AVERAGE:") for e in legend), legend[:3])
    check(any(e.startswith("AVERAGE:vm:%s:" % st.vm_uuid) for e in legend),
          "no VM")
    # vm_uuid= restricts to that VM (and host=false leaves the host out)
    r, body = get(st.d, "/rrd_updates?start=-60&vm_uuid=%s&session_id=%s"
                  % (st.vm_uuid, st.s))
    legend = [e.text for e in ET.fromstring(body).find("meta/legend")]
    check(legend and all(":vm:%s:" % st.vm_uuid in e for e in legend),
          legend[:3])


def t_rrd_updates_coarse(st):
    """interval=3600 picks the hourly archives, AVERAGE, MIN and MAX."""
    r, body = get(st.d, "/rrd_updates?start=-86400&interval=3600&host=true&"
                  "json&session_id=%s" % st.s)
    check(r.status == 200, "status %d" % r.status)
    meta = json.loads(body)["meta"]
    check(int(meta["step"]) == 3600, meta["step"])
    cfs = {e.split(":")[0] for e in meta["legend"]}
    check(cfs == {"AVERAGE", "MIN", "MAX"}, cfs)


def t_refusals(st):
    r, _ = get(st.d, "/rrd_updates?host=true&session_id=%s" % st.s)
    check(r.status == 400, "no start: %d" % r.status)
    r, _ = get(st.d, "/rrd_updates?start=0&host=true")
    check(r.status == 401, "no session: %d" % r.status)
    check(r.getheader("WWW-Authenticate") is not None, "no challenge")
    r, _ = get(st.d, "/rrd_updates?start=0&session_id=OpaqueRef:bogus")
    check(r.status == 401, "bad session: %d" % r.status)
    r, _ = get(st.d, "/vm_rrd?session_id=%s" % st.s)
    check(r.status == 400, "no uuid: %d" % r.status)
    r, _ = get(st.d, "/vm_rrd?uuid=00000000-0000-0000-0000-00000000abcd&"
               "session_id=%s" % st.s)
    check(r.status == 404, "unknown VM: %d" % r.status)
    r, _ = get(st.d, "/metrics")
    check(r.status == 401, "metrics without credentials: %d" % r.status)


def check_rrd_xml(body, want_ds):
    root = ET.fromstring(body)
    check(root.tag == "rrd", root.tag)
    check(root.find("step").text == "5", "step")
    names = [d.find("name").text for d in root.findall("ds")]
    for n in want_ds:
        check(n in names, "no ds %s in %s" % (n, names[:6]))
    rras = root.findall("rra")
    shape = [(a.find("cf").text, int(a.find("pdp_per_row").text),
              len(a.findall("database/row"))) for a in rras]
    check(shape[0] == ("AVERAGE", 1, 120), shape[0])
    check(("MAX", 720, 168) in shape and ("MIN", 17280, 366) in shape,
          shape)
    for a in rras:
        for row in a.findall("database/row")[:3]:
            check(len(row.findall("v")) == len(names), "row width")


def t_host_rrd(st):
    auth = base64.b64encode(b"root:" + PASSWORD.encode()).decode()
    r, body = get(st.d, "/host_rrd", {"Authorization": "Basic " + auth})
    check(r.status == 200, "status %d" % r.status)
    check_rrd_xml(body, ["cpu0", "cpu_avg", "memory_free_kib", "loadavg"])
    r, body = get(st.d, "/host_rrd?json=true&session_id=%s" % st.s)
    doc = json.loads(body)
    check(doc["step"] == "5" and len(doc["rra"]) == 10, "json rrd")


def t_vm_rrd(st):
    r, body = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (st.vm_uuid, st.s))
    check(r.status == 200, "status %d" % r.status)
    check_rrd_xml(body, ["memory", "memory_target", "cpu0"])


def t_metrics(st):
    r, body = get(st.d, "/metrics?session_id=%s" % st.s)
    check(r.status == 200, "status %d" % r.status)
    text = body.decode()
    check(r.getheader("Content-Type").startswith("text/plain"), "type")
    check("# TYPE xcp_host_cpu gauge" in text, text[:300])
    check('xcp_host_cpu{host="%s",cpu="0"} ' % st.host_uuid in text,
          "no host cpu0")
    check('xcp_vm_memory{vm="%s"} ' % st.vm_uuid in text, "no vm memory")
    check('xcp_host_pif_rx{host="%s",pif="eth0"} ' % st.host_uuid in text,
          "no pif")
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=body,
                           capture_output=True)
        # promtool's lint only warns about names without unit suffixes
        check(p.returncode in (0, 3) and b"error" not in p.stderr.lower(),
              "promtool: %r %r" % (p.returncode, p.stderr[:300]))
        print("promtool check metrics: exit %d" % p.returncode)
    else:
        print("promtool not installed: format not checked by it")


def t_rrd_updates_1000_rows_parse_fast(st):
    """A client's full poll: parse time recorded, not asserted."""
    t0 = time.time()
    r, body = get(st.d, "/rrd_updates?cf=AVERAGE&host=true&interval=5&"
                  "json=true&start=%d&session_id=%s"
                  % (int(time.time()) - 300, st.s))
    json.loads(body)
    print("rrd_updates (1 VM, 5 min): %d bytes, %.1f ms"
          % (len(body), (time.time() - t0) * 1000))


def t_jsonrpc_unbounded_max(st):
    """Over JSON-RPC an unbounded max is Infinity as XAPI (rpclib over
    Yojson) writes it, not null (which clients read as 0); min 0 stays
    0.0; XML-RPC's figure is the same float."""
    r, body = post(st.c, "/jsonrpc", json.dumps({
        "jsonrpc": "2.0", "method": "host.get_data_sources",
        "params": [st.s, st.host], "id": 1}).encode())
    check(b'"max":Infinity' in body, body[:300])
    check(b'"max":null' not in body, "null max")
    res = json.loads(body)["result"]
    cpu = [d for d in res if d["name_label"] == "cpu0"]
    check(len(cpu) == 1, [d["name_label"] for d in res])
    check(cpu[0]["max"] == 1.0 and cpu[0]["min"] == 0.0, cpu[0])
    mem = [d for d in res if d["name_label"] == "memory_total_kib"]
    check(len(mem) == 1 and mem[0]["max"] == float("inf"), mem)


def t_sr_data_sources(st):
    """The host's per-SR figures (XAPI's iostat names) in /rrd_updates,
    /host_rrd (ABSOLUTE, as rrdp-iostat) and /metrics (label sr)."""
    c = st.c
    vbd = call(c, "VM.get_VBDs", st.s, st.vm)
    vdis = [call(c, "VBD.get_VDI", st.s, b) for b in vbd]
    vdis = [v for v in vdis if v != "OpaqueRef:NULL"]
    check(vdis, "VM has no disk")
    sr8 = call(c, "SR.get_uuid", st.s,
               call(c, "VDI.get_SR", st.s, vdis[0]))[:8]
    key = "AVERAGE:host:%s:io_throughput_read_%s" % (st.host_uuid, sr8)
    deadline = time.time() + 15
    while True:
        r, body = get(st.d, "/rrd_updates?cf=AVERAGE&host=true&interval=5&"
                      "json=true&start=%d&session_id=%s"
                      % (int(time.time()) - 60, st.s))
        doc = json.loads(body)
        legend = doc["meta"]["legend"]
        if key in legend and doc["data"] and \
                float(doc["data"][0]["values"][legend.index(key)]) > 0:
            break
        if time.time() > deadline:
            check(False, "no %s > 0 in %r" % (key, legend[-12:]))
            return
        time.sleep(0.5)
    for n in ("io_throughput_write_", "io_throughput_total_", "iops_read_",
              "iops_write_", "iops_total_"):
        check("AVERAGE:host:%s:%s%s" % (st.host_uuid, n, sr8) in legend, n)
    r, body = get(st.d, "/host_rrd?session_id=%s" % st.s)
    root = ET.fromstring(body)
    types = {d.findtext("name"): d.findtext("type") for d in root.iter("ds")
             if d.findtext("name")}
    check(types.get("iops_read_" + sr8) == "ABSOLUTE", types)
    r, body = get(st.d, "/metrics?session_id=%s" % st.s)
    check(('xcp_host_io_throughput_read{host="%s",sr="%s"} '
           % (st.host_uuid, sr8)) in body.decode(), "no sr in /metrics")


def put(d, path, body, headers=None):
    c = d.tcp()
    c.request("PUT", path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def rows_of(body):
    root = ET.fromstring(body)
    names = [x.findtext("name") for x in root.findall("ds")]
    return names, [[[v.text for v in row.findall("v")]
                    for row in a.findall("database/row")]
                   for a in root.findall("rra")]


def t_put_rrd(st):
    """PUT /rrd as XAPI's hosts send a moving VM's RRD: to archive for a
    VM not running here (GET /vm_rrd then serves it), or replacing the
    one in memory of a running VM; and XAPI's refusals."""
    c = st.d.unix()
    s = st.s
    r, body = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (st.vm_uuid, s))
    check(r.status == 200, "get %d" % r.status)
    tmpl = call(c, "VM.get_by_name_label", s, "Debian Bookworm 12")[0]
    vm2 = call(c, "VM.clone", s, tmpl, "rrd-moved-here")
    u2 = call(c, "VM.get_uuid", s, vm2)
    r, _ = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (u2, s))
    check(r.status == 404, "no RRD before: %d" % r.status)
    r, out = put(st.d, "/rrd?uuid=%s&archive=true&session_id=%s" % (u2, s),
                 body)
    check(r.status == 200, "archive put %d %r" % (r.status, out[:200]))
    r, back = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (u2, s))
    check(r.status == 200, "get archived %d" % r.status)
    check(rows_of(back) == rows_of(body), "archived RRD differs")
    # a running VM's RRD replaced: a sentinel in its oldest daily row
    root = ET.fromstring(body)
    names = [x.findtext("name") for x in root.findall("ds")]
    col = names.index("memory")
    daily = [a for a in root.findall("rra")
             if a.findtext("pdp_per_row") == "17280"][0]
    daily.findall("database/row")[0].findall("v")[col].text = "12345678"
    doc = ET.tostring(root)
    r, out = put(st.d, "/rrd?uuid=%s&session_id=%s" % (st.vm_uuid, s), doc,
                 {"Content-Type": "text/xml"})
    check(r.status == 200, "replace put %d %r" % (r.status, out[:200]))
    r, now = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (st.vm_uuid, s))
    n2, rows = rows_of(now)
    daily_i = [i for i, a in enumerate(ET.fromstring(now).findall("rra"))
               if a.findtext("pdp_per_row") == "17280"][0]
    check(rows[daily_i][0][n2.index("memory")] == "12345678",
          "sentinel not there: %r" % rows[daily_i][0][:4])
    # refusals, as XAPI's put_rrd_forwarder
    r, _ = put(st.d, "/rrd?session_id=%s" % s, body)
    check(r.status == 400, "no uuid: %d" % r.status)
    r, _ = put(st.d, "/rrd?uuid=00000000-0000-0000-0000-00000000abcd&"
               "session_id=%s" % s, body)
    check(r.status == 404, "unknown uuid: %d" % r.status)
    r, out = put(st.d, "/rrd?uuid=%s&archive=true&session_id=%s"
                 % (st.host_uuid, s), body)
    check(r.status == 400 and b"cannot archive host RRD" in out,
          "host archive: %d %r" % (r.status, out))
    r, out = put(st.d, "/rrd?uuid=%s&session_id=%s" % (u2, s),
                 b"<rrd><step>5</step></rrd>")
    check(r.status == 400 and b"INVALID_VALUE" in out,
          "bad body: %d %r" % (r.status, out))
    r, _ = put(st.d, "/rrd?uuid=%s" % u2, body)
    check(r.status == 401, "no credentials: %d" % r.status)
    r, back2 = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (u2, s))
    check(rows_of(back2) == rows_of(body), "a refused put changed the RRD")


def put_until_close(d, path, body, cookie=None):
    """PUT as XAPI's rrdd sends an RRD (send_rrd): no Content-Length, the
    200 awaited before the body, the end of the body is the close."""
    import socket
    c = socket.create_connection(("127.0.0.1", d.http), timeout=10)
    head = "PUT %s HTTP/1.1\r\nHost: localhost\r\n" % path
    if cookie:
        head += "Cookie: %s\r\n" % cookie
    c.sendall((head + "\r\n").encode())
    got = b""
    while b"\r\n\r\n" not in got:
        x = c.recv(4096)
        if not x:
            break
        got += x
    status = got.split(b"\r\n", 1)[0]
    if b" 200 " in status:
        c.sendall(body)
        c.shutdown(socket.SHUT_WR)
        while c.recv(4096):
            pass
    c.close()
    return status


def t_put_rrd_no_length(st):
    """XAPI's sender: 200 before the body, body until the close, with a
    session or with the pool_secret cookie (a host of the pool); a wrong
    secret or a cut body changes nothing."""
    c = st.d.unix()
    s = st.s
    r, body = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (st.vm_uuid, s))
    check(r.status == 200, "get %d" % r.status)
    tmpl = call(c, "VM.get_by_name_label", s, "Debian Bookworm 12")[0]
    u3 = call(c, "VM.get_uuid", s, call(c, "VM.clone", s, tmpl, "rrd-nolen"))
    u4 = call(c, "VM.get_uuid", s, call(c, "VM.clone", s, tmpl, "rrd-psec"))
    status = put_until_close(
        st.d, "/rrd?uuid=%s&archive=true&session_id=%s" % (u3, s), body)
    check(status.startswith(b"HTTP/1.1 200"), "status %r" % status)
    back = None
    for _ in range(50):  # read after the close: a moment later
        r, back = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (u3, s))
        if r.status == 200:
            break
        time.sleep(0.1)
    check(r.status == 200, "no archived RRD: %d" % r.status)
    check(rows_of(back) == rows_of(body), "archived RRD differs")
    # the pool secret instead of a session
    secret = "ab" * 32
    with open(os.path.join(st.d.state, "pool-secret"), "w") as f:
        f.write(secret + "\n")
    try:
        status = put_until_close(st.d, "/rrd?uuid=%s&archive=true" % u4,
                                 body, cookie="pool_secret=" + "cd" * 32)
        check(status.startswith(b"HTTP/1.1 200"), "status %r" % status)
        time.sleep(0.5)
        r, _ = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (u4, s))
        check(r.status == 404, "a wrong secret archived: %d" % r.status)
        # with a length, the wrong secret is answered 401
        r, _ = put(st.d, "/rrd?uuid=%s&archive=true" % u4, body,
                   {"Cookie": "pool_secret=" + "cd" * 32})
        check(r.status == 401, "wrong secret: %d" % r.status)
        status = put_until_close(st.d, "/rrd?uuid=%s&archive=true" % u4,
                                 body, cookie="pool_secret=" + secret)
        check(status.startswith(b"HTTP/1.1 200"), "status %r" % status)
        for _ in range(50):
            r, back = get(st.d, "/vm_rrd?uuid=%s&session_id=%s" % (u4, s))
            if r.status == 200:
                break
            time.sleep(0.1)
        check(r.status == 200 and rows_of(back) == rows_of(body),
              "pool secret put: %d" % r.status)
    finally:
        os.unlink(os.path.join(st.d.state, "pool-secret"))


def main():
    st = Setup()
    try:
        run("rrd_updates_json_as_xen_orchestra", lambda: t_rrd_updates_json(st))
        run("rrd_updates_xml_and_vm_filter", lambda: t_rrd_updates_xml(st))
        run("rrd_updates_hourly_archives", lambda: t_rrd_updates_coarse(st))
        run("refusals_400_401_404", lambda: t_refusals(st))
        run("host_rrd_xml_and_json", lambda: t_host_rrd(st))
        run("vm_rrd_xml", lambda: t_vm_rrd(st))
        run("put_rrd_archive_replace_and_refusals", lambda: t_put_rrd(st))
        run("put_rrd_without_length_as_xapi_hosts",
            lambda: t_put_rrd_no_length(st))
        run("metrics_prometheus_text", lambda: t_metrics(st))
        run("sr_data_sources", lambda: t_sr_data_sources(st))
        run("jsonrpc_unbounded_max_infinity",
            lambda: t_jsonrpc_unbounded_max(st))
        run("rrd_updates_timing", lambda: t_rrd_updates_1000_rows_parse_fast(st))
    finally:
        rc = st.d.stop()
    run("sigterm_exit_0", lambda: check(rc == 0, "exit %d" % rc))
    print("%d failed" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
