/*
 * libFuzzer target: xcpd's HTTP request path, in process. Each input is
 * raw bytes sent by a client: they go through one end of a socketpair
 * whose other end is handed to a libmicrohttpd daemon (no listen socket)
 * running the daemon's real handler (cmd/xcpd/http.c) over a real server
 * on a temporary state directory (XCP_HV=sim), opened once per process.
 * The response is read until the daemon closes or goes quiet. Inputs of
 * odd length go to a listener that behaves as the local unix socket (its
 * peer is root: logins succeed and transfers need no session), the others
 * to a TCP one. Nothing may crash, leak or hang.
 */
#define _GNU_SOURCE

#include "xcpd.h"

#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <xcp/xcp.h>

/* "root" with password "secret", so logins over the TCP listener can
   succeed when an input gets that far. */
#define AUTH_LINE                                                              \
    "root:$6$fuzzsalt$iDTMfLlIWXnU0u/ucN8Rvel1jyy/OslJpB.sv1b7aqQg/"           \
    "Na4Y9B47sFqgSiQ4wv/4SbFVVCnHAGIJVpklv8Rc.\n"

/* How long the daemon may stay silent before an input is given up (a
   request waiting for body bytes that will never come), and how long
   while the engine still holds a request of ours. */
#define QUIET_MS 30
#define BUSY_MS 3000

static xcpd_http http;
static xcpd_listener listeners[2];
static struct MHD_Daemon *daemons[2];
static xcpd_guard *guard; /* the TCP listener's, as in the daemon */
static char state_dir[] = "/tmp/fuzz_http.XXXXXX";

static void die(const char *what)
{
    fprintf(stderr, "fuzz_http: %s: %s\n", what, strerror(errno));
    abort();
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* At a normal exit, stop in the daemon's order (the engine completes
   what is parked before MHD stops) so that LeakSanitizer sees real
   leaks only, and remove the state directory. */
static void cleanup(void)
{
    long until = now_ms() + 2000;
    unsigned i;

    if (http.srv != NULL)
        xcp_server_shutdown(http.srv);
    while (xcpd_http_dispatched(&http) > 0 && now_ms() < until)
        usleep(1000);
    for (i = 0; i < 2; i++)
        if (daemons[i] != NULL)
            MHD_stop_daemon(daemons[i]);
    xcpd_guard_free(guard);
    if (http.srv != NULL)
        xcp_server_close(http.srv);
    xcpd_http_destroy(&http);
    nftw(state_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void open_server(void)
{
    char *dir = state_dir;
    char auth[sizeof(state_dir) + 16];
    xcp_server_options so;
    xcp_server *srv = NULL;
    FILE *f;

    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    snprintf(auth, sizeof(auth), "%s/auth", dir);
    f = fopen(auth, "w");
    if (f == NULL || fputs(AUTH_LINE, f) < 0 || fclose(f) != 0)
        die("auth file");
    memset(&so, 0, sizeof(so));
    so.version = XCP_SERVER_OPTIONS_VERSION;
    so.state_dir = dir;
    so.hv = "sim";
    so.auth_file = auth;
    so.auth_fail_delay_ms = 1;
    if (xcp_server_open(&srv, &so) < 0) {
        const xcp_error *e = xcp_error_last();

        /* Still fuzz the HTTP layer: the handler answers 503. */
        fprintf(stderr, "fuzz_http: no engine (%s); RPCs answer 503\n",
                e != NULL && e->name != NULL ? e->name : "error");
        srv = NULL;
    }
    xcpd_http_init(&http, srv, 0);
    /* Inputs that end the connection mid-transfer must not stall it. */
    http.transfer_timeout_s = 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    unsigned i;

    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    setenv("XCP_HV", "sim", 0);
    setenv("XCP_DB_FSYNC", "never", 0);
    setenv("XCP_SIM_HOST_MEMORY", "64GiB", 0);
    setenv("XCP_SIM_HOST_CPUS", "8", 0);
    open_server();
    {
        xcpd_guard_limits gl = {2000u, 2000u, 1u};

        guard = xcpd_guard_new(&gl);
        if (guard == NULL)
            die("xcpd_guard_new");
    }
    for (i = 0; i < 2; i++) {
        listeners[i].http = &http;
        listeners[i].local = (int)i;
        daemons[i] = MHD_start_daemon(
            MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME
                | MHD_USE_NO_LISTEN_SOCKET,
            0, i == 0 ? xcpd_guard_accept : NULL, i == 0 ? guard : NULL,
            xcpd_access, &listeners[i],
            MHD_OPTION_CONNECTION_LIMIT, 2000u,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
            MHD_OPTION_CONNECTION_TIMEOUT, 1u,
            MHD_OPTION_NOTIFY_COMPLETED, xcpd_completed, &listeners[i],
            MHD_OPTION_NOTIFY_CONNECTION, xcpd_guard_notify,
            i == 0 ? guard : NULL,
            MHD_OPTION_END);
        if (daemons[i] == NULL)
            die("MHD_start_daemon");
    }
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int local = (int)(size & 1), sv[2];
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t off = 0;
    char buf[65536];
    size_t head = 0; /* bytes of the reply checked against "HTTP/" */
    int wr_open = 1;
    long quiet_since;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair");
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(4242);
    /* MHD owns sv[1] from here, also on failure. */
    if (MHD_add_connection(daemons[local], sv[1],
                           local ? (const struct sockaddr *)&sun
                                 : (const struct sockaddr *)&sin,
                           local ? (socklen_t)sizeof(sa_family_t)
                                 : (socklen_t)sizeof(sin))
        != MHD_YES) {
        close(sv[0]);
        return 0;
    }

    /* Write and read together: the daemon may answer (and close) before
       it has read everything, or stop reading until we read. */
    quiet_since = now_ms();
    for (;;) {
        struct pollfd p = {sv[0], POLLIN | (wr_open ? POLLOUT : 0), 0};
        int n = poll(&p, 1, 5);
        ssize_t got;

        if (n < 0 && errno != EINTR)
            die("poll");
        if (wr_open && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = off < size ? send(sv[0], data + off, size - off,
                                          MSG_NOSIGNAL | MSG_DONTWAIT)
                                   : 0;

            if (w > 0)
                off += (size_t)w;
            if (off == size || (w < 0 && errno != EAGAIN)) {
                /* The client has said everything. */
                shutdown(sv[0], SHUT_WR);
                wr_open = 0;
                quiet_since = now_ms();
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            got = recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
                break; /* closed by the daemon */
            if (got > 0) {
                /* The reply's start may come in pieces shorter than the
                   prefix: check each byte of it as it arrives. */
                size_t k = 5 - head < (size_t)got ? 5 - head : (size_t)got;

                if (memcmp(buf, &"HTTP/"[head], k) != 0) {
                    fprintf(stderr, "fuzz_http: reply is not HTTP\n");
                    abort();
                }
                head += k;
                quiet_since = now_ms();
                continue;
            }
        }
        if (!wr_open
            && now_ms() - quiet_since
                   > (xcpd_http_dispatched(&http) > 0 ? BUSY_MS : QUIET_MS))
            break;
    }
    /* Whatever the daemon still holds (a body it waits for) ends with
       its connection timeout. */
    close(sv[0]);
    return 0;
}
