# Hot-plugged VBDs and VIFs unplugged plainly and with force; vm-reboot and
# vm-shutdown with and without force, and a force that is not a bool.
V=$(xe vm-install template="Other install media" new-name-label=hot)
SR=$(xe sr-list name-label="Local storage" --minimal)
D=$(xe vdi-create sr-uuid=$SR name-label=data virtual-size=64MiB)
N=$(xe network-create name-label=hotnet)
xe vm-start vm=hot
B=$(xe vbd-create vm-uuid=$V vdi-uuid=$D device=1)
xe vbd-plug uuid=$B
xe vbd-list uuid=$B params=currently-attached
xe vbd-unplug uuid=$B
xe vbd-list uuid=$B params=currently-attached
xe vbd-plug uuid=$B
xe vbd-unplug uuid=$B --force
xe vbd-list uuid=$B params=currently-attached
xe vbd-unplug uuid=$B
xe vbd-unplug uuid=$B force=maybe
I=$(xe vif-create vm-uuid=$V network-uuid=$N device=1)
xe vif-plug uuid=$I
xe vif-list uuid=$I params=currently-attached
xe vif-unplug uuid=$I
xe vif-plug uuid=$I
xe vif-unplug uuid=$I force=true
xe vif-list uuid=$I params=currently-attached
xe vif-unplug uuid=$I force=maybe
xe vm-reboot vm=hot force=maybe
xe vm-shutdown vm=hot force=maybe
xe vm-reboot vm=hot --force
xe vm-reboot vm=hot
xe vm-list uuid=$V params=power-state
xe vm-shutdown vm=hot
xe vm-list uuid=$V params=power-state
xe vm-start vm=hot
xe vm-shutdown vm=hot --force
xe vm-list uuid=$V params=power-state
