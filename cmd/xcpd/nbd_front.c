/*
 * xcpd: the NBD front end, as XAPI's xapi-nbd. It accepts NBD clients on
 * the NBD port, does the negotiation and TLS itself (nbd_neg.c, OpenSSL
 * with the host's certificate), lets through only names handed out by
 * VDI.get_nbd_info, and then hands the connection to QEMU's NBD server on
 * a unix socket of the state directory: from then on it moves bytes both
 * ways. A thread per connection, at most FRONT_MAX_CONN of them; a client
 * still negotiating after NEG_TIMEOUT_MS is dropped, and so is a
 * negotiated connection on which no byte moved either way for the
 * daemon's --nbd-idle-timeout (a client that stopped talking, or one
 * whose request QEMU never answered).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "xcpd.h"
#include "nbd_neg.h"
#include "../common/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define FRONT_MAX_CONN 64
#define NEG_TIMEOUT_MS 10000
#define SPLICE_BUF (256 * 1024)
#define THREAD_STACK (256 * 1024)

/* One side of a connection: a socket, through TLS or not, non-blocking.
 * want is what poll must wait for before the last call that would have
 * blocked can go on (TLS may want to write to read, and back). */
typedef struct end {
    int fd;
    SSL *ssl;
    short rwant, wwant;
} end;

typedef struct conn {
    xcpd_nbd_front *f;
    end cl, be;                /* the client, the backend (QEMU) */
    long long deadline_ms;     /* negotiation's end */
    int slot;
} conn;

