/*
 * xcp-top: entry point. Parses the command line, opens a session the way
 * xe does (a server given with -s; else this host's xcpd through its
 * socket when one listens; else the engine of the state directory,
 * embedded in this process) and runs the batch loop or the screen.
 */
/* _XOPEN_SOURCE (S_ISSOCK) comes with ncurses' cflags. */

#include "top.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The engine's default state directory (see xcp_open_options). */
static void state_dir(char *buf, size_t len)
{
    const char *dir = getenv("XCP_STATE_DIR"), *home;

    if (dir && *dir) {
        snprintf(buf, len, "%s", dir);
    } else if (geteuid() == 0) {
        snprintf(buf, len, "/var/lib/xcp");
    } else if ((dir = getenv("XDG_DATA_HOME")) && *dir) {
        snprintf(buf, len, "%s/xcp", dir);
    } else {
        home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(geteuid());
            home = pw ? pw->pw_dir : "/tmp";
        }
        snprintf(buf, len, "%s/.local/share/xcp", home);
    }
}

/* Whether a daemon accepts connections on path (not a stale socket). */
static bool listening(const char *path)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, rc;

    if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)
        || strlen(path) >= sizeof(sa.sun_path))
        return false;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return false;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return rc == 0;
}

/* -pwf: user name on the first line, password on the second. */
static int read_pwfile(top_opts *o, char *buf, size_t len)
{
    FILE *f = fopen(o->pwfile, "r");
    size_t n;
    char *nl;

    if (!f) {
        fprintf(stderr, "xcp-top: cannot open password file '%s': %s\n",
                o->pwfile, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(nl = strchr(buf, '\n')) || nl[1] == '\0') {
        fprintf(stderr, "xcp-top: password file '%s': expecting the user "
                        "name on the first line, the password on the "
                        "second\n",
                o->pwfile);
        return -1;
    }
    *nl = '\0';
    o->user = buf;
    o->password = nl + 1;
    if ((nl = strchr(nl + 1, '\n')))
        *nl = '\0';
    return 0;
}

static void lib_error(const char *what)
{
    const xcp_error *e = xcp_error_last();
    size_t i;

    fprintf(stderr, "xcp-top: %s: %s", what,
            e && e->name ? e->name : "unknown error");
    for (i = 0; e && i < e->nparams; i++)
        fprintf(stderr, "%s%s", i ? ", " : " [", e->params[i]);
    fputs(e && e->nparams ? "]\n" : "\n", stderr);
}

int top_conn_open(top_conn *c)
{
    const top_opts *o = c->o;
    char dir[4096], sock[4200], uri[600];
    xcp_remote_options ro;
    xcp_open_options lo;
    bool local = !o->server
                 || (o->port < 0 && (!strcmp(o->server, "localhost")
                                     || !strcmp(o->server, "127.0.0.1")));

    memset(&ro, 0, sizeof(ro));
    ro.version = XCP_REMOTE_OPTIONS_VERSION;
    ro.originator = "xcp-top";
    ro.user = o->user ? o->user : "root";
    ro.password = o->password ? o->password : "null";
    ro.insecure = true; /* XAPI hosts' certificates are self-signed */
    ro.timeout_ms = 60000;
    if (local) {
        state_dir(dir, sizeof(dir));
        snprintf(sock, sizeof(sock), "%s/xapi", dir);
        /* A daemon's socket, else the engine; once on the daemon, never
         * the engine (it would hold the state dir the daemon restarts
         * on). */
        if (c->via == TOP_VIA_ENGINE
            || (c->via == TOP_VIA_NONE && !listening(sock))) {
            memset(&lo, 0, sizeof(lo));
            lo.version = XCP_OPEN_OPTIONS_VERSION;
            lo.originator = "xcp-top";
            lo.lock_timeout_ms = 10000;
            snprintf(c->where, sizeof(c->where), "local %s", dir);
            c->via = TOP_VIA_ENGINE;
            return xcp_session_open_local(&c->s, &lo);
        }
        snprintf(uri, sizeof(uri), "unix:%s", sock);
        ro.protocol = XCP_REMOTE_JSONRPC;
        c->via = TOP_VIA_SOCKET;
    } else {
        bool v6 = strchr(o->server, ':') && o->server[0] != '[';
        char port[16] = "";

        if (o->port >= 0)
            snprintf(port, sizeof(port), ":%d", o->port);
        snprintf(uri, sizeof(uri), "%s://%s%s%s%s",
                 o->nossl ? "http" : "https", v6 ? "[" : "", o->server,
                 v6 ? "]" : "", port);
        c->via = TOP_VIA_REMOTE;
    }
    ro.uri = uri;
    snprintf(c->where, sizeof(c->where), "%s", uri);
    if (xcp_session_open_remote(&c->s, &ro) < 0) {
        c->s = NULL;
        return -1;
    }
    return 0;
}

/* Whether the last failure means the session is gone, not the request. */
static bool session_lost(void)
{
    const xcp_error *e = xcp_error_last();

    return e && (e->code == XCP_EIO
                 || (e->name && !strcmp(e->name, "SESSION_INVALID")));
}

int top_refresh(top_conn *c, top_view *v, top_sample *out)
{
    int tries;

    for (tries = 0; tries < 2; tries++) {
        if (!c->s && top_conn_open(c) < 0)
            return -1;
        if (top_sample_take(c->s, v, out) == 0)
            return 0;
        if (c->via == TOP_VIA_ENGINE || !session_lost())
            return -1;
        /* A new session (the daemon restarted, the connection broke):
         * the records again from scratch. */
        xcp_session_close(c->s);
        c->s = NULL;
        top_cache_dispose(&v->cache);
    }
    return -1;
}

/* Sleep up to secs seconds, less when a signal stops us. */
static void pause_for(double secs)
{
    struct timespec ts;

    ts.tv_sec = (time_t)secs;
    ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
    while (!stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int run_batch(top_conn *c, top_view *v)
{
    const top_opts *o = c->o;
    top_sample smp;
    long it;
    int rc = 0;

    memset(&smp, 0, sizeof(smp));
    v->all_ds = true;
    for (it = 0; !stop && (o->count < 0 || it < o->count); it++) {
        if (it > 0)
            pause_for(o->interval);
        if (stop)
            break;
        if (top_refresh(c, v, &smp) < 0) {
            lib_error("cannot read the hosts and VMs");
            rc = 1;
            break;
        }
        top_batch_print(stdout, &smp);
        if (ferror(stdout)) {
            rc = 1;
            break;
        }
    }
    top_sample_clear(&smp);
    return rc;
}

int main(int argc, char **argv)
{
    char pwbuf[4096];
    struct sigaction sa;
    top_conn conn;
    top_view view;
    top_opts o;
    int rc, err;

    top_opts_parse(&o, argc - 1, argv + 1);
    switch (o.action) {
    case TOP_HELP:
        top_usage(stdout);
        return 0;
    case TOP_VERSION:
        printf("xcp-top %s\n", xcp_version());
        return 0;
    case TOP_BAD:
        fprintf(stderr, "%s\n", o.errtext);
        return 1;
    case TOP_RUN:
        break;
    }
    if (o.pwfile && read_pwfile(&o, pwbuf, sizeof(pwbuf)) < 0)
        return 1;
    memset(&view, 0, sizeof(view));
    view.sort = o.sort;
    view.reverse = o.reverse;
    view.hosts_only = o.hosts_only;
    if (o.filter) {
        err = regcomp(&view.filter, o.filter,
                      REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (err) {
            char msg[128];

            regerror(err, &view.filter, msg, sizeof(msg));
            fprintf(stderr, "xcp-top: bad filter '%s': %s\n", o.filter, msg);
            return 1;
        }
        view.have_filter = true;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    memset(&conn, 0, sizeof(conn));
    conn.o = &o;
    if (top_conn_open(&conn) < 0) {
        lib_error("cannot open a session");
        rc = 1;
        goto out;
    }
    rc = o.batch ? run_batch(&conn, &view) : top_ui_run(&conn, &view, &stop);
out:
    if (conn.s)
        xcp_session_close(conn.s);
    top_view_dispose(&view);
    return rc;
}
