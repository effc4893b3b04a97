/*
 * hv/xen/xen_bridge.c - dom0's Linux bridges for the networks' VIFs
 * (xen_bridge.h). libxl's vif-bridge script only adds a vif to its bridge:
 * the bridge itself is made here. Those made here carry an ifalias mark,
 * so a restarted daemon still knows them from the host's own bridges.
 */
#ifdef XCP_HAVE_XEN

#include "xen_bridge.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MARK "made by libxcp"

/* /sys/class/net/<name>/<what> into buf; false if it cannot be built. */
static bool sys_path(char *buf, size_t len, const char *name,
                     const char *what)
{
    int n = snprintf(buf, len, "/sys/class/net/%s/%s", name, what);

    return n > 0 && (size_t)n < len;
}

static void set_mark(const char *name)
{
    char p[96];
    FILE *f;

    if (!sys_path(p, sizeof(p), name, "ifalias") || !(f = fopen(p, "we")))
        return; /* the mark is a courtesy: the bridge works without it */
    fputs(MARK "\n", f);
    fclose(f);
}

static bool has_mark(const char *name)
{
    char p[96], line[64] = "";
    FILE *f;

    if (!sys_path(p, sizeof(p), name, "ifalias") || !(f = fopen(p, "re")))
        return false;
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    return strcmp(line, MARK) == 0;
}

/* The number of ports on bridge `name` (its brif/ entries), -1 if none. */
static int ports(const char *name)
{
    char p[96];
    struct dirent *e;
    DIR *d;
    int n = 0;

    if (!sys_path(p, sizeof(p), name, "brif") || !(d = opendir(p)))
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int check_name(const char *name, xcp_hv_error *err)
{
    if (!xcp__hv_bridge_name_valid(name))
        return xcp__hv_error_set(err, -ENODEV,
                                 "xen: '%s' is not a bridge name (Linux "
                                 "takes 1 to 15 characters, no '/', ':' or "
                                 "blank)", name);
    return 0;
}

/* Is interface `name` (which exists) a bridge? */
static bool is_bridge(const char *name)
{
    char p[96];

    return sys_path(p, sizeof(p), name, "bridge") && access(p, F_OK) == 0;
}

static int bridge_socket(xcp_hv_error *err)
{
    int s = socket(AF_LOCAL, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (s < 0)
        return xcp__hv_error_set(err, -errno, "xen: socket: %s",
                                 strerror(errno));
    return s;
}

int xcp__xen_bridge_ensure(const char *name, xcp_hv_error *err)
{
    struct ifreq ifr;
    int s, rc;

    if (!name || !*name)
        return 0;
    if ((rc = check_name(name, err)) < 0 || (s = rc = bridge_socket(err)) < 0)
        return rc;
    rc = 0;
    if (ioctl(s, SIOCBRADDBR, name) == 0) {
        set_mark(name);
    } else if (errno != EEXIST) {
        rc = xcp__hv_error_set(err, -ENODEV,
                               "xen: cannot create bridge %s: %s", name,
                               strerror(errno));
        goto out;
    } else if (!is_bridge(name)) {
        rc = xcp__hv_error_set(err, -ENODEV,
                               "xen: %s is an interface of dom0 but not a "
                               "bridge: no VIF can join it", name);
        goto out;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        if (ifr.ifr_flags & IFF_UP)
            goto out;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) == 0)
            goto out;
    }
    rc = xcp__hv_error_set(err, -ENODEV, "xen: cannot bring bridge %s up: "
                           "%s", name, strerror(errno));
out:
    close(s);
    return rc;
}

int xcp__xen_bridge_remove(const char *name, xcp_hv_error *err)
{
    struct ifreq ifr;
    int s, rc, n;

    if (!name || !*name)
        return 0;
    if ((rc = check_name(name, err)) < 0)
        return rc;
    n = ports(name);
    if (n < 0 || !has_mark(name))
        return 0; /* not there, or not ours */
    if (n > 0)
        return xcp__hv_error_set(err, -EBUSY,
                                 "xen: bridge %s still has %d port(s)", name,
                                 n);
    if ((s = rc = bridge_socket(err)) < 0)
        return rc;
    rc = 0;
    /* a bridge that is up cannot be deleted */
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags &= ~IFF_UP;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    if (ioctl(s, SIOCBRDELBR, name) < 0 && errno != ENXIO)
        rc = xcp__hv_error_set(err, -errno,
                               "xen: cannot remove bridge %s: %s", name,
                               strerror(errno));
    close(s);
    return rc;
}

#else
/* ISO C wants something in every translation unit. */
typedef int xcp__hv_xen_bridge_not_built;
#endif /* XCP_HAVE_XEN */
