# SR, PBD and VDI management: sr-create/-probe/-update/-forget/-introduce/
# -destroy, pbd-create/-destroy, vdi-copy/-clone/-snapshot/-resize/
# -forget/-introduce/-update, and their refusals.
mkdir -p "$XCP_STATE_DIR/sr1"
echo -n "$XCP_STATE_DIR/sr1" >"$XCP_STATE_DIR/loc"
SR=$(xe sr-create name-label=disks type=file device-config:location-filename=$XCP_STATE_DIR/loc)
xe sr-param-get uuid=$SR param-name=type
xe sr-create name-label=again type=file device-config:location=/nonexistent
xe sr-create type=file
V=$(xe vdi-create sr-uuid=$SR name-label=d1 virtual-size=64MiB)
xe vdi-copy uuid=$V
xe vdi-copy uuid=$V sr-uuid=$SR into-vdi-uuid=$V
C=$(xe vdi-copy uuid=$V sr-uuid=$SR)
xe vdi-param-get uuid=$C param-name=virtual-size
K=$(xe vdi-clone uuid=$V new-name-label=cl new-name-description=a-clone)
xe vdi-param-get uuid=$K param-name=name-label
xe vdi-param-get uuid=$K param-name=name-description
S=$(xe vdi-snapshot uuid=$V)
xe vdi-param-get uuid=$S param-name=is-a-snapshot
xe vdi-resize uuid=$V disk-size=128MiB
xe vdi-param-get uuid=$V param-name=virtual-size
xe vdi-resize uuid=$V disk-size=lots
xe vdi-update uuid=$V
L=$(xe vdi-param-get uuid=$C param-name=location)
xe vdi-forget uuid=$C
xe vdi-introduce uuid=$C sr-uuid=$SR type=user location=$L name-label=back
xe vdi-param-get uuid=$C param-name=name-label
xe sr-probe type=nosuchtype
xe sr-update uuid=$SR
xe sr-forget uuid=$SR
P=$(xe pbd-list sr-uuid=$SR --minimal)
xe pbd-unplug uuid=$P
xe sr-forget uuid=$SR
xe sr-list uuid=$SR --minimal
xe sr-introduce uuid=$SR name-label=disks type=file
H=$(xe host-list --minimal)
P=$(xe pbd-create host-uuid=$H sr-uuid=$SR device-config:location=$XCP_STATE_DIR/sr1)
xe pbd-plug uuid=$P
xe sr-scan uuid=$SR
xe vdi-list sr-uuid=$SR params=name-label --minimal
xe pbd-destroy uuid=$P
xe pbd-unplug uuid=$P
xe pbd-destroy uuid=$P
xe sr-destroy uuid=$SR
xe help sr-create
