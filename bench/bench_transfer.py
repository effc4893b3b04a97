#!/usr/bin/python3
"""bench_transfer: VDI import and export through xcpd over HTTP and HTTPS
against `qemu-img convert` of the same data in the same run, and the
memory a transfer holds in xcpd.

The client is bench/xfer_client (libcurl moving 1-2 MiB blocks, writing
downloads sparse as qemu-img writes its output: the fair client, as Xen
Orchestra and XAPI's own clients stream large blocks); BENCH_CLIENTS
names the clients to run, in turn: "stream" (that one, the default),
"curl" (the curl tool, which writes what it downloads in 8-16 KiB pieces,
zeros included, and uploads in 64 KiB ones), or both ("stream curl").
BENCH_SCHEMES narrows the schemes ("http https", the default) and
BENCH_SIZES the sizes in MiB (default: MIB and a quarter of it), e.g.
BENCH_SCHEMES=http BENCH_SIZES=256 for the plain-HTTP rows at 256 MiB.

For each size (MIB, default 256, and a quarter of it) a raw file of that
many MiB is made, three quarters random data and one quarter holes, and a
dynamic VHD of it (qemu-img). Then per scheme:
  import raw   PUT the raw file          vs qemu-img convert raw -> qcow2
  import vhd   PUT the VHD               vs qemu-img convert vpc -> qcow2
  import qcow2 PUT qemu-img's qcow2      vs qemu-img convert qcow2 -> qcow2
  export raw   GET format=raw            vs qemu-img convert qcow2 -> raw
  export vhd   GET format=vhd            vs qemu-img convert qcow2 -> vpc
  export qcow2 GET format=qcow2          vs qemu-img convert qcow2 -> qcow2
(the file SR's VDIs are qcow2 images, so each peer does the same format
work on the same bytes). An import ends with its data on the disk (one
fdatasync; the task succeeds only then), which qemu-img convert's
default cache mode for its output ("unsafe") never asks for: each import
also runs against `qemu-img convert -t writeback`, which flushes at its
end as we do, in the rows marked "/wb". Each case runs REPS times, ours and the peer's
interleaved (the host is shared: a burst of load then falls on both);
times are the medians, the ratio is peer time / our time (above 1:
faster than the peer). The memory is the
peak RSS of xcpd during the transfer above its RSS before it (VmHWM reset
through /proc/PID/clear_refs), which must not grow with the disk.
The CPU columns add up the processor time of every process of a case
(xcpd's and the client's for ours, qemu-img's for the peer): unlike the
wall times they hardly move with the load of a shared host, so the CPU
ratio says how much work a transfer costs when the times are noisy.
    bench/bench_transfer.py [MIB] [REPS]
"""

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "server"))
from harness import Daemon, XenAPI, PASSWORD, USER  # noqa: E402

