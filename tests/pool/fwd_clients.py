#!/usr/bin/env python3
"""Clients against a pool member, for tests/pool/forward.sh.

    fwd_clients.py xenapi MEMBER_URL PASSWORD
        XenAPI.py (the copy tests/server/interop_xenapi.py caches): log in
        on the member, get Failure HOST_IS_SLAVE [coordinator], log in
        there instead (as XenAPI.py scripts do), read the pool's master.
        Prints "FOLLOWED <address> <pool master address>" or "ERROR ...";
        "SKIP ..." (exit 77) without XenAPI.py.
    fwd_clients.py xo MEMBER_URL PASSWORD
        Xen Orchestra's npm xen-api (fwd_xo.mjs), which follows
        HOST_IS_SLAVE by itself: prints what the script prints.
    fwd_clients.py local MEMBER_URL PASSWORD VM_UUID
        session.slave_local_login_with_password on the member: a read
        (VM name) works, a write answers HOST_IS_SLAVE; a call with that
        session is served by the member. Prints "READ <name> WRITE <error>".
    fwd_clients.py secret URL HOST_REF PSECRET
        session.slave_login(host, psecret): prints "OK <session.pool>" or
        "ERROR <code> <params>".
    fwd_clients.py poolbench URL HOST_REF PSECRET VM_NAME N
        N VM.set_name_label calls on a slave_login session of a member:
        the member's own writes, each run by the coordinator and back in
        the member's replica before the call returns; prints
        "p50_ms p99_ms mean_ms" (the VM keeps its name at the end).
    fwd_clients.py fwdbench URL PASSWORD VM_UUID HOST_UUID N
        N times VM.start_on(vm, host) then VM.hard_shutdown through URL
        (the coordinator, which forwards both to that host); prints the
        start's "p50_ms p99_ms mean_ms" and the shutdown's.
    fwd_clients.py commit URL HOST_REF PSECRET BODY
        pool.member_commit(BODY) on a slave_login session: "OK <seq>" or
        "ERROR <code> <params>".
    fwd_clients.py raw URL PASSWORD METHOD ARGS...
        any call on a login_with_password session; prints "OK <value>" or
        "ERROR <code> <params>".
"""
import os
import socket
import subprocess
import sys
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))


