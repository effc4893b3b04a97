# Image format per SR and VDI (sm-config:image-format=vhd|qcow2, qcow2 by
# default), shown in sm-config; VDI.copy gives the destination SR's format.
SR=$(xe sr-create name-label=vhds type=file sm-config:image-format=vhd)
xe sr-param-get uuid=$SR param-name=sm-config
V=$(xe vdi-create sr-uuid=$SR name-label=d1 virtual-size=64MiB)
xe vdi-param-get uuid=$V param-name=sm-config param-key=image-format
Q=$(xe vdi-create sr-uuid=$SR name-label=d2 virtual-size=64MiB sm-config:image-format=qcow2)
xe vdi-param-get uuid=$Q param-name=sm-config param-key=image-format
QS=$(xe sr-create name-label=qcows type=file)
C=$(xe vdi-copy uuid=$V sr-uuid=$QS)
xe vdi-param-list uuid=$C
B=$(xe vdi-copy uuid=$C sr-uuid=$SR)
xe vdi-param-get uuid=$B param-name=sm-config
xe vdi-create sr-uuid=$SR name-label=bad virtual-size=1MiB sm-config:image-format=vmdk
xe vdi-create sr-uuid=$SR name-label=big virtual-size=2041GiB
xe vdi-resize uuid=$V disk-size=2041GiB
xe sr-create name-label=bad type=file sm-config:image-format=vdi
