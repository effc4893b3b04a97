#!/usr/bin/python3
"""bench_delta: what a delta export saves, and XVA export against tar.

1. Delta exports. A disk of MIB MiB (default 256), three quarters data,
   is snapshotted (S1); 5% of it is rewritten in 1 MiB pieces spread over
   the disk (through XAPI's chunk frames), and snapshotted again (S2).
   Then /export_raw_vdi of S2 with base=S1 against the full export of S2,
   as vhd and qcow2, for a qcow2 VDI whose changes come from its chain
   and one with CBT on (from its bitmaps): median times (REPS runs each,
   interleaved), the ratio full time / delta time and the bytes of each.
2. XVA export of a VM with two disks of MIB MiB each (the same data)
   through /export (no compression) against `tar -cf` of the two raw
   files, the same bytes: median times and the ratio tar time / ours
   (above 1: faster than tar), and the peak RSS of xcpd during an export
   above its RSS before it (VmHWM reset through /proc/PID/clear_refs),
   at MIB and MIB/4 per disk (it must not grow with the disks).
curl is the client of the delta exports; the XVA export goes through
bench/xfer_client (libcurl moving 1 MiB blocks, see bench_transfer.py),
or curl when BENCH_CLIENTS is "curl". The numbers are printed, never
judged.
    bench/bench_delta.py [MIB] [REPS]
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "server"))
sys.path.insert(0, HERE)
from harness import Daemon, XenAPI, put  # noqa: E402
from bench_transfer import timed, interleaved, MiB  # noqa: E402


def make_raw(path, mib):
    """Three quarters random data, one quarter holes."""
    with open(path, "wb") as f:
        for i in range(mib):
            if i % 4 == 3:
                f.seek(MiB, 1)
            else:
                f.write(os.urandom(MiB))
        f.truncate(mib * MiB)


def new_vdi(x, s, sr, mib, fmt="qcow2"):
    rec = {"name_label": "b", "name_description": "", "SR": sr,
           "virtual_size": str(mib * MiB), "type": "user",
           "sharable": False, "read_only": False, "other_config": {},
           "xenstore_data": {}, "sm_config": {"image-format": fmt},
           "tags": []}
    return x.call("VDI.create", s, rec)


def curl_put(url, path):
    subprocess.run(["curl", "-sS", "-f", "-H", "Expect:", "-T", path, url],
                   check=True, capture_output=True)


def rewrite(d, x, s, vdi, mib):
    """5% of the disk in 1 MiB pieces, spread evenly, as chunk frames."""
    n = max(1, mib * 5 // 100)
    step = mib // n
    body = b""
    for i in range(n):
        body += struct.pack("<QI", i * step * MiB, MiB) + os.urandom(MiB)
    body += struct.pack("<QI", 0, 0)
    r, _ = put(d.http, "/import_raw_vdi?vdi=%s&session_id=%s&chunked"
               % (vdi, s), body)
    if r.status != 200:
        raise RuntimeError("rewrite: HTTP %d" % r.status)
    return n * MiB


def bench_delta(d, x, s, sr, tmp, mib, reps):
    rows = []
    raw = os.path.join(tmp, "d.raw")
    make_raw(raw, mib)
    url = "http://%s:%d" % d.http[1:]
    out = os.path.join(tmp, "out")
    for cbt in (False, True):
        vdi = new_vdi(x, s, sr, mib)
        curl_put(url + "/import_raw_vdi?vdi=%s&session_id=%s" % (vdi, s), raw)
        if cbt:
            x.call("VDI.enable_cbt", s, vdi)
        s1 = x.call("VDI.snapshot", s, vdi, {})
        changed = rewrite(d, x, s, vdi, mib)
        s2 = x.call("VDI.snapshot", s, vdi, {})
        for fmt in ("vhd", "qcow2"):
            q = "%s/export_raw_vdi?vdi=%s&session_id=%s&format=%s" % (
                url, s2, s, fmt)
            full = ["curl", "-sS", "-f", "-o", out, q]
            delta = ["curl", "-sS", "-f", "-o", out, q + "&base=" + s1]
            t_delta, t_full = interleaved(reps, lambda: timed(delta),
                                          lambda: timed(full))
            timed(delta)
            b_delta = os.path.getsize(out)
            timed(full)
            b_full = os.path.getsize(out)
            # interleaved(): ((time, RSS, CPU), (time, CPU)) medians
            rows.append(("cbt" if cbt else "chain", fmt, changed, t_delta[0],
                         t_full[0], b_delta, b_full))
    print("delta exports: %d MiB disk, 5%% rewritten, base=S1 against the "
          "full export of S2 (median of %d)" % (mib, reps))
    print("%-6s %-6s %10s %10s %7s %12s %12s %7s" % (
        "from", "format", "delta s", "full s", "ratio", "delta bytes",
        "full bytes", "bytes%"))
    for how, fmt, changed, td, tf, bd, bf in rows:
        print("%-6s %-6s %10.3f %10.3f %6.1fx %12d %12d %6.1f%%" % (
            how, fmt, td, tf, tf / td, bd, bf, 100.0 * bd / bf))


def bench_xva(d, x, s, sr, tmp, mib, reps, pid):
    rows = []
    url = "http://%s:%d" % d.http[1:]
    out = os.path.join(tmp, "out.xva")
    tar_out = os.path.join(tmp, "out.tar")
    for size in (mib // 4, mib):
        raws = [os.path.join(tmp, "disk%d.raw" % i) for i in range(2)]
        for r in raws:
            make_raw(r, size)
        vm = x.call("VM.get_by_uuid", s, d.vms["bench-%d" % size])
        for i, r in enumerate(raws):
            vdi = new_vdi(x, s, sr, size)
            curl_put(url + "/import_raw_vdi?vdi=%s&session_id=%s"
                     % (vdi, s), r)
            x.call("VBD.create", s, {
                "VM": vm, "VDI": vdi, "userdevice": str(i + 1),
                "bootable": False, "mode": "RW", "type": "Disk",
                "unpluggable": True, "empty": False, "other_config": {},
                "qos_algorithm_type": "", "qos_algorithm_params": {}})
        src = (url + "/export?uuid=%s&session_id=%s&use_compression=false"
               % (d.vms["bench-%d" % size], s))
        client = os.path.join(os.environ.get("abs_top_builddir", ""),
                              "bench", "xfer_client")
        if os.environ.get("BENCH_CLIENTS", "stream") == "curl" or \
                not os.access(client, os.X_OK):
            ours = ["curl", "-sS", "-f", "-o", out, src]
        else:
            ours = [client, "get", src, out]
        peer = ["tar", "-cf", tar_out, "-C", tmp] + \
            [os.path.basename(r) for r in raws]
        t_ours, t_tar = interleaved(reps, lambda: timed(ours, pid),
                                    lambda: timed(peer))
        rows.append((size, t_ours[:2], t_tar[0], os.path.getsize(out),
                     os.path.getsize(tar_out)))
        for r in raws:
            os.unlink(r)
    print("XVA export of a 2-disk VM (no compression) against tar -cf of "
          "the two raw disks (median of %d)" % reps)
    print("%-9s %10s %10s %7s %12s %12s %10s" % (
        "MiB/disk", "ours MB/s", "tar MB/s", "ratio", "xva bytes",
        "tar bytes", "xcpd +RSS"))
    for size, (t, rss), tt, bx, bt in rows:
        mb = 2 * size * MiB / 1e6
        print("%-9d %10.1f %10.1f %6.2fx %12d %12d %6.1f MiB" % (
            size, mb / t, mb / tt, tt / t, bx, bt, rss / MiB))


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    tmp = tempfile.mkdtemp(prefix="bench-delta-")
    try:
        with Daemon("bench-delta") as d:
            d.make_vms(["bench-%d" % (mib // 4), "bench-%d" % mib])
            d.start()
            x = XenAPI(d.http)
            s = x.login()
            sr = x.call("SR.get_all", s)[0]
            bench_delta(d, x, s, sr, tmp, mib, reps)
            bench_xva(d, x, s, sr, tmp, mib, reps, d.proc.pid)
            x.close()
            d.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open("/proc/loadavg") as f:
        print("load average at the end: %s" % " ".join(f.read().split()[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
