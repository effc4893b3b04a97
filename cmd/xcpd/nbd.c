/*
 * xcpd: the NBD server behind VDI.get_nbd_info (--nbd-listen). QEMU's
 * qemu-storage-daemon serves the exports (qcow2 chains, the images'
 * persistent dirty bitmaps as qemu:dirty-bitmap:<name> contexts) on a
 * unix socket of the state directory; xcpd starts it, drives it over QMP
 * (another unix socket there) and stops it. Clients reach it only through
 * xcpd's front end on the NBD port (nbd_front.c: TLS, the name checked
 * against the exports listed here, no listing). An export is named as
 * XAPI's clients expect, "/<VDI uuid>?session_id=<token>", added when
 * get_nbd_info names it and withdrawn when the session ends, so a name
 * with any other session is unknown and refused. The token is a random
 * reference that stands for the session on NBD alone. See
 * docs/design-nbd.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "xcpd.h"
#include "../common/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define QSD "qemu-storage-daemon"
#define QMP_TIMEOUT_MS 60000
#define START_TIMEOUT_MS 30000

struct nbd_export {
    char *name, *session;
    char node[32];
    struct nbd_export *next;
};

/* The NBD token of a session. */
struct nbd_token {
    char *session;
    char token[48];          /* "OpaqueRef:" and a random uuid */
    struct nbd_token *next;
};

struct xcpd_nbd {
    pthread_mutex_t mu;
    pid_t pid;
    int qmp;                 /* the QMP connection, -1 when gone */
    char *rbuf;              /* bytes read past the last reply line */
    size_t rlen;
    char dir[PATH_MAX / 2];  /* <state>/nbd: the QMP and NBD sockets */
    char host[INET6_ADDRSTRLEN + 1], port[8];
    int serving;             /* QEMU's NBD server is listening */
    int tls;                 /* clients must do TLS (the nbd purpose) */
    xcpd_nbd_front *front;
    unsigned next_node;
    struct nbd_export *exports;
    struct nbd_token *tokens;
    char *cert_pem, subject[256];
};

/* ---- QMP ------------------------------------------------------------- */

/* One line from the QMP socket (malloc'd), or NULL when it is gone or
 * silent for QMP_TIMEOUT_MS. */
static char *qmp_line(xcpd_nbd *n)
{
    char *nl, *line, *b;
    ssize_t r;
    struct pollfd p = {n->qmp, POLLIN, 0};

    for (;;) {
        nl = n->rbuf ? memchr(n->rbuf, '\n', n->rlen) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - n->rbuf);

            line = strndup(n->rbuf, len);
            memmove(n->rbuf, nl + 1, n->rlen - len - 1);
            n->rlen -= len + 1;
            return line;
        }
        if (poll(&p, 1, QMP_TIMEOUT_MS) <= 0)
            return NULL;
        b = realloc(n->rbuf, n->rlen + 4096);
        if (!b)
            return NULL;
        n->rbuf = b;
        r = read(n->qmp, n->rbuf + n->rlen, 4096);
        if (r <= 0)
            return NULL;
        n->rlen += (size_t)r;
    }
}

static void qmp_lost(xcpd_nbd *n)
{
    if (n->qmp >= 0)
        close(n->qmp);
    n->qmp = -1;
}

/*
 * Run command (with args, stolen; NULL for none): 0 and *ret (the
 * "return" member, a new reference, when ret is not NULL), or -1 with
 * QEMU's error or why the connection failed in why.
 */
