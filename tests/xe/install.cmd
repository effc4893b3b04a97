# vm-install from each template; lists with params=, --minimal, filters.
xe vm-install template="Debian Bookworm 12" new-name-label=debian
xe vm-install template="Ubuntu Noble Numbat 24.04" new-name-label=ubuntu
xe vm-install template="Rocky Linux 9" new-name-label=rocky
xe vm-install template="Windows Server 2022 (64-bit)" new-name-label=windows
xe vm-install template="Other install media" new-name-label=other
SR=$(xe sr-list name-label="Local storage" --minimal)
TPL=$(xe template-list name-label="Debian Bookworm 12" --minimal)
xe vm-install template=$TPL new-name-label=by-uuid sr-uuid=$SR
xe vm-install template="Debian Bookworm 12" new-name-label=by-sr-name sr-name-label="Local storage"
xe vm-install template="No such template" new-name-label=x
xe vm-install template-uuid=00000000-0000-0000-0000-000000000000 new-name-label=x
xe vm-install new-name-label=x
xe vm-install template=debian new-name-label=x
xe vm-install template="Debian Bookworm 12" new-name-label=x sr-name-label="No such SR"
xe vm-list
xe vm-list params=all name-label=debian
xe vm-list --minimal
xe vm-list params=name-label,uuid --minimal
xe vm-list params=name-label power-state=halted
xe vm-list params=name-label,memory-static-max name-label=ubuntu
xe vm-list params=name-label platform:viridian=false
xe vm-list params=name-label other-config:linux_template=true
xe vm-list params=name-label platform-viridian=false is-a-template=false
xe vm-list params=name-label allowed-operations:contains=start name-label=rocky
xe vm-list params=name-label tags:contains=nothing
xe vm-list params=name-label,os-version,VCPUs-number,memory-actual name-label=other
xe vm-list params= name-label=other
xe vm-list --all params=name-label name-label=nobody
xe vm-list no-such-field=1
xe vm-list name-label:x=1
xe vm-list allowed-operations:has=start
xe template-list params=name-label,is-a-template,is-default-template
xe vdi-list params=name-label,virtual-size,type,sr-name-label
xe vbd-list params=vm-name-label,vdi-name-label,userdevice,bootable,mode,type,empty
xe sr-list name-label="Local storage" params=name-label,host,VDIs
