/*
 * tests/unit/hv/test_sim_migrate.c - live migration between two simulated
 * hosts (hv/sim/sim_migrate.c): two sim instances in two state dirs, the
 * sender on a thread, a socketpair between them. The domain moves with
 * its memory and vCPUs, paused on the receiver until its caller unpauses
 * it; the rounds follow the model (pre-copy rounds while the guest runs,
 * fewer for a paused one, a short pause at the end); and whatever fails
 * midway (a refusing receiver, a cancelled stream, a corrupt one) leaves
 * the domain running where it was and nothing on the other host.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hv_internal.h"
#include "sim.h"

#define MiB (1024ull * 1024)
#define GiB (1024 * MiB)
#define MS 1000000ull

static const xcp_hv_driver *drv = &xcp__hv_sim_driver;
static char dir[2][64];
static void *hv[2];
static const char *const uuid = "11111111-2222-3333-4444-555555555555";

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void open_host(int i, uint64_t bandwidth)
{
    struct xcp__sim_options opt;
    xcp_hv_error err = {0};
    int rc;

    memset(&opt, 0, sizeof(opt));
    opt.host_memory = 8 * GiB;
    opt.host_cpus = 4;
    opt.dom0_memory = 1 * GiB;
    opt.shutdown_delay_ns = 20 * MS;
    opt.migrate_bandwidth = bandwidth;
    opt.migrate_dirty = 64 * MiB;
    rc = xcp__sim_open(&hv[i], dir[i], &opt, &err);
    cr_assert_eq(rc, 0, "open %d: %s", i, err.message);
}

static void setup(void)
{
    int i;

    for (i = 0; i < 2; i++) {
        snprintf(dir[i], sizeof(dir[i]), "/tmp/xcp-sim-mig.XXXXXX");
        cr_assert_not_null(mkdtemp(dir[i]));
        /* 1 GiB/s: a 1 GiB guest's first round takes 1 s, its next
         * (64 MiB/s x 2 vCPUs dirtied meanwhile) 0.125 s ... */
        open_host(i, 1 * GiB);
    }
}

static void teardown(void)
{
    int i;

    for (i = 0; i < 2; i++) {
        if (hv[i])
            drv->close(hv[i]);
        hv[i] = NULL;
        nftw(dir[i], rm_one, 8, FTW_DEPTH | FTW_PHYS);
    }
}

TestSuite(sim_migrate, .init = setup, .fini = teardown);

static xcp_hv_domain_config config(uint64_t mem, uint32_t vcpus)
{
    xcp_hv_domain_config c;

    memset(&c, 0, sizeof(c));
    c.version = XCP_HV_CONFIG_VERSION;
    c.vm_uuid = uuid;
    c.name = "mover";
    c.type = XCP_HV_DOMAIN_HVM;
    c.memory_static_max = mem;
    c.memory_target = mem;
    c.vcpus_max = vcpus;
    return c;
}

static uint32_t create_on(int i, uint64_t mem, uint32_t vcpus, bool paused)
{
    xcp_hv_domain_config c = config(mem, vcpus);
    xcp_hv_error err = {0};
    uint32_t domid = 0;
    int rc = drv->domain_create(hv[i], &c, paused, &domid, &err);

    cr_assert_eq(rc, 0, "create: %s", err.message);
    return domid;
}

/* The domains of host i but dom0, by uuid: how many are uuid's. */
static size_t count_on(int i, xcp_hv_domain_state *state)
{
    xcp_hv_domain_info *l = NULL;
    xcp_hv_error err = {0};
    size_t n = 0, k, found = 0;
    int rc = drv->domain_list(hv[i], &l, &n, &err);

    cr_assert_eq(rc, 0, "%s", err.message);
    for (k = 0; k < n; k++)
        if (!strcmp(l[k].vm_uuid, uuid)) {
            found++;
            if (state)
                *state = l[k].state;
        }
    free(l);
    return found;
}

