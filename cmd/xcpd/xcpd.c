/*
 * xcpd: the XenAPI daemon. A thin front end: it parses options, opens the
 * library's server on a state directory, binds the listeners (the local
 * unix socket, plain and TLS TCP), runs one libmicrohttpd daemon per
 * listener over the handler in http.c, and shuts everything down in order
 * on SIGTERM or SIGINT. Everything XenAPI happens in the library.
 */
#define _GNU_SOURCE

#include "xcpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <xcp/xcp.h>

#define MAX_LISTENERS 32
#define TCP_POOL 4u
#define UNIX_POOL 2u
#define CONNECTION_LIMIT 4000u
/* Long polls hold their connection, so one client (Xen Orchestra with
   several event.from loops and a pool of callers, or a test with a
   thousand parked requests) may need many at once. */
#define PER_IP_LIMIT 2048u
#define MEMORY_LIMIT ((size_t)64 * 1024)
#define IDLE_TIMEOUT_S 30u
/* Connections no request has authenticated yet (guard.c): per address,
   in all (per listener) and their idle timeout. Room for a client that
   opens a few hundred connections before logging in on them, far below
   CONNECTION_LIMIT so that anonymous sockets never fill it. */
#define UNAUTH_PER_IP 256u
#define UNAUTH_LIMIT 1024u
#define UNAUTH_TIMEOUT_S 10u
/* TLS 1.2 and 1.3 only, forward-secret key exchange only (no static RSA),
   GnuTLS's 128-bit-and-up ciphers. */
#define TLS_PRIORITIES \
    "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:" \
    "+ECDHE-RSA"
/* An NBD client reading a disk never pauses this long; one that stopped
   talking holds one of the front end's 64 places until then. */
#define NBD_IDLE_S 3600u
#define FD_RESERVE 256u
/* After xcp_server_shutdown() every parked request has its reply; give
   the connections this long to write them before the transport stops. */
#define DRAIN_MS 5000

typedef struct listen_spec {
    const char *text;         /* as given, for messages */
    int tls;
    struct sockaddr_storage sa;
    socklen_t salen;
} listen_spec;

typedef struct listener {
    xcpd_listener cls;        /* the handler's view */
    struct MHD_Daemon *d;
    xcpd_guard *guard;        /* TCP: its anonymous connections */
    int fd;                   /* bound by us, handed to MHD */
    int tls;
    int ipv6;
    char url[INET6_ADDRSTRLEN + 32 + PATH_MAX];
} listener;

typedef struct options {
    const char *state_dir;
    const char *socket;       /* NULL: default; "": none */
    listen_spec listen[MAX_LISTENERS];
    size_t nlisten;
    const char *tls_cert, *tls_key;
    const char *auth_file, *pam_service;
    unsigned session_timeout_s, session_limit, auth_fail_delay_ms;
    const char *tls_priorities;
    const char *nbd_listen;   /* NULL: no NBD server */
    unsigned nbd_idle_s;      /* NBD clients silent this long go (0: never) */
    unsigned idle_timeout_s, unauth_timeout_s, unauth_per_ip, unauth_limit;
    int syslog, verbose;
} options;

