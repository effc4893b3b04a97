/*
 * hv/sim/sim_state.c - the sim's persistent state, which lets domains
 * outlive the process (see sim.c, "Persistence"), at a cost per operation
 * in proportion to the change.
 *
 * Two files under state_dir/sim/:
 *   state  a snapshot: the host's counters and every domain, ending in a
 *          checksum line; replaced atomically (temp, fsync, rename, fsync
 *          of the directory). Its "log G" line names the generation of
 *          the log that continues it.
 *   log    "xcp-sim-log 1 G", then one record per change, appended with
 *          write() before the operation returns:
 *              rec <next-domid> <clock>
 *              domain <domid> ... end      the domain as it now is, or
 *              gone <domid>                it no longer exists
 *              sum <fnv1a of the record's lines before this one>
 *          The time-driven changes of the other domains are not logged:
 *          loading lets time pass up to each record's clock, as the
 *          writer had, with the same settle engine.
 * Loading reads the snapshot and replays the log of its generation. A
 * torn last record (a write cut short) is dropped and cut off; a bad
 * record with good ones after it is corruption (-EBADMSG).
 * When the log has grown past LOG_COMPACT_MIN and the snapshot's size, it
 * is folded into a snapshot of the next generation and started afresh;
 * killed between the two steps, loading finds a log of an older
 * generation and ignores it, the snapshot holding all it said.
 * Records are not fsync'd: a process killed (-9 included) loses nothing
 * it wrote, and a host that loses power loses its domains anyway, on Xen
 * as here (a torn or zeroed tail then is dropped as above).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include "sim_int.h"

#define STATE_VERSION 2 /* 1 had no log; still read */
#define LOG_MAGIC "xcp-sim-log"
#define LOG_VERSION 1
/* the log is folded into the snapshot when it is over this and larger
 * than the snapshot: each record pays for at most its own size again */
#define LOG_COMPACT_MIN (64 * 1024)

/* ---- the state file ------------------------------------------------------ */

static void emit_dom(struct buf *b, const struct dom *d)
{
    size_t i;
    uint32_t v;

    xcp__sim_buf_printf(b, "domain %" PRIu32 "\nuuid %s\nname", d->domid,
                        d->uuid);
    xcp__sim_buf_str(b, d->name);
    xcp__sim_buf_printf(b, "\ntype %s\nstate %s\nreason %s\n",
                        xcp__hv_domain_type_name(d->type),
                        xcp__hv_state_name(d->state),
                        xcp__hv_shutdown_reason_name(d->reason));
    xcp__sim_buf_printf(
        b, "pages %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
        d->max_pages, d->target_pages, d->actual_pages, d->balloon_carry);
    xcp__sim_buf_printf(b, "vcpus %" PRIu32 " %" PRIu32 "\nvcpu-ns",
                        d->vcpus_max, d->vcpus_online);
    for (v = 0; v < d->vcpus_max; v++)
        xcp__sim_buf_printf(b, " %" PRIu64, d->vcpu_ns[v]);
    xcp__sim_buf_printf(
        b, "\nstart %" PRId64 "\nrequest %s %" PRIu64 "\nhung %d\n",
        d->start_ns, xcp__hv_shutdown_reason_name(d->request), d->ack_left_ns,
        d->hung);
    xcp__sim_buf_add(b, "boot", 4);
    xcp__sim_buf_str(b, d->kernel);
    xcp__sim_buf_str(b, d->ramdisk);
    xcp__sim_buf_str(b, d->cmdline);
    xcp__sim_buf_str(b, d->bootloader);
    xcp__sim_buf_add(b, "\n", 1);
    if (d->guest_os) {
        xcp__sim_buf_add(b, "guest-os", 8);
        xcp__sim_buf_str(b, d->guest_os);
        xcp__sim_buf_add(b, "\n", 1);
    }
    for (i = 0; i < d->n_disks; i++) {
        const struct disk *k = &d->disks[i];

        xcp__sim_buf_add(b, "disk", 4);
        xcp__sim_buf_str(b, k->path);
        xcp__sim_buf_str(b, k->format);
        xcp__sim_buf_str(b, k->vdev);
        xcp__sim_buf_printf(b, " %d %d %d %" PRIu64 " %d %" PRIu64
                            " %" PRIu64 " %" PRIu64 "\n", k->ro, k->cdrom,
                            k->paused, k->size, k->cbt, k->written, k->dev,
                            k->ino);
        if (k->switch_vcpu_ns)
            xcp__sim_buf_printf(b, "switched %" PRIu64 "\n",
                                k->switch_vcpu_ns);
        /* its copy under way (sim_live.c), on a line of its own */
        if (k->stream_start) {
            xcp__sim_buf_printf(b, "stream %" PRIu64 " %u", k->stream_start,
                                k->stream_keep);
            xcp__sim_buf_str(b, k->stream_backing);
            xcp__sim_buf_add(b, "\n", 1);
        }
    }
    for (i = 0; i < d->n_nics; i++) {
        const struct nic *n = &d->nics[i];

        xcp__sim_buf_printf(b, "nic %02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
                            n->mac[1], n->mac[2], n->mac[3], n->mac[4],
                            n->mac[5]);
        xcp__sim_buf_str(b, n->bridge);
        xcp__sim_buf_printf(b, " %" PRIu32 " %" PRIu32 "\n", n->devid, n->mtu);
    }
    for (i = 0; i < d->n_platform; i++) {
        xcp__sim_buf_add(b, "platform", 8);
        xcp__sim_buf_str(b, d->platform[i].key);
        xcp__sim_buf_str(b, d->platform[i].value);
        xcp__sim_buf_add(b, "\n", 1);
    }
    xcp__sim_buf_add(b, "end\n", 4);
}

