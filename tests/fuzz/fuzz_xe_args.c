/*
 * libFuzzer target over xe's argument parser (cmd/xe/args.c) and the
 * value parsers it feeds (sizes, booleans, integers: cmd/xe/util.c),
 * without running any command or touching libxcp.
 *
 * Input layout: "<rc file text>\x01<XE_EXTRA_ARGS>\x01<arg>\0<arg>\0..."
 * (missing parts are empty). The words go through the client-side parse
 * (connection options, ~/.xe merge) and then the server-side one (command
 * name, key=value, --switches); every resulting value is parsed as a size,
 * a boolean and an integer.
 *
 * Build: clang -g -fsanitize=fuzzer,address,undefined -Iinclude -Icmd/xe \
 *          tests/fuzz/fuzz_xe_args.c cmd/xe/args.c cmd/xe/util.c
 */
#include <stdint.h>
#include <string.h>

#include "xe.h"

#define MAX_WORDS 256

/* The part of [*p, end) up to the separator sep (consumed), as a string. */
static char *take(xe_arena *a, const char **p, const char *end, char sep)
{
    const char *q = memchr(*p, sep, (size_t)(end - *p));
    const char *stop = q != NULL ? q : end;
    char *s = xe_strndup(a, *p, (size_t)(stop - *p));

    *p = q != NULL ? q + 1 : end;
    return s;
}

static void parse_values(const xe_params *ps)
{
    size_t i;
    int64_t i64;
    bool b;
    double d;

    for (i = 0; i < ps->n; i++) {
        (void)xe_parse_bytes(ps->v[i].val, &i64);
        (void)xe_parse_bool(ps->v[i].val, &b);
        (void)xe_parse_int(ps->v[i].val, &i64);
        (void)xe_parse_float(ps->v[i].val, &d);
        (void)xe_params_get(ps, ps->v[i].key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xe_arena a = {NULL};
    const char *p = (const char *)data, *end = p + size;
    char *rc, *extra, *argv[MAX_WORDS];
    int argc = 0;
    xe_cmdline cl;
    xe_command cmd;

    rc = take(&a, &p, end, '\x01');
    extra = take(&a, &p, end, '\x01');
    while (p < end && argc < MAX_WORDS)
        argv[argc++] = take(&a, &p, end, '\0');
    xe_cmdline_parse(&a, &cl, argc, argv, rc, extra);
    if (cl.action == XE_RUN
        && xe_command_parse(&a, &cmd, cl.nwords, cl.words) == 0)
        parse_values(&cmd.params);
    xe_arena_free(&a);
    return 0;
}
