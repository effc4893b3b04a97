/*
 * Crash consistency of the database (db.journal + db.snap in the state
 * directory), through the public API only.
 *
 * A worker process (fork) opens a local session on a state directory and
 * makes a stream of changes: VM.create, VM.clone of a template,
 * name_label, an other_config counter, start/shutdown, destroy. Over a
 * pipe it tells the parent what call it is about to make (intent) and,
 * once the call has returned, that the change is acknowledged. The parent
 * kills it with SIGKILL at a random moment, checks the files on its own
 * (every complete line carries a good CRC), then reopens the directory in
 * a fresh process and checks that every acknowledged change is there and
 * nothing else is, bar the one call in flight, which may or may not have
 * happened (its outcome is then adopted). The next worker carries on from
 * there, so recovery is followed by more writes.
 *
 * Scenarios:
 *   kill     random kills, small records; a fresh state dir every 10 runs
 *            (first boot completes before the first kill: a kill inside
 *            it is a known bug, below, unless XCP_CRASH_STRICT=1)
 *   rotate   16 KiB other_config values so the journal passes 4 MiB and
 *            is rotated into db.snap; the kill comes at random, as
 *            db.snap.tmp is opened, or as it is renamed over db.snap
 *   storage  random kills of a worker making and deleting images
 *            (snapshots, suspend images, VDIs): afterwards every VDI
 *            record has its image and every image an owner
 *   disk     random kills of a worker running VDI operations and guest
 *            writes on qcow2 and VHD SRs: chains pass qemu-img, records
 *            and files agree, acknowledged writes read back (below); a
 *            third of the workers kill themselves at a crash point of
 *            the file SR instead (XCP_CRASH_AT), where one is reached
 *   damage   deterministic damage: a torn or flipped journal tail must
 *            give the earlier state; damaged snapshots must make the open
 *            fail with an error naming the file, leaving both files as
 *            they were; other damage must fail or lose nothing; first
 *            boot cut short must still open
 *
 * Damage cases that show a known, unfixed library bug print XFAIL and do
 * not fail the run; if one passes it prints a FAIL (XPASS) so the mark
 * is removed. XCP_CRASH_STRICT=1 counts them as failures. A process that
 * dies of a signal (other than our SIGKILL) always fails the run.
 *
 * Usage: test_crash [iterations]    (per random scenario; default 30)
 * Environment: XCP_CRASH_ITERATIONS, XCP_CRASH_SEED (to replay a run's
 * random choices, as far as timing allows), XCP_CRASH_KEEP=1 (keep every
 * state dir; those of failures are always kept), XCP_CRASH_STRICT=1,
 * XCP_CRASH_SCENARIOS=disk,storage (run only these), TMPDIR.
 * Prints PASS/FAIL lines and "N passed, M failed"; exits 1 on a failure.
 * Runs in the test environment (XCP_HV=sim, XCP_TEMPLATES ...).
 */
#define _GNU_SOURCE
#include <xcp/xcp.h>

#include "image.h"
#include "api/storage.h" /* the engine's VDI streams */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 128    /* VM slots; freed slots are reused */
#define MAX_LIVE 48      /* live VMs kept below this */
#define LABEL_MAX 64
#define UUID_MAX 40
#define ROTATE_PAD 16384 /* bytes of other_config per counter change */
#define TEMPLATE "Other install media"
#define MEM (64ll << 20)

/* ---- small utilities ----------------------------------------------------- */

static int npass, nfail, nxfail;
static int ncrashes; /* children (not the killed workers) dead by a signal */
static const char *tmpdir = "/tmp";

static void pass(const char *fmt, ...)
{
    va_list ap;

    npass++;
    printf("PASS: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static void fail(const char *fmt, ...)
{
    va_list ap;

    nfail++;
    printf("FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* A failure detail (no count): the caller decides what it adds up to. */
static void note(const char *fmt, ...)
{
    va_list ap;

    printf("    ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 2685821657736338717ull;
}

static unsigned rnd_below(unsigned n)
{
    return n ? (unsigned)(rnd() % n) : 0;
}

static int64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};

    while (nanosleep(&t, &t) < 0 && errno == EINTR)
        ;
}

static char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    *len = 0;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1))) {
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        buf[got] = '\0';
        *len = got;
    }
    close(fd);
    return buf;
}

static int write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t done = 0;

    if (fd < 0)
        return -1;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return close(fd);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* Wait for a child, killing it after timeout_ms. Returns the wait status. */
/* A child reaped with status st: one dead of a signal other than our
 * SIGKILL counts as a crash. */
static int reaped(pid_t pid, int st)
{
    if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL) {
        ncrashes++;
        note("process %d died of signal %d (%s)", (int)pid, WTERMSIG(st),
             strsignal(WTERMSIG(st)));
    }
    return st;
}

static int wait_child(pid_t pid, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    int st = 0;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return reaped(pid, st);
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(1);
    }
}

/* ---- the file format, checked independently of the library -------------- */

