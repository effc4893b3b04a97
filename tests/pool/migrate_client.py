#!/usr/bin/env python3
"""VM.pool_migrate over XML-RPC (stdlib only) for tests/pool/migrate.sh,
so that the test sees XenAPI's exact error codes and parameters.

    migrate_client.py URL PASSWORD migrate VM_UUID HOST_UUID
        VM.pool_migrate; prints OK, or "ERROR <code> <params...>"
    migrate_client.py URL PASSWORD sample VM_UUID HOST_UUID
        Async.VM.pool_migrate, the VM's power_state read every 20 ms
        until the task ends; prints "OK <ms> <states>" (the distinct
        states seen, in order) or "ERROR <code> <params...> <ms> <states>"
    migrate_client.py URL PASSWORD cancel VM_UUID HOST_UUID DELAY_S
        Async.VM.pool_migrate, task.cancel after DELAY_S seconds; prints
        the task's end: "CANCELLED <error...>", "OK" or "ERROR ..."
    migrate_client.py URL PASSWORD raw VM_UUID
        CONNECT /migrate_receive on a client's (not a pool) session: prints
        the HTTP status line and the first line of the stream after it
    migrate_client.py URL PASSWORD state VM_UUID
        prints "<power_state> <resident_on host uuid or ->"
"""
import socket
import sys
import time
import xmlrpc.client


def ok(r):
    if r.get("Status") != "Success":
        raise Failure(r.get("ErrorDescription", ["?"]))
    return r.get("Value")


class Failure(Exception):
    pass


def login(p, password):
    return ok(p.session.login_with_password("root", password, "1.0",
                                            "migrate-test"))


def states(p, s, vm, task):
    seen = []
    t0 = time.monotonic()
    while True:
        st = ok(p.VM.get_power_state(s, vm))
        if not seen or seen[-1] != st:
            seen.append(st)
        status = ok(p.task.get_status(s, task))
        if status not in ("pending", "cancelling"):
            break
        time.sleep(0.02)
    ms = int((time.monotonic() - t0) * 1000)
    return status, ms, seen


def main():
    socket.setdefaulttimeout(180)
    url, password, cmd = sys.argv[1:4]
    p = xmlrpc.client.ServerProxy(url, allow_none=True)
    try:
        s = login(p, password)
        vm = ok(p.VM.get_by_uuid(s, sys.argv[4]))
        if cmd == "raw":
            host = url.split("//", 1)[1].split("/", 1)[0]
            hp = host.rsplit(":", 1) if ":" in host else (host, "80")
            c = socket.create_connection((hp[0], int(hp[1])), timeout=30)
            c.sendall(("CONNECT /migrate_receive?session_id=%s&ref=%s&seq=0 "
                       "HTTP/1.1\r\nHost: %s\r\n\r\n" % (s, vm, host))
                      .encode())
            f = c.makefile("rb")
            status = f.readline().decode().strip()
            while f.readline() not in (b"\r\n", b"\n", b""):
                pass
            print(status, "|", f.readline().decode().strip())
            return 0
        if cmd == "state":
            st = ok(p.VM.get_power_state(s, vm))
            h = ok(p.VM.get_resident_on(s, vm))
            hu = ok(p.host.get_uuid(s, h)) if h != "OpaqueRef:NULL" else "-"
            print(st, hu)
            return 0
        host = ok(p.host.get_by_uuid(s, sys.argv[5]))
        if cmd == "migrate":
            ok(p.VM.pool_migrate(s, vm, host, {}))
            print("OK")
            return 0
        task = ok(p.Async.VM.pool_migrate(s, vm, host, {}))
        if cmd == "cancel":
            time.sleep(float(sys.argv[6]))
            ok(p.task.cancel(s, task))
        status, ms, seen = states(p, s, vm, task)
        err = ok(p.task.get_error_info(s, task))
        if cmd == "cancel":
            if status == "cancelled" or (err and err[0] == "TASK_CANCELLED"):
                print("CANCELLED", *err)
            elif status == "success":
                print("OK")
            else:
                print("ERROR", *err)
            return 0
        if status == "success":
            print("OK", ms, ",".join(seen))
        else:
            print("ERROR", *err, ms, ",".join(seen))
        return 0
    except Failure as e:
        print("ERROR", *e.args[0])
        return 1


if __name__ == "__main__":
    sys.exit(main())