static void usage(FILE *f)
{
    fputs("Usage: xcpd [OPTION]...\n"
          "Serve XenAPI (XML-RPC and JSON-RPC over HTTP) on a libxcp "
          "state directory.\n"
          "\n"
          "  --state-dir DIR        state directory (default: $XCP_STATE_DIR,\n"
          "                         /var/lib/xcp for root)\n"
          "  --socket PATH          unix socket (default: DIR/xapi; '' "
          "disables)\n"
          "  --no-socket            no unix socket\n"
          "  --listen ADDR:PORT     plain HTTP listener (repeatable; "
          "[IPv6]:PORT;\n"
          "                         port 0 lets the kernel choose)\n"
          "  --tls-listen ADDR:PORT HTTPS listener (repeatable)\n"
          "  --tls-cert FILE        PEM certificate (with --tls-key; default: "
          "a\n"
          "  --tls-key FILE         self-signed one kept in DIR)\n"
          "  --tls-priorities STR   GnuTLS priority string (default: TLS 1.2+\n"
          "                         with forward secrecy only:\n"
          "                         " TLS_PRIORITIES ")\n"
          "  --idle-timeout S       idle seconds before an authenticated\n"
          "                         connection is closed (default 30)\n"
          "  --unauth-timeout S     the same before a request on it has\n"
          "                         authenticated (default 10)\n"
          "  --unauth-per-ip N      unauthenticated TCP connections per "
          "client\n"
          "                         address (default 256)\n"
          "  --unauth-limit N       unauthenticated TCP connections per "
          "listener\n"
          "                         (default 1024)\n"
          "  --auth-file FILE       'user:HASH' lines (crypt(3) hashes); "
          "default PAM\n"
          "  --pam-service NAME     PAM service (default xapi)\n"
          "  --session-timeout S    idle seconds before a session ends\n"
          "  --session-limit N      sessions kept per originator\n"
          "  --auth-fail-delay MS   delay before a failed login is answered\n"
          "  --nbd-listen ADDR:PORT serve VDIs over NBD there (VDI.get_nbd_info;\n"
          "                         XAPI's port is 10809), with qemu-storage-daemon\n"
          "  --nbd-idle-timeout S   seconds an NBD connection may move no byte\n"
          "                         either way once negotiated before it is\n"
          "                         closed (default 3600; 0: never)\n"
          "  --syslog               log to syslog instead of stderr\n"
          "  --verbose              log every failed call and transfer\n"
          "  --help                 this text\n"
          "  --version              the version\n",
          f);
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "xcpd: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}

static int parse_unsigned(const char *s, unsigned *out)
{
    unsigned long v;
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT_MAX)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* "1.2.3.4:80" or "[::1]:443". */
static int parse_listen(const char *text, int tls, listen_spec *ls)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon, *h = text;
    size_t hlen;
    unsigned port;

    memset(ls, 0, sizeof(*ls));
    ls->text = text;
    ls->tls = tls;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');

        if (close == NULL || close[1] != ':')
            return -1;
        h = text + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - text);
    }
    if (hlen == 0 || hlen >= sizeof(host)
        || parse_unsigned(colon + 1, &port) < 0 || port > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (text[0] == '[') {
        struct sockaddr_in6 *s6 = (void *)&ls->sa;

        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -1;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        ls->salen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (void *)&ls->sa;

        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return -1;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        ls->salen = sizeof(*s4);
    }
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum {
        O_STATE = 256, O_SOCKET, O_NO_SOCKET, O_LISTEN, O_TLS_LISTEN,
        O_CERT, O_KEY, O_AUTH, O_PAM, O_TIMEOUT, O_LIMIT, O_DELAY,
        O_PRIORITIES, O_IDLE, O_UNAUTH_TIMEOUT, O_UNAUTH_PER_IP,
        O_UNAUTH_LIMIT, O_NBD, O_NBD_IDLE, O_SYSLOG, O_VERBOSE, O_HELP, O_VERSION,
    };
    /* The numeric options: where each goes, and whether 0 is allowed. */
    const struct {
        int opt;
        unsigned *to;
        int nonzero;
    } numbers[] = {
        {O_TIMEOUT, &o->session_timeout_s, 0},
        {O_LIMIT, &o->session_limit, 0},
        {O_DELAY, &o->auth_fail_delay_ms, 0},
        {O_IDLE, &o->idle_timeout_s, 1},
        {O_UNAUTH_TIMEOUT, &o->unauth_timeout_s, 1},
        {O_UNAUTH_PER_IP, &o->unauth_per_ip, 1},
        {O_UNAUTH_LIMIT, &o->unauth_limit, 1},
        {O_NBD_IDLE, &o->nbd_idle_s, 0},
    };
    size_t k;
    static const struct option longopts[] = {
        {"state-dir", required_argument, NULL, O_STATE},
        {"socket", required_argument, NULL, O_SOCKET},
        {"no-socket", no_argument, NULL, O_NO_SOCKET},
        {"listen", required_argument, NULL, O_LISTEN},
        {"tls-listen", required_argument, NULL, O_TLS_LISTEN},
        {"tls-cert", required_argument, NULL, O_CERT},
        {"tls-key", required_argument, NULL, O_KEY},
        {"auth-file", required_argument, NULL, O_AUTH},
        {"pam-service", required_argument, NULL, O_PAM},
        {"session-timeout", required_argument, NULL, O_TIMEOUT},
        {"session-limit", required_argument, NULL, O_LIMIT},
        {"auth-fail-delay", required_argument, NULL, O_DELAY},
        {"tls-priorities", required_argument, NULL, O_PRIORITIES},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"unauth-timeout", required_argument, NULL, O_UNAUTH_TIMEOUT},
        {"unauth-per-ip", required_argument, NULL, O_UNAUTH_PER_IP},
        {"unauth-limit", required_argument, NULL, O_UNAUTH_LIMIT},
        {"nbd-listen", required_argument, NULL, O_NBD},
        {"nbd-idle-timeout", required_argument, NULL, O_NBD_IDLE},
        {"syslog", no_argument, NULL, O_SYSLOG},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->tls_priorities = TLS_PRIORITIES;
    o->idle_timeout_s = IDLE_TIMEOUT_S;
    o->unauth_timeout_s = UNAUTH_TIMEOUT_S;
    o->unauth_per_ip = UNAUTH_PER_IP;
    o->unauth_limit = UNAUTH_LIMIT;
    o->nbd_idle_s = NBD_IDLE_S;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        for (k = 0; k < sizeof(numbers) / sizeof(numbers[0]); k++)
            if (numbers[k].opt == c)
                break;
        if (k < sizeof(numbers) / sizeof(numbers[0])) {
            if (parse_unsigned(optarg, numbers[k].to) < 0
                || (numbers[k].nonzero && *numbers[k].to == 0))
                return bad_usage("bad number '%s'", optarg);
            continue;
        }
        switch (c) {
        case O_STATE:
            o->state_dir = optarg;
            break;
        case O_SOCKET:
            o->socket = optarg;
            break;
        case O_NO_SOCKET:
            o->socket = "";
            break;
        case O_LISTEN:
        case O_TLS_LISTEN:
            if (o->nlisten == MAX_LISTENERS)
                return bad_usage("too many listeners (%s)", optarg);
            if (parse_listen(optarg, c == O_TLS_LISTEN,
                             &o->listen[o->nlisten])
                < 0)
                return bad_usage("bad listen address '%s' (want ADDR:PORT "
                                 "or [IPv6]:PORT)",
                                 optarg);
            o->nlisten++;
            break;
        case O_CERT:
            o->tls_cert = optarg;
            break;
        case O_KEY:
            o->tls_key = optarg;
            break;
        case O_AUTH:
            o->auth_file = optarg;
            break;
        case O_PAM:
            o->pam_service = optarg;
            break;
        case O_PRIORITIES:
            o->tls_priorities = optarg;
            break;
        case O_NBD: {
            listen_spec check;

            if (parse_listen(optarg, 1, &check) < 0)
                return bad_usage("bad NBD address '%s' (want ADDR:PORT or "
                                 "[IPv6]:PORT)", optarg);
            o->nbd_listen = optarg;
            break;
        }
        case O_SYSLOG:
            o->syslog = 1;
            break;
        case O_VERBOSE:
            o->verbose = 1;
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        case O_VERSION:
            printf("xcpd (libxcp) %s\n", xcp_version());
            return 0;
        case ':':
            return bad_usage("option '%s' needs an argument",
                             argv[optind - 1]);
        default:
            return bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument '%s'", argv[optind]);
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return bad_usage("%s", "--tls-cert and --tls-key go together");
    if (o->socket != NULL && o->socket[0] == '\0' && o->nlisten == 0)
        return bad_usage("%s", "nothing to listen on (no socket, no "
                               "--listen)");
    return -1; /* carry on */
}

/* ---- listeners ---------------------------------------------------------- */

static int bind_tcp(const listen_spec *ls, char *url, size_t urlsz)
{
    struct sockaddr_storage got;
    socklen_t gl = sizeof(got);
    char ip[INET6_ADDRSTRLEN];
    int one = 1, fd;
    unsigned port;

    fd = socket(ls->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* [::]:port means IPv6 only; 0.0.0.0:port is a separate listener. */
    if (ls->sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&ls->sa, ls->salen) < 0
        || listen(fd, 1024) < 0
        || getsockname(fd, (struct sockaddr *)&got, &gl) < 0)
        goto fail;
    if (got.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)&got;

        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
        snprintf(url, urlsz, "%s://[%s]:%u", ls->tls ? "https" : "http", ip,
                 port);
    } else {
        const struct sockaddr_in *s4 = (const void *)&got;

        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
        snprintf(url, urlsz, "%s://%s:%u", ls->tls ? "https" : "http", ip,
                 port);
    }
    return fd;
fail:
    xcpd_log(LOG_ERR, "cannot listen on %s: %s", ls->text, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* The local socket: only its owner (root, as on XAPI) may connect, so it
   is created with that mode rather than chmod'ed after a window. */
static int bind_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    mode_t old;
    int fd, rc;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        xcpd_log(LOG_ERR, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    /* A stale socket from a previous run (a live daemon would hold the
       state directory's lock, and we got it). Anything else is left
       alone. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            xcpd_log(LOG_ERR, "%s exists and is not a socket", path);
            return -1;
        }
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    old = umask(0177);
    rc = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 1024) < 0)
        goto fail;
    return fd;
fail:
    xcpd_log(LOG_ERR, "cannot listen on %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* MHD's own messages go where ours go. Once serving, they are about
 * single connections (a TLS handshake cut short, a peer resetting):
 * anyone who can connect could flood the log with them, so they show at
 * --verbose only. Before that, they explain why a listener failed to
 * start. */
static int mhd_quiet; /* atomic: read by libmicrohttpd's threads */

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    if (__atomic_load_n(&mhd_quiet, __ATOMIC_RELAXED))
        return;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    xcpd_log(LOG_WARNING, "mhd: %s", line);
}

/* Set once shutdown begins: new connections are then turned away. */
static int stopping; /* atomic: read by libmicrohttpd's threads */

/* Who may connect. Shutdown turns everyone away here rather than with
   MHD_quiesce_daemon(): in libmicrohttpd 0.9.75 that races with the
   daemon's own threads over the listen socket's epoll registration,
   and the loser panics (abort) when a connection event lands at the
   same moment, as clients hanging up while SIGTERM arrives do. */
static enum MHD_Result accept_conn(void *cls, const struct sockaddr *addr,
                                   socklen_t addrlen)
{
    listener *l = cls;

    if (__atomic_load_n(&stopping, __ATOMIC_SEQ_CST))
        return MHD_NO;
    return l->guard != NULL ? xcpd_guard_accept(l->guard, addr, addrlen)
                            : MHD_YES;
}

static int start_daemon(listener *l, const options *o, unsigned limit,
                        const char *cert, const char *key)
{
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME
                     | MHD_ALLOW_UPGRADE /* /console's WebSocket */
                     | MHD_USE_ERROR_LOG;
    unsigned pool = l->cls.local ? UNIX_POOL : TCP_POOL;
    /* Per-IP accounting is meaningless for unix peers, and only root
       can connect there: no guard either. */
    unsigned per_ip = l->cls.local ? 0u : PER_IP_LIMIT;
    xcpd_guard_limits gl;

    if (l->ipv6)
        flags |= MHD_USE_IPv6;
    if (l->tls)
        flags |= MHD_USE_TLS;
    /* Option values travel through varargs: each value has the exact type
       MHD reads (a wrong width silently shifts every later option). The
       logger comes first so that MHD's messages about the other options
       go through it. */
    /* TLS material rides in an option array, so one call serves both
       kinds of listener. */
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)o->tls_priorities},
        {MHD_OPTION_END, 0, NULL},
    };

    if (!l->cls.local) {
        /* The anonymous limit leaves room under the connection limit
           (which a low file limit may have cut). */
        gl.per_ip = o->unauth_per_ip;
        gl.total = o->unauth_limit < limit - limit / 4 ? o->unauth_limit
                                                       : limit - limit / 4;
        gl.trusted_timeout_s = o->idle_timeout_s;
        l->guard = xcpd_guard_new(&gl);
        if (l->guard == NULL) {
            xcpd_log(LOG_ERR, "out of memory");
            return -1;
        }
    }
    l->d = MHD_start_daemon(
        flags, 0, accept_conn, l,
        xcpd_access, &l->cls,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->fd,
        MHD_OPTION_THREAD_POOL_SIZE, pool,
        MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, MEMORY_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT,
        l->guard != NULL ? o->unauth_timeout_s : o->idle_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, xcpd_completed, &l->cls,
        MHD_OPTION_NOTIFY_CONNECTION, xcpd_guard_notify, l->guard,
        MHD_OPTION_ARRAY, l->tls ? tls : tls + 3,
        MHD_OPTION_END);
    if (l->d == NULL) {
        xcpd_log(LOG_ERR, "cannot start the HTTP server for %s", l->url);
        return -1;
    }
    l->fd = -1; /* MHD_stop_daemon() closes it */
    return 0;
}

