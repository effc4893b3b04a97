/*
 * hv/sim/sim_console.c - the consoles of simulated domains (console_open).
 *
 * A sim guest has the console text a Linux guest prints: a kernel banner
 * and boot lines made from its config (type, memory, vCPUs, command
 * line, name), a "login:" prompt, and, once it is asked to shut down or
 * has shut down, rebooted or crashed, the matching farewell. What a
 * client types is echoed, as a getty does before a login.
 *
 * Each open console is a socketpair: the caller gets one end, a thread of
 * this file serves the other, so the driver's instance lock is never held
 * while bytes move. vt100 consoles are the text itself; RFB consoles are
 * libvncserver's RFB 3.8 server (one screen per connection) showing the
 * same text in a 640x400 framebuffer, drawn with rfbDrawString.
 * libvncserver is loaded (dlopen) at the first RFB console: a process that
 * never serves one (xe, most embedders) does not map it and the TLS, JPEG
 * and crypto libraries it pulls in.
 *
 * The instance keeps the open consoles in a list (mutex-guarded, since
 * their threads run beside it). xcp__sim_console_changed, called on every
 * change of a domain, appends the farewell once the guest is on its way
 * down and ends the console when the domain is gone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "sim_int.h"

#ifdef XCP_HAVE_VNCSERVER
#include <rfb/keysym.h>
#include <rfb/rfb.h>
#endif

#define TEXT_MAX (64 * 1024)  /* what a console keeps of its text */
#define COLS 80
#define ROWS 25
#define CELL_W 8
#define CELL_H 16

struct con {
    pthread_mutex_t mu;
    int refs;                 /* the list's and the thread's */
    uint32_t domid;
    xcp_hv_console_protocol proto;
    int sock;                 /* the driver's end */
    int wake[2];              /* pipe: news for the thread */
    struct buf text;          /* all the console has shown (vt100 bytes) */
    size_t sent;              /* vt100: bytes of text written to sock */
    bool farewell;            /* shutdown text appended */
    bool gone;                /* the domain is gone, or the instance */
    struct con *next;         /* the list, under its mu, while pprev */
    struct con **pprev;       /* where the list points at c; NULL: off it */
};

/* The open consoles. A console's thread takes itself off when it ends, so
 * the list (and its pipes) never outlive their clients; the list is freed
 * by the last of the instance and the threads still running. */
struct xcp__sim_consoles {
    pthread_mutex_t mu;
    struct con *head;
    int refs;                 /* the instance's and one per thread */
};

/* ---- the text ------------------------------------------------------------ */

/* Uptime stamp of a kernel line, from the domain's start. */
static void stamp(struct buf *b, const struct dom *d, uint64_t now)
{
    uint64_t up = now > (uint64_t)d->start_ns ? now - (uint64_t)d->start_ns
                                              : 0;

    xcp__sim_buf_printf(b, "[%5" PRIu64 ".%06" PRIu64 "] ",
                        (uint64_t)(up / NS_PER_S),
                        (uint64_t)(up % NS_PER_S / 1000));
}

/* The host name the guest shows: its domain name, printable. */
static void hostname(const struct dom *d, char *out, size_t size)
{
    size_t i, n = 0;

    for (i = 0; d->name[i] && n + 1 < size; i++)
        out[n++] = (d->name[i] > ' ' && d->name[i] < 127) ? d->name[i] : '-';
    out[n] = '\0';
    if (!n)
        snprintf(out, size, "localhost");
}

static void boot_text(struct buf *b, const struct dom *d)
{
    const char *tty = d->type == XCP_HV_DOMAIN_HVM ? "ttyS0" : "hvc0";
    char host[XCP_HV_NAME_MAX];
    uint64_t t0 = (uint64_t)d->start_ns;

    hostname(d, host, sizeof(host));
    stamp(b, d, t0);
    xcp__sim_buf_printf(b, "Linux version 6.1.0-sim (xcp-sim) #1 SMP\r\n");
    stamp(b, d, t0);
    xcp__sim_buf_printf(b, "Command line: %s\r\n",
                        d->cmdline && *d->cmdline ? d->cmdline
                                                  : "root=/dev/xvda1 ro");
    stamp(b, d, t0);
    xcp__sim_buf_printf(b, "%s\r\n",
                        d->type == XCP_HV_DOMAIN_PV
                            ? "Booting paravirtualized kernel on Xen"
                        : d->type == XCP_HV_DOMAIN_PVH
                            ? "Booting kernel on Xen PVH"
                            : "Hypervisor detected: Xen HVM");
    stamp(b, d, t0 + 1000);
    xcp__sim_buf_printf(b, "Memory: %" PRIu64 "K/%" PRIu64 "K available\r\n",
                        d->target_pages * 4, d->max_pages * 4);
    stamp(b, d, t0 + 20 * NS_PER_MS);
    xcp__sim_buf_printf(b, "smp: Brought up 1 node, %" PRIu32 " CPUs\r\n",
                        d->vcpus_online);
    stamp(b, d, t0 + 600 * NS_PER_MS);
    xcp__sim_buf_printf(b, "Run /sbin/init as init process\r\n");
    xcp__sim_buf_printf(b, "\r\nDebian GNU/Linux 12 %s %s\r\n\r\n%s login: ",
                        host, tty, host);
}

