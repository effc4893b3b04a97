/*
 * XAPI's thin CLI protocol (ocaml/xapi-cli-protocol/cli_protocol.ml), the
 * wire side only: no I/O, no library, so that the fuzzer
 * (tests/fuzz/fuzz_cli.c) links it alone.
 *
 * After the POST /cli request (its body: the command line, one word a
 * line, "session_id=" first when forwarded), the server writes the
 * prefix "XenSource thin CLI protocol" and its version (major, minor as
 * little-endian int32), the client answers the same, and from then on
 * both write messages: a little-endian int32 length, then the payload of
 * int32 tags and length-prefixed strings.
 */
#ifndef XCPD_CLI_PROTO_H
#define XCPD_CLI_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define XCPD_CLI_PREFIX "XenSource thin CLI protocol"
#define XCPD_CLI_PREFIX_LEN (sizeof(XCPD_CLI_PREFIX) - 1)
#define XCPD_CLI_MAJOR 0
#define XCPD_CLI_MINOR 2
/* The handshake: prefix, major, minor. */
#define XCPD_CLI_HELLO_LEN (XCPD_CLI_PREFIX_LEN + 8)

/* Commands (server to client), with XAPI's tags. */
enum {
    XCPD_CLI_PRINT = 0,
    XCPD_CLI_LOAD = 1,
    XCPD_CLI_PROMPT = 3,
    XCPD_CLI_EXIT = 4,
    XCPD_CLI_HTTP_GET = 12,
    XCPD_CLI_HTTP_PUT = 13,
    XCPD_CLI_ERROR = 14,
    XCPD_CLI_DEBUG = 15,
    XCPD_CLI_PRINT_STDERR = 16,
    XCPD_CLI_HTTP_CONNECT = 17,
};

/* What a client may send back. */
typedef enum xcpd_cli_reply {
    XCPD_CLI_OK = 5,        /* Response OK */
    XCPD_CLI_FAILED = 6,    /* Response Failed */
    XCPD_CLI_WAIT = 18,     /* Response Wait (a heartbeat) */
    XCPD_CLI_CHUNK = 7,     /* Blob (Chunk n): n data bytes follow */
    XCPD_CLI_END = 8,       /* Blob End */
} xcpd_cli_reply;

/* The longest message payload a client sends (a Blob Chunk header). */
#define XCPD_CLI_REPLY_MAX 64

/* A growable byte buffer; data NULL and oom set after a failed growth. */
typedef struct xcpd_cli_buf {
    unsigned char *data;
    size_t len, cap;
    int oom;
} xcpd_cli_buf;

void xcpd_cli_buf_free(xcpd_cli_buf *b);

/* The server's handshake into b. */
void xcpd_cli_hello(xcpd_cli_buf *b);

/* Whether the client's handshake (XCPD_CLI_HELLO_LEN bytes) is one we
 * speak: 1, 0 (another major version), -1 (not the protocol). */
int xcpd_cli_hello_ok(const unsigned char *p, size_t n);

/* One command message appended to b: tag with up to two strings (NULL:
 * absent) or, for XCPD_CLI_EXIT, the int code. */
void xcpd_cli_command(xcpd_cli_buf *b, int tag, const char *s1, size_t n1,
                      const char *s2);
void xcpd_cli_exit(xcpd_cli_buf *b, int code);

/* The payload length of a message from its 4-byte head. */
uint32_t xcpd_cli_length(const unsigned char head[4]);

/*
 * Decode a client's message payload (n bytes): 0 with *reply set (and
 * *chunk the byte count for XCPD_CLI_CHUNK), or -1 when it is not a
 * response or blob header of the protocol.
 */
int xcpd_cli_decode(const unsigned char *p, size_t n, xcpd_cli_reply *reply,
                    uint32_t *chunk);

/* The request body as XAPI's parse_session_and_args reads it. */
typedef struct xcpd_cli_request {
    char *session_id;       /* from a first "session_id=" line, or NULL */
    size_t nwords;
    char **words;           /* the rest, '\r' dropped from line ends */
    char *storage;          /* what they point into */
} xcpd_cli_request;

/* Split body (len bytes, any content) into words; 0, or -1 (no
 * memory). Free with xcpd_cli_request_free. */
int xcpd_cli_parse(const char *body, size_t len, xcpd_cli_request *out);
void xcpd_cli_request_free(xcpd_cli_request *r);

#endif
