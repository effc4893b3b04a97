/*
 * Embedded libxcp in a dozen lines: open the local engine, install a VM
 * from a template, start it, print its power state and domain id.
 *
 *   cc hello.c $(pkg-config --cflags --libs libxcp)
 */
#include <stdio.h>
#include <xcp/xcp.h>

static int fail(const char *what)
{
    const xcp_error *e = xcp_error_last();

    fprintf(stderr, "%s: %s\n", what, e ? e->name : "failed");
    return 1;
}

int main(void)
{
    xcp_open_options opts = {XCP_OPEN_OPTIONS_VERSION};
    xcp_session *s;
    xcp_vm_set templates;
    xcp_vm vm;
    enum xcp_vm_power_state ps;
    int64_t domid;

    if (xcp_session_open_local(&s, &opts) < 0)
        return fail("open");
    if (xcp_vm_get_by_name_label(s, &templates, "Other install media") < 0 ||
        templates.n == 0)
        return fail("template");
    if (xcp_vm_clone(s, &vm, templates.items[0], "hello") < 0 ||
        xcp_vm_provision(s, vm) < 0 || xcp_vm_start(s, vm, false, false) < 0)
        return fail("install and start");
    if (xcp_vm_get_power_state(s, &ps, vm) < 0 ||
        xcp_vm_get_domid(s, &domid, vm) < 0)
        return fail("read");
    printf("VM %s is %s as domain %lld\n", vm.ref,
           xcp_vm_power_state_to_string(ps), (long long)domid);
    xcp_vm_set_dispose(&templates);
    xcp_session_close(s);
    return 0;
}
