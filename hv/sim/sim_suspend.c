/*
 * hv/sim/sim_suspend.c - suspend images: a domain saved to a file and
 * restored from one, verified in full (see sim.c, "Suspend images").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "sim_int.h"

/* ---- suspend images ------------------------------------------------------ */

static uint64_t image_digest(const char *uuid, uint64_t pages, uint64_t i)
{
    uint64_t seed = fnv1a(FNV_INIT, uuid, strlen(uuid));

    return mix64(seed ^ mix64(i + 1) ^ (pages << 1));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int xcp__sim_image_build(const struct dom *d, struct buf *b,
                         xcp_hv_error *err)
{
    uint64_t k = div_up(d->actual_pages, PAGES_PER_DIGEST), i;
    unsigned char *body = malloc(k * 8);

    if (!body)
        return oom(err);
    for (i = 0; i < k; i++)
        put_le64(body + 8 * i, image_digest(d->uuid, d->actual_pages, i));
    xcp__sim_buf_printf(b, "%s %d\nuuid %s\ndomid %" PRIu32 "\nname",
                        IMAGE_MAGIC, FORMAT_VERSION, d->uuid, d->domid);
    xcp__sim_buf_str(b, d->name);
    xcp__sim_buf_printf(
        b,
        "\ntype %s\npages %" PRIu64 " %" PRIu64 "\nvcpus %" PRIu32 " %" PRIu32
        "\ndigests %" PRIu64 "\nbody-checksum %016" PRIx64 "\n",
        xcp__hv_domain_type_name(d->type), d->max_pages, d->actual_pages,
        d->vcpus_max, d->vcpus_online, k, fnv1a(FNV_INIT, body, k * 8));
    if (!b->failed)
        xcp__sim_buf_printf(b, "header-checksum %016" PRIx64 "\n",
                            fnv1a(FNV_INIT, b->p, b->len));
    xcp__sim_buf_add(b, body, k * 8);
    free(body);
    return b->failed ? oom(err) : 0;
}

static int image_write(const struct dom *d, const char *path,
                       xcp_hv_error *err)
{
    struct buf b = {0};
    int rc = xcp__sim_image_build(d, &b, err);

    if (rc == 0)
        rc = xcp__sim_write_atomic(path, b.p, b.len, "suspend image", err);
    free(b.p);
    return rc;
}

/* Parses and verifies an image completely (data: len bytes and a NUL,
 * changed); -EBADMSG naming `path` if anything is off. */
int xcp__sim_image_parse(char *data, size_t len, const char *path,
                         struct xcp__sim_image *img, xcp_hv_error *err)
{
    char *hdr_end, *line, *next, *tok[MAX_TOKENS];
    const unsigned char *body;
    uint64_t want_hdr, want_body, k = 0, i;
    size_t hlen;
    int n, fields = 0;
    const char *why = "bad header";

    memset(img, 0, sizeof(*img));
    hdr_end = strstr(data, "\nheader-checksum ");
    if (!hdr_end || memchr(data, '\0', (size_t)(hdr_end - data)))
        goto corrupt;
    hlen = (size_t)(hdr_end + 1 - data);
    if (sscanf(hdr_end + 1, "header-checksum %16" SCNx64, &want_hdr) != 1 ||
        fnv1a(FNV_INIT, data, hlen) != want_hdr) {
        why = "header checksum mismatch";
        goto corrupt;
    }
    body = (const unsigned char *)strchr(hdr_end + 1, '\n');
    if (!body)
        goto corrupt;
    body++;
    *hdr_end = '\0';
    for (line = data; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        n = xcp__sim_tokenize(line, tok);
        if (n < 2)
            goto corrupt;
        if (line == data) {
            if (strcmp(tok[0], IMAGE_MAGIC) != 0 || strcmp(tok[1], "1") != 0)
                goto corrupt;
        } else if (n == 2 && strcmp(tok[0], "uuid") == 0 &&
                   xcp__sim_uuid_valid(tok[1])) {
            memcpy(img->uuid, tok[1], XCP_HV_UUID_LEN);
            fields |= 1;
        } else if (n == 2 && strcmp(tok[0], "type") == 0 &&
                   xcp__hv_domain_type_from_name(tok[1]) >= 0) {
            img->type = (xcp_hv_domain_type)xcp__hv_domain_type_from_name(
                tok[1]);
            fields |= 2;
        } else if (n == 3 && strcmp(tok[0], "pages") == 0 &&
                   xcp__sim_parse_u64(tok[1], &img->max_pages) &&
                   xcp__sim_parse_u64(tok[2], &img->pages)) {
            fields |= 4;
        } else if (n == 3 && strcmp(tok[0], "vcpus") == 0 &&
                   xcp__sim_parse_u32(tok[1], &img->vcpus_max) &&
                   xcp__sim_parse_u32(tok[2], &img->vcpus_online)) {
            fields |= 8;
        } else if (n == 2 && strcmp(tok[0], "digests") == 0 &&
                   xcp__sim_parse_u64(tok[1], &k)) {
            fields |= 16;
        } else if (n == 2 && strcmp(tok[0], "body-checksum") == 0 &&
                   sscanf(tok[1], "%16" SCNx64, &want_body) == 1) {
            fields |= 32;
        } else if (strcmp(tok[0], "domid") != 0 &&
                   strcmp(tok[0], "name") != 0) {
            goto corrupt;
        }
    }
    if (fields != 63 || img->pages > img->max_pages || !img->vcpus_max ||
        img->vcpus_online > img->vcpus_max ||
        k != div_up(img->pages, PAGES_PER_DIGEST))
        goto corrupt;
    if ((size_t)((const char *)body - data) + k * 8 != len) {
        why = "truncated or trailing data";
        goto corrupt;
    }
    if (fnv1a(FNV_INIT, body, k * 8) != want_body) {
        why = "memory checksum mismatch";
        goto corrupt;
    }
    for (i = 0; i < k; i++) {
        if (get_le64(body + 8 * i) !=
            image_digest(img->uuid, img->pages, i)) {
            why = "memory contents do not match the header";
            goto corrupt;
        }
    }
    return 0;
corrupt:
    return xcp__hv_error_set(err, -EBADMSG, "sim: suspend image %s is "
                             "corrupt: %s", path, why);
}

static int image_read(const char *path, struct xcp__sim_image *img,
                      xcp_hv_error *err)
{
    char *data = NULL;
    size_t len;
    int rc = xcp__sim_read_all(path, MAX_IMAGE_SIZE, &data, &len,
                               "suspend image", err);

    if (rc < 0)
        return rc;
    rc = xcp__sim_image_parse(data, len, path, img, err);
    free(data);
    return rc;
}

int xcp__sim_domain_suspend(void *self, uint32_t domid, const char *image_path,
                            xcp_hv_error *err)
{
    struct sim *s = self;
    struct dom *d;
    int rc = xcp__sim_live_dom(s, XCP_HV_OP_DOMAIN_SUSPEND, domid,
                               "suspend", &d, err);

    if (rc < 0)
        return rc;
    if (!image_path || !*image_path)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: suspend of domain %" PRIu32
                                 " needs an image path", domid);
    if (d->hung || s->hang_all)
        return xcp__hv_error_set(err, -ETIMEDOUT,
                                 "sim: domain %" PRIu32 " (VM %s) did not "
                                 "acknowledge the suspend request (the "
                                 "guest is hung)", domid, d->uuid);
    /* a running guest takes its time to acknowledge; a paused one cannot
     * interfere and is saved as is */
    if (d->state == XCP_HV_STATE_RUNNING) {
        rc = xcp__sim_sleep_until(s, xcp__sim_now(s) +
                                         s->opt.shutdown_delay_ns, err);
        if (rc < 0)
            return rc;
        xcp__sim_settle_now(s);
        d = xcp__sim_dom_find(s, domid);
        if (!d || d->state == XCP_HV_STATE_SHUTDOWN)
            return xcp__hv_error_set(err, -EINTR,
                                     "sim: domain %" PRIu32 " shut down "
                                     "while being suspended", domid);
    }
    rc = image_write(d, image_path, err);
    if (rc < 0)
        return rc;
    xcp__sim_dom_remove(s, d);
    xcp__sim_mark_dirty(s, domid);
    rc = xcp__sim_commit(s, domid, err);
    if (rc < 0)
        unlink(image_path);
    return rc;
}

