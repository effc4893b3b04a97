/*
 * hv/sim/sim_util.c - the sim's small tools: growable text buffers, the
 * one-token string encoding and number parsing of its text files, and
 * reading and atomically replacing whole files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "sim_int.h"

void xcp__sim_buf_add(struct buf *b, const void *data, size_t len)
{
    size_t cap;
    char *p;

    if (b->failed)
        return;
    if (b->len + len + 1 > b->cap) {
        cap = max_u64(b->cap * 2, b->len + len + 1024);
        p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void xcp__sim_buf_printf(struct buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
    } else if ((size_t)n < sizeof(small)) {
        xcp__sim_buf_add(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);

        if (!big) {
            b->failed = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        xcp__sim_buf_add(b, big, (size_t)n);
        free(big);
    }
}

/*
 * A string as one space-free token: "-" for NULL, else "=" followed by the
 * string with %, controls, space and DEL as %XX.
 */
void xcp__sim_buf_str(struct buf *b, const char *s)
{
    const unsigned char *p;

    xcp__sim_buf_add(b, " ", 1);
    if (!s) {
        xcp__sim_buf_add(b, "-", 1);
        return;
    }
    xcp__sim_buf_add(b, "=", 1);
    for (p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '%' || *p == 0x7f)
            xcp__sim_buf_printf(b, "%%%02X", *p);
        else
            xcp__sim_buf_add(b, p, 1);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Inverse of buf_str. 0, or -1 if malformed; *out NULL for "-". */
int xcp__sim_token_str(const char *tok, char **out)
{
    char *s, *q;
    int hi, lo;

    *out = NULL;
    if (strcmp(tok, "-") == 0)
        return 0;
    if (tok[0] != '=')
        return -1;
    s = malloc(strlen(tok));
    if (!s)
        return -1;
    for (q = s, tok++; *tok; tok++) {
        if (*tok != '%') {
            *q++ = *tok;
            continue;
        }
        hi = hexval(tok[1]);
        lo = hi < 0 ? -1 : hexval(tok[2]);
        if (lo < 0 || (hi == 0 && lo == 0)) {
            free(s);
            return -1;
        }
        *q++ = (char)(hi * 16 + lo);
        tok += 2;
    }
    *q = '\0';
    *out = s;
    return 0;
}

bool xcp__sim_parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (!s || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

bool xcp__sim_parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;

    if (!xcp__sim_parse_u64(s, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

int xcp__sim_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},          {"b", 1},         {"k", 1024},
        {"kib", 1024},    {"m", MiB},       {"mib", MiB},
        {"g", GiB},       {"gib", GiB},     {"t", 1024 * GiB},
        {"tib", 1024 * GiB},
    };
    unsigned __int128 v;
    uint64_t n;
    char *end;
    size_t i;

    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            v = (unsigned __int128)n * units[i].mult;
            if (v > UINT64_MAX)
                return -EINVAL;
            *bytes = (uint64_t)v;
            return 0;
        }
    }
    return -EINVAL;
}

bool xcp__sim_uuid_valid(const char *u)
{
    int i;

    if (!u || strlen(u) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)u[i])) {
            return false;
        }
    }
    return true;
}

/* Splits a line in place into space-separated tokens. */
int xcp__sim_tokenize(char *line, char **tok)
{
    int n = 0;
    char *p = line;

    while (*p && n < MAX_TOKENS) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        tok[n++] = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = '\0';
    }
    return *p ? -1 : n;
}

/* ---- files --------------------------------------------------------------- */

static int fsync_dir_of(const char *path)
{
    char *dir = strdup(path), *slash;
    int fd, rc = 0;

    if (!dir)
        return -ENOMEM;
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

int xcp__sim_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    size_t done = 0;
    ssize_t n;

    while (done < len) {
        n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

/* Replaces path with data so that a reader sees the old or the new file. */
int xcp__sim_write_atomic(const char *path, const void *data, size_t len,
                          const char *what, xcp_hv_error *err)
{
    char *tmp = NULL;
    int fd = -1, rc;

    if (asprintf(&tmp, "%s.tmp", path) < 0) {
        tmp = NULL;
        rc = oom(err);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = xcp__hv_error_set(err, -errno, "sim: cannot create %s %s: %s",
                               what, tmp, strerror(errno));
        goto out;
    }
    rc = xcp__sim_write_all(fd, data, len);
    if (rc < 0) {
        xcp__hv_error_set(err, rc, "sim: cannot write %s %s: %s", what, tmp,
                          strerror(-rc));
        goto out;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        rc = xcp__hv_error_set(err, -errno, "sim: cannot sync %s %s: %s",
                               what, tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = xcp__hv_error_set(err, -errno, "sim: cannot rename %s to %s: %s",
                               tmp, path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    rc = fsync_dir_of(path);
    if (rc < 0)
        xcp__hv_error_set(err, rc, "sim: cannot sync the directory of %s: %s",
                          path, strerror(-rc));
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
int xcp__sim_read_all(const char *path, size_t max, char **out, size_t *len,
                      const char *what, xcp_hv_error *err)
{
    struct buf b = {0};
    char chunk[65536];
    ssize_t n;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return xcp__hv_error_set(err, -errno, "sim: cannot open %s %s: %s",
                                 what, path, strerror(errno));
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = xcp__hv_error_set(err, -errno, "sim: cannot read %s %s: %s",
                                   what, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (b.len + (size_t)n > max) {
            rc = xcp__hv_error_set(err, -EFBIG,
                                   "sim: %s %s is larger than %zu bytes", what,
                                   path, max);
            goto out;
        }
        xcp__sim_buf_add(&b, chunk, (size_t)n);
    }
    if (!b.p)
        xcp__sim_buf_add(&b, "", 0);
    if (b.failed) {
        rc = oom(err);
        goto out;
    }
    *out = b.p;
    *len = b.len;
    b.p = NULL;
out:
    close(fd);
    free(b.p);
    return rc;
}
