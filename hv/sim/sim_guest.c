/*
 * hv/sim/sim_guest.c - what the simulated guests write to their disks,
 * through the library's image operations (xcp_hv_image_ops, handed to
 * the instance by the image_ops slot): the sim's back ends read and
 * write the images as the library does, without hv/ knowing sr/.
 *
 * A running guest writes one record per opt.guest_write_ns of its vCPU 0
 * time to each of its writable disks (none when 0): record n (1, 2, ...)
 * is XCP__SIM_RECORD_SIZE bytes that say n, the VM and the disk, at
 * xcp__sim_guest_record's offset, one of XCP__SIM_RECORD_SLOTS slots 64
 * KiB apart at the start of the disk, so that slot i holds the latest
 * record n with (n - 1) % slots == i. A record is acknowledged once it
 * is written and flushed and the count of them (struct disk.written) is
 * in the state log: any process that has the host open goes on from
 * there. Tests write and read what they want on demand
 * (xcp__sim_guest_write / _read, sim.h).
 *
 * Which process runs the guest: every process that has the simulated
 * host open and has the library's image operations (the embedded engine
 * of xe, xcpd) runs a writer thread, and the records due are written by
 * whichever of them holds the host's lock first (xcp__sim_enter: the
 * flock on the state log, and the instance's mutex), so that a record is
 * written once, in order, and never by two handles at once. A back end
 * keeps no image open between two writes: each batch opens the disk's
 * chain by its path, so a paused disk (disk_pause) holds no handle and
 * the records due meanwhile wait; they are written after disk_reopen,
 * to the chain it opened.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sim_int.h"

#define SLOT_STRIDE (64u * 1024)
#define BATCH 8        /* records at most per disk per pass */
#define IO_POLL_NS (5 * NS_PER_MS)
#define MIN_PERIOD_NS (10 * NS_PER_MS)

uint64_t xcp__sim_guest_record(uint64_t seq, const char *uuid,
                               const char *vdev,
                               unsigned char out[XCP__SIM_RECORD_SIZE])
{
    uint64_t x = mix64(seq ^ fnv1a(FNV_INIT, uuid, strlen(uuid)));
    int n;
    size_t i;

    n = snprintf((char *)out, XCP__SIM_RECORD_SIZE,
                 "xcp-sim-guest record %" PRIu64 " vm %s disk %s\n", seq,
                 uuid, vdev);
    for (i = n > 0 ? (size_t)n : 0; i < XCP__SIM_RECORD_SIZE; i++) {
        x = mix64(x + i);
        out[i] = (unsigned char)x;
    }
    return (uint64_t)((seq - 1) % XCP__SIM_RECORD_SLOTS) * SLOT_STRIDE;
}

/* A disk the guest writes records to. */
static bool guest_writes(const struct disk *k)
{
    return k->path && !k->cdrom && !k->ro && !k->paused;
}

/*
 * Opens the chain of disk k as its back end does, for writing or not:
 * -ENOTSUP without the library's image operations.
 */
static int back_end_open(struct sim *s, const struct disk *k, bool write,
                         xcp_hv_image **im, xcp_hv_error *err)
{
    if (!s->img)
        return xcp__hv_error_set(err, -ENOTSUP, "sim: %s: no image library "
                                 "was handed to the driver", k->path);
    return s->img->open(im, k->path, k->format, !write, err);
}

/* Closes im, keeping the first failure in rc. */
static int back_end_close(struct sim *s, xcp_hv_image *im, int rc,
                          xcp_hv_error *err)
{
    xcp_hv_error e;
    int c = s->img->close(im, rc < 0 ? &e : err);

    return rc < 0 ? rc : c;
}

/* Records first .. first + n - 1 of d on k, written and flushed. */
static int write_records(struct sim *s, const struct dom *d,
                         const struct disk *k, uint64_t first, uint64_t n,
                         xcp_hv_error *err)
{
    unsigned char rec[XCP__SIM_RECORD_SIZE];
    xcp_hv_image *im;
    uint64_t seq, off;
    int rc = back_end_open(s, k, true, &im, err);

    if (rc < 0)
        return rc;
    if (s->img->size(im) < (uint64_t)XCP__SIM_RECORD_SLOTS * SLOT_STRIDE)
        rc = xcp__hv_error_set(err, -ENOSPC, "sim: %s is too small for "
                               "the guest's records", k->path);
    for (seq = first; rc == 0 && seq < first + n; seq++) {
        off = xcp__sim_guest_record(seq, d->uuid, k->vdev, rec);
        rc = s->img->write(im, off, rec, sizeof(rec), err);
    }
    if (rc == 0)
        rc = s->img->flush(im, err);
    return back_end_close(s, im, rc, err);
}

/*
 * Writes the records due on the running guests' disks, a batch per disk;
 * false when the state changed under the loop (a failed commit reloads
 * it), which ends the pass.
 */
static bool write_due(struct sim *s, struct dom *d)
{
    xcp_hv_error err;
    uint64_t due, n;
    size_t i;

    if (d->state != XCP_HV_STATE_RUNNING || !d->vcpus_max)
        return true;
    due = d->vcpu_ns[0] / s->opt.guest_write_ns;
    for (i = 0; i < d->n_disks; i++) {
        struct disk *k = &d->disks[i];

        if (!guest_writes(k) || k->written >= due)
            continue;
        n = min_u64(due - k->written, BATCH);
        /* not written: due again at the next pass */
        if (xcp__sim_disk_follow(s, d->domid, k, &err) < 0 ||
            write_records(s, d, k, k->written + 1, n, &err) < 0)
            continue;
        k->written += n;
        if (xcp__sim_commit(s, d->domid, &err) < 0)
            return false;
    }
    return true;
}

