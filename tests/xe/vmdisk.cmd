# A VM's disks, CDs and VIFs (vm-disk-*, vm-cd-*, vm-vif-list,
# snapshot-disk-list) and the BIOS-string and snapshot commands.
mkdir -p "$XCP_STATE_DIR/isos"
truncate -s 1M "$XCP_STATE_DIR/isos/debian.iso"
V=$(xe vm-install template="Other install media" new-name-label=disks)
SR=$(xe sr-list name-label="Local storage" --minimal)
xe vm-disk-list vm=disks
xe vm-disk-add vm=disks disk-size=1GiB device=1
xe vm-disk-add vm=disks disk-size=2GiB device=2 sr-uuid=$SR
xe vm-disk-add vm=disks disk-size=1GiB device=1
xe vm-disk-add vm=disks disk-size=lots device=3
xe vm-disk-add vm=disks device=3
xe vm-disk-add vm=disks disk-size=1GiB device=3 sr-uuid=00000000-0000-0000-0000-000000000000
xe vm-disk-list vm=disks
xe vm-disk-list vm=disks vbd-params=userdevice,mode vdi-params=name-label,virtual-size
xe vm-disk-list vm=disks vbd-params=uuid --minimal
xe vm-disk-remove vm=disks device=2
xe vm-disk-remove vm=disks device=9
xe vm-disk-list vm=disks vdi-params=virtual-size
xe vm-disk-list vm=nobody
ISO=$(xe sr-create type=iso name-label=ISO content-type=iso device-config:location="$XCP_STATE_DIR/isos")
xe sr-scan uuid=$ISO
xe vm-cd-list vm=disks
xe vm-cd-add vm=disks cd-name=debian.iso device=3
xe vm-cd-add vm=disks cd-name=missing.iso device=4
xe vm-cd-add vm=disks device=4
xe vm-cd-list vm=disks
xe vm-cd-remove vm=disks cd-name=missing.iso
xe vm-cd-remove vm=disks cd-name=debian.iso
xe vm-cd-list vm=disks
N=$(xe network-list bridge=xenbr0 --minimal)
xe vm-vif-list vm=disks
VIF=$(xe vif-create vm-uuid=$V network-uuid=$N device=0 mac=00:16:3e:00:00:01)
xe vm-vif-list vm=disks
xe vm-vif-list vm=disks params=device,MAC
xe vm-is-bios-customized vm=disks
H=$(xe host-list --minimal)
xe vm-copy-bios-strings vm=disks host-uuid=$H
xe vm-is-bios-customized vm=disks
xe vm-copy-bios-strings vm=disks
S=$(xe vm-snapshot vm=disks new-name-label=snap)
xe snapshot-disk-list uuid=$S
xe snapshot-disk-list snapshot-uuid=$S vdi-params=virtual-size
xe snapshot-disk-list uuid=$V
xe snapshot-disk-list
xe vm-snapshot-with-quiesce vm=disks new-name-label=quiet
xe snapshot-reset-powerstate uuid=$S
xe snapshot-reset-powerstate uuid=$S --force
xe snapshot-reset-powerstate uuid=$V --force
xe help vm-disk-add
xe help vm-cd-list
