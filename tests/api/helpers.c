/*
 * tests/api/helpers.c - fixtures shared by the public-API tests: a fresh
 * state directory and local session per test, VM installation like
 * `xe vm-install`, and XenAPI error assertions.
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef API_SRCDIR
#define API_SRCDIR "."
#endif

xcp_session *S;
char api_dir[256];

static void env_default(const char *name, const char *value)
{
    setenv(name, value, 0);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void print_error(char *buf, size_t len)
{
    const xcp_error *e = xcp_error_last();
    size_t i, o;

    if (!e) {
        snprintf(buf, len, "(no error set)");
        return;
    }
    o = (size_t)snprintf(buf, len, "%s [", e->name ? e->name : "(null)");
    for (i = 0; i < e->nparams && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s\"%s\"", i ? ", " : "",
                              e->params[i] ? e->params[i] : "(null)");
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

void api_assert_ok_(const char *file, int line, int rc, const char *what)
{
    char msg[1024];

    if (rc >= 0)
        return;
    print_error(msg, sizeof(msg));
    cr_assert_fail("%s:%d: %s returned %d: %s", file, line, what, rc, msg);
}

void api_assert_error_(const char *file, int line, int rc, const char *name,
                       size_t nparams, const char *const *params)
{
    const xcp_error *e = xcp_error_last();
    char msg[1024];
    size_t i;

    print_error(msg, sizeof(msg));
    cr_assert(rc < 0, "%s:%d: expected %s, the call succeeded (rc %d)", file,
              line, name, rc);
    cr_assert_not_null(e, "%s:%d: rc %d but no error set", file, line, rc);
    cr_assert(e->code == rc, "%s:%d: error code %d != rc %d (%s)", file,
              line, e->code, rc, msg);
    cr_assert(e->name && !strcmp(e->name, name),
              "%s:%d: expected %s, got %s", file, line, name, msg);
    cr_assert(e->nparams == nparams,
              "%s:%d: expected %zu params for %s, got %s", file, line,
              nparams, name, msg);
    for (i = 0; i < nparams; i++) {
        if (!params[i])
            continue;
        cr_assert(e->params[i] && !strcmp(e->params[i], params[i]),
                  "%s:%d: %s param %zu: expected \"%s\", got %s", file, line,
                  name, i, params[i], msg);
    }
}

void api_assert_error_name_(const char *file, int line, int rc,
                            const char *name)
{
    const xcp_error *e = xcp_error_last();
    char msg[1024];

    print_error(msg, sizeof(msg));
    cr_assert(rc < 0, "%s:%d: expected %s, the call succeeded (rc %d)", file,
              line, name, rc);
    cr_assert(e && e->name && !strcmp(e->name, name),
              "%s:%d: expected %s, got %s", file, line, name, msg);
}

/* The driver sessions open (api_reopen_with_hv). */
static const char *api_hv = "sim";

xcp_session *api_session(const char *originator)
{
    xcp_open_options o;
    xcp_session *s = NULL;

    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = api_dir;
    o.hv = api_hv;
    o.originator = originator;
    OK(xcp_session_open_local(&s, &o));
    cr_assert_not_null(s);
    return s;
}

void api_open(void)
{
    S = api_session("tests/api");
}

void api_setup(void)
{
    api_hv = "sim";
    env_default("XCP_HV", "sim");
    env_default("XCP_TEMPLATES", API_SRCDIR "/data/templates.yaml");
    env_default("XCP_SIM_HOST_MEMORY", "64GiB");
    env_default("XCP_SIM_HOST_CPUS", "8");
    env_default("XCP_DB_FSYNC", "never");
    snprintf(api_dir, sizeof(api_dir), "%s/xcp-api-test.XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR")
                                                   : "/tmp");
    cr_assert_not_null(mkdtemp(api_dir), "mkdtemp %s", api_dir);
    api_open();
}