static uint32_t crc32_of(const char *p, size_t n)
{
    static uint32_t table[256];
    uint32_t c = 0xffffffffu;
    size_t i;

    if (!table[1]) {
        for (i = 0; i < 256; i++) {
            uint32_t v = (uint32_t)i;
            int k;
            for (k = 0; k < 8; k++)
                v = (v & 1) ? 0xedb88320u ^ (v >> 1) : v >> 1;
            table[i] = v;
        }
    }
    for (i = 0; i < n; i++)
        c = table[(c ^ (unsigned char)p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* "<crc32 hex> <body>": true when the CRC matches. */
static bool line_ok(const char *line, size_t len)
{
    char hex[9];
    char *end;

    if (len < 10 || line[8] != ' ')
        return false;
    memcpy(hex, line, 8);
    hex[8] = '\0';
    return strtoul(hex, &end, 16) == crc32_of(line + 9, len - 9) &&
           end == hex + 8;
}

struct files {
    size_t jlen;      /* journal bytes */
    size_t jgood;     /* bytes of complete lines */
    size_t jlines;    /* complete lines */
    size_t last_line; /* offset of the last complete line */
    uint64_t jfirst;  /* generation of the first line (0: none) */
    bool snap;        /* db.snap exists */
    uint64_t snapgen;
    size_t snaplen;
    char *jdata;      /* the journal (malloc) */
};

static void files_free(struct files *f)
{
    free(f->jdata);
    memset(f, 0, sizeof(*f));
}

/*
 * Read and check both files as a kill -9 may leave them: every complete
 * journal line is intact with increasing generations, at most a partial
 * last line; the snapshot, if any, is whole. Returns the number of
 * problems (each printed).
 */
static int check_files(const char *dir, struct files *f)
{
    char path[PATH_MAX];
    size_t len, off, count = 0;
    uint64_t prev = 0;
    char *s, *nl, *line;
    int bad = 0;

    memset(f, 0, sizeof(*f));
    path_in(path, sizeof(path), dir, "db.journal");
    f->jdata = read_all(path, &f->jlen);
    for (off = 0; f->jdata && off < f->jlen;
         off = (size_t)(nl - f->jdata) + 1) {
        uint64_t g;
        line = f->jdata + off;
        if (!(nl = memchr(line, '\n', f->jlen - off)))
            break;
        if (!line_ok(line, (size_t)(nl - line)) || strncmp(line + 9, "T ", 2)) {
            note("db.journal: complete line %zu (offset %zu) is damaged",
                 f->jlines + 1, off);
            bad++;
            break;
        }
        g = strtoull(line + 11, NULL, 10);
        if (g <= prev) {
            note("db.journal: generation %" PRIu64 " after %" PRIu64, g, prev);
            bad++;
        }
        if (!f->jfirst)
            f->jfirst = g;
        prev = g;
        f->last_line = off;
        f->jlines++;
        f->jgood = off + (size_t)(nl - line) + 1;
    }
    path_in(path, sizeof(path), dir, "db.snap");
    if (!(s = read_all(path, &len)))
        return bad;
    f->snap = true;
    f->snaplen = len;
    /* "<crc> XCPDB 2 <generation> <sequence>", checksummed like the rest */
    if (!(nl = strchr(s, '\n')) || !line_ok(s, (size_t)(nl - s)) ||
        strncmp(s + 9, "XCPDB 2 ", 8)) {
        note("db.snap: bad header");
        free(s);
        return bad + 1;
    }
    f->snapgen = strtoull(s + 17, NULL, 10);
    for (line = nl + 1; (nl = strchr(line, '\n')); line = nl + 1) {
        if (!line_ok(line, (size_t)(nl - line))) {
            note("db.snap: line %zu is damaged", count + 2);
            free(s);
            return bad + 1;
        }
        if (!strncmp(line + 9, "END ", 4)) {
            if (strtoul(line + 13, NULL, 10) != count) {
                note("db.snap: trailer count differs (%zu lines)", count);
                bad++;
            }
            free(s);
            return bad;
        }
        count++;
    }
    note("db.snap: no trailer");
    free(s);
    return bad + 1;
}

/* ---- the model: what the worker has been told succeeded ------------------ */

enum op_kind {
    OP_NONE = 0,
    OP_CREATE = 'c',
    OP_CLONE = 'k',
    OP_LABEL = 'l',
    OP_COUNTER = 'n',
    OP_START = 's',
    OP_STOP = 'h',
    OP_DESTROY = 'd',
};

enum slot_state { SLOT_FREE, SLOT_LIVE, SLOT_GONE };

struct slot {
    unsigned char state;
    unsigned char power; /* enum xcp_vm_power_state */
    bool pending_stop;   /* a clean shutdown was asked, the guest may
                            still act on it (domains outlive us) */
    bool clone;          /* a template clone: never started */
    long counter;        /* other_config:counter, -1: none */
    size_t padlen;       /* other_config:pad length, 0: none */
    char uuid[UUID_MAX];
    char label[LABEL_MAX];
    xcp_vm ref;
};

struct model {
    long seq;      /* makes labels unique */
    size_t pad;    /* other_config "pad" bytes per counter change */
    struct slot s[MAX_SLOTS];
};

/* One pipe message; well under PIPE_BUF, so writes are atomic. */
struct msg {
    char type; /* 'R' ready, 'I' intent, 'A' ack, 'E' error; from the
                  verifier: 'P' a slot's power state, 'V' the verdict */
    char kind; /* enum op_kind */
    int slot;
    long arg;  /* counter value; 'V': 1 if the op took effect, 'P': the
                  power state */
    char label[LABEL_MAX];
    char uuid[UUID_MAX];
    xcp_vm ref;
    char err[160];
};

static void apply(struct model *m, const struct msg *op)
{
    struct slot *v = &m->s[op->slot];

    switch (op->kind) {
    case OP_CREATE:
    case OP_CLONE:
        memset(v, 0, sizeof(*v));
        v->state = SLOT_LIVE;
        v->power = XCP_VM_POWER_STATE_HALTED;
        v->clone = op->kind == OP_CLONE;
        v->counter = op->kind == OP_CREATE ? 0 : -1;
        snprintf(v->label, sizeof(v->label), "%s", op->label);
        snprintf(v->uuid, sizeof(v->uuid), "%s", op->uuid);
        v->ref = op->ref;
        break;
    case OP_LABEL:
        snprintf(v->label, sizeof(v->label), "%s", op->label);
        break;
    case OP_COUNTER:
        v->counter = op->arg;
        v->padlen = m->pad;
        break;
    case OP_START:
        v->power = XCP_VM_POWER_STATE_RUNNING;
        break;
    case OP_STOP:
        v->power = XCP_VM_POWER_STATE_HALTED;
        v->pending_stop = false;
        break;
    case OP_DESTROY:
        v->state = SLOT_GONE;
        break;
    }
}

/* The value of other_config:pad for a counter value (checkable). */
static void make_pad(char *buf, size_t len, int slot, long counter)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (char)('a' + (unsigned long)(slot * 7 + counter + (long)i / 64)
                                  % 26);
    buf[len] = '\0';
}

/* ---- the worker ---------------------------------------------------------- */

static int send_msg(int fd, const struct msg *m)
{
    ssize_t n;

    do
        n = write(fd, m, sizeof(*m));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(*m) ? 0 : -1;
}

static void error_text(char *buf, size_t n, const char *what)
{
    const xcp_error *e = xcp_error_last();
    size_t i, used;

    used = (size_t)snprintf(buf, n, "%s: %s", what, e ? e->name : "?");
    for (i = 0; e && i < e->nparams && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, " [%s]", e->params[i]);
}

static int open_session(xcp_session **s, const char *dir)
{
    xcp_open_options o;

    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = dir;
    o.originator = "test_crash";
    o.lock_timeout_ms = 20000;
    return xcp_session_open_local(s, &o);
}

enum pick {
    PICK_FREE,   /* not live: free or destroyed */
    PICK_LIVE,   /* any live VM */
    PICK_HALTED, /* live, halted, no shutdown pending */
    PICK_POWER,  /* live, not a clone, no shutdown pending */
    PICK_UP,     /* same, and running or paused */
};

static bool picks(const struct slot *v, enum pick what)
{
    bool idle = v->state == SLOT_LIVE && !v->pending_stop;

    switch (what) {
    case PICK_FREE:
        return v->state != SLOT_LIVE;
    case PICK_LIVE:
        return v->state == SLOT_LIVE;
    case PICK_HALTED:
        return idle && v->power == XCP_VM_POWER_STATE_HALTED;
    case PICK_POWER:
        return idle && !v->clone;
    case PICK_UP:
        return idle && !v->clone && v->power != XCP_VM_POWER_STATE_HALTED;
    }
    return false;
}

/* A random slot that fits, or -1. */
static int pick_slot(const struct model *m, enum pick what)
{
    int cand[MAX_SLOTS], n = 0, i;

    for (i = 0; i < MAX_SLOTS; i++)
        if (picks(&m->s[i], what))
            cand[n++] = i;
    return n ? cand[rnd_below((unsigned)n)] : -1;
}

static int count_live(const struct model *m)
{
    int i, n = 0;

    for (i = 0; i < MAX_SLOTS; i++)
        n += m->s[i].state == SLOT_LIVE;
    return n;
}

/* Choose the next change from the worker's model. force_label: the last op
 * of a bounded run, so the journal ends with a known line. */
static void choose(struct model *m, struct msg *op, bool have_template,
                   bool force_label)
{
    int live = count_live(m), r = (int)rnd_below(100), slot;

    memset(op, 0, sizeof(*op));
    op->type = 'I';
    m->seq++;
    if (force_label && live > 0) {
        op->kind = OP_LABEL;
        op->slot = pick_slot(m, PICK_LIVE);
        snprintf(op->label, sizeof(op->label), "final-%ld", m->seq);
        return;
    }
    if (live < 3 || (r < 22 && live < MAX_LIVE)) {
        slot = pick_slot(m, PICK_FREE);
        if (slot >= 0) {
            op->kind = have_template && rnd_below(4) == 0 ? OP_CLONE
                                                          : OP_CREATE;
            op->slot = slot;
            snprintf(op->label, sizeof(op->label), "vm-%d-%ld", slot, m->seq);
            return;
        }
    }
    /* Power changes are slow (the sim syncs its state file): rare when
     * the point is to fill the journal. */
    if (r >= 75 && r < (m->pad ? 77 : 88) &&
        (slot = pick_slot(m, PICK_POWER)) >= 0) {
        op->slot = slot;
        op->kind = m->s[slot].power == XCP_VM_POWER_STATE_HALTED ? OP_START
                                                                 : OP_STOP;
        /* STOP: 1 clean, 0 hard; a paused VM can only be hard stopped. */
        op->arg = m->s[slot].power == XCP_VM_POWER_STATE_RUNNING &&
                  rnd_below(2);
    } else if (r >= 88 && (slot = pick_slot(m, PICK_HALTED)) >= 0) {
        op->kind = OP_DESTROY;
        op->slot = slot;
    } else if (r >= 88 && (slot = pick_slot(m, PICK_UP)) >= 0) {
        op->kind = OP_STOP;
        op->slot = slot;
    } else if (r < 45 || r >= 75) {
        op->kind = OP_LABEL;
        op->slot = pick_slot(m, PICK_LIVE);
        snprintf(op->label, sizeof(op->label), "vm-%d-%ld", op->slot, m->seq);
    } else {
        op->kind = OP_COUNTER;
        op->slot = pick_slot(m, PICK_LIVE);
        op->arg = m->s[op->slot].counter + 1;
    }
}

static int set_counter(xcp_session *s, const struct model *m,
                       const struct msg *op)
{
    xcp_string_map oc = {0, NULL};
    char id[16], val[24], *pad = NULL;
    int rc;

    snprintf(id, sizeof(id), "%d", op->slot);
    snprintf(val, sizeof(val), "%ld", op->arg);
    rc = xcp_string_map_set(&oc, "crash_slot", id);
    if (rc == 0)
        rc = xcp_string_map_set(&oc, "counter", val);
    if (rc == 0 && m->pad) {
        if (!(pad = malloc(m->pad + 1)))
            rc = XCP_ENOMEM;
        else {
            make_pad(pad, m->pad, op->slot, op->arg);
            rc = xcp_string_map_set(&oc, "pad", pad);
        }
    }
    if (rc == 0)
        rc = xcp_vm_set_other_config(s, m->s[op->slot].ref, &oc);
    free(pad);
    xcp_string_map_dispose(&oc);
    return rc;
}

static int create_vm(xcp_session *s, struct msg *op)
{
    xcp_vm_record r;
    char id[16];
    int rc;

    xcp_vm_record_init(&r);
    snprintf(id, sizeof(id), "%d", op->slot);
    r.name_label = op->label;
    r.memory_static_min = r.memory_dynamic_min = MEM;
    r.memory_static_max = r.memory_dynamic_max = MEM;
    r.VCPUs_max = r.VCPUs_at_startup = 1;
    rc = xcp_string_map_set(&r.other_config, "crash_slot", id);
    if (rc == 0)
        rc = xcp_string_map_set(&r.other_config, "counter", "0");
    if (rc == 0)
        rc = xcp_vm_create(s, &op->ref, &r);
    r.name_label = NULL;
    xcp_vm_record_dispose(&r);
    return rc;
}

/* Make one change; fills in what the ack carries. */
static int do_op(xcp_session *s, const struct model *m, struct msg *op,
                 xcp_vm template)
{
    xcp_vm vm = m->s[op->slot].ref;
    char *uuid = NULL;
    int rc;

    switch (op->kind) {
    case OP_CREATE:
    case OP_CLONE:
        rc = op->kind == OP_CREATE
                 ? create_vm(s, op)
                 : xcp_vm_clone(s, &op->ref, template, op->label);
        if (rc == 0 && (rc = xcp_vm_get_uuid(s, &uuid, op->ref)) == 0)
            snprintf(op->uuid, sizeof(op->uuid), "%s", uuid);
        xcp_free(uuid);
        return rc;
    case OP_LABEL:
        return xcp_vm_set_name_label(s, vm, op->label);
    case OP_COUNTER:
        return set_counter(s, m, op);
    case OP_START:
        return xcp_vm_start(s, vm, false, false);
    case OP_STOP:
        return op->arg ? xcp_vm_clean_shutdown(s, vm)
                       : xcp_vm_hard_shutdown(s, vm);
    case OP_DESTROY:
        return xcp_vm_destroy(s, vm);
    }
    return -1;
}

/*
 * The worker: runs in a forked child, never returns. Makes changes until
 * killed, or nops of them (nops > 0) and then closes cleanly.
 */
static void worker(const char *dir, struct model *m, int fd, uint64_t seed,
                   long nops)
{
    xcp_session *s;
    xcp_vm_set tpl = {0, NULL};
    xcp_vm template;
    struct msg op;
    long i;

    rng_state = seed | 1;
    memset(&op, 0, sizeof(op));
    if (open_session(&s, dir) < 0) {
        op.type = 'E';
        error_text(op.err, sizeof(op.err), "session open");
        send_msg(fd, &op);
        _exit(2);
    }
    memset(&template, 0, sizeof(template));
    if (xcp_vm_get_by_name_label(s, &tpl, TEMPLATE) == 0 && tpl.n > 0)
        template = tpl.items[0];
    op.type = 'R';
    send_msg(fd, &op);
    for (i = 0; nops <= 0 || i < nops; i++) {
        choose(m, &op, tpl.n > 0, nops > 0 && i == nops - 1);
        if (send_msg(fd, &op) < 0)
            _exit(3);
        if (do_op(s, m, &op, template) < 0) {
            op.type = 'E';
            error_text(op.err, sizeof(op.err), "call");
            send_msg(fd, &op);
            _exit(4);
        }
        op.type = 'A';
        if (send_msg(fd, &op) < 0)
            _exit(3);
        apply(m, &op);
    }
    xcp_vm_set_dispose(&tpl);
    xcp_session_close(s);
    _exit(0);
}

/* ---- the verifier -------------------------------------------------------- */

static const char *kind_name(int k)
{
    switch (k) {
    case OP_CREATE: return "VM.create";
    case OP_CLONE: return "VM.clone";
    case OP_LABEL: return "VM.set_name_label";
    case OP_COUNTER: return "VM.set_other_config";
    case OP_START: return "VM.start";
    case OP_STOP: return "VM.shutdown";
    case OP_DESTROY: return "VM.destroy";
    }
    return "none";
}

static long oc_counter(const xcp_vm_record *r)
{
    const char *c = xcp_string_map_get(&r->other_config, "counter");

    return c ? strtol(c, NULL, 10) : -1;
}

/* How a slot's record compares with the model, for the one field the
 * in-flight op changes: 0 old value, 1 new value, -1 neither. */
static int inflight_state(const struct slot *v, const xcp_vm_record *r,
                          const struct msg *in)
{
    enum xcp_vm_power_state p = r->power_state;

    switch (in->kind) {
    case OP_LABEL:
        return !strcmp(r->name_label, in->label) ? 1
               : !strcmp(r->name_label, v->label) ? 0 : -1;
    case OP_COUNTER:
        return oc_counter(r) == in->arg ? 1
               : oc_counter(r) == v->counter ? 0 : -1;
    case OP_START:
        /* Killed between building the domain and unpausing it: Paused. */
        return p == XCP_VM_POWER_STATE_HALTED ? 0
               : p == XCP_VM_POWER_STATE_RUNNING ||
                       p == XCP_VM_POWER_STATE_PAUSED ? 1 : -1;
    case OP_STOP:
        return p == XCP_VM_POWER_STATE_HALTED ? 1
               : p == (enum xcp_vm_power_state)v->power ? 0 : -1;
    case OP_DESTROY:
        return 0; /* the record is still there */
    }
    return -1;
}

/* Everything but the in-flight field must match the model exactly. */
static int check_slot(const struct model *m, int i, const xcp_vm_record *r,
                      const struct msg *in, long *applied)
{
    const struct slot *v = &m->s[i];
    bool mine = in->kind && in->slot == i && in->kind != OP_CREATE &&
                in->kind != OP_CLONE;
    enum xcp_vm_power_state want = (enum xcp_vm_power_state)v->power;
    const char *slotkey = xcp_string_map_get(&r->other_config, "crash_slot");
    const char *pad = xcp_string_map_get(&r->other_config, "pad");
    int bad = 0;

    if (mine) {
        int st = inflight_state(v, r, in);
        if (st < 0) {
            note("slot %d: in-flight %s left neither the old nor the new "
                 "value", i, kind_name(in->kind));
            bad++;
        } else {
            *applied = st;
        }
    }
    if (!(mine && in->kind == OP_LABEL) && strcmp(r->name_label, v->label)) {
        note("slot %d: name_label '%s', acknowledged '%s'", i, r->name_label,
             v->label);
        bad++;
    }
    if (!(mine && in->kind == OP_COUNTER) && oc_counter(r) != v->counter) {
        note("slot %d (%s): other_config:counter %ld, acknowledged %ld", i,
             v->label, oc_counter(r), v->counter);
        bad++;
    }
    if (!(mine && (in->kind == OP_START || in->kind == OP_STOP)) &&
        r->power_state != want &&
        !(v->pending_stop && r->power_state == XCP_VM_POWER_STATE_HALTED)) {
        note("slot %d (%s): power_state %s, acknowledged %s", i, v->label,
             xcp_vm_power_state_to_string(r->power_state),
             xcp_vm_power_state_to_string(want));
        bad++;
    }
    if (v->counter >= 0 && (!slotkey || atoi(slotkey) != i)) {
        note("slot %d (%s): other_config:crash_slot is %s", i, v->label,
             slotkey ? slotkey : "missing");
        bad++;
    }
    if (pad) {
        long c = oc_counter(r);
        size_t len = strlen(pad);
        char *want_pad = malloc(len + 1);
        if (want_pad) {
            make_pad(want_pad, len, i, c);
            if ((len != v->padlen && len != m->pad) || strcmp(pad, want_pad)) {
                note("slot %d (%s): other_config:pad damaged (%zu bytes)", i,
                     v->label, len);
                bad++;
            }
            free(want_pad);
        }
    }
    if (r->current_operations.n) {
        note("slot %d (%s): %zu stale current_operations after restart", i,
             v->label, r->current_operations.n);
        bad++;
    }
    return bad;
}

/*
 * Open the state dir and compare with the model, allowing the in-flight
 * op (in->kind != 0) either way. Writes to fd a 'P' message per live VM
 * (its power state, which the model adopts) and a 'V' message with the
 * in-flight op's outcome. Runs in a forked child; returns the number of
 * problems.
 */
static int verify(const char *dir, const struct model *m, const struct msg *in,
                  int fd)
{
    xcp_session *s;
    xcp_vm_record_map all;
    struct msg v;
    bool *seen;
    int bad = 0, i;
    size_t k;

    memset(&v, 0, sizeof(v));
    v.type = 'V';
    v.kind = in->kind;
    if (open_session(&s, dir) < 0) {
        error_text(v.err, sizeof(v.err), "open");
        note("the engine does not open: %s", v.err);
        v.arg = -1;
        send_msg(fd, &v);
        return 1;
    }
    if (xcp_vm_get_all_records(s, &all) < 0) {
        error_text(v.err, sizeof(v.err), "VM.get_all_records");
        note("%s", v.err);
        xcp_session_close(s);
        v.arg = -1;
        send_msg(fd, &v);
        return 1;
    }
    seen = calloc(all.n + 1, sizeof(*seen));
    for (i = 0; i < MAX_SLOTS; i++) {
        const struct slot *sl = &m->s[i];
        if (sl->state == SLOT_FREE)
            continue;
        for (k = 0; k < all.n; k++)
            if (!strcmp(all.records[k].uuid, sl->uuid))
                break;
        if (k < all.n)
            seen[k] = true;
        if (sl->state == SLOT_GONE) {
            if (k < all.n) {
                note("slot %d: VM %s was destroyed (acknowledged) but is back",
                     i, sl->uuid);
                bad++;
            }
        } else if (k == all.n) {
            if (in->kind == OP_DESTROY && in->slot == i) {
                v.arg = 1;
            } else {
                note("slot %d: acknowledged VM '%s' (%s) is missing", i,
                     sl->label, sl->uuid);
                bad++;
            }
        } else {
            struct msg pw;
            bad += check_slot(m, i, &all.records[k], in, &v.arg);
            memset(&pw, 0, sizeof(pw));
            pw.type = 'P';
            pw.slot = i;
            pw.arg = all.records[k].power_state;
            send_msg(fd, &pw);
        }
    }
    for (k = 0; k < all.n; k++) {
        const xcp_vm_record *r = &all.records[k];
        if (seen[k] || r->is_control_domain || r->is_default_template)
            continue;
        if ((in->kind == OP_CREATE || in->kind == OP_CLONE) &&
            !strcmp(r->name_label, in->label) && !v.arg) {
            v.arg = 1;
            snprintf(v.uuid, sizeof(v.uuid), "%s", r->uuid);
            v.ref = all.refs[k];
            if (in->kind == OP_CREATE && oc_counter(r) != 0) {
                note("in-flight VM.create '%s' has a wrong other_config",
                     in->label);
                bad++;
            }
            continue;
        }
        note("unexpected VM '%s' (%s) in the database", r->name_label,
             r->uuid);
        bad++;
    }
    free(seen);
    xcp_vm_record_map_dispose(&all);
    xcp_session_close(s);
    send_msg(fd, &v);
    return bad;
}

/* ---- processes ---------------------------------------------------------- */

struct run {
    const char *dir;
    struct model *m;
    struct msg inflight;
    int stat_ack, stat_ready;
    int stat_inflight, stat_applied; /* calls cut by the kill */
    char cut_kind;                   /* the last one's kind */
    bool worker_failed;
};

/* Apply one message from the worker to the parent's model. */
static void take_msg(struct run *r, const struct msg *x)
{
    switch (x->type) {
    case 'R':
        r->stat_ready = 1;
        break;
    case 'I':
        r->inflight = *x;
        break;
    case 'A':
        apply(r->m, x);
        r->m->seq++;
        r->inflight.kind = OP_NONE;
        r->stat_ack++;
        break;
    case 'E':
        note("the worker failed: %s (op %s on slot %d)", x->err,
             kind_name(x->kind), x->slot);
        r->worker_failed = true;
        break;
    }
}

/* Read whole messages from fd into the model; false at EOF. */
static bool drain(struct run *r, int fd, char *buf, size_t *have)
{
    ssize_t n = read(fd, buf + *have, sizeof(struct msg) * 64 - *have);
    size_t off = 0;

    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0)
        return false;
    *have += (size_t)n;
    while (*have - off >= sizeof(struct msg)) {
        struct msg x;
        memcpy(&x, buf + off, sizeof(x));
        take_msg(r, &x);
        off += sizeof(x);
    }
    memmove(buf, buf + off, *have - off);
    *have -= off;
    return true;
}

/* Start a worker on the parent's model; returns its pid, *fd its pipe. */
static pid_t spawn_worker(struct run *r, uint64_t seed, long nops, int *fd)
{
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        /* Its own process group, so nothing else receives our kill. */
        setpgid(0, 0);
        worker(r->dir, r->m, p[1], seed, nops);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *fd = p[0];
    return pid;
}

/*
 * Run the verifier in a child and adopt what it saw: the in-flight op's
 * outcome and the power states (a pending clean shutdown may have
 * completed, an interrupted start may have left a paused VM). Returns the
 * number of problems.
 */
static int verify_and_adopt(struct run *r)
{
    struct msg v, x, *powers = NULL;
    size_t npowers = 0, i;
    int p[2], st, bad;
    bool got_verdict = false;
    pid_t pid;
    ssize_t n;

    if (pipe2(p, O_CLOEXEC) < 0)
        return 1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        bad = verify(r->dir, r->m, &r->inflight, p[1]);
        fflush(stdout);
        _exit(bad > 100 ? 100 : bad);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return 1;
    }
    memset(&v, 0, sizeof(v));
    powers = calloc(MAX_SLOTS, sizeof(*powers));
    for (;;) {
        do
            n = read(p[0], &x, sizeof(x));
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof(x))
            break;
        if (x.type == 'V') {
            v = x;
            got_verdict = true;
        } else if (x.type == 'P' && powers && npowers < MAX_SLOTS) {
            powers[npowers++] = x;
        }
    }
    close(p[0]);
    st = wait_child(pid, 60000);
    if (st < 0 || !WIFEXITED(st)) {
        note("the verifier died (%s %d)",
             st >= 0 && WIFSIGNALED(st) ? "signal" : "status",
             st >= 0 && WIFSIGNALED(st) ? WTERMSIG(st) : st);
        free(powers);
        return 1;
    }
    bad = WEXITSTATUS(st);
    r->stat_inflight += r->inflight.kind != OP_NONE;
    r->cut_kind = r->inflight.kind;
    r->stat_applied += r->inflight.kind && got_verdict && v.arg == 1;
    if (got_verdict && v.arg == 1 && r->inflight.kind) {
        struct msg done = r->inflight;
        snprintf(done.uuid, sizeof(done.uuid), "%s", v.uuid);
        if (done.kind == OP_CREATE || done.kind == OP_CLONE)
            done.ref = v.ref;
        apply(r->m, &done);
    } else if (r->inflight.kind == OP_STOP && r->inflight.arg) {
        /* The guest was asked to shut down and may still do it. */
        r->m->s[r->inflight.slot].pending_stop = true;
    }
    if (r->inflight.kind)
        r->m->seq++;
    for (i = 0; i < npowers; i++) {
        struct slot *sl = &r->m->s[powers[i].slot];
        sl->power = (unsigned char)powers[i].arg;
        if (sl->power == XCP_VM_POWER_STATE_HALTED)
            sl->pending_stop = false;
    }
    free(powers);
    r->inflight.kind = OP_NONE;
    return bad;
}