/* The whole state as a snapshot that the log of generation gen continues. */
static int snapshot_write(struct sim *s, uint64_t gen, xcp_hv_error *err)
{
    struct buf b = {0};
    size_t i;
    int rc;

    xcp__sim_buf_printf(&b,
                        "%s %d\nnext-domid %" PRIu32 "\nclock %" PRIu64
                        "\nboot %" PRIu64 "\nlog %" PRIu64 "\n",
                        STATE_MAGIC, STATE_VERSION, s->next_domid, s->clock,
                        s->boot, gen);
    for (i = 0; i < s->n_doms; i++)
        emit_dom(&b, s->doms[i]);
    if (!b.failed)
        xcp__sim_buf_printf(&b, "checksum %016" PRIx64 "\n",
                            fnv1a(FNV_INIT, b.p, b.len));
    if (b.failed) {
        rc = oom(err);
        goto out;
    }
    rc = xcp__sim_write_atomic(s->path, b.p, b.len, "state file", err);
    if (rc == 0)
        s->snap_len = b.len;
out:
    free(b.p);
    return rc;
}

/*
 * Writes data at the end of the log. Part of it may have been written when
 * this fails: the reload that follows a failed commit cuts it off, as it
 * would a record torn by a crash.
 */
static int log_append(struct sim *s, const char *data, size_t len,
                      xcp_hv_error *err)
{
    int rc = xcp__sim_write_all(s->log_fd, data, len);

    if (rc < 0)
        return xcp__hv_error_set(err, rc, "sim: cannot write the state log "
                                 "%s: %s", s->log_path, strerror(-rc));
    s->log_len += len;
    return 0;
}

/* Empties the log and starts it again for generation s->log_gen. */
static int log_reset(struct sim *s, xcp_hv_error *err)
{
    char head[64];
    int n, rc;

    s->log_stale = true;
    if (ftruncate(s->log_fd, 0) < 0)
        return xcp__hv_error_set(err, -errno, "sim: cannot empty the state "
                                 "log %s: %s", s->log_path, strerror(errno));
    s->log_len = 0;
    n = snprintf(head, sizeof(head), "%s %d %" PRIu64 "\n", LOG_MAGIC,
                 LOG_VERSION, s->log_gen);
    rc = log_append(s, head, (size_t)n, err);
    if (rc == 0)
        s->log_stale = false;
    return rc;
}

/*
 * Folds the log into a new snapshot and starts the next generation's log.
 * Between the two steps the old log is stale, and loading ignores it: the
 * snapshot holds all it said.
 */
static int compact(struct sim *s, xcp_hv_error *err)
{
    int rc = snapshot_write(s, s->log_gen + 1, err);

    if (rc < 0)
        return rc;
    s->log_gen++;
    return log_reset(s, err);
}

/*
 * One change as a log record into b (empty): the host's counters, then for
 * each of the n domains it touched the domain's whole block, or "gone" if
 * it no longer exists; then the checksum of all that. A change of several
 * domains (a migration's new domain and the old one's end) is one record,
 * so a restart finds all of it or none.
 */
