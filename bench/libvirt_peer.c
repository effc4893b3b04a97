/*
 * libvirt_peer - the peer of bench/bench_rpc.c: the same measurements
 * against libvirtd serving its test driver, run by bench/bench_rpc.sh on
 * the same machine in the same script.
 *
 *   libvirt_peer URI N get SECS THREADS [xml]
 *                                       THREADS threads, a connection each,
 *                                       for SECS seconds: per call
 *                                       virDomainLookupByUUIDString +
 *                                       virDomainGetXMLDesc (what a client
 *                                       does for VM.get_record by uuid:
 *                                       two RPCs); with "xml", only
 *                                       virDomainGetXMLDesc on a handle
 *                                       looked up beforehand (one RPC)
 *   libvirt_peer URI N hold             define the domains, print "ready",
 *                                       and keep them until SIGTERM (for
 *                                       timing `virsh list` meanwhile)
 *   libvirt_peer URI 0 storm M          M domains (as setup's) defined, then
 *                                       started, then destroyed, then
 *                                       undefined, one call each, timed by
 *                                       phase: bench/bench_vms.sh's "sim
 *                                       storm" row, with URI test:///default
 *                                       (the test driver in this process)
 *   libvirt_peer URI N event SAMPLES    metadata-change event latency: one
 *                                       connection listens
 *                                       (virConnectDomainEventRegisterAny,
 *                                       default event loop), another sets
 *                                       the description of bench-0; time
 *                                       from just before the set call to
 *                                       the callback
 *
 * Each run first defines N test-driver domains (bench-0 .. bench-N-1, one
 * disk and one NIC each) on a connection it keeps open until the end: the
 * daemon's test:///default state lives only while some connection to it is
 * open, so domains defined by an earlier process would be gone.
 *
 * Output is "key value" lines for the script, as bench_vms prints:
 * get: "domains N" (walked), "calls N", "errors N", "seconds S", "bytes B"
 * (mean XML size);
 * event: "samples N", "lost N", "median_us U", "p99_us U", "mean_us U";
 * storm: "define S", "start S", "destroy S", "undefine S", "seconds S"
 * (wall clock), "cpu S" (this process's CPU time).
 *
 * Built from bench/Makefile.inc with pkg-config's flags at make time, not
 * by configure, so nothing else in the build depends on libvirt.
 */
#define _GNU_SOURCE
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"

static const char *uri;

static void die_virt(const char *what)
{
    virErrorPtr e = virGetLastError();

    fprintf(stderr, "libvirt_peer: %s: %s\n", what,
            e && e->message ? e->message : "?");
    exit(1);
}

/* Errors are counted by the callers; libvirt's default handler would print
 * every one of them to stderr from every thread. */
