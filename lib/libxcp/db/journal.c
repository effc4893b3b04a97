/*
 * Crash-safe persistence of the object database.
 *
 * Two files in the state directory:
 *   db.snap     a full snapshot: header line, one line per object, trailer.
 *               Written to db.snap.tmp, fsynced, renamed over db.snap, and
 *               the directory fsynced: it is either the old or the new one.
 *   db.journal  one line per committed transaction, appended with a single
 *               write() before the caller hears success (so kill -9 loses
 *               nothing acknowledged); fsync per the policy (power loss).
 * Grouped fsync: a commit syncs at once when the last sync is older than
 * the period; otherwise it arms a deadline (last sync + period) that a
 * syncer thread keeps, so every commit reaches the disk within the period
 * even when no commit follows it and the engine is idle. Close syncs.
 * A write the disk refuses for want of space answers OUT_OF_SPACE with the
 * journal's path and the errno (as XAPI does for ENOSPC); other I/O errors
 * are INTERNAL_ERROR naming the operation, the path and the errno.
 * Every line is "<crc32 hex> <body>\n", the CRC over the body. Recovery:
 * load the snapshot, replay journal transactions newer than it, and cut
 * the journal at the first torn or damaged line (a crash mid-append only
 * ever damages the tail).
 *
 * Values are encoded as space-separated tokens that never contain spaces
 * or newlines: 'text (percent-escaped), iN, fX, T/F, dN, [ ... ], { 'k v },
 * and - for none. Objects name their fields, so adding a field to the
 * model needs no migration.
 */
#include "db.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define SNAP_MAGIC "XCPDB 2"
#define MAX_DEPTH 64

struct xcp__journal {
    char *dir;
    char *jpath;
    char *spath;
    int fd;
    size_t size;
    size_t snap_size;
    /* Guarded by mu (the syncer thread reads and writes them): */
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* wakes the syncer: new deadline or stop */
    uint64_t seq;       /* sequence number of the last journal line */
    uint64_t synced;    /* last sequence number known on disk */
    int64_t last_sync_ms;
    int64_t deadline_ms; /* when the syncer must sync; 0: nothing due */
    bool stop;
    bool syncer;        /* the thread is running */
    pthread_t thr;
};

static uint32_t crc(const char *p, size_t n)
{
    return (uint32_t)crc32(0L, (const Bytef *)p, (uInt)n);
}

/* ---- value encoding ------------------------------------------------------ */

static void enc_str(xcp__buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    xcp__buf_addc(b, '\'');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == '%' || c == 0x7f) {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            xcp__buf_add(b, e, 3);
        } else {
            xcp__buf_addc(b, (char)c);
        }
    }
}

void xcp__enc_value(xcp__buf *b, const xcp_value *v)
{
    size_t i;

    switch (v->kind) {
    case XCP_VAL_NONE:
    case XCP_VAL_RECORD:
        xcp__buf_addc(b, '-');
        break;
    case XCP_VAL_STRING:
        enc_str(b, v->u.s);
        break;
    case XCP_VAL_INT:
        xcp__buf_printf(b, "i%lld", (long long)v->u.i);
        break;
    case XCP_VAL_FLOAT:
        xcp__buf_printf(b, "f%.17g", v->u.f);
        break;
    case XCP_VAL_BOOL:
        xcp__buf_addc(b, v->u.b ? 'T' : 'F');
        break;
    case XCP_VAL_DATETIME:
        xcp__buf_printf(b, "d%lld", (long long)v->u.t);
        break;
    case XCP_VAL_ARRAY:
        xcp__buf_addc(b, '[');
        for (i = 0; i < v->u.arr.n; i++) {
            xcp__buf_addc(b, ' ');
            xcp__enc_value(b, &v->u.arr.items[i]);
        }
        xcp__buf_adds(b, " ]");
        break;
    case XCP_VAL_STRUCT:
        xcp__buf_addc(b, '{');
        for (i = 0; i < v->u.st.n; i++) {
            xcp__buf_addc(b, ' ');
            enc_str(b, v->u.st.keys[i]);
            xcp__buf_addc(b, ' ');
            xcp__enc_value(b, &v->u.st.vals[i]);
        }
        xcp__buf_adds(b, " }");
        break;
    }
}

