#!/usr/bin/env python3
"""XVA interop, with Python's standard library only (tarfile, gzip,
xml.etree, hashlib) and the zstd command for zstd archives.

No packaged third-party XVA reader exists in Debian or among npm's
maintained packages (Xen Orchestra hands XVAs to XAPI's /import without
parsing them, and its VMDK/OVA tools do not read XVA), so the reader
here is written from XAPI's description of the format (ocaml/xapi
export.ml, stream_vdi.ml, importexport.ml), independently of our C code:

- an XVA is a tar; its first member is ova.xml, an XML-RPC <value>: a
  struct of "version" (hostname, date, product_version, product_brand,
  build_number, xapi_major, xapi_minor, export_vsn) and "objects", an
  array of structs {class, id, snapshot: the object's record}, where
  references to exported objects are their ids and others OpaqueRef:NULL;
- each VDI's contents follow under the directory named by its id:
  members "<id>/<8-digit chunk number>" of 1 MiB (the last one shorter
  when the size is not a multiple), in increasing order, chunks of zeros
  left out except the first and the last, each followed by its checksum
  "<name>.checksum" (SHA-1, lower-case hex) or "<name>.xxhash" (XXH64,
  16 upper-case hex digits, XAPI 8);
- the whole may be gzip or zstd compressed.

1. What `xe vm-export` writes (plain, gzip, zstd; with snapshots) passes
   the reader: structure, references, checksums, disk contents.
2. A fixture written by the same description as XAPI writes it (GNU tar
   headers, untyped XML-RPC ints, .xxhash and .checksum members, a
   zero-length keep-alive chunk, chunks left out) passes the reader and
   `xe vm-import` makes its VM, disk contents, VIF and snapshot.
3. A corrupt chunk fails the import with IMPORT_ERROR and leaves no VM.
Exit 0 pass, 1 fail, 77 skip.
"""
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET

CHUNK = 1 << 20
BIG = 256 * CHUNK  # disks read back whole up to this size
NULL = "OpaqueRef:NULL"
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)
    return cond


# ---- XXH64, from its specification -----------------------------------
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F,
                      0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
                      0x27D4EB2F165667C5)
M64 = (1 << 64) - 1


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    acc = (acc + lane * P2) & M64
    return (_rotl(acc, 31) * P1) & M64


def _merge(acc, v):
    acc ^= _round(0, v)
    return (acc * P1 + P4) & M64


