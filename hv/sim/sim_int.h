/*
 * hv/sim/sim_int.h - what the files of the sim driver share: the model's
 * structures and constants, and the functions one file offers another.
 * Private to hv/sim/ (sim.h is the interface for tests and embedders).
 */
#ifndef XCP_HV_SIM_INT_H
#define XCP_HV_SIM_INT_H

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv_internal.h"
#include "sim.h"

#define SIM_SUBDIR "sim"
#define STATE_NAME "state"
#define LOG_NAME "log"
#define STATE_MAGIC "xcp-sim-state"
#define IMAGE_MAGIC "xcp-sim-image"
#define FORMAT_VERSION 1

#define PAGE ((uint64_t)XCP_HV_PAGE_SIZE)
#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
#define NEVER UINT64_MAX

#define DOMID_LIMIT 0x7ff0u /* Xen's DOMID_FIRST_RESERVED */
#define PV_MAX_VCPUS 512
#define HVM_MAX_VCPUS 128
#define MIN_TARGET (16 * MiB)
#define DOM0_UUID "00000000-0000-0000-0000-000000000000"
#define DOM0_LOAD_PERMILLE 20
#define PAGES_PER_DIGEST 256 /* one digest per MiB */
#define MAX_IMAGE_SIZE (64 * MiB)

struct disk {
    char *path, *format, *vdev;
    bool ro, cdrom;
    /* The back end (sim_live.c): stopped by disk_pause, its image closed;
     * the virtual size the guest sees, read when it opened the image. */
    bool paused;
    uint64_t size;
    /* disk_cbt: the back end switched tracking on (in the image, through
     * the library's image operations) */
    bool cbt;
    /* The guest's records on it acknowledged so far (sim_guest.c). */
    uint64_t written;
    /* The file the back end holds, when it holds it whatever its name
     * (disk_snapshot: as QEMU keeps the overlay's descriptor, which the
     * library then renames): path is followed to it (sim_live.c); 0
     * when the back end opens path by its name. */
    uint64_t dev, ino;
    /* A copy of disk_stream under way (sim_live.c), as QEMU's
     * block-stream job: started at stream_start (sim clock, ns; 0:
     * none), over opt.stream_ns later (the host's pace, as the instance
     * that follows it sees it), when the chain is streamed into the
     * image, keeping stream_keep images, the last one stream_backing. */
    uint64_t stream_start;
    unsigned stream_keep;
    char stream_backing[256];
    /* The instant of its last disk_snapshot in the guest's time (its
     * vCPU 0's running time, which stands still while it is paused):
     * tests see whether a VM's disks moved at one instant. 0: never. */
    uint64_t switch_vcpu_ns;
};

struct nic {
    uint8_t mac[6];
    char *bridge;
    uint32_t devid, mtu;
};

struct kv {
    char *key, *value;
};

struct dom {
    uint32_t domid;
    char uuid[XCP_HV_UUID_LEN];
    char name[XCP_HV_NAME_MAX];
    xcp_hv_domain_type type;
    xcp_hv_domain_state state;
    xcp_hv_shutdown_reason reason;
    uint64_t max_pages, target_pages, actual_pages, overhead_pages;
    /* ballooning progress not yet worth a whole page, in byte-ns units
     * (bytes * 1e9): keeps frequent settling from starving the balloon */
    uint64_t balloon_carry;
    uint32_t vcpus_max, vcpus_online;
    uint64_t *vcpu_ns;
    int64_t start_ns;
    xcp_hv_shutdown_reason request; /* pending request, NONE if none */
    uint64_t ack_left_ns;           /* running time until the guest acks */
    bool hung;
    char *kernel, *ramdisk, *cmdline, *bootloader;
    struct disk *disks;
    size_t n_disks;
    struct nic *nics;
    size_t n_nics;
    struct kv *platform;
    size_t n_platform;
    char *guest_os; /* what the guest agent reports as its OS, or NULL */
};

