# Host commands with <host-selectors>, memory queries, messages, secrets,
# event-wait's conditions and the commands libxcp does not support.
H=$(xe host-list --minimal)
xe host-disable
xe host-list params=enabled
xe host-disable host=$H auto-enable=maybe
xe host-disable host=nobody
xe host-disable uuid=$H auto-enable=false
xe host-enable host=$H
xe host-list params=enabled
xe host-disable enabled=false
xe host-compute-free-memory
xe host-compute-memory-overhead uuid=$H
xe host-get-vms-which-prevent-evacuation uuid=$H
xe host-get-vms-which-prevent-evacuation
xe host-set-hostname-live host-uuid=$H host-name=renamed
xe host-list params=hostname
xe host-cpu-info uuid=$H --minimal
xe host-forget uuid=00000000-0000-0000-0000-000000000000
echo no | xe host-forget uuid=$H
xe help host-disable
V=$(xe vm-install template="Other install media" new-name-label=ev)
D=$(xe vm-disk-add vm=ev disk-size=1GiB device=0)
xe diagnostic-vdi-status uuid=$(xe vbd-list vm-uuid=$V params=vdi-uuid --minimal)
xe message-create name=HELLO priority=2 body=hi vm-uuid=$V
xe message-create name=HELLO priority=high body=hi vm-uuid=$V
xe message-create name=HELLO priority=2 body=hi
M=$(xe message-list name=HELLO --minimal)
xe message-list uuid=$M params=name,priority,body
xe message-destroy
xe message-destroy uuid=$M uuids=$M
xe message-destroy uuids=$M
xe message-list --minimal
S=$(xe secret-create value=s3cret other-config:purpose=test)
xe secret-list uuid=$S params=value,other-config
xe secret-destroy uuid=$S
xe secret-destroy uuid=$S
xe event-wait class=vm uuid=$V name-label=ev
xe event-wait class=vm uuid=$V power-state=/=running
xe event-wait class=vm no-such-field=1
xe event-wait class=vmss
xe event-wait
xe user-password-change new=x
xe pool-join master-address=127.0.0.1:1 master-username=root master-password=p
xe vlan-create pif-uuid=x vlan=5 network-uuid=y
xe appliance-create name-label=app
xe help pool-join
xe session-subject-identifier-list
xe template-export template-uuid=$V filename=t.xva
xe snapshot-export-to-template snapshot-uuid=$V filename=s.xva
T=$(xe template-list name-label="Other install media" --minimal)
xe template-export template-uuid=$T filename=t.xva
test -s t.xva && echo exported
