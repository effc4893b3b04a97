/*
 * UUIDs (version 4, from the kernel's random source) and object refs
 * ("OpaqueRef:<uuid>").
 */
#include "../internal.h"

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

bool xcp__uuid_valid(const char *s)
{
    int i;

    if (!s || strlen(s) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}
