# vm-export / vm-import: XVA round trips (plain, gzip, zstd), snapshots
# along, and the refusals.
SR=$(xe pool-param-get uuid=$(xe pool-list --minimal) param-name=default-SR)
VM=$(xe vm-install template="Other install media" new-name-label=web)
V=$(xe vdi-create sr-uuid=$SR name-label=data virtual-size=3MiB)
xe vbd-create vm-uuid=$VM vdi-uuid=$V device=1
xe vm-snapshot vm=web new-name-label=before
xe vm-export vm=web filename=$XCP_STATE_DIR/web.xva
xe vm-export vm=web filename=$XCP_STATE_DIR/web.gz.xva compress=true
xe vm-export vm=web filename=$XCP_STATE_DIR/web.zst.xva compress=zstd
xe vm-export vm=web filename=$XCP_STATE_DIR/meta.xva metadata=true
xe vm-export vm=web filename=$XCP_STATE_DIR/x.xva compress=lz4
N=$(xe vm-import filename=$XCP_STATE_DIR/web.zst.xva)
xe vm-param-get uuid=$N param-name=name-label
xe vm-param-get uuid=$N param-name=power-state
xe snapshot-list snapshot-of=$N params=name-label
xe vbd-list vm-uuid=$N params=userdevice,type
xe vm-import filename=$XCP_STATE_DIR/web.gz.xva sr-uuid=$SR
xe vm-list name-label=web params=name-label --minimal
xe vm-import filename=$XCP_STATE_DIR/meta.xva
M=$(xe vm-import filename=$XCP_STATE_DIR/meta.xva metadata=true)
xe vbd-list vm-uuid=$M userdevice=1 params=vdi-uuid
xe vm-import filename=$XCP_STATE_DIR/nosuch.xva
xe vm-import filename=$XCP_STATE_DIR/web.xva sr-uuid=nosuch
xe vm-start vm=$VM
xe vm-export vm=$VM filename=$XCP_STATE_DIR/run.xva
