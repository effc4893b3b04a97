/*
 * tests/api/test_console.c - xcp_console_open on the sim hypervisor: the
 * stream of a running VM's text console (boot text, login prompt, echo,
 * the farewell at shutdown, end of file when the domain goes), its RFB
 * console's ProtocolVersion, the refusals (bad console ref, a halted
 * VM's console, a closed session), and where consoles are: locations
 * naming the host's management address, as XAPI writes them.
 */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

TestSuite(console, .init = api_setup, .fini = api_teardown);

/* Reads from fd until want shows up (or EOF, or 20 s): what came. */
static char *read_until(int fd, const char *want)
{
    static char buf[65536];
    size_t len = 0;
    struct pollfd pf = {fd, POLLIN, 0};
    ssize_t n;

    buf[0] = '\0';
    while (len + 1 < sizeof(buf) && !(want && strstr(buf, want))) {
        if (poll(&pf, 1, 20000) <= 0)
            break;
        n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return buf;
}

/* The console of vm with protocol proto. */
static xcp_console console_of(xcp_vm vm, enum xcp_console_protocol proto)
{
    xcp_console_set cs = {0};
    xcp_console c = {{0}};
    enum xcp_console_protocol p;
    size_t i;

    OK(xcp_vm_get_consoles(S, &cs, vm));
    for (i = 0; i < cs.n; i++) {
        OK(xcp_console_get_protocol(S, &p, cs.items[i]));
        if (p == proto)
            c = cs.items[i];
    }
    xcp_console_set_dispose(&cs);
    cr_assert(c.ref[0], "no %s console", xcp_console_protocol_to_string(proto));
    return c;
}

Test(console, vt100_shows_boot_text_login_and_echoes)
{
    xcp_vm vm = api_install("web1");
    xcp_console con;
    int fd = -1;
    char *got;

    OK(xcp_vm_start(S, vm, false, false));
    con = console_of(vm, XCP_CONSOLE_PROTOCOL_VT100);
    OK(xcp_console_open(S, &fd, con));
    cr_assert_geq(fd, 0);
    got = read_until(fd, "login: ");
    cr_expect(strstr(got, "Linux version") != NULL, "%s", got);
    cr_expect(strstr(got, "login: ") != NULL, "%s", got);
    cr_assert_eq(write(fd, "root\r", 5), 5);
    got = read_until(fd, "root\r\n");
    cr_expect(strstr(got, "root\r\n") != NULL, "no echo: %s", got);
    close(fd);
}

Test(console, vt100_shows_shutdown_then_ends)
{
    xcp_vm vm = api_install("web1");
    int fd = -1;
    char *got;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_console_open(S, &fd, console_of(vm, XCP_CONSOLE_PROTOCOL_VT100)));
    read_until(fd, "login: ");
    OK(xcp_vm_clean_shutdown(S, vm));
    got = read_until(fd, NULL); /* to end of file */
    cr_expect(strstr(got, "reboot: Power down") != NULL, "%s", got);
    close(fd);
}

Test(console, rfb_speaks_rfb_3_8)
{
    xcp_vm vm = api_install_from(T_OTHER, "hvm1");
    int fd = -1;
    char *got;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_console_open(S, &fd, console_of(vm, XCP_CONSOLE_PROTOCOL_RFB)));
    got = read_until(fd, "\n");
    cr_expect_str_eq(got, "RFB 003.008\n");
    close(fd);
}

Test(console, bad_ref_is_handle_invalid)
{
    xcp_console con;
    int fd = 7;

    SET_REF(con, "OpaqueRef:nonesuch");
    assert_error(xcp_console_open(S, &fd, con), "HANDLE_INVALID", "console",
                 "OpaqueRef:nonesuch");
    cr_expect_eq(fd, -1);
}