/* Run a worker to completion (nops changes), no kill. */
static int run_to_end(struct run *r, uint64_t seed, long nops)
{
    char buf[sizeof(struct msg) * 64];
    size_t have = 0;
    int fd, st;
    pid_t pid = spawn_worker(r, seed, nops, &fd);

    if (pid < 0)
        return -1;
    while (drain(r, fd, buf, &have))
        ;
    close(fd);
    st = wait_child(pid, 120000);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || r->worker_failed) {
        note("the worker did not finish cleanly (status %d)", st);
        return -1;
    }
    return 0;
}

/* ---- scenario: random kills ---------------------------------------------- */

static int probe_open(const char *dir, char *err, size_t n);

enum trigger { TRIG_DELAY, TRIG_SNAP_OPEN, TRIG_SNAP_RENAME };

struct scen_stats {
    int kills_before_ready, torn_tails, acks;
    int snap_tmp_left, killed_before_truncate, rotations;
    int fails;
};

/*
 * Kill a worker at a moment chosen by trig (or after delay_ms), then check
 * the files and verify. Returns the number of problems.
 */
static int kill_once(struct run *r, uint64_t seed, int delay_ms,
                     enum trigger trig, struct scen_stats *ss)
{
    char buf[sizeof(struct msg) * 64];
    char path[PATH_MAX], evbuf[4096];
    size_t have = 0;
    int fd, inot = -1, st, bad = 0;
    int64_t deadline;
    bool killed = false;
    struct files before, after;
    uint64_t snap_ino;
    struct timespec tmp_mtime;
    struct stat sb;
    pid_t pid;

