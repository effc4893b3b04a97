# CD commands without an ISO SR (test_sr_iso.c inserts and ejects from one).
V=$(xe vm-install template="Other install media" new-name-label=cd)
xe cd-list
xe vm-cd-eject vm=cd
xe vm-cd-insert vm=cd cd-name=nothing.iso
xe vm-cd-insert vm=cd
CD=$(xe vbd-create vm-uuid=$V device=3 type=CD mode=ro)
xe vm-cd-insert vm=cd cd-name=nothing.iso
xe vm-cd-eject vm=cd
xe vm-cd-eject vm=nobody
xe help vm-cd-insert
