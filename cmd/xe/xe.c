/*
 * xe: entry point. Parses the command line (client options, ~/.xe,
 * XE_EXTRA_ARGS), checks the command and its required parameters, opens
 * a session (remote when a server is given, else the local daemon's
 * socket when one listens, else the engine embedded in this process),
 * runs the command and prints its output or error with XAPI's exit codes.
 */
#define _XOPEN_SOURCE 700 /* S_ISSOCK */

#include "fields.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How long xe waits for the state directory while another process holds
 * it, and how long each attempt at the embedded engine waits before xe
 * looks again for a daemon's socket: a daemon that is starting holds the
 * directory before it listens, and then xe talks to it. */
#define XE_LOCK_TIMEOUT_MS 60000
#define XE_LOCK_SLICE_MS 200

static const char *rc_text(xe_arena *a)
{
    const char *home = getenv("HOME");

    return xe_slurp(a, xe_sprintf(a, "%s/.xe", home != NULL ? home : ""));
}

/* -pwf: user name on the first line, password on the second. */
static int read_pwfile(xe_ctx *ctx, xe_conn *c)
{
    char *text = xe_slurp(&ctx->arena, c->pwfile), *nl, *nl2;

    if (text == NULL) {
        fprintf(stderr, "Error opening password file '%s'\n", c->pwfile);
        return -1;
    }
    nl = strchr(text, '\n');
    if (nl == NULL || nl[1] == '\0') {
        fputs("Error: password file format: expecting username on the "
              "first line, password on the second line\n",
              stderr);
        return -1;
    }
    *nl = '\0';
    nl2 = strchr(nl + 1, '\n');
    if (nl2 != NULL)
        *nl2 = '\0';
    c->user = text;
    c->password = nl + 1;
    return 0;
}

/*
 * Whether the command goes to this host's toolstack (daemon socket or
 * embedded engine) rather than over the network. As in XAPI's xe, no -s
 * or -s localhost/127.0.0.1 means this host; unlike it, an explicit -p
 * asks for that TCP port (how a daemon on another port is reached).
 */
static bool is_local(const xe_conn *c)
{
    if (c->server == NULL)
        return true;
    return c->port < 0 && (strcmp(c->server, "127.0.0.1") == 0
                           || strcmp(c->server, "localhost") == 0);
}

/* The engine's default state directory (see xcp_open_options). */
static const char *state_dir(xe_arena *a)
{
    const char *dir = getenv("XCP_STATE_DIR"), *home;

    if (dir != NULL && *dir != '\0')
        return dir;
    if (geteuid() == 0)
        return "/var/lib/xcp";
    dir = getenv("XDG_DATA_HOME");
    if (dir != NULL && *dir != '\0')
        return xe_sprintf(a, "%s/xcp", dir);
    home = getenv("HOME");
    if (home == NULL || *home == '\0') {
        struct passwd *pw = getpwuid(geteuid());
        home = pw != NULL ? pw->pw_dir : "/tmp";
    }
    return xe_sprintf(a, "%s/.local/share/xcp", home);
}

/*
 * Where a local daemon (xcpd) listens, when one does: the socket must
 * accept a connection, so a socket left behind by a daemon that died does
 * not hide the embedded engine.
 */
static const char *daemon_socket(xe_arena *a)
{
    const char *path = xe_sprintf(a, "%s/xapi", state_dir(a));
    struct sockaddr_un sa;
    struct stat st;
    int fd, rc;

    if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)
        || strlen(path) >= sizeof(sa.sun_path))
        return NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return rc == 0 ? path : NULL;
}

/*
 * Whether another process holds the state directory (the engine's flock
 * on <state dir>/lock): a daemon that is starting, or an embedded xe.
 */
static bool state_dir_busy(xe_arena *a)
{
    int fd = open(xe_sprintf(a, "%s/lock", state_dir(a)),
                  O_RDONLY | O_CLOEXEC);
    bool busy;

    if (fd < 0)
        return false;
    busy = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd); /* releases it if we took it */
    return busy;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * This host's toolstack: the daemon's socket if one listens, else the
 * embedded engine. While another process holds the state directory, xe
 * waits (bounded) for whichever comes first: the directory, or a socket
 * (the holder was a daemon starting up). Returns 1 with *sock set to talk
 * to the daemon, 0 with ctx->s open on the engine, or -1.
 */
static int open_here(xe_ctx *ctx, const char **sock)
{
    int64_t deadline = now_ms() + XE_LOCK_TIMEOUT_MS;
    xcp_open_options opts;

    for (;;) {
        if ((*sock = daemon_socket(&ctx->arena)) != NULL)
            return 1;
        memset(&opts, 0, sizeof(opts));
        opts.version = XCP_OPEN_OPTIONS_VERSION;
        opts.originator = "cli";
        opts.lock_timeout_ms = XE_LOCK_SLICE_MS;
        if (xcp_session_open_local(&ctx->s, &opts) == 0)
            return 0;
        if (now_ms() >= deadline || !state_dir_busy(&ctx->arena))
            return xe_fail_lib(ctx);
    }
}

