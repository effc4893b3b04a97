/*
 * tests/contract/test_hv_contract.c - what every hypervisor driver must do,
 * run through the library's xcp__hv_* wrappers against the driver named by
 * XCP_HV (default sim). Uses only behaviour the interface promises, so the
 * same file passes on sim and on real Xen.
 *
 * Knobs (for drivers that boot real guests):
 *   XCP_HV_CONTRACT_DIR         state directory (default: a fresh temp dir)
 *   XCP_HV_CONTRACT_TYPE        pv, pvh or hvm (default hvm)
 *   XCP_HV_CONTRACT_KERNEL      kernel for pv/pvh (and its RAMDISK, CMDLINE)
 *   XCP_HV_CONTRACT_MEMORY_MIB  guest memory (default 128)
 *   XCP_HV_CONTRACT_TIMEOUT_MS  how long a guest may take to react to a
 *                               shutdown request (default 30000)
 *   XCP_HV_CONTRACT_BOOT_MS     the longest to let a guest boot (until its
 *                               guest agent reports) before asking it
 *                               anything (default 0)
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h" /* xcp__hv_image_ops */
#include "hv_internal.h"

#define MiB (1024ull * 1024)

static xcp_hv *hv;
static xcp_hv_error err;
static char dir[256];
static bool own_dir;
static uint32_t created[16];
static size_t n_created;
static xcp_hv_host_info host;

/* Each test's own guests: fresh uuids and names, so that the tests can
 * run in parallel (criterion --jobs) and beside other guests on a real
 * host, where domain names are unique among live domains. */
static char uuid_a[XCP_HV_UUID_LEN], uuid_b[XCP_HV_UUID_LEN];
static char name_a[64], name_b[64], name_big[64];

