#!/usr/bin/env python3
"""big_reply.py - memory and time of large XenAPI replies through xcpd.

Populates a state directory with N VMs (bench_vms populate), starts xcpd on
it (unix socket only), then:
  - R concurrent readers of VM.get_all_records (XML-RPC, raw HTTP over the
    socket, the reply read and dropped), sampling xcpd's RSS; xcpd's peak
    (VmHWM, reset just before) and its idle RSS after the readers, compared
    with its RSS before them and with the reply's size;
  - `xe vm-list --minimal` through the daemon: wall time and the xe
    process's peak RSS (getrusage of the child);
  - the same xe command on the embedded engine (daemon stopped): the peer.

  big_reply.py --xcpd X --xe XE --bench-vms B [--vms N] [--readers R]
               [--dir D] [--check]

Prints "key value" lines, and the ratios: xcpd's peak growth per reader
against the reply's size, and xe through the daemon against the embedded
xe (the peer). Exits 1 when a reader got a bad reply or xe's outputs
differ, and with --check also when a bound fails:
  xcpd's peak growth during the readers < one reply's size (all R replies
  together; the old code held up to three copies of each, ~1.8 replies
  per reader);
  idle RSS - RSS before the readers < a quarter of one reply;
with --check-xe: xe vm-list --minimal through the daemon peaks < 50 MB.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rpc_raw(sock_path, body, sink=None):
    """POST body over the unix socket; return (headers, body length,
    last 200 bytes of body). With sink, chunks are passed to it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    req = ("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
           "Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
    s.sendall(req.encode() + body)
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(65536)
        if not d:
            break
        head += d
    hdr, _, rest = head.partition(b"\r\n\r\n")
    chunked = b"chunked" in hdr.lower()
    total = 0
    tail = b""
    buf = rest
    while True:
        if buf:
            total += len(buf)
            tail = (tail + buf)[-200:]
            if sink:
                sink(buf)
        d = s.recv(1 << 20)
        if not d:
            break
        buf = d
    s.close()
    return hdr.decode("latin-1"), total, tail, chunked


def call_body(method, *args):
    ps = "".join("<param><value><string>%s</string></value></param>" % a
                 for a in args)
    return ("<?xml version='1.0'?><methodCall><methodName>%s</methodName>"
            "<params>%s</params></methodCall>" % (method, ps)).encode()


def login(sock_path):
    out = []
    rpc_raw(sock_path, call_body("session.login_with_password", "root", ""),
            out.append)
    m = re.search(rb"OpaqueRef:[0-9a-f-]+", b"".join(out))
    if not m:
        raise SystemExit("big_reply: login failed: %r" % b"".join(out)[:300])
    return m.group(0).decode()


def xe_minimal(xe, env):
    """Run xe vm-list --minimal; return (seconds, peak RSS bytes, output)."""
    t0 = time.monotonic()
    pid = os.posix_spawn(xe[0], xe + ["vm-list", "--minimal"], env,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1,
                                        env["_BR_OUT"], os.O_WRONLY
                                        | os.O_CREAT | os.O_TRUNC, 0o644)])
    _, st, ru = os.wait4(pid, 0)
    dt = time.monotonic() - t0
    if os.waitstatus_to_exitcode(st) != 0:
        raise SystemExit("big_reply: xe vm-list --minimal failed (%d)"
                         % os.waitstatus_to_exitcode(st))
    with open(env["_BR_OUT"]) as f:
        text = f.read()
    return dt, ru.ru_maxrss * 1024, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xcpd", required=True)
    ap.add_argument("--xe", required=True)
    ap.add_argument("--bench-vms", required=True)
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--check-xe", action="store_true")
    a = ap.parse_args()

    work = a.dir or tempfile.mkdtemp(prefix="xcp-big-reply-")
    state = os.path.join(work, "state")
    sock = os.path.join(state, "xapi")  # the default, where xe looks
    env = dict(os.environ)
    env.setdefault("XCP_HV", "sim")
    env.setdefault("XCP_SIM_HOST_MEMORY", "256GiB")
    env.setdefault("XCP_SIM_HOST_CPUS", "64")
    env["XCP_STATE_DIR"] = state
    env.pop("XCP_DB_FSYNC", None)
    env["_BR_OUT"] = os.path.join(work, "xe.out")
    proc = None
    failed = []
    try:
        t0 = time.monotonic()
        subprocess.run([a.bench_vms, "populate", str(a.vms), state],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        print("populate_s %.2f" % (time.monotonic() - t0))
        log = open(os.path.join(work, "xcpd.log"), "w")
        proc = subprocess.Popen([a.xcpd, "--state-dir", state],
                                env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
        for _ in range(600):
            if os.path.exists(sock):
                try:
                    ref = login(sock)
                    break
                except OSError:
                    pass
            if proc.poll() is not None:
                raise SystemExit("big_reply: xcpd exited")
            time.sleep(0.05)
        else:
            raise SystemExit("big_reply: xcpd did not come up")
        pid = proc.pid
        rss_start = status_kb(pid, "VmRSS") * 1024
        body = call_body("VM.get_all_records", ref)
        # One read first, so that what is allocated once (caches, the
        # engine's own tables) is in the baseline.
        _, reply_len, _, _ = rpc_raw(sock, body)
        time.sleep(0.5)
        rss0 = status_kb(pid, "VmRSS") * 1024
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")  # reset VmHWM
        results = [None] * a.readers
        peak = [0]
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], status_kb(pid, "VmRSS") * 1024)
                except OSError:
                    return
                time.sleep(0.005)

        def reader(i):
            results[i] = rpc_raw(sock, body)

        st = threading.Thread(target=sampler)
        st.start()
        t0 = time.monotonic()
        ts = [threading.Thread(target=reader, args=(i,))
              for i in range(a.readers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        readers_s = time.monotonic() - t0
        stop.set()
        st.join()
        hwm = max(status_kb(pid, "VmHWM") * 1024, peak[0])
        lens = set(r[1] for r in results)
        for r in results:
            if not r[0].startswith("HTTP/1.1 200"):
                failed.append("reader got %s" % r[0].split("\r\n")[0])
            if not r[2].rstrip(b"\r\n0").endswith(b"</methodResponse>"):
                failed.append("reader got an incomplete reply")
        if len(lens) != 1:
            failed.append("readers got different lengths %s" % sorted(lens))
        # Idle: give the server a moment to return what it freed.
        idle = 0
        for _ in range(40):
            time.sleep(0.1)
            idle = status_kb(pid, "VmRSS") * 1024
            if idle - rss0 < reply_len // 4:
                break
        print("reply_bytes %d" % reply_len)
        print("readers %d" % a.readers)
        print("readers_s %.2f" % readers_s)
        print("rss_start %d" % rss_start)
        print("rss_before %d" % rss0)
        print("rss_peak %d" % hwm)
        print("rss_peak_growth %d" % (hwm - rss0))
        print("rss_idle %d" % idle)
        print("rss_idle_growth %d" % (idle - rss0))

        xe = [a.xe]
        times, rsses = [], []
        for _ in range(a.reps):
            dt, rss, text = xe_minimal(xe, env)
            times.append(dt)
            rsses.append(rss)
        n_out = len([x for x in text.strip().split(",") if x])
        times.sort()
        xe_d_s = times[len(times) // 2]
        print("xe_daemon_s %.3f" % xe_d_s)
        xe_daemon_rss = max(rsses)
        print("xe_daemon_rss %d" % xe_daemon_rss)
        print("xe_daemon_uuids %d" % n_out)
        if n_out < a.vms:
            failed.append("xe vm-list --minimal printed %d uuids, not %d"
                          % (n_out, a.vms))
        proc.terminate()
        proc.wait(timeout=60)
        proc = None
        times, rsses = [], []
        for _ in range(a.reps):
            dt, rss, text2 = xe_minimal(xe, env)
            times.append(dt)
            rsses.append(rss)
        times.sort()
        print("xe_embedded_s %.3f" % times[len(times) // 2])
        print("xe_embedded_rss %d" % max(rsses))
        if sorted(text2.strip().split(",")) != sorted(text.strip().split(",")):
            failed.append("xe through the daemon and embedded differ")
        if a.check:
            if hwm - rss0 >= reply_len:
                failed.append("xcpd grew by %d bytes serving %d readers "
                              "of a %d-byte reply" % (hwm - rss0, a.readers,
                                                      reply_len))
            if idle - rss0 >= reply_len // 4:
                failed.append("xcpd stayed %d bytes above its baseline "
                              "when idle" % (idle - rss0))
        if a.check_xe:
            if xe_daemon_rss >= 50 << 20:
                failed.append("xe vm-list --minimal through the daemon "
                              "peaked at %d bytes" % xe_daemon_rss)
        print("ratio_peak_growth_per_reader_to_reply %.3f"
              % ((hwm - rss0) / a.readers / reply_len))
        print("ratio_xe_daemon_to_embedded_time %.2f"
              % (float(xe_d_s) / times[len(times) // 2]))
        for f in failed:
            print("FAIL: %s" % f)
        return 1 if failed else 0
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
