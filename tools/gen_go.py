#!/usr/bin/env python3
"""Generate the Go binding's model file from lib/libxcp/model/model.def.

Output (committed; `make regen` rewrites it, tests/meta/regen.sh checks it
is current):
  bindings/go/model_gen.go   enums, typed refs, records, one class accessor
                             per class with one method per message (and
                             <Message>Async for those callable as tasks),
                             and the decoders/encoders between Go values
                             and libxcp's xcp_value for every model type

The model is read with tools/genmodel.py's parser and message builder, so
the Go API has exactly the messages (explicit and generated) of the C API.

Usage: gen_go.py SRCDIR [OUTDIR]   (OUTDIR defaults to SRCDIR)
"""
import os
import re
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genmodel  # noqa: E402

OUT = "bindings/go/model_gen.go"

# Parts of model names spelled as Go initialisms.
INITIALISMS = {
    "uuid": "UUID", "id": "ID", "ip": "IP", "ipv4": "IPv4", "ipv6": "IPv6",
    "url": "URL", "uri": "URI", "vm": "VM", "vms": "VMs", "sr": "SR",
    "srs": "SRs", "vdi": "VDI", "vdis": "VDIs", "vbd": "VBD", "vbds": "VBDs",
    "vif": "VIF", "vifs": "VIFs", "pif": "PIF", "pifs": "PIFs", "pbd": "PBD",
    "pbds": "PBDs", "cpu": "CPU", "cpus": "CPUs", "mac": "MAC", "mtu": "MTU",
    "http": "HTTP", "https": "HTTPS", "nbd": "NBD", "ha": "HA", "tls": "TLS",
    "ssl": "SSL", "dns": "DNS", "os": "OS", "pv": "PV", "hvm": "HVM",
    "pvh": "PVH", "pci": "PCI", "vcpus": "VCPUs", "cbt": "CBT", "dhcp": "DHCP",
    "api": "API", "xml": "XML", "json": "JSON", "rpc": "RPC", "numa": "NUMA",
    "ntp": "NTP", "igmp": "IGMP", "lacp": "LACP", "slb": "SLB", "vlan": "VLAN",
    "vtpm": "VTPM", "vtpms": "VTPMs", "usb": "USB", "gpu": "GPU", "crc": "CRC",
    "rfb": "RFB", "rdp": "RDP", "ssh": "SSH", "nvram": "NVRAM", "sriov": "SRIOV",
    "ca": "CA", "pem": "PEM", "vgpu": "VGPU", "vgpus": "VGPUs", "pgpu": "PGPU",
    "pusb": "PUSB", "vusb": "VUSB", "vusbs": "VUSBs", "dr": "DR",
}

GO_KEYWORDS = {"break", "case", "chan", "const", "continue", "default",
               "defer", "else", "fallthrough", "for", "func", "go", "goto",
               "if", "import", "interface", "map", "package", "range",
               "return", "select", "struct", "switch", "type", "var",
               # names the generated methods use themselves
               "ctx", "c", "args", "res", "err", "x", "d", "a", "t"}


def camel(name):
    """An exported Go name for a model name: VM_guest_metrics ->
    VMGuestMetrics, get_VCPUs_max -> GetVCPUsMax, balance-slb ->
    BalanceSLB."""
    out = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        if not part:
            continue
        low = part.lower()
        if low in INITIALISMS:
            out.append(INITIALISMS[low])
        else:
            out.append(part[0].upper() + part[1:])
    s = "".join(out)
    if s and s[0].isdigit():
        s = "X" + s
    return s


def lower_camel(name):
    """An unexported Go name (parameters): new_name -> newName."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    if not parts:
        return "arg"
    first = parts[0]
    s = (first if first.isupper() and len(first) > 1 else first[0].lower()
         + first[1:]) + camel("_".join(parts[1:]))
    if s in GO_KEYWORDS:
        s += "_"
    return s


def mangle(spell):
    return re.sub(r"[^A-Za-z0-9]", "_", spell)


def comment(paras, indent=""):
    """A // comment of the paragraphs, wrapped."""
    out = []
    for i, p in enumerate(paras):
        if i:
            out.append(indent + "//")
        for ln in textwrap.wrap(p, 76 - len(indent), break_long_words=False,
                                break_on_hyphens=False):
            out.append(indent + "// " + ln)
    return out