/* The farewell of a guest going down, or that went down, for reason r. */
static void farewell_text(struct buf *b, const struct dom *d,
                          xcp_hv_shutdown_reason r, uint64_t now)
{
    xcp__sim_buf_printf(b, "\r\n");
    if (r == XCP_HV_SHUTDOWN_CRASH || r == XCP_HV_SHUTDOWN_WATCHDOG) {
        stamp(b, d, now);
        xcp__sim_buf_printf(b, "Kernel panic - not syncing: %s\r\n",
                            r == XCP_HV_SHUTDOWN_CRASH ? "Fatal exception"
                                                       : "watchdog");
        return;
    }
    if (r == XCP_HV_SHUTDOWN_SUSPEND) {
        stamp(b, d, now);
        xcp__sim_buf_printf(b, "Freezing user space processes\r\n");
        return;
    }
    xcp__sim_buf_printf(b, "         Stopping session-1.scope...\r\n"
                           "[  OK  ] Reached target System %s.\r\n",
                        r == XCP_HV_SHUTDOWN_REBOOT ? "Reboot" : "Power Off");
    stamp(b, d, now);
    xcp__sim_buf_printf(b, "reboot: %s\r\n",
                        r == XCP_HV_SHUTDOWN_REBOOT ? "Restarting system"
                                                    : "Power down");
}

/* Why d is going or has gone down, NONE while it lives on. */
static xcp_hv_shutdown_reason going_down(const struct dom *d)
{
    if (d->state == XCP_HV_STATE_SHUTDOWN)
        return d->reason;
    return d->request;
}

/* ---- the list ------------------------------------------------------------ */