static void quiet_errors(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static virConnectPtr connect_or_die(void)
{
    virConnectPtr c = virConnectOpen(uri);

    if (!c)
        die_virt(uri);
    return c;
}

/* ---- setup ---------------------------------------------------------------- */

/*
 * Defines bench-i: a small but not empty guest, so the XML has devices to
 * render as a VM record has VBDs and VIFs to list.
 */
static virDomainPtr define(virConnectPtr c, long i)
{
    char xml[1024];
    virDomainPtr d;

    snprintf(xml, sizeof(xml),
                 "<domain type='test'><name>bench-%ld</name>"
                 "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                 "<os><type arch='x86_64'>hvm</type></os>"
                 "<devices>"
                 "<disk type='file' device='disk'>"
                 "<source file='/var/lib/bench/bench-%ld.img'/>"
                 "<target dev='vda' bus='virtio'/></disk>"
                 "<interface type='network'><source network='default'/>"
                 "<mac address='52:54:00:%02lx:%02lx:%02lx'/></interface>"
                 "</devices></domain>",
                 i, i, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    d = virDomainDefineXML(c, xml);
    if (!d)
        die_virt("virDomainDefineXML");
    return d;
}

static virConnectPtr setup(long n)
{
    virConnectPtr c = connect_or_die();
    long i;

    for (i = 0; i < n; i++)
        virDomainFree(define(c, i));
    return c;
}

/* ---- get ------------------------------------------------------------------ */

struct get_shared {
    char (*uuids)[VIR_UUID_STRING_BUFLEN];
    size_t nuuids;
    int xml_only;
    double seconds;
    pthread_barrier_t ready, go;
    double t_start;
};

struct get_thread {
    struct get_shared *sh;
    pthread_t tid;
    size_t index;
    long calls, errors;
    double bytes;
};

static void *get_main(void *arg)
{
    struct get_thread *t = arg;
    struct get_shared *sh = t->sh;
    virConnectPtr c = connect_or_die();
    virDomainPtr *doms = NULL;
    size_t i = t->index % sh->nuuids;
    double deadline;

    if (sh->xml_only) {
        size_t k;

        doms = calloc(sh->nuuids, sizeof(*doms));
        if (!doms)
            abort();
        for (k = 0; k < sh->nuuids; k++) {
            doms[k] = virDomainLookupByUUIDString(c, sh->uuids[k]);
            if (!doms[k])
                die_virt("virDomainLookupByUUIDString");
        }
    }
    pthread_barrier_wait(&sh->ready);
    pthread_barrier_wait(&sh->go);
    deadline = sh->t_start + sh->seconds;
    /* Each thread walks the domains from its own offset so that the
     * threads do not all ask for the same one at once. */
    while (now() < deadline) {
        virDomainPtr d = sh->xml_only
                             ? doms[i]
                             : virDomainLookupByUUIDString(c, sh->uuids[i]);
        char *x = d ? virDomainGetXMLDesc(d, 0) : NULL;

        if (x) {
            t->calls++;
            t->bytes += (double)strlen(x);
            free(x);
        } else {
            t->errors++;
        }
        if (d && !sh->xml_only)
            virDomainFree(d);
        if (++i == sh->nuuids)
            i = 0;
    }
    if (doms) {
        size_t k;

        for (k = 0; k < sh->nuuids; k++)
            virDomainFree(doms[k]);
        free(doms);
    }
    virConnectClose(c);
    return NULL;
}

static int cmd_get(double seconds, long nthreads, int xml_only)
{
    struct get_shared sh;
    struct get_thread *th;
    virConnectPtr c = connect_or_die();
    virDomainPtr *all = NULL;
    long calls = 0, errors = 0;
    double bytes = 0, t_end;
    int n, k;

    memset(&sh, 0, sizeof(sh));
    n = virConnectListAllDomains(c, &all, 0);
    if (n <= 0)
        die_virt("virConnectListAllDomains (no domains?)");
    sh.uuids = calloc((size_t)n, sizeof(*sh.uuids));
    th = calloc((size_t)nthreads, sizeof(*th));
    if (!sh.uuids || !th)
        abort();
    /* Ours only: the test driver's own "test" domain is left out, so
     * both sides walk the same number of guests. */
    for (k = 0; k < n; k++) {
        const char *name = virDomainGetName(all[k]);

        if (name && strncmp(name, "bench-", 6) == 0) {
            if (virDomainGetUUIDString(all[k], sh.uuids[sh.nuuids]) < 0)
                die_virt("virDomainGetUUIDString");
            sh.nuuids++;
        }
        virDomainFree(all[k]);
    }
    free(all);
    if (sh.nuuids == 0)
        die_virt("no bench-* domains");
    sh.xml_only = xml_only;
    sh.seconds = seconds;
    pthread_barrier_init(&sh.ready, NULL, (unsigned)nthreads + 1);
    pthread_barrier_init(&sh.go, NULL, (unsigned)nthreads + 1);
    for (k = 0; k < nthreads; k++) {
        th[k].sh = &sh;
        th[k].index = (size_t)k * 7;
        if (pthread_create(&th[k].tid, NULL, get_main, &th[k]) != 0) {
            fprintf(stderr, "libvirt_peer: pthread_create: %s\n",
                    strerror(errno));
            return 1;
        }
    }
    /* Everyone connected (and looked up, for "xml") before the clock
     * starts: connection set-up is not what is measured. */
    pthread_barrier_wait(&sh.ready);
    sh.t_start = now();
    pthread_barrier_wait(&sh.go);
    for (k = 0; k < nthreads; k++) {
        pthread_join(th[k].tid, NULL);
        calls += th[k].calls;
        errors += th[k].errors;
        bytes += th[k].bytes;
    }
    t_end = now();
    printf("domains %zu\ncalls %ld\nerrors %ld\nseconds %.6f\nbytes %.0f\n",
           sh.nuuids, calls, errors, t_end - sh.t_start,
           calls ? bytes / (double)calls : 0.0);
    virConnectClose(c);
    free(sh.uuids);
    free(th);
    return 0;
}

/* ---- event ---------------------------------------------------------------- */

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond = PTHREAD_COND_INITIALIZER;
static int ev_pending;  /* a change was sent and its event not yet seen */
static double ev_time;  /* when the callback saw it */
static atomic_int ev_stop;

static int on_metadata(virConnectPtr c, virDomainPtr d, int type,
                       const char *nsuri, void *opaque)
{
    double t = now();

    (void)c;
    (void)d;
    (void)type;
    (void)nsuri;
    (void)opaque;
    pthread_mutex_lock(&ev_lock);
    if (ev_pending) {
        ev_pending = 0;
        ev_time = t;
        pthread_cond_signal(&ev_cond);
    }
    pthread_mutex_unlock(&ev_lock);
    return 0;
}

static void *loop_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&ev_stop))
        if (virEventRunDefaultImpl() < 0)
            die_virt("virEventRunDefaultImpl");
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static int cmd_event(long samples)
{
    virConnectPtr listen_c, change_c;
    virDomainPtr d;
    pthread_t loop;
    double *lat;
    long got = 0, lost = 0, i;
    int cb;

    listen_c = connect_or_die();
    change_c = connect_or_die();
    d = virDomainLookupByName(change_c, "bench-0");
    if (!d)
        die_virt("virDomainLookupByName bench-0");
    cb = virConnectDomainEventRegisterAny(
        listen_c, NULL, VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
        VIR_DOMAIN_EVENT_CALLBACK(on_metadata), NULL, NULL);
    if (cb < 0)
        die_virt("virConnectDomainEventRegisterAny");
    if (pthread_create(&loop, NULL, loop_main, NULL) != 0)
        abort();
    lat = calloc((size_t)samples, sizeof(*lat));
    if (!lat)
        abort();
    for (i = 0; i < samples; i++) {
        struct timespec until;
        char desc[64];
        double t0;
        int rc = 0;

        /* A pause between samples so each change meets an idle listener,
         * as in bench_rpc's event.from measurement. */
        usleep(2000);
        snprintf(desc, sizeof(desc), "lat-%ld", i);
        pthread_mutex_lock(&ev_lock);
        ev_pending = 1;
        pthread_mutex_unlock(&ev_lock);
        t0 = now();
        if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_DESCRIPTION, desc,
                                 NULL, NULL, VIR_DOMAIN_AFFECT_CONFIG) < 0)
            die_virt("virDomainSetMetadata");
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&ev_lock);
        while (ev_pending && rc == 0)
            rc = pthread_cond_timedwait(&ev_cond, &ev_lock, &until);
        if (ev_pending) {
            ev_pending = 0;
            lost++;
        } else {
            lat[got++] = (ev_time - t0) * 1e6;
        }
        pthread_mutex_unlock(&ev_lock);
    }
    atomic_store(&ev_stop, 1);
    /* One more change wakes the loop thread so it sees ev_stop. */
    virDomainSetMetadata(d, VIR_DOMAIN_METADATA_DESCRIPTION, "end", NULL,
                         NULL, VIR_DOMAIN_AFFECT_CONFIG);
    pthread_join(loop, NULL);
    virConnectDomainEventDeregisterAny(listen_c, cb);
    qsort(lat, (size_t)got, sizeof(*lat), cmp_double);
    printf("samples %ld\nlost %ld\n", got, lost);
    if (got > 0) {
        double sum = 0;
        long k;

        for (k = 0; k < got; k++)
            sum += lat[k];
        printf("median_us %.1f\np99_us %.1f\nmean_us %.1f\n", lat[got / 2],
               lat[(long)((double)(got - 1) * 0.99)], sum / (double)got);
    }
    free(lat);
    virDomainFree(d);
    virConnectClose(change_c);
    virConnectClose(listen_c);
    return 0;
}