Test(console, halted_vm_console_is_gone)
{
    xcp_vm vm = api_install("web1");
    xcp_console con;
    int fd = 7;

    OK(xcp_vm_start(S, vm, false, false));
    con = console_of(vm, XCP_CONSOLE_PROTOCOL_VT100);
    OK(xcp_vm_hard_shutdown(S, vm));
    assert_error(xcp_console_open(S, &fd, con), "HANDLE_INVALID", "console",
                 con.ref);
    cr_expect_eq(fd, -1);
}

Test(console, paused_vm_console_opens)
{
    xcp_vm vm = api_install("web1");
    int fd = -1;

    OK(xcp_vm_start(S, vm, true, false));
    OK(xcp_console_open(S, &fd, console_of(vm, XCP_CONSOLE_PROTOCOL_VT100)));
    cr_expect(strstr(read_until(fd, "login: "), "login: ") != NULL);
    close(fd);
}

/* ---- where a console is: its location -------------------------------- */

/* The IPv4 address of device dev, as the system has it ("" if none). */
static void live_ipv4(const char *dev, char out[INET_ADDRSTRLEN])
{
    struct ifaddrs *ifa, *i;

    out[0] = '\0';
    cr_assert_eq(getifaddrs(&ifa), 0);
    for (i = ifa; i && !out[0]; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
            !strcmp(i->ifa_name, dev))
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                      out, INET_ADDRSTRLEN);
    freeifaddrs(ifa);
}

/* Asserts every console of vm is at https://<host.address>/console?ref=
 * <its ref>, as XAPI writes it; returns how many vm has. */
static size_t assert_locations(xcp_vm vm)
{
    xcp_console_set cs = {0};
    char *addr = NULL, *loc = NULL, want[512];
    size_t i, n;

    OK(xcp_host_get_address(S, &addr, api_host()));
    cr_assert(addr && addr[0], "host.address is empty");
    OK(xcp_vm_get_consoles(S, &cs, vm));
    for (i = 0; i < cs.n; i++) {
        OK(xcp_console_get_location(S, &loc, cs.items[i]));
        snprintf(want, sizeof(want), "https://%s/console?ref=%s", addr,
                 cs.items[i].ref);
        cr_assert_str_eq(loc, want);
        xcp_free(loc);
    }
    n = cs.n;
    xcp_console_set_dispose(&cs);
    xcp_free(addr);
    return n;
}

Test(console, location_is_the_host_address_and_console_ref)
{
    xcp_vm vm = api_install("web1");

    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(assert_locations(vm), 2);
}

/* host.address is the management PIF's IP, read from the system, as XAPI
 * keeps it (not whichever address the first boot happened to see). */
Test(console, host_address_is_the_management_pif_ip)
{
    xcp_pif_set pifs = {0};
    xcp_pif_record r;
    char live[INET_ADDRSTRLEN] = "", *addr = NULL;
    bool found = false;
    size_t i;

    OK(xcp_pif_get_all(S, &pifs));
    for (i = 0; i < pifs.n && !found; i++) {
        xcp_pif_record_init(&r);
        OK(xcp_pif_get_record(S, &r, pifs.items[i]));
        if (r.management) {
            found = true;
            live_ipv4(r.device, live);
            if (live[0])
                cr_assert_str_eq(r.IP, live, "PIF %s", r.device);
        }
        xcp_pif_record_dispose(&r);
    }
    xcp_pif_set_dispose(&pifs);
    if (!found || !live[0])
        cr_skip_test("this machine has no NIC with an IPv4 address");
    OK(xcp_host_get_address(S, &addr, api_host()));
    cr_assert_str_eq(addr, live);
    xcp_free(addr);
}

/* A restart reads the address again, and the running VMs' consoles move
 * with it (XAPI's refresh_console_urls). */
Test(console, locations_follow_the_host_address_across_a_restart)
{
    xcp_vm vm = api_install("web1");

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_host_set_address(S, api_host(), "198.51.100.7"));
    api_reopen();
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(assert_locations(vm), 2);
}
