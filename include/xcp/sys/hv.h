/*
 * xcp/sys/hv.h - the hypervisor driver interface.
 *
 * For driver authors and for the library's engine. A driver is a const table
 * of mechanism-level operations (struct xcp_hv_driver) over domains named by
 * id and described by plain config structs; it never sees database objects
 * and makes no policy decisions (which VM may start, where, with what
 * memory): the library does.
 *
 * Conventions, for every operation below:
 *  - Return 0 on success or a negative errno-style code (-ENOMEM, -ESRCH,
 *    -ETIMEDOUT, ...). On failure the driver fills the caller's
 *    struct xcp_hv_error (err may be NULL): code = the same negative value,
 *    message = a sentence with the context needed to act on it (which
 *    domain, which file, the errno text, needed vs. available amounts).
 *  - A NULL slot means "not supported by this driver"; the library's
 *    wrappers (xcp__hv_*) report it as -ENOTSUP with the operation's name.
 *  - Memory is in bytes at this interface (drivers round to 4 KiB pages,
 *    up), times in nanoseconds, domain ids are uint32_t (0 = the control
 *    domain, dom0).
 *  - Strings and arrays passed in are borrowed for the duration of the call
 *    only. Arrays handed out through a pointer-to-pointer are malloc()ed by
 *    the driver and freed by the caller with free().
 *  - An instance (the `self` pointer) is not thread-safe: the library calls
 *    it from one thread at a time. Blocking calls (domain_wait,
 *    domain_suspend) block only the calling thread.
 *  - Structs that callers fill (config, fault) start with a version field
 *    and only grow at the end; the table itself is versioned likewise.
 *
 * Plain C99, compiles alone and from C++.
 */