/* ---- storm ---------------------------------------------------------------- */

static int cmd_storm(virConnectPtr c, long n)
{
    virDomainPtr *d = calloc((size_t)n, sizeof(*d));
    double c0 = cpu_now(), t0, t1, t2, t3, t4;
    long i;

    if (!d)
        return 1;
    t0 = now();
    for (i = 0; i < n; i++)
        d[i] = define(c, i);
    t1 = now();
    for (i = 0; i < n; i++)
        if (virDomainCreate(d[i]) < 0)
            die_virt("virDomainCreate");
    t2 = now();
    for (i = 0; i < n; i++)
        if (virDomainDestroy(d[i]) < 0)
            die_virt("virDomainDestroy");
    t3 = now();
    for (i = 0; i < n; i++) {
        if (virDomainUndefine(d[i]) < 0)
            die_virt("virDomainUndefine");
        virDomainFree(d[i]);
    }
    t4 = now();
    printf("define %.6f\nstart %.6f\ndestroy %.6f\nundefine %.6f\n"
           "seconds %.6f\ncpu %.6f\n", t1 - t0, t2 - t1, t3 - t2, t4 - t3,
           t4 - t0, cpu_now() - c0);
    free(d);
    return 0;
}

/* ---- hold ----------------------------------------------------------------- */