static void con_put(struct con *c)
{
    bool last;

    pthread_mutex_lock(&c->mu);
    last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    if (c->sock >= 0)
        close(c->sock);
    close(c->wake[0]);
    close(c->wake[1]);
    free(c->text.p);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void con_wake(struct con *c)
{
    char one = 1;

    /* a full pipe already says there is news */
    if (write(c->wake[1], &one, 1) < 0 && errno != EAGAIN)
        return;
}

/* Tells c what became of its domain (d NULL: gone); under c->mu. */
static void con_update(struct con *c, const struct dom *d, uint64_t now)
{
    xcp_hv_shutdown_reason r;

    if (!d) {
        c->gone = true;
        return;
    }
    r = going_down(d);
    if (r != XCP_HV_SHUTDOWN_NONE && !c->farewell &&
        c->text.len < TEXT_MAX) {
        farewell_text(&c->text, d, r, now);
        c->farewell = true;
    }
}

/* Puts c on l (under l->mu): the list's reference is c's first. */
static void list_add(struct xcp__sim_consoles *l, struct con *c)
{
    c->next = l->head;
    if (c->next)
        c->next->pprev = &c->next;
    l->head = c;
    c->pprev = &l->head;
}

/* Takes c off its list (under the list's mu); true if it was on it, and
 * the caller then drops the list's reference. */
static bool list_del(struct con *c)
{
    if (!c->pprev)
        return false;
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    c->next = NULL;
    c->pprev = NULL;
    return true;
}

/* Drops a reference to l (under l->mu, which it releases): true when it
 * was the last, and l is freed. */
static bool list_unref(struct xcp__sim_consoles *l)
{
    bool last = --l->refs == 0;

    pthread_mutex_unlock(&l->mu);
    if (last) {
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
    return last;
}

void xcp__sim_console_changed(struct sim *s, uint32_t domid)
{
    struct xcp__sim_consoles *l = s->consoles;
    struct con *c, *next;
    const struct dom *d;

    if (!l)
        return;
    d = xcp__sim_dom_find(s, domid);
    pthread_mutex_lock(&l->mu);
    for (c = l->head; c; c = next) {
        next = c->next;
        if (c->domid != domid)
            continue;
        pthread_mutex_lock(&c->mu);
        con_update(c, d, xcp__sim_now(s));
        pthread_mutex_unlock(&c->mu);
        con_wake(c);
        if (!d && list_del(c)) /* the domain is gone: so is its console */
            con_put(c);
    }
    pthread_mutex_unlock(&l->mu);
}

void xcp__sim_consoles_free(struct sim *s)
{
    struct xcp__sim_consoles *l = s->consoles;
    struct con *c;

    if (!l)
        return;
    s->consoles = NULL;
    pthread_mutex_lock(&l->mu);
    while ((c = l->head)) {
        list_del(c);
        pthread_mutex_lock(&c->mu);
        c->gone = true;
        pthread_mutex_unlock(&c->mu);
        con_wake(c);
        con_put(c);
    }
    list_unref(l); /* threads still ending free it after */
}

/* ---- vt100 --------------------------------------------------------------- */

/* Echo of what the client typed: a getty's, CR as a new line. */
static void echo(struct con *c, const char *in, size_t n)
{
    size_t i;

    for (i = 0; i < n && c->text.len < TEXT_MAX; i++) {
        if (in[i] == '\r' || in[i] == '\n')
            xcp__sim_buf_add(&c->text, "\r\n", 2);
        else if (in[i] == 0x7f || in[i] == '\b')
            xcp__sim_buf_add(&c->text, "\b \b", 3);
        else if ((unsigned char)in[i] >= ' ')
            xcp__sim_buf_add(&c->text, &in[i], 1);
    }
}

/* Reads the wake pipe dry. */
static void drain(int fd)
{
    char junk[64];

    while (read(fd, junk, sizeof(junk)) > 0)
        ;
}

/* Writes what c has not sent yet; false when the client is gone. */
static bool vt100_flush(struct con *c)
{
    ssize_t w;

    while (c->sent < c->text.len) {
        w = send(c->sock, c->text.p + c->sent, c->text.len - c->sent,
                 MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c->sent += (size_t)w;
    }
    return true;
}

static void vt100_serve(struct con *c)
{
    struct pollfd pf[2];
    char in[512];
    ssize_t n;
    bool ok = true;

    pf[0].fd = c->sock;
    pf[0].events = POLLIN;
    pf[1].fd = c->wake[0];
    pf[1].events = POLLIN;
    while (ok) {
        pthread_mutex_lock(&c->mu);
        ok = vt100_flush(c) && !c->gone;
        pthread_mutex_unlock(&c->mu);
        if (!ok || poll(pf, 2, -1) < 0)
            break;
        if (pf[1].revents)
            drain(c->wake[0]);
        if (!pf[0].revents)
            continue;
        n = recv(c->sock, in, sizeof(in), 0);
        if (n <= 0)
            break;
        pthread_mutex_lock(&c->mu);
        echo(c, in, (size_t)n);
        pthread_mutex_unlock(&c->mu);
    }
}

/* ---- RFB ----------------------------------------------------------------- */

#ifdef XCP_HAVE_VNCSERVER

/* libvncserver's functions this file calls, once loaded (rfb_load). */
static struct {
    rfbScreenInfoPtr (*get_screen)(int *, char **, int, int, int, int, int);
    void (*log_enable)(int);
    void (*init_server)(rfbScreenInfoPtr);
    rfbClientPtr (*new_client)(rfbScreenInfoPtr, rfbSocket);
    rfbBool (*process_events)(rfbScreenInfoPtr, long);
    void (*screen_cleanup)(rfbScreenInfoPtr);
    int (*draw_string)(rfbScreenInfoPtr, rfbFontDataPtr, int, int,
                       const char *, rfbPixel);
    void (*mark_modified)(rfbScreenInfoPtr, int, int, int, int);
    char why[256]; /* why it is not there */
} rfb;
static pthread_once_t rfb_once = PTHREAD_ONCE_INIT;

/* A function's symbol, through rfb.h's macros (rfbInitServer is one). */
#define SYM(f) SYM_(f)
#define SYM_(f) #f

static void rfb_load(void)
{
    static const char lib[] = "libvncserver.so.1";
    struct {
        void **fn;
        const char *name;
    } syms[] = {
        {(void **)&rfb.get_screen, SYM(rfbGetScreen)},
        {(void **)&rfb.log_enable, SYM(rfbLogEnable)},
        {(void **)&rfb.init_server, SYM(rfbInitServer)},
        {(void **)&rfb.new_client, SYM(rfbNewClient)},
        {(void **)&rfb.process_events, SYM(rfbProcessEvents)},
        {(void **)&rfb.screen_cleanup, SYM(rfbScreenCleanup)},
        {(void **)&rfb.draw_string, SYM(rfbDrawString)},
        {(void **)&rfb.mark_modified, SYM(rfbMarkRectAsModified)},
    };
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    size_t i;

    if (!h) {
        snprintf(rfb.why, sizeof(rfb.why), "%s", dlerror());
        return;
    }
    for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        if (!(*syms[i].fn = dlsym(h, syms[i].name))) {
            snprintf(rfb.why, sizeof(rfb.why), "%s has no %s", lib,
                     syms[i].name);
            rfb.get_screen = NULL;
            return;
        }
    }
    /* libvncserver logs every connection to stderr: not in a library */
    rfb.log_enable(FALSE);
}

/*
 * The font. libvncserver's default 8x16 font (rfb/default8x16.h) is not
 * installed by Debian's libvncserver-dev, so the glyphs come from a Linux
 * console font when one is there (PSF 1 or 2, gzipped or not:
 * $XCP_SIM_CONSOLE_FONT, else console-setup's and kbd's defaults), and
 * are otherwise plain blocks, one per printable character: still text a
 * client can see laid out, if not read.
 */
static const char *const font_paths[] = {
    "/usr/share/consolefonts/default8x16.psfu.gz",
    "/usr/share/consolefonts/Lat15-Fixed16.psf.gz",
    "/usr/share/kbd/consolefonts/default8x16.psfu.gz",
    "/usr/lib/kbd/consolefonts/default8x16.psfu.gz",
};

/* 256 glyphs of 16 rows from a PSF file into glyphs; false if none. */
static bool psf_load(const char *path, unsigned char *glyphs)
{
    unsigned char h[32];
    gzFile f = path ? gzopen(path, "rb") : NULL;
    bool ok = false;
    uint32_t off, size, h2, w2;

    if (!f)
        return false;
    if (gzread(f, h, 4) == 4 && h[0] == 0x36 && h[1] == 0x04 && h[3] == 16) {
        ok = gzread(f, glyphs, 256 * 16) == 256 * 16;
    } else if (h[0] == 0x72 && h[1] == 0xb5 && h[2] == 0x4a && h[3] == 0x86 &&
               gzread(f, h + 4, 28) == 28) {
        memcpy(&off, h + 8, 4);
        memcpy(&size, h + 20, 4);
        memcpy(&h2, h + 24, 4);
        memcpy(&w2, h + 28, 4);
        ok = size == 16 && h2 == 16 && w2 == 8 &&
             gzseek(f, (z_off_t)off, SEEK_SET) == (z_off_t)off &&
             gzread(f, glyphs, 256 * 16) == 256 * 16;
    }
    gzclose(f);
    return ok;
}

static void block_glyphs(unsigned char *glyphs)
{
    int ch, row;

    memset(glyphs, 0, 256 * 16);
    for (ch = '!'; ch < 127; ch++)
        for (row = 4; row < 14; row++)
            glyphs[ch * 16 + row] = 0x7c;
}

/* What an RFB console's thread draws with. */
struct font {
    rfbFontData f;
    unsigned char glyphs[256 * 16];
    int meta[256 * 5];
    char grid[ROWS * 4][COLS + 1]; /* the text laid out (render) */
};

static void font_init(struct font *ft)
{
    const char *env = getenv("XCP_SIM_CONSOLE_FONT");
    size_t i;
    bool ok = env && *env && psf_load(env, ft->glyphs);

    for (i = 0; !ok && i < sizeof(font_paths) / sizeof(font_paths[0]); i++)
        ok = psf_load(font_paths[i], ft->glyphs);
    if (!ok)
        block_glyphs(ft->glyphs);
    for (i = 0; i < 256; i++) {
        ft->meta[i * 5] = (int)i * CELL_H;  /* offset of the glyph */
        ft->meta[i * 5 + 1] = CELL_W;
        ft->meta[i * 5 + 2] = CELL_H;
        ft->meta[i * 5 + 3] = 0;
        ft->meta[i * 5 + 4] = 0;
    }
    ft->f.data = ft->glyphs;
    ft->f.metaData = ft->meta;
}

/*
 * Lays the vt100 text out on an 80x25 grid (CR, LF and backspace obeyed,
 * escapes ignored) and draws the last 25 rows.
 */
static void render(rfbScreenInfoPtr scr, struct font *ft, const struct buf *t)
{
    char (*g)[COLS + 1] = ft->grid;
    size_t i, row = 0, col = 0, nrows = ROWS * 4, first;

    memset(ft->grid, 0, sizeof(ft->grid));
    for (i = 0; i < t->len; i++) {
        char ch = t->p[i];

        if (ch == '\r') {
            col = 0;
        } else if (ch == '\n' || col == COLS) {
            if (++row == nrows) { /* scroll by a screenful */
                memmove(g, g + ROWS, (nrows - ROWS) * sizeof(g[0]));
                memset(g + nrows - ROWS, 0, ROWS * sizeof(g[0]));
                row -= ROWS;
            }
            if (ch != '\n')
                i--, col = 0;
        } else if (ch == '\b') {
            col -= col > 0;
        } else if ((unsigned char)ch >= ' ') {
            g[row][col++] = ch;
        }
    }
    first = row + 1 > ROWS ? row + 1 - ROWS : 0;
    memset(scr->frameBuffer, 0, (size_t)scr->width * scr->height * 4);
    for (i = first; i <= row; i++)
        rfb.draw_string(scr, &ft->f, 0, (int)(i - first) * CELL_H, g[i],
                        0xc0c0c0);
    rfb.mark_modified(scr, 0, 0, scr->width, scr->height);
}

static void rfb_key(rfbBool down, rfbKeySym key, rfbClientPtr cl)
{
    struct con *c = cl->screen->screenData;
    char ch;

    if (!down)
        return;
    if (key == XK_Return || key == XK_KP_Enter)
        ch = '\r';
    else if (key == XK_BackSpace)
        ch = '\b';
    else if (key >= ' ' && key < 127)
        ch = (char)key;
    else
        return;
    pthread_mutex_lock(&c->mu);
    echo(c, &ch, 1);
    pthread_mutex_unlock(&c->mu);
    con_wake(c);
}

static void rfb_serve(struct con *c, const char *name)
{
    int argc = 0;
    rfbScreenInfoPtr scr;
    struct font *ft = malloc(sizeof(*ft));
    size_t shown = (size_t)-1;
    bool farewell = false, gone = false;
    struct pollfd pf[2];
    int sock;

    scr = ft ? rfb.get_screen(&argc, NULL, COLS * CELL_W, ROWS * CELL_H, 8,
                              3, 4)
             : NULL;
    if (!scr)
        goto out;
    scr->frameBuffer = calloc((size_t)COLS * CELL_W * ROWS * CELL_H, 4);
    if (!scr->frameBuffer)
        goto out;
    font_init(ft);
    /* no listening: the one client is the socketpair's other end */
    scr->autoPort = FALSE;
    scr->port = -1;
    scr->ipv6port = -1;
    scr->httpPort = -1;
    scr->desktopName = name;
    scr->screenData = c;
    scr->kbdAddEvent = rfb_key;
    scr->alwaysShared = TRUE;
    rfb.init_server(scr);
    scr->deferUpdateTime = 0; /* answer at once: nothing polls for it */
    pf[0].fd = c->sock;
    pf[0].events = POLLIN;
    pf[1].fd = c->wake[0];
    pf[1].events = POLLIN;
    /* the client's now, even if that fails (libvncserver closes it then,
       rfbScreenCleanup otherwise) */
    sock = c->sock;
    c->sock = -1;
    if (!rfb.new_client(scr, sock))
        goto out;
    /* Sleep until the client speaks or there is news, then let
       libvncserver do what is due without waiting. */
    while (scr->clientHead && !gone) {
        pthread_mutex_lock(&c->mu);
        if (c->text.len != shown || c->farewell != farewell) {
            render(scr, ft, &c->text);
            shown = c->text.len;
            farewell = c->farewell;
        }
        gone = c->gone;
        pthread_mutex_unlock(&c->mu);
        rfb.process_events(scr, 0);
        if (gone || !scr->clientHead)
            break;
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            drain(c->wake[0]);
    }
out:
    if (scr) {
        free(scr->frameBuffer);
        scr->frameBuffer = NULL;
        rfb.screen_cleanup(scr);
    }
    free(ft);
}

#endif /* XCP_HAVE_VNCSERVER */

/* ---- the thread and the slot --------------------------------------------- */

struct start {
    struct con *c;
    struct xcp__sim_consoles *l;
    char name[XCP_HV_NAME_MAX + 32];
};

static void *serve(void *arg)
{
    struct start *st = arg;
    struct con *c = st->c;
    struct xcp__sim_consoles *l = st->l;
    bool listed;

#ifdef XCP_HAVE_VNCSERVER
    if (c->proto == XCP_HV_CONSOLE_RFB)
        rfb_serve(c, st->name);
    else
#endif
        vt100_serve(c);

    free(st);
    pthread_mutex_lock(&l->mu);
    listed = list_del(c);
    list_unref(l);
    if (listed)
        con_put(c);
    con_put(c);
    return NULL;
}

static int list_get(struct sim *s, struct xcp__sim_consoles **out,
                    xcp_hv_error *err)
{
    struct xcp__sim_consoles *l = s->consoles;

    if (!l) {
        if (!(l = calloc(1, sizeof(*l))))
            return oom(err);
        pthread_mutex_init(&l->mu, NULL);
        l->refs = 1;
        s->consoles = l;
    }
    *out = l;
    return 0;
}

static struct con *con_new(uint32_t domid, xcp_hv_console_protocol proto,
                           int *peer)
{
    struct con *c = calloc(1, sizeof(*c));
    int sv[2];

    if (!c)
        return NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        free(c);
        return NULL;
    }
    if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        close(sv[0]);
        close(sv[1]);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->refs = 1;
    c->domid = domid;
    c->proto = proto;
    c->sock = sv[0];
    *peer = sv[1];
    return c;
}

int xcp__sim_console_open(void *self, uint32_t domid,
                          xcp_hv_console_protocol proto, int *fd,
                          xcp_hv_error *err)
{
    struct sim *s = self;
    struct xcp__sim_consoles *l = NULL;
    struct dom *d;
    struct start *st = NULL;
    struct con *c = NULL;
    pthread_t th;
    pthread_attr_t attr;
    int rc = xcp__sim_check_fault(s, XCP_HV_OP_CONSOLE_OPEN, err), peer = -1;

    if (rc < 0)
        return rc;
    xcp__sim_settle_now(s);
    if ((rc = xcp__sim_get_dom(s, domid, "console_open", &d, err)) < 0)
        return rc;
#ifndef XCP_HAVE_VNCSERVER
    if (proto == XCP_HV_CONSOLE_RFB)
        return xcp__hv_error_set(err, -ENOTSUP,
                                 "sim: domain %" PRIu32 ": no RFB console: "
                                 "libxcp was built without libvncserver",
                                 domid);
#else
    if (proto == XCP_HV_CONSOLE_RFB &&
        (pthread_once(&rfb_once, rfb_load), !rfb.get_screen))
        return xcp__hv_error_set(err, -ENOTSUP,
                                 "sim: domain %" PRIu32 ": no RFB console: "
                                 "%s", domid, rfb.why);
#endif
    if (proto != XCP_HV_CONSOLE_VT100 && proto != XCP_HV_CONSOLE_RFB)
        return xcp__hv_error_set(err, -ENOTSUP,
                                 "sim: domain %" PRIu32 ": no console of "
                                 "protocol %d", domid, (int)proto);
    if ((rc = list_get(s, &l, err)) < 0)
        return rc;
    if (!(c = con_new(domid, proto, &peer)) || !(st = calloc(1, sizeof(*st))))
        goto fail;
    boot_text(&c->text, d);
    con_update(c, d, xcp__sim_now(s));
    if (c->text.failed)
        goto fail;
    st->c = c;
    st->l = l;
    snprintf(st->name, sizeof(st->name), "%s (domain %" PRIu32 ")", d->name,
             domid);
    /* listed before its thread runs, which takes it off when it ends */
    c->refs = 2;
    pthread_mutex_lock(&l->mu);
    list_add(l, c);
    l->refs++;
    pthread_mutex_unlock(&l->mu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &attr, serve, st);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&l->mu);
        list_del(c);
        c->refs = 1;
        l->refs--;
        pthread_mutex_unlock(&l->mu);
        errno = rc;
        goto fail;
    }
    *fd = peer;
    return 0;
fail:
    free(st);
    if (c)
        con_put(c);
    if (peer >= 0)
        close(peer);
    return xcp__hv_error_set(err, -ENOMEM,
                             "sim: domain %" PRIu32 ": cannot open a console: "
                             "%s", domid, strerror(errno ? errno : ENOMEM));
}
