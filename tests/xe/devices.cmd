# VDIs, VBDs, VIFs, networks; memory and vCPU changes.
V=$(xe vm-install template="Other install media" new-name-label=dev)
SR=$(xe sr-list name-label="Local storage" --minimal)
D=$(xe vdi-create sr-uuid=$SR name-label=data virtual-size=1GiB)
xe vdi-list uuid=$D
xe vdi-param-list uuid=$D
xe vdi-create sr-uuid=$SR name-label=bad virtual-size=1.5GiB
xe vdi-create sr-uuid=$SR name-label=bad virtual-size=10 type=weird
xe vdi-create sr-uuid=$SR name-label=tagged virtual-size=512MiB type=user sharable=true tags:blue=1 sm-config:k=v
xe vdi-list name-label=tagged params=name-label,virtual-size,sharable,tags,sm-config
xe vdi-create sr-uuid=00000000-0000-0000-0000-000000000000 name-label=x virtual-size=1
B=$(xe vbd-create vm-uuid=$V vdi-uuid=$D device=1)
xe vbd-list vm-uuid=$V
xe vbd-param-list uuid=$B
xe vbd-create vm-uuid=$V device=3
CD=$(xe vbd-create vm-uuid=$V device=3 type=CD mode=ro)
xe vbd-list uuid=$CD params=vdi-name-label,empty,type,mode
xe vbd-eject uuid=$CD
xe vbd-insert uuid=$CD vdi-uuid=$D
xe vbd-insert uuid=$CD
xe vbd-create vm-uuid=$V vdi-uuid=$D device=4 mode=xx
xe vbd-create vm-uuid=$V vdi-uuid=$D device=4 type=Tape
xe vbd-destroy uuid=$CD
xe vdi-destroy uuid=$D
xe vbd-destroy uuid=$B
xe vdi-destroy uuid=$D
xe vdi-list uuid=$D
N=$(xe network-create name-label=internal name-description="no uplink")
xe network-list uuid=$N
xe network-list params=name-label,MTU,managed uuid=$N
xe network-create name-label=big MTU=9000 bridge=xapi9
xe network-create name-label=bad MTU=large
I=$(xe vif-create vm-uuid=$V network-uuid=$N device=0 mac=aa:bb:cc:dd:ee:ff)
xe vif-list vm-uuid=$V
xe vif-param-list uuid=$I
xe vif-list MAC=AA:BB:CC:DD:EE:FF params=device,MAC
xe vif-create vm-uuid=$V network-uuid=$N device=0
N2=$(xe network-create name-label=other)
xe vif-move uuid=$I network-uuid=$N2
xe vif-list uuid=$I params=network-name-label
xe vif-move uuid=$I network-uuid=$N
xe network-destroy uuid=$N2
xe network-destroy uuid=$N
xe vif-destroy uuid=$I
xe network-destroy uuid=$N
xe network-list uuid=$N
xe vm-memory-set vm=dev memory=512MiB
xe vm-list params=memory-static-max,memory-dynamic-max uuid=$V
xe vm-memory-set vm=dev memory=lots
xe vm-param-set uuid=$V VCPUs-max=2
xe vm-vcpu-hotplug vm=dev new-vcpus=2
xe vm-start vm=dev
xe vm-vcpu-hotplug vm=dev new-vcpus=2
xe vm-list params=VCPUs-number,VCPUs-max uuid=$V
xe vm-vcpu-hotplug vm=dev new-vcpus=3
xe vm-vcpu-hotplug vm=dev new-vcpus=two
xe vm-list params=VCPUs-number,VCPUs-max uuid=$V
xe vm-shutdown vm=dev --force