static void emit_record(struct buf *b, const struct sim *s,
                        const uint32_t *domids, size_t n)
{
    size_t i;

    xcp__sim_buf_printf(b, "rec %" PRIu32 " %" PRIu64 "\n", s->next_domid,
                        s->clock);
    for (i = 0; i < n; i++) {
        const struct dom *d = xcp__sim_dom_find(s, domids[i]);

        if (d)
            emit_dom(b, d);
        else
            xcp__sim_buf_printf(b, "gone %" PRIu32 "\n", domids[i]);
    }
    if (!b->failed)
        xcp__sim_buf_printf(b, "sum %016" PRIx64 "\n",
                            fnv1a(FNV_INIT, b->p, b->len));
}

static bool parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    int i;

    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &tail) != 6)
        return false;
    for (i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return true;
}

/*
 * Parses one line of a domain block into d. 1 at "end", 0 if consumed,
 * -1 if malformed.
 */
static int parse_dom_line(struct dom *d, char **t, int n)
{
    int e;

    if (n == 1 && strcmp(t[0], "end") == 0)
        return 1;
    if (n == 2 && strcmp(t[0], "uuid") == 0 && xcp__sim_uuid_valid(t[1])) {
        memcpy(d->uuid, t[1], XCP_HV_UUID_LEN);
        return 0;
    }
    if (n == 2 && strcmp(t[0], "name") == 0) {
        char *name;

        if (xcp__sim_token_str(t[1], &name) < 0 || !name)
            return -1;
        snprintf(d->name, sizeof(d->name), "%s", name);
        free(name);
        return 0;
    }
    if (n == 2 && strcmp(t[0], "type") == 0) {
        e = xcp__hv_domain_type_from_name(t[1]);
        d->type = (xcp_hv_domain_type)e;
        return e < 0 ? -1 : 0;
    }
    if (n == 2 && strcmp(t[0], "state") == 0) {
        e = xcp__hv_state_from_name(t[1]);
        d->state = (xcp_hv_domain_state)e;
        return e < 0 ? -1 : 0;
    }
    if (n == 2 && strcmp(t[0], "reason") == 0) {
        e = xcp__hv_shutdown_reason_from_name(t[1]);
        d->reason = (xcp_hv_shutdown_reason)e;
        return e < 0 ? -1 : 0;
    }
    if (n == 5 && strcmp(t[0], "pages") == 0)
        return xcp__sim_parse_u64(t[1], &d->max_pages) &&
                       xcp__sim_parse_u64(t[2], &d->target_pages) &&
                       xcp__sim_parse_u64(t[3], &d->actual_pages) &&
                       xcp__sim_parse_u64(t[4], &d->balloon_carry)
                   ? 0
                   : -1;
    if (n == 3 && strcmp(t[0], "vcpus") == 0 && !d->vcpu_ns) {
        if (!xcp__sim_parse_u32(t[1], &d->vcpus_max) ||
            !xcp__sim_parse_u32(t[2], &d->vcpus_online) || d->vcpus_max == 0 ||
            d->vcpus_max > PV_MAX_VCPUS || d->vcpus_online > d->vcpus_max)
            return -1;
        d->vcpu_ns = calloc(d->vcpus_max, sizeof(*d->vcpu_ns));
        return d->vcpu_ns ? 0 : -1;
    }
    if (n == 2 && strcmp(t[0], "start") == 0) {
        uint64_t v;

        if (!xcp__sim_parse_u64(t[1], &v) || v > INT64_MAX)
            return -1;
        d->start_ns = (int64_t)v;
        return 0;
    }
    if (n == 3 && strcmp(t[0], "request") == 0) {
        e = xcp__hv_shutdown_reason_from_name(t[1]);
        d->request = (xcp_hv_shutdown_reason)e;
        return e < 0 || !xcp__sim_parse_u64(t[2], &d->ack_left_ns) ? -1 : 0;
    }
    if (n == 2 && strcmp(t[0], "hung") == 0) {
        d->hung = strcmp(t[1], "1") == 0;
        return d->hung || strcmp(t[1], "0") == 0 ? 0 : -1;
    }
    if (n == 5 && strcmp(t[0], "boot") == 0)
        return xcp__sim_token_str(t[1], &d->kernel) ||
                       xcp__sim_token_str(t[2], &d->ramdisk) ||
                       xcp__sim_token_str(t[3], &d->cmdline) ||
                       xcp__sim_token_str(t[4], &d->bootloader)
                   ? -1
                   : 0;
    if (n == 2 && strcmp(t[0], "guest-os") == 0)
        return xcp__sim_token_str(t[1], &d->guest_os) ? -1 : 0;
    if ((n == 6 || n == 9 || n == 10 || n == 12) &&
        strcmp(t[0], "disk") == 0) {
        struct disk *v = realloc(d->disks, (d->n_disks + 1) * sizeof(*v)), *k;

        if (!v)
            return -1;
        d->disks = v;
        k = memset(&v[d->n_disks++], 0, sizeof(*k));
        k->ro = strcmp(t[4], "1") == 0;
        k->cdrom = strcmp(t[5], "1") == 0;
        /* 9: since the back end's state is kept (sim_live.c) */
        k->paused = n >= 9 && strcmp(t[6], "1") == 0;
        k->size = n >= 9 ? strtoull(t[7], NULL, 10) : 0;
        k->cbt = n >= 9 && strcmp(t[8], "1") == 0;
        /* 10: since the guest writes (sim_guest.c) */
        k->written = n >= 10 ? strtoull(t[9], NULL, 10) : 0;
        /* 12: since a back end may hold its file by identity */
        k->dev = n == 12 ? strtoull(t[10], NULL, 10) : 0;
        k->ino = n == 12 ? strtoull(t[11], NULL, 10) : 0;
        return xcp__sim_token_str(t[1], &k->path) ||
                       xcp__sim_token_str(t[2], &k->format) ||
                       xcp__sim_token_str(t[3], &k->vdev) || !k->vdev ||
                       !k->format
                   ? -1
                   : 0;
    }
    if (n == 2 && strcmp(t[0], "switched") == 0 && d->n_disks)
        return xcp__sim_parse_u64(t[1],
                                  &d->disks[d->n_disks - 1].switch_vcpu_ns)
                   ? 0
                   : -1;
    if (n == 4 && strcmp(t[0], "stream") == 0 && d->n_disks) {
        /* the copy under way on the disk of the line before */
        struct disk *k = &d->disks[d->n_disks - 1];
        char *backing = NULL;
        int bad = xcp__sim_token_str(t[3], &backing) || !backing ||
                  strlen(backing) >= sizeof(k->stream_backing) ||
                  !xcp__sim_parse_u64(t[1], &k->stream_start);

        k->stream_keep = (unsigned)strtoul(t[2], NULL, 10);
        if (!bad)
            snprintf(k->stream_backing, sizeof(k->stream_backing), "%s",
                     backing);
        free(backing);
        return bad ? -1 : 0;
    }
    if (n == 5 && strcmp(t[0], "nic") == 0) {
        struct nic *v = realloc(d->nics, (d->n_nics + 1) * sizeof(*v)), *k;

        if (!v)
            return -1;
        d->nics = v;
        k = memset(&v[d->n_nics++], 0, sizeof(*k));
        return !parse_mac(t[1], k->mac) ||
                       xcp__sim_token_str(t[2], &k->bridge) ||
                       !xcp__sim_parse_u32(t[3], &k->devid) ||
                       !xcp__sim_parse_u32(t[4], &k->mtu)
                   ? -1
                   : 0;
    }
    if (n == 3 && strcmp(t[0], "platform") == 0) {
        struct kv *v = realloc(d->platform, (d->n_platform + 1) * sizeof(*v));
        struct kv *k;

        if (!v)
            return -1;
        d->platform = v;
        k = memset(&v[d->n_platform++], 0, sizeof(*k));
        return xcp__sim_token_str(t[1], &k->key) ||
                       xcp__sim_token_str(t[2], &k->value) || !k->key ||
                       !k->value
                   ? -1
                   : 0;
    }
    return -1;
}