void api_teardown(void)
{
    if (S)
        xcp_session_close(S);
    S = NULL;
    if (api_dir[0])
        nftw(api_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    api_dir[0] = '\0';
}

void api_reopen(void)
{
    xcp_session_close(S);
    S = NULL;
    api_open();
}

void api_reopen_with_hv(const char *hv)
{
    api_hv = hv;
    api_reopen();
}

void api_reopen_with_faults(const char *faults)
{
    xcp_session_close(S);
    S = NULL;
    setenv("XCP_SIM_FAULTS", faults, 1);
    api_open();
    unsetenv("XCP_SIM_FAULTS");
}

void api_hang_guests(int timeout_ms)
{
    char ms[32];

    snprintf(ms, sizeof(ms), "%d", timeout_ms);
    setenv("XCP_CLEAN_SHUTDOWN_TIMEOUT_MS", ms, 1);
    api_reopen_with_faults("hang=*");
}

xcp_vm api_template(const char *name)
{
    xcp_vm_set set = {0};
    xcp_vm vm;

    OK(xcp_vm_get_by_name_label(S, &set, name));
    cr_assert_eq(set.n, 1, "template \"%s\": %zu VMs", name, set.n);
    vm = set.items[0];
    xcp_vm_set_dispose(&set);
    return vm;
}

xcp_vm api_install_from(const char *tmpl, const char *name)
{
    xcp_vm vm;

    OK(xcp_vm_clone(S, &vm, api_template(tmpl), name));
    OK(xcp_vm_provision(S, vm));
    return vm;
}

xcp_vm api_install(const char *name)
{
    return api_install_from(T_DEBIAN, name);
}

xcp_vif api_add_vif(xcp_vm vm, const char *device, const char *mac)
{
    xcp_vif_record r;
    xcp_vif vif;

    xcp_vif_record_init(&r);
    r.device = (char *)device;
    r.network = api_network();
    r.VM = vm;
    r.MAC = (char *)(mac ? mac : "");
    r.MTU = 1500;
    r.qos_algorithm_type = (char *)"";
    OK(xcp_vif_create(S, &vif, &r));
    return vif;
}

xcp_host api_host(void)
{
    xcp_host_set set = {0};
    xcp_host h;

    OK(xcp_host_get_all(S, &set));
    cr_assert_eq(set.n, 1);
    h = set.items[0];
    xcp_host_set_dispose(&set);
    return h;
}

xcp_pool api_pool(void)
{
    xcp_pool_set set = {0};
    xcp_pool p;

    OK(xcp_pool_get_all(S, &set));
    cr_assert_eq(set.n, 1);
    p = set.items[0];
    xcp_pool_set_dispose(&set);
    return p;
}

xcp_sr api_default_sr(void)
{
    xcp_sr sr;

    OK(xcp_pool_get_default_SR(S, &sr, api_pool()));
    cr_assert(!api_is_null(sr.ref), "pool.default_SR is NULL");
    return sr;
}

xcp_network api_network(void)
{
    xcp_network_set set = {0};
    xcp_network n;

    OK(xcp_network_get_all(S, &set));
    cr_assert_geq(set.n, 1);
    n = set.items[0];
    xcp_network_set_dispose(&set);
    return n;
}

enum xcp_vm_power_state api_power(xcp_vm vm)
{
    enum xcp_vm_power_state ps = XCP_VM_POWER_STATE__UNKNOWN;

    OK(xcp_vm_get_power_state(S, &ps, vm));
    return ps;
}

int64_t api_domid(xcp_vm vm)
{
    int64_t d = -2;

    OK(xcp_vm_get_domid(S, &d, vm));
    return d;
}

bool api_ops_has(const xcp_vm_operations_set *s, enum xcp_vm_operations op)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (s->items[i] == op)
            return true;
    return false;
}

bool api_vm_set_has(const xcp_vm_set *s, xcp_vm vm)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].ref, vm.ref))
            return true;
    return false;
}

bool api_str_set_has(const xcp_string_set *s, const char *v)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (!strcmp(s->items[i], v))
            return true;
    return false;
}

bool api_is_null(const char *ref)
{
    return xcp_ref_is_null(ref);
}

bool api_vdi_allows(xcp_vdi v, enum xcp_vdi_operations op)
{
    xcp_vdi_operations_set s = {0};
    bool found = false;
    size_t i;

    OK(xcp_vdi_get_allowed_operations(S, &s, v));
    for (i = 0; i < s.n; i++)
        found = found || s.items[i] == op;
    xcp_vdi_operations_set_dispose(&s);
    return found;
}

