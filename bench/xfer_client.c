/*
 * xfer_client - a streaming HTTP(S) client for VDI transfers, the fair
 * client of bench_transfer (bench/bench_transfer.py): libcurl, as the
 * curl tool, but moving large blocks both ways as Xen Orchestra's and
 * XAPI's own clients do.
 *
 *     xfer_client put URL FILE    upload FILE (Content-Length, no Expect)
 *     xfer_client get URL FILE    download the body into FILE
 *
 * Uploads read FILE in 2 MiB pieces (libcurl's largest upload buffer);
 * downloads take up to 1 MiB per receive, gather 1 MiB (what comes in
 * pieces of 256 KiB or more is written as it is, without a copy) and
 * write FILE sparse: 64 KiB
 * pieces of zeros are left as holes, so a raw export lands as qemu-img
 * convert writes a raw file. The curl tool instead writes every byte
 * it receives, in pieces of what each receive returned (8-16 KiB seen
 * with strace), and uploads 64 KiB at a time. Over TLS, OpenSSL reads
 * ahead 256 KiB (libcurl must use OpenSSL). TLS peers are not checked
 * (the benchmark's daemon has a self-signed certificate). Exit status 0
 * on a 2xx answer with the whole body, 1 otherwise (the reason on
 * stderr).
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GRAIN ((size_t)64 * 1024)
#define GATHER ((size_t)1024 * 1024)
/* Pieces from this size on are written without being gathered first. */
#define DIRECT_MIN ((size_t)256 * 1024)

typedef struct sink {
    int fd;
    long long pos;  /* bytes of the body written out so far */
    char *buf;      /* what came since, up to GATHER (libcurl hands TLS
                       data over a record, 16 KiB, at a time) */
    size_t len;
    int failed;
} sink;

static const unsigned char zeros[GRAIN];

/* Write [p, p + n) at the sink's position, zero grains as holes: 0, or
   -1 (s->failed says why). */
static int put_sparse(sink *s, const char *p, size_t n)
{
    size_t i = 0, take, start = (size_t)-1;

    while (i < n) {
        take = GRAIN - (size_t)((unsigned long long)(s->pos + (long long)i)
                                % GRAIN);
        if (take > n - i)
            take = n - i;
        if (memcmp(p + i, zeros, take) == 0) {
            if (start != (size_t)-1 &&
                pwrite(s->fd, p + start, i - start, s->pos + (long long)start)
                    != (ssize_t)(i - start))
                goto fail;
            start = (size_t)-1;
        } else if (start == (size_t)-1) {
            start = i;
        }
        i += take;
    }
    if (start != (size_t)-1 &&
        pwrite(s->fd, p + start, n - start, s->pos + (long long)start)
            != (ssize_t)(n - start))
        goto fail;
    s->pos += (long long)n;
    return 0;
fail:
    s->failed = errno;
    return -1;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb, take, done = 0;

    /* A large piece with nothing gathered goes out as it is: no copy. */
    if (s->len == 0 && n >= DIRECT_MIN)
        return put_sparse(s, p, n) < 0 ? 0 : n;
    while (done < n) {
        take = GATHER - s->len < n - done ? GATHER - s->len : n - done;
        memcpy(s->buf + s->len, p + done, take);
        s->len += take;
        done += take;
        if (s->len == GATHER) {
            if (put_sparse(s, s->buf, s->len) < 0)
                return 0;
            s->len = 0;
        }
    }
    return n;
}

/* libcurl's OpenSSL context: read ahead, so one socket read serves many
   TLS records (as Node's TLS, under Xen Orchestra, reads 64 KiB at a
   time) rather than two reads per 16 KiB record. */
static CURLcode on_ssl_ctx(CURL *c, void *ctx, void *arg)
{
    (void)c;
    (void)arg;
    SSL_CTX_set_read_ahead((SSL_CTX *)ctx, 1);
    SSL_CTX_set_default_read_buffer_len((SSL_CTX *)ctx, 256 * 1024);
    return CURLE_OK;
}

int main(int argc, char **argv)
{
    CURL *c;
    CURLcode rc;
    struct curl_slist *h = NULL;
    struct stat st;
    sink s = {-1, 0, NULL, 0, 0};
    FILE *in = NULL;
    long status = 0;
    int put;

    if (argc != 4 || (strcmp(argv[1], "put") && strcmp(argv[1], "get"))) {
        fprintf(stderr, "usage: xfer_client put|get URL FILE\n");
        return 2;
    }
    put = !strcmp(argv[1], "put");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) || !(c = curl_easy_init())) {
        fprintf(stderr, "xfer_client: libcurl does not start\n");
        return 1;
    }
    curl_easy_setopt(c, CURLOPT_URL, argv[2]);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 1024L * 1024);
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (put) {
        if (!(in = fopen(argv[3], "rb")) || fstat(fileno(in), &st) < 0) {
            fprintf(stderr, "xfer_client: %s: %s\n", argv[3],
                    strerror(errno));
            return 1;
        }
        setvbuf(in, NULL, _IONBF, 0);   /* libcurl's reads go straight */
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, in);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)st.st_size);
    } else {
        s.fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (s.fd < 0 || !(s.buf = malloc(GATHER))) {
            fprintf(stderr, "xfer_client: %s: %s\n", argv[3],
                    strerror(errno));
            return 1;
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    }
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status / 100 == 2 && !put &&
        (put_sparse(&s, s.buf, s.len) < 0 || ftruncate(s.fd, s.pos) < 0) &&
        !s.failed)
        s.failed = errno;
    if (rc != CURLE_OK || status / 100 != 2 || s.failed)
        fprintf(stderr, "xfer_client %s %s: %s (HTTP %ld)%s%s\n", argv[1],
                argv[2], curl_easy_strerror(rc), status,
                s.failed ? ": " : "", s.failed ? strerror(s.failed) : "");
    if (s.fd >= 0 && close(s.fd) < 0 && !s.failed)
        s.failed = errno;
    if (in)
        fclose(in);
    free(s.buf);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    return rc == CURLE_OK && status / 100 == 2 && !s.failed ? 0 : 1;
}
