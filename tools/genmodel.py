#!/usr/bin/env python3
"""Generate libxcp's model tables and typed API from lib/libxcp/model/model.def.

Outputs (committed; `make regen` rewrites them, tests/meta checks they are
current):
  include/xcp/classes.h         public typed API: enums, refs, records, calls
  lib/libxcp/model/gen_model.h  internal ids (classes, messages, types)
  lib/libxcp/model/gen_model.c  internal tables: types, enums, classes,
                                fields, messages, name index
  lib/libxcp/engine/gen_api.c   the typed front door: wrappers over
                                xcp__typed_call()
  lib/libxcp/libxcp.sym         linker version script (all XCP_EXTERN names)

Usage: genmodel.py SRCDIR [OUTDIR]   (OUTDIR defaults to SRCDIR)
"""
import os
import re
import sys
import textwrap

CXX_KEYWORDS = {"class", "public", "private", "protected", "new", "delete",
                "default", "template", "this", "operator", "namespace",
                "auto", "register", "friend", "virtual", "explicit",
                "typename", "union", "struct", "enum", "int", "float",
                "bool", "char", "double", "long", "short", "signed",
                "unsigned", "void", "const", "static", "extern", "inline",
                "return", "if", "else", "for", "while", "do", "switch",
                "case", "break", "continue", "goto", "sizeof", "typedef",
                "volatile", "export", "module", "import", "and", "or",
                "not", "xor", "bitand", "bitor", "compl", "try", "catch",
                "throw", "true", "false", "nullptr", "mutable", "using"}


def cid(name):
    """A C identifier for an API name (C/C++ keywords get a trailing _)."""
    return name + "_" if name in CXX_KEYWORDS else name


class Type:
    def __init__(self, kind, a=None, b=None, ref=None):
        self.kind, self.a, self.b, self.ref = kind, a, b, ref

    def spell(self):
        k = self.kind
        if k in ("set",):
            return "set:" + self.a.spell()
        if k == "map":
            return "map:%s:%s" % (self.a.spell(), self.b.spell())
        if k in ("ref", "record"):
            return "%s:%s" % (k, self.ref)
        if k == "enum":
            return self.ref
        return k


class Model:
    def __init__(self):
        self.enums = []      # (name, [values])
        self.enum_ids = {}
        self.classes = []    # dicts
        self.class_ids = {}
        self.rels = []
        self.error_refs = []  # (line, [error names]) from e lines


def parse_type(model, toks):
    t = toks.pop(0)
    if t == "set":
        return Type("set", a=parse_type(model, toks))
    if t == "map":
        k = parse_type(model, toks)
        v = parse_type(model, toks)
        return Type("map", a=k, b=v)
    if t in ("ref", "record"):
        return Type(t, ref=toks.pop(0))
    if t in ("string", "int", "float", "bool", "datetime", "any", "void"):
        return Type(t)
    if t in model.enum_ids:
        return Type("enum", ref=t)
    raise SystemExit("unknown type token %r" % t)


def ptype(model, s):
    toks = s.split(":")
    t = parse_type(model, toks)
    if toks:
        raise SystemExit("trailing type tokens in %r" % s)
    return t


# Field attributes model.def may use; each is read by the generator (req:
# the constructor's required fields; the lifecycle ones: XCP_FIELD_* flags
# in the tables, which xe reads, and the text of the generated docs).
FIELD_ATTRS = {"req", "deprecated", "removed", "proto"}
CLASS_FLAGS = {"create", "destroy", "nogetall", "noevents", "nodb", "volatile"}
MSG_FLAGS = {"async", "nosession"}


