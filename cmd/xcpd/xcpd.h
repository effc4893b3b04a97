/*
 * xcpd: declarations shared by the daemon's files and by the HTTP fuzzer
 * (tests/fuzz/fuzz_http.c), which drives the same handler as the daemon.
 */
#ifndef XCPD_H
#define XCPD_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

#include <xcp/server.h>

/* Largest RPC body accepted (XAPI's limit). */
#define XCPD_RPC_BODY_MAX ((size_t)300 * 1024)

/* State shared by every listener of one daemon. */
typedef struct xcpd_http {
    xcp_server *srv;        /* NULL only in the fuzzer when no engine
                               could be opened: RPCs then answer 503 */
    int verbose;            /* log one line per failed RPC or transfer */
    unsigned transfer_timeout_s; /* idle timeout of VDI transfers */
    /* One lock orders a parked request against its completion; it is
       held only for a few instructions, never across a call into the
       engine. */
    pthread_mutex_t mu;
    unsigned long dispatched; /* RPCs handed to the engine whose HTTP
                                 request has not ended yet (atomic: MHD's
                                 completion callback takes no lock of
                                 ours) */
} xcpd_http;

/* One listener: the handler's cls. */
typedef struct xcpd_listener {
    xcpd_http *http;
    int local;              /* the unix socket: peers by SO_PEERCRED */
} xcpd_listener;

void xcpd_http_init(xcpd_http *h, xcp_server *srv, int verbose);
void xcpd_http_destroy(xcpd_http *h);

/* RPCs still in flight (for the shutdown drain). */
unsigned long xcpd_http_dispatched(xcpd_http *h);

/* MHD callbacks: cls is an xcpd_listener for both. */
enum MHD_Result xcpd_access(void *cls, struct MHD_Connection *c,
                            const char *url, const char *method,
                            const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls);
void xcpd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe);

/* ---- logging (log.c) ---------------------------------------------------- */

/* Send log lines to syslog instead of stderr. */
void xcpd_log_use_syslog(void);
/* One line, "xcpd: " prefixed on stderr; prio as syslog's LOG_*. */
void xcpd_log(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- TLS material (tls.c) ----------------------------------------------- */

/*
 * The PEM certificate and key for the TLS listeners: read from cert_file
 * and key_file when given, else from <state_dir>/xcpd-{cert,key}.pem,
 * which are generated (self-signed) when absent. Returns 0 or -1 after
 * logging why. The strings are malloc'd and NUL-terminated.
 */
int xcpd_tls_material(const char *state_dir, const char *cert_file,
                      const char *key_file, char **cert_pem, char **key_pem);

#endif