/* Next token: sets *tok and *len, advances *p past it and one space. */
static bool next_tok(const char **p, const char **tok, size_t *len)
{
    const char *s = *p, *e;

    if (!*s || *s == '\n')
        return false;
    e = s;
    while (*e && *e != ' ' && *e != '\n')
        e++;
    *tok = s;
    *len = (size_t)(e - s);
    *p = *e == ' ' ? e + 1 : e;
    return *len > 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static char *dec_str(const char *t, size_t len)
{
    char *r = xcp__malloc(len + 1), *o = r;
    size_t i;

    if (!r)
        return NULL;
    for (i = 0; i < len; i++) {
        if (t[i] == '%') {
            int h, l;
            if (i + 2 >= len || (h = hexval(t[i + 1])) < 0 ||
                (l = hexval(t[i + 2])) < 0) {
                free(r);
                return NULL;
            }
            *o++ = (char)(h * 16 + l);
            i += 2;
        } else {
            *o++ = t[i];
        }
    }
    *o = '\0';
    return r;
}

static int dec_value_depth(const char **p, xcp_value *out, int depth)
{
    const char *t;
    size_t len;
    char *end;
    int rc;

    out->kind = XCP_VAL_NONE;
    if (depth > MAX_DEPTH || !next_tok(p, &t, &len))
        return -1;
    switch (t[0]) {
    case '-':
        return len == 1 ? 0 : -1;
    case '\'':
        if (!(out->u.s = dec_str(t + 1, len - 1)))
            return -1;
        out->kind = XCP_VAL_STRING;
        return 0;
    case 'i':
        out->u.i = strtoll(t + 1, &end, 10);
        out->kind = XCP_VAL_INT;
        return end == t + len && len > 1 ? 0 : -1;
    case 'f':
        out->u.f = strtod(t + 1, &end);
        out->kind = XCP_VAL_FLOAT;
        return end == t + len && len > 1 ? 0 : -1;
    case 'T':
    case 'F':
        xcp_value_set_bool(out, t[0] == 'T');
        return len == 1 ? 0 : -1;
    case 'd':
        out->u.t = strtoll(t + 1, &end, 10);
        out->kind = XCP_VAL_DATETIME;
        return end == t + len && len > 1 ? 0 : -1;
    case '[':
        if (len != 1 || xcp_value_set_array(out, 0) < 0)
            return -1;
        for (;;) {
            xcp_value item, *items;
            if (**p == ']') {
                next_tok(p, &t, &len);
                return 0;
            }
            if (dec_value_depth(p, &item, depth + 1) < 0)
                goto fail;
            items = realloc(out->u.arr.items,
                            (out->u.arr.n + 1) * sizeof(*items));
            if (!items) {
                xcp_value_dispose(&item);
                goto fail;
            }
            out->u.arr.items = items;
            items[out->u.arr.n++] = item;
        }
    case '{':
        if (len != 1)
            return -1;
        xcp_value_set_struct(out);
        for (;;) {
            xcp_value key, val;
            if (**p == '}') {
                next_tok(p, &t, &len);
                return 0;
            }
            if (dec_value_depth(p, &key, depth + 1) < 0)
                goto fail;
            if (key.kind != XCP_VAL_STRING ||
                dec_value_depth(p, &val, depth + 1) < 0) {
                xcp_value_dispose(&key);
                goto fail;
            }
            rc = xcp_value_struct_add(out, key.u.s, &val);
            xcp_value_dispose(&key);
            if (rc < 0) {
                xcp_value_dispose(&val);
                goto fail;
            }
        }
    default:
        return -1;
    }
fail:
    xcp_value_dispose(out);
    return -1;
}

int xcp__dec_value(const char **p, xcp_value *out)
{
    return dec_value_depth(p, out, 0);
}

/* ---- applying lines ------------------------------------------------------ */

/* Set the fields a line lists on o: with txn, through xcp__db_set (undo,
 * relations, generations: a replicated record, xcp__db_apply); else with
 * the raw loader (loading). */
static int apply_fields(xcp__db *db, xcp__obj *o, const char **p, bool txn)
{
    const char *t;
    size_t len, n, i, next = 0;
    char name[128], *end;

    if (!next_tok(p, &t, &len))
        return -1;
    n = strtoul(t, &end, 10);
    if (end != t + len)
        return -1;
    for (i = 0; i < n; i++) {
        xcp_value v;
        int f;
        if (!next_tok(p, &t, &len) || len >= sizeof(name))
            return -1;
        memcpy(name, t, len);
        name[len] = '\0';
        if (xcp__dec_value(p, &v) < 0)
            return -1;
        f = -1;
        if (o) {
            /* Lines list fields in model order: try the next one first
             * (O(fields) per object, not O(fields^2)). */
            const struct xcp__class *k = &xcp__classes[o->cls];
            while (next < k->nfields && (k->fields[next].flags & XF_DERIVED))
                next++;
            if (next < k->nfields && !strcmp(k->fields[next].name, name))
                f = (int)next;
            else
                f = xcp_class_field_index(o->cls, name);
            if (f >= 0)
                next = (size_t)f + 1;
        }
        if (f < 0 || (xcp__classes[o->cls].fields[f].flags & XF_DERIVED)) {
            /* A field this version does not know: dropped. */
            xcp_value_dispose(&v);
            continue;
        }
        if (txn) {
            if (xcp__db_set(db, o, f, &v) < 0) {
                xcp_value_dispose(&v);
                return -1;
            }
        } else {
            xcp__db_load_set(db, o, f, &v);
        }
        xcp_value_dispose(&v);
    }
    return 0;
}

/* Apply one body (after the CRC): "T gen ops..." or "C cls ref ...". */
static int apply_ops(xcp__db *db, const char *p)
{
    const char *t;
    size_t len;
    char a[XCP_REF_MAX], b[XCP_REF_MAX];

    while (next_tok(&p, &t, &len)) {
        char op = t[0];
        xcp__obj *o;
        if (len != 1)
            return -1;
        if (op == 'C') {
            int cls;
            if (!next_tok(&p, &t, &len) || len >= sizeof(a))
                return -1;
            memcpy(a, t, len);
            a[len] = '\0';
            if (!next_tok(&p, &t, &len) || len >= sizeof(b))
                return -1;
            memcpy(b, t, len);
            b[len] = '\0';
            cls = xcp_class_by_name(a);
            o = cls >= 0 ? xcp__db_load_create(db, cls, b) : NULL;
            if (apply_fields(db, o, &p, false) < 0 ||
                (o && xcp__db_load_defaults(db, o) < 0))
                return -1;
        } else if (op == 'S' || op == 'D') {
            if (!next_tok(&p, &t, &len) || len >= sizeof(a))
                return -1;
            memcpy(a, t, len);
            a[len] = '\0';
            o = xcp__db_get(db, a);
            if (op == 'D') {
                if (o)
                    xcp__db_load_destroy(db, o);
            } else if (apply_fields(db, o, &p, false) < 0) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    return 0;
}

/* Copy token t (len bytes) into buf of size XCP_REF_MAX, or fail. */
static bool tok_copy(char *buf, const char *t, size_t len)
{
    if (len >= XCP_REF_MAX)
        return false;
    memcpy(buf, t, len);
    buf[len] = '\0';
    return true;
}

int xcp__journal_apply_ops(xcp__db *db, const char *p, char *why,
                           size_t whylen)
{
    return xcp__journal_apply_ops_missing(db, p, why, whylen, NULL);
}

int xcp__journal_apply_ops_missing(xcp__db *db, const char *p, char *why,
                                   size_t whylen, char *missing)
{
    const char *t;
    size_t len, nop = 0;
    char a[XCP_REF_MAX], b[XCP_REF_MAX];

#define REFUSE(...)                                                        \
    do {                                                                   \
        snprintf(why, whylen, __VA_ARGS__);                                \
        return -1;                                                         \
    } while (0)
    while (next_tok(&p, &t, &len)) {
        char op = t[0];
        xcp__obj *o;
        nop++;
        if (len != 1 || (op != 'C' && op != 'S' && op != 'D'))
            REFUSE("operation %zu: '%.*s' is not C, S or D", nop,
                   (int)(len > 16 ? 16 : len), t);
        if (op == 'C') {
            int cls;
            if (!next_tok(&p, &t, &len) || !tok_copy(a, t, len) ||
                !next_tok(&p, &t, &len) || !tok_copy(b, t, len))
                REFUSE("operation %zu: a creation without class and ref",
                       nop);
            cls = xcp_class_by_name(a);
            o = NULL;
            if (cls >= 0) {
                if (xcp__db_get(db, b))
                    REFUSE("operation %zu: %s %s exists already", nop, a, b);
                if (xcp__db_create(db, cls, b, NULL, &o) < 0)
                    REFUSE("operation %zu: cannot create %s %s", nop, a, b);
            }
            /* A class this version does not know: its fields are read
             * and dropped, as on replay. */
            if (apply_fields(db, o, &p, true) < 0)
                REFUSE("operation %zu: bad fields for %s %s", nop, a, b);
        } else {
            if (!next_tok(&p, &t, &len) || !tok_copy(a, t, len))
                REFUSE("operation %zu: no ref", nop);
            o = xcp__db_get(db, a);
            /* The replica holds what the coordinator held: a row it
             * changes or destroys that is missing here means the two
             * differ (or the record is out of place). */
            if (!o && missing)
                snprintf(missing, XCP_REF_MAX, "%s", a);
            if (!o)
                REFUSE("operation %zu: %s %s: no such object here", nop,
                       op == 'D' ? "destroy" : "set", a);
            if (op == 'D') {
                if (xcp__db_destroy(db, o) < 0)
                    REFUSE("operation %zu: cannot destroy %s", nop, a);
            } else if (apply_fields(db, o, &p, true) < 0) {
                REFUSE("operation %zu: bad fields for %s", nop, a);
            }
        }
    }
    if (*p)
        REFUSE("operation %zu: stray text after it", nop);
    return 0;
#undef REFUSE
}

uint64_t xcp__journal_seq(struct xcp__journal *j)
{
    uint64_t seq;

    pthread_mutex_lock(&j->mu);
    seq = j->seq;
    pthread_mutex_unlock(&j->mu);
    return seq;
}

/* Check a line's CRC; returns the body or NULL. line is NUL-terminated
 * without its newline. */
static const char *check_line(const char *line, size_t len)
{
    char *end;
    unsigned long c;

    if (len < 10 || line[8] != ' ')
        return NULL;
    c = strtoul(line, &end, 16);
    if (end != line + 8 || c != crc(line + 9, len - 9))
        return NULL;
    return line + 9;
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    size_t got = 0;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || !(buf = xcp__malloc((size_t)st.st_size + 1)))
        goto out;
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
out:
    close(fd);
    return buf;
}

static int load_snapshot(struct xcp__journal *j, xcp__db *db, uint64_t *gen,
                         uint64_t *seq)
{
    size_t len = 0, count = 0, expect;
    char *buf = read_file(j->spath, &len), *line, *nl;
    const char *body;
    int rc = 0;

    *gen = *seq = 0;
    if (!buf) {
        if (errno == ENOENT)
            return 0;
        return xcp__internal("cannot read %s: %s", j->spath, strerror(errno));
    }
    j->snap_size = len;
    line = buf;
    nl = strchr(line, '\n');
    if (nl)
        *nl = '\0';
    /* The header is checksummed too: a wrong generation or sequence would
     * make replay skip acknowledged transactions. */
    if (!nl || !(body = check_line(line, (size_t)(nl - line))) ||
        strncmp(body, SNAP_MAGIC " ", strlen(SNAP_MAGIC) + 1) != 0 ||
        sscanf(body + strlen(SNAP_MAGIC) + 1, "%" SCNu64 " %" SCNu64, gen,
               seq) != 2) {
        rc = xcp__internal("%s: not a libxcp database snapshot, or its "
                           "header is damaged", j->spath);
        goto out;
    }
    for (line = nl + 1; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        if (!(body = check_line(line, (size_t)(nl - line)))) {
            rc = xcp__internal("%s: damaged line %zu (checksum)", j->spath,
                               count + 2);
            goto out;
        }
        if (strncmp(body, "END ", 4) == 0) {
            expect = strtoul(body + 4, NULL, 10);
            if (expect != count)
                rc = xcp__internal("%s: %zu objects, trailer says %zu",
                                   j->spath, count, expect);
            goto out;
        }
        if (apply_ops(db, body) < 0) {
            rc = xcp__internal("%s: cannot parse line %zu", j->spath,
                               count + 2);
            goto out;
        }
        count++;
    }
    rc = xcp__internal("%s: truncated (no trailer)", j->spath);
out:
    free(buf);
    return rc;
}

/* Does a line with a valid checksum follow p? Then the damage before it is
 * not a torn tail. */
static bool valid_line_follows(char *p)
{
    char *nl;

    for (; (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        if (check_line(p, (size_t)(nl - p)))
            return true;
    }
    return false;
}

int xcp__journal_load(struct xcp__journal *j, xcp__db *db)
{
    uint64_t gen, snapgen, snapseq, expect;
    size_t len = 0, good = 0, lineno = 0;
    char *buf, *line, *nl;
    bool damaged = false;
    int rc;

    if ((rc = load_snapshot(j, db, &snapgen, &snapseq)) < 0)
        return rc;
    gen = snapgen;
    expect = snapseq + 1;
    buf = read_file(j->jpath, &len);
    if (!buf && errno != ENOENT)
        return xcp__internal("cannot read %s: %s", j->jpath, strerror(errno));
    for (line = buf; buf && (nl = strchr(line, '\n')); line = nl + 1) {
        const char *body;
        uint64_t g, q;
        int n = 0;
        lineno++;
        *nl = '\0';
        body = check_line(line, (size_t)(nl - line));
        if (!body || sscanf(body, "T %" SCNu64 " %" SCNu64 "%n", &g, &q,
                            &n) != 2 ||
            (body[n] && body[n] != ' ')) {
            damaged = true;
            break;
        }
        if (q > snapseq) {
            /* Lines continue the snapshot one by one: a gap means lost
             * transactions (or a missing snapshot), never silently. */
            if (q != expect) {
                rc = xcp__internal("%s: transaction %" PRIu64 " found where "
                                   "%" PRIu64 " was expected (line %zu): the "
                                   "journal does not continue %s",
                                   j->jpath, q, expect, lineno, j->spath);
                free(buf);
                return rc;
            }
            if (apply_ops(db, body[n] ? body + n + 1 : body + n) < 0) {
                damaged = true;
                break;
            }
            gen = g;
            expect++;
        }
        good = (size_t)(nl + 1 - buf);
    }
    if (damaged && valid_line_follows(nl ? nl + 1 : line + strlen(line))) {
        rc = xcp__internal("%s: line %zu is damaged and valid transactions "
                           "follow it: refusing to drop them", j->jpath,
                           lineno);
        free(buf);
        return rc;
    }
    if (buf && good < len) {
        xcp__log(XCP__LOG_WARN, "%s: dropping %zu bytes of torn tail",
                 j->jpath, len - good);
        if (ftruncate(j->fd, (off_t)good) < 0) {
            free(buf);
            return xcp__internal("cannot truncate %s: %s", j->jpath,
                                 strerror(errno));
        }
    }
    free(buf);
    j->size = good;
    j->seq = j->synced = expect - 1;
    lseek(j->fd, (off_t)good, SEEK_SET);
    xcp__db_load_done(db, gen);
    return 0;
}

/* ---- writing ------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int add_crc_line(xcp__buf *out, const char *body, size_t len)
{
    xcp__buf_printf(out, "%08x ", crc(body, len));
    xcp__buf_add(out, body, len);
    xcp__buf_addc(out, '\n');
    return out->oom ? xcp__oom() : 0;
}

/* The error for a failed operation on the journal (xcp__io_fail: the
 * journal's path as the location, the operation and errno after it). */
static int io_error(const struct xcp__journal *j, const char *op, int err)
{
    return xcp__io_fail(j->jpath, op, err);
}

/* fdatasync the journal if lines are unsynced. Called by the committing
 * thread and the syncer, without mu held. Returns 0 or an errno. */
static int sync_now(struct xcp__journal *j)
{
    uint64_t seq;
    bool done;
    int err = 0;

    pthread_mutex_lock(&j->mu);
    seq = j->seq;
    done = seq == j->synced;
    pthread_mutex_unlock(&j->mu);
    if (done)
        return 0;
    if (fdatasync(j->fd) < 0)
        err = errno;
    pthread_mutex_lock(&j->mu);
    if (!err) {
        if (seq > j->synced)
            j->synced = seq;
        j->last_sync_ms = xcp__now_ms();
        if (j->synced == j->seq)
            j->deadline_ms = 0;
    }
    pthread_mutex_unlock(&j->mu);
    return err;
}

/* The syncer: sleeps until a deadline is due (or stop), then syncs. */
static void *syncer_main(void *arg)
{
    struct xcp__journal *j = arg;
    int err;

    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        if (j->deadline_ms == 0) {
            pthread_cond_wait(&j->cv, &j->mu);
            continue;
        }
        if (xcp__now_ms() < j->deadline_ms) {
            struct timespec ts = {
                .tv_sec = j->deadline_ms / 1000,
                .tv_nsec = (long)(j->deadline_ms % 1000) * 1000000,
            };
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
            continue;
        }
        j->deadline_ms = 0;
        pthread_mutex_unlock(&j->mu);
        /* On failure the lines stay unsynced: the next commit syncs
         * inline (the period has passed) and reports the error. */
        if ((err = sync_now(j)) != 0)
            xcp__log(XCP__LOG_ERR, "fsync %s: %s", j->jpath,
                     strerror(err));
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Arm the deadline for a commit that did not sync (mu held): the last
 * sync plus the period, so no line waits longer than the period. */
static void arm_deadline(struct xcp__journal *j, int group_ms)
{
    if (j->deadline_ms != 0)
        return; /* an earlier unsynced line already set a sooner one */
    if (!j->syncer) {
        int rc = pthread_create(&j->thr, NULL, syncer_main, j);
        if (rc != 0) {
            xcp__log(XCP__LOG_WARN, "%s: no syncer thread (%s): syncing "
                     "at the next commit or close", j->jpath, strerror(rc));
            return;
        }
        j->syncer = true;
    }
    j->deadline_ms = j->last_sync_ms + group_ms;
    pthread_cond_signal(&j->cv);
}

int xcp__journal_append(struct xcp__journal *j, const char *line, size_t len,
                        int policy, int group_ms)
{
    xcp__buf b = {0};
    int rc = 0, err;
    bool now_sync = false;
    size_t n;

    xcp__buf body = {0};
    const char *sp;

    /* line is "T <gen> ops...\n": the journal adds its sequence number
     * after the generation. The CRC covers the body without the '\n'. */
    sp = memchr(line + 2, ' ', len - 2);
    if (!sp)
        sp = line + len - 1;
    xcp__buf_add(&body, line, (size_t)(sp - line));
    xcp__buf_printf(&body, " %" PRIu64, j->seq + 1);
    xcp__buf_add(&body, sp, (size_t)(line + len - 1 - sp));
    if (body.oom || (rc = add_crc_line(&b, body.data, body.len)) < 0) {
        xcp__buf_free(&body);
        xcp__buf_free(&b);
        return rc < 0 ? rc : xcp__oom();
    }
    xcp__buf_free(&body);
    rc = write_all(j->fd, b.data, b.len);
    n = b.len;
    xcp__buf_free(&b);
    if (rc < 0) {
        /* A partial write leaves a torn tail: cut it so the next append
         * does not follow garbage. */
        if (ftruncate(j->fd, (off_t)j->size) == 0)
            lseek(j->fd, (off_t)j->size, SEEK_SET);
        return io_error(j, "write", -rc);
    }
    pthread_mutex_lock(&j->mu);
    j->seq++;
    if (policy == XCP__FSYNC_ALWAYS ||
        (policy == XCP__FSYNC_GROUP &&
         xcp__now_ms() - j->last_sync_ms >= group_ms))
        now_sync = true;
    else if (policy == XCP__FSYNC_GROUP)
        arm_deadline(j, group_ms);
    pthread_mutex_unlock(&j->mu);
    if (now_sync && (err = sync_now(j)) != 0) {
        /* Refused: take the line back so a reload does not replay a
         * transaction the caller was told failed. */
        pthread_mutex_lock(&j->mu);
        j->seq--;
        if (j->synced > j->seq) /* the syncer got it out meanwhile */
            j->synced = j->seq;
        pthread_mutex_unlock(&j->mu);
        if (ftruncate(j->fd, (off_t)j->size) == 0)
            lseek(j->fd, (off_t)j->size, SEEK_SET);
        return io_error(j, "fsync", err);
    }
    j->size += n;
    return 0;
}

int xcp__journal_sync(struct xcp__journal *j)
{
    int err = sync_now(j);

    return err ? io_error(j, "fsync", err) : 0;
}

int xcp__journal_snapshot_encode(xcp__db *db, uint64_t seq, xcp__buf *out)
{
    xcp__buf body = {0};
    size_t count = 0;
    int c, rc = 0;

    xcp__buf_printf(&body, SNAP_MAGIC " %" PRIu64 " %" PRIu64,
                    xcp__db_generation(db), seq);
    if (body.oom || add_crc_line(out, body.data, body.len) < 0)
        goto oom;
    for (c = 0; c < xcp__nclasses; c++) {
        size_t i, n;
        xcp__obj *const *objs;
        if (xcp__classes[c].flags & (XK_VOLATILE | XK_NODB))
            continue;
        objs = xcp__db_all(db, c, &n);
        for (i = 0; i < n; i++) {
            body.len = 0;
            xcp__db_enc_create(&body, objs[i]);
            if (body.oom || add_crc_line(out, body.data + 1, body.len - 1) < 0)
                goto oom;
            count++;
        }
    }
    body.len = 0;
    xcp__buf_printf(&body, "END %zu", count);
    if (body.oom || add_crc_line(out, body.data, body.len) < 0)
        goto oom;
    goto done;
oom:
    rc = xcp__oom();
done:
    xcp__buf_free(&body);
    return rc;
}

/* The snapshot text of db at the journal's seq into out. */
static int snapshot_text(struct xcp__journal *j, xcp__db *db, xcp__buf *out)
{
    return xcp__journal_snapshot_encode(db, xcp__journal_seq(j), out);
}

int xcp__journal_snapshot_text(struct xcp__journal *j, xcp__db *db,
                               xcp__buf *out)
{
    return snapshot_text(j, db, out);
}

/* Write text to path atomically (xcp__file_replace). */
static int install_file(struct xcp__journal *j, const char *path,
                        const char *text, size_t len)
{
    int rc = xcp__file_replace(j->dir, path, text, len, 0600);

    return rc < 0 ? xcp__internal("cannot install %s: %s", path,
                                  strerror(-rc))
                  : 0;
}

int xcp__journal_snapshot(struct xcp__journal *j, xcp__db *db)
{
    xcp__buf out = {0};
    int rc;

    if ((rc = snapshot_text(j, db, &out)) < 0 ||
        (rc = install_file(j, j->spath, out.data, out.len)) < 0)
        goto out;
    j->snap_size = out.len;
    /* The snapshot holds everything: the journal restarts empty. A crash
     * before the truncate is harmless (replay skips older generations). */
    if (ftruncate(j->fd, 0) == 0) {
        lseek(j->fd, 0, SEEK_SET);
        j->size = 0;
        fdatasync(j->fd);
    }
    /* Every line so far is in the fsynced snapshot. */
    pthread_mutex_lock(&j->mu);
    j->synced = j->seq;
    j->deadline_ms = 0;
    pthread_mutex_unlock(&j->mu);
out:
    xcp__buf_free(&out);
    return rc;
}

int xcp__journal_install(struct xcp__journal *j, const char *snap,
                         size_t len)
{
    int rc;

    /* The journal goes first: a crash between the two leaves the old
     * snapshot alone (an older replica, caught up again), never the new
     * snapshot followed by the old journal's lines (a tail that may be
     * the very one this transfer replaces). */
    if (ftruncate(j->fd, 0) < 0 || fdatasync(j->fd) < 0)
        return io_error(j, "truncate", errno);
    lseek(j->fd, 0, SEEK_SET);
    j->size = 0;
    if ((rc = install_file(j, j->spath, snap, len)) < 0)
        return rc;
    j->snap_size = len;
    return 0;
}

int xcp__journal_read_after(struct xcp__journal *j, uint64_t after,
                            int (*fn)(void *, uint64_t, const char *, size_t),
                            void *arg)
{
    size_t len = 0;
    char *buf, *line, *nl;
    uint64_t expect = after + 1, last = xcp__journal_seq(j);
    xcp__buf body = {0};
    int rc = 0;

    if (after >= last)
        return 0;
    if (!(buf = read_file(j->jpath, &len)))
        return errno == ENOENT ? 1
                               : xcp__internal("cannot read %s: %s", j->jpath,
                                               strerror(errno));
    for (line = buf; (nl = strchr(line, '\n')) && expect <= last;
         line = nl + 1) {
        const char *b;
        uint64_t g, q;
        int n = 0;
        *nl = '\0';
        if (!(b = check_line(line, (size_t)(nl - line))) ||
            sscanf(b, "T %" SCNu64 " %" SCNu64 "%n", &g, &q, &n) != 2 ||
            (b[n] && b[n] != ' ')) {
            rc = xcp__internal("%s: damaged line while reading from "
                               "transaction %" PRIu64, j->jpath, expect);
            goto out;
        }
        if (q < expect)
            continue;
        if (q > expect) {
            rc = 1; /* compacted into the snapshot since */
            goto out;
        }
        /* The record's body is the line without its seq. */
        body.len = 0;
        xcp__buf_printf(&body, "T %" PRIu64 "%s", g, b + n);
        if (body.oom) {
            rc = xcp__oom();
            goto out;
        }
        if ((rc = fn(arg, q, body.data, body.len)) < 0)
            goto out;
        expect++;
    }
    if (expect <= last)
        rc = 1;
out:
    xcp__buf_free(&body);
    free(buf);
    return rc;
}

int xcp__journal_open(struct xcp__journal **out, const char *dir)
{
    struct xcp__journal *j = xcp__calloc(1, sizeof(*j));
    pthread_condattr_t ca;

    if (!j)
        return xcp__oom();
    j->fd = -1;
    pthread_mutex_init(&j->mu, NULL);
    /* Deadlines are on the monotonic clock (xcp__now_ms). */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->dir = xcp__strdup(dir);
    j->jpath = xcp__printf("%s/db.journal", dir);
    j->spath = xcp__printf("%s/db.snap", dir);
    if (!j->dir || !j->jpath || !j->spath) {
        xcp__journal_close(j);
        return xcp__oom();
    }
    j->fd = open(j->jpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        int rc = xcp__internal("cannot open %s: %s", j->jpath,
                               strerror(errno));
        xcp__journal_close(j);
        return rc;
    }
    j->last_sync_ms = xcp__now_ms();
    *out = j;
    return 0;
}

void xcp__journal_close(struct xcp__journal *j)
{
    int err;

    if (!j)
        return;
    if (j->syncer) {
        pthread_mutex_lock(&j->mu);
        j->stop = true;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thr, NULL);
    }
    if (j->fd >= 0) {
        if ((err = sync_now(j)) != 0)
            xcp__log(XCP__LOG_ERR, "fsync %s: %s", j->jpath, strerror(err));
        close(j->fd);
    }
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j->dir);
    free(j->jpath);
    free(j->spath);
    free(j);
}

size_t xcp__journal_size(const struct xcp__journal *j)
{
    return j->size;
}

size_t xcp__journal_snapshot_size(const struct xcp__journal *j)
{
    return j->snap_size;
}