static void guest_pass(struct sim *s)
{
    xcp_hv_error err;
    size_t i;

    if (xcp__sim_enter(s, &err) < 0)
        return;
    xcp__sim_settle_now(s);
    for (i = 0; i < s->n_doms && write_due(s, s->doms[i]); i++)
        ;
    xcp__sim_leave(s);
}

static void *guest_main(void *arg)
{
    struct sim *s = arg;
    uint64_t period = max_u64(s->opt.guest_write_ns, MIN_PERIOD_NS), t;
    struct timespec ts;

    pthread_mutex_lock(&s->mu);
    while (!s->guest_stop) {
        t = wall_ns() + period;
        ts.tv_sec = (time_t)(t / NS_PER_S);
        ts.tv_nsec = (long)(t % NS_PER_S);
        pthread_cond_timedwait(&s->guest_cond, &s->mu, &ts);
        if (s->guest_stop)
            break;
        pthread_mutex_unlock(&s->mu);
        guest_pass(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void xcp__sim_image_ops(void *self, const xcp_hv_image_ops *ops)
{
    struct sim *s = self;

    if (!ops || ops->version < 1)
        return;
    s->img = ops;
    if (s->opt.guest_write_ns && !s->guest_running)
        s->guest_running = pthread_create(&s->guest, NULL, guest_main,
                                          s) == 0;
}

void xcp__sim_guest_stop(struct sim *s)
{
    if (!s->guest_running)
        return;
    pthread_mutex_lock(&s->mu);
    s->guest_stop = true;
    pthread_cond_signal(&s->guest_cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->guest, NULL);
    s->guest_running = false;
}

/* ---- on demand (sim.h) --------------------------------------------------- */

/*
 * One read or write by the guest of domid on vdev: it waits while the
 * disk is paused (the host let go meanwhile), as a guest's request
 * stalls, then goes to the chain the back end has now.
 */
static int guest_io(struct sim *s, uint32_t domid, const char *vdev,
                    uint64_t offset, void *rbuf, const void *wbuf,
                    size_t len, int timeout_ms, xcp_hv_error *err)
{
    const char *what = wbuf ? "write to a disk of" : "read a disk of";
    uint64_t deadline = timeout_ms < 0 ? NEVER
                                       : wall_ns() + (uint64_t)timeout_ms *
                                                         NS_PER_MS;
    xcp_hv_image *im;
    struct disk *k;
    struct dom *d;
    int rc = xcp__sim_enter(s, err);

    if (rc < 0)
        return rc;
    for (;;) {
        rc = xcp__sim_live_disk(s, XCP_HV_OP__COUNT, domid, vdev, what, &d,
                                &k, err);
        if (rc < 0)
            break;
        if (wbuf && k->ro) {
            rc = xcp__hv_error_set(err, -EROFS, "sim: domain %" PRIu32
                                   ": disk %s is read-only", domid, vdev);
            break;
        }
        if (!k->paused)
            break;
        if (wall_ns() >= deadline) {
            rc = xcp__hv_error_set(err, -ETIMEDOUT, "sim: domain %" PRIu32
                                   ": disk %s stayed paused", domid, vdev);
            break;
        }
        if ((rc = xcp__sim_sleep_until(s, wall_ns() + IO_POLL_NS, err)) < 0)
            return rc;
    }
    if (rc == 0 && (rc = back_end_open(s, k, wbuf != NULL, &im, err)) == 0) {
        rc = wbuf ? s->img->write(im, offset, wbuf, len, err)
                  : s->img->read(im, offset, rbuf, len, err);
        if (rc == 0 && wbuf)
            rc = s->img->flush(im, err);
        rc = back_end_close(s, im, rc, err);
    }
    xcp__sim_leave(s);
    return rc;
}

int xcp__sim_guest_write(void *self, uint32_t domid, const char *vdev,
                         uint64_t offset, const void *buf, size_t len,
                         int timeout_ms, xcp_hv_error *err)
{
    return guest_io(self, domid, vdev, offset, NULL, buf, len, timeout_ms,
                    err);
}

int xcp__sim_guest_read(void *self, uint32_t domid, const char *vdev,
                        uint64_t offset, void *buf, size_t len,
                        int timeout_ms, xcp_hv_error *err)
{
    return guest_io(self, domid, vdev, offset, buf, NULL, len, timeout_ms,
                    err);
}

int xcp__sim_disk_u64(void *self, uint32_t domid, const char *vdev,
                      size_t field, const char *what, uint64_t *out,
                      xcp_hv_error *err)
{
    struct sim *s = self;
    struct disk *k;
    struct dom *d;
    int rc = xcp__sim_enter(s, err);

    if (rc < 0)
        return rc;
    rc = xcp__sim_live_disk(s, XCP_HV_OP__COUNT, domid, vdev, what, &d, &k,
                            err);
    if (rc == 0)
        memcpy(out, (const char *)k + field, sizeof *out);
    xcp__sim_leave(s);
    return rc;
}

int xcp__sim_guest_written(void *self, uint32_t domid, const char *vdev,
                           uint64_t *n, xcp_hv_error *err)
{
    return xcp__sim_disk_u64(self, domid, vdev,
                             offsetof(struct disk, written),
                             "read the records of", n, err);
}
