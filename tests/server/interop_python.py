#!/usr/bin/python3
"""Interop: Python's standard xmlrpc.client (as XenAPI.py uses it) against
xcpd over HTTP, HTTPS and the unix socket.

Per transport: login, VM.get_all_records, VM.start (sync), Async.VM.start
polled through task.get_record, Async.VM.clone whose task.result is an
XML-RPC <value> fragment, event.from (initial dump, a VM.set_name_label
arriving as a mod, a long poll woken by a change, a timeout with nothing),
errors (VM_BAD_POWER_STATE, HANDLE_INVALID), session.logout then
SESSION_INVALID, a logout waking a blocked event.from. Then once:
system.listMethods bare, login arities, and a bad password answered after
the configured delay while other clients are served meanwhile.
"""

import os
import re
import sys
import threading
import time
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Daemon, Failure, XenAPI, describe,  # noqa: E402
                     expect_failure, failure_is, http_post, install_signal_exit,
                     json_body, json_result, log, PASSWORD, USER)

AUTH_DELAY_MS = 1000      # --auth-fail-delay for this test
TRANSPORTS = ("http", "https", "unix")

C = Checks("interop_python")


def vm_ref_by_name(x, s, name):
    refs = x.call("VM.get_by_name_label", s, name)
    assert len(refs) == 1, "VM %s: %r" % (name, refs)
    return refs[0]


