#!/usr/bin/python3
"""bench_nbd: the read rate of a VDI over NBD through xcpd (its front end
and the qemu-storage-daemon behind it) against qemu-nbd serving the same
image file, read by the same client (nbdcopy to null:), plain NBD and
TLS, in the same run.

A VDI of MIB MiB (default 512) of random data is imported through xcpd;
then, per mode, nbdcopy reads xcpd's export (VDI.get_nbd_info's URI) and
qemu-nbd's (the same qcow2 file, read-only, with the host's certificate
and key for TLS) REPS times each, interleaved (the host is shared: a burst
of load then falls on both). Rates come from the median times; the ratio
is our rate / qemu-nbd's (1.0: as fast as QEMU's own server).
    bench/bench_nbd.py PATH-TO-XCPD [MIB] [REPS]
"""

import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "xcpd"))
import test_xcpd as base  # noqa: E402
import test_nbd as t  # noqa: E402

MiB = 1 << 20


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def copy_time(uri):
    t0 = time.monotonic()
    p = subprocess.run(["nbdcopy", uri, "null:"], capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("nbdcopy %s: %s" % (uri, p.stderr))
    return time.monotonic() - t0


def qemu_nbd(image, port, tls_dir, pidfile):
    """qemu-nbd serving image read-only on port, listening when this
    returns (--fork); its pid."""
    argv = ["qemu-nbd", "-r", "-f", "qcow2", "--shared=8", "-b", "127.0.0.1",
            "-p", str(port), "-x", "peer", "--persistent", "--fork",
            "--pid-file", pidfile]
    if tls_dir:
        argv[1:1] = ["--object", "tls-creds-x509,id=tls0,dir=%s,"
                     "endpoint=server,verify-peer=off,sanity-check=off"
                     % tls_dir, "--tls-creds", "tls0"]
    subprocess.run(argv + [image], check=True, timeout=60)
    with open(pidfile) as f:
        return int(f.read())


def main():
    base.XCPD = sys.argv[1]
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    st = t.Setup()
    try:
        st.purpose(True, "insecure_nbd")
        vdi = st.new_vdi("bench", mib * MiB)
        st.put(vdi, os.urandom(mib * MiB))
        image = st.image(vdi)
        # the host's certificate and key, as qemu-nbd wants them
        tls = os.path.join(st.tmp, "tls")
        os.makedirs(tls)
        for src, dst in (("xcpd-cert.pem", "server-cert.pem"),
                         ("xcpd-cert.pem", "ca-cert.pem"),
                         ("xcpd-key.pem", "server-key.pem")):
            with open(os.path.join(st.d.state, src)) as f, \
                    open(os.path.join(tls, dst), "w") as g:
                g.write(f.read())
        print("NBD read of a %d MiB VDI, nbdcopy to null:, median of %d"
              % (mib, reps))
        print("%-6s %12s %12s %7s" % ("mode", "xcpd MB/s", "qemu-nbd MB/s",
                                      "ratio"))
        for mode in ("plain", "tls"):
            if mode == "tls":
                st.purpose(False, "insecure_nbd")
                st.purpose(True, "nbd")
            certs = tls if mode == "tls" else None
            ours_uri = t.uri(st.info(vdi)[0], certs)
            port = t.free_port()
            peer = qemu_nbd(image, port, certs,
                            os.path.join(st.tmp, "qemu-nbd.pid"))
            peer_uri = "%s://127.0.0.1:%d/peer%s" % (
                "nbds" if certs else "nbd", port,
                "?tls-certificates=" + certs if certs else "")
            try:
                a, b = [], []
                for _ in range(reps):
                    a.append(copy_time(ours_uri))
                    b.append(copy_time(peer_uri))
            finally:
                os.kill(peer, signal.SIGTERM)
            ours, theirs = mib * MiB / median(a) / 1e6, \
                mib * MiB / median(b) / 1e6
            print("%-6s %12.0f %12.0f %7.2f" % (mode, ours, theirs,
                                                ours / theirs))
    finally:
        st.close()


if __name__ == "__main__":
    main()
