/*
 * tests/api/test_guest_metrics.c - VM_guest_metrics on the sim, whose
 * modelled guest agent reports after boot what XCP-ng's guest tools do:
 * os_version (name and distro from the template), PV_drivers_version, an
 * address on each VIF's network in networks ("0/ip"), memory. The record
 * comes through events, so a client waiting for a VM's IP with event.from
 * sees it; a new boot drops the previous record, as XAPI's VM.start.
 */
#include "helpers.h"

#include <time.h>

TestSuite(guest_metrics, .init = api_setup, .fini = api_teardown);

static const char *str_member(const xcp_value *v, const char *key)
{
    const xcp_value *m = xcp_value_struct_get(v, key);

    return m && m->kind == XCP_VAL_STRING ? m->u.s : "";
}

/* event.from on these classes from token (NULL: a fresh token); the
 * token to continue from is returned (free it), the batch in *res. */
static char *ev_from(xcp_value *res, const char *token, double timeout)
{
    xcp_string_set cls = {0};
    char *next;

    xcp_string_set_add(&cls, "vm_guest_metrics");
    xcp_string_set_add(&cls, "vm");
    memset(res, 0, sizeof(*res));
    OK(xcp_event_from(S, res, &cls, token ? token : "", timeout));
    xcp_string_set_dispose(&cls);
    next = strdup(str_member(res, "token"));
    cr_assert_not_null(next);
    return next;
}

/* The "add" event of a vm_guest_metrics in res, or NULL. */
static const xcp_value *guest_add(const xcp_value *res)
{
    const xcp_value *e = xcp_value_struct_get(res, "events");
    size_t i;

    for (i = 0; e && e->kind == XCP_VAL_ARRAY && i < e->u.arr.n; i++) {
        const xcp_value *ev = &e->u.arr.items[i];
        if (!strcmp(str_member(ev, "class"), "vm_guest_metrics") &&
            !strcmp(str_member(ev, "operation"), "add"))
            return ev;
    }
    return NULL;
}

/* What a script waiting for the VM's IP does, with events (no polling):
 * returns the guest metrics' "0/ip" from the add event's snapshot. The
 * token must predate the boot. */
static char *wait_for_ip(char *token)
{
    time_t deadline = time(NULL) + 120; /* generous: a loaded machine */
    char *ip = NULL;

    while (!ip && time(NULL) < deadline) {
        xcp_value res;
        const xcp_value *ev, *snap, *nets;
        char *next = ev_from(&res, token, 10.0);
        free(token);
        token = next;
        if ((ev = guest_add(&res)) &&
            (snap = xcp_value_struct_get(ev, "snapshot")) &&
            (nets = xcp_value_struct_get(snap, "networks")) &&
            *str_member(nets, "0/ip"))
            ip = strdup(str_member(nets, "0/ip"));
        xcp_value_dispose(&res);
    }
    free(token);
    cr_assert_not_null(ip, "no VM_guest_metrics with 0/ip came as an event");
    return ip;
}

static char *fresh_token(void)
{
    xcp_value res;
    char *t = ev_from(&res, NULL, 0);

    xcp_value_dispose(&res);
    return t;
}

static char *map_get(const xcp_string_map *m, const char *key)
{
    size_t i;

    for (i = 0; i < m->n; i++)
        if (!strcmp(m->items[i].key, key))
            return m->items[i].value;
    return NULL;
}

static void assert_map(const xcp_string_map *m, const char *key,
                       const char *want)
{
    const char *v = map_get(m, key);

    cr_assert_not_null(v, "no key %s", key);
    cr_assert_str_eq(v, want, "%s", key);
}

Test(guest_metrics, agent_reports_os_drivers_address_memory_after_boot)
{
    xcp_vm vm = api_install("web");
    xcp_vm_guest_metrics gm;
    xcp_string_map os = {0}, pv = {0}, nets = {0}, mem = {0};
    char *ip, *token;
    bool live = false;

    api_add_vif(vm, "0", "");
    token = fresh_token();
    OK(xcp_vm_start(S, vm, false, false));
    ip = wait_for_ip(token);
    cr_assert(!strncmp(ip, "10.", 3), "address %s", ip);
    OK(xcp_vm_get_guest_metrics(S, &gm, vm));
    cr_assert(!api_is_null(gm.ref));
    OK(xcp_vm_guest_metrics_get_os_version(S, &os, gm));
    assert_map(&os, "name", T_DEBIAN);
    assert_map(&os, "distro", "debian");
    assert_map(&os, "major", "12");
    OK(xcp_vm_guest_metrics_get_PV_drivers_version(S, &pv, gm));
    assert_map(&pv, "major", "8");
    cr_assert_not_null(map_get(&pv, "minor"));
    OK(xcp_vm_guest_metrics_get_networks(S, &nets, gm));
    assert_map(&nets, "0/ip", ip);
    assert_map(&nets, "0/ipv4/0", ip);
    OK(xcp_vm_guest_metrics_get_memory(S, &mem, gm));
    cr_assert_gt(atoll(map_get(&mem, "total") ? map_get(&mem, "total") : "0"),
                 0);
    OK(xcp_vm_guest_metrics_get_live(S, &live, gm));
    cr_assert(live);
    free(ip);
    xcp_string_map_dispose(&os);
    xcp_string_map_dispose(&pv);
    xcp_string_map_dispose(&nets);
    xcp_string_map_dispose(&mem);
}

/* Two guests on one network get two addresses on that network. */
Test(guest_metrics, guests_on_one_network_share_its_prefix)
{
    xcp_vm a = api_install("a"), b = api_install("b");
    char *ipa, *ipb, *ta, *tb;

    api_add_vif(a, "0", "");
    api_add_vif(b, "0", "");
    ta = fresh_token();
    OK(xcp_vm_start(S, a, false, false));
    ipa = wait_for_ip(ta);
    tb = fresh_token();
    OK(xcp_vm_start(S, b, false, false));
    ipb = wait_for_ip(tb);
    cr_assert_str_neq(ipa, ipb);
    cr_assert(!strncmp(ipa, ipb, strchr(ipa + 3, '.') - ipa),
              "%s and %s are not on one network", ipa, ipb);
    free(ipa);
    free(ipb);
}

/* As XAPI's VM.start: the previous boot's record goes (a clone's, or a
 * stale one, would show addresses that are not the guest's). */
Test(guest_metrics, a_new_boot_drops_the_previous_record)
{
    xcp_vm vm = api_install("vm");
    xcp_vm_guest_metrics old, now;
    char *token, *uuid = NULL;

    api_add_vif(vm, "0", "");
    token = fresh_token();
    OK(xcp_vm_start(S, vm, false, false));
    free(wait_for_ip(token));
    OK(xcp_vm_get_guest_metrics(S, &old, vm));
    OK(xcp_vm_hard_shutdown(S, vm));
    token = fresh_token();
    OK(xcp_vm_start(S, vm, false, false));
    assert_error(xcp_vm_guest_metrics_get_uuid(S, &uuid, old),
                 "HANDLE_INVALID", "VM_guest_metrics", old.ref);
    free(wait_for_ip(token));
    OK(xcp_vm_get_guest_metrics(S, &now, vm));
    cr_assert_str_neq(now.ref, old.ref);
}
