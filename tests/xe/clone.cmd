# clone, copy, snapshot, snapshot-revert, checkpoint, uninstall, destroy.
V=$(xe vm-install template="Debian Bookworm 12" new-name-label=src)
xe vm-clone vm=src new-name-label=cloned new-name-description="a clone"
xe vm-list params=name-label,name-description,is-a-template name-label=cloned
xe vm-copy vm=src new-name-label=copied
SR=$(xe sr-list name-label="Local storage" --minimal)
xe vm-copy vm=src new-name-label=copied2 sr-uuid=$SR
xe vm-clone new-name-label=many
xe vm-clone name-label=src
S=$(xe vm-snapshot vm=src new-name-label=snap1)
xe snapshot-list
xe snapshot-list params=name-label,is-a-snapshot,snapshot-of,snapshot-time
xe vm-list params=name-label,snapshots name-label=src
xe snapshot-revert snapshot-uuid=$S
xe snapshot-revert uuid=$V
xe snapshot-revert
xe vm-start vm=src
C=$(xe vm-checkpoint vm=src new-name-label=check1)
xe snapshot-param-get uuid=$C param-name=power-state
xe vm-shutdown vm=src --force
xe snapshot-revert uuid=$C
xe vm-param-get uuid=$V param-name=power-state
xe vm-shutdown vm=src --force
xe vm-checkpoint vm=src new-name-label=check2
xe template-list params=name-label name-label=snap1
xe vdi-list params=name-label,is-a-snapshot
xe vm-destroy uuid=$(xe vm-list name-label=copied --minimal)
DOM0=$(xe vm-list is-control-domain=true --minimal)
xe vm-destroy uuid=$DOM0
xe vm-uninstall vm=cloned
echo no | xe vm-uninstall vm=cloned
echo yes | xe vm-uninstall vm=cloned
xe vm-uninstall vm=src --force
xe vm-uninstall vm=src --force
xe vm-list params=name-label
xe snapshot-list
xe vdi-list params=name-label
