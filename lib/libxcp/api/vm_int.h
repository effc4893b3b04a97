/*
 * What the VM files share (vm.c: the lifecycle, creation, memory and
 * queries; vm_domain.c: domain building and reconciliation; vm_copy.c:
 * clone, copy, snapshot, checkpoint, revert, provision).
 */
#ifndef XCP_VM_INT_H
#define XCP_VM_INT_H

#include "storage.h"

#define MAX_DISKS 32
#define MAX_NICS 16
#define MAX_PLATFORM 64

struct domcfg {
    xcp_hv_domain_config cfg;
    xcp_hv_disk disks[MAX_DISKS];
    xcp_sr_vdi_path paths[MAX_DISKS];
    char vdevs[MAX_DISKS][16];
    xcp_hv_nic nics[MAX_NICS];
    xcp_hv_kv plat[MAX_PLATFORM];
    char *strs[16 + 2 * MAX_PLATFORM + MAX_NICS];
    size_t nstrs;
    /* VBD refs in disk order, to mark them attached. */
    char vbds[MAX_DISKS][XCP_REF_MAX];
};

/* Record op in vm's current_operations and commit (clients see it). */
int xcp__vm_begin(xcp__ctx *c, xcp__obj *vm, const char *op);

/* The kind of domain vm is built as (HVM, PVH or PV) from its domain_type
 * and HVM boot settings. */
xcp_hv_domain_type xcp__vm_built_type(const xcp__obj *vm);

/* The hypervisor configuration of vm from its records, into d (release
 * with xcp__vm_domcfg_free); resume: only the VBDs and VIFs attached at
 * suspend. */
int xcp__vm_build_cfg(xcp__ctx *c, xcp__obj *vm, struct domcfg *d,
                      bool resume);

/* Build the domain of vm (already checked, op committed). On return the
 * lock is held again and *vm re-resolved (NULL if it vanished). */
int xcp__vm_build_domain(xcp__ctx *c, xcp__obj **vm, bool paused,
                         const char *image, uint32_t *domid);

/* The boot fields of a VM record (VM.create). */
int xcp__vm_check_boot_fields(const xcp_value *f);

/* Lexical check, touching no file (for the setters): absolute, no "." or
 * ".." component, below a configured directory. "" clears the field. */
int xcp__vm_check_boot_path(const char *field, const char *path);

/* PV_bootloader: "" (direct boot) or one of the configured names. */
int xcp__vm_check_bootloader(const char *name);

/* May this host build cfg now? HOST_NOT_ENOUGH_FREE_MEMORY with figures. */
int xcp__vm_check_host_fits(xcp__ctx *c, xcp__obj *vm, struct domcfg *d);

/* MEMORY_CONSTRAINT_VIOLATION unless smin <= dmin <= dmax <= smax. */
int xcp__vm_check_memory_constraints(int64_t smin, int64_t dmin, int64_t dmax,
                                     int64_t smax);

/* Destroy the domain of vm with the lock dropped. */
int xcp__vm_destroy_domain(xcp__ctx *c, xcp__obj **vm);

/* Hard-shut vm down (a Suspended vm loses its image); its operation is
 * under way. */
int xcp__vm_do_hard_shutdown(xcp__ctx *c, xcp__obj *vm);

/* Release the strings d keeps. */
void xcp__vm_domcfg_free(struct domcfg *d);

/* Destroy vm's suspend image VDI, if any, and clear the field. */
int xcp__vm_drop_suspend_vdi(xcp__ctx *c, xcp__obj *vm);

/* As XAPI before a start or resume (and at VM.create): a domain_type
 * still "unspecified" becomes the one HVM_boot_policy implies. */
int xcp__vm_ensure_domain_type(xcp__ctx *c, xcp__obj *vm);

/* Remove vm's operation and refresh the host's free memory. */
int xcp__vm_end(xcp__ctx *c, xcp__obj *vm);

/* On failure after the operation was committed: end it, commit, keep the
 * error. The dispatcher's abort then has nothing left to undo. */
int xcp__vm_fail_op(xcp__ctx *c, const char *vmref, int rc);

/* Ask the guest to stop (poweroff or reboot) and wait until its domain
 * reports SHUTDOWN. The wait parks on the engine's condition, which the
 * domain monitor signals at every hypervisor event: no polling, and the
 * driver is free for other calls meanwhile. */
int xcp__vm_guest_shutdown(xcp__ctx *c, xcp__obj **vm,
                           xcp_hv_shutdown_reason why);

/* The XenAPI error for a hypervisor driver's failure e on vmref. */
int xcp__vm_hv_fail(xcp__ctx *c, const char *vmref, const xcp_hv_error *e);

/* Whether vm's power_state is state. */
bool xcp__vm_is(const xcp__obj *vm, const char *state);

/* Give vm a new VM_metrics record. */
int xcp__vm_new_metrics(xcp__ctx *c, xcp__obj *vm);

/* Update the host's free memory from the hypervisor. */
int xcp__vm_refresh_host_memory(xcp__ctx *c);

/* Save the domain's memory into a new suspend VDI; the domain is gone
 * after. Returns the VDI's ref in vdiref. */
int xcp__vm_save_domain(xcp__ctx *c, xcp__obj **vm, char vdiref[XCP_REF_MAX]);

/* How a domain came up, for xcp__vm_set_running. */
enum xcp__vm_up {
    XCP__VM_BOOTED,  /* a new boot: every device attached, start_time set */
    XCP__VM_RESUMED, /* from an image: the devices attached at suspend    */
    XCP__VM_FOUND    /* found running (reconciliation): every device      */
};

/* Domain up: vm Running (or Paused) as domid on this host, its devices
 * recorded as how says; its metrics are what it was built with until the
 * monitor reads the domain, once the operation has ended. */
