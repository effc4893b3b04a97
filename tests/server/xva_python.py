#!/usr/bin/python3
"""VM export and import as XVA through xcpd's /export, /export_metadata
and /import with Python's standard library, as XenServer's SDK samples
and XAPI's own clients use them, over HTTP and HTTPS.

Per transport:
 - GET /export?uuid=&use_compression=gzip: 200, task-id, the archive
   passes the XVA reader of tests/interop/xva_interop.py (written from
   XAPI's format description) with both disks' data, the task succeeds;
 - GET /export_metadata?ref=: ova.xml alone;
 - /export_metadata?include_vhd_parents=true (once, over HTTP): the VDIs
   the disks' sm_config "vhd-parent" names go in too, and their parents
   in turn (each once, a loop ends), as XAPI's export.ml walks them; a
   parent without a record is skipped; without the flag, none;
 - PUT /import as XenServer's sample sends it (HTTP/1.0, no length, the
   200 read before the body, which runs until the client closes) into
   the client's task: its result is the new VM's ref, as XAPI puts it
   (an XML-RPC array of refs), and the VM has its disk;
 - PUT /import with Content-Length, Basic credentials and sr_id;
 - refusals: an unknown VM (404, HANDLE_INVALID), a body that is not an
   XVA: 200 and the task fails with IMPORT_ERROR... (as XAPI, which
   answers before it reads the body), Content-Length or not; no VM left;
 - networks (once, over HTTP), as XAPI's import finds them: a VIF joins
   the network of the exported one's name, else the one with its bridge,
   else a network made from the exported record (name, bridge), which a
   failed import does not leave behind;
 - a CD drive (once, over HTTP): exported with its VDI's record and its
   ISO SR's, no data; imported, it holds the ISO VDI of that location
   again, or comes empty when no ISO SR has it (as XAPI).
Then xe vm-export / vm-import with -s over HTTPS.
"""

import base64
import http.client
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Daemon, XE, XenAPI, insecure_context,  # noqa: E402
                     connect, put, raw_socket, read_head, wait_task,
                     install_signal_exit, log, PASSWORD, USER)

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "xva_interop", os.path.join(HERE, "..", "interop", "xva_interop.py"))
xva = importlib.util.module_from_spec(spec)
spec.loader.exec_module(xva)

MiB = 1 << 20
C = Checks("xva_python")


def get(where, path, headers=None):
    c = connect(where)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def vms_of_result(result):
    return re.findall(r"OpaqueRef:[0-9a-f-]+", result or "")


def t_export(where, x, s, d, tmp, data):
    vm = d.vms["exported"]
    r, body = get(where, "/export?uuid=%s&session_id=%s&use_compression=gzip"
                  % (vm, s))
    C.eq(r.status, 200, "%s export: 200" % where[0])
    C.eq(r.getheader("content-type"), "application/x-tar",
         "%s export: XAPI's content type" % where[0])
    task = r.getheader("task-id", "")
    path = os.path.join(tmp, "got.xva")
    with open(path, "wb") as f:
        f.write(body)
    C.ok(body[:2] == b"\x1f\x8b", "%s export: gzip" % where[0])
    try:
        hdr, disks = xva.read_xva(path)
        small = [v for v in disks.values() if v is not None and
                 len(v) == len(data)]
        C.ok(len(small) == 2 and all(v == data for v in small),
             "%s export: the reader finds the data disk and its "
             "snapshot's" % where[0])
        names = sorted(o["snapshot"]["name_label"] for o in hdr["objects"]
                       if o["class"] == "VM")
        C.eq(names, ["exported", "snap"], "%s export: VM and snapshot"
             % where[0])
    except xva.XvaError as e:
        C.ok(False, "%s export: the reader accepts it" % where[0], str(e))
    C.eq(wait_task(x, s, task)["status"], "success",
         "%s export: task succeeds" % where[0])
    r, body = get(where, "/export_metadata?ref=%s&session_id=%s"
                  % (x.call("VM.get_by_uuid", s, vm), s))
    with open(path, "wb") as f:
        f.write(body)
    try:
        hdr, disks = xva.read_xva(path)
        C.ok(r.status == 200 and disks == {},
             "%s export_metadata: ova.xml alone" % where[0])
    except xva.XvaError as e:
        C.ok(False, "%s export_metadata: readable" % where[0], str(e))
    return path


