/*
 * tests/client/daemon.h - run the real daemon (cmd/xcpd/xcpd) for a test:
 * a fresh base directory holding the state dir, an auth file and the
 * daemon's log; loopback HTTP and HTTPS listeners on kernel-chosen ports
 * and the unix socket <state>/xapi.
 */
#ifndef TESTS_CLIENT_DAEMON_H
#define TESTS_CLIENT_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

/* Credentials in every auth file written here. */
#define ROOT_PW "s3cret pw"
#define ALICE_PW "alice-pw"

struct daemon {
    pid_t pid;
    int http_port, https_port;
    char base[256];   /* removed by daemon_cleanup */
    char state[300];  /* base/state */
    char sock[320];   /* state/xapi */
    char log[300];
    char http[64], https[64], unix_uri[330]; /* URIs */
};

/* Path of the xcpd binary under test, or NULL when it was not built. */
const char *daemon_binary(void);

/* Make base and state dirs and the auth file (no daemon yet). */
void daemon_prepare(struct daemon *d);

/* Start xcpd on d->state; waits for "xcpd: ready" (fails the test after
 * 30 s or if it exits). */
void daemon_start(struct daemon *d);

/* SIGTERM and wait (SIGKILL after 20 s). No-op when not running. */
void daemon_stop(struct daemon *d);

/* Stop, and remove the base directory. */
void daemon_cleanup(struct daemon *d);

#endif
