# vdi-export base=: a snapshot relative to an earlier one, as XAPI's xe
# (it passes base= on to /export_raw_vdi), as vhd and qcow2: the delta
# holds only the 64 KiB written between them; applied over a clone of the
# earlier snapshot it gives the later one (the "same:" lines); a base that
# is no VDI, and tar (XAPI's chunked tar has no delta), fail.
SR=$(xe sr-create name-label=delta type=file)
V=$(xe vdi-create sr-uuid=$SR name-label=disk virtual-size=8MiB)
qemu-io -f qcow2 -c 'write -P 1 0 8M' "$XCP_STATE_DIR/sr/$SR/$V.qcow2" >/dev/null
S1=$(xe vdi-snapshot uuid=$V)
qemu-io -f qcow2 -c 'write -P 2 4M 64k' "$XCP_STATE_DIR/sr/$SR/$V.qcow2" >/dev/null
S2=$(xe vdi-snapshot uuid=$V)
xe vdi-export uuid=$S2 base=$S1 format=qcow2 filename=$XCP_STATE_DIR/d.qcow2
printf 'qcow2 delta: %s bytes, backing %s\n' "$(stat -c %s "$XCP_STATE_DIR/d.qcow2")" "$(qemu-img info --output=json "$XCP_STATE_DIR/d.qcow2" | sed -n 's/.*"backing-filename": "\(.*\)".*/\1/p')" >>"$transcript"
xe vdi-export uuid=$S2 base=$S1 format=vhd filename=$XCP_STATE_DIR/d.vhd
printf 'vhd delta: %s bytes\n' "$(stat -c %s "$XCP_STATE_DIR/d.vhd")" >>"$transcript"
xe vdi-export uuid=$S2 filename=$XCP_STATE_DIR/s2.raw
for f in vhd qcow2; do
    C=$(xe vdi-clone uuid=$S1)
    xe vdi-import uuid=$C format=$f filename=$XCP_STATE_DIR/d.$f
    xe vdi-export uuid=$C filename=$XCP_STATE_DIR/c.raw
    cmp -s "$XCP_STATE_DIR/c.raw" "$XCP_STATE_DIR/s2.raw" && r=yes || r=no
    printf 'same: %s over a clone of S1 = S2: %s\n' $f $r >>"$transcript"
done
xe vdi-export uuid=$S2 base=$S2 format=vhd filename=$XCP_STATE_DIR/e.vhd
printf 'vhd delta from itself: %s bytes\n' "$(stat -c %s "$XCP_STATE_DIR/e.vhd")" >>"$transcript"
xe vdi-export uuid=$S2 base=nosuch format=vhd filename=$XCP_STATE_DIR/x.vhd
xe vdi-export uuid=$S2 base=$S1 format=tar filename=$XCP_STATE_DIR/x.tar