    path_in(path, sizeof(path), r->dir, "db.snap");
    snap_ino = stat(path, &sb) == 0 ? (uint64_t)sb.st_ino : 0;
    path_in(path, sizeof(path), r->dir, "db.snap.tmp");
    tmp_mtime = stat(path, &sb) == 0 ? sb.st_mtim : (struct timespec){0, 0};
    if (trig != TRIG_DELAY) {
        inot = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (inot >= 0 &&
            inotify_add_watch(inot, r->dir, trig == TRIG_SNAP_OPEN
                                                ? IN_OPEN | IN_CREATE
                                                : IN_MOVED_TO) < 0) {
            close(inot);
            inot = -1;
        }
    }
    r->worker_failed = false;
    r->stat_ready = 0;
    r->stat_ack = 0;
    pid = spawn_worker(r, seed, 0, &fd);
    if (pid < 0) {
        note("fork: %s", strerror(errno));
        return 1;
    }
    deadline = now_ms() + delay_ms;
    while (!killed) {
        struct pollfd pf[2] = {{fd, POLLIN, 0}, {inot, POLLIN, 0}};
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        if (poll(pf, inot >= 0 ? 2 : 1, (int)left) < 0 && errno != EINTR)
            break;
        if (inot >= 0 && (pf[1].revents & POLLIN)) {
            ssize_t n = read(inot, evbuf, sizeof(evbuf));
            ssize_t off = 0;
            while (n > 0 && off < n) {
                struct inotify_event *ev = (void *)(evbuf + off);
                const char *want = trig == TRIG_SNAP_OPEN ? "db.snap.tmp"
                                                          : "db.snap";
                if (ev->len && !strcmp(ev->name, want)) {
                    kill(pid, SIGKILL);
                    killed = true;
                    break;
                }
                off += (ssize_t)sizeof(*ev) + ev->len;
            }
        }
        if ((pf[0].revents & (POLLIN | POLLHUP)) && !drain(r, fd, buf, &have))
            break; /* the worker exited on its own: an error */
    }
    kill(pid, SIGKILL);
    while (drain(r, fd, buf, &have))
        ;
    close(fd);
    if (inot >= 0)
        close(inot);
    st = wait_child(pid, 10000);
    if (r->worker_failed ||
        !(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
        note("the worker stopped by itself (status %d) before the kill", st);
        bad++;
    }
    ss->acks += r->stat_ack;
    ss->kills_before_ready += !r->stat_ready;

    /* The files as the crash left them. */
    bad += check_files(r->dir, &before);
    ss->torn_tails += before.jgood < before.jlen;
    path_in(path, sizeof(path), r->dir, "db.snap.tmp");
    ss->snap_tmp_left += trig == TRIG_SNAP_OPEN && stat(path, &sb) == 0 &&
                         (sb.st_mtim.tv_sec != tmp_mtime.tv_sec ||
                          sb.st_mtim.tv_nsec != tmp_mtime.tv_nsec);
    ss->killed_before_truncate += trig == TRIG_SNAP_RENAME && before.snap &&
                                  before.jfirst &&
                                  before.jfirst <= before.snapgen;
    path_in(path, sizeof(path), r->dir, "db.snap");
    ss->rotations += stat(path, &sb) == 0 &&
                     (uint64_t)sb.st_ino != snap_ino;

    bad += verify_and_adopt(r);

    /* Recovery kept every complete line and removed the torn tail (unless
     * a rotation during the open emptied the journal). */
    bad += check_files(r->dir, &after);
    if (after.jgood != after.jlen) {
        note("after recovery, db.journal still ends in a partial line");
        bad++;
    }
    if (after.snaplen == before.snaplen && after.snapgen == before.snapgen &&
        (after.jlen < before.jgood ||
         memcmp(after.jdata, before.jdata, before.jgood))) {
        note("recovery changed or dropped complete journal lines "
             "(%zu good bytes before, %zu after)", before.jgood, after.jlen);
        bad++;
    }
    files_free(&before);
    files_free(&after);
    return bad;
}

static char *make_dir(const char *tag)
{
    char *d;

    if (asprintf(&d, "%s/xcp-crash-%s-XXXXXX", tmpdir, tag) < 0)
        return NULL;
    if (!mkdtemp(d)) {
        free(d);
        return NULL;
    }
    return d;
}

static bool strict(void)
{
    const char *k = getenv("XCP_CRASH_STRICT");

    return k && *k == '1';
}

static bool keep_dirs(void)
{
    const char *k = getenv("XCP_CRASH_KEEP");

    return k && *k == '1';
}

static void scenario_kill(const char *name, int iterations, size_t pad,
                          int reset_every)
{
    static struct model m;
    struct scen_stats ss;
    struct run r;
    char *dir = NULL;
    int64_t t0 = now_ms();
    int i;

    memset(&ss, 0, sizeof(ss));
    memset(&r, 0, sizeof(r));
    for (i = 0; i < iterations; i++) {
        enum trigger trig = TRIG_DELAY;
        int delay, bad;
        if (!dir || (reset_every && i % reset_every == 0)) {
            if (dir && !keep_dirs())
                rm_tree(dir);
            free(dir);
            if (!(dir = make_dir(name))) {
                fail("%s: cannot make a state dir: %s", name, strerror(errno));
                return;
            }
            memset(&m, 0, sizeof(m));
            m.pad = pad;
            r.dir = dir;
            r.m = &m;
            /* A kill during first boot leaves a dir that never opens
             * again (a known bug, see the damage case "first boot cut
             * short"): unless strict, let first boot finish unharmed. */
            if (!strict()) {
                char err[512];
                if (probe_open(dir, err, sizeof(err)) != 0)
                    fail("%s: first open of %s: %s", name, dir, err);
            }
        }
        if (pad) {
            /* Rotation: a third each of random, at the snapshot's open
             * and at its rename; those wait longer for the snapshot. */
            trig = (enum trigger)(i % 3);
            delay = trig == TRIG_DELAY ? 20 + (int)rnd_below(400) : 3000;
        } else {
            delay = (int)rnd_below(200);
        }
        bad = kill_once(&r, rnd(), delay, trig, &ss);
        if (bad) {
            ss.fails++;
            fail("%s: iteration %d (kill %s after %d ms, %d acks, in flight: "
                 "%s, dir %s): %d problem(s)", name, i + 1,
                 trig == TRIG_DELAY ? "at random"
                 : trig == TRIG_SNAP_OPEN ? "on db.snap.tmp open"
                                          : "on db.snap rename",
                 delay, r.stat_ack, kind_name(r.cut_kind), dir, bad);
            /* Once the model and the database differ, later runs only
             * repeat it: start again from an empty dir, keeping this one
             * to look at. */
            free(dir);
            dir = NULL;
        }
    }
    if (ss.fails == 0)
        pass("%s: %d kills, %d acknowledged changes survived; %d calls cut "
             "by the kill, %d of them took effect; %d torn tails; %d kills "
             "before the engine was up (%.1f s)", name, iterations, ss.acks,
             r.stat_inflight, r.stat_applied, ss.torn_tails,
             ss.kills_before_ready, (double)(now_ms() - t0) / 1000);
    if (pad) {
        printf("    %s: %d snapshot rotations, %d kills left db.snap.tmp "
               "behind, %d landed between rename and journal truncation\n",
               name, ss.rotations, ss.snap_tmp_left,
               ss.killed_before_truncate);
        if (ss.rotations == 0)
            fail("%s: no snapshot rotation happened: the path was not tested",
                 name);
        else
            pass("%s: snapshot rotation exercised", name);
    }
    if (dir && !keep_dirs())
        rm_tree(dir);
    free(dir);
}

/* ---- scenario: damage ---------------------------------------------------- */

/* Ask a child to open dir: 0 when it opens; 1 with the error text. */
static int probe_open(const char *dir, char *err, size_t n)
{
    int p[2], st;
    pid_t pid;
    ssize_t got;

    err[0] = '\0';
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    if ((pid = fork()) == 0) {
        xcp_session *s;
        char e[512] = "";
        int rc = open_session(&s, dir);
        close(p[0]);
        if (rc < 0)
            error_text(e, sizeof(e), "open");
        else
            xcp_session_close(s);
        if (write(p[1], e, strlen(e)) < 0)
            _exit(3);
        _exit(rc < 0 ? 1 : 0);
    }
    close(p[1]);
    got = read(p[0], err, n - 1);
    err[got > 0 ? got : 0] = '\0';
    close(p[0]);
    st = wait_child(pid, 60000);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A state dir after clean worker runs: the model before and after the last
 * change, which is a name_label change and the journal's last line. */
struct base {
    char *dir;
    struct model prev, m;
    struct msg last;   /* the last change */
    char *journal;     /* the files as left */
    size_t jlen;
    struct files f;
};

static struct base base_snap, base_plain, base_fresh;

/* with_snapshot: big counter values first, until a rotation happens,
 * then small changes after it (so both files matter). */
static int make_base(struct base *b, bool with_snapshot)
{
    char path[PATH_MAX];
    struct stat st;
    struct run r;
    int round, i;

    memset(&r, 0, sizeof(r));
    if (!with_snapshot && b == &base_fresh) {
        /* Only first boot: no VMs. */
        char err[512];
        if (!(b->dir = make_dir("damage-fresh")) ||
            probe_open(b->dir, err, sizeof(err)) != 0)
            return -1;
        path_in(path, sizeof(path), b->dir, "db.journal");
        b->journal = read_all(path, &b->jlen);
        return check_files(b->dir, &b->f) ? -1 : 0;
    }
    if (!(b->dir = make_dir(with_snapshot ? "damage-snap" : "damage")))
        return -1;
    r.dir = b->dir;
    r.m = &b->m;
    if (with_snapshot) {
        b->m.pad = 32768;
        path_in(path, sizeof(path), b->dir, "db.snap");
        for (round = 0; round < 20 && stat(path, &st) < 0; round++)
            if (run_to_end(&r, 1000 + (uint64_t)round, 100) < 0)
                return -1;
        if (stat(path, &st) < 0) {
            note("no snapshot after %d rounds", round);
            return -1;
        }
        b->m.pad = 0;
    }
    if (run_to_end(&r, 77, 60) < 0)
        return -1;
    b->prev = b->m;
    if (run_to_end(&r, 78, 1) < 0)
        return -1;
    for (i = 0; i < MAX_SLOTS; i++)
        if (strcmp(b->prev.s[i].label, b->m.s[i].label))
            break;
    b->last.type = 'I';
    b->last.kind = OP_LABEL;
    b->last.slot = i;
    snprintf(b->last.label, sizeof(b->last.label), "%s", b->m.s[i].label);
    b->prev.seq = b->m.seq;
    path_in(path, sizeof(path), b->dir, "db.journal");
    b->journal = read_all(path, &b->jlen);
    if (i == MAX_SLOTS || check_files(b->dir, &b->f) || !b->f.jlines ||
        !strstr(b->journal + b->f.last_line, "name_label 'final-")) {
        note("the base state is not as expected");
        return -1;
    }
    return 0;
}

static void base_free(struct base *b)
{
    if (b->dir && !keep_dirs())
        rm_tree(b->dir);
    free(b->dir);
    free(b->journal);
    files_free(&b->f);
    memset(b, 0, sizeof(*b));
}

/* Copy a base's state dir (its files are only ever read here). */
static int copy_tree(const char *from, const char *to);

static int copy_one(const char *from, const char *to, const char *name)
{
    char a[PATH_MAX], b[PATH_MAX];
    struct stat st;
    size_t len;
    char *data;
    int rc;

    path_in(a, sizeof(a), from, name);
    path_in(b, sizeof(b), to, name);
    if (lstat(a, &st) < 0)
        return -1;
    if (S_ISDIR(st.st_mode))
        return mkdir(b, 0700) < 0 ? -1 : copy_tree(a, b);
    if (!S_ISREG(st.st_mode))
        return 0;
    if (!(data = read_all(a, &len)))
        return -1;
    rc = write_file(b, data, len);
    free(data);
    return rc;
}

static int copy_tree(const char *from, const char *to)
{
    DIR *d = opendir(from);
    struct dirent *e;
    int rc = 0;

    if (!d)
        return -1;
    while (rc == 0 && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            rc = copy_one(from, to, e->d_name);
    closedir(d);
    return rc;
}

/* ---- the damage done (on a copy of the base dir) ---- */

struct dmg {
    const char *dir;
    const struct base *b;
};

static char *load(const struct dmg *d, const char *name, size_t *len)
{
    char path[PATH_MAX];

    path_in(path, sizeof(path), d->dir, name);
    return read_all(path, len);
}

static void store(const struct dmg *d, const char *name, const char *data,
                  size_t len)
{
    char path[PATH_MAX];

    path_in(path, sizeof(path), d->dir, name);
    write_file(path, data, len);
}

/* Offset of the middle of line number `which` (0-based) of a buffer, or
 * of the last line for which < 0. */
static size_t line_middle(const char *s, size_t len, long which)
{
    size_t start = 0, off, n = 0, last = 0, lastend = len;

    for (off = 0; off < len; off++) {
        if (s[off] != '\n')
            continue;
        if ((long)n == which)
            return start + (off - start) / 2;
        last = start;
        lastend = off;
        start = off + 1;
        n++;
    }
    return last + (lastend - last) / 2;
}

static void flip(char *s, size_t off)
{
    s[off] = s[off] == 'x' ? 'y' : 'x';
}

static void j_cut_mid_last(const struct dmg *d)
{
    size_t len;
    char *j = load(d, "db.journal", &len);

    if (!j || len < 2) {
        free(j);
        return;
    }
    store(d, "db.journal", j, line_middle(j, len, -1));
    free(j);
}

static void j_flip_last_body(const struct dmg *d)
{
    size_t len;
    char *j = load(d, "db.journal", &len);

    if (!j || len < 2) {
        free(j);
        return;
    }
    flip(j, line_middle(j, len, -1));
    store(d, "db.journal", j, len);
    free(j);
}

static void j_flip_last_crc(const struct dmg *d)
{
    size_t len;
    char *j = load(d, "db.journal", &len);

    if (!j || len < 2) {
        free(j);
        return;
    }
    j[d->b->f.last_line + 3] = j[d->b->f.last_line + 3] == '0' ? '1' : '0';
    store(d, "db.journal", j, len);
    free(j);
}

static void j_drop_last_newline(const struct dmg *d)
{
    size_t len;
    char *j = load(d, "db.journal", &len);

    if (!j || len < 2) {
        free(j);
        return;
    }
    store(d, "db.journal", j, len - 1);
    free(j);
}

static void j_garbage_tail(const struct dmg *d)
{
    static const char junk[] = "0000zz\0\0\0\xff garbage";
    size_t len;
    char *j = load(d, "db.journal", &len), *k = malloc(len + sizeof(junk));

    if (!j || !k) {
        free(j);
        free(k);
        return;
    }
    memcpy(k, j, len);
    memcpy(k + len, junk, sizeof(junk));
    store(d, "db.journal", k, len + sizeof(junk));
    free(j);
    free(k);
}

static void j_flip_middle_line(const struct dmg *d)
{
    size_t len;
    char *j = load(d, "db.journal", &len);

    if (!j || len < 2) {
        free(j);
        return;
    }
    flip(j, line_middle(j, len, (long)d->b->f.jlines / 2));
    store(d, "db.journal", j, len);
    free(j);
}

static void s_flip_line(const struct dmg *d)
{
    size_t len;
    char *s = load(d, "db.snap", &len);

    if (!s || len < 16) {
        free(s);
        return;
    }
    flip(s, line_middle(s, len, 5));
    store(d, "db.snap", s, len);
    free(s);
}

static void s_truncate_half(const struct dmg *d)
{
    size_t len;
    char *s = load(d, "db.snap", &len);

    if (!s || len < 16) {
        free(s);
        return;
    }
    store(d, "db.snap", s, len / 2);
    free(s);
}

static void s_drop_trailer(const struct dmg *d)
{
    size_t len;
    char *s = load(d, "db.snap", &len), *e;

    e = s + len - 2;
    while (e > s && *e != '\n')
        e--;
    store(d, "db.snap", s, (size_t)(e - s) + 1);
    free(s);
}

static void s_bad_magic(const struct dmg *d)
{
    size_t len;
    char *s = load(d, "db.snap", &len);

    if (!s || len < 16) {
        free(s);
        return;
    }
    s[15] = '9'; /* "XCPDB 9" */
    store(d, "db.snap", s, len);
    free(s);
}

static void s_empty(const struct dmg *d)
{
    store(d, "db.snap", "", 0);
}

/* The header's generation made larger (its CRC left as it was). */
static void s_header_gen(const struct dmg *d)
{
    size_t len;
    char *s = load(d, "db.snap", &len), *nl = strchr(s, '\n'), *t;

    if (nl && asprintf(&t, "%.8s XCPDB 2 %" PRIu64 " 1%s", s,
                       d->b->f.snapgen + 1000000, nl) >= 0) {
        store(d, "db.snap", t, strlen(t));
        free(t);
    }
    free(s);
}

static void s_remove(const struct dmg *d)
{
    char path[PATH_MAX];

    path_in(path, sizeof(path), d->dir, "db.snap");
    unlink(path);
}

/* What a kill during first boot leaves: its objects (the SR directory)
 * made, its transaction not in the journal. */
static void j_empty(const struct dmg *d)
{
    store(d, "db.journal", "", 0);
}

static void s_stale_tmp(const struct dmg *d)
{
    static const char junk[] = "00000000 XCPDB 2 99999999 1\nhalf a snapsh";

    store(d, "db.snap.tmp", junk, sizeof(junk) - 1);
}

enum want {
    WANT_EARLIER,        /* opens, without the last change */
    WANT_EITHER,         /* opens, with or without it */
    WANT_INTACT,         /* opens, with everything */
    WANT_FAIL,           /* fails naming the file; files untouched */
    WANT_FAIL_OR_INTACT, /* either of the last two */
};

struct damage_case {
    const char *name;
    bool snapshot;    /* on base_snap, else base_plain */
    enum want want;
    const char *file; /* the file a failure must name */
    void (*hurt)(const struct dmg *d);
    /* A library bug this case shows, not yet fixed: its failure is
     * reported as XFAIL and does not fail the run (XCP_CRASH_STRICT=1
     * counts it); a pass is XPASS and fails, so the mark is removed. */
    const char *known_bug;
    bool fresh;       /* on base_fresh (first boot only) instead */
};

static const struct damage_case damage_cases[] = {
    {"journal cut in the middle of the last line", false, WANT_EARLIER,
     NULL, j_cut_mid_last},
    {"journal: byte flipped in the last line", false, WANT_EARLIER, NULL,
     j_flip_last_body},
    {"journal: last line's CRC damaged", false, WANT_EARLIER, NULL,
     j_flip_last_crc},
    {"journal: last newline missing", false, WANT_EITHER, NULL,
     j_drop_last_newline},
    {"journal: garbage after the last line", false, WANT_INTACT, NULL,
     j_garbage_tail},
    {"journal tail cut, after a snapshot", true, WANT_EARLIER, NULL,
     j_cut_mid_last},
    {"journal: byte flipped in a middle line", false, WANT_FAIL,
     "db.journal", j_flip_middle_line},
    {"snapshot: byte flipped in a line", true, WANT_FAIL, "db.snap",
     s_flip_line},
    {"snapshot truncated to half", true, WANT_FAIL, "db.snap",
     s_truncate_half},
    {"snapshot without its trailer", true, WANT_FAIL, "db.snap",
     s_drop_trailer},
    {"snapshot with a bad magic", true, WANT_FAIL, "db.snap", s_bad_magic},
    {"snapshot empty", true, WANT_FAIL, "db.snap", s_empty},
    {"snapshot header generation damaged", true, WANT_FAIL, "db.snap",
     s_header_gen},
    {"snapshot missing, journal after it", true, WANT_FAIL, "db.snap",
     s_remove},
    {"stale db.snap.tmp left by a crash", true, WANT_INTACT, NULL,
     s_stale_tmp},
    {"first boot cut short (SR made, journal empty)", false, WANT_INTACT,
     NULL, j_empty, NULL, true},
};

static bool same_file(const char *dir, const char *name, const char *data,
                      size_t len)
{
    char path[PATH_MAX];
    size_t n;
    char *now;
    bool same;

    path_in(path, sizeof(path), dir, name);
    now = read_all(path, &n);
    same = (!now && !data) ||
           (now && data && n == len && !memcmp(now, data, n));
    free(now);
    return same;
}

/* Verify dir against a model; returns the number of problems. */
static int verify_model(const char *dir, const struct model *m,
                        const struct msg *in)
{
    struct model copy = *m;
    struct run r;

    memset(&r, 0, sizeof(r));
    r.dir = dir;
    r.m = &copy;
    if (in)
        r.inflight = *in;
    return verify_and_adopt(&r);
}

static void damage_one(const struct damage_case *c)
{
    const struct base *b = c->fresh      ? &base_fresh
                           : c->snapshot ? &base_snap
                                         : &base_plain;
    char err[512], *dir, *j0, *s0;
    size_t jl0, sl0;
    struct dmg d;
    int bad = 0, rc, crashes = ncrashes;

    if (!b->dir) {
        fail("damage: %s: no base state", c->name);
        return;
    }
    if (!(dir = make_dir("case")) || copy_tree(b->dir, dir) < 0) {
        fail("damage: %s: cannot copy the base state", c->name);
        free(dir);
        return;
    }
    d.dir = dir;
    d.b = b;
    c->hurt(&d);
    j0 = load(&d, "db.journal", &jl0);
    s0 = load(&d, "db.snap", &sl0);
    rc = probe_open(dir, err, sizeof(err));
    switch (c->want) {
    case WANT_EARLIER:
        bad = rc ? (note("open failed: %s", err), 1)
                 : verify_model(dir, &b->prev, NULL);
        break;
    case WANT_EITHER:
        bad = rc ? (note("open failed: %s", err), 1)
                 : verify_model(dir, &b->prev, &b->last);
        break;
    case WANT_INTACT:
        bad = rc ? (note("open failed: %s", err), 1)
                 : verify_model(dir, &b->m, NULL);
        break;
    case WANT_FAIL:
    case WANT_FAIL_OR_INTACT:
        if (rc == 0 && c->want == WANT_FAIL) {
            note("the engine opened a damaged %s", c->file);
            bad = 1 + verify_model(dir, &b->m, NULL);
        } else if (rc == 0) {
            bad = verify_model(dir, &b->m, NULL);
            if (bad)
                note("the engine opened the damaged %s and lost "
                     "acknowledged changes (see above)", c->file);
        } else {
            if (!strstr(err, c->file)) {
                note("the error does not name %s: %s", c->file, err);
                bad++;
            }
            if (!same_file(dir, "db.journal", j0, jl0) ||
                !same_file(dir, "db.snap", s0, sl0)) {
                note("the failed open modified the files");
                bad++;
            }
        }
        break;
    }
    if (ncrashes != crashes) {
        /* Never an expected failure: the engine must not crash. */
        fail("damage: %s: the engine crashed (dir %s)", c->name, dir);
        bad = 1;
    } else if (bad && c->known_bug && !strict()) {
        nxfail++;
        printf("XFAIL: damage: %s: known library bug: %s\n", c->name,
               c->known_bug);
    } else if (bad) {
        fail("damage: %s (dir %s)", c->name, dir);
    } else if (c->known_bug && !strict()) {
        fail("damage: %s: XPASS, the known bug is fixed: remove its mark",
             c->name);
    } else if (rc)
        pass("damage: %s: open fails: %s", c->name, err);
    else
        pass("damage: %s", c->name);
    if (!keep_dirs() && (!bad || (c->known_bug && !strict())))
        rm_tree(dir);
    free(dir);
    free(j0);
    free(s0);
}

static void scenario_damage(void)
{
    size_t i;

    if (make_base(&base_plain, false) < 0) {
        fail("damage: cannot build the base state");
        base_free(&base_plain);
    }
    if (make_base(&base_snap, true) < 0) {
        fail("damage: cannot build the base state with a snapshot");
        base_free(&base_snap);
    }
    if (make_base(&base_fresh, false) < 0) {
        fail("damage: cannot build the first-boot state");
        base_free(&base_fresh);
    }
    for (i = 0; i < sizeof(damage_cases) / sizeof(damage_cases[0]); i++)
        damage_one(&damage_cases[i]);
    base_free(&base_plain);
    base_free(&base_snap);
    base_free(&base_fresh);
}

/* ---- scenario: storage --------------------------------------------------- */

/*
 * Files and records.  A worker loops over the calls that make and delete
 * images on one VM (snapshot and uninstall, suspend, resume,
 * hard_shutdown from Suspended, VDI.create and destroy) until killed at a
 * random moment.  A fresh process then opens the directory (which
 * collects what the kill left), reads every VDI record and closes; then
 * the SR directories are compared with the records: each record's image
 * exists (else: dangling), each image is owned (a record's, or a hidden
 * parent another image is backed by; else: unowned, as is a temporary
 * file), and a Suspended VM's suspend image is a live record.
 */

#define GC_VM "crash-storage"
#define GC_TEMPLATE "Debian Bookworm 12"

static void uninstall_snapshot(xcp_session *s, xcp_vm snap)
{
    xcp_vbd_set vbds = {0, NULL};
    xcp_vdi vdis[8];
    size_t i, n = 0;

    if (xcp_vm_get_VBDs(s, &vbds, snap) == 0)
        for (i = 0; i < vbds.n && n < 8; i++)
            if (xcp_vbd_get_VDI(s, &vdis[n], vbds.items[i]) == 0 &&
                strcmp(vdis[n].ref, "OpaqueRef:NULL") != 0)
                n++;
    xcp_vbd_set_dispose(&vbds);
    if (xcp_vm_destroy(s, snap) < 0)
        return;
    for (i = 0; i < n; i++)
        xcp_vdi_destroy(s, vdis[i]);
}

/* The worker's VM, made on first use, without snapshots left over. */
static int storage_vm(xcp_session *s, xcp_vm *vm)
{
    xcp_vm_set set = {0, NULL};
    size_t i;
    int rc;

    if ((rc = xcp_vm_get_by_name_label(s, &set, GC_VM)) < 0)
        return rc;
    for (i = 0; i < set.n; i++) {
        bool snap = false, tpl = false;
        xcp_vm_get_is_a_snapshot(s, &snap, set.items[i]);
        xcp_vm_get_is_a_template(s, &tpl, set.items[i]);
        if (snap)
            uninstall_snapshot(s, set.items[i]);
        else if (!tpl)
            *vm = set.items[i], rc = 1;
    }
    xcp_vm_set_dispose(&set);
    if (rc == 1)
        return 0;
    if ((rc = xcp_vm_get_by_name_label(s, &set, GC_TEMPLATE)) < 0)
        return rc;
    rc = set.n ? xcp_vm_clone(s, vm, set.items[0], GC_VM) : -1;
    xcp_vm_set_dispose(&set);
    return rc < 0 ? rc : xcp_vm_provision(s, *vm);
}

static void storage_step(xcp_session *s, xcp_vm vm, xcp_sr sr)
{
    enum xcp_vm_power_state ps;
    xcp_vm snap;
    xcp_vdi vdi;
    xcp_vdi_record r;
    unsigned pick = rnd_below(4);

    if (xcp_vm_get_power_state(s, &ps, vm) < 0)
        return;
    if (pick == 0) {
        if (xcp_vm_snapshot(s, &snap, vm, "crash-snap", NULL) == 0)
            uninstall_snapshot(s, snap);
        return;
    }
    if (pick == 1) {
        xcp_vdi_record_init(&r);
        r.SR = sr;
        r.virtual_size = 1 << 20;
        r.type = XCP_VDI_TYPE_USER;
        r.name_label = "crash-scratch";
        if (xcp_vdi_create(s, &vdi, &r) == 0)
            xcp_vdi_destroy(s, vdi);
        return;
    }
    switch (ps) {
    case XCP_VM_POWER_STATE_HALTED:
        xcp_vm_start(s, vm, false, false);
        break;
    case XCP_VM_POWER_STATE_RUNNING:
        if (pick == 2)
            xcp_vm_suspend(s, vm);
        else
            xcp_vm_hard_shutdown(s, vm);
        break;
    case XCP_VM_POWER_STATE_SUSPENDED:
        if (pick == 2)
            xcp_vm_resume(s, vm, false, false);
        else
            xcp_vm_hard_shutdown(s, vm);
        break;
    default:
        xcp_vm_hard_shutdown(s, vm);
        break;
    }
}

static void storage_worker(const char *dir, int fd, uint64_t seed)
{
    xcp_session *s;
    xcp_pool_set pools = {0, NULL};
    xcp_sr sr;
    xcp_vm vm;

    rng_state = seed | 1;
    if (open_session(&s, dir) < 0 || storage_vm(s, &vm) < 0 ||
        xcp_pool_get_all(s, &pools) < 0 || pools.n < 1 ||
        xcp_pool_get_default_SR(s, &sr, pools.items[0]) < 0)
        _exit(2);
    if (write(fd, "r", 1) != 1)
        _exit(2);
    for (;;)
        storage_step(s, vm, sr);
}

struct storage_check {
    int records, images, dangling, unowned, tmp, bad_suspend, open_failed;
    int resumed;
};

/* The parent an image names (a qcow2 backing file, a VHD parent
 * locator), "" if none or unreadable: through the image library. */
static void image_parent(const char *path, char *out, size_t n)
{
    const char *dot = strrchr(path, '.');
    xcp__image *im = NULL;
    xcp__image_info info;
    char err[256];

    out[0] = '\0';
    if (dot && xcp__image_open(&im, path, dot + 1, XCP__IMAGE_RDONLY |
                               XCP__IMAGE_NO_PARENT, err, sizeof(err)) == 0 &&
        xcp__image_get_info(im, &info, err, sizeof(err)) == 0)
        snprintf(out, n, "%.255s", info.parent);
    xcp__image_close(im);
}

static bool is_image_name(const char *name)
{
    size_t len = strlen(name);

    return len == 36 + 6 ? !strcmp(name + 36, ".qcow2")
           : len == 36 + 4 ? !strcmp(name + 36, ".raw") ||
                                 !strcmp(name + 36, ".vhd")
                           : false;
}

struct names {
    char (*v)[64];
    size_t n;
};

static bool names_has(const struct names *l, const char *s)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return true;
    return false;
}

static void names_add(struct names *l, const char *s)
{
    l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
    snprintf(l->v[l->n++], sizeof(*l->v), "%.63s", s);
}

/* Compare one SR directory with the records' locations. */
static void check_sr_dir(const char *dir, const struct names *records,
                         struct names *seen, struct storage_check *c)
{
    struct names imgs = {NULL, 0}, backing = {NULL, 0};
    char path[PATH_MAX + 512], meta[PATH_MAX + 512], mname[64], b[256];
    char *text;
    struct dirent *de;
    size_t i, len;
    DIR *d = opendir(dir);

    if (!d)
        return;
    while ((de = readdir(d))) {
        if (!strncmp(de->d_name, ".xcp-tmp-", 9)) {
            note("storage: temporary file %s/%s left", dir, de->d_name);
            c->tmp++;
        }
        if (!is_image_name(de->d_name))
            continue;
        names_add(&imgs, de->d_name);
        names_add(seen, de->d_name);
        path_in(path, sizeof(path), dir, de->d_name);
        image_parent(path, b, sizeof(b));
        if (b[0])
            names_add(&backing, b);
    }
    closedir(d);
    for (i = 0; i < imgs.n; i++) {
        bool hidden;
        snprintf(mname, sizeof(mname), "%.36s.meta", imgs.v[i]);
        path_in(meta, sizeof(meta), dir, mname);
        text = read_all(meta, &len);
        hidden = text && strstr(text, "hidden=1");
        free(text);
        c->images++;
        if (hidden ? names_has(&backing, imgs.v[i])
                   : names_has(records, imgs.v[i]))
            continue;
        note("storage: %s/%s is unowned (%s, no %s)", dir, imgs.v[i],
             hidden ? "hidden" : "visible",
             hidden ? "image backed by it" : "VDI record");
        c->unowned++;
    }
    free(imgs.v);
    free(backing.v);
}

/* In a child: open (collecting leftovers), read the records, close, then
 * compare with the files. */
static void storage_check_child(const char *dir, int fd)
{
    struct storage_check c;
    struct names records = {NULL, 0}, seen = {NULL, 0};
    xcp_vdi_record_map all = {0, NULL, NULL};
    xcp_vm_set vms = {0, NULL};
    xcp_session *s;
    char path[PATH_MAX];
    struct dirent *de;
    size_t i;
    DIR *d;

    memset(&c, 0, sizeof(c));
    if (open_session(&s, dir) < 0 || xcp_vdi_get_all_records(s, &all) < 0 ||
        xcp_vm_get_by_name_label(s, &vms, GC_VM) < 0) {
        char e[512];
        error_text(e, sizeof(e), "open");
        note("storage: %s", e);
        c.open_failed = 1;
        goto out;
    }
    for (i = 0; i < all.n; i++)
        if (all.records[i].location && all.records[i].location[0])
            names_add(&records, all.records[i].location);
    c.records = (int)records.n;
    for (i = 0; i < vms.n; i++) {
        enum xcp_vm_power_state ps;
        xcp_vdi sv;
        xcp_vdi_record r;
        xcp_vdi_record_init(&r);
        if (xcp_vm_get_power_state(s, &ps, vms.items[i]) == 0 &&
            ps == XCP_VM_POWER_STATE_SUSPENDED &&
            (xcp_vm_get_suspend_VDI(s, &sv, vms.items[i]) < 0 ||
             xcp_vdi_get_record(s, &r, sv) < 0)) {
            note("storage: a Suspended VM has no suspend image record");
            c.bad_suspend++;
        }
        xcp_vdi_record_dispose(&r);
    }
    xcp_vm_set_dispose(&vms);
    xcp_vdi_record_map_dispose(&all);
    xcp_session_close(s); /* the collector's pending pass ends first */

    path_in(path, sizeof(path), dir, "sr");
    if ((d = opendir(path))) {
        while ((de = readdir(d))) {
            char sub[PATH_MAX + 256];
            if (de->d_name[0] == '.')
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
            check_sr_dir(sub, &records, &seen, &c);
        }
        closedir(d);
    }
    for (i = 0; i < records.n; i++)
        if (!names_has(&seen, records.v[i])) {
            note("storage: VDI record's image %s is missing", records.v[i]);
            c.dangling++;
        }
    /* A Suspended VM resumes (before: VDI_MISSING when the kill came
     * between the image's deletion and the commit). */
    if (open_session(&s, dir) == 0) {
        if (xcp_vm_get_by_name_label(s, &vms, GC_VM) == 0)
            for (i = 0; i < vms.n; i++) {
                enum xcp_vm_power_state ps;
                char e[512];
                if (xcp_vm_get_power_state(s, &ps, vms.items[i]) < 0 ||
                    ps != XCP_VM_POWER_STATE_SUSPENDED)
                    continue;
                c.resumed++;
                if (xcp_vm_resume(s, vms.items[i], false, false) == 0)
                    continue;
                error_text(e, sizeof(e), "VM.resume");
                note("storage: %s", e);
                c.bad_suspend++;
            }
        xcp_vm_set_dispose(&vms);
        xcp_session_close(s);
    } else {
        c.open_failed = 1;
    }
out:
    free(records.v);
    free(seen.v);
    if (write(fd, &c, sizeof(c)) != (ssize_t)sizeof(c))
        _exit(3);
    _exit(0);
}

static int storage_check(const char *dir, struct storage_check *c)
{
    int p[2];
    pid_t pid;

    memset(c, 0, sizeof(*c));
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    if ((pid = fork()) == 0) {
        close(p[0]);
        storage_check_child(dir, p[1]);
    }
    close(p[1]);
    if (pid < 0 || read(p[0], c, sizeof(*c)) != (ssize_t)sizeof(*c)) {
        close(p[0]);
        if (pid > 0)
            wait_child(pid, 60000);
        return -1;
    }
    close(p[0]);
    wait_child(pid, 60000);
    return 0;
}

static void scenario_storage(int iterations)
{
    struct storage_check c, sum;
    int64_t t0 = now_ms();
    char *dir = make_dir("storage");
    int i, kills = 0, bad_runs = 0, fd[2], st;
    char ready;
    pid_t pid;

    if (!dir) {
        fail("storage: cannot make a state dir: %s", strerror(errno));
        return;
    }
    memset(&sum, 0, sizeof(sum));
    for (i = 0; i < iterations; i++) {
        if (pipe2(fd, O_CLOEXEC) < 0)
            break;
        fflush(stdout);
        if ((pid = fork()) == 0) {
            close(fd[0]);
            storage_worker(dir, fd[1], rnd());
        }
        close(fd[1]);
        if (pid < 0 || read(fd[0], &ready, 1) != 1) {
            close(fd[0]);
            if (pid > 0)
                wait_child(pid, 10000);
            fail("storage: iteration %d: the worker did not start", i + 1);
            bad_runs++;
            continue;
        }
        sleep_ms(rnd_below(300));
        kill(pid, SIGKILL);
        close(fd[0]);
        st = wait_child(pid, 10000);
        kills += st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
        if (storage_check(dir, &c) < 0)
            c.open_failed = 1;
        if (c.dangling || c.unowned || c.tmp || c.bad_suspend ||
            c.open_failed) {
            bad_runs++;
            note("storage: iteration %d: %d dangling record(s), %d unowned "
                 "image(s), %d temporary file(s), %d bad suspend image(s)%s",
                 i + 1, c.dangling, c.unowned, c.tmp, c.bad_suspend,
                 c.open_failed ? ", open failed" : "");
        }
        sum.dangling += c.dangling;
        sum.unowned += c.unowned;
        sum.tmp += c.tmp;
        sum.bad_suspend += c.bad_suspend;
        sum.open_failed += c.open_failed;
        sum.resumed += c.resumed;
        sum.records = c.records;
        sum.images = c.images;
    }
    printf("    storage: %d kills in %d iterations: %d dangling record(s), "
           "%d unowned image(s), %d temporary file(s), %d of %d Suspended "
           "VM(s) without their image or failing to resume, %d failed "
           "open(s); at the end %d records, %d images (%.1f s)\n", kills,
           iterations, sum.dangling, sum.unowned, sum.tmp, sum.bad_suspend,
           sum.resumed, sum.open_failed, sum.records, sum.images,
           (double)(now_ms() - t0) / 1000);
    if (bad_runs)
        fail("storage: %d of %d iterations left records and files apart "
             "(dir %s)", bad_runs, iterations, dir);
    else
        pass("storage: after %d kills every VDI record has its image and "
             "every image its owner", kills);
    if (!bad_runs && !keep_dirs())
        rm_tree(dir);
    free(dir);
}

/* ---- scenario: disk ------------------------------------------------------ */

/*
 * Chains, records and data (issue 10, item 7).  A worker runs a table of
 * VDI operations (disk_ops below: create, snapshot, clone, resize offline
 * and online, copy within and across SRs, destroy, and guest writes of a
 * known 4 KiB pattern through a VDI stream of the engine) on VDIs of two
 * file SRs, the default one (qcow2) and one with
 * sm-config:image-format=vhd, and is killed at a random moment.  Over a pipe it announces each operation
 * (intent) and acknowledges it once the call has returned; the parent keeps
 * the model: which VDIs exist, their size, what each slot holds.
 *
 * After each kill a fresh process opens the directory (recovery) and
 * checks that:
 *   - every acknowledged VDI has its record, of its size, and no other
 *     VDI exists; the one call in flight may or may not have happened and
 *     its outcome is adopted (one new VDI, a VDI gone, the new size);
 *   - the records and the files agree: every record's image exists and has
 *     the record's virtual size, every image has an owner (a record, or a
 *     hidden parent of another image), no temporary file is left;
 *   - every image passes `qemu-img check` (qcow2; for vpc, which QEMU 7.2
 *     cannot check, `qemu-img info` must read it);
 *   - every acknowledged write reads back (qcow2: through QEMU, `qemu-img
 *     convert` of each VDI to raw; VHD: through our library, as QEMU's
 *     vpc driver has no differencing disks), the write in flight reading
 *     old or new.
 * A failed call (chain too long, online resize on a type without it) must
 * have changed nothing; an INTERNAL_ERROR fails the run.
 *
 * The online collector: "collect" destroys a snapshot (its parent, a
 * hidden node, is then left with one child) and closes the session,
 * which runs the collector's pending pass (coalesce, journal
 * xcp-gc.journal) to its end, then opens it again; kills land in the
 * pass, and recovery's open runs one more.
 * CBT: enable_cbt, disable_cbt, data_destroy of a tracked snapshot; the
 * writes and snapshots above then also land on tracked VDIs.  After
 * recovery, for every tracked VDI whose last acknowledged snapshot was
 * taken with tracking on, VDI.list_changed_blocks(snapshot, VDI) must
 * include the block of every write acknowledged since (CBT may
 * over-report, never under-report), unless tracking is visibly off
 * (cbt_enabled false), the documented crash outcome, which is counted.
 *
 * New operations (the online collector, CBT) are one row each in
 * disk_ops: a run function and the effect the checker expects.
 */

#define DISK_MAX 10               /* live VDIs kept at most */
#define DISK_SLOTS 16             /* 4 KiB blocks written, 256 KiB apart */
#define DISK_STRIDE (256u << 10)
#define DISK_BLOCK 4096u
#define DISK_SIZE (4ull << 20)    /* created size; resize adds 1 MiB */
#define DISK_SIZE_MAX (12ull << 20)
#define DISK_LABEL "crash-disk"
#define DISK_VHD_SR "crash-vhd"

enum disk_effect {
    DE_NEW,     /* a new VDI, with the data of its source (if any) */
    DE_CBT_ON,  /* tracking starts (a new epoch, linked to nothing) */
    DE_CBT_OFF, /* tracking stops */
    DE_META,    /* a tracked snapshot's data goes (type cbt_metadata) */
    DE_SIZE,    /* the VDI's virtual size changes */
    DE_GONE,    /* the VDI goes */
    DE_DATA,    /* one slot of the VDI gets a new value */
    DE_NONE,    /* nothing the checker sees (e.g. a collector pass) */
};

struct dvdi {
    bool live, ro;
    bool cbt;                     /* tracking on (acknowledged) */
    bool cbt_lost;                /* found off after a crash once */
    bool meta;                    /* cbt_metadata: no data to check */
    int8_t base;                  /* the snapshot that began the VDI's
                                   * epoch (taken tracked), -1: none */
    bool changed[DISK_SLOTS];     /* slots written since base */
    int sr;                       /* 0: the default SR, 1: the VHD SR */
    char uuid[UUID_MAX];
    uint64_t size;
    uint32_t data[DISK_SLOTS];    /* the seq each slot holds, 0: zeros */
};

/* A message from the worker: 'I' intent, 'A' acknowledged, 'F' failed. */
struct dmsg {
    char kind;
    int8_t op;
    int8_t vdi;                   /* the source or target slot, -1: none */
    int8_t sr;                    /* the SR of a new VDI */
    int8_t slot;                  /* DE_DATA: the slot written */
    uint32_t seq;                 /* DE_DATA: its new value */
    uint64_t size;                /* DE_SIZE: the new size */
    char uuid[UUID_MAX];          /* DE_NEW (ack): the new VDI's uuid */
    char error[64];               /* 'F': the error's name */
};

struct dmodel {
    struct dvdi v[DISK_MAX];
    uint32_t seq;                 /* last seq handed out */
};

struct dctx {
    xcp_session *s;
    const char *dir;
    xcp_sr sr[2];
    struct dmodel *m;
};

/* Which live VDI an operation takes. */
enum disk_pick {
    DP_ANY,
    DP_DATA,                      /* one with data (not cbt_metadata) */
    DP_WRITABLE,                  /* not a snapshot */
    DP_SNAP,                      /* a snapshot with data */
    DP_TRACKED_SNAP,              /* a tracked snapshot with data */
};

struct disk_op {
    const char *name;
    enum disk_effect effect;
    enum disk_pick pick;
    bool collects;                /* may ask for a collector pass */
    /* Make the call for msg (vdi, sr, size, slot, seq filled in); on
     * success fill msg->uuid for DE_NEW.  <0: failed, error set. */
    int (*run)(struct dctx *x, struct dmsg *msg);
};

static int disk_ref(struct dctx *x, int i, xcp_vdi *out)
{
    return xcp_vdi_get_by_uuid(x->s, out, x->m->v[i].uuid);
}

static int disk_new_uuid(struct dctx *x, xcp_vdi v, struct dmsg *msg)
{
    char *u = NULL;
    int rc = xcp_vdi_get_uuid(x->s, &u, v);

    if (rc == 0)
        snprintf(msg->uuid, sizeof(msg->uuid), "%s", u);
    xcp_free(u);
    return rc;
}

static int dop_create(struct dctx *x, struct dmsg *msg)
{
    xcp_vdi_record r;
    xcp_vdi v;

    xcp_vdi_record_init(&r);
    r.SR = x->sr[msg->sr];
    r.virtual_size = (int64_t)DISK_SIZE;
    r.type = XCP_VDI_TYPE_USER;
    r.name_label = DISK_LABEL;
    return xcp_vdi_create(x->s, &v, &r) < 0 ? -1 : disk_new_uuid(x, v, msg);
}

static int dop_cow(struct dctx *x, struct dmsg *msg, bool snapshot)
{
    xcp_vdi src, v;
    int rc;

    if (disk_ref(x, msg->vdi, &src) < 0)
        return -1;
    rc = snapshot ? xcp_vdi_snapshot(x->s, &v, src, NULL)
                  : xcp_vdi_clone(x->s, &v, src, NULL);
    return rc < 0 ? rc : disk_new_uuid(x, v, msg);
}

static int dop_snapshot(struct dctx *x, struct dmsg *msg)
{
    return dop_cow(x, msg, true);
}

static int dop_clone(struct dctx *x, struct dmsg *msg)
{
    return dop_cow(x, msg, false);
}

static int dop_copy(struct dctx *x, struct dmsg *msg)
{
    xcp_vdi src, v, none;
    int rc;

    snprintf(none.ref, sizeof(none.ref), "%s", XCP_NULL_REF);
    if (disk_ref(x, msg->vdi, &src) < 0)
        return -1;
    rc = xcp_vdi_copy(x->s, &v, src, x->sr[msg->sr], none, none);
    return rc < 0 ? rc : disk_new_uuid(x, v, msg);
}

static int dop_resize_any(struct dctx *x, struct dmsg *msg, bool online)
{
    xcp_vdi v;

    if (disk_ref(x, msg->vdi, &v) < 0)
        return -1;
    return online ? xcp_vdi_resize_online(x->s, v, (int64_t)msg->size)
                  : xcp_vdi_resize(x->s, v, (int64_t)msg->size);
}

static int dop_resize(struct dctx *x, struct dmsg *msg)
{
    return dop_resize_any(x, msg, false);
}

static int dop_resize_online(struct dctx *x, struct dmsg *msg)
{
    return dop_resize_any(x, msg, true);
}

static int dop_destroy(struct dctx *x, struct dmsg *msg)
{
    xcp_vdi v;

    return disk_ref(x, msg->vdi, &v) < 0 ? -1 : xcp_vdi_destroy(x->s, v);
}

/*
 * Run the collector pass a call may have asked for (an image deleted, a
 * failed call's image dropped) now: closing the session runs the pending
 * pass to its end, and the open after it one more, so that kills land in
 * passes often.  Background passes also run meanwhile, beside the guest
 * writes of dop_write (the engine's VDI streams, which they respect).
 */
static void disk_settle(struct dctx *x)
{
    xcp_session_close(x->s);
    x->s = NULL;
    if (open_session(&x->s, x->dir) < 0)
        _exit(2);
}

/* A collector pass with a hidden node to coalesce: a snapshot goes (its
 * parent is left with one child), then the pass runs (disk_settle, from
 * the worker's loop). */
static int dop_collect(struct dctx *x, struct dmsg *msg)
{
    xcp_vdi v;

    return disk_ref(x, msg->vdi, &v) < 0 ? -1 : xcp_vdi_destroy(x->s, v);
}

static int dop_cbt(struct dctx *x, struct dmsg *msg, bool on)
{
    xcp_vdi v;

    if (disk_ref(x, msg->vdi, &v) < 0)
        return -1;
    return on ? xcp_vdi_enable_cbt(x->s, v) : xcp_vdi_disable_cbt(x->s, v);
}

static int dop_enable_cbt(struct dctx *x, struct dmsg *msg)
{
    return dop_cbt(x, msg, true);
}

static int dop_disable_cbt(struct dctx *x, struct dmsg *msg)
{
    return dop_cbt(x, msg, false);
}

static int dop_data_destroy(struct dctx *x, struct dmsg *msg)
{
    xcp_vdi v;

    return disk_ref(x, msg->vdi, &v) < 0 ? -1
                                         : xcp_vdi_data_destroy(x->s, v);
}

/* The 4 KiB block that says slot holds seq (all zeros for seq 0). */
static void disk_block(uint8_t *b, uint32_t seq, int slot)
{
    uint32_t w[DISK_BLOCK / 4];
    size_t i;

    for (i = 0; i < DISK_BLOCK / 4; i++)
        w[i] = seq ? seq ^ (uint32_t)(i * 0x9e3779b9u) ^ (uint32_t)slot : 0;
    memcpy(b, w, sizeof(w));
}

/* The directory of an SR: its PBD's device_config:location, else the
 * state directory's default. */
static void disk_sr_dir(xcp_session *s, const char *dir, xcp_sr sr,
                        char *out, size_t n)
{
    xcp_pbd_set pbds = {0, NULL};
    xcp_string_map dc = {0, NULL};
    char *uuid = NULL;
    size_t i;

    out[0] = '\0';
    if (xcp_sr_get_PBDs(s, &pbds, sr) == 0 && pbds.n &&
        xcp_pbd_get_device_config(s, &dc, pbds.items[0]) == 0)
        for (i = 0; i < dc.n; i++)
            if (!strcmp(dc.items[i].key, "location"))
                snprintf(out, n, "%s", dc.items[i].value);
    if (!out[0] && xcp_sr_get_uuid(s, &uuid, sr) == 0)
        snprintf(out, n, "%s/sr/%s", dir, uuid);
    xcp_free(uuid);
    xcp_string_map_dispose(&dc);
    xcp_pbd_set_dispose(&pbds);
}

/* The format named by a file SR location ("<uuid>.<format>"). */
static const char *disk_format(const char *location)
{
    const char *dot = strrchr(location, '.');

    return dot ? dot + 1 : "";
}

/* A guest write's VDI stream, opened in an engine transaction. */
struct disk_stream {
    const char *uuid;
    xcp__vdi_stream *s;
};

static int disk_stream_open(xcp__ctx *c, void *arg)
{
    struct disk_stream *w = arg;
    xcp__obj *v = xcp__db_by_uuid(c->db, C(VDI), w->uuid);

    return v ? xcp__vdi_stream_open(c, v, "write", &w->s)
             : XCP__ERR_UUID_INVALID("VDI", w->uuid);
}

/*
 * A guest write: the block through a VDI stream of the engine (the path
 * of /import_raw_vdi, and of any writer the engine lets at a disk), acked
 * once the stream's close has flushed it.  The engine counts the stream,
 * so its collector leaves the leaf alone meanwhile, as it does a running
 * VM's disk; a writer behind the engine's back, which no guest is, could
 * see its image replaced under it.
 */
static int dop_write(struct dctx *x, struct dmsg *msg)
{
    xcp_open_options o = {XCP_OPEN_OPTIONS_VERSION};
    struct disk_stream w = {x->m->v[msg->vdi].uuid, NULL};
    uint8_t block[DISK_BLOCK];
    xcp__engine *e = NULL;
    char err[512];
    int rc;

    o.state_dir = x->dir;       /* the session's engine, shared */
    disk_block(block, msg->seq, msg->slot);
    rc = xcp__engine_get(&e, &o);
    if (rc == 0)
        rc = xcp__engine_txn(e, disk_stream_open, &w);
    if (rc == 0)
        rc = xcp__vdi_stream_write(w.s, (uint64_t)msg->slot * DISK_STRIDE,
                                   block, sizeof(block));
    if (w.s && xcp__vdi_stream_close(w.s) < 0 && rc == 0)
        rc = -1;
    if (e)
        xcp__engine_put(e);
    if (rc < 0) {
        /* Any failure of a write to a writable VDI is a bug (counted). */
        error_text(err, sizeof(err), "stream");
        snprintf(msg->error, sizeof(msg->error), "image write: %.50s", err);
        note("disk: write to VDI %s: %s", w.uuid, err);
    }
    return rc < 0 ? -1 : 0;
}

/*
 * The operations of the loop.  To add one (the online collector of
 * wt/gc, CBT of wt/cbt): a run function and its effect; DE_NONE for what
 * must leave every VDI's records, chain and data as they were.
 */
static const struct disk_op disk_ops[] = {
    {"create", DE_NEW, DP_ANY, false, dop_create},
    {"snapshot", DE_NEW, DP_DATA, false, dop_snapshot},
    {"snapshot", DE_NEW, DP_WRITABLE, false, dop_snapshot},
    {"clone", DE_NEW, DP_DATA, false, dop_clone},
    {"copy", DE_NEW, DP_DATA, false, dop_copy},
    {"resize", DE_SIZE, DP_WRITABLE, false, dop_resize},
    {"resize_online", DE_SIZE, DP_WRITABLE, false, dop_resize_online},
    {"destroy", DE_GONE, DP_ANY, true, dop_destroy},
    {"collect", DE_GONE, DP_SNAP, true, dop_collect},
    {"enable_cbt", DE_CBT_ON, DP_WRITABLE, false, dop_enable_cbt},
    {"enable_cbt", DE_CBT_ON, DP_WRITABLE, false, dop_enable_cbt},
    {"disable_cbt", DE_CBT_OFF, DP_WRITABLE, false, dop_disable_cbt},
    {"data_destroy", DE_META, DP_TRACKED_SNAP, true, dop_data_destroy},
    {"write", DE_DATA, DP_WRITABLE, false, dop_write},
    {"write", DE_DATA, DP_WRITABLE, false, dop_write},
    {"write", DE_DATA, DP_WRITABLE, false, dop_write},
    {"write", DE_DATA, DP_WRITABLE, false, dop_write},
};
#define DISK_NOPS ((int)(sizeof(disk_ops) / sizeof(disk_ops[0])))

static int disk_live(const struct dmodel *m)
{
    int i, n = 0;

    for (i = 0; i < DISK_MAX; i++)
        n += m->v[i].live;
    return n;
}

static bool disk_picks(const struct dvdi *v, enum disk_pick what)
{
    switch (what) {
    case DP_ANY:
        return v->live;
    case DP_DATA:
        return v->live && !v->meta;
    case DP_WRITABLE:
        return v->live && !v->ro;
    case DP_SNAP:
        return v->live && v->ro && !v->meta;
    case DP_TRACKED_SNAP:
        return v->live && v->ro && !v->meta && v->cbt;
    }
    return false;
}

static int disk_pick(const struct dmodel *m, enum disk_pick what)
{
    int i, n = 0, pick[DISK_MAX];

    for (i = 0; i < DISK_MAX; i++)
        if (disk_picks(&m->v[i], what))
            pick[n++] = i;
    return n ? pick[rnd_below((unsigned)n)] : -1;
}

static int disk_free_slot(const struct dmodel *m)
{
    int i;

    for (i = 0; i < DISK_MAX; i++)
        if (!m->v[i].live)
            return i;
    return -1;
}

/* Choose the next operation and its arguments; false: none fits. */
static bool disk_choose(struct dmodel *m, struct dmsg *msg)
{
    const struct disk_op *op;
    int live = disk_live(m);

    memset(msg, 0, sizeof(*msg));
    msg->op = (int8_t)rnd_below(DISK_NOPS);
    op = &disk_ops[msg->op];
    msg->vdi = -1;
    msg->sr = (int8_t)rnd_below(2);
    if (op->effect == DE_NEW && (live >= DISK_MAX - 1 ||
                                 (live >= 6 && rnd_below(2))))
        return false;
    if (op->effect == DE_GONE && live < 3)
        return false;
    if (op->run != dop_create &&
        (msg->vdi = (int8_t)disk_pick(m, op->pick)) < 0)
        return false;
    if (op->effect == DE_NEW && op->run != dop_create &&
        op->run != dop_copy)
        msg->sr = (int8_t)m->v[msg->vdi].sr;
    if (op->effect == DE_SIZE) {
        msg->size = m->v[msg->vdi].size + (1u << 20);
        if (msg->size > DISK_SIZE_MAX)
            return false;
    }
    if (op->effect == DE_DATA) {
        msg->slot = (int8_t)rnd_below(DISK_SLOTS);
        msg->seq = ++m->seq;
    }
    return true;
}

/* Tracking of v turned on (a new epoch, linked to nothing) or off. */
static void disk_set_cbt(struct dvdi *v, bool on)
{
    v->cbt = on;
    v->base = -1;
    memset(v->changed, 0, sizeof(v->changed));
}

/* Apply an acknowledged (or adopted) operation to the model. */
static void disk_apply(struct dmodel *m, const struct dmsg *msg)
{
    const struct disk_op *op = &disk_ops[msg->op];
    struct dvdi *v = msg->vdi >= 0 ? &m->v[msg->vdi] : NULL, *n;
    int i;

    switch (op->effect) {
    case DE_NEW:
        if ((i = disk_free_slot(m)) < 0)
            return;
        n = &m->v[i];
        memset(n, 0, sizeof(*n));
        if (v) {
            memcpy(n->data, v->data, sizeof(n->data));
            n->size = v->size;
        } else {
            n->size = DISK_SIZE;
        }
        n->live = true;
        n->ro = op->run == dop_snapshot;
        n->sr = msg->sr;
        n->base = -1;
        snprintf(n->uuid, sizeof(n->uuid), "%s", msg->uuid);
        /* A tracked VDI's snapshot takes its epoch; it starts another. */
        if (v && n->ro && v->cbt) {
            n->cbt = true;
            v->base = (int8_t)i;
            memset(v->changed, 0, sizeof(v->changed));
        }
        break;
    case DE_SIZE:
        v->size = msg->size;
        break;
    case DE_GONE:
        v->live = false;
        for (i = 0; i < DISK_MAX; i++)
            if (m->v[i].base == msg->vdi)
                m->v[i].base = -1;
        break;
    case DE_DATA:
        v->data[msg->slot] = msg->seq;
        v->changed[msg->slot] = true;
        if (msg->seq > m->seq)
            m->seq = msg->seq;
        break;
    case DE_CBT_ON:
    case DE_CBT_OFF:
        disk_set_cbt(v, op->effect == DE_CBT_ON);
        break;
    case DE_META:
        v->meta = true;
        break;
    case DE_NONE:
        break;
    }
}

static int disk_send(int fd, struct dmsg *msg, char kind)
{
    msg->kind = kind;
    return write(fd, msg, sizeof(*msg)) == (ssize_t)sizeof(*msg) ? 0 : -1;
}

/* The worker's SRs: the default one and the VHD one (made by setup). */
static int disk_srs(xcp_session *s, xcp_sr sr[2])
{
    xcp_pool_set pools = {0, NULL};
    xcp_sr_set set = {0, NULL};
    int rc = -1;

    if (xcp_pool_get_all(s, &pools) == 0 && pools.n &&
        xcp_pool_get_default_SR(s, &sr[0], pools.items[0]) == 0 &&
        xcp_sr_get_by_name_label(s, &set, DISK_VHD_SR) == 0 && set.n == 1) {
        sr[1] = set.items[0];
        rc = 0;
    }
    xcp_sr_set_dispose(&set);
    xcp_pool_set_dispose(&pools);
    return rc;
}

/*
 * The crash points of the file SR's snapshot and clone (sr/file.c, in
 * the order of their steps; the first three also in the collector's move
 * of a leaf under a new node), of its data_destroy, and of a qcow2
 * resize (qcow2_alloc.c, also in the collector's coalesce): steps a few
 * system calls apart, which a timer seldom hits.
 */
static const char *const disk_points[] = {
    "file:parent-linked", "file:leaf-made",  "file:leaf-renamed",
    "file:child-made",    "file:cbt-child",  "file:cbt-source",
    "file:cbt-parent",    "file:cow-done",   "file:dd-made",
    "file:dd-renamed",    "qcow2:resize-bitmaps",
};

/* The worker: point, if not NULL, is where it kills itself the first
 * time a call reaches it (its open, with the recovery, runs before). */
static void disk_worker(const char *dir, struct dmodel *m, int fd,
                        uint64_t seed, const char *point)
{
    struct dctx x;
    struct dmsg msg;
    const xcp_error *e;

    rng_state = seed | 1;
    memset(&x, 0, sizeof(x));
    x.dir = dir;
    x.m = m;
    if (open_session(&x.s, dir) < 0 || disk_srs(x.s, x.sr) < 0)
        _exit(2);
    if (point)
        setenv("XCP_CRASH_AT", point, 1);
    if (write(fd, "r", 1) != 1)
        _exit(2);
    for (;;) {
        if (!disk_choose(m, &msg))
            continue;
        if (disk_send(fd, &msg, 'I') < 0)
            _exit(2);
        if (disk_ops[msg.op].run(&x, &msg) < 0) {
            e = xcp_error_last();
            if (!msg.error[0])
                snprintf(msg.error, sizeof(msg.error), "%s",
                         e && e->name ? e->name : "?");
            disk_settle(&x);
            if (disk_send(fd, &msg, 'F') < 0)
                _exit(2);
            continue;
        }
        if (disk_ops[msg.op].collects)
            disk_settle(&x);
        disk_apply(m, &msg);
        if (disk_send(fd, &msg, 'A') < 0)
            _exit(2);
    }
}

/* Before the first kill: the VHD SR (the default SR comes with the first
 * open), made by a process that runs to its end. */
static void disk_setup_child(const char *dir)
{
    xcp_session *s;
    xcp_host_set hosts = {0, NULL};
    xcp_string_map dc = {0, NULL}, smc = {0, NULL};
    xcp_string_map_entry fmt = {"image-format", "vhd"};
    xcp_sr sr;
    int rc;

    if (open_session(&s, dir) < 0 || xcp_host_get_all(s, &hosts) < 0 ||
        hosts.n < 1)
        _exit(2);
    smc.n = 1;
    smc.items = &fmt;
    rc = xcp_sr_create(s, &sr, hosts.items[0], &dc, 0, DISK_VHD_SR, "",
                       "file", "user", false, &smc);
    xcp_host_set_dispose(&hosts);
    xcp_session_close(s);
    _exit(rc < 0 ? 2 : 0);
}

/* What one check found, sent back to the parent. */
struct disk_check {
    int open_failed, lost, unknown, bad_size, dangling, unowned, tmp;
    int bad_image, bad_data, images, records;
    int cbt_short;                /* list_changed_blocks under-reports */
    int cbt_fail;                 /* or fails, or tracking state is wrong */
    int cbt_checked, cbt_off;     /* checks made; tracking found off */
    /* qcow2 images with leaked clusters on a clean image (no dirty bit
     * for the attach to repair); tracking found off after a crash, then
     * on again. */
    int leaky, cbt_back;
    int8_t cbt[DISK_MAX];         /* tracking found: -1 as the model */
    bool meta[DISK_MAX];          /* data found destroyed (or unknown) */
    bool unlink[DISK_MAX];        /* the base snapshot's tracking off */
    /* the in-flight operation's outcome, to adopt */
    bool adopt;
    struct dmsg adopted;
};

/* Run argv with output to /dev/null (quiet) or ours; its exit status, -1
 * if not run. */
static int disk_run_to(char *const argv[], bool quiet)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st;

    fflush(stdout);
    posix_spawn_file_actions_init(&fa);
    if (quiet) {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    } else {
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int disk_run(char *const argv[])
{
    return disk_run_to(argv, true);
}

/* qemu-img's name of a format of ours. */
static const char *qemu_format(const char *fmt)
{
    return !strcmp(fmt, "vhd") ? "vpc" : fmt;
}

/* One image, by QEMU: check (qcow2: clean; vpc: QEMU 7.2 has no checker
 * and exits 63) and info: 0 clean, 1 leaked clusters only (on a clean
 * image: the attach repairs those of a dirty one), -1 bad. */
static int disk_image_ok(const char *path, const char *fmt)
{
    char *check[] = {"qemu-img", "check", "-q", "-f",
                     (char *)qemu_format(fmt), (char *)path, NULL};
    char *info[] = {"qemu-img", "info", "-f", (char *)qemu_format(fmt),
                    (char *)path, NULL};
    int rc;

    if (!strcmp(fmt, "raw"))
        return 0;
    rc = disk_run(check);
    if (rc != 0 && !(rc == 63 && !strcmp(fmt, "vhd"))) {
        note("disk: qemu-img check -f %s %s exited %d:", qemu_format(fmt),
             path, rc);
        check[2] = "--output=human";
        disk_run_to(check, false);
        if (rc == 3)
            return 1;
        return -1;
    }
    if (disk_run(info) != 0) {
        note("disk: qemu-img info -f %s %s fails", qemu_format(fmt), path);
        return -1;
    }
    return 0;
}

/* The value a 4 KiB block of ours holds: its seq, 0 for zeros, -1 for
 * anything else. */
static int64_t disk_block_seq(const uint8_t *got, int slot)
{
    uint8_t exp[DISK_BLOCK];
    uint32_t w[2], seq;

    /* Word 1 says the seq (word 0 is 0 when seq == slot). */
    memcpy(w, got, sizeof(w));
    seq = w[0] || w[1] ? w[1] ^ 0x9e3779b9u ^ (uint32_t)slot : 0;
    disk_block(exp, seq, slot);
    return memcmp(got, exp, sizeof(exp)) ? -1 : (int64_t)seq;
}

/*
 * A VDI's slots, seqs[] filled; <0 when the image cannot be read.  qcow2
 * chains are read by QEMU (`qemu-img convert` to raw); VHD ones by our
 * library, since QEMU's vpc driver does not follow a differencing disk's
 * parent.
 */
static int disk_read_back(const char *path, const char *fmt,
                          const char *scratch, int64_t seqs[DISK_SLOTS])
{
    char *conv[] = {"qemu-img", "convert", "-f", (char *)qemu_format(fmt),
                    "-O", "raw", (char *)path, (char *)scratch, NULL};
    uint8_t got[DISK_BLOCK];
    xcp__image *im = NULL;
    char err[512];
    int fd = -1, i, rc;

    if (!strcmp(fmt, "vhd")) {
        if ((rc = xcp__image_open(&im, path, fmt, XCP__IMAGE_RDONLY, err,
                                  sizeof(err))) < 0) {
            note("disk: %s", err);
            return -1;
        }
    } else {
        unlink(scratch);
        if ((rc = disk_run(conv)) != 0) {
            note("disk: qemu-img convert -f %s %s exited %d",
                 qemu_format(fmt), path, rc);
            return -1;
        }
        if ((fd = open(scratch, O_RDONLY | O_CLOEXEC)) < 0)
            return -1;
    }
    for (i = 0; i < DISK_SLOTS; i++) {
        off_t off = (off_t)i * DISK_STRIDE;
        seqs[i] = -1;
        if (im ? xcp__image_read(im, (uint64_t)off, got, sizeof(got), err,
                                 sizeof(err)) == 0
               : pread(fd, got, sizeof(got), off) == (ssize_t)sizeof(got))
            seqs[i] = disk_block_seq(got, i);
    }
    xcp__image_close(im);
    if (fd >= 0)
        close(fd);
    unlink(scratch);
    return 0;
}

/* The virtual size of an image as our library reads it (0: unreadable). */
static uint64_t disk_image_size(const char *path, const char *fmt)
{
    xcp__image *im = NULL;
    char err[256];
    uint64_t size = 0;

    if (xcp__image_open(&im, path, fmt, XCP__IMAGE_RDONLY |
                        XCP__IMAGE_NO_PARENT, err, sizeof(err)) == 0)
        size = xcp__image_virtual_size(im);
    xcp__image_close(im);
    return size;
}

/* Every image of an SR directory by QEMU. */
static void disk_check_images(const char *dir, struct disk_check *c)
{
    char path[PATH_MAX + 512];
    struct dirent *de;
    int rc;
    DIR *d = opendir(dir);

    if (!d)
        return;
    while ((de = readdir(d))) {
        if (!is_image_name(de->d_name))
            continue;
        path_in(path, sizeof(path), dir, de->d_name);
        rc = disk_image_ok(path, disk_format(de->d_name));
        c->bad_image += rc < 0;
        c->leaky += rc > 0;
    }
    closedir(d);
}

struct disk_rec {
    char uuid[UUID_MAX];
    char location[128];
    int sr;
    int64_t size;
    bool cbt, meta;               /* cbt_enabled; type cbt_metadata */
};

/* The record of a model VDI, NULL: none. */
static const struct disk_rec *disk_rec_of(const struct dvdi *v,
                                          const struct disk_rec *r, size_t n)
{
    size_t j;

    for (j = 0; j < n; j++)
        if (!strcmp(r[j].uuid, v->uuid))
            return &r[j];
    return NULL;
}

static int b64_val(char ch)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789+/";
    const char *p = ch ? strchr(a, ch) : NULL;

    return p ? (int)(p - a) : -1;
}

/* Base64 text into out (cap bytes); the bytes decoded, -1 if malformed. */
static long b64_decode(const char *in, uint8_t *out, size_t cap)
{
    unsigned long acc = 0;
    size_t n = 0;
    int bits = 0, v;

    for (; *in && *in != '='; in++) {
        if ((v = b64_val(*in)) < 0)
            return -1;
        acc = (acc << 6) | (unsigned long)v;
        if ((bits += 6) >= 8) {
            bits -= 8;
            if (n < cap)
                out[n] = (uint8_t)(acc >> bits);
            n++;
        }
    }
    return (long)n;
}

/* list_changed_blocks(base, leaf) has the block of every slot written
 * since base; the number of slots missing, -1 if the call fails. */
static int disk_cbt_missing(xcp_session *s, const struct dvdi *base,
                            const struct dvdi *v)
{
    uint8_t bits[(DISK_SIZE_MAX / XCP__CBT_BLOCK_SIZE + 7) / 8 + 8];
    char *b64 = NULL, e[512];
    xcp_vdi from, to;
    long n;
    int k, missing = 0;

    if (xcp_vdi_get_by_uuid(s, &from, base->uuid) < 0 ||
        xcp_vdi_get_by_uuid(s, &to, v->uuid) < 0 ||
        xcp_vdi_list_changed_blocks(s, &b64, from, to) < 0) {
        error_text(e, sizeof(e), "list_changed_blocks");
        note("disk: VDI %s since %s: %s", v->uuid, base->uuid, e);
        return -1;
    }
    memset(bits, 0, sizeof(bits));
    n = b64_decode(b64, bits, sizeof(bits));
    xcp_free(b64);
    if (n < 0) {
        note("disk: VDI %s: list_changed_blocks is not base64", v->uuid);
        return -1;
    }
    for (k = 0; k < DISK_SLOTS; k++) {
        uint64_t b = (uint64_t)k * DISK_STRIDE / XCP__CBT_BLOCK_SIZE;
        if (!v->changed[k] || (b / 8 < (uint64_t)n &&
                               (bits[b / 8] & (0x80 >> (b % 8)))))
            continue;
        note("disk: VDI %s: slot %d written since snapshot %s, not in "
             "list_changed_blocks", v->uuid, k, base->uuid);
        missing++;
    }
    return missing;
}

/*
 * Tracking against the model (session open): a tracked VDI's changes
 * since its base snapshot include every acknowledged write, or tracking
 * is visibly off.  The in-flight switch may or may not have happened; an
 * in-flight snapshot of the VDI does not matter (list_changed_blocks
 * goes back across it).  What was found goes to c->cbt and c->meta.
 */
static void disk_check_cbt(xcp_session *s, const struct dmodel *m,
                           const struct dmsg *in, const struct disk_rec *r,
                           size_t n, struct disk_check *c)
{
    const struct disk_op *op = in ? &disk_ops[in->op] : NULL;
    const struct disk_rec *rv, *rb;
    int i, got;

    for (i = 0; i < DISK_MAX; i++) {
        const struct dvdi *v = &m->v[i];
        bool here = op && in->vdi == i;
        c->cbt[i] = -1;
        if (here && op->effect == DE_META)
            c->meta[i] = true;
        if (!v->live || v->ro || !(rv = disk_rec_of(v, r, n)))
            continue;
        if (rv->cbt != v->cbt) {
            c->cbt[i] = rv->cbt;
            if (here && (op->effect == DE_CBT_ON || op->effect == DE_CBT_OFF))
                continue;
            if (!rv->cbt) {
                note("disk: VDI %s: tracking found off (in flight: %s)",
                     v->uuid, op ? op->name : "nothing");
                c->cbt_off++;
                continue;
            }
            note("disk: VDI %s: tracking on, never acknowledged%s", v->uuid,
                 v->cbt_lost ? " (found off after an earlier crash)" : "");
            if (v->cbt_lost)
                c->cbt_back++;
            else
                c->cbt_fail++;
            continue;
        }
        if (!v->cbt || v->base < 0 || !m->v[v->base].live ||
            !(rb = disk_rec_of(&m->v[v->base], r, n)))
            continue;
        if (!rb->cbt) {
            /* The snapshot's tracking visibly off: the link is gone. */
            note("disk: snapshot %s: tracking found off (in flight: %s)",
                 m->v[v->base].uuid, op ? op->name : "nothing");
            c->cbt_off++;
            c->unlink[i] = true;
            continue;
        }
        c->cbt_checked++;
        if ((got = disk_cbt_missing(s, &m->v[v->base], v)) < 0)
            c->cbt_fail++;
        else
            c->cbt_short += got;
    }
}

/* The in-flight operation's outcome as found, into c->adopted. */
static void disk_adopt(struct disk_check *c, const struct dmsg *in)
{
    c->adopt = true;
    c->adopted = *in;
    c->adopted.kind = 'A';
}

/* Records against the model: acknowledged VDIs, sizes, strangers. */
static void disk_check_records(struct dmodel *m, const struct dmsg *in,
                               const struct disk_rec *r, size_t n,
                               char sdir[2][PATH_MAX], struct disk_check *c)
{
    const struct disk_op *op = in ? &disk_ops[in->op] : NULL;
    char path[PATH_MAX + 256];
    bool *known = calloc(n ? n : 1, sizeof(*known));
    size_t j;
    int i;

    for (i = 0; i < DISK_MAX; i++) {
        struct dvdi *v = &m->v[i];
        if (!v->live)
            continue;
        for (j = 0; j < n && strcmp(r[j].uuid, v->uuid); j++)
            ;
        if (j == n) {
            if (op && op->effect == DE_GONE && in->vdi == i) {
                disk_adopt(c, in);
                v->live = false;
                continue;
            }
            note("disk: acknowledged VDI %s is lost", v->uuid);
            c->lost++;
            continue;
        }
        known[j] = true;
        if (r[j].size != (int64_t)v->size) {
            if (op && op->effect == DE_SIZE && in->vdi == i &&
                r[j].size == (int64_t)in->size) {
                disk_adopt(c, in);
                v->size = in->size;
            } else {
                note("disk: VDI %s: virtual_size %lld, acknowledged %llu",
                     v->uuid, (long long)r[j].size,
                     (unsigned long long)v->size);
                c->bad_size++;
            }
        }
        snprintf(path, sizeof(path), "%s/%s", sdir[r[j].sr], r[j].location);
        if (disk_image_size(path, disk_format(r[j].location)) !=
            (uint64_t)r[j].size) {
            note("disk: VDI %s: the record says %lld bytes, its image %s "
                 "%llu", v->uuid, (long long)r[j].size, path,
                 (unsigned long long)disk_image_size(
                     path, disk_format(r[j].location)));
            c->bad_size++;
        }
    }
    for (j = 0; j < n; j++) {
        if (known[j])
            continue;
        if (op && op->effect == DE_NEW && !c->adopt) {
            disk_adopt(c, in);
            snprintf(c->adopted.uuid, sizeof(c->adopted.uuid), "%s",
                     r[j].uuid);
            c->adopted.sr = (int8_t)r[j].sr;
            disk_apply(m, &c->adopted);
            continue;
        }
        note("disk: VDI %s exists, but was never acknowledged", r[j].uuid);
        c->unknown++;
    }
    free(known);
}

/* Every live VDI's data through QEMU; the write in flight may read old
 * or new. */
static void disk_check_data(const char *dir, struct dmodel *m,
                            const struct dmsg *in, const struct disk_rec *r,
                            size_t n, char sdir[2][PATH_MAX],
                            struct disk_check *c)
{
    const struct disk_op *op = in ? &disk_ops[in->op] : NULL;
    char path[PATH_MAX + 256], scratch[PATH_MAX];
    int64_t seqs[DISK_SLOTS];
    size_t j;
    int i, k;

    snprintf(scratch, sizeof(scratch), "%s/disk-read-back.raw", dir);
    for (i = 0; i < DISK_MAX; i++) {
        struct dvdi *v = &m->v[i];
        if (!v->live || v->meta || c->meta[i])
            continue;
        for (j = 0; j < n && strcmp(r[j].uuid, v->uuid); j++)
            ;
        if (j == n)
            continue;
        snprintf(path, sizeof(path), "%s/%s", sdir[r[j].sr], r[j].location);
        if (disk_read_back(path, disk_format(r[j].location), scratch,
                           seqs) < 0) {
            c->bad_data++;
            continue;
        }
        for (k = 0; k < DISK_SLOTS; k++) {
            if (seqs[k] == (int64_t)v->data[k])
                continue;
            if (op && op->effect == DE_DATA && in->vdi == i &&
                in->slot == k && seqs[k] == (int64_t)in->seq) {
                disk_adopt(c, in);
                v->data[k] = in->seq;
                continue;
            }
            note("disk: VDI %s (%s) slot %d reads %lld, acknowledged %u",
                 v->uuid, r[j].location, k, (long long)seqs[k], v->data[k]);
            c->bad_data++;
        }
    }
}

/* In a child: recover (open), read the records, close, then check the
 * files and the data against the model; the result to fd. */
static void disk_check_child(const char *dir, struct dmodel *m,
                             const struct dmsg *in, int fd)
{
    struct disk_check c;
    struct storage_check sc;
    struct names records = {NULL, 0}, seen = {NULL, 0};
    xcp_vdi_record_map all = {0, NULL, NULL};
    struct disk_rec *r = NULL;
    char sdir[2][PATH_MAX];
    xcp_session *s;
    xcp_sr sr[2];
    size_t i, n = 0;
    int k;

    memset(&c, 0, sizeof(c));
    memset(c.cbt, -1, sizeof(c.cbt));
    memset(&sc, 0, sizeof(sc));
    if (open_session(&s, dir) < 0 || disk_srs(s, sr) < 0 ||
        xcp_vdi_get_all_records(s, &all) < 0) {
        char e[512];
        error_text(e, sizeof(e), "open");
        note("disk: %s", e);
        c.open_failed = 1;
        goto out;
    }
    for (k = 0; k < 2; k++)
        disk_sr_dir(s, dir, sr[k], sdir[k], sizeof(sdir[k]));
    r = calloc(all.n ? all.n : 1, sizeof(*r));
    for (i = 0; i < all.n; i++) {
        const xcp_vdi_record *v = &all.records[i];
        if (v->location && v->location[0])
            names_add(&records, v->location);
        if (!v->name_label || strcmp(v->name_label, DISK_LABEL))
            continue;
        snprintf(r[n].uuid, sizeof(r[n].uuid), "%s", v->uuid);
        snprintf(r[n].location, sizeof(r[n].location), "%s",
                 v->location ? v->location : "");
        r[n].sr = !strcmp(v->SR.ref, sr[1].ref);
        r[n].size = v->virtual_size;
        r[n].cbt = v->cbt_enabled;
        r[n].meta = v->type == XCP_VDI_TYPE_CBT_METADATA;
        n++;
    }
    disk_check_cbt(s, m, in, r, n, &c);
    c.records = (int)records.n;
    xcp_vdi_record_map_dispose(&all);
    xcp_session_close(s); /* the collector's pending pass ends first */

    disk_check_records(m, in, r, n, sdir, &c);
    for (k = 0; k < 2; k++) {
        check_sr_dir(sdir[k], &records, &seen, &sc);
        disk_check_images(sdir[k], &c);
    }
    for (i = 0; i < records.n; i++)
        if (!names_has(&seen, records.v[i])) {
            note("disk: VDI record's image %s is missing", records.v[i]);
            c.dangling++;
        }
    c.unowned = sc.unowned;
    c.tmp = sc.tmp;
    c.images = sc.images;
    disk_check_data(dir, m, in, r, n, sdir, &c);
out:
    free(r);
    free(records.v);
    free(seen.v);
    if (write(fd, &c, sizeof(c)) != (ssize_t)sizeof(c))
        _exit(3);
    _exit(0);
}

/* What a check found of tracking into the model; its counts into sum. */
static void disk_take_cbt(struct dmodel *m, const struct disk_check *c,
                          struct disk_check *sum)
{
    int i;

    for (i = 0; i < DISK_MAX; i++) {
        if (c->cbt[i] >= 0 && m->v[i].live && c->cbt[i] != m->v[i].cbt) {
            disk_set_cbt(&m->v[i], c->cbt[i]);
            m->v[i].cbt_lost = !c->cbt[i];
        }
        if (c->meta[i] && m->v[i].live)
            m->v[i].meta = true;
        if (c->unlink[i] && m->v[i].live) {
            m->v[i].base = -1;
            memset(m->v[i].changed, 0, sizeof(m->v[i].changed));
        }
    }
    sum->cbt_checked += c->cbt_checked;
    sum->cbt_short += c->cbt_short;
    sum->cbt_fail += c->cbt_fail;
    sum->cbt_off += c->cbt_off;
    sum->leaky += c->leaky;
    sum->cbt_back += c->cbt_back;
}

static int disk_check(const char *dir, struct dmodel *m,
                      const struct dmsg *in, struct disk_check *c)
{
    int p[2];
    pid_t pid;

    memset(c, 0, sizeof(*c));
    memset(c->cbt, -1, sizeof(c->cbt));
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fflush(stdout);
    if ((pid = fork()) == 0) {
        close(p[0]);
        disk_check_child(dir, m, in, p[1]);
    }
    close(p[1]);
    if (pid < 0 || read(p[0], c, sizeof(*c)) != (ssize_t)sizeof(*c)) {
        close(p[0]);
        if (pid > 0)
            wait_child(pid, 120000);
        return -1;
    }
    close(p[0]);
    wait_child(pid, 120000);
    return 0;
}

struct disk_stats {
    int acked[DISK_NOPS], failed[DISK_NOPS], killed[DISK_NOPS];
    int internal;                 /* calls failing with INTERNAL_ERROR */
};

/* The messages of a killed worker, applied to the model; the intent of
 * the call it was in, if any, to in. */
static bool disk_drain(int fd, struct dmodel *m, struct dmsg *in,
                       struct disk_stats *st)
{
    struct dmsg msg;
    bool inflight = false;
    size_t have = 0;
    ssize_t r;

    for (;;) {
        r = read(fd, (char *)&msg + have, sizeof(msg) - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        if (have < sizeof(msg))
            continue;
        have = 0;
        if (msg.kind == 'I') {
            *in = msg;
            inflight = true;
            if (msg.seq > m->seq)
                m->seq = msg.seq;
        } else if (msg.kind == 'A') {
            disk_apply(m, &msg);
            st->acked[msg.op]++;
            inflight = false;
        } else if (msg.kind == 'F') {
            st->failed[msg.op]++;
            inflight = false;
            if (!strcmp(msg.error, "INTERNAL_ERROR") ||
                !strncmp(msg.error, "image write", 11)) {
                note("disk: %s failed: %s", disk_ops[msg.op].name,
                     msg.error);
                st->internal++;
            }
        }
    }
    if (inflight)
        st->killed[in->op]++;
    return inflight;
}

static void scenario_disk(int iterations)
{
    static struct dmodel m;
    struct disk_stats st;
    struct disk_check c, sum;
    struct dmsg in;
    int64_t t0 = now_ms();
    char *dir = make_dir("disk");
    int i, kills = 0, at_points = 0, bad_runs = 0, fd[2], status;
    const char *point;
    bool inflight;
    char ready;
    pid_t pid;

    if (!dir) {
        fail("disk: cannot make a state dir: %s", strerror(errno));
        return;
    }
    memset(&m, 0, sizeof(m));
    memset(&st, 0, sizeof(st));
    memset(&sum, 0, sizeof(sum));
    fflush(stdout);
    if ((pid = fork()) == 0)
        disk_setup_child(dir);
    status = pid > 0 ? wait_child(pid, 120000) : -1;
    if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fail("disk: cannot make the VHD SR (dir %s)", dir);
        free(dir);
        return;
    }
    for (i = 0; i < iterations; i++) {
        if (pipe2(fd, O_CLOEXEC) < 0)
            break;
        point = rnd_below(3) ? NULL
                             : disk_points[rnd_below(sizeof(disk_points) /
                                                     sizeof(*disk_points))];
        fflush(stdout);
        if ((pid = fork()) == 0) {
            close(fd[0]);
            disk_worker(dir, &m, fd[1], rnd(), point);
        }
        close(fd[1]);
        if (pid < 0 || read(fd[0], &ready, 1) != 1) {
            close(fd[0]);
            if (pid > 0)
                wait_child(pid, 10000);
            fail("disk: iteration %d: the worker did not start", i + 1);
            bad_runs++;
            continue;
        }
        sleep_ms(20 + rnd_below(400));
        /* Dead already: it reached its crash point. */
        if (waitpid(pid, &status, WNOHANG) == pid) {
            reaped(pid, status);
            at_points += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        } else {
            kill(pid, SIGKILL);
            status = wait_child(pid, 10000);
        }
        kills += status >= 0 && WIFSIGNALED(status) &&
                 WTERMSIG(status) == SIGKILL;
        inflight = disk_drain(fd[0], &m, &in, &st);
        close(fd[0]);
        if (disk_check(dir, &m, inflight ? &in : NULL, &c) < 0)
            c.open_failed = 1;
        if (c.adopt)
            disk_apply(&m, &c.adopted);
        disk_take_cbt(&m, &c, &sum);
        if (c.open_failed || c.lost || c.unknown || c.bad_size ||
            c.dangling || c.unowned || c.tmp || c.bad_image || c.bad_data ||
            c.cbt_short || c.cbt_fail || c.leaky || c.cbt_back) {
            bad_runs++;
            note("disk: iteration %d (killed in %s): %d lost, %d unknown, "
                 "%d wrong size, %d dangling, %d unowned, %d temporary, "
                 "%d bad image(s), %d bad slot(s), %d block(s) missing "
                 "from CBT, %d CBT failure(s), %d leaky image(s), %d "
                 "tracking back on%s", i + 1,
                 inflight ? disk_ops[in.op].name : "nothing", c.lost,
                 c.unknown, c.bad_size, c.dangling, c.unowned, c.tmp,
                 c.bad_image, c.bad_data, c.cbt_short, c.cbt_fail, c.leaky,
                 c.cbt_back, c.open_failed ? ", open failed" : "");
        }
        sum.images = c.images;
        sum.records = c.records;
    }
    printf("    disk: %d kills in %d iterations (%d at a crash point) "
           "(%.1f s); at the end %d VDIs, %d records, %d images\n", kills,
           iterations, at_points, (double)(now_ms() - t0) / 1000,
           disk_live(&m), sum.records, sum.images);
    printf("    disk: %d list_changed_blocks checks, %d blocks missing, "
           "%d failed; tracking found off %d time(s)\n", sum.cbt_checked,
           sum.cbt_short, sum.cbt_fail, sum.cbt_off);
    for (i = 0; i < DISK_NOPS; i++) {
        int j, dup = 0;
        for (j = 0; j < i; j++)
            dup = dup || !strcmp(disk_ops[j].name, disk_ops[i].name);
        if (dup)
            continue;
        for (j = i + 1; j < DISK_NOPS; j++)
            if (!strcmp(disk_ops[j].name, disk_ops[i].name)) {
                st.acked[i] += st.acked[j];
                st.failed[i] += st.failed[j];
                st.killed[i] += st.killed[j];
            }
        printf("      %-14s %5d acknowledged, %4d refused, %3d killed in "
               "flight\n", disk_ops[i].name, st.acked[i], st.failed[i],
               st.killed[i]);
    }
    if (st.internal)
        fail("disk: %d call(s) failed with INTERNAL_ERROR or an I/O error",
             st.internal);
    if (bad_runs)
        fail("disk: %d of %d iterations left chains, records, files or data "
             "wrong (dir %s)", bad_runs, iterations, dir);
    else
        pass("disk: after %d kills every chain checks, records and files "
             "agree and every acknowledged write reads back", kills);
    if (!bad_runs && !keep_dirs())
        rm_tree(dir);
    free(dir);
}

/* ---- main ---------------------------------------------------------------- */

/* Whether XCP_CRASH_SCENARIOS (comma-separated; unset: all) names it. */
static bool wanted(const char *name)
{
    const char *list = getenv("XCP_CRASH_SCENARIOS"), *p;
    size_t len = strlen(name);

    if (!list || !*list)
        return true;
    for (p = list; (p = strstr(p, name)); p += len)
        if ((p == list || p[-1] == ',') && (p[len] == ',' || !p[len]))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    const char *e;
    int iterations = 30;
    uint64_t seed;

    /* The damage scenarios need the change they make to be the journal's
     * last line: the sim's guest agent, which reports (a commit) a moment
     * after each start, must not speak during a run. */
    setenv("XCP_SIM_AGENT_DELAY_MS", "1000000000", 0);
    if ((e = getenv("XCP_CRASH_ITERATIONS")) && *e)
        iterations = atoi(e);
    if (argc > 1)
        iterations = atoi(argv[1]);
    if ((e = getenv("TMPDIR")) && *e)
        tmpdir = e;
    seed = (e = getenv("XCP_CRASH_SEED")) && *e
               ? strtoull(e, NULL, 0)
               : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    rng_state = seed | 1;
    /* The worker's pipe may close under it: an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    printf("test_crash: %d iterations per scenario, XCP_CRASH_SEED=%" PRIu64
           "\n", iterations, seed);
    fflush(stdout);

    if (wanted("damage"))
        scenario_damage();
    if (wanted("kill"))
        scenario_kill("kill", iterations, 0, 10);
    if (wanted("rotate"))
        scenario_kill("rotate", iterations, ROTATE_PAD, 0);
    if (wanted("storage"))
        scenario_storage(iterations);
    if (wanted("disk"))
        scenario_disk(iterations);

    if (nxfail)
        printf("%d expected failure(s): known library bugs (XFAIL above)\n",
               nxfail);
    printf("%d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