def cache_dir():
    if os.environ.get("XCP_INTEROP_CACHE"):
        return os.environ["XCP_INTEROP_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.environ.get("HOME", "/root"), ".cache")
    return os.path.join(base, "libxcp-interop")


def result(r):
    if r.get("Status") == "Success":
        return "OK", r.get("Value")
    return "ERROR", " ".join(str(x) for x in r.get("ErrorDescription", []))


def xenapi(url, pw):
    path = os.path.join(cache_dir(), "os-xenapi", "XenAPI.py")
    if not os.path.exists(path):
        try:
            import interop_xenapi
            path = interop_xenapi.fetch_module()
        except Exception as e:  # no Debian mirror
            path = None
            print("SKIP no XenAPI.py:", e)
        if not path:
            print("SKIP no XenAPI.py")
            return 77
    import importlib.util
    spec = importlib.util.spec_from_file_location("XenAPI", path)
    XenAPI = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(XenAPI)
    x = XenAPI.Session(url)
    try:
        x.xenapi.login_with_password("root", pw, "1.0", "fwd-test")
        print("ERROR the member accepted the login")
        return 1
    except XenAPI.Failure as f:
        if f.details[0] != "HOST_IS_SLAVE":
            print("ERROR", *f.details)
            return 1
        coord = f.details[1]
    x = XenAPI.Session("http://%s/" % coord)
    x.xenapi.login_with_password("root", pw, "1.0", "fwd-test")
    pool = x.xenapi.pool.get_all()[0]
    master = x.xenapi.pool.get_master(pool)
    print("FOLLOWED", coord, x.xenapi.host.get_address(master))
    x.xenapi.session.logout()
    return 0


def xo(url, pw):
    try:
        import interop_xo
        module = interop_xo.ensure_xen_api()
    except Exception as e:
        print("SKIP xen-api:", e)
        return 77
    env = dict(os.environ, XEN_API_MODULE=module, XAPI_URL=url,
               XO_PASS=pw)
    env.pop("NODE_OPTIONS", None)
    r = subprocess.run(["node", os.path.join(HERE, "fwd_xo.mjs")], env=env,
                       capture_output=True, text=True, timeout=120)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stdout.write(r.stderr[-2000:])
    return r.returncode


def local(url, pw, vm_uuid):
    p = xmlrpc.client.ServerProxy(url, allow_none=True)
    st, s = result(p.session.slave_local_login_with_password("root", pw))
    if st != "OK":
        print("ERROR login", s)
        return 1
    st, vm = result(p.VM.get_by_uuid(s, vm_uuid))
    st, name = result(p.VM.get_name_label(s, vm))
    wst, werr = result(p.VM.set_name_label(s, vm, "from-member"))
    print("READ", name, "WRITE", werr if wst == "ERROR" else "OK")
    p.session.local_logout(s)
    return 0


def secret(url, host, psecret):
    p = xmlrpc.client.ServerProxy(url, allow_none=True)
    st, s = result(p.session.slave_login(host, psecret))
    if st != "OK":
        print("ERROR", s)
        return 1
    st, pool = result(p.session.get_pool(s, s))
    print(st, pool)
    return 0


def poolbench(url, host, psecret, name, n):
    import time
    p = xmlrpc.client.ServerProxy(url, allow_none=True)
    st, s = result(p.session.slave_login(host, psecret))
    if st != "OK":
        print("ERROR", s)
        return 1
    st, vms = result(p.VM.get_by_name_label(s, name))
    if st != "OK" or not vms:
        print("ERROR no VM", name)
        return 1
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        st, v = result(p.VM.set_name_label(s, vms[0], name if i == n - 1
                                           else "%s-%d" % (name, i)))
        lat.append((time.perf_counter() - t0) * 1000)
        if st != "OK":
            print("ERROR", v)
            return 1
    lat.sort()
    print("%.2f %.2f %.2f" % (lat[len(lat) // 2],
                              lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                              sum(lat) / len(lat)))
    return 0


def stats(lat):
    lat.sort()
    return "%.1f %.1f %.1f" % (lat[len(lat) // 2],
                               lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                               sum(lat) / len(lat))


def fwdbench(url, pw, vm_uuid, host_uuid, n):
    import time
    p = xmlrpc.client.ServerProxy(url, allow_none=True)
    st, s = result(p.session.login_with_password("root", pw, "1.0", "t"))
    vm = p.VM.get_by_uuid(s, vm_uuid)["Value"]
    host = p.host.get_by_uuid(s, host_uuid)["Value"]
    a, b = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        st, v = result(p.VM.start_on(s, vm, host, False, False))
        a.append((time.perf_counter() - t0) * 1000)
        if st != "OK":
            print("ERROR start_on", v)
            return 1
        t0 = time.perf_counter()
        st, v = result(p.VM.hard_shutdown(s, vm))
        b.append((time.perf_counter() - t0) * 1000)
        if st != "OK":
            print("ERROR hard_shutdown", v)
            return 1
    print(stats(a), "/", stats(b))
    return 0


def commit(url, host, psecret, body):
    p = xmlrpc.client.ServerProxy(url, allow_none=True)
    st, s = result(p.session.slave_login(host, psecret))
    if st != "OK":
        print("ERROR", s)
        return 1
    st, v = result(p.pool.member_commit(s, body))
    print(st, v)
    return 0


def raw(url, pw, method, args):
    p = xmlrpc.client.ServerProxy(url, allow_none=True)
    st, s = result(p.session.login_with_password("root", pw, "1.0", "t"))
    if st != "OK":
        print("ERROR", s)
        return 1
    fn = p
    for part in method.split("."):
        fn = getattr(fn, part)
    args = [{"true": True, "false": False}.get(a, a) for a in args]
    st, v = result(fn(s, *args))
    print(st, v)
    return 0 if st == "OK" else 1


def main():
    socket.setdefaulttimeout(60)
    cmd, url = sys.argv[1], sys.argv[2]
    if cmd == "xenapi":
        return xenapi(url, sys.argv[3])
    if cmd == "xo":
        return xo(url, sys.argv[3])
    if cmd == "local":
        return local(url, sys.argv[3], sys.argv[4])
    if cmd == "secret":
        return secret(url, sys.argv[3], sys.argv[4])
    if cmd == "poolbench":
        return poolbench(url, sys.argv[3], sys.argv[4], sys.argv[5],
                         int(sys.argv[6]))
    if cmd == "fwdbench":
        return fwdbench(url, sys.argv[3], sys.argv[4], sys.argv[5],
                        int(sys.argv[6]))
    if cmd == "commit":
        return commit(url, sys.argv[3], sys.argv[4], sys.argv[5])
    if cmd == "raw":
        return raw(url, sys.argv[3], sys.argv[4], sys.argv[5:])
    print("unknown command", cmd)
    return 2


sys.exit(main())
