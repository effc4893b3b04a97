/*
 * xe: the command table and "xe help". The static commands carry XAPI's
 * required/optional parameters, flags and help texts (cli_frontend.ml
 * cmdtable_data, transcribed); the per-class commands (<class>-list,
 * <class>-param-*) are generated from the field tables exactly as
 * cli_operations.ml make_param_funs derives them.
 */
#include "fields.h"
#include "cmds.h"

#include <stdlib.h>
#include <string.h>

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define L0 ((const char *const[]){NULL})

/* Sorted by name. */
static const xe_cmd static_cmds[] = {
    {"cd-list", L0,
     L("params"),
     "List the CDs available to be attached to VMs.",
     XE_CF_STANDARD, xe_cd_list},
    {"console", L0, L0, "Attach to a particular console.", XE_CF_VMSEL,
     xe_console},
    {"network-create", L("name-label"),
     L("name-description", "MTU", "bridge", "managed"),
     "Create a new network.",
     0, xe_network_create},
    {"network-destroy", L("uuid"),
     L0,
     "Delete an existing network.",
     0, xe_network_destroy},
    {"pbd-create", L("host-uuid", "sr-uuid"),
     L("device-config:"),
     "Create a PBD. The read-only device-config parameter can only be set on "
     "creation in the following manner. To add a mapping of 'path' -> '/tmp', "
     "the command line should contain the argument device-config:path=/tmp",
     0, xe_pbd_create},
    {"pbd-destroy", L("uuid"),
     L0,
     "Destroy the PBD.",
     0, xe_pbd_destroy},
    {"pbd-plug", L("uuid"),
     L0,
     "Attempt to plug in the PBD to the host. If this succeeds then the "
     "referenced SR (and the VDIs contained within) should be visible to the "
     "host.",
     0, xe_pbd_plug},
    {"pbd-unplug", L("uuid"),
     L0,
     "Attempt to unplug the PBD from the host. If this succeeds then the "
     "referenced SR (and the VDIs contained within) should not be visible to "
     "the host.",
     0, xe_pbd_unplug},
    {"snapshot-clone", L("new-name-label"),
     L("uuid", "new-name-description"),
     "Create a new template by cloning an existing snapshot, using "
     "storage-level fast disk clone operation where available.",
     XE_CF_STANDARD, xe_snapshot_clone},
    {"snapshot-copy", L("new-name-label"),
     L("uuid", "new-name-description", "sr-uuid"),
     "Create a new template by copying an existing VM, but without using "
     "storage-level fast disk clone operation (even if this is available). "
     "The disk images of the copied VM are guaranteed to be 'full images' - "
     "i.e. not part of a CoW chain.",
     XE_CF_STANDARD, xe_snapshot_copy},
    {"snapshot-destroy", L0,
     L("uuid", "snapshot-uuid"),
     "Destroy a snapshot. This leaves the storage associated with the "
     "snapshot intact. To delete storage too, use snapshot-uninstall.",
     0, xe_snapshot_destroy},
    {"snapshot-revert", L0,
     L("uuid", "snapshot-uuid"),
     "Revert an existing VM to a previous checkpointed or snapshotted state.",
     XE_CF_STANDARD, xe_snapshot_revert},
    {"snapshot-uninstall", L0,
     L("uuid", "snapshot-uuid", "force"),
     "Uninstall a snapshot. This operation will destroy those VDIs that are "
     "marked RW and connected to this snapshot only. To simply destroy the "
     "VM record, use snapshot-destroy.",
     XE_CF_STANDARD, xe_snapshot_uninstall},
    {"sr-create", L("name-label", "type"),
     L("host-uuid", "device-config:", "shared", "physical-size",
       "content-type", "sm-config:", "name-description"),
     "Create an SR, also a PBD. The device-config parameters can be "
     "specified by e.g. device-config:foo=baa.",
     0, xe_sr_create},
    {"sr-destroy", L("uuid"),
     L0,
     "Destroy the SR.",
     0, xe_sr_destroy},
    {"sr-forget", L("uuid"),
     L0,
     "Forget about the SR.",
     0, xe_sr_forget},
    {"sr-introduce", L("name-label", "type", "uuid"),
     L("shared", "name-description", "content-type"),
     "Introduces an SR (but does not create any PBDs).",
     0, xe_sr_introduce},
    {"sr-probe", L("type"),
     L("host-uuid", "device-config:", "sm-config:"),
     "Perform a storage probe.  The device-config parameters can be "
     "specified by e.g. device-config:devs=/dev/sdb1. Type-specific "
     "information will be returned as XML.",
     0, xe_sr_probe},
    {"sr-scan", L("uuid"),
     L0,
     "Force an SR scan, syncing database with VDIs present in underlying "
     "storage substrate.",
     0, xe_sr_scan},
    {"sr-update", L("uuid"),
     L0,
     "Refresh the fields of the SR object in the database.",
     0, xe_sr_update},
    {"task-cancel", L("uuid"),
     L0,
     "Set a task to cancelling and return.",
     0, xe_task_cancel},
    {"template-uninstall", L("template-uuid"),
     L("force"),
     "Uninstall a custom template. This operation will destroy those VDIs "
     "that are marked as 'owned' by this template",
     XE_CF_STANDARD, xe_template_uninstall},
    {"vbd-create", L("vm-uuid", "device"),
     L("vdi-uuid", "bootable", "type", "mode", "unpluggable"),
     "Create a VBD. Appropriate values for the device field are listed in "
     "the parameter 'allowed-VBD-devices' on the VM. If no VDI is specified, "
     "an empty VBD will be created. The type parameter can be 'Disk', 'CD' "
     "or 'Floppy', and the mode is 'RO' or 'RW'.",
     0, xe_vbd_create},
    {"vbd-destroy", L("uuid"),
     L0,
     "Destroy a VBD.",
     0, xe_vbd_destroy},
    {"vbd-eject", L("uuid"),
     L0,
     "Remove the media from the drive represented by a VBD.",
     0, xe_vbd_eject},
    {"vbd-insert", L("uuid", "vdi-uuid"),
     L0,
     "Insert new media into the drive represented by a VBD.",
     0, xe_vbd_insert},
    {"vbd-plug", L("uuid"),
     L0,
     "Attempt to attach the VBD while the VM is in the running state.",
     0, xe_vbd_plug},
    {"vbd-unplug", L("uuid"),
     L("timeout", "force"),
     "Attempt to detach the VBD while the VM is in the running state. If the "
     "optional argument 'timeout=N' is given then the command will wait for "
     "up to 'N' seconds for the unplug to complete. If the optional argument "
     "'force' is given then it will be immediately unplugged.",
     0, xe_vbd_unplug},
    {"vdi-clone", L("uuid"),
     L("driver-params-", "new-name-label", "new-name-description"),
     "Clone a specified VDI.",
     0, xe_vdi_clone},
    {"vdi-copy", L("uuid"),
     L("sr-uuid", "base-vdi-uuid", "into-vdi-uuid"),
     "Copy either a full VDI or the block differences between two VDIs "
     "either into a fresh VDI in a specified SR or into an existing VDI.",
     0, xe_vdi_copy},
    {"vdi-create", L("sr-uuid", "name-label", "virtual-size"),
     L("sm-config:", "sharable", "tags:", "type"),
     "Create a VDI. Type is 'system' 'user' 'suspend' or 'crashdump'.",
     0, xe_vdi_create},
    {"vdi-data-destroy", L("uuid"),
     L0,
     "Destroy the data of the VDI, but keep the changed block tracking "
     "metadata.",
     0, xe_vdi_data_destroy},
    {"vdi-destroy", L("uuid"),
     L0,
     "Destroy a VDI.",
     0, xe_vdi_destroy},
    {"vdi-disable-cbt", L("uuid"),
     L0,
     "Disable changed block tracking on the VDI.",
     0, xe_vdi_disable_cbt},
    {"vdi-enable-cbt", L("uuid"),
     L0,
     "Enable changed block tracking on the VDI.",
     0, xe_vdi_enable_cbt},
    {"vdi-export", L("uuid", "filename"),
     L("format", "base", "progress"),
     "Export a VDI: format=raw (the default) or vhd. A progress bar is "
     "shown when standard error is a terminal.",
     0, xe_vdi_export},
    {"vdi-forget", L("uuid"),
     L0,
     "Forget about a VDI.",
     0, xe_vdi_forget},
    {"vdi-import", L("uuid", "filename"),
     L("format", "progress"),
     "Import a raw or VHD image (format=raw, the default, or vhd) into an "
     "existing VDI. A progress bar is shown when standard error is a "
     "terminal.",
     0, xe_vdi_import},
    {"vdi-introduce", L("uuid", "sr-uuid", "type", "location"),
     L("name-description", "sharable", "read-only", "other-config:",
       "xenstore-data:", "sm-config:", "name-label", "managed"),
     "Create a VDI object representing an existing disk.",
     0, xe_vdi_introduce},
    {"vdi-list-changed-blocks", L("vdi-from-uuid", "vdi-to-uuid"),
     L0,
     "Write the changed blocks between the two given VDIs to the standard "
     "output as a base64-encoded bitmap string.",
     0, xe_vdi_list_changed_blocks},
    {"vdi-resize", L("uuid", "disk-size"),
     L("online"),
     "Resize a VDI.",
     0, xe_vdi_resize},
    {"vdi-snapshot", L("uuid"),
     L("driver-params-"),
     "Snapshot a VDI, creating a new VDI.",
     0, xe_vdi_snapshot},
    {"vdi-update", L("uuid"),
     L0,
     "Refresh the fields of the VDI object in the database.",
     0, xe_vdi_update},
    {"vif-create", L("device", "network-uuid", "vm-uuid"),
     L("mac"),
     "Create a VIF. Appropriate values for the device are listed in the "
     "parameter 'allowed-VIF-devices' on the VM. If specified, the MAC "
     "parameter is of the form aa:bb:cc:dd:ee:ff. If MAC is not specified "
     "the server will choose an appropriate MAC automatically.",
     0, xe_vif_create},
    {"vif-destroy", L("uuid"),
     L0,
     "Destroy a VIF.",
     0, xe_vif_destroy},
    {"vif-move", L("uuid", "network-uuid"),
     L0,
     "Move the VIF to another network.",
     0, xe_vif_move},
    {"vif-plug", L("uuid"),
     L0,
     "Attempt to attach the VIF while the VM is in the running state.",
     0, xe_vif_plug},
    {"vif-unplug", L("uuid"),
     L("force"),
     "Attempt to detach the VIF while the VM is in the running state.",
     0, xe_vif_unplug},
    {"vm-cd-eject", L0,
     L0,
     "Eject a CD from the virtual CD drive. This command will only work if "
     "there is one and only one CD attached to the VM. When there are two or "
     "more CDs, please use the command 'vbd-eject' and specify the uuid of "
     "the VBD.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_cd_eject},
    {"vm-cd-insert", L("cd-name"),
     L0,
     "Insert a CD into the virtual CD drive. This command will only work if "
     "there is one and only one empty CD device attached to the VM. When "
     "there are two or more empty CD devices, please use the command "
     "'vbd-insert' and specify the uuids of the VBD and of the VDI to "
     "insert.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_cd_insert},
    {"vm-checkpoint", L("new-name-label"),
     L("new-name-description"),
     "Checkpoint an existing VM, using storage-level fast disk snapshot "
     "operation where available.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_checkpoint},
    {"vm-clone", L("new-name-label"),
     L("new-name-description"),
     "Clone an existing VM, using storage-level fast disk clone operation "
     "where available.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_clone},
    {"vm-compute-memory-overhead", L0,
     L0,
     "Computes the virtualization memory overhead of a VM.",
     XE_CF_VMSEL, xe_vm_compute_memory_overhead},
    {"vm-copy", L("new-name-label"),
     L("new-name-description", "sr-uuid"),
     "Copy an existing VM, but without using storage-level fast disk clone "
     "operation (even if this is available). The disk images of the copied "
     "VM are guaranteed to be 'full images' - i.e. not part of a CoW chain.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_copy},
    {"vm-create", L("name-label"),
     L("name-description"),
     "Create a new VM with default parameters.",
     XE_CF_HIDDEN, xe_vm_create},
    {"vm-data-source-forget", L("data-source"),
     L0,
     "Stop recording the specified data source for a VM, and forget all "
     "of the recorded data.",
     XE_CF_VMSEL, xe_vm_data_source_forget},
    {"vm-data-source-list", L0,
     L0,
     "List the data sources that can be recorded for a VM.",
     XE_CF_VMSEL, xe_vm_data_source_list},
    {"vm-data-source-query", L("data-source"),
     L0,
     "Query the last value read from a VM data source.",
     XE_CF_VMSEL, xe_vm_data_source_query},
    {"vm-data-source-record", L("data-source"),
     L0,
     "Record the specified data source for a VM.",
     XE_CF_VMSEL, xe_vm_data_source_record},
    {"vm-destroy", L("uuid"),
     L0,
     "Destroy a VM. This leaves the storage associated with the VM intact. "
     "To delete storage too, use vm-uninstall.",
     0, xe_vm_destroy},
    {"vm-export", L("filename"),
     L("preserve-power-state", "compress", "metadata", "include-snapshots",
       "excluded-device-types", "progress"),
     "Export a VM to a file (XVA): compress=true|gzip|zstd, metadata=true "
     "for its metadata only, preserve-power-state=true to keep a suspended "
     "VM suspended.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_export},
    {"vm-import", L0,
     L("filename", "preserve", "sr-uuid", "force", "metadata", "progress"),
     "Import a VM from an XVA file (plain, gzip or zstd) into sr-uuid (the "
     "pool's default SR when not given); preserve=true keeps its uuid.",
     XE_CF_STANDARD, xe_vm_import},
    {"vm-install", L("new-name-label"),
     L("sr-name-label", "sr-uuid", "template", "copy-bios-strings-from"),
     "Install a new VM from a template. The template parameter can match "
     "either the template name or the uuid.",
     XE_CF_STANDARD, xe_vm_install},
    {"vm-memory-balloon", L("target"),
     L0,
     "Set the memory target for a running VM. The given value must be "
     "within the range defined by the VM's memory_dynamic_min and "
     "memory_dynamic_max values.",
     XE_CF_VMSEL | XE_CF_HIDDEN, xe_vm_memory_target_set},
    {"vm-memory-dynamic-range-set", L("min", "max"),
     L0,
     "Configure the dynamic memory range of a VM. The dynamic memory range "
     "defines soft lower and upper limits for a VM's memory. It's possible "
     "to change these fields when a VM is running or halted. The dynamic "
     "range must fit within the static range.",
     XE_CF_VMSEL, xe_vm_memory_dynamic_range_set},
    {"vm-memory-limits-set",
     L("static-min", "static-max", "dynamic-min", "dynamic-max"),
     L0,
     "Configure the memory limits of a VM.",
     XE_CF_VMSEL, xe_vm_memory_limits_set},
    {"vm-memory-set", L("memory"),
     L0,
     "Configure the memory allocation of a VM.",
     XE_CF_VMSEL, xe_vm_memory_set},
    {"vm-memory-static-range-set", L("min", "max"),
     L0,
     "Configure the static memory range of a VM. The static memory range "
     "defines hard lower and upper limits for a VM's memory. It's possible "
     "to change these fields only when a VM is halted. The static range "
     "must encompass the dynamic range.",
     XE_CF_VMSEL, xe_vm_memory_static_range_set},
    {"vm-memory-target-set", L("target"),
     L0,
     "Set the memory target for a halted or running VM. The given value "
     "must be within the range defined by the VM's memory_static_min and "
     "memory_static_max values.",
     XE_CF_VMSEL, xe_vm_memory_target_set},
    {"vm-migrate", L0,
     L("live", "host", "host-uuid", "remote-master", "remote-username",
       "remote-password", "remote-network", "force", "copy", "compress",
       "vif:", "vdi:", "image-format:"),
     "Migrate the selected VM(s). The parameter '--live' will migrate the VM "
     "without shutting it down. The 'host' parameter matches can be either "
     "the name or the uuid of the host. If you are migrating a VM to a "
     "remote pool, you will need to specify the remote-master, "
     "remote-username, and remote-password parameters. remote-master is the "
     "network address of the master host. To migrate to a particular host "
     "within a remote pool, you may additionally specify the host or "
     "host-uuid parameters. Also for cross-pool migration, setting "
     "'copy=true' will enable the copy mode so that a stopped vm can be "
     "copied, instead of migrating, to the destination pool. The vif and vdi "
     "mapping parameters take the form 'vif:<source vif uuid>=<dest network "
     "uuid>' and 'vdi:<source vdi uuid>=<dest sr uuid>'. You can also "
     "specify the destination image format of the VDI using "
     "'image-format:<source vdi uuid>=<destination image format>'. "
     "Unfortunately, destination uuids cannot be tab-completed.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_migrate},
    {"vm-pause", L0,
     L0,
     "Pause a running VM. Note this operation does not free the associated "
     "memory (see 'vm-suspend').",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_pause},
    {"vm-reboot", L0,
     L("force"),
     "Reboot the selected VM(s).",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_reboot},
    {"vm-reset-powerstate", L0,
     L("force"),
     "Force the VM powerstate to halted in the management toolstack database "
     "only. This command is used to recover a VM that is marked as "
     "'running', but is known to be on a dead slave host that will not "
     "recover. This is a potentially dangerous operation: you must ensure "
     "that the VM you are forcing to 'halted' is definitely not running "
     "anywhere.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_reset_powerstate},
    {"vm-resume", L0,
     L("force", "on"),
     "Resume the selected VM(s).",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_resume},
    {"vm-shutdown", L0,
     L("force"),
     "Shutdown the selected VM(s). The optional argument --force will "
     "forcibly shut down the VM.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_shutdown},
    {"vm-snapshot", L("new-name-label"),
     L("new-name-description", "ignore-vdi-uuids"),
     "Snapshot an existing VM, using storage-level fast disk snapshot "
     "operation where available.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_snapshot},
    {"vm-start", L0,
     L("force", "on", "paused"),
     "Start the selected VM(s). Where pooling is enabled, the host on which "
     "to start can be specified with the 'on' parameter that takes a uuid. "
     "The optional parameter '--force' will bypass any "
     "hardware-compatibility warnings.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_start},
    {"vm-suspend", L0,
     L0,
     "Suspend the selected VM(s).",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_suspend},
    {"vm-uninstall", L0,
     L("force"),
     "Uninstall a VM. This operation will destroy those VDIs that are marked "
     "RW and connected to this VM only. To simply destroy the VM record, use "
     "vm-destroy.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_uninstall},
    {"vm-unpause", L0,
     L0,
     "Unpause a paused VM.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_unpause},
    {"vm-vcpu-hotplug", L("new-vcpus"),
     L0,
     "Dynamically adjust the number of VCPUs available to running VM.",
     XE_CF_VMSEL, xe_vm_vcpu_hotplug},
    /* XAPI's commands over calls libxcp implements (cmd_vmdisk.c,
     * cmd_host.c, cmd_misc.c), sorted by name among themselves. */
    {"diagnostic-vdi-status", L("uuid"),
     L0,
     "Query the locking and sharing status of a VDI.",
     0, xe_diagnostic_vdi_status},
    {"event-wait", L("class"),
     L0,
     "Wait for the event that satisfies the conditions given on the "
     "command line.",
     0, xe_event_wait},
    {"host-compute-free-memory", L0,
     L0,
     "Computes the amount of free memory on the host.",
     XE_CF_HOSTSEL, xe_host_compute_free_memory},
    {"host-compute-memory-overhead", L0,
     L0,
     "Computes the virtualization memory overhead of a host.",
     XE_CF_HOSTSEL, xe_host_compute_memory_overhead},
    {"host-cpu-info", L0,
     L("uuid"),
     "Lists information about the host's physical CPUs.",
     0, xe_host_cpu_info},
    {"host-data-source-forget", L("data-source"),
     L0,
     "Stop recording the specified data source for a Host, and forget "
     "all of the recorded data.",
     XE_CF_HOSTSEL, xe_host_data_source_forget},
    {"host-data-source-list", L0,
     L0,
     "List the data sources that can be recorded for a Host.",
     XE_CF_HOSTSEL, xe_host_data_source_list},
    {"host-data-source-query", L("data-source"),
     L0,
     "Query the last value read from a Host data source.",
     XE_CF_HOSTSEL, xe_host_data_source_query},
    {"host-data-source-record", L("data-source"),
     L0,
     "Record the specified data source for a Host.",
     XE_CF_HOSTSEL, xe_host_data_source_record},
    {"host-disable", L0,
     L("auto-enable"),
     "Disable the XE host. Setting auto-enable=false will keep the host"
     " persistently disabled until manually re-enabled with "
     "Host.enable.",
     XE_CF_HOSTSEL, xe_host_disable},
    {"host-enable", L0,
     L0,
     "Enable the XE host.",
     XE_CF_HOSTSEL, xe_host_enable},
    {"host-evacuate", L0,
     L("network-uuid", "batch-size"),
     "Migrate all VMs off a host.",
     XE_CF_HOSTSEL, xe_host_evacuate},
    {"host-forget", L("uuid"),
     L0,
     "Forget about the host without contacting it explicitly. WARNING: "
     "this call is useful if the host to 'forget' is dead; however, if "
     "the host is live and part of the pool, you should consider using "
     "pool-eject instead.",
     0, xe_host_forget},
    {"host-get-vms-which-prevent-evacuation", L("uuid"),
     L0,
     "Return a list of VMs which prevent the evacuation of a specific "
     "host and display reasons for each one.",
     0, xe_host_get_vms_which_prevent_evacuation},
    {"host-reboot", L0,
     L0,
     "Reboot the XE host.",
     XE_CF_HOSTSEL, xe_host_reboot},
    {"host-set-hostname-live", L("host-uuid", "host-name"),
     L0,
     "Sets the host name to the specified string.  Both the API and "
     "lower-level system hostname are changed.",
     XE_CF_HOSTSEL, xe_host_set_hostname_live},
    {"host-shutdown", L0,
     L0,
     "Shutdown the XE host.",
     XE_CF_HOSTSEL, xe_host_shutdown},
    {"message-create", L("name", "priority", "body"),
     L("vm-uuid", "host-uuid", "sr-uuid", "pool-uuid"),
     "Create a message associated with a particular API object. Note "
     "exactly one of the optional parameters must be supplied.",
     0, xe_message_create},
    {"message-destroy", L0,
     L("uuid", "uuids"),
     "Destroy one existing message or many",
     0, xe_message_destroy},
    {"secret-create", L("value"),
     L0,
     "Create a secret",
     0, xe_secret_create},
    {"secret-destroy", L("uuid"),
     L0,
     "Destroy a secret",
     0, xe_secret_destroy},
    {"snapshot-disk-list", L0,
     L("uuid", "snapshot-uuid", "vbd-params", "vdi-params"),
     "List the disks on the selected VM(s).",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_snapshot_disk_list},
    {"snapshot-reset-powerstate", L0,
     L("uuid", "snapshot-uuid", "force"),
     "Force the VM powerstate to halted in the management toolstack "
     "database only. This command is used to recover a snapshot that is"
     " marked as 'suspended'. This is a potentially dangerous "
     "operation: you must ensure that you do not need the memory image "
     "anymore (ie. you will not be able to resume your snapshot "
     "anymore).",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_snapshot_reset_powerstate},
    {"user-password-change", L("new"),
     L("old"),
     "Change a user's login password.",
     0, xe_user_password_change},
    {"vm-cd-add", L("cd-name", "device"),
     L0,
     "Add a CD to the VM(s). The device field should be selected from "
     "the parameter 'allowed-VBD-devices' of the VM.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_cd_add},
    {"vm-cd-list", L0,
     L("vbd-params", "vdi-params"),
     "List the CDs currently attached to the VM(s).",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_cd_list},
    {"vm-cd-remove", L("cd-name"),
     L0,
     "Remove the selected CDs from the VM(s).",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_cd_remove},
    {"vm-copy-bios-strings", L("host-uuid"),
     L0,
     "Copy the BIOS strings of the given host to the VM.",
     XE_CF_VMSEL, xe_vm_copy_bios_strings},
    {"vm-disk-add", L("disk-size", "device"),
     L("sr-uuid"),
     "Add a new disk to the selected VM(s). The device field should be "
     "selected from the field 'allowed-VBD-devices' of the VM.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_disk_add},
    {"vm-disk-list", L0,
     L("vbd-params", "vdi-params"),
     "List the disks on the selected VM(s).",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_disk_list},
    {"vm-disk-remove", L("device"),
     L0,
     "Remove a disk from the selected VM and destroy it.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_disk_remove},
    {"vm-is-bios-customized", L0,
     L0,
     "Indicates whether the BIOS strings of the VM have been "
     "customized.",
     XE_CF_VMSEL, xe_vm_is_bios_customized},
    {"vm-snapshot-with-quiesce", L("new-name-label"),
     L("new-name-description"),
     "Support for VSS has been removed - calling this will throw an "
     "error. Snapshot an existing VM with quiesce, using storage-level "
     "fast disk snapshot operation where available.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_snapshot_with_quiesce},
    {"vm-vif-list", L0,
     L0,
     "List the VIFs present on selected VM.",
     XE_CF_STANDARD | XE_CF_VMSEL, xe_vm_vif_list},
    {"session-subject-identifier-list", L0,
     L0,
     "Return a list of all the user subject ids of all "
     "externally-authenticated existing sessions",
     0, xe_session_subject_identifier_list},
    {"snapshot-export-to-template", L("filename", "snapshot-uuid"),
     L("preserve-power-state", "compress", "metadata", "excluded-device-types"),
     "Export a snapshot to <filename>.",
     XE_CF_STANDARD, xe_snapshot_export_to_template},
    {"template-export", L("filename", "template-uuid"),
     L("compress", "metadata", "excluded-device-types"),
     "Export a template to <filename>.",
     XE_CF_STANDARD, xe_template_export},
    /* cmd_blob.c */
    {"blob-get", L("uuid", "filename"), L0,
     "Save the binary blob to the local filesystem",
     0, xe_blob_get},
    {"blob-put", L("uuid", "filename"), L0,
     "Upload a binary blob to the xapi server",
     0, xe_blob_put},
    {"host-backup", L("file-name"), L0,
     "Download a backup of the host's control domain.",
     XE_CF_HOSTSEL, xe_host_backup},
    {"host-restore", L("file-name"), L0,
     "Upload a backup of the host's control domain.",
     XE_CF_HOSTSEL, xe_host_restore},
    /* cmd_pool.c */
    {"pool-join", L("master-address", "master-username", "master-password"),
     L("force"),
     "Instruct host to join an existing pool.",
     0, xe_pool_join},
    {"pool-eject", L("host-uuid"),
     L0,
     "Instruct host to leave an existing pool.",
     0, xe_pool_eject},
    {"pool-designate-new-master", L("host-uuid"),
     L0,
     "Request an orderly handover of the role of master to another host.",
     0, xe_pool_designate_new_master},
    {"pool-emergency-reset-master", L("master-address"),
     L0,
     "Instruct slave to reset master address.",
     0, xe_pool_emergency_reset_master},
    {"pool-emergency-transition-to-master", L0,
     L("force"),
     "Instruct slave to become pool master. The operation will be ignored "
     "if this host is already master; the optional parameter '--force' "
     "will force the operation.",
     0, xe_pool_emergency_transition_to_master},
    {"pool-recover-slaves", L0,
     L0,
     "Instruct master to try and reset master-address of all slaves "
     "currently running in emergency mode.",
     0, xe_pool_recover_slaves},
    /* cmd_dbdump.c */
    {"pool-dump-database", L("file-name"),
     L0,
     "Download a dump of the pool database.",
     0, xe_pool_dump_database},
    {"pool-retrieve-wlb-diagnostics", L0,
     L("filename"),
     "",
     0, xe_pool_retrieve_wlb_diagnostics},
    {"pool-retrieve-wlb-report", L("report"),
     L("filename"),
     "",
     0, xe_pool_retrieve_wlb_report},
    /* cmd_admin.c */
    {"pool-sync-bundle", L0,
     L("filename"),
     "Upload and unpack a bundle file, after that, sync the bundle "
     "repository.",
     0, xe_pool_sync_bundle},
    {"diagnostic-license-status", L0,
     L0,
     "Help diagnose pool-wide licensing problems.",
     0, xe_diagnostic_license_status},
    {"host-all-editions", L0,
     L0,
     "Get a list of all available editions.",
     0, xe_host_all_editions},
    {"host-get-cpu-features", L0,
     L("uuid"),
     "Prints a hexadecimal representation of the host's physical-CPU\n           features for PV and HVM VMs. features_{hvm,pv} are \"maximum\"\n           featuresets the host will accept during migrations, and\n           features_{hvm,pv}_host will be used to start new VMs.",
     0, xe_host_get_cpu_features},
    {"host-license-view", L0,
     L("host-uuid"),
     "View the license parameters of the host.",
     0, xe_host_license_view},
    {"pool-disable-ssl-legacy", L0,
     L("uuid"),
     "Set ssl-legacy to False on each host.",
     0, xe_pool_disable_ssl_legacy},
    {"pool-get-cpu-features", L0,
     L0,
     "Prints a hexadecimal representation of the pool's physical-CPU\n           features for PV and HVM VMs. These are combinations of all the\n           hosts' policies and are used when starting new VMs in a pool.",
     0, xe_pool_get_cpu_features},
    {"pool-ha-compute-hypothetical-max-host-failures-to-tolerate", L0,
     L("vm-uuid", "restart-priority"),
     "Compute the maximum number of host failures to tolerate with the supplied, proposed protected VMs.",
     0, xe_pool_ha_compute_max_failures},
    {"vif-configure-ipv4", L("uuid", "mode"),
     L("address", "gateway"),
     "Configure IPv4 settings on a VIF.",
     0, xe_vif_configure_ipv4},
    {"vif-configure-ipv6", L("uuid", "mode"),
     L("address", "gateway"),
     "Configure IPv6 settings on a VIF.",
     0, xe_vif_configure_ipv6},
    {"vm-crashdump-list", L0,
     L0,
     "List crashdumps associated with the selected VM(s).",
     XE_CF_VMSEL, xe_vm_crashdump_list},
};

static const char hostselectorsinfo[] =
    " Hosts can be specified by filtering the full list of hosts on the "
    "values of zero or more fields. For example, specifying "
    "'uuid=<some_uuid>' will select only the host with that uuid, and "
    "'enabled=true' will select only hosts whose 'enabled' field is equal "
    "to 'true'. The special pseudo-field 'host' matches any of hostname, "
    "name-label or uuid. Where multiple hosts are matching, and the "
    "operation can be performed on multiple hosts, the option '--multiple' "
    "must be specified to perform the operation. The full list of fields "
    "that can be matched can be obtained by the command 'xe host-list "
    "params=all'. If no parameters to select hosts are given, the operation "
    "will be performed on all hosts.";

static const char vmselectorsinfo[] =
    " VMs can be specified by filtering the full list of VMs on the values "
    "of zero or more fields. For example, specifying 'uuid=<some_uuid>' will "
    "select only the VM with that uuid, and 'power-state=halted' will select "
    "only VMs whose 'power-state' field is equal to 'halted'. The special "
    "pseudo-field 'vm' matches either of name-label or uuid. Where multiple "
    "VMs are matching, the option '--multiple' must be specified to perform "
    "the operation. The full list of fields that can be matched can be "
    "obtained by the command 'xe vm-list params=all'. If no parameters to "
    "select VMs are given, the operation will be performed on all VMs.";

/* ---- generated per-class commands ---- */

enum gen_op {
    GEN_LIST,
    GEN_PARAM_LIST,
    GEN_PARAM_GET,
    GEN_PARAM_SET,
    GEN_PARAM_ADD,
    GEN_PARAM_REMOVE,
    GEN_PARAM_CLEAR,
    GEN_NOPS
};

static const struct {
    const char *suffix;
    xe_cmd_fn fn;
    const char *const *reqd;
    const char *help;
} gen_ops[GEN_NOPS] = {
    {"list", xe_gen_list, L0,
     "Lists all the %s, filtering on the optional arguments. To filter on "
     "map parameters, use the syntax 'map-param:key=value'"},
    {"param-list", xe_gen_param_list, L("uuid"),
     "Lists all the parameters of the object specified by the uuid."},
    {"param-get", xe_gen_param_get, L("uuid", "param-name"),
     "Gets the parameter specified of the object. If the parameter is a map "
     "of key=value pairs, use 'param-key=<key>' to get the value associated "
     "with a particular key."},
    {"param-set", xe_gen_param_set, L("uuid"),
     "Sets the parameter specified. If param-value is not given, the "
     "parameter is set to a null value. To set a (key,value) pair in a map "
     "parameter, use the syntax 'map-param:key=value'."},
    {"param-add", xe_gen_param_add, L("uuid", "param-name"),
     "Adds to a set or map parameter. If the parameter is a set, use "
     "param-key=<key to add>. If the parameter is a map, pass the values to "
     "add as 'key=value' pairs."},
    {"param-remove", xe_gen_param_remove,
     L("uuid", "param-name", "param-key"),
     "Removes a member or a key,value pair from a set/map respectively."},
    {"param-clear", xe_gen_param_clear, L("uuid", "param-name"),
     "Clears the specified parameter (param-name can be %s)."},
};

typedef bool (*field_pred)(const xe_field *f);

static bool f_any(const xe_field *f)
{
    (void)f;
    return true;
}

static bool f_set(const xe_field *f)
{
    return (f->flags & XE_F_SET) != 0;
}

static bool f_map_settable(const xe_field *f)
{
    return (f->flags & (XE_F_MAPRW | XE_F_SETINMAP | XE_F_SETMAP)) != 0;
}

/* Names of the non-hidden fields matching pred, with a suffix. */
static void field_names(const xe_class *cc, field_pred pred,
                        const char *suffix, xe_strv *out)
{
    size_t i;

    for (i = 0; i < cc->nfields; i++)
        if (!(cc->fields[i].flags & XE_F_HIDDEN) && pred(&cc->fields[i]))
            xe_strv_add(out, xe_sprintf(out->a, "%s%s", cc->fields[i].name,
                                        suffix));
}

static const char *const *strv_list(xe_strv *sv)
{
    xe_strv_add(sv, NULL);
    sv->n--;
    return sv->v;
}

static bool gen_exists(const xe_class *cc, enum gen_op op)
{
    size_t i;
    field_pred pred = op == GEN_PARAM_SET    ? xe_field_settable
                      : op == GEN_PARAM_CLEAR ? xe_field_clearable
                                              : xe_field_addable;

    if (op <= GEN_PARAM_GET)
        return true;
    for (i = 0; i < cc->nfields; i++)
        if (!(cc->fields[i].flags & XE_F_HIDDEN)
            && (pred(&cc->fields[i])
                || (op == GEN_PARAM_SET && f_map_settable(&cc->fields[i]))))
            return true;
    return false;
}

static xe_cmd *gen_cmd(xe_ctx *ctx, const xe_class *cc, enum gen_op op)
{
    xe_cmd *c = xe_alloc(&ctx->arena, sizeof(*c));
    xe_strv optn;

    xe_strv_init(&optn, &ctx->arena);
    c->name = xe_sprintf(&ctx->arena, "%s-%s", cc->name, gen_ops[op].suffix);
    c->reqd = gen_ops[op].reqd;
    c->fn = gen_ops[op].fn;
    c->help = gen_ops[op].help;
    switch (op) {
    case GEN_LIST:
        xe_strv_add(&optn, "params");
        xe_strv_add(&optn, "database:");
        field_names(cc, f_any, "", &optn);
        field_names(cc, f_set, ":contains", &optn);
        c->help = xe_sprintf(&ctx->arena, gen_ops[op].help, cc->plural);
        c->flags = cc->standard ? XE_CF_STANDARD : 0;
        break;
    case GEN_PARAM_LIST:
        xe_strv_add(&optn, "database:");
        break;
    case GEN_PARAM_GET:
        xe_strv_add(&optn, "param-key");
        xe_strv_add(&optn, "database:");
        break;
    case GEN_PARAM_SET:
        field_names(cc, xe_field_settable, "", &optn);
        field_names(cc, f_map_settable, ":", &optn);
        break;
    case GEN_PARAM_ADD:
        xe_strv_add(&optn, "param-key");
        break;
    case GEN_PARAM_CLEAR: {
        xe_strv names;

        xe_strv_init(&names, &ctx->arena);
        field_names(cc, xe_field_clearable, "", &names);
        c->help = xe_sprintf(&ctx->arena, gen_ops[op].help,
                             xe_strv_join(&names, ","));
        break;
    }
    default:
        break;
    }
    c->optn = strv_list(&optn);
    return c;
}

static const xe_cmd *gen_find(xe_ctx *ctx, const char *name)
{
    size_t i, len;
    int op;
    const xe_class *cc;

    for (i = 0; i < xe_nclasses; i++) {
        cc = &xe_classes[i];
        len = strlen(cc->name);
        if (strncmp(name, cc->name, len) != 0 || name[len] != '-')
            continue;
        for (op = 0; op < GEN_NOPS; op++) {
            if (strcmp(name + len + 1, gen_ops[op].suffix) != 0
                || !gen_exists(cc, (enum gen_op)op))
                continue;
            ctx->cmd_data = cc;
            return gen_cmd(ctx, cc, (enum gen_op)op);
        }
    }
    return NULL;
}

const xe_cmd *xe_cmd_find(xe_ctx *ctx, const char *name)
{
    size_t i;

    const xe_cmd *c;

    for (i = 0; i < XE_ARRAY_LEN(static_cmds); i++)
        if (strcmp(static_cmds[i].name, name) == 0)
            return &static_cmds[i];
    if ((c = gen_find(ctx, name)) != NULL)
        return c;
    /* XAPI's commands libxcp lacks the calls for: known, failing with
     * the XenAPI error of the missing call (cmd_xapi.c). */
    for (i = 0; i < xe_n_xapi_cmds; i++)
        if (strcmp(xe_xapi_cmds[i].cmd.name, name) == 0) {
            ctx->cmd_data = &xe_xapi_cmds[i];
            return &xe_xapi_cmds[i].cmd;
        }
    return NULL;
}

/* ---- help ---- */

static const char help_head[] =
    "Usage:\n"
    "  xe <command>\n"
    "    [ -s <server> ]            XenServer host\n"
    "    [ -p <port> ]              XenServer port number\n"
    "    [ -u <username> -pw <password> | -pwf <password file> ]\n"
    "                               User authentication (password or file)\n"
    "    [ --nossl ]                Disable SSL/TLS\n"
    "    [ --debug ]                Enable debug output\n"
    "    [ --debug-on-fail ]        Enable debug output only on failure\n"
    "    [ --traceparent <value> ]  Distributed tracing context\n"
    "    [ <other arguments> ... ]  Command-specific options\n"
    "\n"
    "To get help on a specific command:\n"
    "  xe help <command>\n"
    "\n";

static void help_command(xe_ctx *ctx, const char *name)
{
    const xe_cmd *c = xe_cmd_find(ctx, name);
    xe_strv reqd, optn;
    xe_row *rows;
    xe_table_rec rec;
    size_t i;

    if (c == NULL) {
        xe_print_line(ctx, xe_sprintf(&ctx->arena, "Unknown command '%s'",
                                      name));
        return;
    }
    xe_strv_init(&reqd, &ctx->arena);
    xe_strv_init(&optn, &ctx->arena);
    for (i = 0; c->reqd[i] != NULL; i++)
        xe_strv_add(&reqd, c->reqd[i]);
    for (i = 0; c->optn[i] != NULL; i++)
        xe_strv_add(&optn, c->optn[i]);
    if (c->flags & XE_CF_VMSEL)
        xe_strv_add(&optn, "<vm-selectors>");
    if (c->flags & XE_CF_HOSTSEL)
        xe_strv_add(&optn, "<host-selectors>");
    rows = xe_alloc(&ctx->arena, 4 * sizeof(*rows));
    rows[0] = (xe_row){"command name        ", c->name};
    rows[1] = (xe_row){"reqd params     ", xe_strv_join(&reqd, ", ")};
    rows[2] = (xe_row){"optional params ", xe_strv_join(&optn, ", ")};
    rows[3] = (xe_row){"description     ",
                       (c->flags & XE_CF_VMSEL)
                           ? xe_sprintf(&ctx->arena, "%s%s", c->help,
                                        vmselectorsinfo)
                       : (c->flags & XE_CF_HOSTSEL)
                           ? xe_sprintf(&ctx->arena, "%s%s", c->help,
                                        hostselectorsinfo)
                           : c->help};
    rec.n = 4;
    rec.rows = rows;
    xe_print_table(ctx, &rec, 1);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every visible command name, sorted. */
static void all_names(xe_ctx *ctx, bool standard_only, xe_strv *out)
{
    size_t i;
    int op;
    const xe_cmd *c;

    for (i = 0; i < XE_ARRAY_LEN(static_cmds); i++) {
        c = &static_cmds[i];
        if (!(c->flags & XE_CF_HIDDEN)
            && (!standard_only || (c->flags & XE_CF_STANDARD)))
            xe_strv_add(out, c->name);
    }
    for (i = 0; i < xe_nclasses; i++)
        for (op = 0; op < GEN_NOPS; op++) {
            if (!gen_exists(&xe_classes[i], (enum gen_op)op))
                continue;
            if (standard_only
                && (op != GEN_LIST || !xe_classes[i].standard))
                continue;
            xe_strv_add(out, xe_sprintf(&ctx->arena, "%s-%s",
                                        xe_classes[i].name,
                                        gen_ops[op].suffix));
        }
    if (out->n > 0)
        qsort(out->v, out->n, sizeof(*out->v), cmp_str);
}

/* make_list: comma-joined lines of at most about 74 characters */
static void print_wrapped(xe_ctx *ctx, const xe_strv *names)
{
    xe_buf cur;
    size_t i;

    if (names->n == 0)
        return;
    xe_buf_init(&cur, &ctx->arena);
    xe_buf_printf(&cur, "    %s", names->v[0]);
    for (i = 1; i < names->n; i++) {
        if (cur.len + strlen(names->v[i]) > 74) {
            xe_print_line(ctx, xe_buf_str(&cur));
            xe_buf_init(&cur, &ctx->arena);
            xe_buf_printf(&cur, "    %s", names->v[i]);
        } else {
            xe_buf_printf(&cur, ", %s", names->v[i]);
        }
    }
    xe_print_line(ctx, xe_buf_str(&cur));
}

/* Print the names starting with prefix; the others go to rest. */
static void print_partition(xe_ctx *ctx, const xe_strv *names,
                            const char *prefix, xe_strv *rest)
{
    xe_strv part;
    size_t i;

    xe_strv_init(&part, &ctx->arena);
    for (i = 0; i < names->n; i++) {
        if (xe_prefix(names->v[i], prefix))
            xe_strv_add(&part, names->v[i]);
        else
            xe_strv_add(rest, names->v[i]);
    }
    print_wrapped(ctx, &part);
}

static void help_all(xe_ctx *ctx, const xe_strv *names)
{
    xe_strv others, rest;
    const char *blank = "    ";

    xe_strv_init(&others, &ctx->arena);
    xe_strv_init(&rest, &ctx->arena);
    xe_print_line(ctx, xe_sprintf(&ctx->arena,
                                  "%sFull command list\n"
                                  "-----------------\n",
                                  help_head));
    print_partition(ctx, names, "host-", &others);
    xe_print_line(ctx, blank);
    print_partition(ctx, &others, "vm-", &rest);
    xe_print_line(ctx, blank);
    print_wrapped(ctx, &rest);
}

static bool help_skips(const char *key)
{
    static const char *const skip[] = {"server", "username", "password",
                                       "port",   "minimal",  "all"};
    size_t i;

    for (i = 0; i < XE_ARRAY_LEN(skip); i++)
        if (strcmp(key, skip[i]) == 0)
            return true;
    return false;
}

int xe_cmd_help(xe_ctx *ctx)
{
    xe_strv names;
    size_t i;
    bool any = false;
    bool all = xe_streq(xe_param(ctx, "all"), "true");

    for (i = 0; i < ctx->params.n; i++) {
        if (help_skips(ctx->params.v[i].key))
            continue;
        help_command(ctx, ctx->params.v[i].key);
        any = true;
    }
    if (any)
        return 0;
    xe_strv_init(&names, &ctx->arena);
    all_names(ctx, !all, &names);
    if (ctx->out.minimal) {
        xe_print_list(ctx, names.v, names.n);
        return 0;
    }
    if (all) {
        help_all(ctx, &names);
        return 0;
    }
    xe_print_line(ctx, xe_sprintf(&ctx->arena,
                                  "%sTo get a full listing of commands:\n"
                                  "  xe help --all\n\n"
                                  "Common command list\n"
                                  "-------------------\n",
                                  help_head));
    print_wrapped(ctx, &names);
    return 0;
}
