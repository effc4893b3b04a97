"""Typed use of the binding, checked by mypy (test_tooling.py)."""
from typing import Dict, List

import xcp


def powered(s: xcp.Session) -> Dict[xcp.VMRef, xcp.VmPowerState]:
    out: Dict[xcp.VMRef, xcp.VmPowerState] = {}
    for ref, rec in s.VM.get_all_records().items():
        out[ref] = rec.power_state
    return out


def clone_and_start(s: xcp.Session, template: xcp.VMRef) -> xcp.VMRef:
    t: xcp.Task[xcp.VMRef] = s.Async.VM.clone(template, "x")
    vm = t.wait()
    s.VM.start(vm, False, False)
    disks: List[xcp.VBDRef] = s.VM.get_VBDs(vm)
    for d in disks:
        s.VBD.get_record(d).device
    for ev in s.events(["VM"]):
        print(ev.id, ev.operation)
    return vm