def wait_task(x, s, task, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        rec = x.call("task.get_record", s, task)
        if rec["status"] != "pending":
            return rec
        if time.monotonic() > deadline:
            return rec
        time.sleep(0.05)


def call_in_background(addr, key, method, *args):
    """Run one call from a thread of its own, on its own connection: its
    result lands in box[key] (or its exception in box["err"]) and its
    duration in box["dt"]. Returns (box, thread)."""
    box = {}

    def run():
        y = XenAPI(addr)
        t1 = time.monotonic()
        try:
            box[key] = y.call(method, *args)
        except Exception as e:  # noqa: BLE001
            box["err"] = e
        box["dt"] = time.monotonic() - t1

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return box, th


def as_user(uid, fn):
    """Run fn() in a child process with uid/gid `uid`; returns
    'ok <result>', 'failure <CODE> ...' or 'exc <exception>'."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgid(uid)
            os.setuid(uid)
            try:
                msg = "ok %s" % (fn(),)
            except Failure as f:
                msg = "failure %s" % " ".join(f.desc)
            except Exception as e:  # noqa: BLE001
                msg = "exc %s: %s" % (type(e).__name__, e)
            os.write(w, msg.encode("utf-8", "replace"))
        finally:
            os._exit(0)
    os.close(w)
    out = b""
    while True:
        part = os.read(r, 4096)
        if not part:
            break
        out += part
    os.close(r)
    os.waitpid(pid, 0)
    return out.decode("utf-8", "replace")


def scenario(d, kind):
    addr = {"http": d.http, "https": d.https, "unix": d.unix}[kind]
    t = "[%s] " % kind
    if addr is None:
        C.ok(False, t + "daemon reported a listener for this transport")
        return
    x = XenAPI(addr)
    s = x.login()
    C.ok(isinstance(s, str) and s.startswith("OpaqueRef:"), t + "login returns a session ref", repr(s))

    # --- records
    recs = x.call("VM.get_all_records", s)
    names = {r["name_label"]: (ref, r) for ref, r in recs.items()}
    a, b, c = ("%s-a" % kind, "%s-b" % kind, "%s-c" % kind)
    C.ok(all(n in names for n in (a, b, c)), t + "VM.get_all_records lists the test VMs",
         repr(sorted(names)))
    if not all(n in names for n in (a, b, c)):
        return
    ra, rec_a = names[a]
    rb, _ = names[b]
    rc, _ = names[c]
    C.ok(all(k.startswith("OpaqueRef:") for k in recs), t + "record keys are OpaqueRefs")
    C.eq(rec_a["uuid"], d.vms[a], t + "VM uuid matches xe vm-install's")
    C.eq(rec_a["power_state"], "Halted", t + "power_state Halted (enum, datamodel case)")
    C.ok(isinstance(rec_a["memory_static_max"], str) and re.fullmatch(r"\d+", rec_a["memory_static_max"])
         and int(rec_a["memory_static_max"]) > 0,
         t + "memory_static_max is an untyped decimal string (XML-RPC int64)", repr(rec_a["memory_static_max"]))
    C.ok(rec_a["is_a_template"] is False and rec_a["is_control_domain"] is False,
         t + "booleans decode as <boolean>", repr((rec_a["is_a_template"], rec_a["is_control_domain"])))
    C.ok(isinstance(rec_a["VBDs"], list) and isinstance(rec_a["other_config"], dict),
         t + "sets are arrays, maps are structs")
    C.ok(isinstance(rec_a.get("memory_dynamic_max"), str) and isinstance(rec_a.get("VCPUs_max"), str),
         t + "other int fields are strings too")

    # --- event.from initial dump (token "") and token use
    ev = x.call("event.from", s, ["vm"], "", 5.0)
    C.ok(isinstance(ev, dict) and {"events", "valid_ref_counts", "token"} <= set(ev),
         t + "event.from returns events, valid_ref_counts, token", repr(sorted(ev) if isinstance(ev, dict) else ev))
    token = ev["token"]
    adds = {e["ref"]: e for e in ev["events"]}
    C.ok(ra in adds and adds[ra]["operation"] == "add" and adds[ra]["class"] == "vm"
         and adds[ra]["snapshot"]["name_label"] == a,
         t + "event.from \"\" reports every VM as add with class 'vm' and a snapshot",
         repr(adds.get(ra))[:300])
    vrc = ev["valid_ref_counts"]
    C.ok(isinstance(vrc, dict) and isinstance(vrc.get("vm"), int) and vrc["vm"] >= 3
         and isinstance(vrc.get("task"), int),
         t + "valid_ref_counts has int counts for vm and task", repr(vrc)[:300])
    C.ok(isinstance(token, str) and re.fullmatch(r"\d{20},\d{20}", token or ""),
         t + "token is two 20-digit numbers", repr(token))

    # --- sync start
    r = x.call("VM.start", s, ra, False, False)
    C.ok(r == "", t + "VM.start (sync) returns void ''", repr(r))
    C.eq(x.call("VM.get_power_state", s, ra), "Running", t + "VM A Running after sync start")

    # the change arrives in the next event.from
    ev = x.call("event.from", s, ["vm"], token, 5.0)
    mods = [e for e in ev["events"] if e["ref"] == ra]
    C.ok(mods and mods[-1]["operation"] == "mod" and mods[-1]["class"] == "vm"
         and mods[-1]["snapshot"]["power_state"] == "Running",
         t + "power_state change arrives as a vm mod event", repr(mods)[:300])
    token = ev["token"]

    # --- async start, polled
    task = x.call("Async.VM.start", s, rb, False, False)
    C.ok(isinstance(task, str) and task.startswith("OpaqueRef:"), t + "Async.VM.start returns a task ref", repr(task))
    rec = wait_task(x, s, task)
    C.eq(rec["status"], "success", t + "Async.VM.start task succeeds")
    C.ok(rec["result"] in ("", "<value></value>", "<value/>"),
         t + "void task.result is '' or an empty <value>", repr(rec["result"]))
    C.ok(isinstance(rec["progress"], float) and rec["progress"] == 1.0,
         t + "finished task progress is the <double> 1.0", repr(rec["progress"]))
    C.ok(isinstance(rec["created"], xmlrpc.client.DateTime)
         and re.fullmatch(r"\d{8}T\d\d:\d\d:\d\dZ", rec["created"].value)
         and isinstance(rec["finished"], xmlrpc.client.DateTime) and rec["finished"].value >= rec["created"].value,
         t + "task created/finished are <dateTime.iso8601> YYYYMMDDTHH:MM:SSZ",
         repr((rec["created"], rec["finished"])))
    C.ok(rec["error_info"] == [], t + "successful task has empty error_info", repr(rec["error_info"]))
    C.eq(x.call("VM.get_power_state", s, rb), "Running", t + "VM B Running after async start")
    C.ok(x.call("task.destroy", s, task) == "", t + "task.destroy")
    f = expect_failure(x.call, "task.get_record", s, task)
    C.ok(failure_is(f, "HANDLE_INVALID", ["task", task]), t + "destroyed task: HANDLE_INVALID [task, ref]", describe(f))

    # --- async call returning a ref: task.result is <value>OpaqueRef:..</value>
    task = x.call("Async.VM.clone", s, rc, kind + "-clone")
    rec = wait_task(x, s, task)
    C.eq(rec["status"], "success", t + "Async.VM.clone task succeeds")
    m = re.fullmatch(r"<value>(OpaqueRef:[^<]+)</value>", rec["result"] or "")
    C.ok(m, t + "task.result is an XML-RPC <value>OpaqueRef:...</value> fragment", repr(rec["result"]))
    if m:
        C.eq(x.call("VM.get_name_label", s, m.group(1)), kind + "-clone", t + "task.result ref is the clone")
    x.call("task.destroy", s, task)

    # valid_ref_counts: exact live counts for every class, not only the subscribed one
    ev = x.call("event.from", s, ["vm"], token, 0.1)
    vrc = ev["valid_ref_counts"]
    want = {"vm": len(x.call("VM.get_all", s)), "task": len(x.call("task.get_all", s)),
            "host": len(x.call("host.get_all", s)), "sr": len(x.call("SR.get_all", s)),
            "vbd": len(x.call("VBD.get_all", s)), "pool": 1}
    C.ok(all(vrc.get(k) == v for k, v in want.items()),
         t + "valid_ref_counts: exact counts for vm, task, host, sr, vbd, pool (lower-case keys)",
         "want %r, got %r" % (want, {k: vrc.get(k) for k in want}))

    # deletion: a del event without snapshot; created and deleted in between: nothing
    tok0 = x.call("event.from", s, ["vm"], "", 0.1)["token"]
    tmp = x.call("VM.clone", s, rc, kind + "-tmp")
    tok1 = x.call("event.from", s, ["vm"], tok0, 5.0)["token"]
    x.call("VM.destroy", s, tmp)
    ev = x.call("event.from", s, ["vm"], tok1, 5.0)
    dels = [e for e in ev["events"] if e["ref"] == tmp]
    C.ok(len(dels) == 1 and dels[0]["operation"] == "del" and "snapshot" not in dels[0] and dels[0]["class"] == "vm",
         t + "VM.destroy arrives as a vm del event without a snapshot member", repr(dels)[:300])
    tmp = x.call("VM.clone", s, rc, kind + "-tmp2")
    x.call("VM.destroy", s, tmp)
    ev = x.call("event.from", s, ["vm"], ev["token"], 0.5)
    C.ok(not [e for e in ev["events"] if e["ref"] == tmp],
         t + "an object created and destroyed between two event.from calls is not reported",
         repr([e for e in ev["events"] if e["ref"] == tmp])[:300])

    # --- a change arrives in the next event.from (class/operation/snapshot)
    ev = x.call("event.from", s, ["vm"], token, 5.0)
    token = ev["token"]
    x.call("VM.set_name_label", s, rc, kind + "-renamed")
    ev = x.call("event.from", s, ["vm"], token, 5.0)
    got = [e for e in ev["events"] if e["ref"] == rc]
    C.ok(len(got) == 1 and got[0]["class"] == "vm" and got[0]["operation"] == "mod"
         and got[0]["snapshot"]["name_label"] == kind + "-renamed"
         and got[0]["snapshot"]["uuid"] == d.vms[c],
         t + "VM.set_name_label arrives as one vm mod with the new snapshot", repr(got)[:400])
    C.ok(all(e["class"] == "vm" for e in ev["events"]), t + "only subscribed classes reported",
         repr({e["class"] for e in ev["events"]}))
    C.ok(all(isinstance(e.get("id"), str) for e in got), t + "event id is a string", repr([e.get("id") for e in got]))
    token = ev["token"]

    # --- nothing changes: the long poll returns empty at its timeout
    t0 = time.monotonic()
    ev = x.call("event.from", s, ["vm"], token, 1.0)
    dt = time.monotonic() - t0
    C.ok(ev["events"] == [] and 0.8 <= dt <= 4.0,
         t + "event.from with no change returns no events after its 1 s timeout",
         "%d events after %.2f s" % (len(ev["events"]), dt))
    token = ev["token"]

    # --- a blocked long poll is woken by a change from another client
    box, th = call_in_background(addr, "ev", "event.from", s, ["vm"], token, 20.0)
    time.sleep(0.5)
    x.call("VM.set_name_description", s, rc, "woken")
    th.join(25)
    evs = box.get("ev", {}).get("events", []) if "ev" in box else []
    C.ok("ev" in box and box["dt"] < 3.0 and any(e["ref"] == rc and e["snapshot"]["name_description"] == "woken"
                                                   for e in evs),
         t + "blocked event.from (20 s) woken by another client's change",
         "dt=%r err=%r events=%r" % (box.get("dt"), box.get("err"), evs[:2]))

    # --- one-object subscription, '*', event.inject
    ev = x.call("event.from", s, ["vm/" + rc], "", 5.0)
    C.ok([e["ref"] for e in ev["events"]] == [rc], t + "event.from [vm/<ref>] reports that VM only",
         repr([e["ref"] for e in ev["events"]]))
    ev = x.call("event.from", s, ["*"], "", 5.0)
    classes = {e["class"] for e in ev["events"]}
    C.ok({"vm", "pool", "host", "sr"} <= classes, t + "event.from [*] reports every class (lower case)",
         repr(sorted(classes)))
    pool = x.call("pool.get_all", s)[0]
    tok = x.call("event.inject", s, "pool", pool)
    ev = x.call("event.from", s, ["pool"], tok, 5.0)
    C.ok(any(e["ref"] == pool and e["operation"] == "mod" and e["class"] == "pool" for e in ev["events"]),
         t + "event.inject(pool) token: next event.from has a pool mod", repr(ev["events"])[:200])
    f = expect_failure(x.call, "event.inject", s, "pool", "OpaqueRef:NULL")
    C.ok(failure_is(f, "HANDLE_INVALID", ["pool", "OpaqueRef:NULL"]),
         t + "event.inject of a bad ref: HANDLE_INVALID [pool, ref]", describe(f))

    # --- map fields: XO removes before adding, so removing a missing key succeeds
    key = "interop-" + kind
    C.ok(x.call("VM.remove_from_other_config", s, rc, key) == "", t + "remove_from_other_config of a missing key is a no-op")
    x.call("VM.add_to_other_config", s, rc, key, "1")
    f = expect_failure(x.call, "VM.add_to_other_config", s, rc, key, "2")
    C.ok(failure_is(f, "MAP_DUPLICATE_KEY", ["VM", "other_config", d.vms[c], key]),
         t + "add_to_other_config of an existing key: MAP_DUPLICATE_KEY [VM, other_config, uuid, key]", describe(f))
    C.eq(x.call("VM.get_other_config", s, rc).get(key), "1", t + "map value kept")

    # --- errors
    f = expect_failure(x.call, "VM.start", s, ra, False, False)
    C.ok(failure_is(f, "VM_BAD_POWER_STATE") and f.params[:1] == [ra]
         and f.params[1:] == ["halted", "running"],
         t + "VM.start on a running VM: VM_BAD_POWER_STATE [vm, halted, running]", describe(f))
    f = expect_failure(x.call, "VM.get_record", s, "OpaqueRef:NULL")
    C.ok(failure_is(f, "HANDLE_INVALID", ["VM", "OpaqueRef:NULL"]),
         t + "VM.get_record of NULL: HANDLE_INVALID [VM, OpaqueRef:NULL]", describe(f))

    # --- logout wakes a blocked event.from of that session with SESSION_INVALID
    s2 = x.login()
    tok2 = x.call("event.from", s2, ["vm"], "", 1.0)["token"]
    box, th = call_in_background(addr, "ev", "event.from", s2, ["vm"], tok2, 20.0)
    time.sleep(0.5)
    x.call("session.logout", s2)
    th.join(25)
    err = box.get("err")
    C.ok(isinstance(err, Failure) and err.code == "SESSION_INVALID" and box["dt"] < 3.0,
         t + "session.logout wakes its blocked event.from with SESSION_INVALID",
         "dt=%r got %r" % (box.get("dt"), err.desc if isinstance(err, Failure) else box))

    if kind == "unix":
        r = http_post(addr, "/jsonrpc", json_body("VM.get_all", [s]), "application/json")
        try:
            v = json_result(r)
            C.ok(isinstance(v, list) and ra in v, t + "JSON-RPC over the unix socket")
        except Exception as e:  # noqa: BLE001
            C.ok(False, t + "JSON-RPC over the unix socket", "%r %r" % (e, r))
        if os.getuid() == 0:
            try:
                s9 = x.login(USER, "not-the-password")
                C.ok(s9.startswith("OpaqueRef:"), t + "local root on the unix socket logs in without a password")
                x.call("session.logout", s9)
            except Failure as e:
                C.ok(False, t + "local root on the unix socket logs in without a password", describe(e))
            # a peer that is not root (socket opened up for the test) needs the password
            os.chmod(d.tmp, 0o755)
            os.chmod(addr[1], 0o666)
            got = as_user(65534, lambda: XenAPI(addr).login(USER, "not-the-password"))
            C.ok(got.startswith("failure SESSION_AUTHENTICATION_FAILED") or got.startswith("exc PermissionError"),
                 t + "non-root peer on the unix socket with a wrong password: SESSION_AUTHENTICATION_FAILED", got)
            got = as_user(65534, lambda: XenAPI(addr).login(USER, PASSWORD))
            C.ok(got.startswith("ok OpaqueRef:"), t + "non-root peer on the unix socket with the password logs in", got)
            os.chmod(addr[1], 0o600)
            os.chmod(d.tmp, 0o700)

    # --- logout, then SESSION_INVALID
    C.ok(x.call("session.logout", s) == "", t + "session.logout returns void")
    f = expect_failure(x.call, "VM.get_all", s)
    C.ok(failure_is(f, "SESSION_INVALID", [s]), t + "call after logout: SESSION_INVALID [session]", describe(f))
    f = expect_failure(x.call, "VM.get_all", "OpaqueRef:00000000-dead-beef-0000-000000000000")
    C.ok(failure_is(f, "SESSION_INVALID", ["OpaqueRef:00000000-dead-beef-0000-000000000000"]),
         t + "made-up session: SESSION_INVALID [ref]", describe(f))


def once(d):
    x = XenAPI(d.http)
    # system.listMethods: bare array (no Status/Value struct), no session
    lm = x.raw("system.listMethods")
    C.ok(isinstance(lm, list) and "VM.get_all_records" in lm and "pool.get_all_records" in lm
         and "task.get_all_records" in lm,
         "system.listMethods returns a bare array naming <Class>.get_all_records",
         repr(lm)[:200])
    C.ok(isinstance(lm, list) and all(not m.startswith("Async.") for m in lm) and "VM.start" in lm,
         "system.listMethods lists sync wire names", repr([m for m in (lm or []) if m.startswith("Async.")][:3]))

    # login arities: 2, 3 and 4 arguments; 1 is a count mismatch
    for extra in ((), ("1.1",), ("1.1", "interop-test")):
        try:
            s = x.login(USER, PASSWORD, *extra)
            C.ok(s.startswith("OpaqueRef:"), "login_with_password with %d args" % (2 + len(extra)))
            x.call("session.logout", s)
        except Failure as f:
            C.ok(False, "login_with_password with %d args" % (2 + len(extra)), describe(f))
    f = expect_failure(x.call, "session.login_with_password", USER)
    C.ok(failure_is(f, "MESSAGE_PARAMETER_COUNT_MISMATCH", ["session.login_with_password", "2", "1"]),
         "login_with_password with 1 arg: MESSAGE_PARAMETER_COUNT_MISMATCH [m, 2, 1]", describe(f))
    s = x.login()
    rec = x.call("session.get_record", s, s)
    C.ok(isinstance(rec, dict) and rec.get("uuid"), "session.get_record(s, s) works", repr(rec)[:200])

    # legacy event.register / event.next
    f = expect_failure(x.call, "event.next", s)
    C.ok(failure_is(f, "SESSION_NOT_REGISTERED"), "event.next before event.register: SESSION_NOT_REGISTERED",
         describe(f))
    x.call("event.register", s, ["vm"])
    vm = x.call("VM.get_by_name_label", s, "http-a")[0]
    x.call("VM.set_name_description", s, vm, "next-1")
    evs = x.call("event.next", s)
    C.ok(isinstance(evs, list) and any(e["class"] == "vm" and e["ref"] == vm and e["operation"] == "mod"
                                       for e in evs),
         "event.next after event.register returns the vm mod", repr(evs)[:300])
    box, th = call_in_background(d.http, "evs", "event.next", s)
    time.sleep(0.5)
    x.call("VM.set_name_description", s, vm, "next-2")
    th.join(15)
    C.ok(any(e["ref"] == vm and e["snapshot"]["name_description"] == "next-2" for e in box.get("evs", []))
         and box["dt"] < 3, "blocked event.next woken by a change",
         "dt=%r err=%r" % (box.get("dt"), box.get("err")))
    x.call("event.unregister", s, ["vm"])

    # bad password: SESSION_AUTHENTICATION_FAILED after ~the delay, while
    # other clients are answered without waiting.
    box = {}

    def bad(i):
        y = XenAPI(d.http)
        t1 = time.monotonic()
        try:
            y.login(USER, "wrong-password-%d" % i)
            box[i] = ("success", time.monotonic() - t1)
        except Failure as e:
            box[i] = (e, time.monotonic() - t1)
        except Exception as e:  # noqa: BLE001
            box[i] = ("exception %r" % e, time.monotonic() - t1)

    th = threading.Thread(target=bad, args=(0,), daemon=True)
    t0 = time.monotonic()
    th.start()
    time.sleep(0.05)
    lat = []
    while th.is_alive() and time.monotonic() - t0 < AUTH_DELAY_MS / 1000.0 * 0.7:
        t1 = time.monotonic()
        x.call("VM.get_all_records", s)
        lat.append(time.monotonic() - t1)
    served_before = th.is_alive()
    th.join(15)
    e, dt = box.get(0, (None, None))
    delay = AUTH_DELAY_MS / 1000.0
    C.ok(isinstance(e, Failure) and e.code == "SESSION_AUTHENTICATION_FAILED",
         "bad password: SESSION_AUTHENTICATION_FAILED", describe(e) if isinstance(e, Failure) else repr(e))
    C.ok(isinstance(e, Failure) and len(e.params) == 2 and e.params[0] == USER,
         "... with params [uname, reason]", describe(e) if isinstance(e, Failure) else repr(e))
    C.ok(dt is not None and delay * 0.9 <= dt <= delay + 2.0,
         "bad password answered after about the configured %.1f s delay" % delay, "took %r s" % dt)
    C.ok(len(lat) >= 2 and served_before and max(lat) < delay * 0.7,
         "another client's calls are answered during the delay",
         "%d calls, worst %.3f s, all before the failed login's answer: %s"
         % (len(lat), max(lat) if lat else -1, served_before))

    # several failed logins at once are delayed in parallel, not in turn
    box.clear()
    ths = [threading.Thread(target=bad, args=(i,), daemon=True) for i in range(1, 6)]
    t0 = time.monotonic()
    for th in ths:
        th.start()
    for th in ths:
        th.join(30)
    wall = time.monotonic() - t0
    codes = [v[0].code if isinstance(v[0], Failure) else v[0] for v in box.values()]
    C.ok(len(codes) == 5 and all(c == "SESSION_AUTHENTICATION_FAILED" for c in codes) and wall < delay * 2 + 1.0,
         "5 concurrent bad logins all fail after ~one delay (not queued)",
         "wall %.2f s, codes %r" % (wall, codes))
    # and the right password still works afterwards
    s3 = x.login()
    C.ok(s3.startswith("OpaqueRef:"), "good login after failed ones")
    # unknown user: same error
    f = expect_failure(x.login, "nobody", PASSWORD)
    C.ok(failure_is(f, "SESSION_AUTHENTICATION_FAILED"), "unknown user: SESSION_AUTHENTICATION_FAILED", describe(f))


def lifetimes():
    """--session-timeout and --session-limit on a second daemon."""
    with Daemon("py-life", extra_args=["--session-timeout", "2", "--session-limit", "3"]) as d:
        d.make_vms(["life"])
        d.start()
        x = XenAPI(d.http)
        idle = x.login()
        busy = x.login()
        other = x.login(USER, PASSWORD, "1.1", "other-client")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5.0:
            x.call("VM.get_all", busy)
            x.call("VM.get_all", other)
            time.sleep(0.4)
        f = expect_failure(x.call, "VM.get_all", idle)
        C.ok(failure_is(f, "SESSION_INVALID", [idle]),
             "--session-timeout 2: a session idle for 5 s is SESSION_INVALID", describe(f))
        f = expect_failure(x.call, "VM.get_all", busy)
        C.ok(f.code is None, "--session-timeout 2: a session used every 0.4 s stays valid", describe(f))
        ss = [x.login(USER, PASSWORD, "1.1", "churn") for _ in range(4)]
        codes = []
        for t in ss:
            codes.append(expect_failure(x.call, "VM.get_all", t).code)
        C.ok(codes == ["SESSION_INVALID", None, None, None],
             "--session-limit 3: a 4th session of one originator ends the least recently used", repr(codes))
        f = expect_failure(x.call, "VM.get_all", other)
        C.ok(f.code is None, "... sessions of another originator are not affected", describe(f))
        C.eq(d.stop(), 0, "second daemon exits 0 on SIGTERM")


def main():
    install_signal_exit(C, 300)
    with Daemon("py", auth_fail_delay_ms=AUTH_DELAY_MS) as d:
        try:
            d.make_vms(["%s-%s" % (k, n) for k in TRANSPORTS for n in "abc"])
            d.start()
        except Exception as e:  # noqa: BLE001
            C.ok(False, "daemon starts with test VMs", str(e))
            return C.finish()
        C.ok(d.unix is not None, "daemon reports its unix socket listener")
        for kind in TRANSPORTS:
            C.section("transport %s" % kind, scenario, d, kind)
        C.section("login, listMethods, failed logins", once, d)
        C.section("session lifetimes", lifetimes)
        C.ok(d.alive(), "daemon still running", d.log_tail())
        rc = d.stop()
        C.eq(rc, 0, "daemon exits 0 on SIGTERM")
        if C.failed:
            log("---- daemon log (tail)\n" + d.log_tail(60))
    return C.finish()


if __name__ == "__main__":
    sys.exit(main())
