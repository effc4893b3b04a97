#!/usr/bin/env python3
"""Sample the harness hosts' pool-role files every 0.2 s (tests/pool/failover.sh).

    role_sampler.py DIR N

Until killed: every 0.2 s, for hosts 1..N, reads DIR/hI/state/pool-role;
a host counts as a coordinator in a sample when its file says
`coordinator ...`, DIR/deadI does not exist (the host was killed and is
not started again) and the file's inode is not the one in DIR/staleI (the
file as it was when the host died: a restarted host's xcpd has not
rewritten it yet, and takes no write until it does). Appends
"<ms> <coordinators...>" to DIR/samples, and a line to DIR/violations
whenever a sample has two coordinators or more.
"""
import os
import sys
import time


def coordinator(d, i):
    if os.path.exists(os.path.join(d, "dead%d" % i)):
        return False
    path = os.path.join(d, "h%d" % i, "state", "pool-role")
    try:
        ino = os.stat(path).st_ino
        with open(path) as f:
            line = f.read()
    except OSError:
        return False
    try:
        with open(os.path.join(d, "stale%d" % i)) as f:
            if int(f.read().strip() or 0) == ino:
                return False
    except (OSError, ValueError):
        pass
    return line.startswith("coordinator ")


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    period = 0.2
    nxt = time.monotonic()
    with open(os.path.join(d, "samples"), "a") as out:
        while True:
            c = [i for i in range(1, n + 1) if coordinator(d, i)]
            ms = int(time.time() * 1000)
            out.write("%d%s\n" % (ms, "".join(" %d" % i for i in c)))
            out.flush()
            if len(c) > 1:
                with open(os.path.join(d, "violations"), "a") as v:
                    v.write("%d two coordinators: %s\n" % (ms, c))
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))


main()