/* "vcpu-ns a b c": one number per vCPU, as many as vcpus_max. */
static int parse_vcpu_ns(struct dom *d, char *line)
{
    char *p = line + strlen("vcpu-ns"), *end;
    uint32_t v;

    for (v = 0; v < d->vcpus_max; v++) {
        if (*p != ' ' || !isdigit((unsigned char)p[1]))
            return -1;
        errno = 0;
        d->vcpu_ns[v] = strtoull(p + 1, &end, 10);
        if (errno)
            return -1;
        p = end;
    }
    return *p ? -1 : 0;
}

static bool dom_complete(const struct dom *d)
{
    return d->uuid[0] && d->name[0] && d->vcpu_ns && d->max_pages &&
           d->target_pages <= d->max_pages && d->actual_pages <= d->max_pages;
}

/* Text split into lines in place, counted for error messages. */
struct lines {
    char *next;
    int lineno;
};

static char *line_next(struct lines *l)
{
    char *line = l->next, *nl;

    if (!line || !*line)
        return NULL;
    nl = strchr(line, '\n');
    if (nl)
        *nl++ = '\0';
    l->next = nl;
    l->lineno++;
    return line;
}

/*
 * Parses the lines of a domain block that follow its "domain <domid>"
 * line, through "end". 0, -ENOMEM, or -EBADMSG if malformed (at the line
 * l->lineno).
 */