def xxh64(data, seed=0):
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed,
             (seed - P1) & M64]
        while i + 32 <= n:
            for k in range(4):
                v[k] = _round(v[k], int.from_bytes(data[i:i + 8], "little"))
                i += 8
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) +
             _rotl(v[3], 18)) & M64
        for k in range(4):
            h = _merge(h, v[k])
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h ^= _round(0, int.from_bytes(data[i:i + 8], "little"))
        h = (_rotl(h, 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i:i + 4], "little") * P1) & M64
        h = (_rotl(h, 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M64
        h = (_rotl(h, 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    h ^= h >> 32
    return h


# ---- XML-RPC values ---------------------------------------------------
def from_xml(v):
    """An XML-RPC <value> element as Python data."""
    kids = list(v)
    if not kids:
        return v.text or ""
    k = kids[0]
    if k.tag == "string":
        return k.text or ""
    if k.tag in ("int", "i4", "i8"):
        return int(k.text)
    if k.tag == "boolean":
        return k.text.strip() == "1"
    if k.tag == "double":
        return float(k.text)
    if k.tag == "dateTime.iso8601":
        return k.text
    if k.tag == "array":
        return [from_xml(x) for x in k.find("data").findall("value")]
    if k.tag == "struct":
        return {m.find("name").text or "": from_xml(m.find("value"))
                for m in k.findall("member")}
    if k.tag == "nil":
        return None
    raise ValueError("unknown XML-RPC type " + k.tag)


def esc(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def to_xml(x):
    """Python data as XAPI writes XML-RPC: ints and strings untyped."""
    if isinstance(x, bool):
        return "<value><boolean>%d</boolean></value>" % x
    if isinstance(x, (int, str)):
        return "<value>%s</value>" % esc(str(x))
    if isinstance(x, float):
        return "<value><double>%r</double></value>" % x
    if isinstance(x, list):
        return ("<value><array><data>%s</data></array></value>" %
                "".join(to_xml(i) for i in x))
    return ("<value><struct>%s</struct></value>" %
            "".join("<member><name>%s</name>%s</member>" % (esc(k), to_xml(v))
                    for k, v in x.items()))


# ---- the reader -------------------------------------------------------
class XvaError(Exception):
    pass


def open_stream(path):
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"\x28\xb5\x2f\xfd":
        out = subprocess.run(["zstd", "-dc", path], check=True,
                             stdout=subprocess.PIPE).stdout
        return io.BytesIO(out)
    return open(path, "rb")


def read_xva(path):
    """Validate an XVA; returns (header, {vdi id: disk bytes})."""
    with open_stream(path) as raw:
        tar = tarfile.open(fileobj=raw, mode="r|")
        first = tar.next()
        if first is None or first.name != "ova.xml":
            raise XvaError("first member is not ova.xml")
        top = from_xml(ET.fromstring(tar.extractfile(first).read()))
        if not isinstance(top, dict) or set(top) != {"version", "objects"}:
            raise XvaError("ova.xml is not {version, objects}")
        ver = top["version"]
        for k in ("hostname", "date", "product_version", "product_brand",
                  "build_number", "xapi_major", "xapi_minor",
                  "export_vsn"):
            if k not in ver:
                raise XvaError("version lacks " + k)
        objs = {}
        for o in top["objects"]:
            if set(o) != {"class", "id", "snapshot"}:
                raise XvaError("object is not {class, id, snapshot}")
            if o["id"] in objs:
                raise XvaError("duplicate id " + o["id"])
            objs[o["id"]] = o
        check_refs(objs)
        vdis = {i: o for i, o in objs.items() if o["class"] == "VDI"}
        disks, last = {}, {}
        pending = None
        while True:
            m = tar.next()
            if m is None:
                break
            name = m.name
            data = tar.extractfile(m).read() if m.isfile() else b""
            if name.endswith(".checksum") or name.endswith(".xxhash"):
                stem, ext = name.rsplit(".", 1)
                if pending is None or pending[0] != stem:
                    raise XvaError("checksum %s of no chunk" % name)
                chunk = pending[1]
                want = (hashlib.sha1(chunk).hexdigest() if ext == "checksum"
                        else "%016X" % xxh64(chunk))
                if data.decode().strip() != want:
                    raise XvaError("checksum mismatch on " + stem)
                pending = None
                continue
            if pending is not None and int(ver["export_vsn"]) > 0:
                raise XvaError("chunk %s without checksum" % pending[0])
            prefix, _, num = name.rpartition("/")
            if prefix not in vdis or len(num) != 8 or not num.isdigit():
                raise XvaError("unexpected member " + name)
            no = int(num)
            if prefix in last and (no < last[prefix] or
                                   (no == last[prefix] and
                                    len(data) and disks[prefix][1])):
                raise XvaError("chunks out of order at " + name)
            size = int(vdis[prefix]["snapshot"]["virtual_size"])
            # Big disks are checked, not kept.
            disk = disks.setdefault(prefix, [bytearray(size)
                                             if size <= BIG else None,
                                             False])
            if no * CHUNK + len(data) > size:
                raise XvaError("chunk past the end: " + name)
            if disk[0] is not None:
                disk[0][no * CHUNK:no * CHUNK + len(data)] = data
            if len(data) and no * CHUNK + len(data) == size:
                disk[1] = True
            last[prefix] = no
            pending = (name, data)
        if pending is not None and int(ver["export_vsn"]) > 0:
            raise XvaError("chunk %s without checksum" % pending[0])
    for i, o in vdis.items():
        if int(o["snapshot"]["virtual_size"]) and i in disks and \
                not disks[i][1]:
            raise XvaError("disk %s lacks its last chunk" % i)
    return top, {i: bytes(d[0]) if d[0] is not None else None
                 for i, d in disks.items()}


def check_refs(objs):
    def ref_ok(r, cls):
        return r == NULL or (r in objs and objs[r]["class"] == cls)

    for i, o in objs.items():
        s = o["snapshot"]
        if o["class"] == "VBD":
            if not ref_ok(s["VM"], "VM") or s["VM"] == NULL:
                raise XvaError("VBD %s: bad VM %s" % (i, s["VM"]))
            if not ref_ok(s["VDI"], "VDI"):
                raise XvaError("VBD %s: bad VDI %s" % (i, s["VDI"]))
        if o["class"] == "VIF" and not ref_ok(s["VM"], "VM"):
            raise XvaError("VIF %s: bad VM" % i)
        if o["class"] == "VDI" and not ref_ok(s["SR"], "SR"):
            raise XvaError("VDI %s: bad SR" % i)
        if o["class"] == "VM":
            for v in s.get("VBDs", []):
                if not ref_ok(v, "VBD"):
                    raise XvaError("VM %s: bad VBD %s" % (i, v))


# ---- the fixture, as XAPI writes one ----------------------------------
def fixture(path, disk, corrupt=None):
    size = len(disk)
    vm = {"uuid": "4b1c5d52-0000-4000-8000-00000000f1c5",
          "name_label": "from-xapi", "name_description": "XAPI's export",
          "power_state": "Halted", "is_a_template": False,
          "is_a_snapshot": False, "snapshot_of": NULL, "parent": NULL,
          "memory_static_max": "268435456", "memory_dynamic_max":
          "268435456", "memory_dynamic_min": "268435456",
          "memory_static_min": "134217728", "VCPUs_max": "1",
          "VCPUs_at_startup": "1", "HVM_boot_policy": "BIOS order",
          "HVM_boot_params": {"order": "dc"}, "platform": {"acpi": "1"},
          "other_config": {"mac_seed": "0d1c"}, "resident_on": NULL,
          "domid": "-1", "VBDs": ["Ref:5"], "VIFs": ["Ref:9"],
          "suspend_VDI": NULL, "actions_after_crash": "restart",
          "some_field_from_the_future": "ignored"}
    snap = dict(vm, uuid="4b1c5d52-0000-4000-8000-00000000f1c6",
                name_label="before", is_a_snapshot=True, is_a_template=True,
                snapshot_of="Ref:1", snapshot_time="20240611T08:05:59Z",
                VBDs=["Ref:6"], VIFs=[])
    vdi = {"uuid": "4b1c5d52-0000-4000-8000-0000000000d1",
           "name_label": "root", "name_description": "", "SR": "Ref:3",
           "virtual_size": str(size), "type": "system", "sharable": False,
           "read_only": False, "other_config": {}, "VBDs": ["Ref:5"],
           "is_a_snapshot": False, "snapshot_of": NULL,
           "sm_config": {"vdi_type": "vhd"}, "location": "x"}
    svdi = dict(vdi, uuid="4b1c5d52-0000-4000-8000-0000000000d2",
                is_a_snapshot=True, snapshot_of="Ref:4", read_only=True,
                VBDs=["Ref:6"])
    vbd = {"uuid": "4b1c5d52-0000-4000-8000-0000000000b1", "VM": "Ref:1",
           "VDI": "Ref:4", "device": "xvda", "userdevice": "0",
           "bootable": True, "mode": "RW", "type": "Disk", "empty": False,
           "currently_attached": False, "other_config": {"owner": ""}}
    svbd = dict(vbd, uuid="4b1c5d52-0000-4000-8000-0000000000b2",
                VM="Ref:2", VDI="Ref:7")
    sr = {"uuid": "4b1c5d52-0000-4000-8000-000000000051",
          "name_label": "Local storage", "type": "ext", "VDIs": []}
    net = {"uuid": "4b1c5d52-0000-4000-8000-0000000000e1",
           "name_label": "Pool-wide network associated with eth0",
           "bridge": "xenbr0", "VIFs": ["Ref:9"], "other_config": {}}
    vif = {"uuid": "4b1c5d52-0000-4000-8000-0000000000f1", "VM": "Ref:1",
           "network": "Ref:8", "device": "0", "MAC": "5e:1f:00:00:00:01",
           "MTU": "1500", "MAC_autogenerated": False, "other_config": {}}
    objs = [("VM", "Ref:1", vm), ("VM", "Ref:2", snap), ("SR", "Ref:3", sr),
            ("VDI", "Ref:4", vdi), ("VBD", "Ref:5", vbd),
            ("VBD", "Ref:6", svbd), ("VDI", "Ref:7", svdi),
            ("network", "Ref:8", net), ("VIF", "Ref:9", vif)]
    header = {"version": {"hostname": "xcp-ng-host", "date": "2024-06-11",
                          "product_version": "8.2.1",
                          "product_brand": "XCP-ng", "build_number":
                          "release/yangtze/master/58", "xapi_major": "1",
                          "xapi_minor": "20", "export_vsn": "2"},
              "objects": [{"class": c, "id": i, "snapshot": s}
                          for c, i, s in objs]}
    ova = ('<?xml version="1.0" encoding="UTF-8"?>' +
           to_xml(header)).encode()

    def add(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 1718093159
        tar.addfile(info, io.BytesIO(data))

    with open(path, "wb") as f:
        tar = tarfile.open(fileobj=f, mode="w", format=tarfile.GNU_FORMAT)
        add(tar, "ova.xml", ova)
        for prefix in ("Ref:4", "Ref:7"):  # XAPI's order: sorted ids
            nchunks = (size + CHUNK - 1) // CHUNK
            for no in range(nchunks):
                data = disk[no * CHUNK:(no + 1) * CHUNK]
                first_last = no in (0, nchunks - 1)
                if not first_last and not any(data):
                    continue
                name = "%s/%08d" % (prefix, no)
                if no == 1:  # a keep-alive: empty, then the real one
                    add(tar, name, b"")
                    add(tar, name + ".xxhash", b"%016X" % xxh64(b""))
                sent = data
                if corrupt == no:
                    sent = b"\xff" + data[1:]
                add(tar, name, sent)
                if no % 2:
                    add(tar, name + ".xxhash", b"%016X" % xxh64(data))
                else:
                    add(tar, name + ".checksum",
                        hashlib.sha1(data).hexdigest().encode())
        tar.close()


# ---- the test ----------------------------------------------------------
def main():
    top = os.environ.get("abs_top_builddir") or os.getcwd()
    xe_bin = os.path.join(top, "cmd", "xe", "xe")
    if not os.access(xe_bin, os.X_OK):
        print("SKIP: no xe at", xe_bin)
        return 77
    tmp = tempfile.mkdtemp(prefix="xva-interop-")
    env = dict(os.environ, XCP_STATE_DIR=os.path.join(tmp, "state"),
               XCP_HV="sim", HOME=tmp)

    def xe(*args, ok=True):
        p = subprocess.run([xe_bin] + list(args), env=env, cwd=tmp,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if ok and p.returncode != 0:
            raise RuntimeError("xe %s: %s" % (" ".join(args), p.stdout))
        return p.stdout.strip() if ok else p

    try:
        # Our export, read by the reader.
        pattern = bytearray(5 * CHUNK + 4096)
        pattern[0:5] = b"first"
        pattern[3 * CHUNK + 17:3 * CHUNK + 22] = b"third"
        pattern[-4:] = b"last"
        with open(os.path.join(tmp, "p.raw"), "wb") as f:
            f.write(pattern)
        vm = xe("vm-install", "template=Other install media",
                "new-name-label=ours")
        sr = xe("pool-param-get", "uuid=" + xe("pool-list", "--minimal"),
                "param-name=default-SR")
        vdi = xe("vdi-create", "sr-uuid=" + sr, "name-label=data",
                 "virtual-size=%d" % len(pattern))
        xe("vdi-import", "uuid=" + vdi, "filename=p.raw")
        xe("vbd-create", "vm-uuid=" + vm, "vdi-uuid=" + vdi, "device=1")
        xe("vm-snapshot", "vm=ours", "new-name-label=snap")
        for comp in ("false", "gzip", "zstd"):
            if comp == "zstd" and not shutil.which("zstd"):
                print("zstd command missing: zstd case skipped")
                continue
            out = xe("vm-export", "vm=ours", "filename=ours.xva",
                     "compress=" + comp)
            check(out == "Export succeeded", "vm-export prints " + out)
            try:
                hdr, disks = read_xva(os.path.join(tmp, "ours.xva"))
            except (XvaError, tarfile.TarError, ET.ParseError) as e:
                check(False, "reader refuses our %s export: %s" % (comp, e))
                continue
            names = sorted(o["snapshot"]["name_label"]
                           for o in hdr["objects"] if o["class"] == "VM")
            check(names == ["ours", "snap"], "VMs exported: %s" % names)
            check(int(hdr["version"]["export_vsn"]) == 2, "export_vsn 2")
            check(len(disks) == 2 and all(d == bytes(pattern)
                                          for d in disks.values()),
                  "%s export: both disks read back as written" % comp)
            print("ok: our %s export passes the reader" % comp)

        # XAPI's export (the fixture), checked by the reader, imported.
        disk = bytearray(6 * CHUNK + 512)
        disk[10:20] = b"xapi-boot!"
        disk[CHUNK + 5:CHUNK + 10] = b"chnk1"
        disk[4 * CHUNK:4 * CHUNK + 4] = b"four"
        disk[-6:] = b"theend"
        disk = bytes(disk)
        fx = os.path.join(tmp, "xapi.xva")
        fixture(fx, disk)
        hdr, disks = read_xva(fx)
        check(disks == {"Ref:4": disk, "Ref:7": disk},
              "the reader reads the fixture's disks")
        with open(fx, "rb") as f, gzip.open(fx + ".gz", "wb") as g:
            g.write(f.read())
        for name in ("xapi.xva", "xapi.xva.gz"):
            before = xe("vm-list", "--minimal")
            new = xe("vm-import", "filename=" + name)
            check(len(new.split(",")) == 1 and new not in before,
                  "vm-import prints the new VM's uuid: " + new)
            check(xe("vm-param-get", "uuid=" + new,
                     "param-name=name-label") == "from-xapi", "name-label")
            check(xe("vm-param-get", "uuid=" + new,
                     "param-name=power-state") == "halted", "halted")
            snaps = xe("vm-param-get", "uuid=" + new,
                       "param-name=snapshots")
            check(len(snaps.split(";")) == 1 and snaps, "one snapshot")
            check(xe("vif-list", "vm-uuid=" + new, "params=MAC",
                     "--minimal") == "5e:1f:00:00:00:01", "VIF's MAC")
            root = xe("vbd-list", "vm-uuid=" + new, "params=vdi-uuid",
                      "--minimal")
            xe("vdi-export", "uuid=" + root, "filename=root.raw")
            with open(os.path.join(tmp, "root.raw"), "rb") as f:
                check(f.read() == disk, name + ": the disk's contents")
            sroot = xe("vbd-list", "vm-uuid=" + snaps.strip(),
                       "params=vdi-uuid", "--minimal")
            check(xe("vdi-param-get", "uuid=" + sroot,
                     "param-name=is-a-snapshot") == "true",
                  "the snapshot's disk is a snapshot")
            print("ok: XAPI's export (%s) imports" % name)

        # A corrupt chunk (SHA-1 or XXH64 checksum): refused, nothing
        # left behind.
        for no, kind in ((0, "checksum"), (1, "xxhash")):
            fixture(fx, disk, corrupt=no)
            before = xe("vm-list", "--minimal")
            p = xe("vm-import", "filename=xapi.xva", ok=False)
            check(p.returncode != 0 and "checksum failed" in p.stdout,
                  "corrupt chunk (%s) refused: %s" % (kind, p.stdout))
            check(xe("vm-list", "--minimal") == before, "no VM left behind")
            print("ok: a corrupt chunk (.%s) is refused" % kind)
    except (RuntimeError, XvaError) as e:
        check(False, str(e))
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