struct sim {
    char *dir, *path, *log_path; /* path: the snapshot (sim_state.c) */
    struct xcp__sim_options opt;
    uint64_t host_pages, xen_pages, dom0_pages;
    uint32_t dom0_vcpus;
    /* persisted */
    uint32_t next_domid;
    uint64_t clock; /* the time the model is settled to */
    uint64_t boot;  /* when this simulated host first came up */
    struct dom **doms; /* by increasing domid */
    size_t n_doms;
    /* this instance only */
    struct {
        int error;
        unsigned count;
    } fail[XCP_HV_OP__COUNT];
    bool hang_all;
    int tfd;
    xcp__hv_dirty dirty; /* for event_read */
    uint64_t *busy, *busy_prev; /* per physical CPU, ns */
    uint64_t usage_prev_clock;
    /* the state log (sim_state.c) */
    int log_fd;
    uint64_t log_gen;        /* the generation the snapshot names */
    size_t log_len, snap_len; /* bytes */
    bool log_stale;          /* must be started afresh before appending */
    bool loaded;             /* the state was loaded once (xcp__sim_enter) */
    struct xcp__sim_consoles *consoles; /* open consoles (sim_console.c) */
    /* The guests' disk I/O (sim_guest.c): the library's image operations
     * (NULL: the guests write nothing), and the thread that writes their
     * records, which shares the instance with the slots through mu (held
     * between xcp__sim_enter and xcp__sim_leave). */
    const xcp_hv_image_ops *img;
    pthread_mutex_t mu;
    pthread_cond_t guest_cond;
    pthread_t guest;
    bool guest_running, guest_stop;
};

/* Growable text buffer; a failed allocation is remembered, not fatal. */
struct buf {
    char *p;
    size_t len, cap;
    bool failed;
};

/* The modelled guest agent (sim_agent.c): it runs once vCPU 0 has had
 * opt.agent_delay_ns of CPU time. */
bool xcp__sim_agent_running(const struct sim *s, const struct dom *d);
/* Wall time until it does, given each running vCPU's share: NEVER if it
 * already runs or the domain is not running. */
uint64_t xcp__sim_agent_time(const struct sim *s, const struct dom *d,
                             uint32_t running_vcpus);
int xcp__sim_guest_data(void *self, uint32_t domid, xcp_hv_guest_datum **out,
                        size_t *n, xcp_hv_error *err);

/* ---- small helpers ------------------------------------------------------- */

static inline uint64_t div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* a * b / c without overflow (c != 0), saturating. */
static inline uint64_t muldiv(uint64_t a, uint64_t b, uint64_t c)
{
    unsigned __int128 r = (unsigned __int128)a * b / c;

    return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

static inline uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static inline char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Duplicates s into *out; false on allocation failure. NULL stays NULL. */
static inline bool dup_into(char **out, const char *s)
{
    *out = xstrdup(s);
    return *out || !s;
}

static inline int oom(xcp_hv_error *err)
{
    return xcp__hv_error_set(err, -ENOMEM, "sim: out of memory");
}

static inline uint64_t wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}


/* ---- sim_util.c: buffers, tokens, numbers, files ------------------------- */

/* Appends len bytes to b (kept NUL-terminated). */
void xcp__sim_buf_add(struct buf *b, const void *data, size_t len);

/* Appends printf-formatted text to b. */
void xcp__sim_buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Appends " " and s as one space-free token: "-" for NULL, else "="
 * followed by s with %, controls, space and DEL as %XX.
 */
void xcp__sim_buf_str(struct buf *b, const char *s);

/* Inverse of xcp__sim_buf_str: 0, or -1 if malformed; *out NULL for "-". */
int xcp__sim_token_str(const char *tok, char **out);

/* Decimal numbers, the whole string; false if malformed or too large. */
bool xcp__sim_parse_u64(const char *s, uint64_t *out);
bool xcp__sim_parse_u32(const char *s, uint32_t *out);

/* True if u is a uuid in its 36-character text form. */
bool xcp__sim_uuid_valid(const char *u);

#define MAX_TOKENS 12 /* a disk: 12 */

/*
 * Splits a line in place into at most MAX_TOKENS space-separated tokens:
 * their count, or -1 if there are more.
 */
int xcp__sim_tokenize(char *line, char **tok);

/* Writes all of data to fd (retrying short writes): 0 or -errno. */
int xcp__sim_write_all(int fd, const void *data, size_t len);

/*
 * Replaces path with data (temp file, fsync, rename, fsync of the
 * directory) so that a reader sees the old or the new file; `what` names
 * the file in errors.
 */
int xcp__sim_write_atomic(const char *path, const void *data, size_t len,
                          const char *what, xcp_hv_error *err);

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
int xcp__sim_read_all(const char *path, size_t max, char **out, size_t *len,
                      const char *what, xcp_hv_error *err);

