/*
 * corosync's process for a pool member (docs/design-pool.md §6): through
 * systemd where systemd runs, else spawned (`corosync -f`) and kept
 * running by a supervisor thread that restarts it with backoff whenever
 * it dies. A corosync already running for this host (after a restart of
 * the daemon that supervised it) is adopted rather than doubled.
 */
#define _GNU_SOURCE
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONF "/etc/corosync/corosync.conf"
#define PIDFILE "/run/corosync.pid"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS 30000
#define STOP_GRACE_MS 10000

extern char **environ;

struct xcp__corosync {
    char *conf, *binary, *log;
    bool systemd;
    pthread_t thr;
    bool thr_started;
    int stop_pipe[2];
    pthread_mutex_t mu;
    pid_t pid;        /* guarded by mu */
    bool child;       /* pid is our child (else adopted) */
    unsigned starts;  /* guarded by mu */
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool xcp__cluster_systemd_running(void)
{
    struct stat st;

    return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

/* Run argv, wait for it; its exit status, or a negative errno. */
static int run(char *const argv[], xcp__cluster_err *err)
{
    pid_t pid;
    int st, rc;

    rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0)
        return xcp__cluster_fail(err, -rc, "%s: %s", argv[0],
                                 strerror(rc));
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return xcp__cluster_fail(err, -errno, "waitpid %s: %s",
                                     argv[0], strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    return xcp__cluster_fail(err, -EIO, "%s %s: %s %d", argv[0],
                             argv[1] ? argv[1] : "",
                             WIFEXITED(st) ? "exit status"
                                           : "killed by signal",
                             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* The pid of a live corosync named by the pid file, or 0. */
static pid_t running_corosync(void)
{
    char buf[64], path[64], comm[32] = "";
    FILE *f;
    long pid = 0;

    f = fopen(PIDFILE, "re");
    if (f == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), f) != NULL)
        pid = strtol(buf, NULL, 10);
    fclose(f);
    if (pid <= 1)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    if (fgets(comm, sizeof(comm), f) == NULL)
        comm[0] = '\0';
    fclose(f);
    return strncmp(comm, "corosync\n", 9) == 0 ? (pid_t)pid : 0;
}

static int spawn(xcp__corosync *c, xcp__cluster_err *err)
{
    char *argv[] = {c->binary, "-f", "-c", c->conf, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none;
    pid_t pid;
    int rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* The child starts with default signal handling and no blocked
     * signals, whatever this thread has. */
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (c->log) {
        posix_spawn_file_actions_addopen(&fa, 1, c->log,
                                         O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    rc = posix_spawnp(&pid, c->binary, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0)
        return xcp__cluster_fail(err, -rc, "spawn %s: %s", c->binary,
                                 strerror(rc));
    pthread_mutex_lock(&c->mu);
    c->pid = pid;
    c->child = true;
    c->starts++;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* Wait up to ms for the stop pipe; true when asked to stop. */
static bool stop_wait(xcp__corosync *c, int ms)
{
    struct pollfd p = {c->stop_pipe[0], POLLIN, 0};

    return poll(&p, 1, ms) > 0;
}

static void *supervise(void *arg)
{
    xcp__corosync *c = arg;
    int backoff = BACKOFF_MIN_MS;

    for (;;) {
        struct pollfd p[2] = {{c->stop_pipe[0], POLLIN, 0}, {-1, POLLIN, 0}};
        int64_t up_since = now_ms();
        pid_t pid;
        bool child;

        pthread_mutex_lock(&c->mu);
        pid = c->pid;
        child = c->child;
        pthread_mutex_unlock(&c->mu);
        if (pid > 0 && (p[1].fd = pidfd_open_(pid)) >= 0) {
            while (poll(p, 2, -1) < 0 && errno == EINTR)
                ;
            close(p[1].fd);
            if (p[0].revents)
                return NULL; /* stop: xcp__corosync_stop deals with it */
            if (child)
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                    ;
            fprintf(stderr, "xcp cluster: corosync (pid %d) died\n",
                    (int)pid);
        }
        pthread_mutex_lock(&c->mu);
        c->pid = 0;
        pthread_mutex_unlock(&c->mu);
        if (now_ms() - up_since >= STABLE_MS)
            backoff = BACKOFF_MIN_MS;
        if (stop_wait(c, backoff))
            return NULL;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        {
            xcp__cluster_err e;
            pid_t other = running_corosync();
            if (other > 0) { /* someone else started one: watch it */
                pthread_mutex_lock(&c->mu);
                c->pid = other;
                c->child = false;
                pthread_mutex_unlock(&c->mu);
            } else if (spawn(c, &e) < 0) {
                fprintf(stderr, "xcp cluster: %s\n", e.msg);
            }
        }
    }
}

int xcp__corosync_start(xcp__corosync **out, const xcp__corosync_opts *o,
                        xcp__cluster_err *err)
{
    xcp__corosync *c;
    pid_t pid;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return xcp__cluster_fail(err, -ENOMEM, "out of memory");
    c->stop_pipe[0] = c->stop_pipe[1] = -1;
    pthread_mutex_init(&c->mu, NULL);
    c->conf = strdup(o->conf ? o->conf : DEFAULT_CONF);
    c->binary = strdup(o->binary ? o->binary : "corosync");
    c->log = o->log ? strdup(o->log) : NULL;
    if (c->conf == NULL || c->binary == NULL || (o->log && c->log == NULL)) {
        rc = xcp__cluster_fail(err, -ENOMEM, "out of memory");
        goto fail;
    }
    if (o->use_systemd && xcp__cluster_systemd_running()) {
        char *argv[] = {"systemctl", "start", "corosync", NULL};
        c->systemd = true;
        if ((rc = run(argv, err)) < 0)
            goto fail;
        *out = c;
        return 0;
    }
    if (pipe2(c->stop_pipe, O_CLOEXEC) < 0) {
        rc = xcp__cluster_fail(err, -errno, "pipe: %s", strerror(errno));
        goto fail;
    }
    if ((pid = running_corosync()) > 0) {
        c->pid = pid; /* adopted: it outlived whoever started it */
        c->child = false;
    } else if ((rc = spawn(c, err)) < 0) {
        goto fail;
    }
    rc = pthread_create(&c->thr, NULL, supervise, c);
    if (rc != 0) {
        rc = xcp__cluster_fail(err, -rc, "pthread_create: %s",
                               strerror(rc));
        goto fail;
    }
    c->thr_started = true;
    *out = c;
    return 0;
fail:
    if (c->pid > 0 && c->child) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    c->pid = 0;
    xcp__corosync_stop(c, false);
    return rc;
}

int xcp__corosync_reload(xcp__corosync *c, xcp__cluster_err *err)
{
    if (c->systemd) {
        char *argv[] = {"systemctl", "reload-or-restart", "corosync", NULL};
        return run(argv, err);
    } else {
        char *argv[] = {"corosync-cfgtool", "-R", NULL};
        return run(argv, err);
    }
}

pid_t xcp__corosync_pid(xcp__corosync *c)
{
    pid_t pid;

    pthread_mutex_lock(&c->mu);
    pid = c->pid;
    pthread_mutex_unlock(&c->mu);
    return pid;
}

unsigned xcp__corosync_starts(xcp__corosync *c)
{
    unsigned n;

    pthread_mutex_lock(&c->mu);
    n = c->starts;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* SIGTERM, then SIGKILL after the grace period; reaps a child. */
static void terminate(pid_t pid, bool child)
{
    int fd = pidfd_open_(pid);
    struct pollfd p = {fd, POLLIN, 0};

    kill(pid, SIGTERM);
    if (fd < 0 || poll(&p, 1, STOP_GRACE_MS) <= 0)
        kill(pid, SIGKILL);
    if (fd >= 0)
        close(fd);
    if (child)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
}

void xcp__corosync_stop(xcp__corosync *c, bool kill_it)
{
    if (c == NULL)
        return;
    if (c->systemd && kill_it) {
        char *argv[] = {"systemctl", "stop", "corosync", NULL};
        run(argv, NULL);
    }
    if (c->thr_started) {
        if (write(c->stop_pipe[1], "x", 1) < 0)
            fprintf(stderr, "xcp cluster: stop: %s\n", strerror(errno));
        pthread_join(c->thr, NULL);
    }
    if (c->pid > 0) {
        if (kill_it)
            terminate(c->pid, c->child);
        /* else a child keeps running, reparented, as it would outlive a
         * crash of this process: the next start adopts it. */
    }
    if (c->stop_pipe[0] >= 0)
        close(c->stop_pipe[0]);
    if (c->stop_pipe[1] >= 0)
        close(c->stop_pipe[1]);
    pthread_mutex_destroy(&c->mu);
    free(c->conf);
    free(c->binary);
    free(c->log);
    free(c);
}
