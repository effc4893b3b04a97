/*
 * tests/unit/engine/test_resume_image.c - VM.resume answers without
 * waiting for its suspend image (a file of the guest's memory) to be
 * deleted: the deletion is the collector thread's, off the engine lock,
 * after the call. It used to run in the call's commit, under the engine
 * lock, before the task completed (on Xen under load the client waited
 * 1.2-2.8 s more). And a crash between the commit and the deletion
 * leaves no image behind: the next open deletes it.
 *
 * The engine is the public API's (a local session, as tests/api); the
 * deletion is held with the SR layer's probe (xcp__sr_drop_probe).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../api/helpers.h"
#include "api/storage.h" /* xcp__sr_drop_probe */

#define HOLD_S 20 /* how long the probe holds a deletion at most */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool released, timed_out;
static atomic_int entered;

/* Holds the deletion until released (or HOLD_S seconds). */
static void hold(const char *location)
{
    struct timespec ts;

    (void)location;
    atomic_fetch_add(&entered, 1);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += HOLD_S;
    pthread_mutex_lock(&mu);
    while (!released && !timed_out)
        if (pthread_cond_timedwait(&cv, &mu, &ts) != 0)
            timed_out = true;
    pthread_mutex_unlock(&mu);
}

static void release(void)
{
    pthread_mutex_lock(&mu);
    released = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void teardown(void)
{
    release();
    api_teardown();
    xcp__sr_drop_probe = NULL;
}

TestSuite(resume_image, .init = api_setup, .fini = teardown,
          .timeout = 300);

/* A suspended VM, and the path of its suspend image. */
static xcp_vm suspended_vm(char *image, size_t len)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi;
    char *loc = NULL;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    OK(xcp_vm_get_suspend_VDI(S, &vdi, vm));
    OK(xcp_vdi_get_location(S, &loc, vdi));
    snprintf(image, len, "%s/sr/local/%s", api_dir, loc);
    xcp_free(loc);
    return vm;
}

static bool exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* Waits up to 60 s for path to go. */
static bool gone_soon(const char *path)
{
    int i;

    for (i = 0; i < 600 && exists(path); i++)
        usleep(100 * 1000);
    return !exists(path);
}

/* Before: the probe ran inside VM.resume's commit, so the call waited
 * for the deletion (here held until the probe gave up). */
Test(resume_image, resume_answers_before_its_image_is_deleted)
{
    char image[1024];
    xcp_vm vm = suspended_vm(image, sizeof(image));

    cr_assert(exists(image), "no suspend image at %s", image);
    xcp__sr_drop_probe = hold;
    OK(xcp_vm_resume(S, vm, false, false));
    cr_assert(!timed_out, "VM.resume waited for its image's deletion");
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    cr_assert(exists(image), "the image went within the call");
    /* The collector's thread deletes it once let go. */
    release();
    cr_assert(gone_soon(image), "the suspend image %s stays", image);
    cr_assert_geq(atomic_load(&entered), 1);
}

/* Closing the engine deletes what is still queued. */
Test(resume_image, close_deletes_the_queued_image)
{
    char image[1024];
    xcp_vm vm = suspended_vm(image, sizeof(image));

    OK(xcp_vm_resume(S, vm, false, false));
    api_reopen();
    cr_assert(!exists(image), "the suspend image %s stays", image);
}

/* The probe of a worker process: it dies there, its image not deleted. */
static void die_here(const char *location)
{
    (void)location;
    _exit(0);
}

/* A kill after VM.resume's commit, before the image's deletion: the next
 * open deletes it (its intent was recorded before the commit). */
Test(resume_image, a_crash_before_the_deletion_leaves_no_image)
{
    char image[1024];
    xcp_vm vm = suspended_vm(image, sizeof(image));
    pid_t pid;
    int st, i;

    xcp_session_close(S);
    S = NULL;
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        xcp__sr_drop_probe = die_here;
        S = api_session("worker");
        if (!S || xcp_vm_resume(S, vm, false, false) < 0)
            _exit(2);
        for (i = 0; i < 600; i++)
            usleep(100 * 1000);
        _exit(3); /* the deletion never came */
    }
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker status %d", st);
    cr_assert(exists(image), "the worker deleted the image after all");
    api_open();
    cr_assert(!exists(image), "the crash left the suspend image %s", image);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
}