static int parse_dom(struct lines *l, uint32_t domid, struct dom **out)
{
    char *line, *tok[MAX_TOKENS];
    struct dom *d = calloc(1, sizeof(*d));
    int n, rc;

    *out = NULL;
    if (!d)
        return -ENOMEM;
    d->domid = domid;
    while ((line = line_next(l))) {
        if (strncmp(line, "vcpu-ns", 7) == 0 && d->vcpu_ns) {
            if (parse_vcpu_ns(d, line) < 0)
                break;
            continue;
        }
        n = xcp__sim_tokenize(line, tok);
        rc = n > 0 ? parse_dom_line(d, tok, n) : -1;
        if (rc < 0)
            break;
        if (rc == 1) {
            if (!dom_complete(d))
                break;
            d->overhead_pages =
                xcp__sim_overhead_pages(d->type, d->max_pages, d->vcpus_max);
            *out = d;
            return 0;
        }
    }
    xcp__sim_dom_free(d);
    return -EBADMSG;
}

/* "<keyword> <domid>" with a valid domid: the domid, else 0. */
static uint32_t domid_line(char **tok, int n, const char *keyword)
{
    uint32_t domid;

    if (n != 2 || strcmp(tok[0], keyword) != 0 ||
        !xcp__sim_parse_u32(tok[1], &domid))
        return 0;
    return domid;
}

/* Loads the snapshot into s (which holds no domains yet). */
static int snapshot_parse(struct sim *s, char *text, size_t len,
                          xcp_hv_error *err)
{
    struct lines l = {text, 0};
    char *line, *last, *tok[MAX_TOKENS];
    struct dom *d;
    uint64_t sum, want;
    uint32_t prev = 0, domid;
    int n, rc;
    bool header = false;

    /* the checksum line covers everything before it */
    if (len == 0 || text[len - 1] != '\n')
        goto corrupt;
    text[len - 1] = '\0';
    last = strrchr(text, '\n');
    if (!last || sscanf(last + 1, "checksum %16" SCNx64, &want) != 1)
        goto corrupt;
    sum = fnv1a(FNV_INIT, text, (size_t)(last + 1 - text));
    if (sum != want)
        goto corrupt;
    last[1] = '\0';

    while ((line = line_next(&l))) {
        n = xcp__sim_tokenize(line, tok);
        if (n <= 0)
            goto bad_line;
        if (!header) {
            if (n != 2 || strcmp(tok[0], STATE_MAGIC) != 0)
                goto bad_line;
            /* version 1 had no log */
            if (strcmp(tok[1], "1") != 0 && strcmp(tok[1], "2") != 0)
                return xcp__hv_error_set(err, -EPROTO,
                                         "sim: state file %s has format "
                                         "version %s, this build reads %d",
                                         s->path, tok[1], STATE_VERSION);
            header = true;
        } else if ((domid = domid_line(tok, n, "domain")) != 0) {
            rc = parse_dom(&l, domid, &d);
            if (rc == -ENOMEM)
                return oom(err);
            if (rc < 0 || domid <= prev || domid >= s->next_domid) {
                xcp__sim_dom_free(d);
                goto bad_line;
            }
            prev = domid;
            if (!xcp__sim_dom_append(s, d)) {
                xcp__sim_dom_free(d);
                return oom(err);
            }
        } else if (n == 2 && strcmp(tok[0], "next-domid") == 0) {
            if (!xcp__sim_parse_u32(tok[1], &s->next_domid) ||
                s->next_domid == 0)
                goto bad_line;
        } else if (n == 2 && strcmp(tok[0], "clock") == 0) {
            if (!xcp__sim_parse_u64(tok[1], &s->clock))
                goto bad_line;
        } else if (n == 2 && strcmp(tok[0], "boot") == 0) {
            if (!xcp__sim_parse_u64(tok[1], &s->boot))
                goto bad_line;
        } else if (n == 2 && strcmp(tok[0], "log") == 0) {
            if (!xcp__sim_parse_u64(tok[1], &s->log_gen))
                goto bad_line;
        } else {
            goto bad_line;
        }
    }
    if (!header)
        goto corrupt;
    return 0;

bad_line:
    return xcp__hv_error_set(err, -EBADMSG,
                             "sim: state file %s is malformed at line %d",
                             s->path, l.lineno);
corrupt:
    return xcp__hv_error_set(err, -EBADMSG,
                             "sim: state file %s is corrupt (truncated or "
                             "checksum mismatch)", s->path);
}