def metadata_vdis(where, s, vm, tmp, flag):
    """The uuids of the VDIs /export_metadata of vm lists."""
    r, body = get(where, "/export_metadata?ref=%s&session_id=%s%s"
                  % (vm, s, "&include_vhd_parents=" + flag if flag else ""))
    C.eq(r.status, 200, "%s export_metadata (include_vhd_parents=%s): 200"
         % (where[0], flag))
    path = os.path.join(tmp, "meta.xva")
    with open(path, "wb") as f:
        f.write(body)
    hdr, _ = xva.read_xva(path)
    return sorted(o["snapshot"]["uuid"] for o in hdr["objects"]
                  if o["class"] == "VDI")


def t_vhd_parents(where, x, s, d, tmp):
    vm = x.call("VM.get_by_uuid", s, d.vms["nic"])
    disk = [x.call("VBD.get_VDI", s, b) for b in x.call("VM.get_VBDs", s, vm)
            if x.call("VBD.get_type", s, b) == "Disk"][0]
    plain = metadata_vdis(where, s, vm, tmp, None)
    C.eq(metadata_vdis(where, s, vm, tmp, "true"), plain,
         "include_vhd_parents: a parent image without a record is skipped")
    sr = x.call("VDI.get_SR", s, disk)
    made = []
    for name in ("p1", "p2"):
        made.append(x.call("VDI.create", s, {
            "name_label": name, "name_description": "", "SR": sr,
            "virtual_size": str(MiB), "type": "user", "sharable": False,
            "read_only": False, "other_config": {}, "xenstore_data": {},
            "sm_config": {}, "tags": []}))
    u = [x.call("VDI.get_uuid", s, v) for v in made]
    # disk -> p1 -> p2 -> disk (a loop ends at a VDI already in)
    x.call("VDI.remove_from_sm_config", s, disk, "vhd-parent")
    x.call("VDI.add_to_sm_config", s, disk, "vhd-parent", u[0])
    x.call("VDI.add_to_sm_config", s, made[0], "vhd-parent", u[1])
    x.call("VDI.add_to_sm_config", s, made[1], "vhd-parent",
           x.call("VDI.get_uuid", s, disk))
    C.eq(metadata_vdis(where, s, vm, tmp, "true"), sorted(plain + u),
         "include_vhd_parents=true: the parents and theirs are in")
    C.eq(metadata_vdis(where, s, vm, tmp, "false"), plain,
         "include_vhd_parents=false: no parent is in")
    C.eq(metadata_vdis(where, s, vm, tmp, None), plain,
         "without include_vhd_parents: no parent is in")
    for v in made:
        x.call("VDI.destroy", s, v)


def t_import(where, x, s, tmp, data):
    src = os.path.join(tmp, "src.xva")
    with open(src, "rb") as f:
        body = f.read()
    # XenServer's sample: HTTP/1.0, no length, the 200 before the body.
    task = x.call("task.create", s, "import", "")
    k = raw_socket(where)
    k.sendall(("PUT /import?session_id=%s&task_id=%s HTTP/1.0\r\n"
               "Host: x\r\n\r\n" % (s, task)).encode())
    status, hdrs = read_head(k)
    C.eq(status, 200, "%s until close: 200 before the body" % where[0])
    for off in range(0, len(body), 1 << 16):
        k.sendall(body[off:off + (1 << 16)])
    k.shutdown(socket.SHUT_WR)
    k.recv(1)
    k.close()
    rec = wait_task(x, s, task)
    C.eq(rec["status"], "success", "%s until close: task succeeds %s"
         % (where[0], rec.get("error_info")))
    refs = vms_of_result(rec["result"])
    C.ok(len(refs) == 1 and rec["result"].startswith("<value><array>"),
         "%s until close: the VM's ref as XAPI's result" % where[0],
         rec["result"])
    if refs:
        C.eq(x.call("VM.get_name_label", s, refs[0]), "exported",
             "%s until close: the VM" % where[0])
        C.eq(len(x.call("VM.get_snapshots", s, refs[0])), 1,
             "%s until close: with its snapshot" % where[0])
    # Content-Length, Basic credentials, sr_id
    sr = x.call("SR.get_all", s)[0]
    auth = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
    r, text = put(where, "/import?sr_id=%s" % sr, body,
                  {"Authorization": "Basic " + auth})
    C.eq(r.status, 200, "%s Basic + length: 200 %s" % (where[0], text))
    rec = wait_task(x, s, r.getheader("task-id", ""))
    C.eq(rec["status"], "success", "%s Basic + length: task" % where[0])