int xcp__vm_set_running(xcp__ctx *c, xcp__obj *vm, uint32_t domid,
                        bool paused, enum xcp__vm_up how);

/* VM_metrics of vm's live domain from info (what the hypervisor reports);
 * only changed fields are written. */
int xcp__vm_update_metrics(xcp__ctx *c, xcp__obj *vm,
                           const xcp_hv_domain_info *info);

/* The same, asking the hypervisor; nothing if the domain is gone. */
int xcp__vm_refresh_metrics(xcp__ctx *c, xcp__obj *vm);

/* Domain gone: Halted (or Suspended with its image VDI). */
int xcp__vm_set_stopped(xcp__ctx *c, xcp__obj *vm, const char *state,
                        const char *suspend_vdi);

/* VM_guest_metrics from what the guest agent of vm's domain reports
 * (guest_metrics.c); nothing while no agent runs. */
int xcp__vm_update_guest_metrics(xcp__ctx *c, xcp__obj *vm);
/* The same from data[0, n), the agent's keys as the driver read them
 * (the domain monitor reads them without the engine lock). */
int xcp__vm_apply_guest_data(xcp__ctx *c, xcp__obj *vm,
                             const xcp_hv_guest_datum *data, size_t n);

/* Destroy vm's VM_guest_metrics, if any (a new boot, as XAPI). */
int xcp__vm_drop_guest_metrics(xcp__ctx *c, xcp__obj *vm);

/* The bridges of cfg's NICs, made ready before a domain is built. */
int xcp__vm_bridges_ready(xcp__ctx *c, const xcp_hv_domain_config *cfg);

/* VM.pool_migrate of vm, resident here, to host h, another host of the
 * pool (vm_migrate.c): XAPI's checks of h, then the live migration over
 * a stream to h's daemon; VM_MIGRATE_FAILED [vm, here, h, reason] on a
 * failure, the VM running here as before. */
int xcp__vm_pool_migrate_remote(xcp__ctx *c, xcp__obj *vm, xcp__obj *h);

/* The VM of the call's first argument. */
int xcp__vm_arg(xcp__ctx *c, xcp__obj **vm);

/* ---- placement (placement.c) ---- */
/* Whether host is up: this host always; another host by its
 * host_metrics.live (kept by the coordinator from corosync). */
bool xcp__host_live(xcp__ctx *c, const xcp__obj *host);
/* host_metrics.memory_free of host as last recorded (bytes). */
int64_t xcp__host_free_memory(xcp__ctx *c, const xcp__obj *host);
/* The memory vm needs to start: memory_dynamic_max and the domain's
 * overhead (the hypervisor driver's estimate from the VM's record). */
int64_t xcp__vm_start_memory(xcp__ctx *c, const xcp__obj *vm);
/* XAPI's assert_can_boot_here of vm on host, a host of the pool, in its
 * order: VM_NO_VCPUS / VM_TOO_MANY_VCPUS / MEMORY_CONSTRAINT_VIOLATION,
 * HOST_NOT_LIVE, HOST_DISABLED [host] (not for a control domain or a VM
 * running there), VM_REQUIRES_SR [vm, sr], VM_REQUIRES_NETWORK [vm,
 * network], then, when memory, HOST_NOT_ENOUGH_FREE_MEMORY [needed,
 * available] (this host: its hypervisor's figures and the whole domain
 * configuration check; another: its host_metrics.memory_free). */
int xcp__placement_check(xcp__ctx *c, xcp__obj *vm, xcp__obj *host,
                         bool memory);
/* VM.get_possible_hosts in a pool: the hosts that pass
 * xcp__placement_check, into c->result. */
int xcp__placement_possible(xcp__ctx *c, xcp__obj *vm);
/* The host VM.start without one runs vm on (XAPI's choose_host_for_vm):
 * its affinity if it passes every check, else of the hosts that pass
 * them the one with the most free memory (ties at random), else (none
 * has the memory) the same without the memory check, else
 * NO_HOSTS_AVAILABLE. */
int xcp__placement_choose(xcp__ctx *c, xcp__obj *vm, xcp__obj **out);
/* On the coordinator, before forwarding (engine.c's run_call): for
 * VM.start, the host xcp__placement_choose picks, into host (size n; ""
 * when the call runs here as it is: a VM that cannot start now); for
 * VM.start_on another host, xcp__placement_check there. 0, or the
 * refusal (< 0) the call answers. Other calls: 0, host "". */
int xcp__placement_route(xcp__ctx *c, char *host, size_t n);
/* host.get_vms_which_prevent_evacuation of host into map (a struct of VM
 * ref to [code, params...]): every VM resident there but the control
 * domain that cannot go to another enabled host: NO_HOSTS_AVAILABLE [vm]
 * when there is none, the error of a target it cannot boot on (memory
 * aside), that of its pool_migrate operation, or, after a binpack of
 * the VMs on the targets' free memory, HOST_NOT_ENOUGH_FREE_MEMORY
 * [vm]. */
int xcp__placement_evacuation(xcp__ctx *c, xcp__obj *host, xcp_value *map);
/* One move of an evacuation plan: VM vm to host host (refs). */
typedef struct xcp__evac_move {
    char vm[XCP_REF_MAX];
    char host[XCP_REF_MAX];
} xcp__evac_move;
/* The same map, and the plan for the VMs that can go: *moves (malloc()ed,
 * *nmoves of them, freed by the caller) says where each goes (XAPI's
 * compute_evacuation_plan: the binpack's choice). */
int xcp__placement_evacuation_plan(xcp__ctx *c, xcp__obj *host,
                                   xcp_value *map, xcp__evac_move **moves,
                                   size_t *nmoves);

#endif
