# Changed block tracking, as XAPI's xe: vdi-enable-cbt, a guest's writes
# (by QEMU, which keeps the disk's qcow2 dirty bitmap itself), the base64
# bitmap of vdi-list-changed-blocks (1 MiB: 16 blocks of 64 KiB, two
# bytes), vdi-data-destroy keeping the metadata, vdi-disable-cbt, errors.
SR=$(xe sr-create name-label=cbt type=file)
V=$(xe vdi-create sr-uuid=$SR name-label=disk virtual-size=1MiB)
xe vdi-param-get uuid=$V param-name=cbt-enabled
xe vdi-enable-cbt uuid=$V
xe vdi-param-get uuid=$V param-name=cbt-enabled
S1=$(xe vdi-snapshot uuid=$V)
xe vdi-param-get uuid=$S1 param-name=cbt-enabled
qemu-io -f qcow2 -c 'write 64k 4k' -c 'write 900k 1k' "$XCP_STATE_DIR/sr/$SR/$V.qcow2" >/dev/null
S2=$(xe vdi-snapshot uuid=$V)
xe vdi-list-changed-blocks vdi-from-uuid=$S1 vdi-to-uuid=$S2
xe vdi-list-changed-blocks vdi-from-uuid=$S2 vdi-to-uuid=$V
xe vdi-list-changed-blocks vdi-from-uuid=$S1
xe vdi-data-destroy uuid=$V
xe vdi-data-destroy uuid=$S1
xe vdi-param-get uuid=$S1 param-name=type
xe vdi-list-changed-blocks vdi-from-uuid=$S1 vdi-to-uuid=$V
xe vdi-snapshot uuid=$S1
xe vdi-enable-cbt uuid=$S2
xe vdi-disable-cbt uuid=$V
xe vdi-param-get uuid=$V param-name=cbt-enabled
xe vdi-list-changed-blocks vdi-from-uuid=$S2 vdi-to-uuid=$V