def t_refusals(where, x, s):
    r, body = get(where, "/export?uuid=nosuch&session_id=%s" % s)
    C.ok(r.status == 404 and body.startswith(b"HANDLE_INVALID"),
         "%s export of no VM: 404 HANDLE_INVALID" % where[0], repr(body))
    before = len(x.call("VM.get_all", s))
    task = x.call("task.create", s, "import", "")
    r, text = put(where, "/import?session_id=%s&task_id=%s" % (s, task),
                  b"this is not an XVA at all" * 100)
    rec = wait_task(x, s, task)
    # XAPI's /import answers 200 (and the task) before it reads the body:
    # a failure then is the task's (import.ml), Content-Length or not.
    C.ok(r.status == 200 and r.getheader("task-id", "") == task and
         rec["status"] == "failure" and
         rec["error_info"][0].startswith("IMPORT_ERROR"),
         "%s import of garbage: 200, task fails IMPORT_ERROR" % where[0],
         "%d %r %r" % (r.status, text, rec["error_info"]))
    r, text = put(where, "/import?session_id=%s" % s,
                  b"this is not an XVA at all" * 100)
    rec = wait_task(x, s, r.getheader("task-id", ""))
    C.ok(r.status == 200 and rec["status"] == "failure" and
         rec["error_info"][0].startswith("IMPORT_ERROR"),
         "%s import of garbage, no task given: 200, its task fails"
         % where[0], "%d %r %r" % (r.status, text, rec.get("error_info")))
    C.eq(len(x.call("VM.get_all", s)), before,
         "%s import of garbage: no VM left" % where[0])


def import_xva(where, x, s, body):
    """PUT body at /import: the task's record."""
    r, _ = put(where, "/import?session_id=%s" % s, body)
    return wait_task(x, s, r.getheader("task-id", ""))


def nic_networks(x, s, rec):
    """The networks of the VIFs of the VM the import task made."""
    vm = vms_of_result(rec["result"])[0]
    return [x.call("VIF.get_network", s, v)
            for v in x.call("VM.get_VIFs", s, vm)]


