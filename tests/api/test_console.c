/*
 * tests/api/test_console.c - xcp_console_open on the sim hypervisor: the
 * stream of a running VM's text console (boot text, login prompt, echo,
 * the farewell at shutdown, end of file when the domain goes), its RFB
 * console's ProtocolVersion, and the refusals (bad console ref, a halted
 * VM's console, a closed session).
 */
#include "helpers.h"

#include <errno.h>
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