/* ---- sim.c: domains, the clock, lifecycle -------------------------------- */

/* Frees a domain and everything it owns; NULL is fine. */
void xcp__sim_dom_free(struct dom *d);

/* The domain with that id, or NULL (dom0 is not a struct dom). */
struct dom *xcp__sim_dom_find(const struct sim *s, uint32_t domid);

/* Adds d (its domid above all others); false if out of memory. */
bool xcp__sim_dom_append(struct sim *s, struct dom *d);

/* Unlinks d from s and frees it. */
void xcp__sim_dom_remove(struct sim *s, struct dom *d);

/* Frees every domain of s. */
void xcp__sim_doms_clear(struct sim *s);

/* Notes that domid changed: queued for event_read, shown on its consoles. */
void xcp__sim_mark_dirty(struct sim *s, uint32_t domid);

/* Brings the model to time `to` (no earlier than s->clock), event by event. */
void xcp__sim_settle(struct sim *s, uint64_t to);

/* The wall clock, but never before what the model has already seen. */
uint64_t xcp__sim_now(const struct sim *s);

/* xcp__sim_settle to xcp__sim_now. */
void xcp__sim_settle_now(struct sim *s);

/* Arms the timerfd for the next change the caller should hear about. */
void xcp__sim_rearm(struct sim *s);

/*
 * Sleeps until the wall clock reaches t (ns), leaving the host to the other
 * processes meanwhile (see xcp__sim_enter): the caller settles and looks
 * its domain up again after. Fails only if catching up does.
 */
int xcp__sim_sleep_until(struct sim *s, uint64_t t, xcp_hv_error *err);

/* 0, or the injected failure of op (consuming one of its count); 0 for
 * XCP_HV_OP__COUNT (no slot's operation: a test hook's). */
int xcp__sim_check_fault(struct sim *s, xcp_hv_op op, xcp_hv_error *err);

/*
 * Looks up a domain for an operation described by `what`: -EPERM for dom0,
 * -ESRCH if there is none.
 */
int xcp__sim_get_dom(struct sim *s, uint32_t domid, const char *what,
                     struct dom **out, xcp_hv_error *err);

/* -EINVAL, naming why, if d has shut down. */
int xcp__sim_need_live(const struct dom *d, const char *what,
                       xcp_hv_error *err);

/*
 * The prologue of a slot acting on a live domain: the injected fault of op,
 * the model settled to now, then xcp__sim_get_dom and xcp__sim_need_live.
 */
int xcp__sim_live_dom(struct sim *s, xcp_hv_op op, uint32_t domid,
                      const char *what, struct dom **d, xcp_hv_error *err);

/*
 * Checks a config as libxl would before building, and turns it into a
 * (not yet registered) domain. Memory fit is checked by xcp__sim_check_fit.
 */
int xcp__sim_dom_from_config(struct sim *s, const xcp_hv_domain_config *c,
                             struct dom **out, xcp_hv_error *err);

/* -ENOMEM, with the amounts, if d does not fit in free memory. */
int xcp__sim_check_fit(struct sim *s, const struct dom *d, xcp_hv_error *err);

/* Gives d the next domid, makes it live and durable; takes d. */
int xcp__sim_dom_start(struct sim *s, struct dom *d, bool paused,
                       uint32_t *domid, xcp_hv_error *err);

/* ---- sim_dev.c: devices -------------------------------------------------- */

/* A file a domain will use (kernel, disk image) must exist, not a dir. */
int xcp__sim_need_file(const char *uuid, const char *what, const char *path,
                       xcp_hv_error *err);

/* -ENODEV unless a bridge named `bridge` can be had (bridge_ensure). */
int xcp__sim_check_bridge(const char *bridge, xcp_hv_error *err);
/* Checks a disk or a NIC as the backends would (uuid names the VM). */
int xcp__sim_check_disk(const char *uuid, const xcp_hv_disk *k,
                        xcp_hv_error *err);
int xcp__sim_check_nic(const char *uuid, const xcp_hv_nic *n,
                       xcp_hv_error *err);

/* -EEXIST if the disk's vdev, or the NIC's devid or MAC, is taken. */
int xcp__sim_disk_clash(const char *uuid, const struct disk *have, size_t n,
                        const char *vdev, xcp_hv_error *err);
int xcp__sim_nic_clash(const char *uuid, const struct nic *have, size_t n,
                       const xcp_hv_nic *nic, xcp_hv_error *err);