def t_networks(where, x, s, d):
    net = x.call("network.create", s, {
        "name_label": "xva-net", "name_description": "", "MTU": "1500",
        "bridge": "xvabr0", "other_config": {}, "tags": []})
    vm = x.call("VM.get_by_uuid", s, d.vms["nic"])
    vif = x.call("VIF.create", s, {
        "device": "0", "network": net, "VM": vm, "MAC": "",
        "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
        "qos_algorithm_params": {}})
    r, body = get(where, "/export?uuid=%s&session_id=%s" % (d.vms["nic"], s))
    C.eq(r.status, 200, "networks: export of a VM with a NIC")
    rec = import_xva(where, x, s, body)
    C.eq(nic_networks(x, s, rec), [net], "networks: joins the one of its "
         "name")
    x.call("network.set_name_label", s, net, "renamed")
    rec = import_xva(where, x, s, body)
    C.eq(nic_networks(x, s, rec), [net], "networks: else the one of its "
         "bridge")
    nets = len(x.call("network.get_all", s))
    bad = body[:len(body) - 4096]   # cut short: the disks do not come
    r, _ = put(where, "/import?session_id=%s" % s, bad)
    bad_rec = wait_task(x, s, r.getheader("task-id", ""))
    C.eq(bad_rec["status"], "failure", "networks: a cut import fails")
    for v in x.call("network.get_VIFs", s, net):
        x.call("VIF.destroy", s, v)
    x.call("network.destroy", s, net)
    r, _ = put(where, "/import?session_id=%s" % s, bad)
    wait_task(x, s, r.getheader("task-id", ""))
    C.eq(len(x.call("network.get_all", s)), nets - 1,
         "networks: a failed import leaves no network it made")
    rec = import_xva(where, x, s, body)
    made = nic_networks(x, s, rec)
    C.ok(len(made) == 1 and made[0] != net and
         x.call("network.get_name_label", s, made[0]) == "xva-net" and
         x.call("network.get_bridge", s, made[0]) == "xvabr0",
         "networks: else one made from the exported record",
         repr([x.call("network.get_record", s, m) for m in made]))
    del vif


def t_cd(where, x, s, d, tmp):
    isos = os.path.join(d.state, "isos")
    os.makedirs(isos, exist_ok=True)
    with open(os.path.join(isos, "tools.iso"), "wb") as f:
        f.write(b"CD001" * 1000)
    host = x.call("host.get_all", s)[0]
    isr = x.call("SR.create", s, host, {"location": isos}, "0", "isos", "",
                 "iso", "iso", False, {})
    x.call("SR.scan", s, isr)
    cd = [v for v in x.call("SR.get_VDIs", s, isr)
          if x.call("VDI.get_location", s, v) == "tools.iso"]
    C.eq(len(cd), 1, "cd: the ISO SR holds tools.iso")
    vm = x.call("VM.get_by_uuid", s, d.vms["cd"])
    x.call("VBD.create", s, {
        "VM": vm, "VDI": cd[0], "userdevice": "3", "bootable": False,
        "mode": "RO", "type": "CD", "unpluggable": True, "empty": False,
        "other_config": {}, "qos_algorithm_type": "",
        "qos_algorithm_params": {}})
    r, body = get(where, "/export?uuid=%s&session_id=%s" % (d.vms["cd"], s))
    C.eq(r.status, 200, "cd: export")
    path = os.path.join(tmp, "cd.xva")
    with open(path, "wb") as f:
        f.write(body)
    hdr, disks = xva.read_xva(path)
    recs = {o["id"]: o for o in hdr["objects"]}
    vbds = [o["snapshot"] for o in hdr["objects"] if o["class"] == "VBD"
            and o["snapshot"]["type"] == "CD"]
    C.ok(len(vbds) == 1 and vbds[0]["VDI"] in recs,
         "cd: the drive names its VDI", repr(vbds))
    if vbds and vbds[0]["VDI"] in recs:
        v = recs[vbds[0]["VDI"]]["snapshot"]
        C.eq(v["location"], "tools.iso", "cd: the VDI's location")
        C.eq(recs[v["SR"]]["snapshot"]["content_type"], "iso",
             "cd: with its ISO SR")
        C.ok(disks.get(vbds[0]["VDI"]) is None, "cd: no data sent")

    def drives(rec):
        new = vms_of_result(rec["result"])[0]
        return [(x.call("VBD.get_type", s, b), x.call("VBD.get_empty", s, b),
                 x.call("VBD.get_VDI", s, b))
                for b in x.call("VM.get_VBDs", s, new)
                if x.call("VBD.get_type", s, b) == "CD"]
    rec = import_xva(where, x, s, body)
    C.eq(rec["status"], "success", "cd: import %s" % rec.get("error_info"))
    C.eq(drives(rec), [("CD", False, cd[0])],
         "cd: the drive holds the ISO VDI of that location")
    os.rename(os.path.join(isos, "tools.iso"), os.path.join(isos, "x.iso"))
    x.call("SR.scan", s, isr)
    rec = import_xva(where, x, s, body)
    C.eq(rec["status"], "success", "cd: import without the ISO %s"
         % rec.get("error_info"))
    C.eq(drives(rec), [("CD", True, "OpaqueRef:NULL")],
         "cd: no ISO of that location: the drive comes empty")