struct sender {
    uint32_t domid;
    int fd;
    int rc;
    xcp_hv_migrate_stats st;
    xcp_hv_error err;
};

static void *send_main(void *arg)
{
    struct sender *x = arg;

    x->rc = drv->domain_migrate_send(hv[0], x->domid, x->fd, &x->st,
                                     &x->err);
    return NULL;
}

/* Migrates domid from host 0 to host 1 with config c on the receiver. */
static int migrate(uint32_t domid, const xcp_hv_domain_config *c,
                   struct sender *x, uint32_t *new_domid, bool *was_running,
                   xcp_hv_error *rerr)
{
    int sv[2], rc;
    pthread_t t;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memset(x, 0, sizeof(*x));
    x->domid = domid;
    x->fd = sv[0];
    cr_assert_eq(pthread_create(&t, NULL, send_main, x), 0);
    rc = drv->domain_migrate_receive(hv[1], c, sv[1], new_domid, was_running,
                                     rerr);
    if (rc < 0)
        shutdown(sv[1], SHUT_RDWR);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
    return rc;
}

Test(sim_migrate, running_guest_moves_in_rounds_with_a_short_pause)
{
    uint32_t domid = create_on(0, 1 * GiB, 2, false), nd = 0;
    xcp_hv_domain_config c = config(1 * GiB, 2);
    xcp_hv_domain_state state = XCP_HV_STATE_SHUTDOWN;
    xcp_hv_error rerr = {0};
    struct sender x;
    bool was_running = false;
    int rc;

    rc = migrate(domid, &c, &x, &nd, &was_running, &rerr);
    cr_assert_eq(rc, 0, "receive: %s", rerr.message);
    cr_assert_eq(x.rc, 0, "send: %s", x.err.message);
    /* gone from the sender, paused on the receiver until unpaused */
    cr_expect_eq(count_on(0, NULL), 0);
    cr_expect_eq(count_on(1, &state), 1);
    cr_expect_eq(state, XCP_HV_STATE_PAUSED);
    cr_expect(was_running);
    /* 1 GiB at 1 GiB/s, then 128 MiB, then 16 MiB (under 50 ms): paused */
    cr_expect_eq(x.st.rounds, 3, "rounds %u", x.st.rounds);
    cr_expect_eq(x.st.bytes, 1 * GiB + 128 * MiB + 16 * MiB, "bytes %llu",
                 (unsigned long long)x.st.bytes);
    cr_expect(x.st.downtime_ns < x.st.total_ns / 10,
              "downtime %llu ns of %llu", (unsigned long long)x.st.downtime_ns,
              (unsigned long long)x.st.total_ns);
    cr_expect(x.st.total_ns >= 1100 * MS, "total %llu ns",
              (unsigned long long)x.st.total_ns);
    {
        xcp_hv_domain_info i;
        xcp_hv_error err = {0};

        cr_assert_eq(drv->domain_info(hv[1], nd, &i, &err), 0, "%s",
                     err.message);
        cr_expect_eq(i.vcpus_online, 2);
        cr_expect_eq(i.memory_actual, 1 * GiB);
        cr_assert_eq(drv->domain_unpause(hv[1], nd, &err), 0, "%s",
                     err.message);
    }
    cr_expect_eq(count_on(1, &state), 1);
    cr_expect_eq(state, XCP_HV_STATE_RUNNING);
}

Test(sim_migrate, paused_guest_moves_in_one_round_and_stays_paused)
{
    uint32_t domid = create_on(0, 512 * MiB, 1, true), nd = 0;
    xcp_hv_domain_config c = config(512 * MiB, 1);
    xcp_hv_error rerr = {0};
    struct sender x;
    bool was_running = true;

    cr_assert_eq(migrate(domid, &c, &x, &nd, &was_running, &rerr), 0, "%s",
                 rerr.message);
    cr_assert_eq(x.rc, 0, "%s", x.err.message);
    cr_expect(!was_running);
    /* it dirties nothing: one live round, then an empty paused one */
    cr_expect_eq(x.st.rounds, 2);
    cr_expect_eq(x.st.bytes, 512 * MiB);
    cr_expect_eq(count_on(0, NULL), 0);
    cr_expect_eq(count_on(1, NULL), 1);
}

