#!/usr/bin/python3
"""VDI transfers with Xen Orchestra's npm client `xen-api` (putResource,
getResource, as XO uses them) against xcpd over HTTP and HTTPS: the
scenario is transfer_xo.mjs; the VHD it exported is then checked with
qemu-img against the data. node/npm and the client are set up as
interop_xo.py does (same cache); exit 77 when that is impossible.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, HERE, PASSWORD, USER, install_signal_exit,  # noqa: E402
                     log, run_node)
import interop_xo as X  # noqa: E402

C = X.C
C.name = "transfer_xo"


def run(d, module, scheme, tmp):
    addr = d.http if scheme == "http" else d.https
    env = dict(os.environ, XEN_API_MODULE=module, OUT_DIR=tmp,
               XAPI_URL="%s://%s:%d" % (scheme, addr[1], addr[2]),
               XO_USER=USER, XO_PASS=PASSWORD)
    run_node(C, os.path.join(HERE, "transfer_xo.mjs"), env, "[%s]" % scheme)
    q = subprocess.run(["qemu-img", "compare", "-f", "vpc", "-F", "raw",
                        os.path.join(tmp, "xo.vhd"), os.path.join(tmp, "xo.raw")],
                       capture_output=True, text=True)
    C.eq(q.returncode, 0, "[%s] qemu-img compare: XO's VHD = the data %s"
         % (scheme, q.stdout + q.stderr))


def main():
    install_signal_exit(C, 900)
    why = X.ensure_node()
    if why or shutil.which("qemu-img") is None:
        log("SKIP: " + (why or "qemu-img missing"))
        return X.SKIP
    (major, minor), vtext = X.node_version()
    if (major, minor) < (18, 17):
        log("SKIP: node %s too old" % vtext)
        return X.SKIP
    module = X.ensure_xen_api()
    tmp = tempfile.mkdtemp(prefix="transfer-xo-")
    try:
        with Daemon("transfer-xo") as d:
            d.start()
            for scheme in ("http", "https"):
                C.section(scheme, run, d, module, scheme, tmp)
            C.eq(d.stop(), 0, "xcpd stops cleanly")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return C.finish()


if __name__ == "__main__":
    sys.exit(main())