struct xcpd_nbd_front {
    int lfd, wake[2];
    pthread_t acceptor;
    int started;
    SSL_CTX *ctx;
    char backend[sizeof(((struct sockaddr_un *)0)->sun_path)];
    xcpd_nbd_front_hooks hooks;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int stopping;
    long long idle_ms;         /* 0: connections may idle forever */
    unsigned nconn;
    conn *conns[FRONT_MAX_CONN];
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- one end: >0 bytes moved, 0 end of stream, XCMD_AGAIN, -1 ---------- */

static ssize_t tls_result(end *e, int r, short *want)
{
    switch (SSL_get_error(e->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        *want = POLLIN;
        return XCMD_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = POLLOUT;
        return XCMD_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        return -1;
    }
}

static ssize_t end_read(end *e, void *buf, size_t n)
{
    ssize_t r;

    if (e->ssl) {
        size_t got;
        int rc = SSL_read_ex(e->ssl, buf, n, &got);

        return rc == 1 ? (ssize_t)got : tls_result(e, rc, &e->rwant);
    }
    r = recv(e->fd, buf, n, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        e->rwant = POLLIN;
        return XCMD_AGAIN;
    }
    return r;
}

static ssize_t end_write(end *e, const void *buf, size_t n)
{
    ssize_t r;

    if (e->ssl) {
        size_t put;
        int rc = SSL_write_ex(e->ssl, buf, n, &put);

        return rc == 1 ? (ssize_t)put : tls_result(e, rc, &e->wwant);
    }
    r = send(e->fd, buf, n, MSG_NOSIGNAL);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        e->wwant = POLLOUT;
        return XCMD_AGAIN;
    }
    return r == 0 ? -1 : r;
}

/* Wait for e's fd to be ready for events until the deadline: 0 or -1. */
static int wait_end(const conn *c, const end *e, short events)
{
    struct pollfd p = {e->fd, events, 0};
    long long left = c->deadline_ms - now_ms();

    if (left <= 0)
        return -1;
    return poll(&p, 1, (int)left) > 0 ? 0 : -1;
}

/* Exactly n bytes through e, within the negotiation's deadline. */
static int move_all(conn *c, end *e, void *buf, size_t n, int out)
{
    unsigned char *p = buf;
    ssize_t r;

    while (n) {
        r = out ? end_write(e, p, n) : end_read(e, p, n);
        if (r == XCMD_AGAIN) {
            if (wait_end(c, e, out ? e->wwant : e->rwant) < 0)
                return -1;
            continue;
        }
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- the negotiation's I/O (nbd_neg.h) ---------------------------------- */

static int cl_read(void *arg, void *buf, size_t n)
{
    conn *c = arg;

    return move_all(c, &c->cl, buf, n, 0);
}

static int cl_write(void *arg, const void *buf, size_t n)
{
    conn *c = arg;

    return move_all(c, &c->cl, (void *)buf, n, 1);
}

static int be_read(void *arg, void *buf, size_t n)
{
    conn *c = arg;

    return move_all(c, &c->be, buf, n, 0);
}

static int be_write(void *arg, const void *buf, size_t n)
{
    conn *c = arg;

    return move_all(c, &c->be, (void *)buf, n, 1);
}

static int be_open(void *arg)
{
    conn *c = arg;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memcpy(sa.sun_path, c->f->backend, sizeof(sa.sun_path));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        xcpd_log(LOG_WARNING, "nbd: cannot reach %s: %s", c->f->backend,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    pthread_mutex_lock(&c->f->mu);
    c->be.fd = fd;
    if (c->f->stopping)
        shutdown(fd, SHUT_RDWR);
    pthread_mutex_unlock(&c->f->mu);
    return 0;
}

static int starttls(void *arg)
{
    conn *c = arg;
    int r;

    if (!(c->cl.ssl = SSL_new(c->f->ctx)) || !SSL_set_fd(c->cl.ssl, c->cl.fd))
        return -1;
    for (;;) {
        r = SSL_accept(c->cl.ssl);
        if (r == 1)
            return 0;
        if (tls_result(&c->cl, r, &c->cl.rwant) != XCMD_AGAIN ||
            wait_end(c, &c->cl, c->cl.rwant) < 0)
            return -1;
    }
}

static int known(void *arg, const char *name)
{
    conn *c = arg;

    return c->f->hooks.known(c->f->hooks.arg, name);
}

/* ---- transmission: bytes both ways -------------------------------------- */

typedef struct pipe_buf {
    unsigned char *b;
    size_t off, len;
    int eof;
} pipe_buf;

/* Move what can be moved from one end to the other without blocking:
 * 1 when something moved, 0 when nothing could, -1 when done or
 * broken. */
static int pump(end *from, end *to, pipe_buf *p)
{
    ssize_t r;
    int moved = 0;

    if (p->len == p->off && !p->eof) {
        r = end_read(from, p->b, SPLICE_BUF);
        if (r > 0) {
            p->off = 0;
            p->len = (size_t)r;
            moved = 1;
        } else if (r == 0) {
            p->eof = 1;
        } else if (r != XCMD_AGAIN) {
            return -1;
        }
    }
    if (p->len > p->off) {
        r = end_write(to, p->b + p->off, p->len - p->off);
        if (r > 0) {
            p->off += (size_t)r;
            moved = 1;
        } else if (r != XCMD_AGAIN) {
            return -1;
        }
    }
    /* A side that ended ends the connection: NBD has no half-close. */
    return p->eof && p->len == p->off ? -1 : moved;
}

static void splice_conn(conn *c)
{
    pipe_buf up = {0}, down = {0};
    struct pollfd p[2];
    long long last = now_ms(), left;
    int a, b, r;

    up.b = malloc(SPLICE_BUF);
    down.b = malloc(SPLICE_BUF);
    while (up.b && down.b) {
        a = pump(&c->cl, &c->be, &up);
        b = pump(&c->be, &c->cl, &down);
        if (a < 0 || b < 0)
            break;
        if (a || b) {
            last = now_ms();
            continue;
        }
        /* Nothing moved: wait for what the blocked calls wait for. */
        p[0].fd = c->cl.fd;
        p[0].events = (short)((up.len == up.off ? c->cl.rwant : 0) |
                              (down.len > down.off ? c->cl.wwant : 0));
        p[1].fd = c->be.fd;
        p[1].events = (short)((down.len == down.off ? c->be.rwant : 0) |
                              (up.len > up.off ? c->be.wwant : 0));
        left = c->f->idle_ms ? last + c->f->idle_ms - now_ms() : -1;
        if (c->f->idle_ms && left <= 0) {
            xcpd_log(LOG_INFO, "nbd: a client idle for %lld s is closed",
                     c->f->idle_ms / 1000);
            break;
        }
        r = poll(p, 2, left < 0 ? -1 : left > INT_MAX ? INT_MAX : (int)left);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (p[0].revents | p[1].revents) & POLLNVAL)
            break;
    }
    free(up.b);
    free(down.b);
}

/* ---- connections -------------------------------------------------------- */

static void *conn_main(void *arg)
{
    conn *c = arg;
    xcpd_nbd_front *f = c->f;
    nbd_neg_io io = {
        .client_read = cl_read, .client_write = cl_write,
        .backend_read = be_read, .backend_write = be_write,
        .backend_open = be_open, .starttls = starttls, .known = known,
        .arg = c,
    };

    io.tls_required = f->hooks.tls_required(f->hooks.arg);
    c->deadline_ms = now_ms() + NEG_TIMEOUT_MS;
    if (nbd_negotiate(&io) == 1)
        splice_conn(c);
    SSL_free(c->cl.ssl);
    pthread_mutex_lock(&f->mu);
    close(c->cl.fd);
    if (c->be.fd >= 0)
        close(c->be.fd);
    f->conns[c->slot] = NULL;
    if (--f->nconn == 0)
        pthread_cond_broadcast(&f->idle);
    pthread_mutex_unlock(&f->mu);
    free(c);
    return NULL;
}

/* A new client: its own thread, unless there are too many already. */
static void take(xcpd_nbd_front *f, int fd)
{
    pthread_attr_t at;
    pthread_t t;
    conn *c = calloc(1, sizeof(*c));
    int one = 1, slot, rc = -1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pthread_mutex_lock(&f->mu);
    for (slot = 0; slot < FRONT_MAX_CONN && f->conns[slot]; slot++)
        ;
    if (c && slot < FRONT_MAX_CONN && !f->stopping) {
        c->f = f;
        c->cl.fd = fd;
        c->be.fd = -1;
        c->slot = slot;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, THREAD_STACK);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &at, conn_main, c);
        pthread_attr_destroy(&at);
        if (rc == 0) {
            f->conns[slot] = c;
            f->nconn++;
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (rc != 0) {
        if (slot == FRONT_MAX_CONN)
            xcpd_log(LOG_WARNING, "nbd: %d clients already, one refused",
                     FRONT_MAX_CONN);
        close(fd);
        free(c);
    }
}

static void *accept_main(void *arg)
{
    xcpd_nbd_front *f = arg;
    struct pollfd p[2] = {{f->lfd, POLLIN, 0}, {f->wake[0], POLLIN, 0}};
    int fd;

    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            take(f, fd);
        } else if (errno != EAGAIN && errno != EINTR &&
                   errno != ECONNABORTED) {
            /* Out of descriptors or memory: the client waits in the
             * backlog rather than the loop spinning. */
            struct timespec ts = {0, 100 * 1000 * 1000};

            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* ---- setup -------------------------------------------------------------- */

static SSL_CTX *tls_context(const char *cert_pem, const char *key_pem)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    X509 *more;

    if (!ctx || !x || !k || SSL_CTX_use_certificate(ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, k) != 1 ||
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        /* Forward secrecy only, as the HTTPS listeners (TLS 1.3's
         * suites all have it). */
        SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
        SSL_CTX_free(ctx);
        ctx = NULL;
        goto out;
    }
    /* The rest of the chain, if the certificate file has one. */
    while ((more = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL)
        if (SSL_CTX_add_extra_chain_cert(ctx, more) != 1)
            X509_free(more);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
out:
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    return ctx;
}

static int listen_on(const char *host, const char *port, char *why,
                     size_t whylen)
{
    struct addrinfo hints = {.ai_flags = AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int fd = -1, one = 1, rc;

    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0) {
        snprintf(why, whylen, "%s", gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

xcpd_nbd_front *xcpd_nbd_front_start(const char *host, const char *port,
                                     const char *cert_pem,
                                     const char *key_pem,
                                     const char *backend,
                                     const xcpd_nbd_front_hooks *hooks,
                                     unsigned idle_s,
                                     char *why, size_t whylen)
{
    xcpd_nbd_front *f = calloc(1, sizeof(*f));

    if (!f) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    f->lfd = f->wake[0] = f->wake[1] = -1;
    f->hooks = *hooks;
    f->idle_ms = (long long)idle_s * 1000;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->idle, NULL);
    if (strlen(backend) >= sizeof(f->backend)) {
        snprintf(why, whylen, "%s: path too long", backend);
        goto fail;
    }
    memcpy(f->backend, backend, strlen(backend) + 1);
    if (!(f->ctx = tls_context(cert_pem, key_pem))) {
        snprintf(why, whylen, "cannot use the host's certificate and key");
        goto fail;
    }
    if ((f->lfd = listen_on(host, port, why, whylen)) < 0)
        goto fail;
    if (pipe2(f->wake, O_CLOEXEC) < 0 ||
        pthread_create(&f->acceptor, NULL, accept_main, f) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        goto fail;
    }
    f->started = 1;
    return f;
fail:
    xcpd_nbd_front_stop(f);
    return NULL;
}

void xcpd_nbd_front_stop(xcpd_nbd_front *f)
{
    unsigned i;

    if (!f)
        return;
    if (f->started) {
        if (write(f->wake[1], "x", 1) < 0)
            xcpd_log(LOG_WARNING, "nbd: %s", strerror(errno));
        pthread_join(f->acceptor, NULL);
    }
    /* Cut every client off and wait for their threads to go. */
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    for (i = 0; i < FRONT_MAX_CONN; i++) {
        if (!f->conns[i])
            continue;
        shutdown(f->conns[i]->cl.fd, SHUT_RDWR);
        if (f->conns[i]->be.fd >= 0)
            shutdown(f->conns[i]->be.fd, SHUT_RDWR);
    }
    while (f->nconn)
        pthread_cond_wait(&f->idle, &f->mu);
    pthread_mutex_unlock(&f->mu);
    if (f->lfd >= 0)
        close(f->lfd);
    if (f->wake[0] >= 0)
        close(f->wake[0]);
    if (f->wake[1] >= 0)
        close(f->wake[1]);
    SSL_CTX_free(f->ctx);
    pthread_cond_destroy(&f->idle);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