/* The most domains one record changes (a migration: two). */
#define RECORD_MAX_DOMS 2

/*
 * Replays one checksummed record (NUL-terminated before its sum line):
 * lets time pass up to the record's clock, as it had for the writer, then
 * puts or removes each of its domains. 0, -ENOMEM, or -EBADMSG if
 * malformed (then s is unchanged: the whole record is read and checked
 * before any of it is applied).
 */
static int record_apply(struct sim *s, char *text, bool mark)
{
    struct lines l = {text, 0};
    char *line, *tok[MAX_TOKENS];
    uint32_t next_domid, domid[RECORD_MAX_DOMS], last;
    uint64_t clock;
    struct dom *d[RECORD_MAX_DOMS] = {NULL}, *old, tmp;
    size_t nd = 0, i;
    int n = -1, rc = -EBADMSG;

    line = line_next(&l);
    if (line)
        n = xcp__sim_tokenize(line, tok);
    if (n != 3 || strcmp(tok[0], "rec") != 0 ||
        !xcp__sim_parse_u32(tok[1], &next_domid) ||
        !xcp__sim_parse_u64(tok[2], &clock) || next_domid < s->next_domid)
        return -EBADMSG;
    /* the entries, checked against the host as it will be when each is
       applied: a domain new to the host has the largest id so far */
    last = s->n_doms ? s->doms[s->n_doms - 1]->domid : 0;
    while ((line = line_next(&l)) != NULL) {
        n = xcp__sim_tokenize(line, tok);
        if (nd == RECORD_MAX_DOMS)
            goto bad;
        if ((domid[nd] = domid_line(tok, n, "domain")) != 0) {
            if ((rc = parse_dom(&l, domid[nd], &d[nd])) < 0)
                goto bad;
            rc = -EBADMSG;
        } else if ((domid[nd] = domid_line(tok, n, "gone")) == 0) {
            goto bad;
        }
        old = xcp__sim_dom_find(s, domid[nd]);
        if (domid[nd] >= next_domid ||
            (d[nd] && !old && last > domid[nd])) {
            nd++;
            goto bad;
        }
        if (d[nd] && !old)
            last = domid[nd];
        nd++;
    }
    if (nd == 0)
        return -EBADMSG;
    if (clock > s->clock)
        xcp__sim_settle(s, clock);
    s->next_domid = next_domid;
    rc = 0;
    for (i = 0; i < nd; i++) {
        old = xcp__sim_dom_find(s, domid[i]);
        if (d[i] && old) {
            /* in place: the array keeps its order */
            tmp = *old;
            *old = *d[i];
            *d[i] = tmp;
        } else if (d[i] && !xcp__sim_dom_append(s, d[i])) {
            rc = -ENOMEM;
            continue;
        } else if (d[i]) {
            d[i] = NULL; /* the host's now */
        } else if (old) {
            xcp__sim_dom_remove(s, old);
        }
        if (mark)
            xcp__sim_mark_dirty(s, domid[i]);
    }
bad:
    for (i = 0; i < nd && i < RECORD_MAX_DOMS; i++)
        xcp__sim_dom_free(d[i]);
    return rc;
}

/*
 * Replays the records of the log text (len bytes) from offset `from` on,
 * marking their domains changed if mark. A torn last record (a write cut
 * short) is dropped and cut off the file; a bad record with good ones
 * after it is corruption. s->log_len ends at the last good record.
 */