static int qmp(xcpd_nbd *n, const char *cmd, json_t *args, json_t **ret,
               char *why, size_t whylen)
{
    json_t *msg = json_pack("{s:s}", "execute", cmd), *rep = NULL, *v;
    char *text = NULL, *line;
    int rc = -1;

    if (ret)
        *ret = NULL;
    if (n->qmp < 0) {
        snprintf(why, whylen, "%s is not running", QSD);
        goto out;
    }
    if (!msg || (args && json_object_set_new(msg, "arguments", args) < 0)) {
        args = NULL;
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    args = NULL;
    text = json_dumps(msg, JSON_COMPACT);
    if (!text || xcmd_write_all(n->qmp, text, strlen(text), QMP_TIMEOUT_MS) < 0 ||
        xcmd_write_all(n->qmp, "\n", 1, QMP_TIMEOUT_MS) < 0) {
        snprintf(why, whylen, "%s: QMP: %s", QSD, strerror(errno));
        qmp_lost(n);
        goto out;
    }
    while ((line = qmp_line(n)) != NULL) {
        rep = json_loads(line, 0, NULL);
        free(line);
        if (rep && (json_object_get(rep, "return") ||
                    json_object_get(rep, "error")))
            break;
        json_decref(rep); /* an event */
        rep = NULL;
    }
    if (!rep) {
        snprintf(why, whylen, "%s stopped answering QMP", QSD);
        qmp_lost(n);
        goto out;
    }
    if ((v = json_object_get(rep, "error")) != NULL) {
        snprintf(why, whylen, "%s: %s", cmd,
                 json_string_value(json_object_get(v, "desc"))
                     ? json_string_value(json_object_get(v, "desc"))
                     : "failed");
        goto out;
    }
    if (ret)
        *ret = json_incref(json_object_get(rep, "return"));
    rc = 0;
out:
    json_decref(args);
    json_decref(msg);
    json_decref(rep);
    free(text);
    return rc;
}

/* ---- the daemon process ----------------------------------------------- */

/* The first DNS name of the certificate that is not a wildcard (the last
 * one if all are), else its CN: what XAPI puts in the records' subject. */
static void cert_subject(const char *pem, char *out, size_t outlen)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    GENERAL_NAMES *names;
    int i;

    out[0] = '\0';
    names = x ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL) : NULL;
    for (i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);

        if (g->type != GEN_DNS)
            continue;
        snprintf(out, outlen, "%.*s", ASN1_STRING_length(g->d.dNSName),
                 (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        if (!strchr(out, '*'))
            break;
    }
    if (!out[0] && x)
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  out, (int)outlen);
    GENERAL_NAMES_free(names);
    X509_free(x);
    BIO_free(b);
}

static int connect_qmp(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/*
 * Start qemu-storage-daemon with its QMP monitor on <dir>/qmp.sock. It
 * is forked by the daemon's main thread (which lives as long as xcpd;
 * after a crash of the server, by the call thread that needs it again)
 * and dies with that thread (PR_SET_PDEATHSIG), so kill -9 of xcpd
 * leaves no server behind.
 */
static int spawn(xcpd_nbd *n)
{
    char sock[PATH_MAX], chardev[PATH_MAX + 64];
    char *argv[] = {QSD, "--chardev", chardev, "--monitor", "chardev=qmp",
                    NULL};
    struct timespec ts = {0, 20 * 1000 * 1000};
    char *greeting, why[256];
    pid_t parent = getpid();
    int waited;

    snprintf(sock, sizeof(sock), "%s/qmp.sock", n->dir);
    snprintf(chardev, sizeof(chardev),
             "socket,id=qmp,path=%s,server=on,wait=off", sock);
    unlink(sock);
    n->pid = fork();
    if (n->pid < 0)
        return -1;
    if (n->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        sigset_t none;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* xcpd blocks SIGTERM (its signalfd) and ignores SIGPIPE: the
         * daemon gets the defaults, so that SIGTERM stops it. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (getppid() != parent)
            _exit(1);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        /* Not a client's socket nor a listener of ours: a closed
         * connection must close. */
        close_range(3, ~0u, 0);
        execvp(QSD, argv);
        _exit(127);
    }
    for (waited = 0; waited < START_TIMEOUT_MS; waited += 20) {
        if ((n->qmp = connect_qmp(sock)) >= 0)
            break;
        if (waitpid(n->pid, NULL, WNOHANG) == n->pid) {
            n->pid = -1;
            break;
        }
        nanosleep(&ts, NULL);
    }
    if (n->qmp < 0) {
        xcpd_log(LOG_ERR, "nbd: %s did not start (is it installed?)", QSD);
        return -1;
    }
    greeting = qmp_line(n);
    free(greeting);
    if (!greeting || qmp(n, "qmp_capabilities", NULL, NULL, why,
                         sizeof(why)) < 0) {
        xcpd_log(LOG_ERR, "nbd: %s", greeting ? why : "no QMP greeting");
        return -1;
    }
    return 0;
}

static void reap(xcpd_nbd *n)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    int i;

    qmp_lost(n);
    if (n->pid <= 0)
        return;
    kill(n->pid, SIGTERM);
    for (i = 0; i < 250 && waitpid(n->pid, NULL, WNOHANG) != n->pid; i++)
        nanosleep(&ts, NULL);
    if (i == 250) {
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
    }
    n->pid = -1;
}

