# Usage, help, command-line errors and the lists of a fresh host.
xe
xe -version
xe help
xe help --all
xe help vm-start
xe help vm-list host-list no-such-command
xe help --minimal
xe no-such-command
xe vm-list=foo
xe vm-list -z
xe vm-param-get uuid=00000000-0000-0000-0000-000000000000
xe vm-install
xe -p 99999 vm-list
xe host-list
xe host-list --minimal
xe pool-list
xe sr-list
xe sr-list params=uuid,name-label,type
xe network-list
xe template-list
xe template-list --minimal
xe vm-list
xe vm-list is-control-domain=true params=name-label,power-state,is-control-domain
xe snapshot-list
xe task-list
xe pbd-list params=sr-name-label,currently-attached
xe host-cpu-list --minimal
xe vdi-list
xe vbd-list
xe vif-list
xe console-list