/* Every listener may hold its connection limit at once; make the file
   limit cover that, or lower the connection limit to fit. */
static unsigned fit_fd_limit(size_t ndaemons)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)ndaemons * CONNECTION_LIMIT + FD_RESERVE;
    unsigned limit;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return CONNECTION_LIMIT;
    if (rl.rlim_cur < need) {
        struct rlimit want = rl;

        want.rlim_cur = need;
        if (want.rlim_max != RLIM_INFINITY && want.rlim_max < need)
            want.rlim_max = need; /* works for root */
        if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
            want.rlim_max = rl.rlim_max;
            want.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &want);
        }
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= need)
        return CONNECTION_LIMIT;
    limit = rl.rlim_cur > FD_RESERVE
                ? (unsigned)((rl.rlim_cur - FD_RESERVE) / ndaemons)
                : 16;
    if (limit < 16)
        limit = 16;
    xcpd_log(LOG_WARNING, "open file limit %lu: %u connections per listener",
             (unsigned long)rl.rlim_cur, limit);
    return limit;
}

/* ---- main --------------------------------------------------------------- */

static void drain(xcpd_http *h)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    int waited;

    for (waited = 0; waited < DRAIN_MS && xcpd_http_dispatched(h) > 0;
         waited += 10)
        nanosleep(&ts, NULL);
    if (xcpd_http_dispatched(h) > 0)
        xcpd_log(LOG_WARNING, "%lu replies not written at shutdown",
                 xcpd_http_dispatched(h));
}

