#!/usr/bin/env python3
"""Log in to a XenAPI host over XML-RPC (python3's stdlib only) and print
what it says about itself, for tests/pool/harness.sh.

    login.py URL PASSWORD [TIMEOUT]

Prints "<host uuid> <hostname> <address>" of the host the session is on
(session.get_this_host), or "ERROR <XenAPI error...>" / "UNREACHABLE
<reason>"; exits 0, 1 or 2 respectively."""
import socket
import sys
import xmlrpc.client


def main():
    url, password = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    socket.setdefaulttimeout(timeout)
    proxy = xmlrpc.client.ServerProxy(url, allow_none=True)
    try:
        r = proxy.session.login_with_password("root", password, "1.0",
                                              "netns-pool-test")
        if r.get("Status") != "Success":
            print("ERROR", *r.get("ErrorDescription", ["?"]))
            return 1
        s = r["Value"]
        if not s.startswith("OpaqueRef:"):
            print("ERROR", "bad session ref", s)
            return 1
        h = proxy.session.get_this_host(s, s)["Value"]
        rec = proxy.host.get_record(s, h)["Value"]
        proxy.session.logout(s)
    except (OSError, xmlrpc.client.ProtocolError) as e:
        print("UNREACHABLE", e)
        return 2
    print(rec["uuid"], rec["hostname"], rec["address"])
    return 0


sys.exit(main())
