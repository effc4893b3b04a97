#!/usr/bin/python3
"""bench_python.py - the Python binding (bindings/python) embedded and
remote, against XAPI's XenAPI.py talking to xcpd, in one run. Prints rates
and ratios, never passes or fails on numbers.

  VM.get_record loop: one VM's record N times, through
    - xcp.Session("local:...")       the binding, engine in-process (typed)
    - xcp.Session("http://...")      the binding, remote to xcpd (typed)
    - xcp.XenAPI.Session("local:")   the binding's XenAPI.py face, embedded
    - XenAPI.py over HTTP to xcpd    the peer (Debian's python3-os-xenapi
                                     copy of XAPI's module, as the interop
                                     test fetches it; the row says why when
                                     it cannot be had)
  VM lifecycle: V VMs each created (VM.create from a record: 64 MiB, 1
    vCPU, HVM), started, hard-shut-down and destroyed, through the same paths
    (hard shutdown: a clean one waits for the sim guest's 20 ms reply,
    which would measure the sim rather than the client).

  bench/bench_python.py [--quick]     (make bench-python; --quick: 64 VMs,
                                       300 get_records)

Environment: abs_top_builddir, abs_top_srcdir (set by make).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("abs_top_srcdir") or os.path.dirname(HERE)
BUILDDIR = os.environ.get("abs_top_builddir") or SRCDIR
os.environ.setdefault("XCP_LIBRARY", os.path.join(
    BUILDDIR, "lib", "libxcp", ".libs", "libxcp.so.0"))
sys.path.insert(0, os.path.join(SRCDIR, "bindings", "python"))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "server"))

import harness  # noqa: E402
import interop_xenapi  # noqa: E402
import xcp  # noqa: E402
from xcp import XenAPI as Compat  # noqa: E402

MIB = 1 << 20


def timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def small_vm(name):
    return xcp.VMRecord(
        name_label=name, memory_static_max=64 * MIB,
        memory_dynamic_max=64 * MIB, memory_dynamic_min=64 * MIB,
        memory_static_min=64 * MIB, VCPUs_max=1, VCPUs_at_startup=1,
        HVM_boot_policy="BIOS order")


# ---- the typed binding ------------------------------------------------------

def typed_get_record(s, n):
    vm = [r for r, v in s.VM.get_all_records().items()
          if not v.is_a_template and not v.is_control_domain][0]
    return timed(lambda: [s.VM.get_record(vm) for _ in range(n)])


def typed_lifecycle(s, v):
    def run():
        for i in range(v):
            vm = s.VM.create(small_vm("bench-%d" % i))
            s.VM.start(vm, False, False)
            s.VM.hard_shutdown(vm)
            s.VM.destroy(vm)
    return timed(run)


# ---- XenAPI.py-style (the compat face and XenAPI.py itself) ---------------

def api_get_record(x, n):
    vm = [r for r, v in x.xenapi.VM.get_all_records().items()
          if not v["is_a_template"] and not v["is_control_domain"]][0]
    return timed(lambda: [x.xenapi.VM.get_record(vm) for _ in range(n)])


def wire_plain(x):
    """A typed value as an XML-RPC client sends it (ints as strings)."""
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return str(x)
    if isinstance(x, str):
        return str(x.value) if isinstance(x, xcp.XenEnum) else str(x)
    if isinstance(x, dict):
        return {str(k): wire_plain(w) for k, w in x.items()}
    if isinstance(x, list):
        return [wire_plain(w) for w in x]
    return x


def api_lifecycle(x, v):
    # the same fields as the typed path sends (every one settable at
    # creation: VM.create wants the required ones present)
    base = wire_plain(small_vm("bench").to_struct())

    def run():
        for i in range(v):
            vm = x.xenapi.VM.create(dict(base, name_label="bench-%d" % i))
            x.xenapi.VM.start(vm, False, False)
            x.xenapi.VM.hard_shutdown(vm)
            x.xenapi.VM.destroy(vm)
    return timed(run)


def main():
    quick = "--quick" in sys.argv[1:]
    n, v = (300, 64) if quick else (3000, 512)
    rows = {}
    notes = []
    local = harness.Daemon("bench-py-local")   # a state dir only
    remote = harness.Daemon("bench-py-remote")
    try:
        local.make_vms(["bench-vm"])
        remote.make_vms(["bench-vm"])
        remote.start()
        http = "http://127.0.0.1:%d" % remote.http[2]

        with xcp.Session("local:" + local.state) as s:
            rows["binding embedded"] = (typed_get_record(s, n),
                                        typed_lifecycle(s, v))
        cx = Compat.Session("local:" + local.state)
        cx.xenapi.login_with_password("root", "")
        rows["binding XenAPI face embedded"] = (api_get_record(cx, n),
                                                api_lifecycle(cx, v))
        cx.xenapi.session.logout()
        with xcp.Session(http, harness.USER, harness.PASSWORD) as s:
            rows["binding remote (xcpd http)"] = (typed_get_record(s, n),
                                                  typed_lifecycle(s, v))
        path = interop_xenapi.fetch_module()
        if path is None:
            notes.append("XenAPI.py: not run (python3-os-xenapi cannot be "
                         "downloaded from a Debian mirror)")
        else:
            XenAPI = interop_xenapi.load(path)
            x = XenAPI.Session(http)
            x.xenapi.login_with_password(harness.USER, harness.PASSWORD,
                                         "1.0", "bench")
            rows["XenAPI.py remote (xcpd http)"] = (api_get_record(x, n),
                                                    api_lifecycle(x, v))
            x.xenapi.session.logout()
        remote.stop()
    finally:
        local.cleanup()
        remote.cleanup()

    peer = rows.get("XenAPI.py remote (xcpd http)")
    print("Python binding: VM.get_record x %d, lifecycle of %d VMs "
          "(create, start, hard_shutdown, destroy)" % (n, v))
    print("%-32s %14s %8s %14s %8s" % ("path", "get_record/s", "vs py",
                                        "lifecycle VM/s", "vs py"))
    for name, (tg, tl) in rows.items():
        rg, rl = n / tg, v / tl
        if peer:
            pg, pl = n / peer[0], v / peer[1]
            print("%-32s %14.0f %7.2fx %14.1f %7.2fx" % (name, rg, rg / pg,
                                                          rl, rl / pl))
        else:
            print("%-32s %14.0f %8s %14.1f %8s" % (name, rg, "-", rl, "-"))
    for t in notes:
        print(t)
    print("(vs py: rate through that path / rate through XenAPI.py against "
          "xcpd; above 1 is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
