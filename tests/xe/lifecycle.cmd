# Power-state changes, selectors, --multiple, wrong power states.
A=$(xe vm-install template="Other install media" new-name-label=alpha)
B=$(xe vm-install template="Other install media" new-name-label=beta)
xe vm-start vm=alpha
xe vm-list params=name-label,power-state,dom-id,resident-on name-label=alpha
xe vm-start vm=alpha
xe vm-start uuid=$A
xe vm-unpause vm=alpha
xe vm-resume vm=alpha
xe vm-pause vm=alpha
xe vm-param-get uuid=$A param-name=power-state
xe vm-pause vm=alpha
xe vm-unpause vm=alpha
xe vm-suspend vm=alpha
xe vm-param-get uuid=$A param-name=power-state
xe vm-suspend vm=alpha
xe vm-resume vm=alpha
xe vm-reboot vm=alpha
xe vm-reboot vm=alpha --force
xe vm-shutdown vm=alpha
xe vm-param-get uuid=$A param-name=power-state
xe vm-shutdown vm=alpha
xe vm-start vm=alpha paused=true
xe vm-param-get uuid=$A param-name=power-state
xe vm-shutdown vm=alpha --force
xe vm-reboot vm=alpha
xe vm-start
xe vm-start power-state=halted
xe vm-start power-state=halted --multiple
xe vm-list params=name-label,power-state is-control-domain=false
xe vm-shutdown --multiple
xe vm-shutdown --multiple
xe vm-start vm=nobody
xe vm-start name-label=nobody
xe vm-start vm=beta no-such-field=1
xe vm-start vm=beta on=no-such-host
xe vm-start vm=beta --multiple=maybe
xe vm-reset-powerstate vm=beta
xe vm-start vm=$B
xe vm-shutdown vm=beta --force
xe vm-start vm=beta --minimal
xe vm-shutdown uuid=$B
