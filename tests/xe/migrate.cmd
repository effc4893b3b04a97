# vm-migrate within the pool: to the VM's own host, XAPI's localhost
# migration (VM.pool_migrate): the VM runs on as a new domain.
V=$(xe vm-install template="Debian Bookworm 12" new-name-label=mig)
H=$(xe host-list --minimal)
xe vm-migrate vm=mig host-uuid=$H
xe vm-start vm=mig
xe vm-list uuid=$V params=power-state,dom-id
xe vm-migrate vm=mig
xe vm-migrate vm=mig host=nowhere
xe vm-migrate vm=mig host-uuid=$H remote-master=10.0.0.1
xe vm-migrate vm=mig host-uuid=$H --live
xe vm-list uuid=$V params=power-state,dom-id
xe vm-migrate vm=mig host-uuid=$H live=true
xe vm-list uuid=$V params=power-state,dom-id
xe vm-shutdown vm=mig
xe vm-list uuid=$V params=power-state,dom-id