int xcp__sim_domain_restore(void *self, const xcp_hv_domain_config *cfg,
                            const char *image_path, bool paused,
                            uint32_t *domid, xcp_hv_error *err)
{
    struct sim *s = self;
    struct xcp__sim_image img;
    struct dom *d = NULL;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_DOMAIN_RESTORE, err);

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    if (!image_path || !*image_path)
        return xcp__hv_error_set(err, -EINVAL,
                                 "sim: restore needs an image path");
    rc = image_read(image_path, &img, err);
    if (rc == 0)
        rc = xcp__sim_dom_from_config(s, cfg, &d, err);
    if (rc < 0)
        goto fail;
    /* Another VM's image is fine (a clone of a suspended VM resumes from
     * its copy, as Xen restores a save image into a new domain); it must
     * fit the config. */
    if (img.type != d->type || img.vcpus_max != d->vcpus_max ||
        img.pages > d->max_pages) {
        rc = xcp__hv_error_set(err, -EINVAL,
                               "sim: suspend image %s (VM %s, %s, %" PRIu64
                               " bytes, %" PRIu32 " vCPUs) does not fit VM "
                               "%s (%s, max %" PRIu64 " bytes, %" PRIu32
                               " vCPUs)", image_path, img.uuid,
                               xcp__hv_domain_type_name(img.type),
                               img.pages * PAGE, img.vcpus_max, d->uuid,
                               xcp__hv_domain_type_name(d->type),
                               d->max_pages * PAGE, d->vcpus_max);
        goto fail;
    }
    /* the guest comes back with the memory and vCPUs it was saved with */
    d->target_pages = d->actual_pages = img.pages;
    d->vcpus_online = img.vcpus_online;
    rc = xcp__sim_check_fit(s, d, err);
    if (rc < 0)
        goto fail;
    return xcp__sim_dom_start(s, d, paused, domid, err);
fail:
    xcp__sim_dom_free(d);
    return rc;
}
