/*
 * xcpd: the certificate and key of the TLS listeners. Given files are
 * read as they are; otherwise a self-signed RSA certificate is made with
 * OpenSSL at first start and kept in the state directory, so clients
 * that pinned it keep working across restarts.
 */
#define _GNU_SOURCE

#include "xcpd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CERT_NAME "xcpd-cert.pem"
#define KEY_NAME "xcpd-key.pem"
#define MAX_PEM (1024 * 1024)

/* A whole small file as a NUL-terminated string, or NULL (errno set). */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *s = NULL;
    size_t n = 0, cap = 0, got;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - n < 4097) {
            char *p;

            cap = cap != 0 ? cap * 2 : 8192;
            if (cap > MAX_PEM || (p = realloc(s, cap)) == NULL) {
                free(s);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            s = p;
        }
        got = fread(s + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(s);
        fclose(f);
        errno = EIO;
        return NULL;
    }
    fclose(f);
    s[n] = '\0';
    return s;
}

/* Write data to path through a temporary file and rename(2), so a crash
   never leaves a half-written key that a later start would reuse. */
static int write_atomic(const char *path, const char *data, size_t len,
                        mode_t mode)
{
    char tmp[4096];
    int fd;
    size_t off = 0;
    ssize_t w;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path,
                         (long)getpid())
        >= sizeof(tmp))
        return -1;
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    while (off < len) {
        w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    if (fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}

static char *bio_string(BIO *b)
{
    char *p, *s;
    long n = BIO_get_mem_data(b, &p);

    if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
        return NULL;
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e == NULL)
        return 0;
    ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* A self-signed server certificate for this host, valid ten years. */
static int generate(char **cert_pem, char **key_pem)
{
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    BIGNUM *bn = NULL;
    BIO *kb = NULL, *cb = NULL;
    unsigned char serial[16];
    char host[256], san[600];
    X509_NAME *name;
    int ok = 0;

    if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    /* The bit count goes through varargs: it must be a size_t. */
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    x = X509_new();
    if (pk == NULL || x == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || !X509_set_version(x, 2)
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL
        || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600)
               == NULL
        || !X509_set_pubkey(x, pk))
        goto out;
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)host, -1, -1, 0)
        || !X509_set_issuer_name(x, name))
        goto out;
    snprintf(san, sizeof(san),
             "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", host);
    if (!add_ext(x, NID_subject_alt_name, san)
        || !add_ext(x, NID_basic_constraints, "critical,CA:FALSE")
        || !add_ext(x, NID_key_usage,
                    "critical,digitalSignature,keyEncipherment")
        || !add_ext(x, NID_ext_key_usage, "serverAuth")
        || !X509_sign(x, pk, EVP_sha256()))
        goto out;
    kb = BIO_new(BIO_s_mem());
    cb = BIO_new(BIO_s_mem());
    if (kb == NULL || cb == NULL
        || !PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL)
        || !PEM_write_bio_X509(cb, x))
        goto out;
    *key_pem = bio_string(kb);
    *cert_pem = bio_string(cb);
    if (*key_pem == NULL || *cert_pem == NULL) {
        free(*key_pem);
        free(*cert_pem);
        *key_pem = *cert_pem = NULL;
        goto out;
    }
    ok = 1;
out:
    if (!ok) {
        unsigned long e = ERR_get_error();

        xcpd_log(LOG_ERR, "cannot generate a TLS certificate: %s",
                 e != 0 ? ERR_error_string(e, NULL) : "unknown error");
    }
    BIO_free(kb);
    BIO_free(cb);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pk);
    return ok ? 0 : -1;
}

int xcpd_tls_material(const char *state_dir, const char *cert_file,
                      const char *key_file, char **cert_pem, char **key_pem)
{
    char cpath[4096], kpath[4096];

    /* The options parser has made sure cert_file and key_file come
       together. */
    *cert_pem = *key_pem = NULL;
    if (cert_file != NULL) {
        snprintf(cpath, sizeof(cpath), "%s", cert_file);
        snprintf(kpath, sizeof(kpath), "%s", key_file);
    } else {
        snprintf(cpath, sizeof(cpath), "%s/" CERT_NAME, state_dir);
        snprintf(kpath, sizeof(kpath), "%s/" KEY_NAME, state_dir);
    }
    /* Read the key only once the certificate is there, so errno still
       tells why the one that failed did. */
    *cert_pem = read_file(cpath);
    if (*cert_pem != NULL)
        *key_pem = read_file(kpath);
    if (*key_pem != NULL)
        return 0;
    if (cert_file != NULL) {
        xcpd_log(LOG_ERR, "cannot read %s: %s",
                 *cert_pem == NULL ? cpath : kpath, strerror(errno));
        goto fail;
    }
    /* First start (or a start interrupted between the two renames):
       make both again. The key is renamed first, so a certificate
       without its key is never left behind. */
    free(*cert_pem);
    free(*key_pem);
    *cert_pem = *key_pem = NULL;
    if (generate(cert_pem, key_pem) < 0)
        return -1;
    unlink(cpath); /* a stale certificate must not meet the new key */
    if (write_atomic(kpath, *key_pem, strlen(*key_pem), 0600) < 0) {
        xcpd_log(LOG_ERR, "cannot write %s: %s", kpath, strerror(errno));
        goto fail;
    }
    if (write_atomic(cpath, *cert_pem, strlen(*cert_pem), 0644) < 0) {
        xcpd_log(LOG_ERR, "cannot write %s: %s", cpath, strerror(errno));
        goto fail;
    }
    xcpd_log(LOG_INFO, "generated a self-signed certificate in %s", cpath);
    return 0;
fail:
    free(*cert_pem);
    free(*key_pem);
    *cert_pem = *key_pem = NULL;
    return -1;
}
