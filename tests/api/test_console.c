/*
 * tests/api/test_console.c - xcp_console_open on the sim hypervisor: the
 * stream of a running VM's text console (boot text, login prompt, echo,
 * the farewell at shutdown, end of file when the domain goes), its RFB
 * console's handshake and the text it draws in a font, the refusals
 * (bad console ref, a halted VM's console, a closed session), and where
 * consoles are: locations naming the host's management address, as XAPI
 * writes them.
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

/* Reads exactly n bytes from fd (20 s per read), or fails the test. */
static void read_full(int fd, void *p, size_t n)
{
    struct pollfd pf = {fd, POLLIN, 0};
    size_t got = 0;
    ssize_t r;

    while (got < n) {
        cr_assert_gt(poll(&pf, 1, 20000), 0, "RFB server silent");
        r = read(fd, (char *)p + got, n - got);
        cr_assert_gt(r, 0, "RFB stream ended after %zu of %zu bytes", got, n);
        got += (size_t)r;
    }
}

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/*
 * An RFB client's first steps (RFC 6143): version, security "None",
 * shared ClientInit; the screen's width and height and its bytes per
 * pixel from ServerInit.
 */
static void rfb_handshake(int fd, unsigned *w, unsigned *h, unsigned *bpp)
{
    unsigned char b[256], n, one = 1;
    uint32_t len;

    read_full(fd, b, 12);
    cr_assert_eq(write(fd, "RFB 003.008\n", 12), 12);
    read_full(fd, &n, 1);
    cr_assert_gt(n, 0, "no security types offered");
    read_full(fd, b, n);
    cr_assert(memchr(b, 1, n) != NULL, "security type None not offered");
    cr_assert_eq(write(fd, &one, 1), 1);
    read_full(fd, b, 4); /* SecurityResult */
    cr_assert_eq(b[0] | b[1] | b[2] | b[3], 0, "security handshake failed");
    cr_assert_eq(write(fd, &one, 1), 1); /* ClientInit: shared */
    read_full(fd, b, 24);                /* ServerInit */
    *w = be16(b);
    *h = be16(b + 2);
    *bpp = b[4] / 8;
    len = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 |
          (uint32_t)b[22] << 8 | b[23];
    cr_assert_lt(len, sizeof(b));
    read_full(fd, b, len); /* the desktop name */
}

/*
 * Asks for the whole screen and reads the raw FramebufferUpdate into fb
 * (w * h * bpp bytes, the server's pixel format).
 */
static void rfb_screen(int fd, unsigned w, unsigned h, unsigned bpp,
                       unsigned char *fb)
{
    unsigned char req[10] = {3, 0, 0, 0, 0, 0, w >> 8, w & 255, h >> 8,
                             h & 255};
    unsigned char m[4], r[12];
    unsigned i, y, nrect;

    cr_assert_eq(write(fd, req, sizeof(req)), (ssize_t)sizeof(req));
    read_full(fd, m, 4);
    cr_assert_eq(m[0], 0, "server message %u, not FramebufferUpdate", m[0]);
    nrect = be16(m + 2);
    for (i = 0; i < nrect; i++) {
        unsigned rx, ry, rw, rh;

        read_full(fd, r, 12);
        rx = be16(r), ry = be16(r + 2), rw = be16(r + 4), rh = be16(r + 6);
        cr_assert_eq(r[8] | r[9] | r[10] | r[11], 0, "not raw encoding");
        cr_assert_leq(rx + rw, w);
        cr_assert_leq(ry + rh, h);
        for (y = ry; y < ry + rh; y++)
            read_full(fd, fb + ((size_t)y * w + rx) * bpp, (size_t)rw * bpp);
    }
}

/*
 * The 8x16 cell at column col of the top text row as a bitmap: one byte
 * per pixel row, a bit per lit pixel (anything not black).
 */
static void cell_bits(const unsigned char *fb, unsigned w, unsigned bpp,
                      unsigned col, unsigned char bits[16])
{
    unsigned x, y, k;

    for (y = 0; y < 16; y++) {
        bits[y] = 0;
        for (x = 0; x < 8; x++) {
            const unsigned char *px = fb + ((size_t)y * w + col * 8 + x) * bpp;
            bool lit = false;

            for (k = 0; k < bpp; k++)
                lit |= px[k] != 0;
            bits[y] |= (unsigned char)(lit << (7 - x));
        }
    }
}

/*
 * The RFB console draws the boot text in a font: the lit cells of the top
 * row are not all one shape (the font-less fallback draws every printable
 * character as the same block). Needs a Linux console font, which
 * tools/deps.sh installs (console-setup-linux).
 */
Test(console, rfb_draws_the_boot_text_in_glyphs)
{
    xcp_vm vm = api_install_from(T_OTHER, "hvm1");
    unsigned w, h, bpp, col, lit = 0, shapes = 0, tries;
    unsigned char *fb, seen[80][16];
    int fd = -1;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_console_open(S, &fd, console_of(vm, XCP_CONSOLE_PROTOCOL_RFB)));
    rfb_handshake(fd, &w, &h, &bpp);
    cr_assert(w >= 80 * 8 && h >= 16 && bpp >= 1 && bpp <= 4, "%ux%ux%u", w,
              h, bpp);
    fb = calloc((size_t)w * h, bpp);
    cr_assert(fb);
    /* the boot text may still be on its way: look again for up to 20 s */
    for (tries = 0; tries < 200 && lit < 8; tries++) {
        if (tries)
            usleep(100000);
        rfb_screen(fd, w, h, bpp, fb);
        for (col = lit = shapes = 0; col < 80; col++) {
            unsigned char bits[16];
            unsigned j;
            bool any = false, same = false;

            cell_bits(fb, w, bpp, col, bits);
            for (j = 0; j < 16; j++)
                any |= bits[j] != 0;
            if (!any)
                continue;
            for (j = 0; j < lit && !same; j++)
                same = memcmp(seen[j], bits, 16) == 0;
            memcpy(seen[lit++], bits, 16);
            shapes += !same;
        }
    }
    cr_assert_geq(lit, 8, "the top row shows %u characters", lit);
    cr_expect_geq(shapes, 4,
                  "%u lit cells but %u shapes: blocks, not a font (is a "
                  "console font installed?)",
                  lit, shapes);
    free(fb);
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

/* A console the driver cannot serve (here: a fault says so) is refused
 * with the driver's reason, not INTERNAL_ERROR. */
Test(console, unservable_console_is_operation_not_allowed)
{
    xcp_vm vm;
    int fd = 7;

    api_reopen_with_faults("console_open=ENOTSUP");
    vm = api_install("web1");
    OK(xcp_vm_start(S, vm, false, false));
    assert_error_name(xcp_console_open(S, &fd, console_of(
                                          vm, XCP_CONSOLE_PROTOCOL_VT100)),
                      "OPERATION_NOT_ALLOWED");
    cr_expect_eq(fd, -1);
}
