#!/bin/sh
# The quick start's first command: install what is missing, build, then the
# main job on the embedded engine (no daemon, the `sim` hypervisor when Xen
# is absent): install a VM from a template, start it, list it.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
sh tools/build.sh
xe() { ./cmd/xe/xe "$@"; }
echo "== state directory: ${XCP_STATE_DIR:-default (see README)}"
uuid=$(xe vm-install template="Debian Bookworm 12" new-name-label="demo-$(date +%s)")
echo "== installed VM $uuid"
xe vm-start uuid="$uuid"
echo "== started; the VMs of this host:"
xe vm-list
xe vm-list uuid="$uuid" params=uuid,name-label,power-state,memory-actual,VCPUs-number
