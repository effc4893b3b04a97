#!/usr/bin/env python3
"""The phases of bench/bench_pool.sh that talk XenAPI (stdlib only), run
inside one harness host's namespace, which reaches every host's xcpd.

    bench_pool.py fill URL PASSWORD COUNT
        COUNT VMs cloned from a template on the coordinator at URL;
        prints "fill COUNT VMs in S s (R per s)".
    bench_pool.py propagate COORD_URL PEER_URL PASSWORD WRITES MEMBER_URL...
        WRITES VM.set_name_label calls one at a time on the coordinator,
        each watched for with event.from on every member's replica (a
        slave_local_login_with_password session, which reads the
        replica); then the same calls on PEER_URL, an unpooled host.
        Prints p50/p99 of the call (acknowledged: a quorum holds it;
        measured first, without the watchers), of the last replica to
        hold it (with the watchers), and the unpooled host's call, and
        their ratios.
    bench_pool.py failover URL... PASSWORD
        Waits until one of the URLs takes a write (its login succeeds and
        VM.set_name_label returns); prints the address and the time since
        the script started (the caller killed the coordinator just
        before).
"""
import socket
import sys
import threading
import time
import xmlrpc.client


def proxy(url):
    return xmlrpc.client.ServerProxy(url, allow_none=True)


def ok(r):
    if r.get("Status") != "Success":
        raise RuntimeError(" ".join(str(x) for x in r["ErrorDescription"]))
    return r["Value"]


def login(url, password):
    return ok(proxy(url).session.login_with_password("root", password, "1.0",
                                                     "bench-pool"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def template(p, s):
    return ok(p.VM.get_by_name_label(s, "Debian Bookworm 12"))[0]


def fill(url, password, count):
    p = proxy(url)
    s = login(url, password)
    tpl = template(p, s)
    t0 = time.time()
    for i in range(count):
        ok(p.VM.clone(s, tpl, "bench-fill-%d" % i))
    dt = time.time() - t0
    print("fill %d VMs in %.1f s (%.0f per s)" % (count, dt, count / dt))


class Watcher(threading.Thread):
    """event.from on one member's replica: when each name arrives."""

    def __init__(self, url, password, vm):
        super().__init__(daemon=True)
        self.p = proxy(url)
        self.s = ok(self.p.session.slave_local_login_with_password(
            "root", password))
        self.vm = vm
        self.seen = {}
        self.stop = False
        self.token = ok(self.p.event.__getattr__("from")(
            self.s, ["VM"], "", 0.0))["token"]

    def run(self):
        while not self.stop:
            r = ok(self.p.event.__getattr__("from")(self.s, ["VM"],
                                                    self.token, 5.0))
            now = time.time()
            self.token = r["token"]
            for ev in r["events"]:
                if ev.get("ref") == self.vm and "snapshot" in ev:
                    name = ev["snapshot"].get("name_label", "")
                    self.seen.setdefault(name, now)


def writes(p, s, vm, n, tag):
    sent, acked = {}, []
    for i in range(n):
        name = "%s-%d" % (tag, i)
        t = time.time()
        sent[name] = t
        ok(p.VM.set_name_label(s, vm, name))
        acked.append((time.time() - t) * 1000)
        time.sleep(0.005)
    return sent, acked


def propagate(coord, peer, password, n, members):
    p = proxy(coord)
    s = login(coord, password)
    vm = ok(p.VM.clone(s, template(p, s), "bench-propagate"))
    time.sleep(1)  # the clone reaches every replica
    # acknowledged: without watchers (they load every member's CPU)
    _, acked = writes(p, s, vm, n, "a")
    ws = [Watcher(m, password, vm) for m in members]
    for w in ws:
        w.start()
    sent, _ = writes(p, s, vm, n, "w")
    deadline = time.time() + 30
    last = "w-%d" % (n - 1)
    while time.time() < deadline and not all(last in w.seen for w in ws):
        time.sleep(0.1)
    for w in ws:
        w.stop = True
    # event.from gives a row's latest state: writes that land between
    # two calls come as one event. A replica applies in order, so a
    # write is held once it or any later one is seen there.
    names = ["w-%d" % i for i in range(n)]
    held = []
    for w in ws:
        h, best = {}, None
        for name in reversed(names):
            t = w.seen.get(name)
            if t is not None and (best is None or t < best):
                best = t
            h[name] = best
        held.append(h)
    every = []
    missing = 0
    for name in names:
        ts = [h[name] for h in held]
        if None in ts:
            missing += 1
            continue
        every.append((max(ts) - sent[name]) * 1000)
    pp = proxy(peer)
    ps = login(peer, password)
    pvm = ok(pp.VM.clone(ps, template(pp, ps), "bench-peer"))
    _, peer_acked = writes(pp, ps, pvm, n, "p")
    a50, a99 = pct(acked, 50), pct(acked, 99)
    u50, u99 = pct(peer_acked, 50), pct(peer_acked, 99)
    print("commit acknowledged (quorum of %d hosts): p50 %.2f ms, "
          "p99 %.2f ms" % (len(members) + 1, a50, a99))
    if every:
        e50, e99 = pct(every, 50), pct(every, 99)
        print("in every replica (%d members, event.from on each): "
              "p50 %.2f ms, p99 %.2f ms" % (len(members), e50, e99))
    print("peer, the same call on an unpooled host: p50 %.2f ms, "
          "p99 %.2f ms" % (u50, u99))
    print("ratio pooled/unpooled: p50 %.1fx, p99 %.1fx"
          % (a50 / u50, a99 / u99))
    if missing:
        print("MISSING: %d of %d writes never reached every replica"
              % (missing, n))
        sys.exit(1)


def failover(urls, password):
    t0 = time.time()
    while time.time() - t0 < 120:
        for u in urls:
            try:
                p = proxy(u)
                r = p.session.login_with_password("root", password, "1.0",
                                                  "bench-pool")
                if r.get("Status") != "Success":
                    continue
                s = r["Value"]
                vm = ok(p.VM.get_all(s))[0]
                r = p.VM.set_name_description(s, vm, "after failover")
                if r.get("Status") == "Success":
                    print("failover: %s took a write %.2f s after the kill"
                          % (u, time.time() - t0))
                    return
            except (OSError, xmlrpc.client.Error):
                pass
        time.sleep(0.05)
    print("failover: no host took a write within 120 s")
    sys.exit(1)


def main():
    socket.setdefaulttimeout(60)
    a = sys.argv[1:]
    if a[0] == "fill":
        fill(a[1], a[2], int(a[3]))
    elif a[0] == "propagate":
        propagate(a[1], a[2], a[3], int(a[4]), a[5:])
    elif a[0] == "failover":
        failover(a[1:-1], a[-1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
