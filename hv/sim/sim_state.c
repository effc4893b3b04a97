/*
 * hv/sim/sim_state.c - the sim's persistent state: the state file that
 * lets domains outlive the process (see sim.c, "Persistence").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "sim_int.h"

/* ---- the state file ------------------------------------------------------ */

static void emit_dom(struct buf *b, const struct dom *d)
{
    size_t i;
    uint32_t v;

    xcp__sim_buf_printf(b, "domain %" PRIu32 "\nuuid %s\nname", d->domid, d->uuid);
    xcp__sim_buf_str(b, d->name);
    xcp__sim_buf_printf(b, "\ntype %s\nstate %s\nreason %s\n",
               xcp__hv_domain_type_name(d->type),
               xcp__hv_state_name(d->state),
               xcp__hv_shutdown_reason_name(d->reason));
    xcp__sim_buf_printf(b, "pages %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
               d->max_pages, d->target_pages, d->actual_pages,
               d->balloon_carry);
    xcp__sim_buf_printf(b, "vcpus %" PRIu32 " %" PRIu32 "\nvcpu-ns", d->vcpus_max,
               d->vcpus_online);
    for (v = 0; v < d->vcpus_max; v++)
        xcp__sim_buf_printf(b, " %" PRIu64, d->vcpu_ns[v]);
    xcp__sim_buf_printf(b, "\nstart %" PRId64 "\nrequest %s %" PRIu64 "\nhung %d\n",
               d->start_ns, xcp__hv_shutdown_reason_name(d->request),
               d->ack_left_ns, d->hung);
    xcp__sim_buf_add(b, "boot", 4);
    xcp__sim_buf_str(b, d->kernel);
    xcp__sim_buf_str(b, d->ramdisk);
    xcp__sim_buf_str(b, d->cmdline);
    xcp__sim_buf_str(b, d->bootloader);
    xcp__sim_buf_add(b, "\n", 1);
    for (i = 0; i < d->n_disks; i++) {
        const struct disk *k = &d->disks[i];

        xcp__sim_buf_add(b, "disk", 4);
        xcp__sim_buf_str(b, k->path);
        xcp__sim_buf_str(b, k->format);
        xcp__sim_buf_str(b, k->vdev);
        xcp__sim_buf_printf(b, " %d %d\n", k->ro, k->cdrom);
    }
    for (i = 0; i < d->n_nics; i++) {
        const struct nic *n = &d->nics[i];

        xcp__sim_buf_printf(b, "nic %02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
                   n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
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

static int state_save(struct sim *s, xcp_hv_error *err)
{
    struct buf b = {0};
    size_t i;
    int rc;

    xcp__sim_buf_printf(&b, "%s %d\nnext-domid %" PRIu32 "\nclock %" PRIu64
                   "\nboot %" PRIu64 "\n",
               STATE_MAGIC, FORMAT_VERSION, s->next_domid, s->clock, s->boot);
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
out:
    free(b.p);
    return rc;
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
        return xcp__sim_token_str(t[1], &d->kernel) || xcp__sim_token_str(t[2], &d->ramdisk) ||
                       xcp__sim_token_str(t[3], &d->cmdline) ||
                       xcp__sim_token_str(t[4], &d->bootloader)
                   ? -1
                   : 0;
    if (n == 6 && strcmp(t[0], "disk") == 0) {
        struct disk *v = realloc(d->disks, (d->n_disks + 1) * sizeof(*v)), *k;

        if (!v)
            return -1;
        d->disks = v;
        k = memset(&v[d->n_disks++], 0, sizeof(*k));
        k->ro = strcmp(t[4], "1") == 0;
        k->cdrom = strcmp(t[5], "1") == 0;
        return xcp__sim_token_str(t[1], &k->path) || xcp__sim_token_str(t[2], &k->format) ||
                       xcp__sim_token_str(t[3], &k->vdev) || !k->vdev || !k->format
                   ? -1
                   : 0;
    }
    if (n == 5 && strcmp(t[0], "nic") == 0) {
        struct nic *v = realloc(d->nics, (d->n_nics + 1) * sizeof(*v)), *k;

        if (!v)
            return -1;
        d->nics = v;
        k = memset(&v[d->n_nics++], 0, sizeof(*k));
        return !parse_mac(t[1], k->mac) || xcp__sim_token_str(t[2], &k->bridge) ||
                       !xcp__sim_parse_u32(t[3], &k->devid) || !xcp__sim_parse_u32(t[4], &k->mtu)
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
        return xcp__sim_token_str(t[1], &k->key) || xcp__sim_token_str(t[2], &k->value) ||
                       !k->key || !k->value
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

/* Loads the state file into s (which holds no domains yet). */
static int state_parse(struct sim *s, char *text, size_t len,
                       xcp_hv_error *err)
{
    char *line, *next, *last, *tok[MAX_TOKENS];
    struct dom *d = NULL;
    uint64_t sum, want;
    uint32_t prev = 0;
    int n, lineno = 0, rc;
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
    *last = '\0';

    for (line = text; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        if (d && strncmp(line, "vcpu-ns", 7) == 0 && d->vcpu_ns) {
            if (parse_vcpu_ns(d, line) < 0)
                goto bad_line;
            continue;
        }
        n = xcp__sim_tokenize(line, tok);
        if (n <= 0)
            goto bad_line;
        if (!header) {
            if (n != 2 || strcmp(tok[0], STATE_MAGIC) != 0)
                goto bad_line;
            if (strcmp(tok[1], "1") != 0) {
                rc = xcp__hv_error_set(err, -EPROTO,
                                       "sim: state file %s has format "
                                       "version %s, this build reads %d",
                                       s->path, tok[1], FORMAT_VERSION);
                goto out;
            }
            header = true;
        } else if (d) {
            rc = parse_dom_line(d, tok, n);
            if (rc < 0)
                goto bad_line;
            if (rc == 1) {
                if (!dom_complete(d) || d->domid <= prev ||
                    d->domid >= s->next_domid)
                    goto bad_line;
                d->overhead_pages = xcp__sim_overhead_pages(
                    d->type, d->max_pages, d->vcpus_max);
                prev = d->domid;
                if (!xcp__sim_dom_append(s, d)) {
                    rc = oom(err);
                    goto out;
                }
                d = NULL;
            }
        } else if (n == 2 && strcmp(tok[0], "next-domid") == 0) {
            if (!xcp__sim_parse_u32(tok[1], &s->next_domid) || s->next_domid == 0)
                goto bad_line;
        } else if (n == 2 && strcmp(tok[0], "clock") == 0) {
            if (!xcp__sim_parse_u64(tok[1], &s->clock))
                goto bad_line;
        } else if (n == 2 && strcmp(tok[0], "boot") == 0) {
            if (!xcp__sim_parse_u64(tok[1], &s->boot))
                goto bad_line;
        } else if (n == 2 && strcmp(tok[0], "domain") == 0) {
            d = calloc(1, sizeof(*d));
            if (!d) {
                rc = oom(err);
                goto out;
            }
            if (!xcp__sim_parse_u32(tok[1], &d->domid) || d->domid == 0)
                goto bad_line;
        } else {
            goto bad_line;
        }
    }
    if (d || !header)
        goto corrupt;
    rc = 0;
    goto out;

bad_line:
    rc = xcp__hv_error_set(err, -EBADMSG,
                           "sim: state file %s is malformed at line %d",
                           s->path, lineno);
    goto out;
corrupt:
    rc = xcp__hv_error_set(err, -EBADMSG,
                           "sim: state file %s is corrupt (truncated or "
                           "checksum mismatch)", s->path);
out:
    xcp__sim_dom_free(d);
    return rc;
}

int xcp__sim_state_load(struct sim *s, xcp_hv_error *err)
{
    char *text = NULL;
    size_t len;
    int rc;

    rc = xcp__sim_read_all(s->path, SIZE_MAX / 2, &text, &len, "state file", err);
    if (rc == -ENOENT) {
        /* a new simulated host */
        xcp__hv_error_clear(err);
        s->next_domid = 1;
        s->clock = s->boot = wall_ns();
        rc = state_save(s, err);
        goto out;
    }
    if (rc < 0)
        goto out;
    rc = state_parse(s, text, len, err);
    if (rc < 0)
        xcp__sim_doms_clear(s);
out:
    free(text);
    return rc;
}

/*
 * Makes the change just done in memory durable. If the write fails, the
 * change is undone by reloading the last durable state, so that memory
 * and disk never disagree about which domains exist.
 */
int xcp__sim_commit(struct sim *s, xcp_hv_error *err)
{
    xcp_hv_error ignored;
    int rc = state_save(s, err);

    if (rc < 0) {
        xcp__sim_doms_clear(s);
        s->n_dirty = 0;
        xcp__sim_state_load(s, &ignored);
        xcp__sim_settle_now(s);
    }
    xcp__sim_rearm(s);
    return rc;
}
