#!/usr/bin/env python3
"""The layering check: no #include, and no call between the objects of the
library, across the rules of shared/style.md.

The rules are the three tables below (LAYERS, RULES, EXCEPTIONS): change
the house here, nowhere else.

Usage: layering.py SRCDIR [BUILDDIR]
  Checks every #include "..." and #include <xcp/...> of the files under
  lib/, hv/, include/, cmd/, examples/ and bindings/ of SRCDIR. With
  BUILDDIR, also every call (an undefined symbol of one object of the
  library, defined by another, as nm(1) lists them) between the objects
  its Makefile lists for libxcp_core; one of them missing fails.
Prints each violation, one line each, and a count per rule; exits 1 when
there is any violation that EXCEPTIONS does not name. Exceptions no longer
needed are reported (not failed): remove their row.
"""
import os
import re
import subprocess
import sys

# Layer of a file: the longest matching path prefix.
LAYERS = {
    "core": ["lib/libxcp/core/"],
    "model": ["lib/libxcp/model/"],
    "db": ["lib/libxcp/db/"],
    "rpc": ["lib/libxcp/rpc/"],
    # the runtime and the typed front door; internal.h declares the session
    # driver behind it
    "engine": ["lib/libxcp/engine/", "lib/libxcp/internal.h"],
    "api": ["lib/libxcp/api/"],
    "server": ["lib/libxcp/server/"],
    "client": ["lib/libxcp/client/"],
    "sr": ["lib/libxcp/sr/"],
    # pools: the corosync side, self-contained (libc and corosync only)
    "cluster": ["lib/libxcp/cluster/"],
    # pools: the engine's side of replication (lib/libxcp/pool)
    "pool": ["lib/libxcp/pool/"],
    "metrics": ["lib/libxcp/metrics/"],
    "hv": ["hv/"],
    "sys": ["include/xcp/sys/"],
    "public": ["include/xcp/"],
    # the front ends' shared helpers (libc only), compiled into each
    "cmd": ["cmd/common/"],
    "xe": ["cmd/xe/"],
    "xcpd": ["cmd/xcpd/"],
    "xcp-top": ["cmd/xcp-top/"],
    "examples": ["examples/"],
    "bindings": ["bindings/"],
}

# What each layer may use besides itself: layers, or single files (which
# bind #include lines only; calls are checked by layer).
BELOW_ENGINE = ["core", "model", "db", "rpc", "client", "sr", "hv", "sys",
                "public", "metrics"]
RULES = {
    "core": ["include/xcp/common.h", "include/xcp/errors.h",
             "include/xcp/value.h"],
    "model": ["core", "public"],
    "db": ["core", "model", "public"],
    "rpc": ["core", "model", "public"],
    "engine": BELOW_ENGINE + ["api", "pool"],
    # api/pool.c and host.c: pool membership (join, eject, host.destroy)
    # uses the pool's files, corosync settings and state transfer.
    "api": BELOW_ENGINE + ["engine", "pool"],
    "server": ["engine", "rpc", "model", "core", "public"],
    "client": ["engine", "rpc", "model", "core", "public"],
    "sr": ["core", "sys"],
    "cluster": [],
    "pool": BELOW_ENGINE + ["engine", "cluster"],
    "metrics": ["core", "public"],
    "hv": ["core", "sys"],
    "sys": ["public"],
    "public": [],
    # cmd/common: fdio (libc only) and conn (the public API: sessions)
    "cmd": ["public"],
    "xe": ["public", "sys", "cmd"],
    # xcpd's /cli runs xe's commands (cmd/xe/libxecmd.la) for XAPI's
    # thin client (issue 12): the same code, so the same output
    "xcpd": ["public", "sys", "cmd", "xe"],
    "xcp-top": ["public", "cmd"],
    "examples": ["public", "sys"],
    "bindings": ["public", "sys"],
}

# Known violations, each removed by a named item of an issue: (kind, from,
# to, why). kind "include": from includes to; "call": an object of source
# from calls a function defined in source to.
EXCEPTIONS = []

SCAN_DIRS = ["lib", "hv", "include", "cmd", "examples", "bindings"]
# -I paths of the library's build, in order (Makefile.am).
SEARCH = ["include", "lib/libxcp", "hv"]
# Generated into the build directory, not ours to check.
IGNORED = {"config.h"}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def layer_of(rel):
    best, blen = None, -1
    for name, prefixes in LAYERS.items():
        for p in prefixes:
            if (rel == p or rel.startswith(p)) and len(p) > blen:
                best, blen = name, len(p)
    return best


def allowed(src_layer, target, target_layer, calls=False):
    if src_layer == target_layer:
        return True
    for r in RULES.get(src_layer, []):
        if r == target_layer or (not calls and r == target):
            return True
    return False


def sources(src):
    for d in SCAN_DIRS:
        for root, dirs, files in os.walk(os.path.join(src, d)):
            dirs[:] = sorted(x for x in dirs if not x.startswith("."))
            for f in sorted(files):
                if f.endswith((".c", ".h", ".cc", ".cpp")):
                    yield os.path.relpath(os.path.join(root, f), src)


