/*
 * corosync.conf for a pool member, from the pool's hosts: knet, the
 * nodelist, and votequorum with the quorum policy of docs/design-pool.md
 * §4. Identical on every member for the same host list (the daemon writes
 * it from the replicated host table; nobody edits it by hand), written
 * atomically.
 */
#define _GNU_SOURCE
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A token corosync's parser reads back as itself: no blanks, braces,
 * colons in names, comments or quotes. Addresses may hold ':' (IPv6). */
static bool plain(const char *s, size_t max, const char *extra)
{
    size_t n = 0;

    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (n >= max)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
              (extra && strchr(extra, c))))
            return false;
    }
    return true;
}

static int check(const xcp__cluster_conf *c, xcp__cluster_err *err)
{
    size_t i, j;
    bool coord = false;

    if (!plain(c->cluster_name, 32, NULL))
        return xcp__cluster_fail(
            err, -EINVAL,
            "cluster name '%s': 1-32 letters, digits, '-', '_', '.'",
            c->cluster_name ? c->cluster_name : "");
    if (c->nnodes < 2 || c->nnodes > XCP__CLUSTER_MAX_NODES)
        return xcp__cluster_fail(err, -EINVAL, "%zu hosts: a pool has 2 to %d",
                                 c->nnodes, XCP__CLUSTER_MAX_NODES);
    for (i = 0; i < c->nnodes; i++) {
        const xcp__cluster_node *n = &c->nodes[i];
        if (n->nodeid == 0 || n->nodeid > INT32_MAX)
            return xcp__cluster_fail(err, -EINVAL,
                                     "host %zu: node id %u out of range", i,
                                     n->nodeid);
        if (!plain(n->name, 64, NULL))
            return xcp__cluster_fail(err, -EINVAL, "node %u: bad name '%s'",
                                     n->nodeid, n->name ? n->name : "");
        if (!plain(n->addr, 253, ":"))
            return xcp__cluster_fail(err, -EINVAL, "node %u: bad address '%s'",
                                     n->nodeid, n->addr ? n->addr : "");
        coord |= n->nodeid == c->coordinator;
        for (j = 0; j < i; j++) {
            const xcp__cluster_node *m = &c->nodes[j];
            if (m->nodeid == n->nodeid)
                return xcp__cluster_fail(err, -EINVAL, "node id %u twice",
                                         n->nodeid);
            if (strcmp(m->name, n->name) == 0)
                return xcp__cluster_fail(err, -EINVAL, "node name %s twice",
                                         n->name);
            if (strcmp(m->addr, n->addr) == 0)
                return xcp__cluster_fail(err, -EINVAL, "address %s twice",
                                         n->addr);
        }
    }
    if (!coord)
        return xcp__cluster_fail(err, -EINVAL,
                                 "coordinator %u is not among the nodes",
                                 c->coordinator);
    if (c->two_node && c->nnodes != 2)
        return xcp__cluster_fail(err, -EINVAL, "two_node with %zu hosts",
                                 c->nnodes);
    return 0;
}