#ifndef XCP_SYS_HV_H
#define XCP_SYS_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Version of struct xcp_hv_driver. Bumped when slots are added (at the end).
 * 2: console_open. 3: bridge_ensure. 4: disk_pause, disk_reopen,
 * disk_resize, disk_cbt, disk_size (disks of running domains). 5: image_ops
 * (the library's image I/O handed to the instance), disk_snapshot. 6:
 * disk_stream. 7: disk_stream_cancel. 8: stats. A table of an older
 * version has no such slot: the library treats it as NULL.
 */
#define XCP_HV_DRIVER_VERSION 9
/* Version of struct xcp_hv_domain_config. */
#define XCP_HV_CONFIG_VERSION 1
/* Version of struct xcp_hv_fault. */
#define XCP_HV_FAULT_VERSION 1
/* Version of struct xcp_hv_image_ops (2: stream). */
#define XCP_HV_IMAGE_OPS_VERSION 2

#define XCP_HV_PAGE_SIZE 4096u
#define XCP_HV_UUID_LEN 37            /* 36 characters + NUL */
#define XCP_HV_NAME_MAX 128           /* domain name, NUL included */
#define XCP_HV_ERROR_MSG_MAX 512

/* ---- errors -------------------------------------------------------------- */

/* What a failed operation reports, besides its return value. */
typedef struct xcp_hv_error {
    int code;                           /* negative errno, = return value */
    char message[XCP_HV_ERROR_MSG_MAX]; /* context: domain, file, errno   */
} xcp_hv_error;

/* ---- enums --------------------------------------------------------------- */

typedef enum xcp_hv_domain_type {
    XCP_HV_DOMAIN_PV = 0,
    XCP_HV_DOMAIN_HVM,
    XCP_HV_DOMAIN_PVH
} xcp_hv_domain_type;

typedef enum xcp_hv_domain_state {
    XCP_HV_STATE_RUNNING = 0, /* scheduled (running or blocked)            */
    XCP_HV_STATE_PAUSED,      /* paused by the toolstack                   */
    XCP_HV_STATE_SHUTDOWN,    /* guest has shut down, see shutdown_reason;
                                 still holds its memory until destroyed    */
    XCP_HV_STATE_DYING        /* being torn down by the hypervisor         */
} xcp_hv_domain_state;

/*
 * Why a domain shut down (Xen's SHUTDOWN_* codes). Xen has no separate
 * "halt": a halted guest reports POWEROFF. Also used as the request of
 * domain_shutdown, where only POWEROFF and REBOOT are valid.
 */
typedef enum xcp_hv_shutdown_reason {
    XCP_HV_SHUTDOWN_NONE = 0,   /* not shut down                            */
    XCP_HV_SHUTDOWN_POWEROFF,   /* clean poweroff or halt                   */
    XCP_HV_SHUTDOWN_REBOOT,     /* guest asks to be restarted: the library
                                   destroys it and builds a new domain     */
    XCP_HV_SHUTDOWN_SUSPEND,    /* memory saved; domain about to go away    */
    XCP_HV_SHUTDOWN_CRASH,      /* guest crashed                            */
    XCP_HV_SHUTDOWN_WATCHDOG,   /* guest watchdog fired                     */
    XCP_HV_SHUTDOWN_SOFT_RESET  /* guest asked for a soft reset (kexec)     */
} xcp_hv_shutdown_reason;

/*
 * The operations, for fault injection, error messages and capability
 * queries (xcp__hv_supports). Names (xcp__hv_op_name) are the slot names:
 * "domain_create", "host_info", ...
 */
typedef enum xcp_hv_op {
    XCP_HV_OP_HOST_INFO = 0,
    XCP_HV_OP_HOST_CPU_USAGE,
    XCP_HV_OP_MEMORY_OVERHEAD,
    XCP_HV_OP_DOMAIN_CREATE,
    XCP_HV_OP_DOMAIN_DESTROY,
    XCP_HV_OP_DOMAIN_PAUSE,
    XCP_HV_OP_DOMAIN_UNPAUSE,
    XCP_HV_OP_DOMAIN_SHUTDOWN,
    XCP_HV_OP_DOMAIN_WAIT,
    XCP_HV_OP_DOMAIN_SUSPEND,
    XCP_HV_OP_DOMAIN_RESTORE,
    XCP_HV_OP_DOMAIN_SET_MEMORY_TARGET,
    XCP_HV_OP_DOMAIN_SET_VCPUS,
    XCP_HV_OP_DOMAIN_LIST,
    XCP_HV_OP_DOMAIN_INFO,
    XCP_HV_OP_DOMAIN_VCPU_INFO,
    XCP_HV_OP_DISK_PLUG,
    XCP_HV_OP_DISK_UNPLUG,
    XCP_HV_OP_CDROM_INSERT,
    XCP_HV_OP_NIC_PLUG,
    XCP_HV_OP_NIC_UNPLUG,
    XCP_HV_OP_EVENT_FD,
    XCP_HV_OP_EVENT_READ,
    XCP_HV_OP_FAULT,
    XCP_HV_OP_CONSOLE_OPEN,   /* driver version 2 */
    XCP_HV_OP_DOMAIN_GUEST_DATA, /* driver version 2 */
    XCP_HV_OP_DOMAIN_MIGRATE_LOCAL, /* driver version 2 */
    XCP_HV_OP_BRIDGE_REMOVE,        /* driver version 2 */
    XCP_HV_OP_BRIDGE_ENSURE,        /* driver version 3 */
    XCP_HV_OP_DISK_PAUSE,           /* driver version 4 */
    XCP_HV_OP_DISK_REOPEN,          /* driver version 4 */
    XCP_HV_OP_DISK_RESIZE,          /* driver version 4 */
    XCP_HV_OP_DISK_CBT,             /* driver version 4 */
    XCP_HV_OP_DISK_SIZE,            /* driver version 4 */
    XCP_HV_OP_DISK_SNAPSHOT,        /* driver version 5 */
    XCP_HV_OP_DISK_STREAM,          /* driver version 6 */
    XCP_HV_OP_DISK_STREAM_CANCEL,   /* driver version 7 */
    XCP_HV_OP_STATS,                /* driver version 8 */
    XCP_HV_OP_DOMAIN_MIGRATE_SEND,  /* driver version 9 */
    XCP_HV_OP_DOMAIN_MIGRATE_RECEIVE, /* driver version 9 */
    XCP_HV_OP__COUNT
} xcp_hv_op;

/* What speaks on a console stream (console_open). */
typedef enum xcp_hv_console_protocol {
    XCP_HV_CONSOLE_VT100 = 0, /* the guest's text console (PV hvc0, HVM
                                 serial): bytes both ways                  */
    XCP_HV_CONSOLE_RFB        /* its framebuffer: an RFB 3.8 (VNC) server
                                 starting with its ProtocolVersion         */
} xcp_hv_console_protocol;

/* ---- host ---------------------------------------------------------------- */

#define XCP_HV_CPU_FLAGS_MAX 4096
#define XCP_HV_CAPS_MAX 1024

typedef struct xcp_hv_host_info {
    char hostname[256];
    uint64_t memory_total;      /* bytes of RAM the hypervisor manages      */
    uint64_t memory_free;       /* bytes not used by Xen or any domain
                                   (what a new domain can get)              */
    uint64_t memory_hypervisor; /* bytes Xen keeps for itself               */
    uint32_t nr_cpus;           /* physical CPUs (threads) online           */
    uint32_t sockets;
    uint32_t cores_per_socket;
    uint32_t threads_per_core;
    char cpu_vendor[32];        /* "GenuineIntel", "AuthenticAMD"           */
    char cpu_model_name[128];
    uint32_t cpu_family;
    uint32_t cpu_model;
    uint32_t cpu_stepping;
    uint32_t cpu_mhz;
    char cpu_flags[XCP_HV_CPU_FLAGS_MAX]; /* space separated, as cpuinfo    */
    char hv_version[64];                  /* "4.17.3", "4.17.0-sim"         */
    /* Space separated guest ABIs the host can run, Xen's own list:
     * "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64". */
    char capabilities[XCP_HV_CAPS_MAX];
} xcp_hv_host_info;

/* ---- domain configuration (input) ---------------------------------------- */

typedef struct xcp_hv_disk {
    const char *path;   /* image file or block device; NULL or "" = empty
                           CD drive (cdrom only)                           */
    const char *format; /* "raw", "qcow2" or "vhd"; NULL = "raw"            */
    const char *vdev;   /* guest device name: "xvda", "hdc", "sdb"...      */
    bool readonly;
    bool cdrom;
} xcp_hv_disk;

typedef struct xcp_hv_nic {
    uint8_t mac[6];
    const char *bridge; /* host bridge the backend is attached to          */
    uint32_t devid;     /* device index in the guest (vif<domid>.<devid>)  */
    uint32_t mtu;       /* 0 = 1500                                         */
} xcp_hv_nic;

typedef struct xcp_hv_kv {
    const char *key;
    const char *value;
} xcp_hv_kv;

/*
 * Everything needed to build a domain. Set version = XCP_HV_CONFIG_VERSION;
 * zero the struct first so that fields added later default to 0/NULL.
 */
typedef struct xcp_hv_domain_config {
    unsigned version;
    const char *vm_uuid;  /* the VM's uuid, stored with the domain so the
                             library can reconcile after a restart         */
    const char *name;     /* domain name, unique among live domains         */
    xcp_hv_domain_type type;
    uint64_t memory_static_max; /* bytes: the most the domain can ever have */
    uint64_t memory_target;     /* bytes: what it gets at boot; <= max      */
    uint32_t vcpus_max;         /* vCPUs the domain is built with           */
    uint32_t vcpus_online;      /* of those, online at boot (0 = all)       */
    const char *kernel;         /* PV/PVH direct boot; NULL for HVM          */
    const char *ramdisk;
    const char *cmdline;
    const char *bootloader;     /* e.g. "pygrub"; PV only                    */
    const xcp_hv_disk *disks;
    size_t n_disks;
    const xcp_hv_nic *nics;
    size_t n_nics;
    const xcp_hv_kv *platform;  /* VM.platform: "acpi", "viridian", ...      */
    size_t n_platform;
    /* The operating system the VM was installed as (its template's name),
     * or NULL: what a simulated guest's agent reports. Real drivers ignore
     * it (their guests' agents report what they really run). */
    const char *guest_os;
    /* HVM: the firmware's boot order, XAPI's HVM_boot_params "order"
     * under HVM_boot_policy "BIOS order": 'c' disk, 'd' CD, 'n' network,
     * tried in turn (e.g. "dc"). NULL = "cd". Ignored for PV and PVH. */
    const char *boot_order;
} xcp_hv_domain_config;

/* ---- domain state (output) ----------------------------------------------- */

typedef struct xcp_hv_domain_info {
    uint32_t domid;
    char vm_uuid[XCP_HV_UUID_LEN];
    char name[XCP_HV_NAME_MAX];
    xcp_hv_domain_type type;
    xcp_hv_domain_state state;
    xcp_hv_shutdown_reason shutdown_reason; /* NONE unless SHUTDOWN        */
    uint64_t memory_actual;   /* bytes the guest holds now                  */
    uint64_t memory_target;   /* bytes the balloon driver aims at          */
    uint64_t memory_max;      /* bytes: static max                          */
    uint64_t memory_overhead; /* bytes the hypervisor uses on its behalf
                                 (p2m, shadow/HAP pool, vCPU structures)   */
    uint32_t vcpus_online;
    uint32_t vcpus_max;
    uint64_t cpu_time_ns;     /* sum over vCPUs, since the domain was built */
    int64_t start_time_ns;    /* wall clock (since the epoch) at build      */
} xcp_hv_domain_info;

typedef struct xcp_hv_vcpu_info {
    uint32_t id;
    bool online;
    bool running;           /* currently scheduled on a physical CPU        */
    uint32_t pcpu;          /* the physical CPU it last ran on              */
    uint64_t cpu_time_ns;
} xcp_hv_vcpu_info;

/*
 * One datum of the guest agent: a path below the domain's xenstore home as
 * XCP-ng's guest tools write it ("data/os_name", "attr/PVAddons/
 * MajorVersion", "attr/vif/0/ipv4/0", "data/meminfo_free") and its value.
 */
#define XCP_HV_GUEST_PATH_MAX 96
#define XCP_HV_GUEST_VALUE_MAX 160

typedef struct xcp_hv_guest_datum {
    char path[XCP_HV_GUEST_PATH_MAX];
    char value[XCP_HV_GUEST_VALUE_MAX];
} xcp_hv_guest_datum;

/* ---- fault injection ----------------------------------------------------- */

typedef enum xcp_hv_fault_kind {
    XCP_HV_FAULT_FAIL_OP = 0, /* next `count` calls of `op` fail with
                                 -`error` (count 0 = stop failing)         */
    XCP_HV_FAULT_CRASH,       /* domain `domid` crashes now                 */
    XCP_HV_FAULT_HANG,        /* guest `domid` ignores shutdown and suspend
                                 requests while `on` is true               */
    XCP_HV_FAULT_CLEAR        /* forget every pending FAIL_OP               */
} xcp_hv_fault_kind;

typedef struct xcp_hv_fault {
    unsigned version;         /* XCP_HV_FAULT_VERSION                       */
    xcp_hv_fault_kind kind;
    xcp_hv_op op;
    int error;                /* positive errno, e.g. EIO                   */
    unsigned count;
    uint32_t domid;
    bool on;
} xcp_hv_fault;

/* ---- image I/O, lent by the library (driver version 5) ------------------ */

/*
 * A back end that serves a disk from an image file (qcow2, VHD, raw) needs
 * an image library; a driver that has none of its own (the sim) borrows
 * the library's through this table, which the library hands it with the
 * image_ops slot right after open. A driver thus never links or includes
 * the library's storage code (hv/ sits beside sr/, not above it).
 *
 * An open image is a chain: path and the parents its header names, read
 * through; writes go to path alone. Handles are the caller's, one thread
 * at a time each; two writable handles of one image at once (in any
 * processes) corrupt it: a driver keeps at most one, and none while the
 * disk is paused (the library may then rewrite or replace the image).
 * Errors as elsewhere here: 0 or a negative errno, with err filled.
 */
typedef struct xcp_hv_image xcp_hv_image;

/* The name of the library's changed block tracking bitmap in a qcow2
 * image (what disk_cbt is asked to switch). */
#define XCP_HV_CBT_BITMAP "xcp-cbt"

typedef struct xcp_hv_image_ops {
    unsigned version;         /* XCP_HV_IMAGE_OPS_VERSION                   */
    /* Opens the image at path, of format ("raw", "qcow2", "vhd"; NULL =
     * "raw"), with its chain; readonly: no write, resize or cbt. */
    int (*open)(xcp_hv_image **out, const char *path, const char *format,
                bool readonly, xcp_hv_error *err);
    /* len bytes at offset, within the virtual size (-EINVAL past it). */
    int (*read)(xcp_hv_image *im, uint64_t offset, void *buf, size_t len,
                xcp_hv_error *err);
    int (*write)(xcp_hv_image *im, uint64_t offset, const void *buf,
                 size_t len, xcp_hv_error *err);
    /* Makes every write before it durable (a guest's flush). */
    int (*flush)(xcp_hv_image *im, xcp_hv_error *err);
    /* Flushes and frees the handle (freed even when the flush fails:
     * that failure is returned). NULL accepted. */
    int (*close)(xcp_hv_image *im, xcp_hv_error *err);
    /* The virtual size in bytes. */
    uint64_t (*size)(const xcp_hv_image *im);
    /* Grows the virtual size to bytes (a multiple of 512); smaller than
     * now: -EINVAL; past the format's limit: -EFBIG. */
    int (*resize)(xcp_hv_image *im, uint64_t bytes, xcp_hv_error *err);
    /* Changed block tracking on (a fresh epoch: no block marked) or off,
     * as the library keeps it: qcow2 persistent dirty bitmap "xcp-cbt",
     * VHD log beside the image; raw: -ENOTSUP. Writes through a handle
     * of a tracked image mark their blocks. */
    int (*cbt)(xcp_hv_image *im, bool on, xcp_hv_error *err);
    /* ---- version 2 ---- */
    /* What disk_stream asks of a back end: what im shows through its
     * chain is written into im itself (the bytes im holds are rewritten
     * as they are), then im's parent becomes backing (named relative to
     * im's folder; NULL: none), which must show what the parents left
     * out show (the library's SR knows). im reads the same throughout. */
    int (*stream)(xcp_hv_image *im, const char *backing, xcp_hv_error *err);
} xcp_hv_image_ops;

/* ---- live migration (version 9) ----------------------------------------- */

/* What a domain_migrate_send did. */
typedef struct xcp_hv_migrate_stats {
    uint32_t rounds;          /* memory rounds, the last one paused        */
    uint64_t bytes;           /* memory bytes sent in all rounds           */
    uint64_t downtime_ns;     /* the guest paused here until the receiver
                                 held it                                   */
    uint64_t total_ns;        /* the whole migration                       */
} xcp_hv_migrate_stats;

/* ---- statistics (stats, version 8) --------------------------------------- */

/* What a device counter belongs to. */
typedef enum xcp_hv_dev_kind {
    XCP_HV_DEV_DISK = 0,     /* a domain's disk (blkback, qdisk)           */
    XCP_HV_DEV_NIC = 1,      /* a domain's NIC (its backend vif)           */
    XCP_HV_DEV_HOST_NIC = 2, /* a physical NIC of the host                 */
} xcp_hv_dev_kind;

/*
 * Cumulative counters of one device since it was plugged (they only grow,
 * but may restart from 0 when it is plugged again). NICs count as the
 * guest sees them (rd = received by the guest, wr = sent by it); a host
 * NIC as the host sees it.
 */
typedef struct xcp_hv_dev_stats {
    uint32_t domid;          /* owner; 0 for a host NIC                    */
    xcp_hv_dev_kind kind;
    char name[16];           /* disk: guest device ("xvda"); NIC: its devid
                                in decimal ("0"); host NIC: "eth0"         */
    uint64_t rd_bytes, wr_bytes;
    uint64_t rd_reqs, wr_reqs; /* disk: requests done; NIC: packets        */
} xcp_hv_dev_stats;

/*
 * One reading of everything the library samples, taken at one instant.
 * Every array is malloc()ed by the driver (NULL when empty) and freed by
 * the caller with free().
 */
typedef struct xcp_hv_stats {
    uint64_t memory_total, memory_free; /* bytes, as host_info           */
    double loadavg;                 /* the control domain's 1-minute load */
    uint64_t *pcpu_busy_ns;         /* per physical CPU: time not idle    */
    size_t n_pcpus;
    xcp_hv_domain_info *doms;       /* as domain_list                     */
    size_t n_doms;
    int64_t *guest_free_kib;        /* per doms entry: the free memory its
                                       guest agent reports (KiB), -1 if none */
    uint64_t *vcpu_ns;              /* running time of each vCPU: doms[0]'s
                                       vcpus_max entries, then doms[1]'s.. */
    xcp_hv_dev_stats *devs;         /* grouped by domain, then host NICs  */
    size_t n_devs;
} xcp_hv_stats;

/* ---- the driver table ---------------------------------------------------- */

typedef struct xcp_hv_driver {
    unsigned version;         /* XCP_HV_DRIVER_VERSION                      */
    const char *name;         /* "sim", "xen": what XCP_HV selects          */
    const char *description;

    /*
     * Opens an instance. state_dir is the library's state directory; a
     * driver that keeps state puts it in a subdirectory named after itself.
     * Fails cleanly (no side effect) when the hypervisor is not there.
     */
    int (*open)(void **self, const char *state_dir, xcp_hv_error *err);
    /* Releases the instance. Domains keep running: they outlive us. */
    void (*close)(void *self);

    int (*host_info)(void *self, xcp_hv_host_info *out, xcp_hv_error *err);
    /*
     * Utilisation (0..1) of each physical CPU, averaged since the previous
     * call on this instance (the first call: since open). *util is
     * malloc()ed, *n entries.
     */
    int (*host_cpu_usage)(void *self, double **util, size_t *n,
                          xcp_hv_error *err);
    /*
     * Bytes the hypervisor needs on top of memory_target to build cfg (the
     * same figure domain_create checks and domain_info reports).
     */
    int (*memory_overhead)(void *self, const xcp_hv_domain_config *cfg,
                           uint64_t *bytes, xcp_hv_error *err);

    /*
     * Builds a domain. With paused, it is left paused (unpause to run).
     * Fails with -ENOMEM when memory_target + overhead exceeds free memory.
     */
    int (*domain_create)(void *self, const xcp_hv_domain_config *cfg,
                         bool paused, uint32_t *domid, xcp_hv_error *err);
    /*
     * Kills the domain at once, whatever its state, and frees its memory;
     * returns when the domain is gone (xen: waits up to 10 s for Xen to
     * finish tearing it down, after which it may still be DYING).
     */
    int (*domain_destroy)(void *self, uint32_t domid, xcp_hv_error *err);
    int (*domain_pause)(void *self, uint32_t domid, xcp_hv_error *err);
    int (*domain_unpause)(void *self, uint32_t domid, xcp_hv_error *err);
    /*
     * Asks the guest to shut down (reason POWEROFF or REBOOT) and returns
     * at once; the guest acknowledges later (or never): see domain_wait and
     * event_fd. The domain then reaches SHUTDOWN with that reason.
     */
    int (*domain_shutdown)(void *self, uint32_t domid,
                           xcp_hv_shutdown_reason request, xcp_hv_error *err);
    /*
     * Waits up to timeout_ms (< 0: forever) until the domain is in state
     * SHUTDOWN, then fills *out (state and reason). -ETIMEDOUT if it did
     * not happen in time; -ESRCH if the domain is gone.
     */
    int (*domain_wait)(void *self, uint32_t domid, int timeout_ms,
                       xcp_hv_domain_info *out, xcp_hv_error *err);
    /*
     * Saves the domain's memory image to image_path (a new file, written
     * crash-safely), then the domain is gone. Blocks until done.
     */
    int (*domain_suspend)(void *self, uint32_t domid, const char *image_path,
                          xcp_hv_error *err);
    /*
     * Builds a domain from an image written by domain_suspend of the same
     * driver. The image may come from another VM (clones of a suspended VM
     * resume from a copy) but must fit the config (type, vCPUs, memory);
     * a corrupt or mismatching image is refused (-EINVAL) and no domain is
     * left behind.
     */
    int (*domain_restore)(void *self, const xcp_hv_domain_config *cfg,
                          const char *image_path, bool paused,
                          uint32_t *domid, xcp_hv_error *err);
    /* Sets the balloon target; memory_actual follows (maybe not at once). */
    int (*domain_set_memory_target)(void *self, uint32_t domid,
                                    uint64_t bytes, xcp_hv_error *err);
    /* Sets how many vCPUs are online (1..vcpus_max). */
    int (*domain_set_vcpus)(void *self, uint32_t domid, uint32_t online,
                            xcp_hv_error *err);
    /* All domains, dom0 first, by increasing domid. *out is malloc()ed. */
    int (*domain_list)(void *self, xcp_hv_domain_info **out, size_t *n,
                       xcp_hv_error *err);
    int (*domain_info)(void *self, uint32_t domid, xcp_hv_domain_info *out,
                       xcp_hv_error *err);
    /* One entry per vCPU (vcpus_max of them). *out is malloc()ed. */
    int (*domain_vcpu_info)(void *self, uint32_t domid,
                            xcp_hv_vcpu_info **out, size_t *n,
                            xcp_hv_error *err);

    /* Hot-plug / unplug. force: don't wait for the guest to release it. */
    int (*disk_plug)(void *self, uint32_t domid, const xcp_hv_disk *disk,
                     xcp_hv_error *err);
    int (*disk_unplug)(void *self, uint32_t domid, const char *vdev,
                       bool force, xcp_hv_error *err);
    /* Changes the medium of CD drive vdev; path NULL or "" ejects. */
    int (*cdrom_insert)(void *self, uint32_t domid, const char *vdev,
                        const char *path, const char *format,
                        xcp_hv_error *err);
    int (*nic_plug)(void *self, uint32_t domid, const xcp_hv_nic *nic,
                    xcp_hv_error *err);
    int (*nic_unplug)(void *self, uint32_t domid, uint32_t devid, bool force,
                      xcp_hv_error *err);

    /*
     * A file descriptor, owned by the instance, that polls readable when
     * some domain may have changed state (created, paused, shut down,
     * crashed, gone, memory/vCPU change). Then call event_read.
     */
    int (*event_fd)(void *self, int *fd, xcp_hv_error *err);
    /*
     * Drains the fd and returns the ids of domains that changed since the
     * previous call (including domains that are gone now), at most cap of
     * them; if more are pending, the fd stays readable. Never blocks.
     */
    int (*event_read)(void *self, uint32_t *domids, size_t cap, size_t *n,
                      xcp_hv_error *err);

    /* Fault injection, for tests. NULL on real hypervisors. */
    int (*fault)(void *self, const xcp_hv_fault *fault, xcp_hv_error *err);

    /* ---- version 2 ---- */

    /*
     * Opens a console of a live domain: *fd receives a connected stream
     * socket (SOCK_CLOEXEC) owned by the caller, on which the console
     * speaks `proto` at once (for RFB the server sends its ProtocolVersion
     * first). The driver serves it from its own thread, not the instance's
     * (so other calls go on meanwhile), until the caller closes the fd or
     * the domain goes away (then the caller reads EOF). Several consoles
     * of one domain may be open at once. -ESRCH if there is no such
     * domain, -ENOTSUP for a protocol the domain has no console for.
     */
    int (*console_open)(void *self, uint32_t domid,
                        xcp_hv_console_protocol proto, int *fd,
                        xcp_hv_error *err);

    /*
     * What the guest agent of a live domain reports: its entries under
     * data/ and attr/ (xcp_hv_guest_datum), as XCP-ng's guest tools write
     * them (xen: read from the domain's xenstore). None (*n = 0) while no
     * agent runs. A change makes the domain come out of event_read.
     * *out is malloc()ed.
     */
    int (*domain_guest_data)(void *self, uint32_t domid,
                             xcp_hv_guest_datum **out, size_t *n,
                             xcp_hv_error *err);
    /*
     * Live migration to this same host (XAPI's localhost migration, xl
     * migrate localhost): a receiving domain is built beside the running
     * one (the host needs room for both: -ENOMEM otherwise), the memory
     * and device state move while the guest runs, then the sender is
     * gone. Same VM uuid, name, devices and state (paused stays paused);
     * the new domain's id in *new_domid.
     */
    int (*domain_migrate_local)(void *self, uint32_t domid,
                                uint32_t *new_domid, xcp_hv_error *err);
    /*
     * The network whose NICs joined host bridge `bridge` is gone: the
     * driver removes the bridge if it made it (nic_plug, domain_create)
     * and no port is left on it; a bridge it did not make (the host's
     * own, xenbr0) stays. 0 also when there was nothing to remove. NULL:
     * the driver makes no bridges.
     */
    int (*bridge_remove)(void *self, const char *bridge, xcp_hv_error *err);

    /* ---- version 3 ---- */

    /*
     * Makes host bridge `bridge` ready for NICs to join (nic_plug,
     * domain_create): the driver makes it if it is not there (one
     * bridge_remove may take away again). -ENODEV, with the reason, when
     * there is no such bridge and none can be made (a name that is no
     * bridge's, such as another kind of interface, or one the host
     * refuses). The library asks before it builds a domain or plugs a
     * NIC, so that such a network fails as BRIDGE_NOT_AVAILABLE. NULL: the
     * driver makes no bridges.
     */
    int (*bridge_ensure)(void *self, const char *bridge, xcp_hv_error *err);

    /* ---- version 4: the disks of running domains ---- */
    /*
     * Two ways to change the image of a disk a running domain has
     * attached; a driver fills the slots of one or both, and the library
     * takes the first that the driver has: pause/reopen (the library
     * rewrites the image meanwhile, as XAPI pauses tapdisk), else
     * resize/cbt done by the back end that holds the image open (QEMU).
     */

    /*
     * Stops the back end of disk vdev: requests in flight complete and
     * reach the image, new ones wait (the guest sees its I/O stall, not
     * fail), and the back end closes its image files, so that the caller
     * may replace or rewrite them. -EBUSY if it is paused already,
     * -ENODEV if the domain has no such disk, -ENOTSUP for a disk whose
     * back end cannot stop (a CD).
     */
    int (*disk_pause)(void *self, uint32_t domid, const char *vdev,
                      xcp_hv_error *err);
    /*
     * Ends a disk_pause: the back end opens the image at path (format as
     * in xcp_hv_disk), which may be a new file or have a new chain, and
     * serves the waiting requests from it. The guest then sees the
     * image's virtual size. -EINVAL if the disk is not paused; on failure
     * the disk stays paused (call again, with the old image).
     */
    int (*disk_reopen)(void *self, uint32_t domid, const char *vdev,
                       const char *path, const char *format,
                       xcp_hv_error *err);
    /*
     * Grows the image the back end of disk vdev has open to `bytes` of
     * virtual size (its own write of the image's metadata) and makes the
     * guest see it (xen: QEMU's block_resize; blkfront reads the new
     * "sectors"). -EINVAL for a size below the current one.
     */
    int (*disk_resize)(void *self, uint32_t domid, const char *vdev,
                       uint64_t bytes, xcp_hv_error *err);
    /*
     * Changed block tracking on the qcow2 image the back end of disk
     * vdev has open, done by that back end: on, it adds persistent dirty
     * bitmap `bitmap` (64 KiB granularity, stored in the image when the
     * back end closes it or flushes its bitmaps); off, it removes the
     * bitmap called `bitmap` and any called "<bitmap>:<suffix>".
     * -ENOTSUP for an image format with no bitmaps (raw, VHD).
     */
    int (*disk_cbt)(void *self, uint32_t domid, const char *vdev,
                    const char *bitmap, bool on, xcp_hv_error *err);
    /* The size in bytes the guest sees of disk vdev now. */
    int (*disk_size)(void *self, uint32_t domid, const char *vdev,
                     uint64_t *bytes, xcp_hv_error *err);

    /* ---- version 5 ---- */

    /*
     * The library's image operations (xcp_hv_image_ops), handed to the
     * instance once, right after open; ops lives as long as the
     * instance. A driver whose back ends do image I/O themselves
     * (QEMU) leaves this NULL.
     */
    void (*image_ops)(void *self, const xcp_hv_image_ops *ops);

    /*
     * Moves the writes of disk vdev onto overlay, an image (format as in
     * xcp_hv_disk, qcow2) that the caller made and whose backing file is
     * the image the back end has open now (the same file, under any
     * name), at one instant: what the guest wrote before is in the old
     * image, what it writes after goes to overlay, and the old image is
     * not written again. The back end then holds overlay's file, not its
     * name: the caller may rename it. It is how a snapshot of a running
     * guest's disk stays point-in-time when the back end cannot be
     * paused (xen: QEMU's blockdev-snapshot-sync onto an existing
     * image). -EINVAL if overlay's backing file is not the disk's image,
     * -ENODEV if the domain has no such disk, -ENOTSUP for a format or
     * disk the back end cannot do it for (a CD, raw, VHD); on failure the
     * back end goes on with its old image.
     */
    int (*disk_snapshot)(void *self, uint32_t domid, const char *vdev,
                         const char *overlay, const char *format,
                         xcp_hv_error *err);

    /* ---- version 6 ---- */

    /*
     * Leaf coalesce of a disk whose back end cannot be paused: the back
     * end copies into the image it writes what the images below it in
     * its chain show, down to (not including) the last `keep` images of
     * that chain (0: all of them), then records `backing` (the file of
     * the image it now stops at, named relative to its own image's
     * folder; "" with keep 0) as its image's backing file and reads none
     * of the images it copied from again. The guest goes on reading and
     * writing meanwhile (what it writes is never overwritten). Returns at
     * once, the copy running in the back end: 1 while it runs (*done of
     * *total bytes so far), 0 once it is over. A call while a copy of the
     * disk runs (one an earlier call, even of an earlier instance,
     * started) follows that copy and starts none; one when the chain
     * below is `keep` images deep already returns 0. A back end that
     * dies meanwhile leaves its image reading as before, its backing
     * file unchanged. -ENODEV if the domain has no such disk, -EINVAL if
     * its chain is fewer than `keep` images deep, -ENOTSUP for a format
     * or disk the back end cannot do it for (a CD, raw, VHD), -EIO when
     * the copy failed (the image reads as before). xen: QEMU's
     * block-stream job. While the copy runs the back end takes no other
     * change of the disk (disk_snapshot, disk_resize, disk_cbt: -EBUSY):
     * disk_stream_cancel first.
     */
    int (*disk_stream)(void *self, uint32_t domid, const char *vdev,
                       unsigned keep, const char *backing, uint64_t *done,
                       uint64_t *total, xcp_hv_error *err);

    /* ---- version 7 ---- */

    /*
     * Stops the copy disk_stream started on disk vdev (by any instance)
     * and returns once the back end has let go of it: the image reads as
     * before and keeps its backing file (what was copied stays, which
     * is harmless: it is what the chain below showed there), and the
     * disk takes changes again. 1 when a copy was stopped, 0 when none
     * ran (one over is forgotten too). -ENODEV if the domain has no such
     * disk. xen: QEMU's block-job-cancel, then the job waited for and
     * dismissed.
     */
    int (*disk_stream_cancel)(void *self, uint32_t domid, const char *vdev,
                              xcp_hv_error *err);

    /* ---- version 8 ---- */

    /*
     * One reading of the host's and every domain's counters, in one call
     * whatever the number of domains (the library samples every 5 s):
     * memory, physical CPU busy time, each domain's info and vCPU times,
     * and its disks' and NICs' counters (struct xcp_hv_stats). Counters
     * only; what to record, and how, is the library's. xen: xc_physinfo,
     * xc_getcpuinfo, xc_domain_getinfolist, xc_vcpu_getinfo, blkback's
     * sysfs statistics, the backend vifs' netdev statistics, /proc.
     */
    int (*stats)(void *self, xcp_hv_stats *out, xcp_hv_error *err);

    /* ---- version 9: live migration between hosts ---- */

    /*
     * The sending side of a live migration to another host: domain
     * domid's memory goes to fd (a connected stream socket the caller
     * owns, whose other end a domain_migrate_receive of the same driver
     * on the other host reads) in rounds while the guest runs, each round
     * sending what the guest dirtied during the one before, until what is
     * left is small (or the rounds stop shrinking); then the guest is
     * paused, the rest and the device state go, and the driver waits for
     * the receiver to say it has built the domain. Then the domain here is
     * gone and 0 is returned, *st filled (rounds, bytes, the downtime: how
     * long the guest was paused here until the receiver had it). On any
     * failure before that (the receiver refuses or vanishes, fd fails,
     * the caller shut fd down to cancel) the domain here runs on as it
     * was (a paused one stays paused) and the error says why. xen:
     * libxl_domain_suspend with LIBXL_SUSPEND_LIVE.
     */
    int (*domain_migrate_send)(void *self, uint32_t domid, int fd,
                               xcp_hv_migrate_stats *st, xcp_hv_error *err);
    /*
     * The receiving side: reads what domain_migrate_send wrote on fd and
     * builds the domain from it, fitting cfg as domain_restore does (the
     * same VM; a mismatch is refused, and the sender told so), always
     * paused: the caller unpauses it (if *was_running says the guest ran
     * on the sender) once the sender has returned, so the guest never runs
     * on two hosts. On failure no domain is left here. *domid: the new
     * domain. xen: libxl_domain_create_restore from the stream.
     */
    int (*domain_migrate_receive)(void *self, const xcp_hv_domain_config *cfg,
                                  int fd, uint32_t *domid, bool *was_running,
                                  xcp_hv_error *err);
} xcp_hv_driver;

#ifdef __cplusplus
}
#endif

#endif /* XCP_SYS_HV_H */
