/*
 * Host paths a client names (guest kernels, SR directories): lexical
 * checks, and "below one of these directories" with symlinks resolved,
 * so that neither ".." nor a symlink leads out of an allowed tree; and
 * the ':'-separated lists (of directories, of names) that configure them;
 * and making a directory with its parents; and writing a whole buffer.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

bool xcp__path_clean(const char *path)
{
    const char *p, *e;

    if (*path != '/')
        return false;
    for (p = path + 1; *p; p = *e ? e + 1 : e) {
        size_t n;
        e = strchrnul(p, '/');
        n = (size_t)(e - p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
    }
    return true;
}

/* Is path below dir (len bytes; trailing '/' ignored)? */
static bool below(const char *path, const char *dir, size_t len)
{
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (len == 1 && dir[0] == '/')
        return path[0] == '/' && path[1] != '\0';
    return len > 0 && !strncmp(path, dir, len) && path[len] == '/' &&
           path[len + 1] != '\0';
}

int xcp__path_canon(const char *path, char *out)
{
    char head[PATH_MAX], real[PATH_MAX];
    size_t len = strlen(path), cut;

    if (!xcp__path_clean(path) || len >= PATH_MAX)
        return -EINVAL;
    memcpy(head, path, len + 1);
    /* Resolve the deepest ancestor that exists; keep the rest as is. */
    for (cut = len;;) {
        if (cut == 0) { /* nothing below "/" exists */
            memcpy(out, path, len + 1);
            return 0;
        }
        if (realpath(head, real)) {
            size_t rl = strlen(real);
            if (rl == 1 && cut < len)
                rl = 0; /* "/" then "/rest" */
            if (rl + (len - cut) >= PATH_MAX)
                return -ENAMETOOLONG;
            memcpy(out, real, rl);
            memcpy(out + rl, path + cut, len - cut + 1);
            return 0;
        }
        if (errno != ENOENT && errno != ENOTDIR)
            return -errno;
        while (cut > 1 && head[cut - 1] != '/')
            cut--;
        cut--; /* at the '/' (head[0] is one) */
        head[cut] = '\0';
    }
}

bool xcp__path_below_any(const char *path, const char *list)
{
    char dir[PATH_MAX], canon[PATH_MAX], cdir[PATH_MAX];
    const char *p, *e;

    if (!xcp__path_clean(path) || xcp__path_canon(path, canon) < 0)
        return false;
    for (p = list; *p; p = *e ? e + 1 : e) {
        size_t len;
        e = strchrnul(p, ':');
        len = (size_t)(e - p);
        if (len == 0 || len >= sizeof(dir))
            continue;
        memcpy(dir, p, len);
        dir[len] = '\0';
        /* Both the path and the directory as the kernel sees them. */
        if (xcp__path_canon(dir, cdir) == 0 &&
            below(canon, cdir, strlen(cdir)))
            return true;
    }
    return false;
}

bool xcp__path_lexically_below_any(const char *path, const char *list)
{
    const char *p, *e;

    if (!xcp__path_clean(path))
        return false;
    for (p = list; *p; p = *e ? e + 1 : e) {
        e = strchrnul(p, ':');
        if (e > p && *p == '/' && below(path, p, (size_t)(e - p)))
            return true;
    }
    return false;
}

bool xcp__list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    const char *p, *e;

    for (p = list; *p; p = *e ? e + 1 : e) {
        e = strchrnul(p, ':');
        if ((size_t)(e - p) == n && !strncmp(p, item, n))
            return true;
    }
    return false;
}

int xcp__mkdir_p(const char *path, unsigned mode)
{
    char buf[PATH_MAX];
    char *p;

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int xcp__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int xcp__write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    ssize_t w;

    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int xcp__file_replace(const char *dir, const char *path, const void *buf,
                      size_t n, unsigned mode)
{
    char tmp[PATH_MAX];
    int fd, err = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return -errno;
    if (xcp__write_all(fd, buf, n) < 0 || fsync(fd) < 0)
        err = errno;
    close(fd);
    if (!err && rename(tmp, path) < 0)
        err = errno;
    if (err) {
        unlink(tmp);
        return -err;
    }
    return xcp__fsync_dir(dir);
}
