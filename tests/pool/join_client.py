#!/usr/bin/env python3
"""pool.join over XML-RPC (stdlib only) for tests/pool/join.sh, so that
the test sees the exact XenAPI error code and parameters.

    join_client.py URL PASSWORD MASTER_ADDRESS MASTER_PASSWORD [force]
        logs in to URL as root with PASSWORD and calls pool.join (or
        pool.join_force) with MASTER_ADDRESS, root, MASTER_PASSWORD;
        prints OK, or "ERROR <code> <params...>" (exit 1)
"""
import socket
import sys
import xmlrpc.client


def main():
    socket.setdefaulttimeout(120)
    url, password, master, mpw = sys.argv[1:5]
    force = len(sys.argv) > 5 and sys.argv[5] == "force"
    p = xmlrpc.client.ServerProxy(url, allow_none=True)
    r = p.session.login_with_password("root", password, "1.0", "join-test")
    if r.get("Status") != "Success":
        print("ERROR", *r.get("ErrorDescription", ["?"]))
        sys.exit(1)
    s = r["Value"]
    call = p.pool.join_force if force else p.pool.join
    r = call(s, master, "root", mpw)
    if r.get("Status") != "Success":
        print("ERROR", *r.get("ErrorDescription", ["?"]))
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
