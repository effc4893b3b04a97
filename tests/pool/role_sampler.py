#!/usr/bin/env python3
"""Sample the harness hosts' pool-role files every 0.2 s (tests/pool/failover.sh).

    role_sampler.py DIR N [NETNS_PREFIX]

Until killed: every 0.2 s, for hosts 1..N, reads DIR/hI/state/pool-role;
a host counts as a coordinator in a sample when its file says
`coordinator ...`, DIR/deadI does not exist (the host was killed and is
not started again) and the file's inode is not the one in DIR/staleI (the
file as it was when the host died: a restarted host's xcpd has not
rewritten it yet, and takes no write until it does). Appends
"<ms> <coordinators...>" to DIR/samples, and a line to DIR/violations
whenever a sample has two coordinators or more.

With NETNS_PREFIX (tests/pool/faults.sh, where partitions leave a deposed
coordinator's file as it was), a host counts only if, besides, its
corosync says its partition is quorate (`corosync-quorumtool -s` in the
network namespace NETNS_PREFIX<I>, asked only of the hosts whose file
says coordinator): never two coordinators in quorate partitions. The
file and the quorum are read a moment apart, so a sample at the instant
a partition forms may catch a coordinator whose corosync has not yet
seen it lose its quorum: such a sample is written to DIR/overlaps; only
two samples in a row with two coordinators are violations (a
coordinator that stays quorate beside another).
"""
import os
import subprocess
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


def quorate(prefix, i):
    try:
        r = subprocess.run(["ip", "netns", "exec", "%s%d" % (prefix, i),
                            "corosync-quorumtool", "-s"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    for line in r.stdout.decode(errors="replace").splitlines():
        if line.startswith("Quorate:"):
            return line.split()[-1] == "Yes"
    return False


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    prefix = sys.argv[3] if len(sys.argv) > 3 else None
    period = 0.2
    nxt = time.monotonic()
    before = []
    with open(os.path.join(d, "samples"), "a") as out:
        while True:
            c = [i for i in range(1, n + 1) if coordinator(d, i)]
            if prefix:
                c = [i for i in c if quorate(prefix, i)]
            ms = int(time.time() * 1000)
            out.write("%d%s\n" % (ms, "".join(" %d" % i for i in c)))
            out.flush()
            if len(c) > 1:
                bad = not prefix or len(before) > 1
                name = "violations" if bad else "overlaps"
                with open(os.path.join(d, name), "a") as v:
                    v.write("%d two coordinators: %s\n" % (ms, c))
            before = c
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))


main()
