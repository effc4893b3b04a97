/*
 * cmd/common/fdio.c: the front ends' one write-everything loop (xe
 * console's terminal and console writes, xcpd /console's client and
 * console writes).
 */
#include "fdio.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIG (1024 * 1024) /* well past a pipe's or a socket's buffer */

struct drain {
    int fd;
    unsigned char *got;
    size_t n;
};

/* Reads fd to its end into got, slowly at first so the writer fills up. */
static void *drain_thread(void *arg)
{
    struct drain *d = arg;
    ssize_t r;

    usleep(100 * 1000);
    while (d->n < BIG && (r = read(d->fd, d->got + d->n, BIG - d->n)) > 0)
        d->n += (size_t)r;
    return NULL;
}

static unsigned char *pattern(void)
{
    unsigned char *b = malloc(BIG);
    size_t i;

    cr_assert_not_null(b);
    for (i = 0; i < BIG; i++)
        b[i] = (unsigned char)(i * 7 + i / 251);
    return b;
}

static void write_all_through(int rd, int wr)
{
    unsigned char *want = pattern();
    struct drain d = {rd, calloc(1, BIG), 0};
    pthread_t th;

    cr_assert_not_null(d.got);
    cr_assert_eq(pthread_create(&th, NULL, drain_thread, &d), 0);
    cr_assert_eq(xcmd_write_all(wr, want, BIG, -1), 0, "%s",
                 strerror(errno));
    close(wr);
    pthread_join(th, NULL);
    cr_assert_eq(d.n, (size_t)BIG);
    cr_assert_eq(memcmp(d.got, want, BIG), 0);
    close(rd);
    free(d.got);
    free(want);
}

/* Before: xe's write_all gave up at the first EAGAIN. */
Test(fdio, write_all_waits_on_a_full_nonblocking_pipe)
{
    int p[2];

    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    write_all_through(p[0], p[1]);
}

Test(fdio, write_all_writes_everything_to_a_blocking_socket)
{
    int sv[2];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    write_all_through(sv[0], sv[1]);
}

/* Before: xe's write_all (write(2)) to a console whose far end had gone
 * raised SIGPIPE, killing xe with the terminal left raw. */
Test(fdio, write_all_to_a_closed_socket_fails_without_sigpipe)
{
    int sv[2];

    signal(SIGPIPE, SIG_DFL);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[0]);
    cr_assert_eq(xcmd_write_all(sv[1], "x", 1, -1), -1);
    cr_assert_eq(errno, EPIPE);
    close(sv[1]);
}

Test(fdio, write_all_gives_up_after_the_timeout)
{
    static unsigned char buf[BIG];
    int p[2];

    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    /* no reader: the pipe fills, then 50 ms pass */
    cr_assert_eq(xcmd_write_all(p[1], buf, sizeof(buf), 50), -1);
    close(p[0]);
    close(p[1]);
}

/* A writer taking at most 3 bytes a call and refusing every other one. */
struct stutter {
    unsigned char out[64];
    size_t n;
    unsigned calls;
};

static ssize_t stutter_put(void *arg, const void *buf, size_t n)
{
    struct stutter *s = arg;

    if (s->calls++ % 2 == 0)
        return XCMD_AGAIN;
    n = n < 3 ? n : 3;
    memcpy(s->out + s->n, buf, n);
    s->n += n;
    return (ssize_t)n;
}

static ssize_t gone_put(void *arg, const void *buf, size_t n)
{
    (void)arg;
    (void)buf;
    (void)n;
    return -1;
}

Test(fdio, write_with_retries_short_and_refused_writes_in_order)
{
    static const char msg[] = "the quick brown fox jumps";
    struct stutter s = {{0}, 0, 0};
    int p[2];

    cr_assert_eq(pipe(p), 0); /* p[1]: always writable, for the waits */
    cr_assert_eq(xcmd_write_with(stutter_put, &s, p[1], msg,
                                 sizeof(msg) - 1, 1000), 0);
    cr_assert_eq(s.n, sizeof(msg) - 1);
    cr_assert_eq(memcmp(s.out, msg, s.n), 0);
    cr_assert_eq(xcmd_write_with(gone_put, NULL, p[1], msg, 1, 1000), -1);
    cr_assert_eq(xcmd_write_with(gone_put, NULL, p[1], msg, 0, 1000), 0);
    close(p[0]);
    close(p[1]);
}