size_t api_count_image_files(void)
{
    char dir[512];
    struct dirent *de;
    size_t n = 0, len;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/sr/local", api_dir);
    cr_assert_not_null(d = opendir(dir), "%s", dir);
    while ((de = readdir(d))) {
        len = strlen(de->d_name);
        n += len > 6 && !strcmp(de->d_name + len - 6, ".qcow2");
    }
    closedir(d);
    return n;
}

size_t api_sr_vdi_count(xcp_sr sr)
{
    xcp_vdi_set v = {0};
    size_t n;

    OK(xcp_sr_get_VDIs(S, &v, sr));
    n = v.n;
    xcp_vdi_set_dispose(&v);
    return n;
}

int api_vdi_create(xcp_vdi *out, xcp_sr sr, const char *name, int64_t size)
{
    xcp_vdi_record r;

    xcp_vdi_record_init(&r);
    r.name_label = (char *)name;
    r.name_description = (char *)"";
    r.SR = sr;
    r.virtual_size = size;
    r.type = XCP_VDI_TYPE_USER;
    return xcp_vdi_create(S, out, &r);
}

size_t api_count_vdis(int type)
{
    xcp_vdi_record_map m = {0};
    xcp_sr sr = api_default_sr();
    size_t i, n = 0;

    OK(xcp_vdi_get_all_records(S, &m));
    for (i = 0; i < m.n; i++)
        if (!strcmp(m.records[i].SR.ref, sr.ref) &&
            (type < 0 || (int)m.records[i].type == type))
            n++;
    xcp_vdi_record_map_dispose(&m);
    return n;
}

xcp_vbd api_disk_vbd(xcp_vm vm, xcp_vdi vdi, const char *userdevice)
{
    xcp_vbd_record r;
    xcp_vbd vbd;

    xcp_vbd_record_init(&r);
    r.VM = vm;
    r.VDI = vdi;
    r.userdevice = (char *)userdevice;
    r.mode = XCP_VBD_MODE_RW;
    r.type = XCP_VBD_TYPE_DISK;
    r.unpluggable = true;
    r.qos_algorithm_type = (char *)"";
    OK(xcp_vbd_create(S, &vbd, &r));
    return vbd;
}

xcp_sr api_file_sr(const char *name, const char *fmt)
{
    xcp_string_map dc = {0}, smc = {0};
    char loc[320];
    xcp_sr sr;

    snprintf(loc, sizeof(loc), "%s/%s", api_dir, name);
    xcp_string_map_set(&dc, "location", loc);
    if (fmt)
        xcp_string_map_set(&smc, "image-format", fmt);
    OK(xcp_sr_create(S, &sr, api_host(), &dc, 0, name, "", "file", "user",
                     false, &smc));
    xcp_string_map_dispose(&dc);
    xcp_string_map_dispose(&smc);
    return sr;
}

/* Decode the base64 text s into out (cap bytes); the bytes decoded. */
static size_t unbase64(const char *s, uint8_t *out, size_t cap)
{
    static const char al[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t v = 0;
    size_t n = 0;
    int bits = 0;
    const char *p;

    for (; *s && *s != '='; s++) {
        p = strchr(al, *s);
        cr_assert_not_null(p, "bad base64 '%c'", *s);
        v = v << 6 | (uint32_t)(p - al);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            cr_assert_lt(n, cap);
            out[n++] = (uint8_t)(v >> bits);
        }
    }
    return n;
}

const char *api_changed_blocks(xcp_vdi from, xcp_vdi to, size_t *nbytes)
{
    static char list[512];
    uint8_t bits[4096];
    char *b64 = NULL;
    size_t n, i, o = 0;

    if (xcp_vdi_list_changed_blocks(S, &b64, from, to) < 0)
        return NULL;
    n = unbase64(b64, bits, sizeof(bits));
    xcp_free(b64);
    list[0] = '\0';
    for (i = 0; i < n * 8; i++)
        if (bits[i / 8] & (0x80 >> (i % 8)))
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%zu,", i);
    if (nbytes)
        *nbytes = n;
    return list;
}
