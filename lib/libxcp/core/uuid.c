/*
 * UUIDs (version 4, from the kernel's random source) and object refs
 * ("OpaqueRef:<uuid>").
 */
#include "core.h"

#include <ctype.h>
#include <stdio.h>
#include <sys/random.h>

void xcp__uuid_gen(char out[37])
{
    unsigned char b[16];
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n <= 0)
            continue; /* EINTR; the kernel pool never runs dry after boot */
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
}

void xcp__ref_gen(char out[XCP_REF_MAX])
{
    char u[37];

    xcp__uuid_gen(u);
    snprintf(out, XCP_REF_MAX, "OpaqueRef:%s", u);
}

/* Whether the 36 characters at s (stopping at a NUL) have a uuid's shape:
 * hex digits, lower-case only when lower, and dashes at 8, 13, 18, 23. */
static bool uuid_shape(const char *s, bool lower)
{
    int i;

    for (i = 0; i < 36; i++) {
        unsigned char c = (unsigned char)s[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (lower ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
                         : !isxdigit(c)) {
            return false;
        }
    }
    return true;
}

bool xcp__uuid_valid(const char *s)
{
    return s && strlen(s) == 36 && uuid_shape(s, false);
}

bool xcp__uuid_lower_prefix(const char *s)
{
    return uuid_shape(s, true);
}
