/*
 * Password checks for session.login_with_password and HTTP Basic
 * credentials: an auth file of "user:HASH" lines (HASH any crypt(3)
 * string libcrypt knows, e.g. SHA-512 "$6$..." from `openssl passwd -6`),
 * re-read when it changes, or else PAM (service "xapi" by default, as
 * XAPI). The failure delay is the server's business (a timer), so PAM's
 * own blocking fail delay is switched off. libpam is loaded (dlopen) at
 * the first PAM login: a process that never makes one (xe, an embedder,
 * xcpd with an auth file) does not map it and what its modules need.
 */
#include "server.h"

#include <crypt.h>
#include <errno.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <sys/stat.h>

struct entry {
    char *user;
    char *hash;
};

struct xcp__auth {
    pthread_mutex_t lock;
    char *file;               /* NULL: PAM */
    char *service;
    struct entry *entries;
    size_t n;
    struct timespec mtime;    /* of the loaded file */
    off_t size;
    ino_t ino;
};

static void free_entries(xcp__auth *a)
{
    size_t i;

    for (i = 0; i < a->n; i++) {
        free(a->entries[i].user);
        free(a->entries[i].hash);
    }
    free(a->entries);
    a->entries = NULL;
    a->n = 0;
}

/* (Re)load the file when it changed; lock held. */
static int load(xcp__auth *a)
{
    struct stat st;
    FILE *f;
    char line[4096];
    unsigned lineno = 0;
    struct entry *v = NULL;
    size_t n = 0;

    if (stat(a->file, &st) < 0)
        return xcp__internal("cannot read the auth file %s: %s", a->file,
                             strerror(errno));
    if (a->entries && st.st_mtim.tv_sec == a->mtime.tv_sec &&
        st.st_mtim.tv_nsec == a->mtime.tv_nsec && st.st_size == a->size &&
        st.st_ino == a->ino)
        return 0;
    if (!(f = fopen(a->file, "re")))
        return xcp__internal("cannot read the auth file %s: %s", a->file,
                             strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        char *p = line, *colon, *end;
        void *nv;
        lineno++;
        end = p + strlen(p);
        while (end > p && (end[-1] == '\n' || end[-1] == '\r' ||
                           end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        colon = strchr(p, ':');
        if (!colon || colon == p || !colon[1]) {
            xcp__log(XCP__LOG_WARN, "%s:%u: not a user:HASH line, ignored",
                     a->file, lineno);
            continue;
        }
        *colon = '\0';
        if (!(nv = realloc(v, (n + 1) * sizeof(*v))))
            goto oom;
        v = nv;
        v[n].user = xcp__strdup(p);
        v[n].hash = xcp__strdup(colon + 1);
        n++;
        if (!v[n - 1].user || !v[n - 1].hash)
            goto oom;
    }
    fclose(f);
    free_entries(a);
    a->entries = v;
    a->n = n;
    a->mtime = st.st_mtim;
    a->size = st.st_size;
    a->ino = st.st_ino;
    return 0;
oom:
    fclose(f);
    while (n-- > 0) {
        free(v[n].user);
        free(v[n].hash);
    }
    free(v);
    return xcp__oom();
}

int xcp__auth_open(xcp__auth **out, const char *auth_file,
                   const char *pam_service)
{
    xcp__auth *a = xcp__calloc(1, sizeof(*a));
    int rc;

    if (!a)
        return xcp__oom();
    pthread_mutex_init(&a->lock, NULL);
    a->service = xcp__strdup(pam_service ? pam_service : "xapi");
    if (!a->service || (auth_file && !(a->file = xcp__strdup(auth_file)))) {
        xcp__auth_close(a);
        return xcp__oom();
    }
    if (a->file && (rc = load(a)) < 0) {
        xcp__auth_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

void xcp__auth_close(xcp__auth *a)
{
    if (!a)
        return;
    free_entries(a);
    free(a->file);
    free(a->service);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* Compare without an early exit, so timing says nothing of the hash. */
static bool same(const char *x, const char *y)
{
    size_t lx = strlen(x), ly = strlen(y), i;
    unsigned char d = lx != ly;

    for (i = 0; i < lx && i < ly; i++)
        d |= (unsigned char)(x[i] ^ y[i]);
    return d == 0;
}

static int check_file(xcp__auth *a, const char *user, const char *password)
{
    struct crypt_data *cd;
    char *hash = NULL;
    const char *got;
    bool ok, known = false;
    size_t i;
    int rc;

    /* The lock guards the table (reloads); hashing, the slow part, runs
     * outside it so concurrent logins hash in parallel. */
    pthread_mutex_lock(&a->lock);
    if ((rc = load(a)) < 0) {
        pthread_mutex_unlock(&a->lock);
        return rc;
    }
    for (i = 0; i < a->n; i++)
        if (!strcmp(a->entries[i].user, user)) {
            hash = a->entries[i].hash;
            known = true;
        }
    hash = xcp__strdup(hash ? hash : "$6$xcpdxcpdxcpd$");
    pthread_mutex_unlock(&a->lock);
    if (!hash || !(cd = xcp__calloc(1, sizeof(*cd)))) {
        free(hash);
        return xcp__oom();
    }
    /* An unknown user still costs one hash, like a known one. crypt_rn
     * (libxcrypt) rather than crypt_r: same work, NULL on failure, and
     * not interposed by sanitizers whose crypt_r wrapper breaks. */
    got = crypt_rn(password, hash, cd, (int)sizeof(*cd));
    ok = known && got && got[0] != '*' && same(got, hash);
    free(cd);
    free(hash);
    return ok ? 0 : XCP__ERR_SESSION_AUTHENTICATION_FAILED_USER(
        user, "Authentication failure");
}

static int conv(int n, const struct pam_message **msg,
                struct pam_response **resp, void *arg)
{
    struct pam_response *r;
    int i;

    if (n <= 0 || !(r = calloc((size_t)n, sizeof(*r))))
        return PAM_CONV_ERR;
    for (i = 0; i < n; i++) {
        if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
            msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
            if (!(r[i].resp = strdup(arg))) {
                while (i-- > 0)
                    free(r[i].resp);
                free(r);
                return PAM_CONV_ERR;
            }
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

static void no_delay(int retval, unsigned usec_delay, void *appdata)
{
    XCP__UNUSED(retval);
    XCP__UNUSED(usec_delay);
    XCP__UNUSED(appdata);
}

/* libpam's functions this file calls, once loaded (pam_load). */
static struct {
    int (*start)(const char *, const char *, const struct pam_conv *,
                 pam_handle_t **);
    int (*start_confdir)(const char *, const char *, const struct pam_conv *,
                         const char *, pam_handle_t **);
    int (*set_item)(pam_handle_t *, int, const void *);
    int (*authenticate)(pam_handle_t *, int);
    int (*acct_mgmt)(pam_handle_t *, int);
    int (*end)(pam_handle_t *, int);
    char why[256]; /* why it is not there */
} pam;
static pthread_once_t pam_once = PTHREAD_ONCE_INIT;

static void pam_load(void)
{
    static const char lib[] = "libpam.so.0";
    const xcp__dl_sym syms[] = {
        {(void **)&pam.start, "pam_start"},
        {(void **)&pam.start_confdir, "pam_start_confdir"},
        {(void **)&pam.set_item, "pam_set_item"},
        {(void **)&pam.authenticate, "pam_authenticate"},
        {(void **)&pam.acct_mgmt, "pam_acct_mgmt"},
        {(void **)&pam.end, "pam_end"},
    };

    /* On failure every function is NULL: check_pam looks at pam.start. */
    (void)xcp__dl_load(lib, syms, XCP__ARRAY_LEN(syms), pam.why,
                       sizeof(pam.why));
}

static int check_pam(xcp__auth *a, const char *user, const char *password)
{
    struct pam_conv c = {conv, (void *)password};
    pam_handle_t *h = NULL;
    int r;

    pthread_once(&pam_once, pam_load);
    if (!pam.start)
        return XCP__ERR_INTERNAL_ERROR(pam.why);
    /* Modules are not all thread-safe: one conversation at a time. */
    pthread_mutex_lock(&a->lock);
    if (strchr(a->service, '/')) {
        /* A service file given by path: its directory is the config. */
        char dir[4096];
        const char *slash = strrchr(a->service, '/');
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - a->service),
                 a->service);
        r = pam.start_confdir(slash + 1, user, &c, *dir ? dir : "/", &h);
    } else {
        r = pam.start(a->service, user, &c, &h);
    }
    if (r == PAM_SUCCESS)
        r = pam.set_item(h, PAM_FAIL_DELAY, (const void *)no_delay);
    if (r == PAM_SUCCESS)
        r = pam.authenticate(h, PAM_SILENT);
    if (r == PAM_SUCCESS)
        r = pam.acct_mgmt(h, PAM_SILENT);
    if (h)
        pam.end(h, r);
    pthread_mutex_unlock(&a->lock);
    if (r == PAM_SUCCESS)
        return 0;
    return XCP__ERR_SESSION_AUTHENTICATION_FAILED_USER(
        user, r == PAM_ACCT_EXPIRED || r == PAM_NEW_AUTHTOK_REQD
                  ? "The account is expired or locked"
                  : "Authentication failure");
}

int xcp__auth_check(xcp__auth *a, const char *user, const char *password)
{
    if (!user || !*user || !password)
        return XCP__ERR_SESSION_AUTHENTICATION_FAILED_USER(
            user ? user : "", "Authentication failure");
    return a->file ? check_file(a, user, password)
                   : check_pam(a, user, password);
}
