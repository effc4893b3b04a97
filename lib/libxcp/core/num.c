/*
 * Numbers as text: doubles printed and parsed with '.' as the decimal
 * point whatever the process locale (the wire's and the model's numbers
 * are locale-free).
 */
#include "core.h"

#include <locale.h>
#include <stdio.h>

void xcp__format_double(char *buf, size_t n, int prec, double f)
{
    const char *dp = localeconv()->decimal_point;
    char *p;

    snprintf(buf, n, "%.*g", prec, f);
    if (dp && dp[0] && (dp[0] != '.' || dp[1])) {
        p = strstr(buf, dp);
        if (p) {
            *p = '.';
            memmove(p + 1, p + strlen(dp), strlen(p + strlen(dp)) + 1);
        }
    }
}

int xcp__parse_double(const char *s, double *out)
{
    const char *dp = localeconv()->decimal_point;
    char *copy = NULL, *end, *p;
    const char *in = s;
    size_t dl;
    double v;
    int rc = XCP_EINVAL;

    if (!*s)
        return XCP_EINVAL;
    if (dp && dp[0] && (dp[0] != '.' || dp[1]) && (p = strchr(s, '.'))) {
        dl = strlen(dp);
        copy = malloc(strlen(s) + dl + 1);
        if (!copy)
            return xcp__oom();
        memcpy(copy, s, (size_t)(p - s));
        memcpy(copy + (p - s), dp, dl);
        strcpy(copy + (p - s) + dl, p + 1);
        in = copy;
    }
    v = strtod(in, &end);
    if (end != in && !*end) {
        *out = v;
        rc = 0;
    }
    free(copy);
    return rc;
}
