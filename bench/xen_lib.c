/*
 * bench/xen_lib.c - the library side of `make bench-xen`: an orchestrator
 * that links libxcp and holds one session open, as a long-lived program
 * does, timing each lifecycle call it is asked for.
 *
 *   xen_lib local            an embedded engine (no daemon)
 *   xen_lib unix:/path       a remote session to xcpd (JSON-RPC, kept open)
 *
 * Reads commands on stdin, one a line, and answers each with one line:
 *
 *   start|shutdown|suspend|resume|hard_shutdown VM-UUID
 *   migrate VM-UUID HOST-UUID     (VM.pool_migrate, live)
 *   quit
 *
 * answer: "ok SECONDS" (the call's wall time, CLOCK_MONOTONIC) or
 * "err NAME PARAMS..." (the XenAPI error). The VM's uuid is resolved to
 * its ref before the clock starts, as an orchestrator holds refs.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xcp/xcp.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void answer_error(void)
{
    const xcp_error *e = xcp_error_last();

    printf("err %s", e && e->name ? e->name : "UNKNOWN");
    for (size_t i = 0; e && i < e->nparams; i++)
        printf(" %s", e->params[i]);
    printf("\n");
}

/* ref of the object of class cls with this uuid, into *ref (a string value) */
static int by_uuid(xcp_session *s, xcp_value *ref, const char *cls,
                   const char *uuid)
{
    char method[64];
    xcp_value arg = {0};
    int rc;

    snprintf(method, sizeof method, "%s.get_by_uuid", cls);
    if (xcp_value_set_string(&arg, uuid) < 0)
        return -1;
    rc = xcp_call(s, ref, method, 1, &arg);
    xcp_value_dispose(&arg);
    return rc;
}

/* runs one command; the timed part is the lifecycle call alone */
static int run(xcp_session *s, const char *op, const char *vm_uuid,
               const char *host_uuid, double *secs)
{
    xcp_value args[3] = {{0}}, res = {0};
    size_t nargs = 1;
    const char *method;
    double t0;
    int rc = -1;

    if (by_uuid(s, &args[0], "VM", vm_uuid) < 0)
        return -1;
    if (strcmp(op, "start") == 0 || strcmp(op, "resume") == 0) {
        method = op[0] == 's' ? "VM.start" : "VM.resume";
        xcp_value_set_bool(&args[1], false); /* start_paused */
        xcp_value_set_bool(&args[2], false); /* force */
        nargs = 3;
    } else if (strcmp(op, "shutdown") == 0) {
        method = "VM.clean_shutdown";
    } else if (strcmp(op, "hard_shutdown") == 0) {
        method = "VM.hard_shutdown";
    } else if (strcmp(op, "suspend") == 0) {
        method = "VM.suspend";
    } else if (strcmp(op, "migrate") == 0 && host_uuid) {
        method = "VM.pool_migrate";
        if (by_uuid(s, &args[1], "host", host_uuid) < 0)
            goto out;
        xcp_value_set_struct(&args[2]);
        xcp_value live = {0};
        if (xcp_value_set_string(&live, "true") < 0 ||
            xcp_value_struct_add(&args[2], "live", &live) < 0) {
            xcp_value_dispose(&live);
            goto out;
        }
        nargs = 3;
    } else {
        goto out; /* main() checked the command */
    }
    t0 = now();
    rc = xcp_call(s, &res, method, nargs, args);
    *secs = now() - t0;
out:
    for (size_t i = 0; i < 3; i++)
        xcp_value_dispose(&args[i]);
    xcp_value_dispose(&res);
    return rc;
}

static bool known(const char *op)
{
    static const char *const ops[] = {"start", "shutdown", "hard_shutdown",
                                      "suspend", "resume", "migrate"};

    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(op, ops[i]) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    xcp_session *s = NULL;
    char line[512];
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: xen_lib local|unix:/path/to/socket\n");
        return 2;
    }
    if (strcmp(argv[1], "local") == 0) {
        xcp_open_options o = {XCP_OPEN_OPTIONS_VERSION};

        o.originator = "bench-xen-lib";
        rc = xcp_session_open_local(&s, &o);
    } else {
        xcp_remote_options o = {XCP_REMOTE_OPTIONS_VERSION};

        o.uri = argv[1];
        o.originator = "bench-xen-lib";
        o.protocol = XCP_REMOTE_JSONRPC;
        rc = xcp_session_open_remote(&s, &o);
    }
    if (rc < 0) {
        answer_error();
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    while (fgets(line, sizeof line, stdin)) {
        char *save = NULL;
        const char *op = strtok_r(line, " \t\n", &save);
        const char *vm = strtok_r(NULL, " \t\n", &save);
        const char *host = strtok_r(NULL, " \t\n", &save);
        double secs = 0;

        if (!op || strcmp(op, "quit") == 0)
            break;
        if (!vm || !known(op) || (strcmp(op, "migrate") == 0 && !host)) {
            printf("err USAGE %s VM-UUID%s\n", op,
                   strcmp(op, "migrate") == 0 ? " HOST-UUID" : "");
            continue;
        }
        if (run(s, op, vm, host, &secs) < 0)
            answer_error();
        else
            printf("ok %.4f\n", secs);
    }
    xcp_session_close(s);
    return 0;
}