def resolve(src, rel, quote, name):
    """The included file relative to src, None if not ours (system), or
    "?" + name when a quoted include is nowhere to be found."""
    cands = []
    if quote == '"':
        cands.append(os.path.join(os.path.dirname(rel), name))
    cands += [os.path.join(s, name) for s in SEARCH]
    for c in cands:
        c = os.path.normpath(c)
        if os.path.isfile(os.path.join(src, c)):
            return c
    if quote == '"' and name not in IGNORED:
        return "?" + name
    return None


def include_violations(src):
    out = []
    for rel in sources(src):
        sl = layer_of(rel)
        if sl is None:
            continue
        with open(os.path.join(src, rel), errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                t = resolve(src, rel, m.group(1), m.group(2))
                if t is None:
                    continue
                if t.startswith("?"):
                    out.append(("include", rel, t, sl, "?",
                                "%s:%d: unresolved include \"%s\""
                                % (rel, lineno, t[1:])))
                    continue
                tl = layer_of(t)
                if not allowed(sl, t, tl):
                    out.append(("include", rel, t, sl, tl,
                                "%s:%d: %s includes %s (%s)"
                                % (rel, lineno, sl, t, tl)))
    return out


def objects(build):
    """(source, object path or None) of every object of the library, as
    automake lists them in BUILD/Makefile (libtool's PIC object, else the
    plain one); None when the Makefile lists none."""
    try:
        with open(os.path.join(build, "Makefile")) as fh:
            text = fh.read().replace("\\\n", " ")
    except OSError:
        return None
    m = re.search(r"^am_lib_libxcp_libxcp_core_la_OBJECTS\s*=(.*)$", text,
                  re.M)
    if not m:
        return None
    out = []
    for lo in m.group(1).split():
        d, f = os.path.split(lo)
        # automake's prefix: the library's name, with its path unless the
        # source is beside the library's Makefile.am
        name = re.sub(r"^(lib_libxcp_)?libxcp_core_la-", "", f[:-3])
        obj = None
        for cand in (os.path.join(build, d, ".libs", f[:-3] + ".o"),
                     os.path.join(build, d, f[:-3] + ".o")):
            if os.path.isfile(cand):
                obj = cand
                break
        out.append((os.path.join(d, name + ".c"), obj))
    return out


def nm(path, flags):
    r = subprocess.run(["nm", "-P"] + flags + [path], capture_output=True,
                       text=True, check=True)
    return [ln.split()[:2] for ln in r.stdout.splitlines() if ln.strip()]


def call_violations(build):
    objs = objects(build)
    if not objs:
        return None, []
    missing = [rel for rel, o in objs if o is None]
    objs = [(rel, o) for rel, o in objs if o is not None]
    defined = {}
    for rel, o in objs:
        for name, kind in nm(o, ["-g", "--defined-only"]):
            defined[name] = rel
    out = []
    for rel, o in objs:
        sl = layer_of(rel)
        bad = {}
        for name, _ in nm(o, ["-u"]):
            t = defined.get(name)
            if t is not None and t != rel and \
                    not allowed(sl, t, layer_of(t), calls=True):
                bad.setdefault(t, []).append(name)
        for t in sorted(bad):
            out.append(("call", rel, t, sl, layer_of(t),
                        "%s calls %s (%s, in %s)"
                        % (rel, ", ".join(sorted(bad[t])), layer_of(t), t)))
    return missing, out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = sys.argv[1]
    found = include_violations(src)
    missing = []
    if len(sys.argv) == 3:
        missing, calls = call_violations(sys.argv[2])
        if missing is None:
            print("no library objects listed in %s/Makefile: configure "
                  "and build first" % sys.argv[2])
            return 1
        found += calls
    known = {(k, f, t): why for k, f, t, why in EXCEPTIONS}
    used = set()
    counts = {}
    fail = 0
    for kind, f, t, sl, tl, text in found:
        rule = "%s %s -> %s" % (kind, sl, tl)
        counts[rule] = counts.get(rule, 0) + 1
        if (kind, f, t) in known:
            used.add((kind, f, t))
            print("known: %s [%s]" % (text, known[(kind, f, t)]))
        else:
            print("VIOLATION: " + text)
            fail += 1
    for rel in missing:
        print("VIOLATION: no object for %s under %s" % (rel, sys.argv[2]))
        fail += 1
    checked = {"include", "call"} if len(sys.argv) == 3 else {"include"}
    for key, why in known.items():
        if key not in used and key[0] in checked:
            print("note: exception no longer needed, remove it: %s %s -> %s"
                  " [%s]" % (key[0], key[1], key[2], why))
    for rule in sorted(counts):
        print("%4d %s" % (counts[rule], rule))
    print("%d violation(s), %d known exception(s) used" % (fail, len(used)))
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
