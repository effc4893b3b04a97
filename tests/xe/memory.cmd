# The XAPI way to set up PV direct boot and memory (issue 9): clearing
# HVM-boot-policy makes the VM PV, domain-type sets HVM-boot-policy back;
# vm-memory-limits-set, -static-range-set, -dynamic-range-set,
# -target-set with size suffixes and XAPI's errors, halted and running.
V=$(xe vm-install template="Other install media" new-name-label=pv)
xe vm-list uuid=$V params=domain-type,HVM-boot-policy
xe vm-param-set uuid=$V HVM-boot-policy=
xe vm-list uuid=$V params=domain-type,HVM-boot-policy
xe vm-param-set uuid=$V domain-type=hvm
xe vm-list uuid=$V params=domain-type,HVM-boot-policy
xe vm-param-set uuid=$V domain-type=unspecified
xe vm-param-set uuid=$V HVM-boot-policy= PV-bootloader=pygrub
xe vm-memory-limits-set vm=pv static-min=128MiB static-max=1GiB dynamic-min=256MiB dynamic-max=512MiB
xe vm-list uuid=$V params=memory-static-min,memory-dynamic-min,memory-dynamic-max,memory-static-max
xe vm-memory-limits-set vm=pv static-min=1GiB static-max=512MiB dynamic-min=512MiB dynamic-max=512MiB
xe vm-memory-limits-set vm=pv static-min=lots static-max=1GiB dynamic-min=256MiB dynamic-max=512MiB
xe vm-memory-limits-set vm=pv static-min=128MiB static-max=1GiB
xe vm-memory-static-range-set vm=pv min=64MiB max=768MiB
xe vm-memory-static-range-set vm=pv min=384MiB max=768MiB
xe vm-memory-dynamic-range-set vm=pv min=300MiB max=600MiB
xe vm-memory-dynamic-range-set vm=pv min=300MiB max=2GiB
xe vm-memory-target-set vm=pv target=400MiB
xe vm-list uuid=$V params=memory-static-min,memory-dynamic-min,memory-dynamic-max,memory-static-max
xe vm-compute-memory-overhead vm=pv
xe vm-start vm=pv
xe vm-list uuid=$V params=power-state,domain-type,current-domain-type,memory-actual
xe vm-memory-static-range-set vm=pv min=64MiB max=1GiB
xe vm-memory-limits-set vm=pv static-min=64MiB static-max=1GiB dynamic-min=256MiB dynamic-max=512MiB
xe vm-memory-dynamic-range-set vm=pv min=256MiB max=512MiB
xe vm-list uuid=$V params=memory-dynamic-min,memory-dynamic-max,memory-actual
xe vm-memory-target-set vm=pv target=300MiB
xe vm-list uuid=$V params=memory-dynamic-min,memory-dynamic-max,memory-actual
xe vm-memory-balloon vm=pv target=320MiB
xe vm-list uuid=$V params=memory-actual
xe vm-shutdown vm=pv --force
xe vm-list uuid=$V params=power-state,current-domain-type,memory-actual