def parse(path):
    m = Model()
    cur = None
    last = None
    for lineno, raw in enumerate(open(path), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        p = line.split()
        if p[0] == "enum":
            m.enum_ids[p[1]] = len(m.enums)
            m.enums.append((p[1], p[2:]))
        elif p[0] == "class":
            if not set(p[2:]) <= CLASS_FLAGS:
                raise SystemExit("%s:%d: unknown class flag in %r" % (path, lineno, raw))
            cur = {"name": p[1], "flags": set(p[2:]), "fields": [],
                   "msgs": [], "doc": [], "kind": "class"}
            last = cur
            m.class_ids[p[1]] = len(m.classes)
            m.classes.append(cur)
        elif p[0] == "f":
            name, ts, q = p[1], p[2], p[3]
            attrs = p[4:]
            f = {"name": name, "tspell": ts, "qual": q, "flags": set(),
                 "def": None, "doc": [], "kind": "f"}
            last = f
            for a in attrs:
                if a.startswith("def="):
                    f["def"] = a[4:]
                elif a in FIELD_ATTRS:
                    f["flags"].add(a)
                else:
                    raise SystemExit("%s:%d: unknown field attribute %r" % (path, lineno, a))
            cur["fields"].append(f)
        elif p[0] == "m":
            name, fl, ret = p[1], p[2], p[3]
            if fl != "-" and not set(fl.split(",")) <= MSG_FLAGS:
                raise SystemExit("%s:%d: unknown message flag in %r" % (path, lineno, raw))
            params = []
            for ps in p[4:]:
                pname, rest = ps.split(":", 1)
                d = None
                if "=" in rest:
                    rest, d = rest.split("=", 1)
                    if d == '""':
                        d = ""
                params.append({"name": pname, "tspell": rest, "def": d})
            last = {"name": name,
                    "flags": set() if fl == "-" else set(fl.split(",")),
                    "rspell": ret, "params": params, "doc": [], "kind": "m",
                    "errors": [], "pdoc": {}}
            cur["msgs"].append(last)
        elif p[0] == "d":
            # documentation of the item above (class, field or message);
            # several d lines join into one paragraph, "d -" starts a new one
            if last is None:
                raise SystemExit("%s:%d: d line before any class" % (path, lineno))
            text = line.split(None, 1)[1].strip() if len(p) > 1 else ""
            if text == "-":
                last["doc"].append("")
            elif last["doc"] and last["doc"][-1] != "":
                last["doc"][-1] += " " + text
            else:
                if last["doc"] and last["doc"][-1] == "":
                    last["doc"][-1] = text
                else:
                    last["doc"].append(text)
        elif p[0] == "e":
            # errors the message above can raise (names from errors.def)
            if last is None or last.get("kind") != "m":
                raise SystemExit("%s:%d: e line not under a message" % (path, lineno))
            last["errors"] += p[1:]
            m.error_refs.append((lineno, p[1:]))
        elif p[0] == "p":
            # documentation of one parameter of the message above
            if last is None or last.get("kind") != "m":
                raise SystemExit("%s:%d: p line not under a message" % (path, lineno))
            names = [x["name"] for x in last["params"]]
            if len(p) < 3 or p[1] not in names:
                raise SystemExit("%s:%d: p names no parameter of %s" % (path, lineno, last["name"]))
            text = line.split(None, 2)[2].strip()
            # several p lines of one parameter continue its text
            last["pdoc"][p[1]] = (last["pdoc"][p[1]] + " " + text
                                  if p[1] in last["pdoc"] else text)
        elif p[0] == "rel":
            m.rels.append((p[1].split("."), p[2].split(".")))
        else:
            raise SystemExit("%s:%d: cannot parse %r" % (path, lineno, raw))
    return m


class Gen:
    def __init__(self, model):
        self.m = model
        self.types = {}  # spell -> (Type, cname)
        for c in model.classes:
            c["lc"] = c["name"].lower()
            c["fidx"] = {}
            for i, f in enumerate(c["fields"]):
                f["type"] = ptype(model, f["tspell"])
                c["fidx"][f["name"]] = i
                f["rel"] = None
                self.reg(f["type"])
            for msg in c["msgs"]:
                msg["ret"] = ptype(model, msg["rspell"])
                self.reg(msg["ret"])
                for pr in msg["params"]:
                    pr["type"] = ptype(model, pr["tspell"])
                    self.reg(pr["type"])
        for (a, b) in model.rels:
            ca = model.classes[model.class_ids[a[0]]]
            cb = model.classes[model.class_ids[b[0]]]
            fa = ca["fields"][ca["fidx"][a[1]]]
            fb = cb["fields"][cb["fidx"][b[1]]]
            fa["rel"] = (cb, b[1])
            fb["rel"] = (ca, a[1])
            fb["flags"].add("derived")
        for c in model.classes:
            ref = Type("ref", ref=c["name"])
            rec = Type("record", ref=c["name"])
            self.reg(Type("map", a=ref, b=rec))
            self.reg(Type("set", a=ref))
        for en, _ in model.enums:
            self.reg(Type("set", a=Type("enum", ref=en)))
        self.build_messages()

    def modelled(self, cls):
        return cls in self.m.class_ids

    @staticmethod
    def refname(cls):
        """C type of a ref: xcp_vm; session refs are xcp_session_id since
        xcp_session is the handle type."""
        return "xcp_session_id" if cls == "session" else "xcp_" + cls.lower()

    def reg(self, t):
        s = t.spell()
        if s in self.types:
            return self.types[s][1]
        for sub in (t.a, t.b):
            if sub is not None:
                self.reg(sub)
        if t.kind == "record":
            self.reg(Type("ref", ref=t.ref))
        cname = "xcp__T_" + re.sub(r"[^A-Za-z0-9]", "_", s)
        self.types[s] = (t, cname)
        return cname

    # ---- C representation of a type ----------------------------------
    def ctype(self, t):
        k = t.kind
        if k == "string":
            return "char *"
        if k == "int":
            return "int64_t"
        if k == "float":
            return "double"
        if k == "bool":
            return "bool"
        if k == "datetime":
            return "xcp_datetime"
        if k == "ref":
            return self.refname(t.ref) if self.modelled(t.ref) else "xcp_ref"
        if k == "enum":
            return "enum xcp_%s" % t.ref
        if k == "record":
            return "xcp_%s_record" % t.ref.lower()
        if k == "set":
            a = t.a
            if a.kind == "string":
                return "xcp_string_set"
            if a.kind == "int":
                return "xcp_int_set"
            if a.kind == "ref":
                return (self.refname(a.ref) + "_set") if self.modelled(a.ref) else "xcp_ref_set"
            if a.kind == "enum":
                return "xcp_%s_set" % a.ref
            return "xcp_value"
        if k == "map":
            if self.scalar(t.a) and self.scalar(t.b):
                return "xcp_string_map"
            if t.a.kind == "ref" and t.b.kind == "record" and t.a.ref == t.b.ref:
                return "xcp_%s_record_map" % t.b.ref.lower()
            return "xcp_value"
        if k == "any":
            return "xcp_value"
        if k == "void":
            return None
        raise SystemExit("ctype " + k)

    def scalar(self, t):
        return t.kind in ("string", "int", "float", "bool", "datetime", "ref", "enum")

    def crep(self, t):
        k = t.kind
        simple = {"string": "XC_STRING", "int": "XC_INT", "float": "XC_FLOAT",
                  "bool": "XC_BOOL", "datetime": "XC_DATETIME",
                  "ref": "XC_REF", "enum": "XC_ENUM", "record": "XC_RECORD",
                  "any": "XC_VALUE", "void": "XC_NONE"}
        if k in simple:
            return simple[k]
        ct = self.ctype(t)
        if ct == "xcp_value":
            return "XC_VALUE"
        if k == "set":
            return "XC_ARRAY"
        if ct == "xcp_string_map":
            return "XC_STRMAP"
        return "XC_RECMAP"

    def by_value(self, t):
        """Parameters passed by value (else by const pointer)."""
        return self.crep(t) in ("XC_STRING", "XC_INT", "XC_FLOAT", "XC_BOOL",
                                "XC_DATETIME", "XC_REF", "XC_ENUM")

    def param_decl(self, t, name):
        ct = self.ctype(t)
        if t.kind == "string":
            return "const char *%s" % name
        if self.by_value(t):
            return "%s %s" % (ct, name)
        return "const %s *%s" % (ct, name)

    # ---- messages -----------------------------------------------------
    def build_messages(self):
        msgs = []
        for ci, c in enumerate(self.m.classes):
            explicit = {mm["name"] for mm in c["msgs"]}
            name = c["name"]
            fl = c["flags"]
            self_p = {"name": "self", "tspell": "ref:" + name, "def": None,
                      "type": Type("ref", ref=name)}

            def add(mname, kind, params, ret, field=-1, flags=()):
                if mname in explicit:
                    return
                for pr in params:
                    self.reg(pr["type"])
                self.reg(ret)
                msgs.append({"cls": ci, "name": mname, "kind": kind,
                             "params": params, "ret": ret, "field": field,
                             "flags": set(flags)})

            def P(n, t):
                return {"name": n, "def": None, "type": t}
            if "nodb" not in fl:
                rec = Type("record", ref=name)
                ref = Type("ref", ref=name)
                add("get_record", "XM_GET_RECORD", [self_p], rec)
                if "uuid" in c["fidx"]:
                    add("get_by_uuid", "XM_GET_BY_UUID",
                        [P("uuid", Type("string"))], ref)
                if "name_label" in c["fidx"]:
                    add("get_by_name_label", "XM_GET_BY_NAME_LABEL",
                        [P("label", Type("string"))], Type("set", a=ref))
                if "nogetall" not in fl:
                    add("get_all", "XM_GET_ALL", [], Type("set", a=ref))
                    add("get_all_records", "XM_GET_ALL_RECORDS", [],
                        Type("map", a=ref, b=rec))
                    add("get_all_where", "XM_GET_ALL_WHERE",
                        [P("expr", Type("string"))], Type("set", a=ref))
                    add("get_all_records_where", "XM_GET_ALL_RECORDS_WHERE",
                        [P("expr", Type("string"))], Type("map", a=ref, b=rec))
                for fi, f in enumerate(c["fields"]):
                    t = f["type"]
                    add("get_" + f["name"], "XM_GET_FIELD", [self_p], t, fi)
                    if f["qual"] in ("RW", "RWs") and "derived" not in f["flags"]:
                        add("set_" + f["name"], "XM_SET_FIELD",
                            [self_p, P("value", t)], Type("void"), fi)
                        if t.kind == "map":
                            add("add_to_" + f["name"], "XM_ADD_TO_MAP",
                                [self_p, P("key", t.a), P("value", t.b)],
                                Type("void"), fi)
                            add("remove_from_" + f["name"], "XM_REMOVE_FROM_MAP",
                                [self_p, P("key", t.a)], Type("void"), fi)
                        if t.kind == "set":
                            add("add_" + f["name"], "XM_ADD_TO_SET",
                                [self_p, P("value", t.a)], Type("void"), fi)
                            add("remove_" + f["name"], "XM_REMOVE_FROM_SET",
                                [self_p, P("value", t.a)], Type("void"), fi)
                if "create" in fl:
                    add("create", "XM_CREATE",
                        [P("args", Type("record", ref=name))],
                        Type("ref", ref=name), flags=("async",))
                if "destroy" in fl:
                    add("destroy", "XM_DESTROY", [self_p], Type("void"),
                        flags=("async",))
            for mm in c["msgs"]:
                msgs.append({"cls": ci, "name": mm["name"],
                             "kind": "XM_EXPLICIT", "params": mm["params"],
                             "ret": mm["ret"], "field": -1,
                             "flags": mm["flags"], "doc": mm["doc"],
                             "errors": mm["errors"], "pdoc": mm["pdoc"]})
        for i, mm in enumerate(msgs):
            mm["id"] = i
            mm["wire"] = "%s.%s" % (self.m.classes[mm["cls"]]["name"], mm["name"])
            mm["cid"] = "XCP__M_%s_%s" % (self.m.classes[mm["cls"]]["name"], mm["name"])
        self.msgs = msgs

    # ---- emitters -----------------------------------------------------
    def enum_const(self, en, v):
        return ("XCP_%s_%s" % (en, re.sub(r"[^A-Za-z0-9]", "_", v))).upper()

    def gen_public_header(self):
        o = []
        w = o.append
        w("/* Generated by tools/genmodel.py from lib/libxcp/model/model.def.")
        w(" * Do not edit: change the model and run `make regen`. */")
        w("/*")
        w(" * libxcp public API: the typed XenAPI object model. For every class:")
        w(" * a ref type (xcp_vm), a set of refs (xcp_vm_set), a record")
        w(" * (xcp_vm_record) and its map (xcp_vm_record_map), and one function")
        w(" * per XenAPI message, named xcp_<class>_<message>; messages callable")
        w(" * asynchronously also have xcp_<class>_<message>_async, which returns")
        w(" * a task ref at once (wait for it with xcp_task_wait()). The")
        w(" * conventions (errors, ownership) are in common.h.")
        w(" */")
        w("#ifndef XCP_CLASSES_H")
        w("#define XCP_CLASSES_H")
        w("")
        w("#include <xcp/common.h>")
        w("#include <xcp/session.h>")
        w("#include <xcp/value.h>")
        w("")
        w("XCP_BEGIN_DECLS")
        w("")
        w("/* ---- enums ---- */")
        for en, vals in self.m.enums:
            w("")
            w("/** XenAPI enum %s. */" % en)
            w("enum xcp_%s {" % en)
            w("    %s = -1, /**< a value this library does not know */" % self.enum_const(en, "_UNKNOWN"))
            for i, v in enumerate(vals):
                w("    %s = %d, /**< \"%s\" */" % (self.enum_const(en, v), i, v))
            w("};")
            w("/** A set of %s values. */" % en)
            w("typedef struct xcp_%s_set {" % en)
            w("    size_t n;")
            w("    enum xcp_%s *items;" % en)
            w("} xcp_%s_set;" % en)
            w("/** Wire string of a %s value (static), or NULL when out of range. */" % en)
            w("XCP_EXTERN const char *xcp_%s_to_string(enum xcp_%s v);" % (en, en))
            w("/** Parse a %s (case-insensitive); _UNKNOWN when not valid. */" % en)
            w("XCP_EXTERN enum xcp_%s xcp_%s_from_string(const char *s);" % (en, en))
            w("/** Free the contents of a set and zero it. */")
            w("XCP_EXTERN void xcp_%s_set_dispose(xcp_%s_set *s);" % (en, en))
        w("")
        w("/* ---- refs, sets of refs ---- */")
        w("")
        w("/** A set of untyped refs. */")
        w("typedef struct xcp_ref_set {")
        w("    size_t n;")
        w("    xcp_ref *items;")
        w("} xcp_ref_set;")
        w("/** Free the contents of a set of refs and zero it. */")
        w("XCP_EXTERN void xcp_ref_set_dispose(xcp_ref_set *s);")
        for c in self.m.classes:
            lc = c["lc"]
            w("")
            rn = self.refname(c["name"])
            w("/** A reference to a %s object. */" % c["name"])
            w("typedef struct %s {" % rn)
            w("    char ref[XCP_REF_MAX];")
            w("} %s;" % rn)
            w("/** A set of %s refs. */" % c["name"])
            w("typedef struct %s_set {" % rn)
            w("    size_t n;")
            w("    %s *items;" % rn)
            w("} %s_set;" % rn)
            w("/** Free the contents of a set of %s refs and zero it. */" % c["name"])
            w("XCP_EXTERN void %s_set_dispose(%s_set *s);" % (rn, rn))
        w("")
        w("/* ---- records ---- */")
        for c in self.m.classes:
            lc = c["lc"]
            w("")
            o.extend(doc_comment(["A %s record: every field of the class, in model order."
                                  % c["name"]] + c["doc"]))
            w("typedef struct xcp_%s_record {" % lc)
            for f in c["fields"]:
                ct = self.ctype(f["type"])
                sp = "" if ct.endswith("*") else " "
                text = ["%s %s." % (f["tspell"], f["qual"])] + f["doc"] + \
                    [t.split(":")[0] + "." for k, t in self.LIFECYCLE if k in f["flags"]]
                o.extend("    " + ln for ln in doc_comment([" ".join(text)], 74))
                w("    %s%s%s;" % (ct, sp, cid(f["name"])))
            w("} xcp_%s_record;" % lc)
            w("/** Refs and records of several %s objects. */" % c["name"])
            w("typedef struct xcp_%s_record_map {" % lc)
            w("    size_t n;")
            w("    %s *refs;" % self.refname(c["name"]))
            w("    xcp_%s_record *records;" % lc)
            w("} xcp_%s_record_map;" % lc)
            w("/** Zero a record before use. */")
            w("XCP_EXTERN void xcp_%s_record_init(xcp_%s_record *r);" % (lc, lc))
            w("/** Free a record's contents and zero it. */")
            w("XCP_EXTERN void xcp_%s_record_dispose(xcp_%s_record *r);" % (lc, lc))
            w("/** Free a record map's contents and zero it. */")
            w("XCP_EXTERN void xcp_%s_record_map_dispose(xcp_%s_record_map *m);" % (lc, lc))
        w("")
        w("/* ---- messages ---- */")
        for mm in self.msgs:
            if "nosession" in mm["flags"]:
                continue
            for proto, paras in self.protos(mm):
                w("")
                o.extend(doc_comment(paras))
                w("XCP_EXTERN %s;" % proto)
        w("")
        w("XCP_END_DECLS")
        w("")
        w("#endif")
        return "\n".join(o) + "\n"

    def protos(self, mm):
        c = self.m.classes[mm["cls"]]
        fname = "xcp_%s_%s" % (c["lc"], mm["name"])
        args = ["xcp_session *session"]
        ret = mm["ret"]
        ret_ct = self.ctype(ret)
        if ret_ct:
            args.append("%s *result" % ret_ct)
        pnames = []
        for pr in mm["params"]:
            args.append(self.param_decl(pr["type"], cid(pr["name"])))
            pnames.append(pr["name"] + ("=" + (pr["def"] or '""') if pr["def"] is not None else ""))
        head = "XenAPI %s(%s)%s." % (mm["wire"], ", ".join(pnames),
                                     (" -> " + ret.spell()) if ret_ct else "")
        kinddoc = {
            "XM_GET_RECORD": " Fills *result with the object's record.",
            "XM_GET_FIELD": " Reads one field.",
            "XM_SET_FIELD": " Writes one field.",
            "XM_GET_ALL": " All objects of the class.",
            "XM_GET_ALL_RECORDS": " All objects with their records.",
            "XM_GET_BY_UUID": " UUID_INVALID when no object has it.",
            "XM_CREATE": " Creates an object from the record's constructor fields.",
            "XM_DESTROY": " Destroys the object.",
        }.get(mm["kind"], "")
        paras = [head + kinddoc] + self.msg_doc(mm)
        out = [("int %s(%s)" % (fname, ", ".join(args)), paras)]
        if "async" in mm["flags"]:
            a2 = ["xcp_session *session", "xcp_task *task"] + args[1 + (1 if ret_ct else 0):]
            out.append(("int %s_async(%s)" % (fname, ", ".join(a2)),
                        ["Async.%s: starts the call and returns its task in *task; "
                         "the task's result is what %s returns." % (mm["wire"], fname)]))
        return out

    LIFECYCLE = (("deprecated", "Deprecated in XenAPI: kept for the clients that still use it."),
                 ("removed", "Removed from XenAPI: still in records for the clients that read it."),
                 ("proto", "Prototype in XenAPI: its meaning may still change."))

    def msg_doc(self, mm):
        """The model's documentation of a message as paragraphs: its own text
        (or its field's for generated accessors), parameters, errors."""
        c = self.m.classes[mm["cls"]]
        paras = []
        if mm["field"] >= 0:
            f = c["fields"][mm["field"]]
            paras += f["doc"]
            paras += [t for k, t in self.LIFECYCLE if k in f["flags"]]
        else:
            paras += mm.get("doc", [])
        pdoc = mm.get("pdoc", {})
        for pr in mm["params"]:
            if pr["name"] in pdoc:
                paras.append("@param %s %s" % (cid(pr["name"]), pdoc[pr["name"]]))
        if mm.get("errors"):
            paras.append("Errors: %s." % ", ".join(mm["errors"]))
        return [p for p in paras if p]

    def gen_api_c(self):
        o = []
        w = o.append
        w("/* Generated by tools/genmodel.py from lib/libxcp/model/model.def.")
        w(" * Do not edit: change the model and run `make regen`. */")
        w("/* Typed wrappers: every function converts its C arguments through the")
        w(" * model's type tables and makes the same call xcp_call() would. */")
        w('#include "../internal.h"')
        w("")
        for en, vals in self.m.enums:
            eid = self.m.enum_ids[en]
            w("const char *xcp_%s_to_string(enum xcp_%s v)" % (en, en))
            w("{")
            w("    return ((int)v >= 0 && (size_t)v < xcp__enums[%d].n) ? xcp__enums[%d].values[v] : NULL;" % (eid, eid))
            w("}")
            w("enum xcp_%s xcp_%s_from_string(const char *s)" % (en, en))
            w("{")
            w("    return (enum xcp_%s)xcp__enum_index(&xcp__enums[%d], s);" % (en, eid))
            w("}")
            w("void xcp_%s_set_dispose(xcp_%s_set *s)" % (en, en))
            w("{")
            w("    xcp__c_dispose(&%s, s);" % self.types["set:" + en][1] if ("set:" + en) in self.types else "    xcp_free(s->items); s->items = NULL; s->n = 0;")
            w("}")
        w("void xcp_ref_set_dispose(xcp_ref_set *s)")
        w("{")
        w("    xcp_free(s->items);")
        w("    s->items = NULL;")
        w("    s->n = 0;")
        w("}")
        for c in self.m.classes:
            lc = c["lc"]
            n = c["name"]
            w("void %s_set_dispose(%s_set *s)" % (self.refname(n), self.refname(n)))
            w("{")
            w("    xcp_free(s->items);")
            w("    s->items = NULL;")
            w("    s->n = 0;")
            w("}")
            w("void xcp_%s_record_init(xcp_%s_record *r)" % (lc, lc))
            w("{")
            w("    memset(r, 0, sizeof(*r));")
            w("}")
            w("void xcp_%s_record_dispose(xcp_%s_record *r)" % (lc, lc))
            w("{")
            w("    xcp__c_dispose(&%s, r);" % self.types["record:" + n][1])
            w("}")
            w("void xcp_%s_record_map_dispose(xcp_%s_record_map *m)" % (lc, lc))
            w("{")
            w("    xcp__c_dispose(&%s, m);" % self.types["map:ref:%s:record:%s" % (n, n)][1]
              if ("map:ref:%s:record:%s" % (n, n)) in self.types else "    (void)m;")
            w("}")
        for mm in self.msgs:
            if "nosession" in mm["flags"]:
                continue
            ps = mm["params"]
            if ps:
                arr = "    const void *a[] = {%s};" % ", ".join(
                    ("&" if self.by_value(p["type"]) or p["type"].kind == "string" else "") + cid(p["name"]) for p in ps)
                aname = "a"
            else:
                arr = None
                aname = "NULL"
            protos = self.protos(mm)
            has_ret = self.ctype(mm["ret"]) is not None
            w("%s" % protos[0][0])
            w("{")
            if arr:
                w(arr)
            w("    return xcp__typed_call(session, %s, false, %s, %s);" % (mm["cid"], "result" if has_ret else "NULL", aname))
            w("}")
            if len(protos) > 1:
                w("%s" % protos[1][0])
                w("{")
                if arr:
                    w(arr)
                w("    return xcp__typed_call(session, %s, true, task, %s);" % (mm["cid"], aname))
                w("}")
        return "\n".join(o) + "\n"

    def gen_model_h(self):
        o = []
        w = o.append
        w("/* Generated by tools/genmodel.py from lib/libxcp/model/model.def.")
        w(" * Do not edit: change the model and run `make regen`. */")
        w("#ifndef XCP_GEN_MODEL_H")
        w("#define XCP_GEN_MODEL_H")
        w("")
        w("/* class ids */")
        w("enum {")
        for i, c in enumerate(self.m.classes):
            w("    XCP__C_%s = %d," % (c["name"], i))
        w("    XCP__NCLASSES = %d" % len(self.m.classes))
        w("};")
        w("")
        w("/* enum ids */")
        w("enum {")
        for i, (en, _) in enumerate(self.m.enums):
            w("    XCP__E_%s = %d," % (en, i))
        w("    XCP__NENUMS = %d" % len(self.m.enums))
        w("};")
        w("")
        w("/* field indexes */")
        w("enum {")
        for c in self.m.classes:
            for i, f in enumerate(c["fields"]):
                w("    XCP__F_%s_%s = %d," % (c["name"], f["name"], i))
        w("    XCP__F_END_ = 0")
        w("};")
        w("")
        w("/* message ids */")
        w("enum {")
        for mm in self.msgs:
            w("    %s = %d," % (mm["cid"], mm["id"]))
        w("    XCP__NMESSAGES = %d" % len(self.msgs))
        w("};")
        w("")
        w("/* types */")
        for s, (t, cname) in sorted(self.types.items()):
            w("extern const struct xcp__type %s;" % cname)
        w("")
        w("/* sorted wire-name index */")
        w("struct xcp__msg_index { const char *wire; int id; };")
        w("extern const struct xcp__msg_index xcp__msg_index[];")
        w("")
        w("#endif")
        return "\n".join(o) + "\n"

    def type_order(self):
        done, order = set(), []

        def visit(s):
            if s in done:
                return
            t = self.types[s][0]
            for sub in (t.a, t.b):
                if sub is not None:
                    visit(sub.spell())
            if t.kind == "record":
                visit("ref:" + t.ref)
            done.add(s)
            order.append(s)
        for s in sorted(self.types):
            visit(s)
        return order

    def gen_model_c(self):
        o = []
        w = o.append
        w("/* Generated by tools/genmodel.py from lib/libxcp/model/model.def.")
        w(" * Do not edit: change the model and run `make regen`. */")
        w("/* The model as tables: types, enums, classes with their fields, and")
        w(" * every message (explicit and generated) with its signature. */")
        w('#include "model.h"')
        w("")
        for en, vals in self.m.enums:
            w("static const char *const ev_%s[] = {%s};" % (en, ", ".join('"%s"' % v for v in vals)))
        w("const struct xcp__enum xcp__enums[] = {")
        for en, vals in self.m.enums:
            w('    {"%s", %d, ev_%s},' % (en, len(vals), en))
        w("};")
        w("const int xcp__nenums = %d;" % len(self.m.enums))
        w("")
        kinds = {"string": "XT_STRING", "int": "XT_INT", "float": "XT_FLOAT",
                 "bool": "XT_BOOL", "datetime": "XT_DATETIME", "ref": "XT_REF",
                 "enum": "XT_ENUM", "set": "XT_SET", "map": "XT_MAP",
                 "record": "XT_RECORD", "any": "XT_ANY", "void": "XT_VOID"}
        for s in self.type_order():
            t, cname = self.types[s]
            if t.kind in ("ref", "record"):
                tid = self.m.class_ids.get(t.ref, -1)
            elif t.kind == "enum":
                tid = self.m.enum_ids[t.ref]
            else:
                tid = -1
            a = "&" + self.types[t.a.spell()][1] if t.a else "NULL"
            b = "&" + self.types[t.b.spell()][1] if t.b else "NULL"
            ct = self.ctype(t)
            size = "sizeof(%s)" % ct if ct else "0"
            w('const struct xcp__type %s = {%s, %s, %d, %s, %s, "%s", %s};' % (
                cname, kinds[t.kind], self.crep(t), tid, a, b, s, size))
        w("")
        quals = {"RO": "XQ_RO", "ROs": "XQ_ROS", "RW": "XQ_RW", "RWs": "XQ_RWS"}
        for c in self.m.classes:
            lc = c["lc"]
            w("static const struct xcp__field fields_%s[] = {" % c["name"])
            for f in c["fields"]:
                fl = []
                for k, v in (("deprecated", "XF_DEPRECATED"), ("removed", "XF_REMOVED"),
                             ("proto", "XF_PROTO"), ("req", "XF_REQ"), ("derived", "XF_DERIVED")):
                    if k in f["flags"]:
                        fl.append(v)
                rel_c, rel_f = -1, -1
                if f["rel"]:
                    rel_c = self.m.class_ids[f["rel"][0]["name"]]
                    rel_f = f["rel"][0]["fidx"][f["rel"][1]]
                d = ('"%s"' % f["def"]) if f["def"] is not None else "NULL"
                w('    {"%s", &%s, %s, %s, %s, offsetof(xcp_%s_record, %s), %d, %d},' % (
                    f["name"], self.types[f["tspell"]][1], quals[f["qual"]],
                    "|".join(fl) or "0", d, lc, cid(f["name"]), rel_c, rel_f))
            w("};")
            w("static const xcp_field_info finfo_%s[] = {" % c["name"])
            for f in c["fields"]:
                fl = []
                for k, v in (("deprecated", "XCP_FIELD_DEPRECATED"), ("removed", "XCP_FIELD_REMOVED"),
                             ("proto", "XCP_FIELD_PROTO"), ("req", "XCP_FIELD_REQUIRED")):
                    if k in f["flags"]:
                        fl.append(v)
                d = ('"%s"' % f["def"]) if f["def"] is not None else "NULL"
                w('    {"%s", "%s", XCP_QUAL_%s, %s, %s},' % (
                    f["name"], f["tspell"], f["qual"].upper(), "|".join(fl) or "0", d))
            w("};")
        w("const struct xcp__class xcp__classes[] = {")
        cf = {"create": "XK_CREATE", "destroy": "XK_DESTROY", "nogetall": "XK_NOGETALL",
              "noevents": "XK_NOEVENTS", "nodb": "XK_NODB", "volatile": "XK_VOLATILE"}
        for c in self.m.classes:
            fl = "|".join(cf[x] for x in sorted(c["flags"])) or "0"
            w('    {"%s", "%s", %s, %d, fields_%s, %d, %d, sizeof(xcp_%s_record), finfo_%s},' % (
                c["name"], c["lc"], fl, len(c["fields"]), c["name"],
                c["fidx"].get("uuid", -1), c["fidx"].get("name_label", -1),
                c["lc"], c["name"]))
        w("};")
        w("const int xcp__nclasses = %d;" % len(self.m.classes))
        w("")
        for mm in self.msgs:
            if mm["params"]:
                w("static const struct xcp__param p_%d[] = {%s};" % (mm["id"], ", ".join(
                    '{"%s", &%s, %s}' % (p["name"], self.types[p["type"].spell()][1],
                                         ('"%s"' % p["def"]) if p["def"] is not None else "NULL")
                    for p in mm["params"])))
                w("static const char *const pn_%d[] = {%s};" % (mm["id"], ", ".join('"%s"' % p["name"] for p in mm["params"])))
                w("static const char *const pt_%d[] = {%s};" % (mm["id"], ", ".join('"%s"' % p["type"].spell() for p in mm["params"])))
                w("static const char *const pd_%d[] = {%s};" % (mm["id"], ", ".join(
                    ('"%s"' % p["def"]) if p["def"] is not None else "NULL" for p in mm["params"])))
        w("const struct xcp__message xcp__messages[] = {")
        for mm in self.msgs:
            fl = []
            if "async" in mm["flags"]:
                fl.append("XMF_ASYNC")
            if "nosession" in mm["flags"]:
                fl.append("XMF_NOSESSION")
            nreq = sum(1 for p in mm["params"] if p["def"] is None)
            w('    {"%s", %d, %s, %s, %d, %d, %d, %s, &%s},' % (
                mm["wire"], mm["cls"], mm["kind"], "|".join(fl) or "0", mm["field"],
                len(mm["params"]), nreq, ("p_%d" % mm["id"]) if mm["params"] else "NULL",
                self.types[mm["ret"].spell()][1]))
        w("};")
        w("const int xcp__nmessages = %d;" % len(self.msgs))
        w("const xcp_message_info xcp__message_infos[] = {")
        for mm in self.msgs:
            i = mm["id"]
            has = bool(mm["params"])
            w('    {"%s", "%s", %d, %s, %s, %s, "%s", %s, %s},' % (
                mm["wire"], self.m.classes[mm["cls"]]["name"], len(mm["params"]),
                ("pn_%d" % i) if has else "NULL", ("pt_%d" % i) if has else "NULL",
                ("pd_%d" % i) if has else "NULL", mm["ret"].spell(),
                "true" if "async" in mm["flags"] else "false",
                "false" if "nosession" in mm["flags"] else "true"))
        w("};")
        w("const struct xcp__msg_index xcp__msg_index[] = {")
        for mm in sorted(self.msgs, key=lambda x: x["wire"].encode()):
            w('    {"%s", %d},' % (mm["wire"], mm["id"]))
        w("    {NULL, -1}")
        w("};")
        return "\n".join(o) + "\n"


def gen_syms(srcdir, classes_h):
    names = set()
    hdrs = []
    inc = os.path.join(srcdir, "include", "xcp")
    for root, _, files in os.walk(inc):
        for f in sorted(files):
            if f.endswith(".h") and f != "classes.h":
                hdrs.append(open(os.path.join(root, f)).read())
    hdrs.append(classes_h)
    for text in hdrs:
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        for m in re.finditer(r"XCP_EXTERN[^;]*?\b(xcp_\w+)\s*\(", text):
            names.add(m.group(1))
    o = ["/* Generated by tools/genmodel.py: every XCP_EXTERN function of the",
         " * public headers. One node per release; a released node never changes. */",
         "LIBXCP_0.1 {", "    global:"]
    for n in sorted(names):
        o.append("        %s;" % n)
    o += ["    local:", "        *;", "};"]
    return "\n".join(o) + "\n"


def doc_comment(paras, width=78):
    """A /** */ comment of the paragraphs, wrapped; one line when short."""
    if len(paras) == 1 and len(paras[0]) + 7 <= width:
        return ["/** %s */" % paras[0]]
    out = ["/**"]
    for i, p in enumerate(paras):
        if i:
            out.append(" *")
        out += [" * " + ln for ln in textwrap.wrap(p, width - 3,
                                                     break_long_words=False,
                                                     break_on_hyphens=False)]
    out.append(" */")
    return out


def check_docs(model, errors_path, strict):
    """Every error an e line names is in errors.def (else the build stops);
    with strict, every class, field and explicit message has a d line."""
    names = {e[0] for e in read_errors(errors_path)[0]}
    bad = []
    for lineno, errs in model.error_refs:
        for e in errs:
            if e not in names:
                bad.append("model.def:%d: error %s is not in errors.def" % (lineno, e))
    if strict:
        for c in model.classes:
            if not c["doc"]:
                bad.append("model.def: class %s has no d line" % c["name"])
            for f in c["fields"]:
                if not f["doc"]:
                    bad.append("model.def: field %s.%s has no d line" % (c["name"], f["name"]))
            for mm in c["msgs"]:
                if not mm["doc"]:
                    bad.append("model.def: message %s.%s has no d line" % (c["name"], mm["name"]))
    if bad:
        raise SystemExit("\n".join(bad))


def read_errors(path):
    """errors.def as (errors, forms): errors are (name, params, description),
    forms are (name, suffix, params) for the other parameter lists XAPI's
    code raises an error with."""
    errs, forms = [], []
    for lineno, raw in enumerate(open(path), 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        p = line.split(None, 3)
        if p[0] == "form" and len(p) == 4:
            forms.append((p[1], p[2], [] if p[3] == "-" else p[3].split(",")))
            continue
        if p[0] != "error" or len(p) < 3:
            raise SystemExit("%s:%d: cannot parse %r" % (path, lineno, raw))
        params = [] if p[2] == "-" else p[2].split(",")
        errs.append((p[1], params, p[3] if len(p) > 3 else ""))
    names = [e[0] for e in errs]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate error names in " + path)
    for n, suffix, ps in forms:
        if n not in names:
            raise SystemExit("%s: form of unknown error %s" % (path, n))
    macros = ["%s_%s" % (n, s) for n, s, ps in forms] + names
    if len(set(macros)) != len(macros):
        raise SystemExit("%s: a form's name is another error's" % path)
    return errs, forms


def gen_errors(path):
    errs, forms = read_errors(path)
    o = ["/* Generated by tools/genmodel.py from lib/libxcp/model/errors.def.",
         " * Do not edit: change errors.def and run `make regen`. */",
         "/* The XenAPI error table, sorted by name for bsearch. */",
         '#include "model.h"', ""]
    for i, (n, ps, d) in enumerate(sorted(errs)):
        if ps:
            o.append("static const char *const ep_%d[] = {%s};" % (i, ", ".join('"%s"' % x for x in ps)))
    o.append("const struct xcp__errdesc xcp__errors[] = {")
    for i, (n, ps, d) in enumerate(sorted(errs)):
        d = d.replace("\\", "\\\\").replace('"', '\\"')
        o.append('    {"%s", %d, %s, "%s"},' % (n, len(ps), ("ep_%d" % i) if ps else "NULL", d))
    o.append("};")
    o.append("const size_t xcp__nerrors = %d;" % len(errs))
    return "\n".join(o) + "\n"


def c_param(name):
    """A parameter name of errors.def as a C identifier."""
    name = name.replace("\\040", "_").strip()
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return "p_" + name


def gen_errors_h(path):
    """One macro per error (and per other form) raising it with exactly its
    parameters, so a misspelt name or a wrong count does not compile."""
    errs, forms = read_errors(path)
    o = ["/* Generated by tools/genmodel.py from lib/libxcp/model/errors.def.",
         " * Do not edit: change errors.def and run `make regen`. */",
         "/*",
         " * XCP__ERR_<NAME>(params...) sets the thread's error <NAME> with",
         " * exactly the parameters errors.def lists for it (each a const char *)",
         " * and returns XCP_EAPI. XCP__ERR_<NAME>_<FORM>(...) raises the same",
         " * error with another parameter list of errors.def's `form` rows.",
         " * Included by core.h; raise errors only through these.",
         " */",
         "#ifndef XCP_GEN_ERRORS_H",
         "#define XCP_GEN_ERRORS_H", ""]
    rows = [(n, ps) for n, ps, d in errs] + \
        [("%s_%s" % (n, s), ps, n) for n, s, ps in forms]
    for row in sorted(rows):
        macro, ps = row[0], row[1]
        wire = row[2] if len(row) > 2 else macro
        args = [c_param(x) for x in ps]
        call = ", ".join(['"%s"' % wire] + ["(%s)" % a for a in args] +
                         ["NULL"])
        o.append("#define XCP__ERR_%s(%s) \\" % (macro, ", ".join(args)))
        o.append("    xcp__fail(%s)" % call)
    o += ["", "#endif", ""]
    return "\n".join(o)


def write_if_changed(path, text):
    """Write a generated file, atomically, only when its text changed (so
    make sees no change otherwise). The other generators use it too."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    old = open(path).read() if os.path.exists(path) else None
    if old != text:
        with open(path + ".tmp", "w") as fh:
            fh.write(text)
        os.replace(path + ".tmp", path)


def main():
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else src
    model = parse(os.path.join(src, "lib/libxcp/model/model.def"))
    check_docs(model, os.path.join(src, "lib/libxcp/model/errors.def"),
               os.environ.get("XCP_MODEL_DOCS_STRICT", "1") != "0")
    g = Gen(model)
    files = {
        "include/xcp/classes.h": g.gen_public_header(),
        "lib/libxcp/model/gen_model.h": g.gen_model_h(),
        "lib/libxcp/model/gen_model.c": g.gen_model_c(),
        "lib/libxcp/engine/gen_api.c": g.gen_api_c(),
        "lib/libxcp/model/gen_errors.c": gen_errors(
            os.path.join(src, "lib/libxcp/model/errors.def")),
        "lib/libxcp/core/gen_errors.h": gen_errors_h(
            os.path.join(src, "lib/libxcp/model/errors.def")),
    }
    files["lib/libxcp/libxcp.sym"] = gen_syms(src, files["include/xcp/classes.h"])
    for rel, text in files.items():
        write_if_changed(os.path.join(out, rel), text)


if __name__ == "__main__":
    main()
