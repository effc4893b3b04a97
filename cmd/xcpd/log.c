/*
 * xcpd: log lines. On stderr they read "xcpd: ...", one line each, and
 * tests parse them; with --syslog they go to the daemon facility instead.
 */
#include "xcpd.h"

#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* Set once at start-up, before any thread exists. */
static int use_syslog;

void xcpd_log_use_syslog(void)
{
    openlog("xcpd", LOG_PID, LOG_DAEMON);
    use_syslog = 1;
}

void xcpd_log(int prio, const char *fmt, ...)
{
    va_list ap;
    char line[1024], *p;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* Paths and error texts come from clients: one entry stays one
       line. */
    for (p = line; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (use_syslog) {
        syslog(prio, "%s", line);
        return;
    }
    /* One fprintf per line: stdio locks the stream, so lines from
       several threads do not interleave. */
    fprintf(stderr, "xcpd: %s\n", line);
}

/* ---- dying loudly --------------------------------------------------------- */

/* What MHD reports before it aborts: its reason, where, and our stack. */
static void mhd_panic(void *cls, const char *file, unsigned int line,
                      const char *reason)
{
    (void)cls;
    xcpd_log(LOG_CRIT, "libmicrohttpd panic at %s:%u: %s",
             file != NULL ? file : "?", line,
             reason != NULL ? reason : "(no reason)");
    abort(); /* the SIGABRT handler prints the stack */
}

/* A fatal signal: the stack goes to stderr (only async-signal-safe calls
   and backtrace, warmed up at install), then the signal is raised again
   with its default action, so the exit status and core are unchanged. */
static void fatal_signal(int sig)
{
    static const char head[] = "xcpd: fatal signal; stack:\n";
    void *frames[64];
    int n;

    if (!use_syslog) {
        n = backtrace(frames, 64);
        (void)!write(STDERR_FILENO, head, sizeof(head) - 1);
        backtrace_symbols_fd(frames, n, STDERR_FILENO);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void xcpd_log_fatal(void)
{
    static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    struct sigaction sa;
    void *warm[1];
    size_t i;

    MHD_set_panic_func(mhd_panic, NULL);
    (void)backtrace(warm, 1); /* loads libgcc now, not in the handler */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fatal_signal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
}
