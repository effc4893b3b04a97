/*
 * tests/client/daemon.c - start and stop the real daemon for the remote
 * session tests (see daemon.h).
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *daemon_binary(void)
{
    static char path[1024];
    const char *top = getenv("abs_top_builddir");

    snprintf(path, sizeof(path), "%s/cmd/xcpd/xcpd", top ? top : ".");
    return access(path, X_OK) == 0 ? path : NULL;
}

/* crypt(3) SHA-512 hash of pw, as the auth file wants it. */
static void hash_pw(const char *pw, char *out, size_t len)
{
    char cmd[256];
    FILE *p;

    snprintf(cmd, sizeof(cmd), "openssl passwd -6 '%s'", pw);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(out, (int)len, p), "openssl passwd failed");
    out[strcspn(out, "\n")] = '\0';
    cr_assert_eq(pclose(p), 0);
    cr_assert(strncmp(out, "$6$", 3) == 0, "hash %s", out);
}

void daemon_prepare(struct daemon *d)
{
    const char *tmp = getenv("TMPDIR");
    char h1[200], h2[200], path[320];
    FILE *f;

    memset(d, 0, sizeof(*d));
    d->pid = -1;
    snprintf(d->base, sizeof(d->base), "%s/xcp-client.XXXXXX",
             tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(d->base), "mkdtemp: %s", strerror(errno));
    snprintf(d->state, sizeof(d->state), "%s/state", d->base);
    snprintf(d->sock, sizeof(d->sock), "%s/xapi", d->state);
    snprintf(d->log, sizeof(d->log), "%s/xcpd.log", d->base);
    snprintf(d->unix_uri, sizeof(d->unix_uri), "unix:%s", d->sock);
    cr_assert_eq(mkdir(d->state, 0700), 0);
    hash_pw(ROOT_PW, h1, sizeof(h1));
    hash_pw(ALICE_PW, h2, sizeof(h2));
    snprintf(path, sizeof(path), "%s/auth", d->base);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "# test users\nroot:%s\nalice:%s\n", h1, h2);
    fclose(f);
}

/* Port of the "listening on <scheme>://127.0.0.1:PORT" line, or 0. */
static int port_of(const char *log, const char *scheme)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "listening on %s://127.0.0.1:", scheme);
    p = strstr(log, pat);
    return p ? atoi(p + strlen(pat)) : 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;

    if (!f)
        return NULL;
    buf = calloc(1, 1 << 16);
    n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

void daemon_start(struct daemon *d)
{
    char auth[320];
    const char *bin = daemon_binary();
    int i, status;

    cr_assert_not_null(bin, "no xcpd");
    snprintf(auth, sizeof(auth), "%s/auth", d->base);
    unlink(d->log);
    d->pid = fork();
    cr_assert_geq(d->pid, 0);
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0)
            _exit(126);
        dup2(fd, 2);
        dup2(fd, 1);
        close(fd);
        execl(bin, "xcpd", "--state-dir", d->state, "--listen",
              "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--auth-file",
              auth, "--auth-fail-delay", "10", (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 3000; i++) {
        char *log = slurp(d->log);
        bool ready = log && strstr(log, "xcpd: ready\n");
        if (ready) {
            d->http_port = port_of(log, "http");
            d->https_port = port_of(log, "https");
        }
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = -1;
            cr_assert_fail("xcpd exited (status %d):\n%s", status,
                           log ? log : "");
        }
        free(log);
        if (ready)
            break;
        usleep(10000);
    }
    cr_assert_neq(i, 3000, "xcpd not ready after 30 s");
    cr_assert_gt(d->http_port, 0);
    cr_assert_gt(d->https_port, 0);
    snprintf(d->http, sizeof(d->http), "http://127.0.0.1:%d", d->http_port);
    snprintf(d->https, sizeof(d->https), "https://127.0.0.1:%d",
             d->https_port);
}

void daemon_stop(struct daemon *d)
{
    int i, status;

    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    for (i = 0; i < 2000; i++) {
        if (waitpid(d->pid, &status, WNOHANG) == d->pid)
            break;
        usleep(10000);
    }
    if (i == 2000) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &status, 0);
    }
    d->pid = -1;
}

void daemon_cleanup(struct daemon *d)
{
    char cmd[300];

    daemon_stop(d);
    if (d->base[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->base);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", d->base);
    }
}
