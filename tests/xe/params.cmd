# <class>-param-list/-get/-set/-add/-remove/-clear.
V=$(xe vm-install template="Other install media" new-name-label=p1)
xe vm-param-list uuid=$V
xe vm-param-get uuid=$V param-name=name-label
xe vm-param-get uuid=$V param-name=platform
xe vm-param-get uuid=$V param-name=platform param-key=acpi
xe vm-param-get uuid=$V param-name=platform param-key=nope
xe vm-param-get uuid=$V param-name=name-label param-key=nope
xe vm-param-get uuid=$V param-name=no-such-field
xe vm-param-get uuid=$V param-name=memory-target
xe vm-param-get uuid=$V param-name=allowed-VBD-devices
xe vm-param-set uuid=$V name-label=renamed name-description="a VM"
xe vm-param-get uuid=$V param-name=name-label
xe vm-param-set uuid=$V other-config:foo=bar platform:viridian=true
xe vm-param-set uuid=$V other-config:foo=baz
xe vm-param-get uuid=$V param-name=other-config param-key=foo
xe vm-param-set uuid=$V other-config-legacy=old
xe vm-param-get uuid=$V param-name=other-config param-key=legacy
xe vm-param-set uuid=$V VCPUs-max=4 VCPUs-at-startup=2
xe vm-param-set uuid=$V memory-static-max=2GiB memory-dynamic-max=1GiB memory-dynamic-min=512MiB
xe vm-list params=VCPUs-max,VCPUs-at-startup,memory-static-max,memory-dynamic-max,memory-dynamic-min uuid=$V
xe vm-param-set uuid=$V VCPUs-max=lots
xe vm-param-set uuid=$V memory-static-max=2XB
xe vm-param-set uuid=$V power-state=running
xe vm-param-set uuid=$V platform=x
xe vm-param-set uuid=$V tags:x=1
xe vm-param-set uuid=$V no-such-field=1
xe vm-param-set uuid=$V os-version:x=1
xe vm-param-set uuid=$V actions-after-crash=restart
xe vm-param-set uuid=$V actions-after-crash=explode
xe vm-param-set uuid=$V HVM-shadow-multiplier=x
xe vm-param-set uuid=$V is-a-template=maybe
xe vm-param-set uuid=$V affinity=
xe vm-param-get uuid=$V param-name=affinity
xe vm-param-add uuid=$V param-name=tags param-key=web
xe vm-param-add uuid=$V param-name=tags param-key=prod
xe vm-param-add uuid=$V param-name=tags
xe vm-param-get uuid=$V param-name=tags
xe vm-list params=name-label tags:contains=prod
xe vm-param-remove uuid=$V param-name=tags param-key=web
xe vm-param-remove uuid=$V param-name=tags param-key=web
xe vm-param-add uuid=$V param-name=other-config k1=v1 k2=v2
xe vm-param-add uuid=$V param-name=other-config k1=again
xe vm-param-add uuid=$V param-name=VCPUs-params weight=256
xe vm-param-add uuid=$V param-name=VCPUs-params colour=blue
xe vm-param-add uuid=$V param-name=blocked-operations start=nope
xe vm-param-get uuid=$V param-name=blocked-operations
xe vm-start uuid=$V
xe vm-param-remove uuid=$V param-name=blocked-operations param-key=start
xe vm-param-add uuid=$V param-name=blocked-operations explode=x
xe vm-param-add uuid=$V param-name=allowed-operations param-key=x
xe vm-param-add uuid=$V param-name=name-label param-key=x
xe vm-param-remove uuid=$V param-name=other-config param-key=k2
xe vm-param-remove uuid=$V param-name=other-config param-key=k2
xe vm-param-remove uuid=$V param-name=allowed-operations param-key=start
xe vm-param-remove uuid=$V param-name=name-label param-key=x
xe vm-param-get uuid=$V param-name=other-config
xe vm-param-clear uuid=$V param-name=tags
xe vm-param-clear uuid=$V param-name=xenstore-data
xe vm-param-clear uuid=$V param-name=name-description
xe vm-param-clear uuid=$V param-name=VCPUs-max
xe vm-param-clear uuid=$V param-name=power-state
xe vm-param-get uuid=$V param-name=tags
xe vm-param-get uuid=$V param-name=name-description
xe vm-param-list uuid=00000000-0000-0000-0000-000000000000
xe vm-param-set uuid=$V
xe help vm-param-set
xe help vm-param-clear
H=$(xe host-list --minimal)
xe host-param-get uuid=$H param-name=enabled
xe host-param-set uuid=$H name-description="the host"
xe host-list params=name-description
P=$(xe pool-list --minimal)
xe pool-param-set uuid=$P name-label=lab
xe pool-param-get uuid=$P param-name=default-SR
xe pool-list
xe sr-list uuid=$(xe pool-param-get uuid=$P param-name=default-SR) params=name-label,host,allowed-operations,PBDs,type,content-type,shared,other-config