static _Noreturn void cmd_hold(void)
{
    printf("ready\n");
    fflush(stdout);
    /* SIGTERM's default action ends the process; the daemon drops the
     * connection and with it the domains. */
    for (;;)
        pause();
}

static int usage(void)
{
    fprintf(stderr,
            "usage: libvirt_peer URI N get SECONDS THREADS [xml]\n"
            "       libvirt_peer URI N hold\n"
            "       libvirt_peer URI 0 storm M\n"
            "       libvirt_peer URI N event SAMPLES\n");
    return 2;
}

int main(int argc, char **argv)
{
    virConnectPtr keeper;
    int rc;

    if (argc < 4)
        return usage();
    uri = argv[1];
    virSetErrorFunc(NULL, quiet_errors);
    if (strcmp(argv[3], "event") == 0) {
        /* The event loop must exist before any connection that will carry
         * events is opened. */
        if (virEventRegisterDefaultImpl() < 0)
            die_virt("virEventRegisterDefaultImpl");
    }
    keeper = setup(atol(argv[2]));
    if (strcmp(argv[3], "get") == 0 && argc >= 6)
        rc = cmd_get(atof(argv[4]), atol(argv[5]),
                     argc > 6 && strcmp(argv[6], "xml") == 0);
    else if (strcmp(argv[3], "event") == 0 && argc >= 5)
        rc = cmd_event(atol(argv[4]));
    else if (strcmp(argv[3], "storm") == 0 && argc >= 5)
        rc = cmd_storm(keeper, atol(argv[4]));
    else if (strcmp(argv[3], "hold") == 0)
        cmd_hold();
    else
        rc = usage();
    virConnectClose(keeper);
    return rc;
}
