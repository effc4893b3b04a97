/*
 * tests/api/test_vm_overlap.c - overlapping power operations on one VM
 * (issue 7, item 1). A randomized, seeded test: for every pair of VM
 * lifecycle operations that XAPI lets overlap (a hard_shutdown or
 * hard_reboot arriving while another operation runs, see
 * xapi_vm_lifecycle.ml is_allowed_concurrently) and a few pairs it
 * forbids, two threads with their own sessions issue the pair with a
 * random delay between them, many times. After each trial:
 *   - neither call failed with INTERNAL_ERROR, and each failure is one
 *     XAPI gives for that pair (TASK_CANCELLED for an operation the hard
 *     one pre-empts, VM_BAD_POWER_STATE when the other call changed the
 *     power state first, OTHER_OPERATION_IN_PROGRESS where XAPI refuses
 *     the overlap);
 *   - the power state is XAPI's: the hard operation, when it succeeds,
 *     decides the outcome (it waits for the operation it overlaps);
 *   - the database and the hypervisor driver agree: one domain for a
 *     Running/Paused VM, with the recorded domid and state, none for a
 *     Halted/Suspended one, no operation left in current_operations;
 *   - VM.destroy is refused while the VM has a domain (destroying nothing),
 *     and on a Halted VM leaves no domain behind.
 * Each pair prints its figures (trials, INTERNAL_ERRORs, wrong outcomes,
 * disagreements, leaked domains) and fails if any is not zero.
 *
 * XCP_OVERLAP_SEED fixes the seed (printed otherwise), XCP_OVERLAP_TRIALS
 * the trials per pair (default 50).
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "hv_internal.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Guests acknowledge a shutdown request after 10 ms of running time. */
static void overlap_setup(void)
{
    setenv("XCP_SIM_SHUTDOWN_DELAY_MS", "10", 0);
    api_setup();
}

TestSuite(vm_overlap, .init = overlap_setup, .fini = api_teardown,
          .timeout = 240);

/* ---- the operations --------------------------------------------------------- */

typedef int (*op_fn)(xcp_session *s, xcp_vm vm);

static int do_start(xcp_session *s, xcp_vm vm)
{
    return xcp_vm_start(s, vm, false, false);
}

static int do_resume(xcp_session *s, xcp_vm vm)
{
    return xcp_vm_resume(s, vm, false, false);
}

static int do_checkpoint(xcp_session *s, xcp_vm vm)
{
    xcp_vm snap;

    return xcp_vm_checkpoint(s, &snap, vm, "overlap-checkpoint");
}

struct op {
    const char *name;
    op_fn fn;
    enum xcp_vm_power_state target; /* the power state it leaves */
    bool tracked; /* shows in current_operations while it runs */
};

#define PS(x) XCP_VM_POWER_STATE_##x
static const struct op
    op_start = {"start", do_start, PS(RUNNING), true},
    op_resume = {"resume", do_resume, PS(RUNNING), true},
    op_clean_shutdown = {"clean_shutdown", xcp_vm_clean_shutdown, PS(HALTED),
                         true},
    op_shutdown = {"shutdown", xcp_vm_shutdown, PS(HALTED), true},
    op_hard_shutdown = {"hard_shutdown", xcp_vm_hard_shutdown, PS(HALTED),
                        true},
    op_clean_reboot = {"clean_reboot", xcp_vm_clean_reboot, PS(RUNNING), true},
    op_hard_reboot = {"hard_reboot", xcp_vm_hard_reboot, PS(RUNNING), true},
    op_suspend = {"suspend", xcp_vm_suspend, PS(SUSPENDED), true},
    op_checkpoint = {"checkpoint", do_checkpoint, PS(RUNNING), true},
    op_pause = {"pause", xcp_vm_pause, PS(PAUSED), false},
    op_unpause = {"unpause", xcp_vm_unpause, PS(RUNNING), false};