def t_xe_remote(d, tmp, where, flags):
    env = dict(os.environ, XCP_STATE_DIR=os.path.join(tmp, "nowhere"))
    args = ["-s", where[1], "-p", str(where[2]), "-u", USER, "-pw",
            PASSWORD] + flags
    out = os.path.join(tmp, "xe.xva")

    def run(*a):
        return subprocess.run([XE] + args + list(a), env=env,
                              capture_output=True, text=True, timeout=300)

    p = run("vm-export", "uuid=" + d.vms["exported"], "filename=" + out,
            "compress=zstd")
    C.eq((p.returncode, p.stdout.strip()), (0, "Export succeeded"),
         "xe -s %s vm-export %s" % (where[0], p.stderr))
    p = run("vm-import", "filename=" + out)
    uuid = p.stdout.strip()
    C.ok(p.returncode == 0 and re.fullmatch(r"[0-9a-f-]{36}", uuid),
         "xe -s %s vm-import prints the uuid" % where[0], p.stdout + p.stderr)


def main():
    install_signal_exit(C, watchdog_s=600)
    tmp = tempfile.mkdtemp(prefix="xva-")
    data = bytearray(3 * MiB + 4096)
    data[0:4] = b"boot"
    data[2 * MiB:2 * MiB + 4] = b"data"
    data[-4:] = b"tail"
    data = bytes(data)
    try:
        with Daemon("xva") as d:
            d.make_vms(["exported", "nic", "cd"])
            raw = os.path.join(tmp, "d.raw")
            with open(raw, "wb") as f:
                f.write(data)
            sr = d.xe("pool-param-get", "uuid=" + d.xe("pool-list",
                      "--minimal"), "param-name=default-SR")
            vdi = d.xe("vdi-create", "sr-uuid=" + sr, "name-label=d",
                       "virtual-size=%d" % len(data))
            d.xe("vdi-import", "uuid=" + vdi, "filename=" + raw)
            d.xe("vbd-create", "vm-uuid=" + d.vms["exported"],
                 "vdi-uuid=" + vdi, "device=1")
            d.xe("vm-snapshot", "vm=exported", "new-name-label=snap")
            # the NIC's VM has a disk, so that a cut import fails after
            # its objects (a network among them) were made
            vdi = d.xe("vdi-create", "sr-uuid=" + sr, "name-label=n",
                       "virtual-size=%d" % len(data))
            d.xe("vdi-import", "uuid=" + vdi, "filename=" + raw)
            d.xe("vbd-create", "vm-uuid=" + d.vms["nic"], "vdi-uuid=" + vdi,
                 "device=1")
            d.start()
            for where in (d.http, d.https):
                x = XenAPI(where)
                s = x.login()
                path = C.section("%s export" % where[0], t_export, where, x,
                                 s, d, tmp, data)
                if path:
                    get_src = get(where, "/export?uuid=%s&session_id=%s"
                                  % (d.vms["exported"], s))[1]
                    with open(os.path.join(tmp, "src.xva"), "wb") as f:
                        f.write(get_src)
                    C.section("%s import" % where[0], t_import, where, x, s,
                              tmp, data)
                C.section("%s refusals" % where[0], t_refusals, where, x, s)
                if where == d.http:
                    C.section("vhd parents", t_vhd_parents, where, x, s, d,
                              tmp)
                    C.section("networks", t_networks, where, x, s, d)
                    C.section("cd", t_cd, where, x, s, d, tmp)
                x.close()
            C.section("xe -s https", t_xe_remote, d, tmp, d.https, [])
            C.eq(d.stop(), 0, "xcpd stops cleanly")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return C.finish()


if __name__ == "__main__":
    sys.exit(main())
