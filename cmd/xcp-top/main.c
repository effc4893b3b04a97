/*
 * xcp-top: entry point. Parses the command line, opens a session the way
 * xe does (a server given with -s; else this host's xcpd through its
 * socket when one listens; else the engine of the state directory,
 * embedded in this process) and runs the batch loop or the screen.
 */
#include "top.h"
#include "../common/conn.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long xcp-top waits for the state directory while another process
 * holds it and no daemon listens yet. */
#define TOP_LOCK_TIMEOUT_MS 10000

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* -pwf: user name on the first line, password on the second. */
static int read_pwfile(top_opts *o, char *buf, size_t len)
{
    FILE *f = fopen(o->pwfile, "r");
    size_t n;

    if (!f) {
        fprintf(stderr, "xcp-top: cannot open password file '%s': %s\n",
                o->pwfile, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (xcmd_pwfile_split(buf, &o->user, &o->password) < 0) {
        fprintf(stderr, "xcp-top: password file '%s': expecting the user "
                        "name on the first line, the password on the "
                        "second\n",
                o->pwfile);
        return -1;
    }
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
    xcp_remote_options ro;
    char *uri = c->where;
    int rc;

    if (c->via == TOP_VIA_NONE && xcmd_is_local(o->server, o->port)) {
        /* As xe: the daemon's socket, else the engine (waiting while a
         * daemon starts). */
        rc = xcmd_open_here(&c->s, "xcp-top", TOP_LOCK_TIMEOUT_MS, uri,
                            sizeof(c->where));
        if (rc <= 0) {
            if (rc == 0) {
                c->via = TOP_VIA_ENGINE;
                snprintf(c->where, sizeof(c->where), "local %s",
                         xcp_session_state_dir(c->s));
            }
            return rc;
        }
        c->via = TOP_VIA_SOCKET;
    } else if (c->via == TOP_VIA_NONE) {
        if (xcmd_server_uri(uri, sizeof(c->where), o->server, o->port,
                            o->nossl)
            < 0) {
            const char *params[] = {o->server, "server name too long"};

            return xcp_error_set("CONNECTION_FAILED", 2, params);
        }
        c->via = TOP_VIA_REMOTE;
    }
    /* Reopened the way it went the first time: once on a daemon, never
     * the engine (it would hold the state dir the daemon restarts on). */
    xcmd_remote_options(&ro, uri, o->user, o->password, "xcp-top");
    ro.timeout_ms = 60000;
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

/* The session lost, a daemon restarting: its socket or port come back
 * within this many seconds, or the monitor gives up. */
#define REOPEN_WAIT_S 15.0

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Open again after a lost session, retrying while the daemon is away
 * (CONNECTION_FAILED, a transport error) for up to REOPEN_WAIT_S. */
static int reopen(top_conn *c)
{
    double until = mono_s() + REOPEN_WAIT_S;
    struct timespec nap = {0, 200 * 1000 * 1000};

    for (;;) {
        const xcp_error *e;

        if (top_conn_open(c) == 0)
            return 0;
        e = xcp_error_last();
        if (stop || mono_s() >= until ||
            !(e && (e->code == XCP_EIO ||
                    (e->name && !strcmp(e->name, "CONNECTION_FAILED")))))
            return -1;
        nanosleep(&nap, NULL);
    }
}

int top_refresh(top_conn *c, top_view *v, top_sample *out)
{
    int tries;

    for (tries = 0; tries < 2; tries++) {
        if (!c->s && (tries == 0 ? top_conn_open(c) : reopen(c)) < 0)
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