static void new_uuid(char out[XCP_HV_UUID_LEN])
{
    unsigned char b[16];
    FILE *f = fopen("/dev/urandom", "rb");

    cr_assert_not_null(f);
    cr_assert_eq(fread(b, 1, sizeof(b), f), sizeof(b));
    fclose(f);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, XCP_HV_UUID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void new_identities(void)
{
    new_uuid(uuid_a);
    new_uuid(uuid_b);
    /* The name carries the first uuid's head: unique per test. */
    snprintf(name_a, sizeof(name_a), "contract-%.8s-a", uuid_a);
    snprintf(name_b, sizeof(name_b), "contract-%.8s-b", uuid_a);
    snprintf(name_big, sizeof(name_big), "contract-%.8s-big", uuid_a);
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return v && *v ? v : dflt;
}

static int env_int(const char *name, int dflt)
{
    return atoi(env_or(name, "")) > 0 ? atoi(env_or(name, "")) : dflt;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    const char *d = getenv("XCP_HV_CONTRACT_DIR");
    const char *name = env_or("XCP_HV", "sim");
    int rc;

    if (d && *d) {
        snprintf(dir, sizeof(dir), "%s", d);
        mkdir(dir, 0700);
        own_dir = false;
    } else {
        snprintf(dir, sizeof(dir), "/tmp/xcp-hv-contract.XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        own_dir = true;
    }
    n_created = 0;
    new_identities();
    rc = xcp__hv_open(&hv, dir, name, &err);
    cr_assert_eq(rc, 0, "open driver %s: %d %s", name, rc, err.message);
    xcp__hv_set_image_ops(hv, &xcp__hv_image_ops); /* as engine.c does */
    cr_assert_str_eq(xcp__hv_name(hv), name);
    rc = xcp__hv_host_info(hv, &host, &err);
    cr_assert_eq(rc, 0, "host_info: %s", err.message);
}

static void teardown(void)
{
    xcp_hv_domain_info *v = NULL;
    xcp_hv_error ignored;
    size_t i, n = 0;

    if (!hv)
        goto out;
    /* on a real host, leave no guest of ours behind whatever happened,
     * including ones a crashed test could not record */
    for (i = 0; i < n_created; i++)
        xcp__hv_domain_destroy(hv, created[i], &ignored);
    if (xcp__hv_domain_list(hv, &v, &n, &ignored) == 0) {
        for (i = 0; i < n; i++)
            if (strcmp(v[i].vm_uuid, uuid_a) == 0 ||
                strcmp(v[i].vm_uuid, uuid_b) == 0)
                xcp__hv_domain_destroy(hv, v[i].domid, &ignored);
        free(v);
    }
    xcp__hv_close(hv);
    hv = NULL;
out:
    if (own_dir)
        nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(hv_contract, .init = setup, .fini = teardown, .timeout = 600);

static xcp_hv_domain_config config(const char *uuid, const char *name)
{
    xcp_hv_domain_config c;
    uint64_t mem = (uint64_t)env_int("XCP_HV_CONTRACT_MEMORY_MIB", 128) * MiB;

    memset(&c, 0, sizeof(c));
    c.version = XCP_HV_CONFIG_VERSION;
    c.vm_uuid = uuid;
    c.name = name;
    c.type = xcp__hv_domain_type_from_name(
        env_or("XCP_HV_CONTRACT_TYPE", "hvm"));
    c.memory_static_max = mem;
    c.memory_target = mem;
    c.vcpus_max = 1;
    c.kernel = getenv("XCP_HV_CONTRACT_KERNEL");
    c.ramdisk = getenv("XCP_HV_CONTRACT_RAMDISK");
    c.cmdline = getenv("XCP_HV_CONTRACT_CMDLINE");
    return c;
}

static void remember(uint32_t domid)
{
    if (n_created < sizeof(created) / sizeof(created[0]))
        created[n_created++] = domid;
}

static void forget(uint32_t domid)
{
    size_t i;

    for (i = 0; i < n_created; i++)
        if (created[i] == domid)
            created[i] = created[--n_created];
}

static uint32_t create(const char *uuid, const char *name, bool paused)
{
    xcp_hv_domain_config c = config(uuid, name);
    uint32_t domid = 0;
    int rc = xcp__hv_domain_create(hv, &c, paused, &domid, &err);

    cr_assert_eq(rc, 0, "create %s: %d %s", name, rc, err.message);
    cr_assert_gt(domid, 0);
    remember(domid);
    return domid;
}

static void destroy(uint32_t domid)
{
    int rc = xcp__hv_domain_destroy(hv, domid, &err);

    cr_assert_eq(rc, 0, "destroy %u: %s", domid, err.message);
    forget(domid);
}

static xcp_hv_domain_info info(uint32_t domid)
{
    xcp_hv_domain_info i;
    int rc = xcp__hv_domain_info(hv, domid, &i, &err);

    cr_assert_eq(rc, 0, "info %u: %d %s", domid, rc, err.message);
    return i;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Lets guest d boot before it is asked anything: until its guest agent
 * reports (domain_guest_data: the guest's userspace is up, so its kernel
 * answers shutdown and suspend requests; a PV guest asked to suspend
 * before its kernel has set up is "Bad mfn 0 for p2m frame list list"),
 * waiting on the event fd, at most XCP_HV_CONTRACT_BOOT_MS (a fixed sleep
 * is too short when several guests boot at once: the suite runs tests in
 * parallel). Nothing when that is 0 (the default; the sim's guests answer
 * at once).
 */
static void let_it_boot(uint32_t d)
{
    int64_t end = now_ms() + env_int("XCP_HV_CONTRACT_BOOT_MS", 0), left;
    xcp_hv_guest_datum *g = NULL;
    struct pollfd p = {-1, POLLIN, 0};
    uint32_t ids[16];
    size_t n = 0;

    cr_assert_eq(xcp__hv_event_fd(hv, &p.fd, &err), 0, "%s", err.message);
    while ((left = end - now_ms()) > 0) {
        cr_assert_eq(xcp__hv_domain_guest_data(hv, d, &g, &n, &err), 0,
                     "guest data of %u: %s", d, err.message);
        free(g);
        if (n > 0)
            return;
        p.revents = 0;
        if (poll(&p, 1, left < 1000 ? (int)left : 1000) > 0)
            xcp__hv_event_read(hv, ids, 16, &n, &err);
    }
}

static int timeout_ms(void)
{
    return env_int("XCP_HV_CONTRACT_TIMEOUT_MS", 30000);
}

Test(hv_contract, host_info_is_plausible)
{
    cr_expect_gt(host.memory_total, 0);
    cr_expect_gt(host.memory_free, 0);
    cr_expect_lt(host.memory_free, host.memory_total);
    cr_expect_geq(host.nr_cpus, 1);
    cr_expect_geq(host.sockets, 1);
    cr_expect_geq(host.cores_per_socket, 1);
    cr_expect_geq(host.threads_per_core, 1);
    cr_expect_neq(host.hv_version[0], '\0');
    cr_expect(strstr(host.capabilities, "xen-3.0-x86_64") ||
                  strstr(host.capabilities, "hvm-3.0-x86_64"),
              "%s", host.capabilities);
}

Test(hv_contract, domain_list_starts_with_dom0)
{
    xcp_hv_domain_info *v = NULL;
    size_t n = 0, i;

    cr_assert_eq(xcp__hv_domain_list(hv, &v, &n, &err), 0, "%s", err.message);
    cr_assert_geq(n, 1);
    cr_expect_eq(v[0].domid, 0);
    cr_expect_eq(v[0].state, XCP_HV_STATE_RUNNING);
    cr_expect_gt(v[0].memory_actual, 0);
    for (i = 1; i < n; i++)
        cr_expect_gt(v[i].domid, v[i - 1].domid);
    free(v);
}

Test(hv_contract, lifecycle_create_pause_unpause_destroy)
{
    xcp_hv_domain_info i, *v = NULL;
    uint64_t mem;
    uint32_t d = create(uuid_a, name_a, true);
    size_t n, k;
    bool listed = false;

    i = info(d);
    mem = config(uuid_a, "x").memory_target;
    cr_expect_eq(i.domid, d);
    cr_expect_str_eq(i.vm_uuid, uuid_a);
    cr_expect_eq(i.state, XCP_HV_STATE_PAUSED);
    cr_expect_eq(i.vcpus_max, 1);
    cr_expect_leq(i.memory_actual, mem);
    cr_expect_geq(i.memory_actual, mem / 2);
    cr_expect_eq(i.memory_max, mem);
    /* the host's free memory no longer counts the domain's: a bound that
     * holds whatever other processes do on the host meanwhile (a drop in
     * free memory would not, with tests running in parallel) */
    cr_assert_eq(xcp__hv_host_info(hv, &host, &err), 0);
    cr_expect_leq(host.memory_free, host.memory_total - i.memory_actual);
    cr_assert_eq(xcp__hv_domain_list(hv, &v, &n, &err), 0);
    for (k = 0; k < n; k++)
        listed |= v[k].domid == d && strcmp(v[k].vm_uuid, uuid_a) == 0;
    free(v);
    cr_expect(listed);

    cr_assert_eq(xcp__hv_domain_unpause(hv, d, &err), 0, "%s", err.message);
    cr_expect_eq(info(d).state, XCP_HV_STATE_RUNNING);
    cr_assert_eq(xcp__hv_domain_pause(hv, d, &err), 0, "%s", err.message);
    cr_expect_eq(info(d).state, XCP_HV_STATE_PAUSED);
    destroy(d);
    cr_expect_eq(xcp__hv_domain_info(hv, d, &i, &err), -ESRCH);
    cr_expect_eq(err.code, -ESRCH);
}

Test(hv_contract, unknown_domain_is_esrch)
{
    xcp_hv_domain_info i;
    uint32_t ghost = 0x7000;

    cr_expect_eq(xcp__hv_domain_info(hv, ghost, &i, &err), -ESRCH);
    cr_expect_neq(err.message[0], '\0');
    cr_expect_eq(xcp__hv_domain_pause(hv, ghost, &err), -ESRCH);
    cr_expect_eq(xcp__hv_domain_destroy(hv, ghost, &err), -ESRCH);
}

Test(hv_contract, domids_increase)
{
    uint32_t a = create(uuid_a, name_a, true);
    uint32_t b;

    destroy(a);
    b = create(uuid_b, name_b, true);
    cr_expect_gt(b, a);
}

Test(hv_contract, too_much_memory_is_enomem)
{
    xcp_hv_domain_config c = config(uuid_a, name_big);
    uint32_t d = 0;
    int rc;

    /* the whole host: never free, whatever other processes start or
     * stop meanwhile (free memory would be a moving target) */
    c.memory_static_max = c.memory_target = host.memory_total / 4096 * 4096;
    rc = xcp__hv_domain_create(hv, &c, true, &d, &err);
    if (rc == 0)
        remember(d);
    cr_expect_eq(rc, -ENOMEM, "%d %s", rc, err.message);
    cr_expect(strstr(err.message, "available") != NULL, "%s", err.message);
}

Test(hv_contract, clean_shutdown_reaches_shutdown_poweroff)
{
    uint32_t d = create(uuid_a, name_a, false);
    xcp_hv_domain_info i;
    int rc;

    let_it_boot(d);
    rc = xcp__hv_domain_shutdown(hv, d, XCP_HV_SHUTDOWN_POWEROFF, &err);
    cr_assert_eq(rc, 0, "%s", err.message);
    rc = xcp__hv_domain_wait(hv, d, timeout_ms(), &i, &err);
    cr_assert_eq(rc, 0, "%d %s", rc, err.message);
    cr_expect_eq(i.state, XCP_HV_STATE_SHUTDOWN);
    cr_expect_eq(i.shutdown_reason, XCP_HV_SHUTDOWN_POWEROFF);
    destroy(d);
}

Test(hv_contract, reboot_reaches_shutdown_reboot)
{
    uint32_t d = create(uuid_a, name_a, false);
    xcp_hv_domain_info i;
    int rc;

    let_it_boot(d);
    rc = xcp__hv_domain_shutdown(hv, d, XCP_HV_SHUTDOWN_REBOOT, &err);
    cr_assert_eq(rc, 0, "%s", err.message);
    rc = xcp__hv_domain_wait(hv, d, timeout_ms(), &i, &err);
    cr_assert_eq(rc, 0, "%d %s", rc, err.message);
    cr_expect_eq(i.shutdown_reason, XCP_HV_SHUTDOWN_REBOOT);
    destroy(d);
}

Test(hv_contract, wait_times_out_on_a_running_guest)
{
    uint32_t d = create(uuid_a, name_a, false);
    xcp_hv_domain_info i;

    cr_expect_eq(xcp__hv_domain_wait(hv, d, 50, &i, &err), -ETIMEDOUT);
    cr_expect_eq(err.code, -ETIMEDOUT);
    destroy(d);
}

Test(hv_contract, event_fd_wakes_on_shutdown)
{
    uint32_t d = create(uuid_a, name_a, false), ids[16];
    struct timespec now, end;
    struct pollfd p;
    size_t n, k;
    bool seen = false;
    int fd;

    let_it_boot(d);
    cr_assert_eq(xcp__hv_event_fd(hv, &fd, &err), 0, "%s", err.message);
    /* drain what creation produced */
    cr_assert_eq(xcp__hv_event_read(hv, ids, 16, &n, &err), 0);
    cr_assert_eq(xcp__hv_domain_shutdown(hv, d, XCP_HV_SHUTDOWN_POWEROFF,
                                         &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms() / 1000;
    for (now = (struct timespec){0, 0}; !seen && now.tv_sec < end.tv_sec;
         clock_gettime(CLOCK_MONOTONIC, &now)) {
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        cr_assert_geq(poll(&p, 1, 100), 0);
        if (!(p.revents & POLLIN))
            continue;
        cr_assert_eq(xcp__hv_event_read(hv, ids, 16, &n, &err), 0, "%s",
                     err.message);
        for (k = 0; k < n; k++)
            seen |= ids[k] == d;
    }
    cr_expect(seen, "no event for domain %u", d);
    cr_expect_eq(info(d).state, XCP_HV_STATE_SHUTDOWN);
    destroy(d);
}

Test(hv_contract, suspend_then_restore_round_trip)
{
    xcp_hv_domain_config c = config(uuid_a, name_a);
    uint32_t d = create(uuid_a, name_a, false), d2 = 0;
    xcp_hv_domain_info i;
    char img[sizeof(dir) + 64];
    int rc;

    let_it_boot(d);
    snprintf(img, sizeof(img), "%s/contract-%s.img", dir, uuid_a);
    rc = xcp__hv_domain_suspend(hv, d, img, &err);
    cr_assert_eq(rc, 0, "%d %s", rc, err.message);
    forget(d);
    cr_expect_eq(access(img, R_OK), 0);
    cr_expect_eq(xcp__hv_domain_info(hv, d, &i, &err), -ESRCH);
    rc = xcp__hv_domain_restore(hv, &c, img, false, &d2, &err);
    cr_assert_eq(rc, 0, "%d %s", rc, err.message);
    remember(d2);
    cr_expect_neq(d2, d);
    i = info(d2);
    cr_expect_str_eq(i.vm_uuid, uuid_a);
    cr_expect_eq(i.state, XCP_HV_STATE_RUNNING);
    destroy(d2);
    unlink(img);
}

Test(hv_contract, memory_target_and_vcpus_can_be_set)
{
    xcp_hv_domain_config c = config(uuid_a, name_a);
    uint32_t d;
    int rc;

    c.vcpus_max = 2;
    rc = xcp__hv_domain_create(hv, &c, true, &d, &err);
    cr_assert_eq(rc, 0, "%s", err.message);
    remember(d);
    rc = xcp__hv_domain_set_memory_target(hv, d, c.memory_target / 2, &err);
    cr_expect_eq(rc, 0, "%s", err.message);
    cr_expect_eq(info(d).memory_target, c.memory_target / 2);
    rc = xcp__hv_domain_set_vcpus(hv, d, 1, &err);
    cr_expect_eq(rc, 0, "%s", err.message);
    cr_expect_eq(info(d).vcpus_online, 1);
    cr_expect_lt(xcp__hv_domain_set_vcpus(hv, d, 3, &err), 0);
    destroy(d);
}

Test(hv_contract, cpu_time_advances_while_running)
{
    uint32_t d = create(uuid_a, name_a, false);
    uint64_t t0 = info(d).cpu_time_ns;
    struct timespec ts = {0, 200 * 1000 * 1000};

    nanosleep(&ts, NULL);
    cr_expect_gt(info(d).cpu_time_ns, t0);
    destroy(d);
}

/* Localhost live migration (XAPI's pool_migrate to the same host): the
 * guest goes on as a new domain with the same identity; the old one is
 * gone. Drivers that cannot (an empty slot) skip. */
Test(hv_contract, migrate_local_moves_the_guest_to_a_new_domain)
{
    xcp_hv_domain_info i;
    uint32_t d, nd = 0;
    int rc;

    if (!xcp__hv_supports(hv, XCP_HV_OP_DOMAIN_MIGRATE_LOCAL))
        cr_skip_test("%s: no domain_migrate_local", xcp__hv_name(hv));
    d = create(uuid_a, name_a, false);
    let_it_boot(d); /* the stream asks the guest to suspend */
    rc = xcp__hv_domain_migrate_local(hv, d, &nd, &err);
    cr_assert_eq(rc, 0, "migrate %u: %d %s", d, rc, err.message);
    remember(nd);
    cr_expect_neq(nd, d);
    i = info(nd);
    cr_expect_str_eq(i.vm_uuid, uuid_a);
    cr_expect_str_eq(i.name, name_a);
    cr_expect_eq(i.state, XCP_HV_STATE_RUNNING);
    rc = xcp__hv_domain_info(hv, d, &i, &err);
    cr_expect(rc == -ESRCH || (rc == 0 && i.state == XCP_HV_STATE_DYING),
              "the sender is still there: %d", rc);
}

/* ---- disks of running domains (driver version 4) ---------------------- */

/* Runs qemu-img with args (NULL-terminated); its exit status. */
static int qemu_img(const char *const *args)
{
    pid_t pid;
    int status;

    if (posix_spawnp(&pid, "qemu-img", NULL, NULL, (char *const *)args,
                     environ) != 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
#define QEMU_IMG(...) qemu_img((const char *const[]){"qemu-img", __VA_ARGS__, NULL})

static uint64_t guest_size(uint32_t d, const char *vdev)
{
    uint64_t n = 0;
    int rc = xcp__hv_disk_size(hv, d, vdev, &n, &err);

    cr_assert_eq(rc, 0, "disk_size %s: %d %s", vdev, rc, err.message);
    return n;
}

/*
 * A disk's back end pauses (once), the image changes under it, and at
 * reopen the guest sees the image as it is now; or the back end grows
 * the image itself (disk_resize). Drivers with neither skip.
 */
Test(hv_contract, live_disk_pause_reopen_or_resize)
{
    xcp_hv_disk disk = {0};
    char path[320];
    bool pause = xcp__hv_supports(hv, XCP_HV_OP_DISK_PAUSE) &&
                 xcp__hv_supports(hv, XCP_HV_OP_DISK_REOPEN);
    uint32_t d;
    int rc;

    if (!xcp__hv_supports(hv, XCP_HV_OP_DISK_SIZE) ||
        (!pause && !xcp__hv_supports(hv, XCP_HV_OP_DISK_RESIZE)))
        cr_skip_test("%s: no live disk slots", xcp__hv_name(hv));
    if (QEMU_IMG("--version") != 0) /* the Xen lab's dom0 has none */
        cr_skip_test("no qemu-img to make the disk's image");
    snprintf(path, sizeof(path), "%s/live-%.8s.qcow2", dir, uuid_a);
    cr_assert_eq(QEMU_IMG("create", "-q", "-f", "qcow2", path, "1M"), 0);
    d = create(uuid_a, name_a, false);
    disk.path = path;
    disk.format = "qcow2";
    disk.vdev = "xvdb";
    rc = xcp__hv_disk_plug(hv, d, &disk, &err);
    cr_assert_eq(rc, 0, "disk_plug: %d %s", rc, err.message);
    cr_expect_eq(guest_size(d, "xvdb"), 1 * MiB);
    if (xcp__hv_supports(hv, XCP_HV_OP_DISK_CBT)) {
        rc = xcp__hv_disk_cbt(hv, d, "xvdb", "xcp-cbt", true, &err);
        cr_expect_eq(rc, 0, "disk_cbt on: %d %s", rc, err.message);
        rc = xcp__hv_disk_cbt(hv, d, "xvdb", "xcp-cbt", false, &err);
        cr_expect_eq(rc, 0, "disk_cbt off: %d %s", rc, err.message);
    }
    if (!pause) {
        rc = xcp__hv_disk_resize(hv, d, "xvdb", 3 * MiB, &err);
        cr_assert_eq(rc, 0, "disk_resize: %d %s", rc, err.message);
        cr_expect_eq(guest_size(d, "xvdb"), 3 * MiB);
        return;
    }
    rc = xcp__hv_disk_reopen(hv, d, "xvdb", path, "qcow2", &err);
    cr_expect_eq(rc, -EINVAL, "reopen of a running disk: %d", rc);
    rc = xcp__hv_disk_pause(hv, d, "xvdb", &err);
    cr_assert_eq(rc, 0, "disk_pause: %d %s", rc, err.message);
    rc = xcp__hv_disk_pause(hv, d, "xvdb", &err);
    cr_expect_eq(rc, -EBUSY, "second pause: %d", rc);
    cr_assert_eq(QEMU_IMG("resize", "-q", "-f", "qcow2", path, "2M"), 0);
    cr_expect_eq(guest_size(d, "xvdb"), 1 * MiB, "seen before the reopen");
    rc = xcp__hv_disk_reopen(hv, d, "xvdb", path, "qcow2", &err);
    cr_assert_eq(rc, 0, "disk_reopen: %d %s", rc, err.message);
    cr_expect_eq(guest_size(d, "xvdb"), 2 * MiB);
    rc = xcp__hv_disk_pause(hv, d, "xvdz", &err);
    cr_expect_eq(rc, -ENODEV, "pause of no disk: %d", rc);
    if (xcp__hv_supports(hv, XCP_HV_OP_DISK_RESIZE)) {
        rc = xcp__hv_disk_resize(hv, d, "xvdb", 3 * MiB, &err);
        cr_assert_eq(rc, 0, "disk_resize: %d %s", rc, err.message);
        cr_expect_eq(guest_size(d, "xvdb"), 3 * MiB);
        rc = xcp__hv_disk_resize(hv, d, "xvdb", 1 * MiB, &err);
        cr_expect_eq(rc, -EINVAL, "disk_resize down: %d", rc);
    }
}

/*
 * A disk's writes move onto an overlay of its image at a snapshot
 * (disk_snapshot, driver version 5): the overlay must be qcow2 and backed
 * by the disk's image; the guest's disk keeps its size. Drivers without
 * the slot skip.
 */
Test(hv_contract, live_disk_snapshot_moves_onto_an_overlay)
{
    xcp_hv_disk disk = {0};
    char path[320], ov[320], other[320], bad[320];
    uint32_t d;
    int rc;

    if (!xcp__hv_supports(hv, XCP_HV_OP_DISK_SNAPSHOT))
        cr_skip_test("%s: no disk_snapshot", xcp__hv_name(hv));
    if (QEMU_IMG("--version") != 0)
        cr_skip_test("no qemu-img to make the disk's images");
    snprintf(path, sizeof(path), "%s/snap-%.8s.qcow2", dir, uuid_a);
    snprintf(ov, sizeof(ov), "%s/snap-%.8s-ov.qcow2", dir, uuid_a);
    snprintf(other, sizeof(other), "%s/snap-%.8s-other.qcow2", dir, uuid_a);
    snprintf(bad, sizeof(bad), "%s/snap-%.8s-bad.qcow2", dir, uuid_a);
    cr_assert_eq(QEMU_IMG("create", "-q", "-f", "qcow2", path, "1M"), 0);
    cr_assert_eq(QEMU_IMG("create", "-q", "-f", "qcow2", other, "1M"), 0);
    cr_assert_eq(QEMU_IMG("create", "-q", "-f", "qcow2", "-b", path, "-F",
                          "qcow2", ov), 0);
    cr_assert_eq(QEMU_IMG("create", "-q", "-f", "qcow2", "-b", other, "-F",
                          "qcow2", bad), 0);
    d = create(uuid_a, name_a, false);
    disk.path = path;
    disk.format = "qcow2";
    disk.vdev = "xvdb";
    rc = xcp__hv_disk_plug(hv, d, &disk, &err);
    cr_assert_eq(rc, 0, "disk_plug: %d %s", rc, err.message);
    rc = xcp__hv_disk_snapshot(hv, d, "xvdb", bad, "qcow2", &err);
    cr_expect_eq(rc, -EINVAL, "an overlay on another image: %d %s", rc,
                 err.message);
    rc = xcp__hv_disk_snapshot(hv, d, "xvdz", ov, "qcow2", &err);
    cr_expect_eq(rc, -ENODEV, "no such disk: %d", rc);
    rc = xcp__hv_disk_snapshot(hv, d, "xvdb", ov, "vhd", &err);
    cr_expect_eq(rc, -ENOTSUP, "a VHD overlay: %d", rc);
    rc = xcp__hv_disk_snapshot(hv, d, "xvdb", ov, "qcow2", &err);
    cr_assert_eq(rc, 0, "disk_snapshot: %d %s", rc, err.message);
    cr_expect_eq(guest_size(d, "xvdb"), 1 * MiB);
}

/*
 * The cancel of a disk's leaf coalesce by its back end (disk_stream_cancel,
 * driver version 7) when none runs: 0, nothing changed (the disk takes a
 * resize after it); no such disk: -ENODEV. Drivers without the slot skip.
 */
Test(hv_contract, live_disk_stream_cancel_without_a_copy)
{
    xcp_hv_disk disk = {0};
    char path[320];
    uint32_t d;
    int rc;

    if (!xcp__hv_supports(hv, XCP_HV_OP_DISK_STREAM_CANCEL))
        cr_skip_test("%s: no disk_stream_cancel", xcp__hv_name(hv));
    if (QEMU_IMG("--version") != 0)
        cr_skip_test("no qemu-img to make the disk's image");
    snprintf(path, sizeof(path), "%s/cancel-%.8s.qcow2", dir, uuid_a);
    cr_assert_eq(QEMU_IMG("create", "-q", "-f", "qcow2", path, "1M"), 0);
    d = create(uuid_a, name_a, false);
    disk.path = path;
    disk.format = "qcow2";
    disk.vdev = "xvdb";
    rc = xcp__hv_disk_plug(hv, d, &disk, &err);
    cr_assert_eq(rc, 0, "disk_plug: %d %s", rc, err.message);
    rc = xcp__hv_disk_stream_cancel(hv, d, "xvdb", &err);
    cr_expect_eq(rc, 0, "disk_stream_cancel: %d %s", rc, err.message);
    rc = xcp__hv_disk_stream_cancel(hv, d, "xvdz", &err);
    cr_expect_eq(rc, -ENODEV, "no such disk: %d", rc);
    if (xcp__hv_supports(hv, XCP_HV_OP_DISK_RESIZE)) {
        rc = xcp__hv_disk_resize(hv, d, "xvdb", 2 * MiB, &err);
        cr_expect_eq(rc, 0, "disk_resize after it: %d %s", rc, err.message);
    }
}

/*
 * stats (version 8): one reading of the host and every domain, as
 * domain_list lists them; each domain's vCPU times in order; devices
 * grouped by domain in the same order, host NICs last; running time that
 * grows while a domain runs.
 */
Test(hv_contract, stats_are_one_consistent_reading)
{
    xcp_hv_stats a, b;
    uint32_t d;
    size_t i, k, at = 0, seen = 0;
    uint64_t before = 0, after = 0;

    if (!xcp__hv_supports(hv, XCP_HV_OP_STATS))
        cr_skip_test("%s: no stats", xcp__hv_name(hv));
    d = create(uuid_a, name_a, false);
    cr_assert_eq(xcp__hv_stats(hv, &a, &err), 0, "%s", err.message);
    cr_expect_gt(a.memory_total, 0);
    cr_expect_leq(a.memory_free, a.memory_total);
    cr_expect_geq(a.n_pcpus, 1);
    cr_assert_geq(a.n_doms, 2);
    cr_expect_eq(a.doms[0].domid, 0);
    for (i = 0; i < a.n_doms; i++) {
        if (a.doms[i].domid == d) {
            for (k = 0; k < a.doms[i].vcpus_max; k++)
                before += a.vcpu_ns[at + k];
            seen = 1;
        }
        at += a.doms[i].vcpus_max;
    }
    cr_expect(seen, "the new domain is in the reading");
    /* devices: grouped by domain in doms' order, host NICs last */
    for (i = 1, k = 0; i < a.n_devs; i++) {
        if (a.devs[i].kind == XCP_HV_DEV_HOST_NIC) {
            k = 1;
            continue;
        }
        cr_expect(!k, "a domain's device after a host NIC");
        cr_expect_geq(a.devs[i].domid, a.devs[i - 1].kind ==
                      XCP_HV_DEV_HOST_NIC ? 0 : a.devs[i - 1].domid);
    }
    usleep(200 * 1000);
    cr_assert_eq(xcp__hv_stats(hv, &b, &err), 0, "%s", err.message);
    for (i = 0, at = 0; i < b.n_doms; i++) {
        if (b.doms[i].domid == d)
            for (k = 0; k < b.doms[i].vcpus_max; k++)
                after += b.vcpu_ns[at + k];
        at += b.doms[i].vcpus_max;
    }
    cr_expect_geq(after, before, "running time only grows");
    xcp__hv_stats_free(&a);
    xcp__hv_stats_free(&b);
}