static void forget_exports(xcpd_nbd *n)
{
    struct nbd_export *e;

    while ((e = n->exports) != NULL) {
        n->exports = e->next;
        free(e->name);
        free(e->session);
        free(e);
    }
}

/* ---- exports ------------------------------------------------------------ */

/* The session's token, made at its first export; NULL when out of
 * memory or randomness. */
static const char *token_of(xcpd_nbd *n, const char *session)
{
    struct nbd_token *t;
    unsigned char r[16];

    for (t = n->tokens; t; t = t->next)
        if (!strcmp(t->session, session))
            return t->token;
    if (RAND_bytes(r, sizeof(r)) != 1 || !(t = calloc(1, sizeof(*t))))
        return NULL;
    if (!(t->session = strdup(session))) {
        free(t);
        return NULL;
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* a version 4 uuid */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(t->token, sizeof(t->token),
             "OpaqueRef:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
             r[10], r[11], r[12], r[13], r[14], r[15]);
    t->next = n->tokens;
    n->tokens = t;
    return t->token;
}

static void forget_token(xcpd_nbd *n, const char *session)
{
    struct nbd_token **pt = &n->tokens, *t;

    while ((t = *pt) != NULL) {
        if (!strcmp(t->session, session)) {
            *pt = t->next;
            free(t->session);
            free(t);
            return;
        }
        pt = &t->next;
    }
}

/* QEMU's NBD server listening on <dir>/nbd.sock (plain: TLS is the
 * front end's), the daemon started first if it is not running. */
static int serve(xcpd_nbd *n, char *why, size_t whylen)
{
    char path[PATH_MAX];
    json_t *args;

    if (n->qmp < 0) {
        /* First use, or the daemon died: begin again. */
        reap(n);
        forget_exports(n);
        n->serving = 0;
        if (spawn(n) < 0) {
            reap(n);
            snprintf(why, whylen, "%s did not start", QSD);
            return -1;
        }
    }
    if (n->serving)
        return 0;
    snprintf(path, sizeof(path), "%s/nbd.sock", n->dir);
    unlink(path);
    args = json_pack("{s:{s:s,s:{s:s}}}", "addr", "type", "unix", "data",
                     "path", path);
    if (qmp(n, "nbd-server-start", args, NULL, why, whylen) < 0)
        return -1;
    /* The directory is 0700 already; the socket is ours alone too. */
    if (chmod(path, 0600) < 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return -1;
    }
    n->serving = 1;
    return 0;
}

/* The persistent dirty bitmaps of node (changed block tracking), as a
 * JSON array of names for block-export-add. */
static json_t *node_bitmaps(xcpd_nbd *n, const char *node)
{
    json_t *nodes = NULL, *out = json_array(), *v, *b;
    char why[256];
    size_t i, j;

    if (qmp(n, "query-named-block-nodes", json_pack("{s:b}", "flat", 1),
            &nodes, why, sizeof(why)) < 0)
        return out;
    json_array_foreach(nodes, i, v) {
        const char *name = json_string_value(json_object_get(v, "node-name"));

        if (!name || strcmp(name, node))
            continue;
        json_array_foreach(json_object_get(v, "dirty-bitmaps"), j, b)
            if (json_is_true(json_object_get(b, "persistent")))
                json_array_append(out, json_object_get(b, "name"));
    }
    json_decref(nodes);
    return out;
}

static struct nbd_export *find(xcpd_nbd *n, const char *name)
{
    struct nbd_export *e;

    for (e = n->exports; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}

static int drop_node(xcpd_nbd *n, const char *node)
{
    char why[256];

    return qmp(n, "blockdev-del", json_pack("{s:s}", "node-name", node),
               NULL, why, sizeof(why));
}

/* An export goes, its clients cut off ("hard"), then its node, and e. */
static void withdraw(xcpd_nbd *n, struct nbd_export *e)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    char why[256];
    int i;

    if (qmp(n, "block-export-del",
            json_pack("{s:s,s:s}", "id", e->node, "mode", "hard"), NULL, why,
            sizeof(why)) < 0)
        xcpd_log(LOG_WARNING, "nbd: %s", why);
    /* The export goes once its clients have; then its node. */
    for (i = 0; i < 100 && drop_node(n, e->node) < 0 && n->qmp >= 0; i++)
        nanosleep(&ts, NULL);
    free(e->name);
    free(e->session);
    free(e);
}

/* Every export of the session (all when session is NULL) goes. */
static void withdraw_all(xcpd_nbd *n, const char *session)
{
    struct nbd_export **pe = &n->exports, *e;

    while ((e = *pe) != NULL) {
        if (session && strcmp(e->session, session)) {
            pe = &e->next;
            continue;
        }
        *pe = e->next;
        withdraw(n, e);
    }
}

/*
 * The image opened read-only without taking its lock: a running VM's
 * disk is read as it is on disk (its writer keeps it), a snapshot's is
 * immutable. QEMU follows a qcow2 image's backing chain itself.
 */
static int export_vdi(void *arg, const xcp_server_nbd_export *ex,
                      char *name, size_t namelen, char *why, size_t whylen)
{
    xcpd_nbd *n = arg;
    struct nbd_export *e = NULL;
    json_t *args;
    const char *drv = !strcmp(ex->format, "vhd") ? "vpc" : ex->format;
    const char *token;
    int rc = -1, added = 0;

    pthread_mutex_lock(&n->mu);
    if (serve(n, why, whylen) < 0)
        goto out;
    /* The networks' purposes changed from nbd to insecure_nbd or back:
     * names handed out for one mode are not served in the other. */
    if (n->tls != ex->tls) {
        withdraw_all(n, NULL);
        n->tls = ex->tls;
    }
    if (!(token = token_of(n, ex->session))) {
        snprintf(why, whylen, "no NBD token for the session");
        goto out;
    }
    snprintf(name, namelen, "/%s?session_id=%s", ex->vdi_uuid, token);
    if (find(n, name)) {
        rc = 0;
        goto out;
    }
    if (!(e = calloc(1, sizeof(*e))) || !(e->name = strdup(name)) ||
        !(e->session = strdup(ex->session))) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    snprintf(e->node, sizeof(e->node), "x%u", ++n->next_node);
    args = json_pack("{s:s,s:s,s:b,s:{s:s,s:s,s:s}}", "driver", drv,
                     "node-name", e->node, "read-only", 1, "file", "driver",
                     "file", "filename", ex->path, "locking", "off");
    if (qmp(n, "blockdev-add", args, NULL, why, whylen) < 0)
        goto out;
    added = 1;
    args = json_pack("{s:s,s:s,s:s,s:s,s:b,s:o}", "type", "nbd", "id",
                     e->node, "node-name", e->node, "name", name,
                     "writable", 0, "bitmaps", node_bitmaps(n, e->node));
    if (qmp(n, "block-export-add", args, NULL, why, whylen) < 0)
        goto out;
    e->next = n->exports;
    n->exports = e;
    e = NULL;
    rc = 0;
out:
    if (e && added)
        drop_node(n, e->node);
    if (e) {
        free(e->name);
        free(e->session);
        free(e);
    }
    pthread_mutex_unlock(&n->mu);
    return rc;
}

static void session_gone(void *arg, const char *session)
{
    xcpd_nbd *n = arg;

    pthread_mutex_lock(&n->mu);
    withdraw_all(n, session);
    forget_token(n, session);
    pthread_mutex_unlock(&n->mu);
}

/* The front end's questions (nbd_front.c), from its threads. */
static int front_known(void *arg, const char *name)
{
    xcpd_nbd *n = arg;
    int rc;

    pthread_mutex_lock(&n->mu);
    rc = find(n, name) != NULL;
    pthread_mutex_unlock(&n->mu);
    return rc;
}

static int front_tls(void *arg)
{
    xcpd_nbd *n = arg;
    int rc;

    pthread_mutex_lock(&n->mu);
    rc = n->tls;
    pthread_mutex_unlock(&n->mu);
    return rc;
}

/* ---- the public face ---------------------------------------------------- */

xcpd_nbd *xcpd_nbd_start(const char *state_dir, const char *listen,
                         const char *cert_pem, const char *key_pem,
                         unsigned idle_s)
{
    xcpd_nbd *n = calloc(1, sizeof(*n));
    xcpd_nbd_front_hooks hooks = {front_known, front_tls, n};
    const char *colon;
    char why[256], sock[PATH_MAX];

    if (!n)
        return NULL;
    pthread_mutex_init(&n->mu, NULL);
    n->pid = -1;
    n->qmp = -1;
    n->tls = 1; /* until an export wants it plain */
    colon = strrchr(listen, ':');
    snprintf(n->host, sizeof(n->host), "%.*s", (int)(colon - listen)
             - (listen[0] == '[' ? 2 : 0), listen + (listen[0] == '['));
    snprintf(n->port, sizeof(n->port), "%s", colon + 1);
    snprintf(n->dir, sizeof(n->dir), "%s/nbd", state_dir);
    snprintf(sock, sizeof(sock), "%s/nbd.sock", n->dir);
    n->cert_pem = strdup(cert_pem);
    if (!n->cert_pem || (mkdir(n->dir, 0700) < 0 && errno != EEXIST) ||
        spawn(n) < 0 || serve(n, why, sizeof(why)) < 0) {
        xcpd_nbd_stop(n);
        return NULL;
    }
    /* Listen now, so that a busy port fails the start as the other
     * listeners do. */
    n->front = xcpd_nbd_front_start(n->host, n->port, cert_pem, key_pem,
                                    sock, &hooks, idle_s, why, sizeof(why));
    if (!n->front) {
        xcpd_log(LOG_ERR, "nbd: cannot listen on %s: %s", listen, why);
        xcpd_nbd_stop(n);
        return NULL;
    }
    cert_subject(cert_pem, n->subject, sizeof(n->subject));
    xcpd_log(LOG_INFO, "nbd: serving VDIs on %s (%s behind)", listen, QSD);
    return n;
}

void xcpd_nbd_hook(xcpd_nbd *n, xcp_server_nbd *out)
{
    memset(out, 0, sizeof(*out));
    out->port = (unsigned)atoi(n->port);
    out->cert_pem = n->cert_pem;
    out->subject = n->subject;
    out->export_vdi = export_vdi;
    out->session_gone = session_gone;
    out->arg = n;
}

void xcpd_nbd_stop(xcpd_nbd *n)
{
    char sock[PATH_MAX];

    if (!n)
        return;
    xcpd_nbd_front_stop(n->front);
    reap(n);
    forget_exports(n);
    while (n->tokens)
        forget_token(n, n->tokens->session);
    snprintf(sock, sizeof(sock), "%s/qmp.sock", n->dir);
    unlink(sock);
    snprintf(sock, sizeof(sock), "%s/nbd.sock", n->dir);
    unlink(sock);
    free(n->rbuf);
    free(n->cert_pem);
    pthread_mutex_destroy(&n->mu);
    free(n);
}