/* Which operations a hard one cancels (XAPI's message_forwarding.ml). */
static bool preempts(const struct op *hard, const struct op *other)
{
    static const char *const by_shutdown[] = {
        "clean_shutdown", "clean_reboot", "hard_reboot", "shutdown",
        "suspend"};
    static const char *const by_reboot[] = {"clean_shutdown", "clean_reboot",
                                            "suspend"};
    const char *const *l = hard == &op_hard_shutdown ? by_shutdown
                                                     : by_reboot;
    size_t n = hard == &op_hard_shutdown ? N(by_shutdown) : N(by_reboot);
    size_t i;

    if (hard != &op_hard_shutdown && hard != &op_hard_reboot)
        return false;
    for (i = 0; i < n; i++)
        if (!strcmp(other->name, l[i]))
            return true;
    return false;
}

/* ---- randomness ---------------------------------------------------------------- */

static uint64_t rng, seed;

static uint64_t rnd(void)
{
    /* xorshift64*: enough for delays, reproducible from the seed */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static void seed_once(void)
{
    const char *e = getenv("XCP_OVERLAP_SEED");

    if (e && *e) {
        seed = strtoull(e, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
               (uint64_t)getpid();
    }
    rng = seed ? seed : 1;
    fprintf(stderr, "vm_overlap: seed %" PRIu64
                    " (XCP_OVERLAP_SEED=%" PRIu64 " repeats it)\n",
            seed, seed);
}

static int trials(void)
{
    const char *e = getenv("XCP_OVERLAP_TRIALS");

    return e && atoi(e) > 0 ? atoi(e) : 50;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* ---- sessions and VMs ---------------------------------------------------------- */

static xcp_session *open_session(void)
{
    return api_session("tests/api/overlap");
}

/* A fresh Halted VM: a diskless 128 MiB HVM guest ("Other install
 * media"), quick to make and to start. */
static xcp_vm new_vm(void)
{
    xcp_vm vm;

    OK(xcp_vm_clone(S, &vm, api_template(T_OTHER), "overlap"));
    OK(xcp_vm_set_is_a_template(S, vm, false));
    return vm;
}

/* Bring vm (consistent, no operation running) to state `want`. */
static void prepare(xcp_vm vm, enum xcp_vm_power_state want)
{
    if (api_power(vm) != PS(HALTED))
        OK(xcp_vm_hard_shutdown(S, vm));
    if (want == PS(HALTED))
        return;
    OK(xcp_vm_start(S, vm, want == PS(PAUSED), false));
    if (want == PS(SUSPENDED))
        OK(xcp_vm_suspend(S, vm));
}

/* ---- the hypervisor's view ------------------------------------------------------ */

/* The domains of vm as the driver sees them now: a second sim instance on
 * the same state directory reads the state the engine's one persisted
 * after its last change. */
static size_t domains_of(const char *uuid, xcp_hv_domain_info *first)
{
    xcp_hv *hv;
    xcp_hv_error err;
    xcp_hv_domain_info *doms = NULL;
    size_t n = 0, i, k = 0;

    cr_assert_eq(xcp__hv_open(&hv, api_dir, "sim", &err), 0, "hv open: %s",
                 err.message);
    cr_assert_eq(xcp__hv_domain_list(hv, &doms, &n, &err), 0,
                 "domain_list: %s", err.message);
    for (i = 0; i < n; i++) {
        if (doms[i].domid == 0 || strcmp(doms[i].vm_uuid, uuid))
            continue;
        if (k++ == 0 && first)
            *first = doms[i];
    }
    free(doms);
    xcp__hv_close(hv);
    return k;
}

/* Does the database (power_state, domid, resident_on, current_operations)
 * agree with the driver about vm? Explains in why. */
static bool agrees(xcp_vm vm, const char *uuid, char *why, size_t len)
{
    enum xcp_vm_power_state ps = api_power(vm);
    int64_t domid = api_domid(vm);
    xcp_string_map cur = {0};
    xcp_hv_domain_info d;
    xcp_host on;
    size_t n = domains_of(uuid, &d);
    bool live = ps == PS(RUNNING) || ps == PS(PAUSED);

    *why = '\0';
    OK(xcp_vm_get_current_operations(S, &cur, vm));
    if (cur.n)
        snprintf(why, len, "current_operations still has %s",
                 cur.items[0].value);
    xcp_string_map_dispose(&cur);
    if (*why)
        return false;
    if (!live && (n || domid != -1)) {
        snprintf(why, len, "%s with domid %" PRId64 " but %zu domain(s)%s",
                 xcp_vm_power_state_to_string(ps), domid, n,
                 n ? " still there (leaked)" : "");
        return false;
    }
    if (live && n != 1) {
        snprintf(why, len, "%s (domid %" PRId64 ") with %zu domains",
                 xcp_vm_power_state_to_string(ps), domid, n);
        return false;
    }
    if (live && ((int64_t)d.domid != domid ||
                 d.state != (ps == PS(RUNNING) ? XCP_HV_STATE_RUNNING
                                               : XCP_HV_STATE_PAUSED))) {
        snprintf(why, len, "%s domid %" PRId64 ", driver: domain %" PRIu32
                           " in state %d",
                 xcp_vm_power_state_to_string(ps), domid, d.domid,
                 (int)d.state);
        return false;
    }
    OK(xcp_vm_get_resident_on(S, &on, vm));
    if (live ? strcmp(on.ref, api_host().ref) : !api_is_null(on.ref)) {
        snprintf(why, len, "%s but resident_on %s",
                 xcp_vm_power_state_to_string(ps), on.ref);
        return false;
    }
    return true;
}

/* ---- one trial ------------------------------------------------------------------ */

struct call {
    const struct op *op;
    xcp_session *s;
    xcp_vm vm;
    int rc;
    char err[64];
    atomic_bool done;
};

static void call_run(struct call *c)
{
    const xcp_error *e;

    c->rc = c->op->fn(c->s, c->vm);
    e = c->rc < 0 ? xcp_error_last() : NULL;
    snprintf(c->err, sizeof(c->err), "%s",
             c->rc >= 0 ? "" : e && e->name ? e->name : "(no error)");
    atomic_store(&c->done, true);
}

static void *call_main(void *arg)
{
    call_run(arg);
    return NULL;
}

/* Wait until the first call shows in current_operations (or is over). */
static void wait_visible(struct call *a)
{
    xcp_string_map cur = {0};

    while (!atomic_load(&a->done)) {
        OK(xcp_vm_get_current_operations(S, &cur, a->vm));
        if (cur.n) {
            xcp_string_map_dispose(&cur);
            return;
        }
        xcp_string_map_dispose(&cur);
        sleep_us(250);
    }
}

struct figures {
    int trials, internal, wrong, disagree, leaked, cancelled, both_ok;
};

/* Is the result of call `self`, overlapped by `other`, one of XAPI's? */
static bool acceptable(const struct call *self, const struct call *other,
                       bool forbidden)
{
    if (self->rc >= 0)
        return true;
    if (!strcmp(self->err, "TASK_CANCELLED"))
        return preempts(other->op, self->op);
    if (!strcmp(self->err, "VM_BAD_POWER_STATE"))
        return other->rc >= 0; /* the other changed the state first */
    if (!strcmp(self->err, "OTHER_OPERATION_IN_PROGRESS"))
        return forbidden || !self->op->tracked;
    return false;
}

static void report(const char *what, int trial, const struct call *a,
                   const struct call *h, const char *why)
{
    fprintf(stderr, "  trial %d: %s: %s -> %s, %s -> %s: %s\n", trial, what,
            a->op->name, a->rc >= 0 ? "ok" : a->err, h->op->name,
            h->rc >= 0 ? "ok" : h->err, why);
}

/*
 * One trial: vm in `initial`; thread A runs `first`, then (once it shows
 * in current_operations, when it records itself there) after a random
 * delay up to max_delay_us this thread runs `second`. Returns false when
 * vm must be retired (its domain leaked or it was destroyed).
 */
static bool trial(xcp_vm *vmp, xcp_session *sa, xcp_session *sh, int t,
                  const struct op *first, const struct op *second,
                  enum xcp_vm_power_state initial, bool forbidden,
                  uint64_t max_delay_us, struct figures *f)
{
    struct call a = {first, sa, *vmp, 0, "", false};
    struct call h = {second, sh, *vmp, 0, "", false};
    pthread_t th;
    char *uuid = NULL, why[256];
    enum xcp_vm_power_state want, got;
    bool ok = true, live;
    size_t left;
    int rc;

    OK(xcp_vm_get_uuid(S, &uuid, *vmp));
    prepare(*vmp, initial);
    f->trials++;
    cr_assert_eq(pthread_create(&th, NULL, call_main, &a), 0);
    if (first->tracked)
        wait_visible(&a);
    /* Half the trials land within 2 ms (inside quick operations), the
     * others anywhere up to max_delay_us. */
    sleep_us(rnd() % ((rnd() & 1 ? 2000 : max_delay_us) + 1));
    call_run(&h);
    pthread_join(th, NULL);

    if (!strcmp(a.err, "INTERNAL_ERROR") || !strcmp(h.err, "INTERNAL_ERROR")) {
        f->internal++;
        report("INTERNAL_ERROR", t, &a, &h, "");
    } else if (!acceptable(&a, &h, forbidden) ||
               !acceptable(&h, &a, forbidden)) {
        f->wrong++;
        report("unexpected error", t, &a, &h, "");
    }
    if (!strcmp(a.err, "TASK_CANCELLED"))
        f->cancelled++;
    if (a.rc >= 0 && h.rc >= 0)
        f->both_ok++;

    /* XAPI's outcome: the second call, issued while the first runs (or
     * after it), acts last when it succeeds. Untracked first calls (pause,
     * unpause) may also come after it. */
    want = h.rc >= 0 ? second->target : a.rc >= 0 ? first->target : initial;
    got = api_power(*vmp);
    if (got != want &&
        !(!first->tracked && a.rc >= 0 && got == first->target)) {
        f->wrong++;
        snprintf(why, sizeof(why), "power_state %s, XAPI's outcome is %s",
                 xcp_vm_power_state_to_string(got),
                 xcp_vm_power_state_to_string(want));
        report("wrong outcome", t, &a, &h, why);
    }
    if (!agrees(*vmp, uuid, why, sizeof(why))) {
        f->disagree++;
        report("database and driver disagree", t, &a, &h, why);
        ok = false;
    }

    /* VM.destroy destroys nothing while a domain may run, and leaves no
     * domain when it succeeds. */
    got = api_power(*vmp);
    live = got == PS(RUNNING) || got == PS(PAUSED);
    rc = xcp_vm_destroy(S, *vmp);
    if (live ? rc >= 0 || strcmp(xcp_error_last()->name,
                                 "VM_BAD_POWER_STATE")
             : rc < 0) {
        f->wrong++;
        report("VM.destroy", t, &a, &h,
               rc >= 0 ? "succeeded on a live VM" : xcp_error_last()->name);
    }
    left = domains_of(uuid, NULL);
    if (rc >= 0 && left) {
        f->leaked += (int)left;
        report("VM.destroy orphaned its domain", t, &a, &h, "");
    }
    xcp_free(uuid);
    if (rc >= 0)
        return false; /* gone: the next trial needs a new VM */
    if (!ok) {
        /* Retire a VM left inconsistent (its stray domain keeps the
         * name the next start would need). */
        xcp_vm_power_state_reset(S, *vmp);
        return false;
    }
    return true;
}

static void run_pair(const struct op *first, const struct op *second,
                     enum xcp_vm_power_state initial, bool forbidden)
{
    struct figures f = {0};
    xcp_session *sa = open_session(), *sh = open_session();
    xcp_vm vm;
    int i, n = trials();
    /* The guest takes XCP_SIM_SHUTDOWN_DELAY_MS (10 here) to acknowledge;
     * delays up to three times that land before, during and after. */
    uint64_t max_delay_us = 30000;

    seed_once();
    vm = new_vm();
    for (i = 0; i < n; i++)
        if (!trial(&vm, sa, sh, i, first, second, initial, forbidden,
                   max_delay_us, &f))
            vm = new_vm();
    fprintf(stderr,
            "vm_overlap: %s + %s from %s: %d trials, %d INTERNAL_ERROR, "
            "%d wrong outcomes, %d disagreements, %d leaked domains "
            "(%d pre-empted, %d both succeeded; seed %" PRIu64 ")\n",
            first->name, second->name, xcp_vm_power_state_to_string(initial),
            f.trials, f.internal, f.wrong, f.disagree, f.leaked, f.cancelled,
            f.both_ok, seed);
    xcp_session_close(sa);
    xcp_session_close(sh);
    cr_expect_eq(f.internal, 0, "%s + %s: %d/%d INTERNAL_ERROR", first->name,
                 second->name, f.internal, f.trials);
    cr_expect_eq(f.wrong, 0, "%s + %s: %d/%d wrong outcomes", first->name,
                 second->name, f.wrong, f.trials);
    cr_expect_eq(f.disagree, 0, "%s + %s: %d/%d trials with the database "
                 "and the driver disagreeing", first->name, second->name,
                 f.disagree, f.trials);
    cr_expect_eq(f.leaked, 0, "%s + %s: %d leaked domains", first->name,
                 second->name, f.leaked);
}

/* ---- the pairs XAPI lets overlap -------------------------------------------------- */

#define PAIR(a, b, state)                                                  \
    Test(vm_overlap, a##_with_##b##_from_##state)                          \
    {                                                                      \
        run_pair(&op_##a, &op_##b, PS(state), false);                      \
    }

PAIR(clean_reboot, hard_reboot, RUNNING)
PAIR(clean_reboot, hard_shutdown, RUNNING)
PAIR(clean_shutdown, hard_shutdown, RUNNING)
PAIR(clean_shutdown, hard_reboot, RUNNING)
PAIR(shutdown, hard_shutdown, RUNNING)
PAIR(shutdown, hard_reboot, RUNNING)
PAIR(suspend, hard_shutdown, RUNNING)
PAIR(suspend, hard_reboot, RUNNING)
PAIR(hard_reboot, hard_shutdown, RUNNING)
PAIR(hard_reboot, hard_shutdown, PAUSED)
PAIR(resume, hard_shutdown, SUSPENDED)
PAIR(checkpoint, hard_shutdown, RUNNING)
PAIR(checkpoint, hard_reboot, RUNNING)
PAIR(start, hard_shutdown, HALTED)
PAIR(start, hard_reboot, HALTED)
PAIR(pause, hard_shutdown, RUNNING)
PAIR(pause, hard_reboot, RUNNING)
PAIR(unpause, hard_shutdown, PAUSED)
PAIR(unpause, hard_reboot, PAUSED)

/* ---- pairs XAPI refuses: OTHER_OPERATION_IN_PROGRESS, nothing changes -------- */

#define FORBIDDEN(a, b, state)                                             \
    Test(vm_overlap, a##_refuses_##b##_from_##state)                       \
    {                                                                      \
        run_pair(&op_##a, &op_##b, PS(state), true);                       \
    }

FORBIDDEN(hard_shutdown, hard_reboot, RUNNING)
FORBIDDEN(hard_reboot, hard_reboot, RUNNING)
FORBIDDEN(clean_shutdown, clean_reboot, RUNNING)
FORBIDDEN(clean_reboot, suspend, RUNNING)

/* ---- pre-emption, step by step ---------------------------------------------------- */

TestSuite(vm_preempt, .init = overlap_setup, .fini = api_teardown,
          .timeout = 240);

/* Wait (at most 10 s) until vm's current_operations holds n entries, one
 * of them op. */
static void wait_ops(xcp_vm vm, size_t n, const char *op)
{
    xcp_string_map cur = {0};
    size_t i;
    int k;

    for (k = 0; k < 10000; k++) {
        bool seen = false;
        OK(xcp_vm_get_current_operations(S, &cur, vm));
        for (i = 0; i < cur.n; i++)
            seen = seen || !strcmp(cur.items[i].value, op);
        if (cur.n == n && seen) {
            xcp_string_map_dispose(&cur);
            return;
        }
        xcp_string_map_dispose(&cur);
        sleep_us(1000);
    }
    cr_assert_fail("current_operations never held %zu entries with %s", n,
                   op);
}

static void assert_agrees(xcp_vm vm, enum xcp_vm_power_state want)
{
    char *uuid = NULL, why[256];
    enum xcp_vm_power_state got = api_power(vm);

    cr_assert_eq(got, want, "power_state %s, expected %s",
                 xcp_vm_power_state_to_string(got),
                 xcp_vm_power_state_to_string(want));
    OK(xcp_vm_get_uuid(S, &uuid, vm));
    cr_assert(agrees(vm, uuid, why, sizeof(why)), "%s", why);
    xcp_free(uuid);
}

/* A clean_shutdown waiting for its guest is cancelled by a hard_shutdown:
 * the clean call fails TASK_CANCELLED [task], the VM is Halted. */
Test(vm_preempt, hard_shutdown_cancels_waiting_clean_shutdown)
{
    xcp_vm vm = new_vm();
    xcp_task t;

    OK(xcp_vm_start(S, vm, false, false));
    api_hang_guests(60000);
    OK(xcp_vm_clean_shutdown_async(S, &t, vm));
    wait_ops(vm, 1, "clean_shutdown");
    OK(xcp_vm_hard_shutdown(S, vm));
    assert_error(xcp_task_wait(S, NULL, t.ref), "TASK_CANCELLED", t.ref);
    assert_agrees(vm, PS(HALTED));
}

/* hard_reboot cancels a waiting clean_reboot and reboots the VM. */
Test(vm_preempt, hard_reboot_cancels_waiting_clean_reboot)
{
    xcp_vm vm = new_vm();
    xcp_task t;
    int64_t before;

    OK(xcp_vm_start(S, vm, false, false));
    before = api_domid(vm);
    api_hang_guests(60000);
    OK(xcp_vm_clean_reboot_async(S, &t, vm));
    wait_ops(vm, 1, "clean_reboot");
    OK(xcp_vm_hard_reboot(S, vm));
    assert_error(xcp_task_wait(S, NULL, t.ref), "TASK_CANCELLED", t.ref);
    assert_agrees(vm, PS(RUNNING));
    cr_assert_neq(api_domid(vm), before, "the domain was not replaced");
}

/* VM.shutdown pre-empted by a hard_shutdown fails TASK_CANCELLED rather
 * than falling back to a hard shutdown of its own. */
Test(vm_preempt, hard_shutdown_cancels_shutdown_without_fallback)
{
    xcp_vm vm = new_vm();
    xcp_task t;

    OK(xcp_vm_start(S, vm, false, false));
    api_hang_guests(60000);
    OK(xcp_vm_shutdown_async(S, &t, vm));
    wait_ops(vm, 1, "shutdown");
    OK(xcp_vm_hard_shutdown(S, vm));
    assert_error(xcp_task_wait(S, NULL, t.ref), "TASK_CANCELLED", t.ref);
    assert_agrees(vm, PS(HALTED));
}

/* hard_reboot does not cancel VM.shutdown (XAPI): it waits for it, and
 * then starts the VM the shutdown halted. */
Test(vm_preempt, hard_reboot_waits_for_shutdown_then_starts_vm)
{
    xcp_vm vm = new_vm();
    xcp_task a, b;
    enum xcp_task_status_type st;

    OK(xcp_vm_start(S, vm, false, false));
    api_hang_guests(5000); /* the clean attempt gives up, then hard */
    OK(xcp_vm_shutdown_async(S, &a, vm));
    wait_ops(vm, 1, "shutdown");
    OK(xcp_vm_hard_reboot_async(S, &b, vm));
    wait_ops(vm, 2, "hard_reboot");
    sleep_us(300000);
    OK(xcp_task_get_status(S, &st, b));
    cr_assert_eq(st, XCP_TASK_STATUS_TYPE_PENDING,
                 "hard_reboot did not wait for the shutdown (status %s)",
                 xcp_task_status_type_to_string(st));
    OK(xcp_task_wait(S, NULL, a.ref));
    OK(xcp_task_wait(S, NULL, b.ref));
    assert_agrees(vm, PS(RUNNING));
}

/* A hard_reboot waiting behind a shutdown is itself pre-empted by a
 * hard_shutdown, which cancels both. */
Test(vm_preempt, hard_shutdown_cancels_waiting_hard_reboot)
{
    xcp_vm vm = new_vm();
    xcp_task a, b;

    OK(xcp_vm_start(S, vm, false, false));
    api_hang_guests(60000);
    OK(xcp_vm_shutdown_async(S, &a, vm));
    wait_ops(vm, 1, "shutdown");
    OK(xcp_vm_hard_reboot_async(S, &b, vm));
    wait_ops(vm, 2, "hard_reboot");
    OK(xcp_vm_hard_shutdown(S, vm));
    assert_error(xcp_task_wait(S, NULL, a.ref), "TASK_CANCELLED", a.ref);
    assert_error(xcp_task_wait(S, NULL, b.ref), "TASK_CANCELLED", b.ref);
    assert_agrees(vm, PS(HALTED));
}
