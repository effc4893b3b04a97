#!/usr/bin/python3
"""Xen Orchestra's stats poll (npm client `xen-api`, getResource of
/rrd_updates with XO's query, JSON.parse) against xcpd over HTTP and
HTTPS with a running VM: the scenario is rrd_xo.mjs. node/npm and the
client are set up as interop_xo.py does (same cache); exit 77 when that
is impossible.
"""

import os
import shutil
import sys
import time
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, HERE, PASSWORD, USER, install_signal_exit,  # noqa: E402
                     log, run_node)
import interop_xo as X  # noqa: E402

C = X.C
C.name = "rrd_xo"


def start_vm(d):
    """A running VM, and time for its first PDP (a 5 s boundary)."""
    addr = d.http
    s = xmlrpc.client.ServerProxy("http://%s:%d/" % (addr[1], addr[2]))
    sess = s.session.login_with_password(USER, PASSWORD)["Value"]
    t = s.VM.get_by_name_label(sess, "Debian Bookworm 12")["Value"][0]
    vm = s.VM.clone(sess, t, "rrd-xo")["Value"]
    s.VM.provision(sess, vm)
    s.VM.start(sess, vm, False, False)
    time.sleep(6)


def run(d, module, scheme):
    addr = d.http if scheme == "http" else d.https
    env = dict(os.environ, XEN_API_MODULE=module,
               XAPI_URL="%s://%s:%d" % (scheme, addr[1], addr[2]),
               XO_USER=USER, XO_PASS=PASSWORD)
    run_node(C, os.path.join(HERE, "rrd_xo.mjs"), env, "[%s]" % scheme)


def main():
    install_signal_exit(C, 600)
    why = X.ensure_node()
    if why:
        log("SKIP: " + why)
        return X.SKIP
    (major, minor), vtext = X.node_version()
    if (major, minor) < (18, 17):
        log("SKIP: node %s too old" % vtext)
        return X.SKIP
    module = X.ensure_xen_api()
    with Daemon("rrd-xo") as d:
        d.start()
        start_vm(d)
        for scheme in ("http", "https"):
            C.section(scheme, run, d, module, scheme)
        C.eq(d.stop(), 0, "xcpd stops cleanly")
    return C.finish()


if __name__ == "__main__":
    sys.exit(main())
