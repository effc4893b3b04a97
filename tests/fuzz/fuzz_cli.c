/*
 * libFuzzer target over xcpd's /cli wire code (cmd/xcpd/cli_proto.c):
 * the request body split into words (XAPI's parse_session_and_args), the
 * client's handshake and the client's messages (Response, Blob headers),
 * each taken from the input; what is decoded is re-encoded and checked.
 * libc only: builds alone.
 */
#include "cli_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xcpd_cli_request rq;
    xcpd_cli_reply reply;
    xcpd_cli_buf b = {0};
    uint32_t chunk, n;
    size_t i, total = 0;

    if (xcpd_cli_parse((const char *)data, size, &rq) == 0) {
        /* every byte is in a word, a separator or the session line */
        for (i = 0; i < rq.nwords; i++)
            total += strlen(rq.words[i]);
        if (total > size)
            abort();
        xcpd_cli_request_free(&rq);
    }
    (void)xcpd_cli_hello_ok(data, size);
    /* the input as a stream of client messages */
    while (size >= 4) {
        n = xcpd_cli_length(data);
        data += 4;
        size -= 4;
        if (n > size || n > XCPD_CLI_REPLY_MAX)
            break;
        if (xcpd_cli_decode(data, n, &reply, &chunk) == 0
            && reply != XCPD_CLI_CHUNK && chunk != 0)
            abort();
        data += n;
        size -= n;
    }
    /* and a command carrying what is left */
    xcpd_cli_command(&b, XCPD_CLI_HTTP_GET, (const char *)data, size, "");
    if (!b.oom && (b.len != 4 + 4 + 4 + 4 + size + 4
                   || xcpd_cli_length(b.data) != b.len - 4))
        abort();
    xcpd_cli_buf_free(&b);
    return 0;
}