int main(int argc, char **argv)
{
    static options o;
    static listener ls[MAX_LISTENERS + 1];
    xcp_server_options so;
    xcp_server *srv = NULL;
    xcpd_nbd *nbd = NULL;
    xcpd_http http;
    sigset_t mask;
    struct signalfd_siginfo si;
    const char *state;
    char *sock = NULL, *cert = NULL, *key = NULL;
    size_t n = 0, i;
    unsigned limit;
    int rc, sfd = -1, http_ready = 0, status = 1, any_tls = 0, restart = 0;

    rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.syslog)
        xcpd_log_use_syslog();
    xcpd_log_fatal();

    /* Signals are taken through a signalfd by the main thread alone; they
       are blocked before the library and MHD start their threads so that
       none of those threads receives them. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    /* SIGHUP: stop in order and start again (the library asks for it
       when this host joined or left a pool, as XAPI restarts). */
    sigaddset(&mask, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0
        || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
        xcpd_log(LOG_ERR, "signalfd: %s", strerror(errno));
        return 1;
    }

    memset(&so, 0, sizeof(so));
    so.version = XCP_SERVER_OPTIONS_VERSION;
    so.state_dir = o.state_dir;
    so.auth_file = o.auth_file;
    so.pam_service = o.pam_service;
    so.session_timeout_s = o.session_timeout_s;
    so.session_limit = o.session_limit;
    so.auth_fail_delay_ms = o.auth_fail_delay_ms;
    if (xcp_server_open(&srv, &so) < 0) {
        const xcp_error *e = xcp_error_last();

        xcpd_log(LOG_ERR, "cannot open the server on %s: %s%s%s",
                 o.state_dir != NULL ? o.state_dir : "the default state dir",
                 e != NULL && e->name != NULL ? e->name : "error",
                 e != NULL && e->nparams > 0 ? " " : "",
                 e != NULL && e->nparams > 0 ? e->params[0] : "");
        close(sfd);
        return 1;
    }
    state = xcp_server_state_dir(srv);
    if (state == NULL)
        state = o.state_dir != NULL ? o.state_dir : ".";
    xcpd_http_init(&http, srv, o.verbose);
    http_ready = 1;

    /* Bind everything first, so a busy port fails the start before any
       listener is served. */
    if (o.socket == NULL) {
        if (asprintf(&sock, "%s/xapi", state) < 0) {
            sock = NULL;
            goto out;
        }
    } else if (o.socket[0] != '\0') {
        sock = strdup(o.socket);
        if (sock == NULL)
            goto out;
    }
    if (sock != NULL) {
        ls[n].cls.local = 1;
        ls[n].fd = bind_unix(sock);
        if (ls[n].fd < 0) {
            free(sock);
            sock = NULL; /* not ours to remove */
            goto out;
        }
        snprintf(ls[n].url, sizeof(ls[n].url), "unix:%s", sock);
        n++;
    }
    for (i = 0; i < o.nlisten; i++) {
        ls[n].tls = o.listen[i].tls;
        ls[n].ipv6 = o.listen[i].sa.ss_family == AF_INET6;
        any_tls |= ls[n].tls;
        ls[n].fd = bind_tcp(&o.listen[i], ls[n].url, sizeof(ls[n].url));
        if (ls[n].fd < 0)
            goto out;
        n++;
    }
    if ((any_tls || o.nbd_listen != NULL)
        && xcpd_tls_material(state, o.tls_cert, o.tls_key, &cert, &key) < 0)
        goto out;
    if (o.nbd_listen != NULL) {
        xcp_server_nbd hook;

        nbd = xcpd_nbd_start(state, o.nbd_listen, cert, key, o.nbd_idle_s);
        if (nbd == NULL)
            goto out;
        xcpd_nbd_hook(nbd, &hook);
        xcp_server_set_nbd(srv, &hook);
    }

    limit = fit_fd_limit(n);
    for (i = 0; i < n; i++) {
        ls[i].cls.http = &http;
        if (start_daemon(&ls[i], &o, limit, cert, key) < 0)
            goto out;
        xcpd_log(LOG_INFO, "listening on %s", ls[i].url);
    }
    __atomic_store_n(&mhd_quiet, !o.verbose, __ATOMIC_RELAXED);
    xcpd_log(LOG_NOTICE, "ready");

    for (;;) {
        ssize_t r = read(sfd, &si, sizeof(si));

        if (r == (ssize_t)sizeof(si)) {
            xcpd_log(LOG_NOTICE, "%s (signal %u)",
                     si.ssi_signo == SIGHUP ? "restarting" : "stopping",
                     si.ssi_signo);
            restart = si.ssi_signo == SIGHUP;
            status = 0;
            break;
        }
        if (r < 0 && errno != EINTR) {
            /* No signal was received: stop, but not as a clean exit. */
            xcpd_log(LOG_ERR, "signalfd: %s", strerror(errno));
            break;
        }
    }