Test(sim_migrate, refused_by_the_receiver_runs_on_where_it_was)
{
    uint32_t domid = create_on(0, 256 * MiB, 2, false), nd = 0;
    xcp_hv_domain_config c = config(256 * MiB, 4); /* not the same VM */
    xcp_hv_domain_state state = XCP_HV_STATE_SHUTDOWN;
    xcp_hv_error rerr = {0};
    struct sender x;
    bool was_running;

    cr_assert_lt(migrate(domid, &c, &x, &nd, &was_running, &rerr), 0);
    cr_expect(strstr(rerr.message, "does not fit") != NULL, "%s",
              rerr.message);
    cr_expect_eq(x.rc, -ECONNABORTED, "%d %s", x.rc, x.err.message);
    cr_expect(strstr(x.err.message, "does not fit") != NULL, "%s",
              x.err.message);
    cr_expect_eq(count_on(1, NULL), 0);
    cr_expect_eq(count_on(0, &state), 1);
    cr_expect_eq(state, XCP_HV_STATE_RUNNING);
}

struct canceller {
    int fd;
    unsigned after_ms;
};

static void *cancel_main(void *arg)
{
    struct canceller *k = arg;

    usleep(k->after_ms * 1000);
    shutdown(k->fd, SHUT_RDWR);
    return NULL;
}

Test(sim_migrate, cancelled_midway_runs_on_where_it_was)
{
    uint32_t domid = create_on(0, 1 * GiB, 2, false), nd = 0;
    xcp_hv_domain_config c = config(1 * GiB, 2);
    xcp_hv_domain_state state = XCP_HV_STATE_SHUTDOWN;
    xcp_hv_error rerr = {0};
    struct sender x;
    struct canceller k;
    pthread_t t, tc;
    bool was_running;
    int sv[2], rc;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memset(&x, 0, sizeof(x));
    x.domid = domid;
    x.fd = sv[0];
    k.fd = sv[0];
    k.after_ms = 300; /* inside the first round (1 s) */
    cr_assert_eq(pthread_create(&t, NULL, send_main, &x), 0);
    cr_assert_eq(pthread_create(&tc, NULL, cancel_main, &k), 0);
    rc = drv->domain_migrate_receive(hv[1], &c, sv[1], &nd, &was_running,
                                     &rerr);
    pthread_join(t, NULL);
    pthread_join(tc, NULL);
    close(sv[0]);
    close(sv[1]);
    cr_expect_lt(rc, 0);
    cr_expect_lt(x.rc, 0, "the sender did not notice");
    cr_expect_eq(count_on(1, NULL), 0);
    cr_expect_eq(count_on(0, &state), 1);
    cr_expect_eq(state, XCP_HV_STATE_RUNNING);
}

Test(sim_migrate, a_stream_that_is_not_a_migration_is_refused)
{
    xcp_hv_domain_config c = config(256 * MiB, 1);
    xcp_hv_error err = {0};
    uint32_t nd = 0;
    bool was_running;
    char reply[256] = "";
    int sv[2];
    ssize_t n;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(write(sv[0], "GET / HTTP/1.0\n\n", 16), 16);
    cr_expect_eq(drv->domain_migrate_receive(hv[1], &c, sv[1], &nd,
                                             &was_running, &err),
                 -EPROTO, "%s", err.message);
    n = read(sv[0], reply, sizeof(reply) - 1);
    cr_expect(n > 6 && !strncmp(reply, "error ", 6), "%s", reply);
    close(sv[0]);
    close(sv[1]);
    cr_expect_eq(count_on(1, NULL), 0);
}
