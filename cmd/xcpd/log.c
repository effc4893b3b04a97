/*
 * xcpd: log lines. On stderr they read "xcpd: ...", one line each, and
 * tests parse them; with --syslog they go to the daemon facility instead.
 */
#include "xcpd.h"

#include <stdio.h>
#include <syslog.h>

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