static void remote_failure(xe_ctx *ctx, const xe_conn *c, int rc)
{
    const xcp_error *e = xcp_error_last();

    if (e != NULL && xe_streq(e->name, "SESSION_AUTHENTICATION_FAILED")) {
        ctx->err.kind = XE_E_PARAM;
        ctx->err.prefix = "";
        ctx->err.text = c->user != NULL && *c->user != '\0'
                            ? "Authentication failed"
                            : "Username/password must be specified";
        return;
    }
    if (rc != XCP_EIO && e != NULL) {
        /* The server answered with some other XenAPI error. */
        xe_fail_lib(ctx);
        return;
    }
    ctx->err.kind = XE_E_RAW;
    ctx->err.text = "Unable to contact server. Please check server and port "
                    "settings.\n";
}

static int open_session(xe_ctx *ctx, const xe_conn *c)
{
    xcp_remote_options ro;
    const char *sock, *uri;
    bool json = false;
    int rc;

    if (!is_local(c)) {
        uri = xe_sprintf(&ctx->arena, "%s://%s", c->nossl ? "http" : "https",
                         strchr(c->server, ':') != NULL
                                 && c->server[0] != '['
                             ? xe_sprintf(&ctx->arena, "[%s]", c->server)
                             : c->server);
        if (c->port >= 0)
            uri = xe_sprintf(&ctx->arena, "%s:%d", uri, c->port);
    } else {
        if ((rc = open_here(ctx, &sock)) <= 0)
            return rc;
        uri = xe_sprintf(&ctx->arena, "unix:%s", sock);
        /* Our own daemon: JSON-RPC. For vm-list at 512 VMs xe runs 431M
         * instructions instead of 651M over XML-RPC (callgrind); remote
         * hosts keep XML-RPC, which every XAPI speaks. */
        json = true;
    }
    memset(&ro, 0, sizeof(ro));
    ro.version = XCP_REMOTE_OPTIONS_VERSION;
    ro.uri = uri;
    /* XAPI's xe defaults (newcli.ml); local root needs no password. */
    ro.user = c->user != NULL ? c->user : "root";
    ro.password = c->password != NULL ? c->password : "null";
    ro.originator = "cli";
    /* XAPI hosts present self-signed certificates: xe does not verify. */
    ro.insecure = true;
    ro.protocol = json ? XCP_REMOTE_JSONRPC : XCP_REMOTE_XMLRPC;
    if ((rc = xcp_session_open_remote(&ctx->s, &ro)) < 0) {
        ctx->s = NULL;
        remote_failure(ctx, c, rc);
        return -1;
    }
    return 0;
}

/* xe_open_fn: this host's toolstack or the server of the command line. */
static int open_cb(xe_ctx *ctx, void *arg)
{
    return open_session(ctx, arg);
}

int main(int argc, char **argv)
{
    xe_ctx ctx;
    xe_cmdline cl;
    FILE *dbg = NULL;
    int rc = 0;

    if (xe_fields_init() < 0) {
        fputs("xe: out of memory\n", stderr);
        return 1;
    }
    xe_ctx_init(&ctx, xe_io_local());
    xe_cmdline_parse(&ctx.arena, &cl, argc - 1, argv + 1,
                     rc_text(&ctx.arena), getenv("XE_EXTRA_ARGS"));
    fputs(cl.prelude != NULL ? cl.prelude : "", stderr);
    switch (cl.action) {
    case XE_VERSION:
        fputs("ThinCLI protocol: 0.2\n", stdout);
        goto out;
    case XE_USAGE:
        xe_print_usage(stderr);
        goto out;
    case XE_BAD:
        fputs(cl.errtext, stderr);
        rc = 1;
        goto out;
    case XE_RUN:
        break;
    }
    if (cl.conn.pwfile != NULL && read_pwfile(&ctx, &cl.conn) < 0) {
        rc = 1;
        goto out;
    }
    /* newcli: --debug to stderr; --debug-on-fail to a temporary file,
     * shown after "Debug info:" when the command fails. */
    if (cl.conn.debug)
        ctx.io = xe_io_local_debug(stderr);
    else if (cl.conn.debugonfail && (dbg = tmpfile()) != NULL)
        ctx.io = xe_io_local_debug(dbg);
    rc = xe_execute(&ctx, cl.nwords, cl.words, open_cb, &cl.conn);
    if (dbg != NULL) {
        char buf[4096];
        size_t n;

        if (rc != 0) {
            fflush(stdout);
            fputs("\nDebug info:\n\n", stderr);
            rewind(dbg);
            while ((n = fread(buf, 1, sizeof(buf), dbg)) > 0)
                fwrite(buf, 1, n, stderr);
        }
        fclose(dbg);
    }
out:
    xe_ctx_dispose(&ctx);
    fflush(stdout);
    return rc;
}
