#!/usr/bin/env python3
"""XenAPI calls over XML-RPC (stdlib only) for tests/pool/repl.sh.

    repl_client.py URL PASSWORD set NAME_OLD NAME_NEW
        VM.set_name_label of the VM called NAME_OLD; prints OK or
        "ERROR <code> <params...>" (exit 1)
    repl_client.py URL PASSWORD name UUID
        the name_label of the VM with that uuid ("-" if none)
    repl_client.py URL PASSWORD token
        event.from's current token (no class, no wait)
    repl_client.py URL PASSWORD vmevents TOKEN
        event.from(["vm"], TOKEN, 1 s): the name_label of each VM in the
        events, one a line, then "token <new token>"
    repl_client.py URL PASSWORD bench NAME N
        N VM.set_name_label calls on the VM called NAME, one at a time;
        prints "p50_ms p99_ms mean_ms" (the VM keeps its name at the end)
"""
import socket
import sys
import time
import xmlrpc.client


def login(url, password):
    p = xmlrpc.client.ServerProxy(url, allow_none=True)
    r = p.session.login_with_password("root", password, "1.0", "repl-test")
    if r.get("Status") != "Success":
        print("ERROR", *r.get("ErrorDescription", ["?"]))
        sys.exit(1)
    return p, r["Value"]


def vm_by_name(p, s, name):
    r = p.VM.get_by_name_label(s, name)
    if r.get("Status") != "Success" or not r["Value"]:
        print("ERROR", "no VM called", name)
        sys.exit(1)
    return r["Value"][0]


def main():
    socket.setdefaulttimeout(60)
    url, password, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
    p, s = login(url, password)
    if cmd == "set":
        vm = vm_by_name(p, s, sys.argv[4])
        r = p.VM.set_name_label(s, vm, sys.argv[5])
        if r.get("Status") != "Success":
            print("ERROR", *r.get("ErrorDescription", ["?"]))
            return 1
        print("OK")
    elif cmd == "name":
        r = p.VM.get_by_uuid(s, sys.argv[4])
        if r.get("Status") != "Success":
            print("-")
            return 0
        print(p.VM.get_name_label(s, r["Value"])["Value"])
    elif cmd == "token":
        r = getattr(p.event, "from")(s, [], "", 0.0)
        print(r["Value"]["token"])
    elif cmd == "vmevents":
        r = getattr(p.event, "from")(s, ["vm"], sys.argv[4], 1.0)
        if r.get("Status") != "Success":
            print("ERROR", *r.get("ErrorDescription", ["?"]))
            return 1
        for ev in r["Value"]["events"]:
            print(ev.get("snapshot", {}).get("name_label", "-"))
        print("token", r["Value"]["token"])
    elif cmd == "bench":
        name, n = sys.argv[4], int(sys.argv[5])
        vm = vm_by_name(p, s, name)
        lat = []
        for i in range(n):
            t0 = time.perf_counter()
            r = p.VM.set_name_label(s, vm, name if i == n - 1 else
                                    "%s-%d" % (name, i))
            lat.append((time.perf_counter() - t0) * 1000)
            if r.get("Status") != "Success":
                print("ERROR", *r.get("ErrorDescription", ["?"]))
                return 1
        lat.sort()
        print("%.2f %.2f %.2f" % (lat[len(lat) // 2],
                                  lat[min(len(lat) - 1, len(lat) * 99 // 100)],
                                  sum(lat) / len(lat)))
    p.session.logout(s)
    return 0


sys.exit(main())
