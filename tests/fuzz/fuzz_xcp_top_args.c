/*
 * libFuzzer target over xcp-top's command line (cmd/xcp-top/opts.c):
 * the input is its arguments separated by NUL bytes. Checks what the
 * parser promises: a run has a positive interval, a count that is -1 or
 * positive, a sort column in range and a port that is -1 or valid; an
 * error has a message.
 *
 * Build: clang -g -fsanitize=fuzzer,address,undefined -Iinclude \
 *          -Icmd/xcp-top tests/fuzz/fuzz_xcp_top_args.c cmd/xcp-top/opts.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "top.h"

#define MAX_WORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *argv[MAX_WORDS], *p, *end;
    int argc = 0;
    top_opts o;

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    end = buf + size;
    for (p = buf; p <= end && argc < MAX_WORDS; p += strlen(p) + 1)
        argv[argc++] = p;
    top_opts_parse(&o, argc, argv);
    if (o.action == TOP_RUN
        && (!(o.interval > 0) || (o.count != -1 && o.count < 1)
            || o.sort <= COL_TYPE || o.sort >= COL__COUNT
            || (o.port != -1 && (o.port < 1 || o.port > 65535))))
        abort();
    if (o.action == TOP_BAD && o.errtext[0] == '\0')
        abort();
    if (argc > 0)
        (void)top_col_by_name(argv[0]);
    free(buf);
    return 0;
}