/* Copies a device into the model (defaults filled); false if OOM. */
bool xcp__sim_disk_copy(struct disk *k, const xcp_hv_disk *src);
bool xcp__sim_nic_copy(struct nic *k, const xcp_hv_nic *src);

/* ---- sim_live.c: the disks of running domains ------------------------------ */

/* The virtual size of the image at path in format ("raw", "qcow2", "vhd")
 * read from its header (footer): what a sim without the library's image
 * operations sees (its own unit tests; disk_plug's first guess). */
int xcp__sim_image_size(const char *path, const char *format, uint64_t *out,
                        xcp_hv_error *err);
/* Slots disk_pause, disk_reopen, disk_size (xcp/sys/hv.h). */
int xcp__sim_disk_pause(void *self, uint32_t domid, const char *vdev,
                        xcp_hv_error *err);
int xcp__sim_disk_reopen(void *self, uint32_t domid, const char *vdev,
                         const char *path, const char *format,
                         xcp_hv_error *err);
int xcp__sim_disk_size(void *self, uint32_t domid, const char *vdev,
                       uint64_t *bytes, xcp_hv_error *err);
/* Slots disk_resize and disk_cbt: the back end's own change of the image,
 * through the library's image operations (-ENOTSUP without them). */
int xcp__sim_disk_resize(void *self, uint32_t domid, const char *vdev,
                         uint64_t bytes, xcp_hv_error *err);
int xcp__sim_disk_cbt(void *self, uint32_t domid, const char *vdev,
                      const char *bitmap, bool on, xcp_hv_error *err);
/*
 * The live domain's disk vdev that has a back end (no CD), for operation
 * op (its injected fault; XCP_HV_OP__COUNT: none): -ENODEV if there is
 * no such disk, -ENOTSUP for a CD drive.
 */
int xcp__sim_live_disk(struct sim *s, xcp_hv_op op, uint32_t domid,
                       const char *vdev, const char *what, struct dom **d,
                       struct disk **k, xcp_hv_error *err);
/* One uint64_t field (offsetof in struct disk) of disk vdev of live domain
 * domid, read under the sim's lock; `what` names the read in errors. */
int xcp__sim_disk_u64(void *self, uint32_t domid, const char *vdev,
                      size_t field, const char *what, uint64_t *out,
                      xcp_hv_error *err);
/* Slot disk_snapshot (qcow2, as QEMU): the back end holds overlay now. */
int xcp__sim_disk_snapshot(void *self, uint32_t domid, const char *vdev,
                           const char *overlay, const char *format,
                           xcp_hv_error *err);
/* Slot disk_stream (qcow2, as QEMU's block-stream), through the library's
 * image operations (version 2): at once, or over opt.stream_ns (the copy
 * then runs as a job the disk's other changes wait for: -EBUSY). */
int xcp__sim_disk_stream(void *self, uint32_t domid, const char *vdev,
                         unsigned keep, const char *backing, uint64_t *done,
                         uint64_t *total, xcp_hv_error *err);
/* Slot disk_stream_cancel: the copy under way forgotten (the image was
 * not written yet: the sim copies at the end). */
int xcp__sim_disk_stream_cancel(void *self, uint32_t domid, const char *vdev,
                                xcp_hv_error *err);
/* The name of the file disk k of domain domid's back end holds (k->ino)
 * now, into k->path: the caller may have renamed it within its folder.
 * -ENOENT when it is gone. */
int xcp__sim_disk_follow(struct sim *s, uint32_t domid, struct disk *k,
                         xcp_hv_error *err);
/* The disk of d called vdev, or NULL. */
struct disk *xcp__sim_disk_find(struct dom *d, const char *vdev);

/* The driver's device slots (xcp/sys/hv.h). */
int xcp__sim_disk_plug(void *self, uint32_t domid, const xcp_hv_disk *disk,
                       xcp_hv_error *err);
int xcp__sim_disk_unplug(void *self, uint32_t domid, const char *vdev,
                         bool force, xcp_hv_error *err);
int xcp__sim_cdrom_insert(void *self, uint32_t domid, const char *vdev,
                          const char *path, const char *format,
                          xcp_hv_error *err);
int xcp__sim_nic_plug(void *self, uint32_t domid, const xcp_hv_nic *nic,
                      xcp_hv_error *err);
int xcp__sim_nic_unplug(void *self, uint32_t domid, uint32_t devid, bool force,
                        xcp_hv_error *err);