static int log_replay(struct sim *s, char *text, size_t len, size_t from,
                      bool mark, xcp_hv_error *err)
{
    char *p, *end = text + len, *sum, *eol;
    uint64_t want;
    int rc;

    for (p = text + from; p < end; p = eol + 1) {
        sum = strstr(p, "\nsum ");
        eol = sum ? memchr(sum + 1, '\n', (size_t)(end - sum - 1)) : NULL;
        if (!eol)
            break; /* torn */
        sum++;
        if (eol - sum == 4 + 16 &&
            sscanf(sum + 4, "%16" SCNx64, &want) == 1 &&
            fnv1a(FNV_INIT, p, (size_t)(sum - p)) == want) {
            *sum = '\0';
            rc = record_apply(s, p, mark);
        } else {
            rc = -EBADMSG;
        }
        if (rc == -ENOMEM)
            return oom(err);
        if (rc < 0 && eol + 1 == end)
            break; /* the last record: torn */
        if (rc < 0)
            return xcp__hv_error_set(err, -EBADMSG, "sim: state log %s is "
                                     "corrupt at byte %td", s->log_path,
                                     p - text);
    }
    s->log_len = (size_t)(p - text);
    if (p < end && ftruncate(s->log_fd, (off_t)s->log_len) < 0)
        return xcp__hv_error_set(err, -errno, "sim: cannot cut the torn end "
                                 "off the state log %s: %s", s->log_path,
                                 strerror(errno));
    return 0;
}

/* The generation named by the log's header line, read from text. */
static bool log_header(const char *text, size_t len, uint64_t *gen,
                       size_t *hlen)
{
    const char *eol = memchr(text, '\n', len);
    int ver, n = 0;

    if (!eol || sscanf(text, LOG_MAGIC " %d %" SCNu64 "%n", &ver, gen, &n) !=
                    2 || text + n != eol || ver != LOG_VERSION)
        return false;
    *hlen = (size_t)(eol + 1 - text);
    return true;
}

/*
 * Replays the log over the snapshot just loaded. A log of an older
 * generation was folded into the snapshot already: it is started afresh.
 */
static int log_load(struct sim *s, xcp_hv_error *err)
{
    char *text = NULL;
    uint64_t gen;
    size_t len, hlen;
    int rc;

    rc = xcp__sim_read_all(s->log_path, SIZE_MAX / 2, &text, &len, "state log",
                           err);
    if (rc < 0)
        return rc;
    if (!memchr(text, '\n', len)) {
        /* empty, or cut short while being started */
        rc = log_reset(s, err);
    } else if (!log_header(text, len, &gen, &hlen) || gen > s->log_gen) {
        rc = xcp__hv_error_set(err, -EBADMSG, "sim: state log %s has a bad "
                               "header (or is newer than the state file)",
                               s->log_path);
    } else if (gen < s->log_gen) {
        rc = log_reset(s, err);
    } else {
        rc = log_replay(s, text, len, hlen, false, err);
    }
    free(text);
    return rc;
}

static int log_open(struct sim *s, xcp_hv_error *err)
{
    if (s->log_fd >= 0)
        return 0;
    s->log_fd = open(s->log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC,
                     0600);
    if (s->log_fd < 0)
        return xcp__hv_error_set(err, -errno, "sim: cannot open the state "
                                 "log %s: %s", s->log_path, strerror(errno));
    return 0;
}

int xcp__sim_state_load(struct sim *s, xcp_hv_error *err)
{
    char *text = NULL;
    size_t len;
    int rc = log_open(s, err);

    if (rc < 0)
        return rc;
    s->log_gen = 0;
    rc = xcp__sim_read_all(s->path, SIZE_MAX / 2, &text, &len, "state file",
                           err);
    if (rc == -ENOENT) {
        /* a new simulated host */
        xcp__hv_error_clear(err);
        s->next_domid = 1;
        s->clock = s->boot = wall_ns();
        rc = compact(s, err);
        goto out;
    }
    if (rc == 0) {
        s->snap_len = len;
        rc = snapshot_parse(s, text, len, err);
    }
    if (rc == 0)
        rc = log_load(s, err);
out:
    if (rc < 0)
        xcp__sim_doms_clear(s);
    /* what replaying changed, the writer has already reported */
    xcp__hv_dirty_clear(&s->dirty);
    free(text);
    return rc;
}

int xcp__sim_commit(struct sim *s, uint32_t domid, xcp_hv_error *err)
{
    return xcp__sim_commit_many(s, &domid, 1, err);
}

int xcp__sim_commit_many(struct sim *s, const uint32_t *domids, size_t n,
                         xcp_hv_error *err)
{
    struct buf b = {0};
    xcp_hv_error ignored;
    int rc = 0;

    if (n == 0 || n > RECORD_MAX_DOMS)
        return xcp__hv_error_set(err, -EINVAL, "sim: a change of %zu "
                                 "domains cannot be one record", n);
    if (s->log_stale)
        rc = log_reset(s, err);
    if (rc == 0) {
        emit_record(&b, s, domids, n);
        rc = b.failed ? oom(err) : log_append(s, b.p, b.len, err);
    }
    free(b.p);
    if (rc < 0) {
        /* memory must not disagree with what a restart would find */
        xcp__sim_doms_clear(s);
        xcp__sim_state_load(s, &ignored);
        xcp__sim_settle_now(s);
    } else if (s->log_len > LOG_COMPACT_MIN && s->log_len > s->snap_len) {
        /* the change is safe in the log already: a compaction that fails
         * is tried again at the next commit */
        compact(s, &ignored);
    }
    xcp__sim_rearm(s);
    return rc;
}

