/*
 * libFuzzer target: the reply reader of the unix-socket HTTP client
 * (lib/libxcp/client/http_unix.c), which xe uses to talk to the local
 * xcpd. Each input is what a server answers: it waits, whole and followed
 * by the server's close, in one end of a socketpair that stands for the
 * kept connection, and a POST is made on the other. Nothing may crash,
 * leak, hang or take more of the body than the limit allows.
 */
#include "../../lib/libxcp/client/http_unix.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPLY_MAX 4096 /* small, so that the limit is reached too */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xcp__uhttp c;
    xcp__buf reply = {0};
    int sv[2], status, fl;
    ssize_t k;

    /* what fits in the socket's buffer: the server writes before the
     * client reads */
    if (size > 65536)
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        abort();
    for (size_t off = 0; off < size; off += (size_t)k)
        if ((k = write(sv[1], data + off, size - off)) <= 0)
            abort();
    shutdown(sv[1], SHUT_WR);
    if (xcp__uhttp_init(&c, "/nonexistent/fuzz.sock") < 0)
        abort();
    fl = fcntl(sv[0], F_GETFL);
    fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    c.fd = sv[0];
    (void)xcp__uhttp_post(&c, "/", "Content-Type: text/xml\r\n", "x", 1,
                          2000, &status, &reply, REPLY_MAX);
    if (reply.len > REPLY_MAX)
        abort();
    xcp__uhttp_dispose(&c); /* closes sv[0] if the client kept it */
    xcp__buf_free(&reply);
    close(sv[1]);
    return 0;
}