/* ---- sim_guest.c: what the guests write to their disks ------------------ */

/* The driver's image_ops slot: the library's image I/O; starts the
 * guests' writer thread when opt.guest_write_ns asks for records. */
void xcp__sim_image_ops(void *self, const xcp_hv_image_ops *ops);
/* Stops that thread (the instance closes); nothing if none runs. */
void xcp__sim_guest_stop(struct sim *s);

/* ---- sim_suspend.c: suspend images --------------------------------------- */

/* The driver's domain_suspend and domain_restore slots (xcp/sys/hv.h). */
int xcp__sim_domain_suspend(void *self, uint32_t domid, const char *image_path,
                            xcp_hv_error *err);
int xcp__sim_domain_restore(void *self, const xcp_hv_domain_config *cfg,
                            const char *image_path, bool paused,
                            uint32_t *domid, xcp_hv_error *err);

/* What a suspend image says of its domain. */
struct xcp__sim_image {
    char uuid[XCP_HV_UUID_LEN];
    xcp_hv_domain_type type;
    uint64_t max_pages, pages;
    uint32_t vcpus_max, vcpus_online;
};
/* Appends domain d's image (what domain_suspend writes) to b. */
int xcp__sim_image_build(const struct dom *d, struct buf *b,
                         xcp_hv_error *err);
/* Parses and verifies an image in full (data: len bytes then a NUL; it is
 * changed): 0, or -EBADMSG naming `path` (a file, or where it came from). */
int xcp__sim_image_parse(char *data, size_t len, const char *path,
                         struct xcp__sim_image *img, xcp_hv_error *err);

/* ---- sim_migrate.c: live migration between hosts ------------------------- */

/* The driver's domain_migrate_send and domain_migrate_receive slots. */
int xcp__sim_migrate_send(void *self, uint32_t domid, int fd,
                          xcp_hv_migrate_stats *st, xcp_hv_error *err);
int xcp__sim_migrate_receive(void *self, const xcp_hv_domain_config *cfg,
                             int fd, uint32_t *domid, bool *was_running,
                             xcp_hv_error *err);

/* ---- sim_state.c: the persistent state ----------------------------------- */

/*
 * Loads s's state from its directory: the snapshot, then the log replayed
 * over it; creates a new host if there is none. Opens the log (s->log_fd)
 * for the commits to come.
 */
int xcp__sim_state_load(struct sim *s, xcp_hv_error *err);

/*
 * Makes the change just done to domain domid (now there, or gone) durable
 * before the operation returns: one record appended to the log, whose
 * cost is that of the change, not of the host. If the write fails, the
 * change is undone by reloading the last durable state, so that memory and
 * disk never disagree about which domains exist.
 */
int xcp__sim_commit(struct sim *s, uint32_t domid, xcp_hv_error *err);

/*
 * xcp__sim_commit of one change to the n (1 or 2) domains domids, as one
 * record: a restart finds all of it or none (a migration's new domain and
 * the old one's end).
 */
int xcp__sim_commit_many(struct sim *s, const uint32_t *domids, size_t n,
                         xcp_hv_error *err);

/*
 * One simulated host may be open in several processes at once, as a Xen
 * host is driven by several toolstack processes (the driver contract suite
 * in parallel). Each slot runs between xcp__sim_enter, which takes an
 * exclusive lock on the state log (flock) and catches up with what the
 * others did meanwhile (their records replayed, their domains marked
 * changed; everything reloaded if one of them folded the log into a new
 * snapshot), and xcp__sim_leave, which rearms the event timer and lets go.
 * Within the process, the pair holds s->mu too (the guests' writer thread
 * is the instance's other user).
 */
int xcp__sim_enter(struct sim *s, xcp_hv_error *err);
void xcp__sim_leave(struct sim *s);

/* ---- sim_console.c: consoles -------------------------------------------- */

/* The driver's console_open slot (xcp/sys/hv.h). */
int xcp__sim_console_open(void *self, uint32_t domid,
                          xcp_hv_console_protocol proto, int *fd,
                          xcp_hv_error *err);

/* Domain domid changed (xcp__sim_mark_dirty): its consoles show it. */
void xcp__sim_console_changed(struct sim *s, uint32_t domid);

/* Ends every open console (the instance closes). */
void xcp__sim_consoles_free(struct sim *s);

#endif /* XCP_HV_SIM_INT_H */