/* ---- one host, several processes ----------------------------------------- */

static int state_lock(struct sim *s, xcp_hv_error *err)
{
    int rc = log_open(s, err);

    if (rc < 0)
        return rc;
    while (flock(s->log_fd, LOCK_EX) < 0)
        if (errno != EINTR)
            return xcp__hv_error_set(err, -errno, "sim: cannot lock the "
                                     "state log %s: %s", s->log_path,
                                     strerror(errno));
    return 0;
}


/*
 * Reloads the whole state (another process folded the log into a new
 * snapshot): the model's clock and CPU accounting go on from where they
 * were, and every domain before or after counts as changed.
 */
static int reload(struct sim *s, xcp_hv_error *err)
{
    uint64_t clock = s->clock, *busy;
    uint32_t *queued;
    size_t i, nq, n = s->opt.host_cpus;
    int rc;

    for (i = 0; i < s->n_doms; i++)
        xcp__sim_mark_dirty(s, s->doms[i]->domid);
    busy = malloc(n * sizeof(*busy));
    queued = malloc((s->dirty.n + 1) * sizeof(*queued));
    if (!busy || !queued) {
        free(busy);
        free(queued);
        return oom(err);
    }
    memcpy(busy, s->busy, n * sizeof(*busy));
    /* state_load forgets what is queued: keep it */
    nq = xcp__hv_dirty_take(&s->dirty, queued, s->dirty.n);
    xcp__sim_doms_clear(s);
    rc = xcp__sim_state_load(s, err);
    for (i = 0; i < nq; i++)
        xcp__hv_dirty_mark(&s->dirty, queued[i]);
    if (rc == 0) {
        for (i = 0; i < s->n_doms; i++)
            xcp__sim_mark_dirty(s, s->doms[i]->domid);
        if (s->clock < clock)
            xcp__sim_settle(s, clock);
        memcpy(s->busy, busy, n * sizeof(*busy));
    }
    free(busy);
    free(queued);
    return rc;
}

/*
 * Replays the records other processes appended since s last held the
 * lock (their domains marked changed), or reloads everything if one of
 * them folded the log into a new snapshot meanwhile.
 */
static int state_sync(struct sim *s, xcp_hv_error *err)
{
    char head[64], *text = NULL;
    struct stat st;
    uint64_t gen;
    size_t hlen, len;
    ssize_t got;
    int rc;

    if (!s->loaded) {
        rc = xcp__sim_state_load(s, err);
        s->loaded = rc == 0;
        return rc;
    }
    if (fstat(s->log_fd, &st) < 0)
        return xcp__hv_error_set(err, -errno, "sim: cannot stat the state "
                                 "log %s: %s", s->log_path, strerror(errno));
    got = pread(s->log_fd, head, sizeof(head), 0);
    if (s->log_stale || got <= 0 ||
        !log_header(head, (size_t)got, &gen, &hlen) || gen != s->log_gen ||
        (size_t)st.st_size < s->log_len)
        return reload(s, err);
    if ((size_t)st.st_size == s->log_len)
        return 0; /* nobody else wrote: the usual case */
    rc = xcp__sim_read_all(s->log_path, SIZE_MAX / 2, &text, &len,
                           "state log", err);
    if (rc == 0 && len < s->log_len)
        rc = reload(s, err);
    else if (rc == 0)
        rc = log_replay(s, text, len, s->log_len, true, err);
    free(text);
    return rc;
}

int xcp__sim_enter(struct sim *s, xcp_hv_error *err)
{
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = state_lock(s, err);
    if (rc == 0 && (rc = state_sync(s, err)) < 0)
        flock(s->log_fd, LOCK_UN);
    if (rc < 0)
        pthread_mutex_unlock(&s->mu);
    return rc;
}

void xcp__sim_leave(struct sim *s)
{
    xcp__sim_rearm(s);
    if (s->log_fd >= 0)
        flock(s->log_fd, LOCK_UN);
    pthread_mutex_unlock(&s->mu);
}