MiB = 1 << 20


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_of(pid):
    """Processor seconds pid has used (all its threads, user + system)."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv, pid=None):
    """Run argv: (seconds, peak RSS growth of pid during it, processor
    seconds of argv and of pid during it)."""
    base = 0
    if pid:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        base = status(pid, "VmRSS")
    c0, p0 = children_cpu(), cpu_of(pid) if pid else 0
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True)
    dt = time.monotonic() - t0
    cpu = children_cpu() - c0 + (cpu_of(pid) - p0 if pid else 0)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), p.stderr.decode()))
    return dt, (status(pid, "VmHWM") - base) if pid else 0, cpu


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def interleaved(reps, ours, peer, peer2=None):
    """ours(), peer() (and peer2()) in turn, reps times each: (our median
    time, our largest RSS growth, our median CPU), (the peer's median
    time, its median CPU), and the same for peer2 (None without it)."""
    a, b, c = [], [], []
    for _ in range(reps):
        a.append(ours())
        b.append(peer())
        if peer2:
            c.append(peer2())

    def med(v):
        return (median([r[0] for r in v]), median([r[2] for r in v]))
    return ((median([r[0] for r in a]), max(r[1] for r in a),
             median([r[2] for r in a])), med(b), med(c) if c else None)


def make_data(tmp, mib):
    raw = os.path.join(tmp, "data-%d.raw" % mib)
    with open(raw, "wb") as f:
        for i in range(mib):
            f.write(os.urandom(MiB) if i % 4 != 3 else b"")
            if i % 4 == 3:
                f.seek(MiB, 1)
        f.truncate(mib * MiB)
    vhd = os.path.join(tmp, "data-%d.vhd" % mib)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
                    "subformat=dynamic,force_size=on", raw, vhd], check=True)
    qcow2 = os.path.join(tmp, "data-%d.qcow2" % mib)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw,
                    qcow2], check=True)
    return raw, vhd, qcow2


def client_argv(client):
    """(import argv maker, export argv maker) for client: each takes the
    URL and the file."""
    if client == "curl":
        curl = ["curl", "-k", "-sS", "-f", "-H", "Expect:"]
        return (lambda url, f: curl + ["-T", f, url],
                lambda url, f: curl + ["-o", f, url])
    exe = os.path.join(os.environ.get("abs_top_builddir", ""), "bench",
                       "xfer_client")
    if not os.access(exe, os.X_OK):
        raise SystemExit("%s not built (make bench/xfer_client)" % exe)
    return (lambda url, f: [exe, "put", url, f],
            lambda url, f: [exe, "get", url, f])


def image_of(state, uuid):
    for root, _, files in os.walk(state):
        for f in files:
            if f.startswith(uuid):
                return os.path.join(root, f)
    raise RuntimeError("no image for %s" % uuid)


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    clients = os.environ.get("BENCH_CLIENTS", "stream").split()
    schemes = os.environ.get("BENCH_SCHEMES", "http https").split()
    sizes = [int(v) for v in
             os.environ.get("BENCH_SIZES", "%d %d" % (mib // 4, mib)).split()]
    tmp = tempfile.mkdtemp(prefix="bench-transfer-")
    rows = []
    try:
        with Daemon("bench-transfer") as d:
            d.start()
            pid = d.proc.pid
            x = XenAPI(d.http)
            s = x.login()
            sr = x.call("SR.get_all", s)[0]
            for size in sizes:
                raw, vhd, qcow2 = make_data(tmp, size)
                rec = {"name_label": "b", "name_description": "", "SR": sr,
                       "virtual_size": str(size * MiB), "type": "user",
                       "sharable": False, "read_only": False,
                       "other_config": {}, "xenstore_data": {},
                       "sm_config": {}, "tags": []}
                vdi = x.call("VDI.create", s, rec)
                uuid = x.call("VDI.get_uuid", s, vdi)
                out = os.path.join(tmp, "out")
                peer = os.path.join(tmp, "peer")

                def peer_run(*a):
                    def go():
                        if os.path.exists(peer):
                            os.unlink(peer)
                        return timed(["qemu-img", "convert"] + list(a)
                                     + [peer])
                    return go
                for client in clients:
                    put, get = client_argv(client)
                    for scheme, where in (("http", d.http), ("https", d.https)):
                        if scheme not in schemes:
                            continue
                        url = "%s://%s:%d" % (scheme, where[1], where[2])
                        q = "vdi=%s&session_id=%s" % (vdi, s)
                        cases = [
                            ("import raw", put(url + "/import_raw_vdi?" + q, raw),
                             peer_run("-f", "raw", "-O", "qcow2", raw),
                             peer_run("-t", "writeback", "-f", "raw", "-O",
                                      "qcow2", raw)),
                            ("import vhd", put(url + "/import_raw_vdi?format=vhd&"
                                               + q, vhd),
                             peer_run("-f", "vpc", "-O", "qcow2", vhd),
                             peer_run("-t", "writeback", "-f", "vpc", "-O",
                                      "qcow2", vhd)),
                            ("import qcow2", put(url + "/import_raw_vdi?"
                                                 "format=qcow2&" + q, qcow2),
                             peer_run("-f", "qcow2", "-O", "qcow2", qcow2),
                             peer_run("-t", "writeback", "-f", "qcow2", "-O",
                                      "qcow2", qcow2)),
                        ]
                        for name, argv, peerfn, peer_wb in cases:
                            try:
                                ours, theirs, flushed = interleaved(
                                    reps, lambda: timed(argv, pid), peerfn,
                                    peer_wb)
                            except RuntimeError:    # a build without it
                                ours = theirs = flushed = None
                            rows.append((size, client, scheme, name, ours,
                                         theirs))
                            rows.append((size, client, scheme,
                                         name + " /wb", ours, flushed))
                        img = image_of(d.state, uuid)
                        for fmt, qfmt in (("raw", "raw"), ("vhd", "vpc"),
                                          ("qcow2", "qcow2")):
                            argv = get(url + "/export_raw_vdi?format=%s&" % fmt
                                       + q, out)
                            def ours_run(argv=argv):
                                # as the peer's: a new file each time (an
                                # old one's truncation is not the transfer)
                                if os.path.exists(out):
                                    os.unlink(out)
                                return timed(argv, pid)
                            ours, theirs, _ = interleaved(
                                reps, ours_run,
                                peer_run("-f", "qcow2", "-O", qfmt, img))
                            rows.append((size, client, scheme, "export " + fmt,
                                         ours, theirs))
            d.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open("/proc/loadavg") as f:
        print("load average at the end: %s" % " ".join(f.read().split()[:3]))
    print("%-6s %-6s %-6s %-14s %9s %9s %6s %8s %8s %6s %12s" % (
        "MiB", "client", "scheme", "transfer", "ours MB/s", "peer MB/s",
        "ratio", "ours cpu", "peer cpu", "ratio", "xcpd +RSS"))
    for size, client, scheme, name, ours, peer in rows:
        if ours is None or peer is None:
            print("%-6d %-6s %-6s %-14s %9s" % (size, client, scheme, name,
                                                "n/a"))
            continue
        mb = size * MiB / 1e6
        print("%-6d %-6s %-6s %-14s %9.1f %9.1f %5.2fx %7.3fs %7.3fs %5.2fx "
              "%8.1f MiB" % (size, client, scheme, name, mb / ours[0],
                             mb / peer[0],
                             peer[0] / ours[0], ours[2], peer[1],
                             peer[1] / max(ours[2], 1e-3), ours[1] / MiB))
    return 0


if __name__ == "__main__":
    sys.exit(main())