def golit(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


class GoGen:
    def __init__(self, g):
        self.g = g
        self.m = g.m
        names = {}
        for c in self.m.classes:
            gn = camel(c["name"])
            if gn in names:
                raise SystemExit("gen_go: classes %s and %s are both Go %s"
                                 % (names[gn], c["name"], gn))
            names[gn] = c["name"]
            c["go"] = gn
        enames = {}
        for en, _ in self.m.enums:
            gn = camel(en)
            if gn in enames or gn + "Ref" in names or gn in names:
                raise SystemExit("gen_go: enum %s collides as Go %s" % (en, gn))
            enames[gn] = en

    # ---- types ------------------------------------------------------------
    def modelled(self, cls):
        return cls in self.m.class_ids

    def cls_go(self, cls):
        return self.m.classes[self.m.class_ids[cls]]["go"]

    def gotype(self, t):
        k = t.kind
        if k == "string":
            return "string"
        if k == "int":
            return "int64"
        if k == "float":
            return "float64"
        if k == "bool":
            return "bool"
        if k == "datetime":
            return "time.Time"
        if k == "ref":
            return self.cls_go(t.ref) + "Ref" if self.modelled(t.ref) else "Ref"
        if k == "enum":
            return camel(t.ref)
        if k == "record":
            return self.cls_go(t.ref) + "Record"
        if k == "set":
            return "[]" + self.gotype(t.a)
        if k == "map":
            return "map[%s]%s" % (self.gotype(t.a), self.gotype(t.b))
        if k == "any":
            return "any"
        raise SystemExit("gen_go: no Go type for " + t.spell())

    def dec_fn(self, t):
        return "dec_" + mangle(t.spell())

    def enc_fn(self, t):
        return "enc_" + mangle(t.spell())

    def key_fns(self, t):
        """Map keys travel as strings: (from string, to string)."""
        k = t.kind
        if k == "int":
            return "keyInt", "keyFromInt"
        if k in ("string", "ref", "enum"):
            gt = self.gotype(t)
            return "keyString[%s]" % gt, "keyFromString[%s]" % gt
        raise SystemExit("gen_go: map key type %s" % t.spell())

    def dec_body(self, t):
        k = t.kind
        gt = self.gotype(t)
        if k in ("string", "int", "float", "bool", "datetime", "any"):
            return {"string": "decString(d, v)", "int": "decInt(d, v)",
                    "float": "decFloat(d, v)", "bool": "decBool(d, v)",
                    "datetime": "decTime(d, v)", "any": "decAny(d, v)"}[k]
        if k in ("ref", "enum"):
            return "%s(decString(d, v))" % gt
        if k == "record":
            return "decRecord%s(d, v)" % self.cls_go(t.ref)
        if k == "set":
            return "decSet(d, v, %s)" % self.dec_fn(t.a)
        if k == "map":
            fk, _ = self.key_fns(t.a)
            return "decMap(d, v, %s, %s)" % (fk, self.dec_fn(t.b))
        raise SystemExit("gen_go: dec " + k)

    def enc_body(self, t):
        k = t.kind
        if k in ("string", "int", "float", "bool", "datetime", "any"):
            return {"string": "encString(a, v, x)", "int": "encInt(v, x)",
                    "float": "encFloat(v, x)", "bool": "encBool(v, x)",
                    "datetime": "encTime(v, x)", "any": "encAny(a, v, x)"}[k]
        if k in ("ref", "enum"):
            return "encString(a, v, string(x))"
        if k == "record":
            return "encRecord%s(a, v, x, false)" % self.cls_go(t.ref)
        if k == "set":
            return "encSet(a, v, x, %s)" % self.enc_fn(t.a)
        if k == "map":
            _, tk = self.key_fns(t.a)
            return "encMap(a, v, x, %s, %s)" % (tk, self.enc_fn(t.b))
        raise SystemExit("gen_go: enc " + k)

    # ---- the file ---------------------------------------------------------
    def generate(self):
        o = []
        w = o.append
        w("// Code generated by tools/gen_go.py from lib/libxcp/model/model.def. DO NOT EDIT.")
        w("// Change the model and run `make regen`.")
        w("")
        w("package xcp")
        w("")
        w("// #include <xcp/xcp.h>")
        w('import "C"')
        w("")
        w("import (")
        w('\t"context"')
        w('\t"time"')
        w(")")
        w("")
        w("var _ = time.Time{}")
        w("")
        self.gen_enums(w)
        self.gen_refs(w)
        self.gen_records(w)
        self.gen_codecs(w)
        self.gen_classes(w)
        return "\n".join(o) + "\n"

    def gen_enums(self, w):
        for en, vals in self.m.enums:
            gn = camel(en)
            w("// %s is XenAPI's enum %s. Values this library does not know (a newer" % (gn, en))
            w("// server) are kept as sent.")
            w("type %s string" % gn)
            w("")
            w("// Values of %s." % gn)
            w("const (")
            seen = set()
            for v in vals:
                cn = gn + camel(v)
                if cn in seen:
                    raise SystemExit("gen_go: enum %s value %s collides" % (en, v))
                seen.add(cn)
                w("\t%s %s = %s" % (cn, gn, golit(v)))
            w(")")
            w("")
            w("// %sValues lists every value of %s the model knows, in model order." % (gn, gn))
            w("var %sValues = []%s{%s}" % (gn, gn, ", ".join(gn + camel(v) for v in vals)))
            w("")

    def gen_refs(self, w):
        for c in self.m.classes:
            gn = c["go"]
            w("// %sRef is a reference to a %s object (\"OpaqueRef:...\")." % (gn, c["name"]))
            w("type %sRef string" % gn)
            w("")
            w("// IsNull tells whether r is the null reference (or empty).")
            w("func (r %sRef) IsNull() bool { return Ref(r).IsNull() }" % gn)
            w("")

    def gen_records(self, w):
        for c in self.m.classes:
            gn = c["go"]
            for ln in comment(["%sRecord is a %s record: every field of the class, in model order."
                               % (gn, c["name"])] + c["doc"]):
                w(ln)
            w("type %sRecord struct {" % gn)
            seen = set()
            for f in c["fields"]:
                fn = camel(f["name"])
                if fn in seen:
                    raise SystemExit("gen_go: field %s.%s collides as %s" % (c["name"], f["name"], fn))
                seen.add(fn)
                f["go"] = fn
                life = [x.split(":")[0] + "." for k, x in self.g.LIFECYCLE if k in f["flags"]]
                for ln in comment([" ".join(["%s %s (%s)." % (f["name"], f["tspell"], f["qual"])]
                                            + f["doc"] + life)], "\t"):
                    w(ln)
                w("\t%s %s" % (fn, self.gotype(f["type"])))
            w("}")
            w("")
            w("// decRecord%s reads a %s record (a RECORD by field index, or a" % (gn, c["name"]))
            w("// STRUCT by field name).")
            w("func decRecord%s(d *decoder, v *cval) (r %sRecord) {" % (gn, gn))
            w("\tf := d.record(v, %d, %sFields)" % (self.m.class_ids[c["name"]], gn))
            w("\tif f == nil {")
            w("\t\treturn")
            w("\t}")
            for i, f in enumerate(c["fields"]):
                w("\tif v := f(%d); v != nil {" % i)
                w("\t\tr.%s = %s(d, v)" % (f["go"], self.dec_fn(f["type"])))
                w("\t}")
            w("\treturn")
            w("}")
            w("")
            w("// encRecord%s writes a %s record; ctor: only the fields a" % (gn, c["name"]))
            w("// constructor takes (ROs, RW, RWs), and of those not the empty strings")
            w("// and nil sets and maps of fields it does not require, which are left")
            w("// NONE (unset: the model's default applies, as for the C API's NULLs);")
            w("// an empty enum is its default, else its first value (as C's zero).")
            w("func encRecord%s(a *arena, v *cval, x %sRecord, ctor bool) {" % (gn, gn))
            w("\tf := a.record(v, %d, %d)" % (self.m.class_ids[c["name"]], len(c["fields"])))
            for i, f in enumerate(c["fields"]):
                k = f["type"].kind
                if f["qual"] not in ("ROs", "RW", "RWs"):
                    cond = "!ctor"
                elif k == "enum":
                    # an unset enum is its default, else its first value
                    # (the C API's zeroed record sends that one too)
                    vals = dict(self.m.enums)[f["type"].ref]
                    dv = f["def"] if f["def"] in vals else vals[0]
                    w("\tif ctor && x.%s == \"\" {" % f["go"])
                    w("\t\tx.%s = %s" % (f["go"], golit(dv)))
                    w("\t}")
                    cond = ""
                elif "req" in f["flags"]:
                    cond = ""
                elif k in ("string", "ref", "enum"):
                    cond = '!ctor || x.%s != ""' % f["go"]
                elif k in ("set", "map"):
                    cond = "!ctor || x.%s != nil" % f["go"]
                else:
                    cond = ""
                if cond:
                    w("\tif %s {" % cond)
                    w("\t\t%s(a, &f[%d], x.%s)" % (self.enc_fn(f["type"]), i, f["go"]))
                    w("\t}")
                else:
                    w("\t%s(a, &f[%d], x.%s)" % (self.enc_fn(f["type"]), i, f["go"]))
            w("}")
            w("")
            w("// %sFields are the %s record's field names in model order." % (gn, c["name"]))
            w("var %sFields = []string{%s}" % (gn, ", ".join(golit(f["name"]) for f in c["fields"])))
            w("")
        # records by class id, for `any` values and event snapshots
        w("// decRecordOf reads a record of the class with the model's id cls.")
        w("func decRecordOf(d *decoder, cls int, v *cval) any {")
        w("\tswitch cls {")
        for i, c in enumerate(self.m.classes):
            w("\tcase %d:" % i)
            w("\t\treturn decRecord%s(d, v)" % c["go"])
        w("\t}")
        w("\treturn decStructAny(d, v)")
        w("}")
        w("")
        w("// encRecordAny encodes x when it is a record (whole, not a constructor's).")
        w("func encRecordAny(a *arena, v *cval, x any) bool {")
        w("\tswitch r := x.(type) {")
        for c in self.m.classes:
            w("\tcase %sRecord:" % c["go"])
            w("\t\tencRecord%s(a, v, r, false)" % c["go"])
        w("\tdefault:")
        w("\t\treturn false")
        w("\t}")
        w("\treturn true")
        w("}")
        w("")
        w("// modelClasses are the model's class names by id (checked against")
        w("// libxcp's tables at init).")
        w("var modelClasses = []string{%s}" % ", ".join(golit(c["name"]) for c in self.m.classes))
        w("")
        w("// modelFieldCounts are the record widths by class id.")
        w("var modelFieldCounts = []int{%s}" % ", ".join(str(len(c["fields"])) for c in self.m.classes))
        w("")

    def gen_codecs(self, w):
        for s in sorted(self.g.types):
            t = self.g.types[s][0]
            if t.kind == "void":
                continue
            gt = self.gotype(t)
            w("func %s(d *decoder, v *cval) %s { return %s }" % (self.dec_fn(t), gt, self.dec_body(t)))
            w("func %s(a *arena, v *cval, x %s) { %s }" % (self.enc_fn(t), gt, self.enc_body(t)))
        w("")

    def gen_classes(self, w):
        by_cls = {}
        for mm in self.g.msgs:
            by_cls.setdefault(mm["cls"], []).append(mm)
        w("// classes holds one accessor per class of the model, as XenAPI's")
        w("// session.xenapi.VM: s.VM.Start(ctx, vm, false, false).")
        w("type classes struct {")
        for c in self.m.classes:
            w("\t// %s: XenAPI class %s." % (c["go"], c["name"]))
            w("\t%s %sClass" % (c["go"], c["go"]))
        w("}")
        w("")
        w("func (k *classes) init(s *Session) {")
        for c in self.m.classes:
            w("\tk.%s.s = s" % c["go"])
        w("}")
        w("")
        for ci, c in enumerate(self.m.classes):
            gn = c["go"]
            for ln in comment(["%sClass calls the messages of XenAPI class %s." % (gn, c["name"])] + c["doc"]):
                w(ln)
            w("type %sClass struct{ s *Session }" % gn)
            w("")
            seen = set()
            for mm in by_cls.get(ci, []):
                if "nosession" in mm["flags"]:
                    continue
                self.gen_method(w, c, mm, seen)

    KINDDOC = {
        "XM_GET_RECORD": "Reads the object's record.",
        "XM_GET_FIELD": "Reads one field.",
        "XM_SET_FIELD": "Writes one field.",
        "XM_GET_ALL": "All objects of the class.",
        "XM_GET_ALL_RECORDS": "All objects with their records.",
        "XM_GET_ALL_WHERE": "The objects a query expression selects.",
        "XM_GET_ALL_RECORDS_WHERE": "The records a query expression selects.",
        "XM_GET_BY_UUID": "UUID_INVALID when no object has it.",
        "XM_GET_BY_NAME_LABEL": "Every object of that name_label.",
        "XM_CREATE": "Creates an object from the record's constructor fields (ROs, RW, RWs); empty strings and nil sets and maps of fields it does not require are left unset (the model's defaults apply), empty enums are their default or first value.",
        "XM_DESTROY": "Destroys the object.",
        "XM_ADD_TO_MAP": "Adds a key to a map field.",
        "XM_REMOVE_FROM_MAP": "Removes a key from a map field.",
        "XM_ADD_TO_SET": "Adds a value to a set field.",
        "XM_REMOVE_FROM_SET": "Removes a value from a set field.",
    }

    def gen_method(self, w, c, mm, seen):
        gn = c["go"]
        name = camel(mm["name"])
        if name in seen or name + "Async" in seen:
            raise SystemExit("gen_go: %s collides as %s" % (mm["wire"], name))
        seen.add(name)
        params = []
        pnames = set()
        for p in mm["params"]:
            pn = lower_camel(p["name"])
            while pn in pnames:
                pn += "_"
            pnames.add(pn)
            params.append((pn, p))
        ret = mm["ret"]
        has_ret = ret.kind != "void"
        sig = ", ".join(["ctx context.Context"] +
                        ["%s %s" % (pn, self.gotype(p["type"])) for pn, p in params])
        head = "XenAPI %s(%s)%s." % (mm["wire"], ", ".join(p["name"] for p in mm["params"]),
                                     (" -> " + ret.spell()) if has_ret else "")
        paras = [head + " " + (self.KINDDOC.get(mm["kind"], ""))]
        paras[0] = paras[0].rstrip()
        paras += mm.get("doc") or []
        pdoc = mm.get("pdoc") or {}
        for pn, p in params:
            if p["name"] in pdoc:
                paras.append("%s: %s" % (pn, pdoc[p["name"]]))
            if p["def"] is not None:
                paras.append("%s: XenAPI's default is %s." % (pn, golit(p["def"])))
        if mm.get("errors"):
            paras.append("Errors: " + ", ".join(mm["errors"]) + ".")
        create = mm["kind"] == "XM_CREATE"

        def body(async_):
            n = len(params)
            w("\targs := c.s.newArgs(%d)" % n)
            w("\tdefer args.free()")
            for i, (pn, p) in enumerate(params):
                t = p["type"]
                if create and t.kind == "record":
                    w("\tencRecord%s(args.a, args.at(%d), %s, true)" % (self.cls_go(t.ref), i, pn))
                else:
                    w("\t%s(args.a, args.at(%d), %s)" % (self.enc_fn(t), i, pn))
        for ln in comment(paras):
            w(ln)
        rt = self.gotype(ret) if has_ret else None
        w("func (c %sClass) %s(%s) %s {" % (gn, name, sig, "(%s, error)" % rt if has_ret else "error"))
        body(False)
        if has_ret:
            w("\tvar x %s" % rt)
            w("\terr := c.s.call(ctx, %s, args, func(d *decoder, v *cval) { x = %s(d, v) })"
              % (golit(mm["wire"]), self.dec_fn(ret)))
            w("\treturn x, err")
        else:
            w("\treturn c.s.call(ctx, %s, args, nil)" % golit(mm["wire"]))
        w("}")
        w("")
        if "async" in mm["flags"]:
            seen.add(name + "Async")
            for ln in comment(["%sAsync calls Async.%s: it returns at once with the task doing it; "
                               "Wait on the result for the outcome." % (name, mm["wire"])]):
                w(ln)
            pt = "Pending[%s]" % (rt if has_ret else "struct{}")
            w("func (c %sClass) %sAsync(%s) (*%s, error) {" % (gn, name, sig, pt))
            body(True)
            w("\ttask, err := c.s.callAsync(ctx, %s, args)" % golit(mm["wire"]))
            w("\tif err != nil {")
            w("\t\treturn nil, err")
            w("\t}")
            if has_ret:
                w("\treturn &%s{s: c.s, Task: task, dec: %s}, nil" % (pt, self.dec_fn(ret)))
            else:
                w("\treturn &%s{s: c.s, Task: task, dec: decNothing}, nil" % pt)
            w("}")
            w("")


def main():
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else src
    model = genmodel.parse(os.path.join(src, "lib/libxcp/model/model.def"))
    g = genmodel.Gen(model)
    text = GoGen(g).generate()
    genmodel.write_if_changed(os.path.join(out, OUT), text)


if __name__ == "__main__":
    main()
