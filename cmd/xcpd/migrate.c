/*
 * xcpd: CONNECT /migrate_receive?session_id=&ref=&seq= -- the destination's
 * end of VM.pool_migrate between hosts of a pool. Another host's daemon
 * (api/vm_migrate.c) opens it on a pool session; the connection is taken
 * from MHD (suspended), answered 200, and handed to a thread that runs
 * xcp_server_migrate_receive on its socket; at the end the thread resumes
 * the connection, which the handler then closes. Plain http only: the
 * driver's stream needs the socket itself.
 */
#include "xcpd.h"

#include <xcp/errors.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

struct xcpd_migrate {
    int done; /* the thread ended: close the connection (atomic) */
};

struct job {
    xcp_server *srv;
    struct MHD_Connection *c;
    xcpd_migrate *st;
    int fd, verbose;
    char *vm, *session, *seq, addr[64];
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    xcp_server_migrate_request r;
    const xcp_error *e;
    int rc;

    memset(&r, 0, sizeof(r));
    r.vm = j->vm;
    r.session_id = j->session;
    r.seq = j->seq;
    r.peer.address = j->addr;
    rc = xcp_server_migrate_receive(j->srv, &r, j->fd);
    e = xcp_error_last();
    if (rc < 0)
        xcpd_log(LOG_WARNING, "migration of %s from %s: %s%s%s", j->vm,
                 j->addr, e && e->name ? e->name : "failed",
                 e && e->nparams ? ": " : "",
                 e && e->nparams ? e->params[0] : "");
    else
        xcpd_log(LOG_INFO, "migration of %s from %s: received", j->vm,
                 j->addr);
    xcp_error_clear();
    /* the handler closes the connection once resumed */
    __atomic_store_n(&j->st->done, 1, __ATOMIC_SEQ_CST);
    MHD_resume_connection(j->c);
    free(j->vm);
    free(j->session);
    free(j->seq);
    free(j);
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

enum MHD_Result xcpd_migrate_step(xcpd_listener *l, struct MHD_Connection *c,
                                  xcp_server_peer peer, xcpd_migrate **state,
                                  size_t *upload_data_size)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\n"
                             "Cache-Control: no-cache, no-store\r\n\r\n";
    xcpd_migrate *st = *state;
    const char *vm, *session;
    xcpd_io io;
    pthread_t th;
    pthread_attr_t at;
    struct job *j;

    if (*upload_data_size > 0) { /* a CONNECT has no body: ignore one */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st != NULL) /* resumed: the migration is over */
        return __atomic_load_n(&st->done, __ATOMIC_SEQ_CST) ? MHD_NO
                                                            : MHD_YES;
    if (l->http->srv == NULL)
        return xcpd_refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "Service unavailable\n");
    if (l->local)
        return xcpd_refuse(c, MHD_HTTP_BAD_REQUEST,
                           "migrate_receive: only from another host\n");
    if (MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION)
            != NULL
        && MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION)
                   ->tls_session != NULL)
        return xcpd_refuse(c, MHD_HTTP_BAD_REQUEST,
                           "migrate_receive: plain http only\n");
    vm = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ref");
    session = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                          "session_id");
    if (vm == NULL || session == NULL)
        return xcpd_refuse(c, MHD_HTTP_BAD_REQUEST,
                           "migrate_receive needs ref= and session_id=\n");
    st = calloc(1, sizeof(*st));
    j = calloc(1, sizeof(*j));
    if (st == NULL || j == NULL) {
        free(st);
        free(j);
        return MHD_NO;
    }
    j->srv = l->http->srv;
    j->c = c;
    j->st = st;
    j->verbose = l->http->verbose;
    j->vm = strdup(vm);
    j->session = strdup(session);
    j->seq = dup_or_null(
        MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seq"));
    snprintf(j->addr, sizeof(j->addr), "%s", peer.address ? peer.address : "?");
    *state = st;
    if (j->vm == NULL || j->session == NULL || xcpd_io_take(c, &io) < 0) {
        free(j->vm);
        free(j->session);
        free(j->seq);
        free(j);
        return MHD_NO;
    }
    j->fd = io.fd;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (xcpd_io_write(&io, ok, sizeof(ok) - 1) < 0
        || pthread_create(&th, &at, job_main, j) != 0) {
        pthread_attr_destroy(&at);
        xcpd_io_release(&io);
        free(j->vm);
        free(j->session);
        free(j->seq);
        free(j);
        st->done = 1;
        MHD_resume_connection(c);
        return MHD_NO;
    }
    pthread_attr_destroy(&at);
    xcpd_io_release(&io);
    return MHD_YES;
}

void xcpd_migrate_free(xcpd_migrate *st)
{
    free(st);
}
