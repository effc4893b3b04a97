#!/usr/bin/env python3
"""XenAPI calls over XML-RPC (stdlib only) for tests/pool/master.sh and
tests/pool/faults.sh.

    master_client.py URL PASSWORD rpc METHOD ARG...
        one call on a session of URL (login_with_password; with
        --local before METHOD, slave_local_login_with_password, which a
        member takes). An ARG host:UUID is that host's ref, vm:UUID that
        VM's, anything else a string. Prints "OK <value>" or
        "ERROR <code> <params...>" (exit 1).
    master_client.py URL PASSWORD writer VM_UUID PREFIX SECONDS ACKFILE
        for SECONDS, VM.add_to_other_config(vm, PREFIX<n>, n) with n =
        1, 2, ... one at a time; an acknowledged write appends its key to
        ACKFILE (flushed) before the next begins; HOST_IS_SLAVE sends the
        writer to the address it names (as XAPI's clients do); any other
        failure is retried after 50 ms, and a host that cannot be
        reached (3 s at most) sends it back to URL, which names the
        coordinator of the moment (a write that failed may have
        happened: only acknowledged ones are counted). Prints "acked N
        failed F redirects R max_gap_ms G" (G: the longest time between
        two acknowledged writes, the pool's unavailability to a writer).
    master_client.py URL PASSWORD holds VM_UUID ACKFILE
        reads the VM's other_config on URL (a slave_local session: works
        on a member) and prints "missing M of N" for the keys of ACKFILE.
"""
import socket
import sys
import time
import xmlrpc.client

socket.setdefaulttimeout(3)


def proxy(url):
    return xmlrpc.client.ServerProxy(url, allow_none=True)


def login(p, password, local=False):
    if local:
        r = p.session.slave_local_login_with_password("root", password)
    else:
        r = p.session.login_with_password("root", password, "1.0",
                                          "master-test")
    return r


def fail(r):
    print("ERROR", *r.get("ErrorDescription", ["?"]))
    sys.exit(1)


def arg(p, s, a):
    for cls in ("host", "vm"):
        if a.startswith(cls + ":"):
            m = p.host if cls == "host" else p.VM
            r = m.get_by_uuid(s, a[len(cls) + 1:])
            if r.get("Status") != "Success":
                fail(r)
            return r["Value"]
    return a


def rpc(url, password, rest):
    local = False
    if rest and rest[0] == "--local":
        local = True
        rest = rest[1:]
    p = proxy(url)
    r = login(p, password, local)
    if r.get("Status") != "Success":
        fail(r)
    s = r["Value"]
    method, args = rest[0], rest[1:]
    f = p
    for part in method.split("."):
        f = getattr(f, part)
    r = f(s, *[arg(p, s, a) for a in args])
    if r.get("Status") != "Success":
        fail(r)
    v = r.get("Value")
    if isinstance(v, list):
        v = ",".join(str(x) for x in v)
    print("OK", "" if v is None else v)


def writer(url, password, vm_uuid, prefix, seconds, ackfile):
    end = time.monotonic() + seconds
    origin = url
    n = acked = failed = redirects = 0
    p = s = vm = None
    last_ack = time.monotonic()
    max_gap = 0.0
    with open(ackfile, "a") as out:
        while time.monotonic() < end:
            try:
                if s is None:
                    p = proxy(url)
                    r = login(p, password)
                    if r.get("Status") != "Success":
                        e = r.get("ErrorDescription", [])
                        if e and e[0] == "HOST_IS_SLAVE" and len(e) > 1:
                            url = "http://" + e[1]
                            redirects += 1
                        else:
                            failed += 1
                            time.sleep(0.05)
                        continue
                    s = r["Value"]
                    r = p.VM.get_by_uuid(s, vm_uuid)
                    if r.get("Status") != "Success":
                        s = None
                        failed += 1
                        time.sleep(0.05)
                        continue
                    vm = r["Value"]
                n += 1
                key = "%s%d" % (prefix, n)
                r = p.VM.add_to_other_config(s, vm, key, str(n))
                if r.get("Status") == "Success":
                    now = time.monotonic()
                    max_gap = max(max_gap, now - last_ack)
                    last_ack = now
                    acked += 1
                    out.write(key + "\n")
                    out.flush()
                    continue
                e = r.get("ErrorDescription", [])
                if e and e[0] == "HOST_IS_SLAVE" and len(e) > 1:
                    url = "http://" + e[1]
                    redirects += 1
                    s = None
                    continue
                if e and e[0] in ("SESSION_INVALID",):
                    s = None
                failed += 1
                time.sleep(0.05)
            except (OSError, xmlrpc.client.Error, ValueError):
                s = None
                url = origin
                failed += 1
                time.sleep(0.05)
    max_gap = max(max_gap, time.monotonic() - last_ack) if acked == 0 \
        else max_gap
    print("acked %d failed %d redirects %d max_gap_ms %d" %
          (acked, failed, redirects, int(max_gap * 1000)))


def holds(url, password, vm_uuid, ackfile):
    p = proxy(url)
    r = login(p, password, True)
    if r.get("Status") != "Success":
        fail(r)
    s = r["Value"]
    r = p.VM.get_by_uuid(s, vm_uuid)
    if r.get("Status") != "Success":
        fail(r)
    r = p.VM.get_other_config(s, r["Value"])
    if r.get("Status") != "Success":
        fail(r)
    have = r["Value"]
    with open(ackfile) as f:
        keys = [k.strip() for k in f if k.strip()]
    missing = [k for k in keys if k not in have]
    print("missing %d of %d%s" % (len(missing), len(keys),
                                  (" (" + " ".join(missing[:5]) + ")")
                                  if missing else ""))


def main():
    url, password, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
    rest = sys.argv[4:]
    if cmd == "rpc":
        rpc(url, password, rest)
    elif cmd == "writer":
        writer(url, password, rest[0], rest[1], float(rest[2]), rest[3])
    elif cmd == "holds":
        holds(url, password, rest[0], rest[1])
    else:
        print("unknown command", cmd)
        sys.exit(2)


main()
