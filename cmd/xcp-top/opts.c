/*
 * xcp-top's command line: batch mode and its cadence, the server to
 * watch (xe's -s/-p/-u/-pw/-pwf/--nossl) and the view's initial sort and
 * filter. Library-free (tests/fuzz/fuzz_xcp_top_args.c drives it).
 */
#include "top.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const top_col_names[COL__COUNT] = {
    "TYPE",  "STATE", "CPU(%)", "VCPUS",  "MEM(k)", "MEM(%)", "MAXMEM(k)",
    "RD(k/s)", "WR(k/s)", "RX(k/s)", "TX(k/s)", "UUID", "NAME",
};

/* Short names for -S and the help line. */
static const char *const col_alias[COL__COUNT] = {
    "type", "state", "cpu", "vcpus", "mem", "mem%", "maxmem",
    "rd",   "wr",    "rx",  "tx",    "uuid", "name",
};

int top_col_by_name(const char *name)
{
    int i;

    for (i = 0; i < COL__COUNT; i++)
        if (strcasecmp(name, col_alias[i]) == 0
            || strcasecmp(name, top_col_names[i]) == 0)
            return i;
    return -1;
}

void top_usage(FILE *f)
{
    fputs(
        "Usage: xcp-top [OPTION]...\n"
        "Live view of the hosts and VMs of a libxcp or XAPI host, like "
        "xentop.\n"
        "\n"
        "  -b, --batch            print plain lines instead of the screen\n"
        "  -i, --interval SECONDS seconds between refreshes (default 2)\n"
        "  -d, --delay SECONDS    the same, as xentop names it\n"
        "  -n, --iterations COUNT stop after COUNT refreshes\n"
        "  -f, --filter REGEX     only VMs whose name or uuid matches\n"
        "                         (POSIX extended, case-insensitive)\n"
        "  -S, --sort FIELD       sort by name, state, cpu, vcpus, mem, "
        "mem%,\n"
        "                         maxmem, rd, wr, rx, tx or uuid "
        "(default name)\n"
        "  -r, --reverse          reverse the sort order\n"
        "  -H, --hosts            hosts only\n"
        "  -s SERVER              watch SERVER (https) instead of this "
        "host\n"
        "  -p PORT                its port\n"
        "  -u USER, -pw PASSWORD  credentials (default root)\n"
        "  -pwf FILE              user and password on two lines of FILE\n"
        "  --nossl                plain http to SERVER\n"
        "  -h, --help             this text\n"
        "  -V, --version          the version\n"
        "\n"
        "Without -s, xcp-top talks to this host's xcpd through its socket "
        "when it\n"
        "runs, else opens the engine of the state directory itself "
        "($XCP_STATE_DIR).\n"
        "Batch mode prints, per refresh, one header line and one line per "
        "host and\n"
        "per VM; fields are separated by blanks, unknown figures are "
        "n/a and the\n"
        "name, last, may contain blanks. Keys of the screen: see "
        "xcp-top(1) or h.\n",
        f);
}

static void bad(top_opts *o, const char *fmt, const char *arg)
{
    o->action = TOP_BAD;
    snprintf(o->errtext, sizeof(o->errtext), fmt, arg);
}

static bool parse_seconds(const char *s, double *out)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(d) || d <= 0
        || d > 86400)
        return false;
    *out = d;
    return true;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long l;

    errno = 0;
    l = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || l < lo || l > hi)
        return false;
    *out = l;
    return true;
}

/* The short option a long one stands for (its own letter for a short). */
static char long_key(const char *a)
{
    static const struct {
        const char *name;
        char key;
    } longs[] = {
        {"--interval", 'i'}, {"--delay", 'd'}, {"--iterations", 'n'},
        {"--filter", 'f'},   {"--sort", 'S'},
    };
    size_t i;

    for (i = 0; i < sizeof(longs) / sizeof(longs[0]); i++)
        if (!strcmp(a, longs[i].name))
            return longs[i].key;
    return a[1];
}

void top_opts_parse(top_opts *o, int argc, char *const *argv)
{
    int i;
    long l;

    memset(o, 0, sizeof(*o));
    o->action = TOP_RUN;
    o->interval = 2;
    o->count = -1;
    o->port = -1;
    /* xentop's default; sorting by a figure of the data sources costs
     * a read per running VM, shown or not. */
    o->sort = COL_NAME;
    for (i = 0; i < argc && o->action == TOP_RUN; i++) {
        const char *a = argv[i], *val = NULL;
        bool takes;

        /* Flags without a value. */
        if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            o->batch = true;
            continue;
        }
        if (!strcmp(a, "-r") || !strcmp(a, "--reverse")) {
            o->reverse = true;
            continue;
        }
        if (!strcmp(a, "-H") || !strcmp(a, "--hosts")) {
            o->hosts_only = true;
            continue;
        }
        if (!strcmp(a, "--nossl")) {
            o->nossl = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            o->action = TOP_HELP;
            break;
        }
        if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            o->action = TOP_VERSION;
            break;
        }
        takes = !strcmp(a, "-i") || !strcmp(a, "--interval")
                || !strcmp(a, "-d") || !strcmp(a, "--delay")
                || !strcmp(a, "-n") || !strcmp(a, "--iterations")
                || !strcmp(a, "-f") || !strcmp(a, "--filter")
                || !strcmp(a, "-S") || !strcmp(a, "--sort")
                || !strcmp(a, "-s") || !strcmp(a, "-p") || !strcmp(a, "-u")
                || !strcmp(a, "-pw") || !strcmp(a, "-pwf");
        if (!takes) {
            bad(o, "xcp-top: unknown option '%s' (see --help)", a);
            break;
        }
        if (i + 1 >= argc) {
            bad(o, "xcp-top: option '%s' needs a value", a);
            break;
        }
        val = argv[++i];
        switch (long_key(a)) {
        case 'i':
        case 'd':
            if (!parse_seconds(val, &o->interval))
                bad(o, "xcp-top: bad interval '%s' (seconds, > 0)", val);
            break;
        case 'n':
            if (!parse_long(val, 1, 1000000000L, &l))
                bad(o, "xcp-top: bad iteration count '%s'", val);
            o->count = l;
            break;
        case 'f':
            o->filter = val;
            break;
        case 'S':
            if ((o->sort = top_col_by_name(val)) < 0
                || o->sort == COL_TYPE)
                bad(o, "xcp-top: unknown sort field '%s'", val);
            break;
        case 's':
            o->server = val;
            break;
        case 'p':
            if (!strcmp(a, "-pw"))
                o->password = val;
            else if (!strcmp(a, "-pwf"))
                o->pwfile = val;
            else if (!parse_long(val, 1, 65535, &l))
                bad(o, "xcp-top: bad port '%s'", val);
            else
                o->port = (int)l;
            break;
        case 'u':
            o->user = val;
            break;
        }
    }
}
