/*
 * XAPI's thin CLI protocol, the wire side: the handshake, the commands
 * the server writes, the replies it reads and the request body's words
 * (see cli_proto.h). Hand-written: the format is a handful of int32 tags
 * and length-prefixed strings that no library speaks.
 */
#include "cli_proto.h"

#include <stdlib.h>
#include <string.h>

void xcpd_cli_buf_free(xcpd_cli_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void put(xcpd_cli_buf *b, const void *p, size_t n)
{
    unsigned char *d;
    size_t cap;

    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        if ((d = realloc(b->data, cap)) == NULL) {
            xcpd_cli_buf_free(b);
            b->oom = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put32(xcpd_cli_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};

    put(b, x, 4);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
           | (uint32_t)p[3] << 24;
}

uint32_t xcpd_cli_length(const unsigned char head[4])
{
    return get32(head);
}

void xcpd_cli_hello(xcpd_cli_buf *b)
{
    put(b, XCPD_CLI_PREFIX, XCPD_CLI_PREFIX_LEN);
    put32(b, XCPD_CLI_MAJOR);
    put32(b, XCPD_CLI_MINOR);
}

int xcpd_cli_hello_ok(const unsigned char *p, size_t n)
{
    if (n < XCPD_CLI_HELLO_LEN
        || memcmp(p, XCPD_CLI_PREFIX, XCPD_CLI_PREFIX_LEN) != 0)
        return -1;
    return get32(p + XCPD_CLI_PREFIX_LEN) == XCPD_CLI_MAJOR;
}

/* The 4-byte length before a message, patched once the payload is in. */
static size_t begin(xcpd_cli_buf *b)
{
    size_t at = b->len;

    put32(b, 0);
    put32(b, 9); /* Command */
    return at;
}

static void end(xcpd_cli_buf *b, size_t at)
{
    uint32_t n;

    if (b->oom)
        return;
    n = (uint32_t)(b->len - at - 4);
    b->data[at] = (unsigned char)n;
    b->data[at + 1] = (unsigned char)(n >> 8);
    b->data[at + 2] = (unsigned char)(n >> 16);
    b->data[at + 3] = (unsigned char)(n >> 24);
}

static void put_str(xcpd_cli_buf *b, const char *s, size_t n)
{
    put32(b, (uint32_t)n);
    put(b, s, n);
}

void xcpd_cli_command(xcpd_cli_buf *b, int tag, const char *s1, size_t n1,
                      const char *s2)
{
    size_t at = begin(b);

    put32(b, (uint32_t)tag);
    if (s1 != NULL)
        put_str(b, s1, n1);
    if (s2 != NULL)
        put_str(b, s2, strlen(s2));
    end(b, at);
}

void xcpd_cli_exit(xcpd_cli_buf *b, int code)
{
    size_t at = begin(b);

    put32(b, XCPD_CLI_EXIT);
    put32(b, (uint32_t)code);
    end(b, at);
}

int xcpd_cli_decode(const unsigned char *p, size_t n, xcpd_cli_reply *reply,
                    uint32_t *chunk)
{
    uint32_t kind, tag;

    *chunk = 0;
    if (n < 8)
        return -1;
    kind = get32(p);
    tag = get32(p + 4);
    if (kind == 10 && n == 8
        && (tag == XCPD_CLI_OK || tag == XCPD_CLI_FAILED
            || tag == XCPD_CLI_WAIT)) {
        *reply = (xcpd_cli_reply)tag;
        return 0;
    }
    if (kind == 11 && tag == XCPD_CLI_END && n == 8) {
        *reply = XCPD_CLI_END;
        return 0;
    }
    if (kind == 11 && tag == XCPD_CLI_CHUNK && n == 12) {
        *reply = XCPD_CLI_CHUNK;
        *chunk = get32(p + 8);
        return 0;
    }
    return -1;
}

void xcpd_cli_request_free(xcpd_cli_request *r)
{
    free(r->words);
    free(r->storage);
    memset(r, 0, sizeof(*r));
}

/* XAPI's get_line loop: every '\n' ends a line and the text after the
 * last one (even empty) is a line too; a '\r' ending a line goes. */
int xcpd_cli_parse(const char *body, size_t len, xcpd_cli_request *out)
{
    size_t i, n = 1, k = 0, start = 0;
    char *s;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < len; i++)
        n += body[i] == '\n';
    out->storage = malloc(len + 1);
    out->words = calloc(n, sizeof(char *));
    if (out->storage == NULL || out->words == NULL) {
        xcpd_cli_request_free(out);
        return -1;
    }
    s = out->storage;
    if (len > 0)
        memcpy(s, body, len);
    s[len] = '\0';
    for (i = 0; i <= len; i++) {
        if (i < len && s[i] != '\n')
            continue;
        s[i] = '\0';
        if (i > start && s[i - 1] == '\r')
            s[i - 1] = '\0';
        out->words[k++] = s + start;
        start = i + 1;
    }
    out->nwords = k;
    if (k > 0 && strncmp(out->words[0], "session_id=", 11) == 0) {
        out->session_id = out->words[0] + 11;
        memmove(out->words, out->words + 1, (k - 1) * sizeof(char *));
        out->nwords--;
    }
    return 0;
}