out:
    /* The order matters: turn new connections away, let the engine complete every
       parked request (MHD must not be stopped with suspended
       connections), let the replies go out, then stop the transport and
       only then close the engine. */
    __atomic_store_n(&stopping, 1, __ATOMIC_SEQ_CST);
    if (sock != NULL)
        unlink(sock);
    if (srv != NULL)
        xcp_server_shutdown(srv);
    if (http_ready && xcpd_console_shutdown(&http, DRAIN_MS) > 0)
        xcpd_log(LOG_WARNING, "%s", "consoles still open at shutdown");
    if (http_ready && xcpd_upload_shutdown(&http, DRAIN_MS) > 0)
        xcpd_log(LOG_WARNING, "%s", "uploads still open at shutdown");
    if (http_ready && xcpd_cli_shutdown(&http, DRAIN_MS) > 0)
        xcpd_log(LOG_WARNING, "%s", "/cli commands still running at shutdown");
    if (http_ready && xcpd_xe_get_shutdown(DRAIN_MS) > 0)
        xcpd_log(LOG_WARNING, "%s", "downloads still running at shutdown");
    if (http_ready)
        drain(&http);
    for (i = 0; i < n; i++) {
        if (ls[i].d != NULL)
            MHD_stop_daemon(ls[i].d);
        if (ls[i].fd >= 0)
            close(ls[i].fd);
        xcpd_guard_free(ls[i].guard);
    }
    if (srv != NULL)
        xcp_server_set_nbd(srv, NULL);
    xcpd_nbd_stop(nbd);
    if (srv != NULL)
        xcp_server_close(srv);
    if (http_ready)
        xcpd_http_destroy(&http);
    free(sock);
    free(cert);
    if (key != NULL) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    close(sfd);
    if (status == 0)
        xcpd_log(LOG_NOTICE, "stopped");
    if (restart) {
        char self[4096];
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

        /* by its own path, so that the process keeps its name */
        if (len <= 0 || (size_t)len >= sizeof(self) - 1)
            snprintf(self, sizeof(self), "/proc/self/exe");
        else
            self[len] = '\0';
        sigprocmask(SIG_UNBLOCK, &mask, NULL);
        execv(self, argv);
        xcpd_log(LOG_ERR, "cannot restart: %s", strerror(errno));
        return 1;
    }
    return status;
}
