#!/usr/bin/env python3
"""List the VMs of an embedded libxcp engine.

    python3 examples/python/hello.py STATE_DIR

With the binding installed (pip install --no-build-isolation
./bindings/python) or PYTHONPATH=bindings/python from the source tree
(the build tree's libxcp.so is found by itself; XCP_LIBRARY=path overrides).
"""
import os
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "bindings", "python"))
import xcp  # noqa: E402


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: hello.py STATE_DIR", file=sys.stderr)
        return 2
    try:
        with xcp.Session("local:" + sys.argv[1]) as s:
            recs = s.VM.get_all_records()
            for ref, vm in sorted(recs.items(), key=lambda kv: kv[1].name_label):
                if vm.is_a_template or vm.is_control_domain:
                    continue
                print("%-36s %-10s %s" % (vm.uuid, vm.power_state.value,
                                          vm.name_label))
    except xcp.Failure as f:
        print("error: %s" % f, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
