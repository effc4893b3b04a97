/*
 * hv/sim/sim_migrate.c - live migration between simulated hosts (the
 * domain_migrate_send and domain_migrate_receive slots).
 *
 * The model, as Xen's pre-copy migration behaves: round 1 sends all the
 * guest's memory while it runs; each later round sends what the guest
 * dirtied during the one before (opt.migrate_dirty bytes per second per
 * online vCPU of a running guest; a paused guest dirties nothing), at
 * opt.migrate_bandwidth bytes per second, until what is left would take
 * under TARGET_DOWNTIME_NS, or the rounds stop shrinking (a guest that
 * dirties faster than the link), or MAX_ROUNDS rounds; then the guest is
 * paused, the rest goes with the device state (the suspend image), and
 * the receiver builds the domain, paused, and says "ready". Only then is
 * the domain gone here. Each round takes its modelled time for real, so a
 * caller sees a migration take as long as the model says (and can cancel
 * it midway by shutting fd down).
 *
 * The stream (this driver's own, both ends are this driver):
 *   "xcp-sim-migrate 1 <uuid> <pages>\n"
 *   per round: "round <n> <pages sent>\n" then 8 bytes per MiB sent (the
 *              pages' digests, as the suspend image carries them)
 *   "final <n> <pages> <was running 0|1> <image bytes>\n", that round's
 *              digests, then the suspend image (sim_suspend.c)
 * and back from the receiver one line: "ready\n" or "error <why>\n".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sim_int.h"

#define MIGRATE_MAGIC "xcp-sim-migrate"
#define MAX_ROUNDS 5
#define TARGET_DOWNTIME_NS (50 * NS_PER_MS)
#define LINE_MAX_LEN 512

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void nap_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S)};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int put(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        /* no SIGPIPE when the other end went (a cancel): EPIPE */
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

        if (w < 0 && errno == ENOTSOCK)
            w = write(fd, c, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EPIPE;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int get(int fd, void *p, size_t n)
{
    char *c = p;

    while (n > 0) {
        ssize_t r = read(fd, c, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -ECONNRESET;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* One line (without its newline) into buf: 0, or -errno / -EPROTO. */
static int get_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    int rc;

    for (;;) {
        if (n + 1 >= cap)
            return -EPROTO;
        if ((rc = get(fd, buf + n, 1)) < 0)
            return rc;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return 0;
}

/* The digests of `pages` pages of round `round` of VM uuid, sent. */
static int put_digests(int fd, const char *uuid, uint32_t round,
                       uint64_t pages)
{
    unsigned char chunk[4096];
    uint64_t k = div_up(pages, PAGES_PER_DIGEST), i, seed;
    size_t fill = 0;
    int rc;

    seed = fnv1a(FNV_INIT, uuid, strlen(uuid)) ^ mix64(round);
    for (i = 0; i < k; i++) {
        uint64_t v = mix64(seed ^ (i + 1));
        int b;

        for (b = 0; b < 8; b++)
            chunk[fill++] = (unsigned char)(v >> (8 * b));
        if (fill == sizeof(chunk) || i + 1 == k) {
            if ((rc = put(fd, chunk, fill)) < 0)
                return rc;
            fill = 0;
        }
    }
    return 0;
}

/* Reads and checks them: -EBADMSG when one is not what was sent. */
static int get_digests(int fd, const char *uuid, uint32_t round,
                       uint64_t pages)
{
    unsigned char chunk[4096];
    uint64_t k = div_up(pages, PAGES_PER_DIGEST), i = 0, seed;
    int rc;

    seed = fnv1a(FNV_INIT, uuid, strlen(uuid)) ^ mix64(round);
    while (i < k) {
        size_t n = (size_t)min_u64(sizeof(chunk) / 8, k - i), j;

        if ((rc = get(fd, chunk, n * 8)) < 0)
            return rc;
        for (j = 0; j < n; j++, i++) {
            uint64_t v = 0;
            int b;

            for (b = 7; b >= 0; b--)
                v = v << 8 | chunk[8 * j + (size_t)b];
            if (v != mix64(seed ^ (i + 1)))
                return -EBADMSG;
        }
    }
    return 0;
}

static const char *why_io(int rc)
{
    return rc == -EPROTO ? "a malformed line" : strerror(-rc);
}

/* ---- sending ----------------------------------------------------------- */

/* Back to where it was: the guest runs on if it ran. Under the lock. */
static void resume_here(struct sim *s, uint32_t domid, bool was_running)
{
    struct dom *d = xcp__sim_dom_find(s, domid);
    xcp_hv_error ignored;

    if (!d || d->state != XCP_HV_STATE_PAUSED || !was_running)
        return;
    d->state = XCP_HV_STATE_RUNNING;
    xcp__sim_mark_dirty(s, domid);
    (void)xcp__sim_commit(s, domid, &ignored);
}

int xcp__sim_migrate_send(void *self, uint32_t domid, int fd,
                          xcp_hv_migrate_stats *st, xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    struct buf img = {0};
    char uuid[XCP_HV_UUID_LEN], line[LINE_MAX_LEN];
    uint64_t t0 = mono_ns(), pages, to_send, dirty_per_s, bw, paused_at;
    uint32_t round = 0;
    bool was_running, paused = false;
    int rc = xcp__sim_enter(s, err);

    if (rc < 0)
        return rc;
    rc = xcp__sim_live_dom(s, XCP_HV_OP_DOMAIN_MIGRATE_SEND, domid,
                           "migrate", &d, err);
    if (rc == 0 && (d->hung || s->hang_all))
        rc = xcp__hv_error_set(err, -ETIMEDOUT,
                               "sim: domain %" PRIu32 " (VM %s) did not "
                               "acknowledge the suspend request of its "
                               "migration (the guest is hung)", domid,
                               d->uuid);
    if (rc < 0) {
        xcp__sim_leave(s);
        return rc;
    }
    memcpy(uuid, d->uuid, sizeof(uuid));
    pages = d->actual_pages;
    was_running = d->state == XCP_HV_STATE_RUNNING;
    dirty_per_s = was_running ? s->opt.migrate_dirty * d->vcpus_online : 0;
    bw = s->opt.migrate_bandwidth ? s->opt.migrate_bandwidth : 4 * GiB;
    xcp__sim_leave(s);

    snprintf(line, sizeof(line), "%s 1 %s %" PRIu64 "\n", MIGRATE_MAGIC,
             uuid, pages);
    if ((rc = put(fd, line, strlen(line))) < 0)
        goto io;
    /* the live rounds: the guest runs on meanwhile */
    to_send = pages;
    for (;;) {
        uint64_t ns = muldiv(to_send * PAGE, NS_PER_S, bw), dirty;

        round++;
        snprintf(line, sizeof(line), "round %" PRIu32 " %" PRIu64 "\n",
                 round, to_send);
        if ((rc = put(fd, line, strlen(line))) < 0 ||
            (rc = put_digests(fd, uuid, round, to_send)) < 0)
            goto io;
        nap_ns(ns);
        st->bytes += to_send * PAGE;
        dirty = min_u64(pages, muldiv(dirty_per_s, ns, NS_PER_S) / PAGE);
        if (muldiv(dirty * PAGE, NS_PER_S, bw) <= TARGET_DOWNTIME_NS ||
            dirty >= to_send || round + 1 >= MAX_ROUNDS) {
            to_send = dirty;
            break;
        }
        to_send = dirty;
    }
    /* the last round, paused, with the device state */
    if ((rc = xcp__sim_enter(s, err)) < 0)
        return rc;
    rc = xcp__sim_live_dom(s, XCP_HV_OP__COUNT, domid, "migrate", &d, err);
    if (rc == 0 && strcmp(d->uuid, uuid) != 0)
        rc = xcp__hv_error_set(err, -ESRCH, "sim: domain %" PRIu32
                               " went away during its migration", domid);
    if (rc == 0 && d->state == XCP_HV_STATE_RUNNING) {
        d->state = XCP_HV_STATE_PAUSED;
        paused = true;
        xcp__sim_mark_dirty(s, domid);
        rc = xcp__sim_commit(s, domid, err);
    }
    paused_at = mono_ns();
    if (rc == 0)
        rc = xcp__sim_image_build(d, &img, err);
    xcp__sim_leave(s);
    if (rc < 0)
        goto back;
    round++;
    snprintf(line, sizeof(line),
             "final %" PRIu32 " %" PRIu64 " %d %zu\n", round, to_send,
             was_running ? 1 : 0, img.len);
    if ((rc = put(fd, line, strlen(line))) < 0 ||
        (rc = put_digests(fd, uuid, round, to_send)) < 0 ||
        (rc = put(fd, img.p, img.len)) < 0)
        goto io_back;
    nap_ns(muldiv(to_send * PAGE, NS_PER_S, bw));
    st->bytes += to_send * PAGE;
    if ((rc = get_line(fd, line, sizeof(line))) < 0)
        goto io_back;
    if (strcmp(line, "ready") != 0) {
        rc = xcp__hv_error_set(err, -ECONNABORTED,
                               "sim: the receiving host did not take VM %s: "
                               "%.300s", uuid,
                               strncmp(line, "error ", 6) ? line : line + 6);
        goto back;
    }
    /* the receiver holds it: gone from here */
    if ((rc = xcp__sim_enter(s, err)) < 0)
        goto out;
    if ((d = xcp__sim_dom_find(s, domid))) {
        xcp__sim_dom_remove(s, d);
        xcp__sim_mark_dirty(s, domid);
        rc = xcp__sim_commit(s, domid, err);
    }
    xcp__sim_leave(s);
    st->rounds = round;
    st->downtime_ns = mono_ns() - paused_at;
    st->total_ns = mono_ns() - t0;
    goto out;
io:
    rc = xcp__hv_error_set(err, rc, "sim: migrating VM %s: the stream to "
                           "the receiving host failed in round %" PRIu32
                           ": %s", uuid, round, why_io(rc));
    goto out;
io_back:
    rc = xcp__hv_error_set(err, rc, "sim: migrating VM %s: the stream to "
                           "the receiving host failed in the last round: "
                           "%s", uuid, why_io(rc));
back:
    if (xcp__sim_enter(s, &(xcp_hv_error){0}) == 0) {
        resume_here(s, domid, paused && was_running);
        xcp__sim_leave(s);
    }
out:
    free(img.p);
    return rc;
}

/* ---- receiving --------------------------------------------------------- */

int xcp__sim_migrate_receive(void *self, const xcp_hv_domain_config *cfg,
                             int fd, uint32_t *domid, bool *was_running,
                             xcp_hv_error *err)
{
    struct sim *s = self;
    struct xcp__sim_image img;
    struct dom *d = NULL;
    char line[LINE_MAX_LEN], uuid[XCP_HV_UUID_LEN] = "", *data = NULL;
    char magic[32];
    uint64_t pages = 0, n;
    uint32_t round = 0, r;
    int running = 0, rc = 0;
    size_t len = 0;
    bool started = false;

    if ((rc = xcp__sim_enter(s, err)) < 0)
        return rc;
    rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_MIGRATE_RECEIVE, err);
    xcp__sim_leave(s);
    if (rc < 0)
        goto refuse;
    if ((rc = get_line(fd, line, sizeof(line))) < 0)
        goto io;
    if (sscanf(line, "%31s 1 %36s %" SCNu64, magic, uuid, &pages) != 3 ||
        strcmp(magic, MIGRATE_MAGIC) != 0 || !xcp__sim_uuid_valid(uuid)) {
        rc = xcp__hv_error_set(err, -EPROTO, "sim: not a sim migration "
                               "stream: '%.80s'", line);
        goto refuse;
    }
    for (;;) {
        if ((rc = get_line(fd, line, sizeof(line))) < 0)
            goto io;
        if (sscanf(line, "round %" SCNu32 " %" SCNu64, &r, &n) == 2 &&
            r == round + 1 && n <= pages) {
            round = r;
            if ((rc = get_digests(fd, uuid, round, n)) < 0)
                goto io;
            continue;
        }
        if (sscanf(line, "final %" SCNu32 " %" SCNu64 " %d %zu", &r, &n,
                   &running, &len) == 4 && r == round + 1 && n <= pages &&
            (running == 0 || running == 1) && len > 0 &&
            len <= MAX_IMAGE_SIZE) {
            round = r;
            break;
        }
        rc = xcp__hv_error_set(err, -EPROTO, "sim: migration of VM %s: "
                               "unexpected '%.80s' after round %" PRIu32,
                               uuid, line, round);
        goto refuse;
    }
    if ((rc = get_digests(fd, uuid, round, n)) < 0)
        goto io;
    if (!(data = malloc(len + 1))) {
        rc = oom(err);
        goto refuse;
    }
    if ((rc = get(fd, data, len)) < 0)
        goto io;
    data[len] = '\0';
    snprintf(line, sizeof(line), "the migration stream of VM %s", uuid);
    if ((rc = xcp__sim_image_parse(data, len, line, &img, err)) < 0)
        goto refuse;
    if ((rc = xcp__sim_enter(s, err)) < 0)
        goto refuse;
    xcp__sim_settle_now(s);
    rc = xcp__sim_dom_from_config(s, cfg, &d, err);
    if (rc == 0 && (strcmp(img.uuid, d->uuid) != 0 || img.type != d->type ||
                    img.vcpus_max != d->vcpus_max ||
                    img.pages > d->max_pages))
        rc = xcp__hv_error_set(err, -EINVAL,
                               "sim: the migrating domain (VM %s, %s, %" PRIu64
                               " bytes, %" PRIu32 " vCPUs) does not fit the "
                               "configuration of VM %s (%s, max %" PRIu64
                               " bytes, %" PRIu32 " vCPUs)", img.uuid,
                               xcp__hv_domain_type_name(img.type),
                               img.pages * PAGE, img.vcpus_max, d->uuid,
                               xcp__hv_domain_type_name(d->type),
                               d->max_pages * PAGE, d->vcpus_max);
    if (rc == 0) {
        d->target_pages = d->actual_pages = img.pages;
        d->vcpus_online = img.vcpus_online;
        rc = xcp__sim_check_fit(s, d, err);
    }
    if (rc == 0) {
        rc = xcp__sim_dom_start(s, d, true, domid, err);
        d = NULL; /* taken */
        started = rc == 0;
    }
    xcp__sim_leave(s);
    xcp__sim_dom_free(d);
    if (rc < 0)
        goto refuse;
    if ((rc = put(fd, "ready\n", 6)) < 0) {
        /* the sender cannot know we have it: it keeps its own */
        rc = xcp__hv_error_set(err, rc, "sim: migration of VM %s: telling "
                               "the sender failed: %s", uuid, strerror(-rc));
        goto undo;
    }
    *was_running = running == 1;
    free(data);
    return 0;
io:
    rc = xcp__hv_error_set(err, rc == -EBADMSG ? -EBADMSG : rc,
                           "sim: migration of VM %s: the stream from the "
                           "sending host %s in round %" PRIu32,
                           uuid[0] ? uuid : "?",
                           rc == -EBADMSG ? "is corrupt"
                           : rc == -ECONNRESET ? "ended"
                                               : "failed",
                           round);
refuse:
    {
        char *c;

        snprintf(line, sizeof(line), "error %.400s", err->message);
        for (c = line; *c; c++) /* one line */
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        strcat(line, "\n");
    }
    (void)put(fd, line, strlen(line));
undo:
    if (started && xcp__sim_enter(s, &(xcp_hv_error){0}) == 0) {
        struct dom *x = xcp__sim_dom_find(s, *domid);
        xcp_hv_error ignored;

        if (x) {
            xcp__sim_dom_remove(s, x);
            xcp__sim_mark_dirty(s, *domid);
            (void)xcp__sim_commit(s, *domid, &ignored);
        }
        xcp__sim_leave(s);
    }
    free(data);
    return rc;
}
