#!/usr/bin/python3
"""VM export and import (XVA) with Xen Orchestra's npm client `xen-api`
(getResource('/export/'), putResource('/import/') with a task, as XO's
VM_export/VM_import use them) against xcpd over HTTP and HTTPS: the
scenario is xva_xo.mjs. node/npm and the client are set up as
interop_xo.py does (same cache); exit 77 when that is impossible.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, HERE, PASSWORD, USER, install_signal_exit,  # noqa: E402
                     log, run_node)
import interop_xo as X  # noqa: E402

C = X.C
C.name = "xva_xo"


def run(d, module, scheme):
    addr = d.http if scheme == "http" else d.https
    env = dict(os.environ, XEN_API_MODULE=module, VM_UUID=d.vms["xo"],
               XAPI_URL="%s://%s:%d" % (scheme, addr[1], addr[2]),
               XO_USER=USER, XO_PASS=PASSWORD)
    run_node(C, os.path.join(HERE, "xva_xo.mjs"), env, "[%s]" % scheme)


def main():
    install_signal_exit(C, 900)
    why = X.ensure_node()
    if why:
        log("SKIP: " + why)
        return X.SKIP
    (major, minor), vtext = X.node_version()
    if (major, minor) < (18, 17):
        log("SKIP: node %s too old" % vtext)
        return X.SKIP
    module = X.ensure_xen_api()
    with Daemon("xva-xo") as d:
        d.make_vms(["xo"])
        d.start()
        for scheme in ("http", "https"):
            C.section(scheme, run, d, module, scheme)
        C.eq(d.stop(), 0, "xcpd stops cleanly")
    return C.finish()


if __name__ == "__main__":
    sys.exit(main())