int xcp__corosync_conf_format(const xcp__cluster_conf *c, char **out,
                              xcp__cluster_err *err)
{
    char *buf = NULL;
    size_t size = 0, i;
    FILE *f;
    int rc;

    *out = NULL;
    if ((rc = check(c, err)) < 0)
        return rc;
    f = open_memstream(&buf, &size);
    if (f == NULL)
        return xcp__cluster_fail(err, -ENOMEM, "out of memory");
    fprintf(f,
            "# Written by libxcp from the pool's hosts; do not edit: the "
            "pool rewrites it.\n"
            "totem {\n"
            "    version: 2\n"
            "    cluster_name: %s\n"
            "    transport: knet\n"
            "    token: %u\n"
            "    token_coefficient: %u\n",
            c->cluster_name, c->token_ms ? c->token_ms : 1000,
            c->token_coefficient_ms ? c->token_coefficient_ms : 100);
    if (c->crypto)
        fputs("    crypto_cipher: aes256\n"
              "    crypto_hash: sha256\n",
              f);
    else
        fputs("    crypto_cipher: none\n"
              "    crypto_hash: none\n",
              f);
    fputs("}\n\nnodelist {\n", f);
    for (i = 0; i < c->nnodes; i++)
        fprintf(f,
                "    node {\n"
                "        nodeid: %u\n"
                "        name: %s\n"
                "        ring0_addr: %s\n"
                "    }\n",
                c->nodes[i].nodeid, c->nodes[i].name, c->nodes[i].addr);
    fputs("}\n\nquorum {\n    provider: corosync_votequorum\n", f);
    if (c->two_node) {
        fputs("    two_node: 1\n", f);
    } else {
        if (c->nnodes >= 3)
            fputs("    wait_for_all: 1\n"
                  "    last_man_standing: 1\n"
                  "    last_man_standing_window: 10000\n",
                  f);
        /* The coordinator's side wins an even split, then the others by
         * node id: every member lists them in the same order. */
        fprintf(f, "    auto_tie_breaker: 1\n    auto_tie_breaker_node: %u",
                c->coordinator);
        {
            uint32_t last = 0;
            size_t k;
            for (k = 0; k < c->nnodes; k++) {
                uint32_t next = UINT32_MAX;
                for (i = 0; i < c->nnodes; i++) {
                    uint32_t id = c->nodes[i].nodeid;
                    if (id > last && id < next)
                        next = id;
                }
                last = next;
                if (next != c->coordinator)
                    fprintf(f, " %u", next);
            }
        }
        fputc('\n', f);
    }
    fprintf(f,
            "}\n\nlogging {\n"
            "    to_stderr: %s\n"
            "    to_syslog: %s\n"
            "    to_logfile: no\n"
            "    timestamp: on\n"
            "}\n",
            c->log_stderr ? "yes" : "no", c->log_stderr ? "no" : "yes");
    if (fclose(f) != 0) {
        free(buf);
        return xcp__cluster_fail(err, -ENOMEM, "out of memory");
    }
    *out = buf;
    return 0;
}

/* core/path.c's xcp__write_all, which this library cannot call: it links
 * nothing of libxcp (cluster.h). */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w == 0)
            return -EIO;
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int xcp__corosync_conf_write(const xcp__cluster_conf *c, const char *path,
                             xcp__cluster_err *err)
{
    char *text = NULL, *tmp = NULL, *copy = NULL;
    const char *dir;
    int fd = -1, dfd, rc;
    bool tmp_made = false; /* to remove on failure */

    if ((rc = xcp__corosync_conf_format(c, &text, err)) < 0)
        return rc;
    if (asprintf(&tmp, "%s.tmp", path) < 0) {
        tmp = NULL;
        rc = xcp__cluster_fail(err, -ENOMEM, "out of memory");
        goto out;
    }
    if ((copy = strdup(path)) == NULL) {
        rc = xcp__cluster_fail(err, -ENOMEM, "out of memory");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = xcp__cluster_fail(err, -errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    tmp_made = true;
    if ((rc = write_all(fd, text, strlen(text))) < 0 || fsync(fd) < 0) {
        rc = rc < 0 ? rc : -errno;
        xcp__cluster_fail(err, rc, "%s: %s", tmp, strerror(-rc));
        goto out;
    }
    rc = close(fd);
    fd = -1;
    if (rc < 0) {
        rc = xcp__cluster_fail(err, -errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) < 0) {
        rc = xcp__cluster_fail(err, -errno, "rename %s to %s: %s", tmp,
                               path, strerror(errno));
        goto out;
    }
    tmp_made = false;
    /* The new name is durable once its directory is. */
    dir = dirname(copy);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
        rc = xcp__cluster_fail(err, -errno, "fsync %s: %s", dir,
                               strerror(errno));
    if (dfd >= 0)
        close(dfd);
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    free(tmp);
    free(copy);
    free(text);
    return rc;
}
