/*
 * xcp-top's screen (ncurses): a title line, a message line, the column
 * headings, the hosts, then the VMs in the view's order with a selection;
 * a help line at the bottom. Keys as xentop's where they make sense
 * (S and the left/right arrows change the sort field, d the delay, q
 * quits), plus r to reverse the order, / to filter, and p, u, x to pause,
 * unpause and shut down the selected VM after a y/n confirmation. The
 * shutdown runs as a task, followed at each refresh until it ends.
 */
#include "top.h"

#include <ctype.h>
#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <wchar.h>
#include <wctype.h>

#define HELP_LINE                                                             \
    "q quit  Up/Dn select  S,Left/Right sort  r reverse  / filter  "         \
    "d delay  p pause  u unpause/resume  x shutdown  h help"
#define MAX_TASKS 16
#define TOP_LINES 3 /* title, message, headings */
#define NAME_COLS 20 /* first column, as xentop's NAME */

typedef struct pending {
    xcp_task task;
    char what[96];
} pending;

typedef struct ui {
    top_conn *c;
    top_view *v;
    top_sample smp;
    double interval;
    char msg[256];
    char sel_uuid[40]; /* the selected VM, kept across refreshes */
    size_t sel;        /* its index among the VM rows */
    pending tasks[MAX_TASKS];
    size_t ntasks;
    bool help;
} ui;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set_msg(ui *u, const char *fmt, const char *a, const char *b)
{
    snprintf(u->msg, sizeof(u->msg), fmt, a, b);
}

static void msg_error(ui *u, const char *what)
{
    const xcp_error *e = xcp_error_last();
    char buf[160] = "";
    size_t i, off = 0;

    for (i = 0; e && i < e->nparams && off < sizeof(buf) - 1; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
                                i ? ", " : " [", e->params[i]);
    if (e && e->nparams && off < sizeof(buf) - 1)
        snprintf(buf + off, sizeof(buf) - off, "]");
    snprintf(u->msg, sizeof(u->msg), "%s: %s%s", what,
             e && e->name ? e->name : "failed", buf);
}

static size_t nvms(const ui *u)
{
    return u->smp.n - u->smp.nhosts;
}

static top_row *selected(ui *u)
{
    return nvms(u) ? &u->smp.rows[u->smp.nhosts + u->sel] : NULL;
}

/* Rows of the screen for VMs. */
static size_t vm_lines(const ui *u)
{
    int free = LINES - TOP_LINES - 1 - (int)u->smp.nhosts;

    return free > 0 ? (size_t)free : 0;
}

/* Put the selection back on the VM it was on, and the window around it. */
static void place(ui *u)
{
    size_t i, n = nvms(u), lines;

    for (i = 0; i < n; i++)
        if (!strcmp(u->smp.rows[u->smp.nhosts + i].uuid, u->sel_uuid)) {
            u->sel = i;
            break;
        }
    if (u->sel >= n)
        u->sel = n ? n - 1 : 0;
    if (n)
        snprintf(u->sel_uuid, sizeof(u->sel_uuid), "%s",
                 u->smp.rows[u->smp.nhosts + u->sel].uuid);
    lines = vm_lines(u);
    if (u->sel < u->v->first)
        u->v->first = u->sel;
    else if (lines && u->sel >= u->v->first + lines)
        u->v->first = u->sel - lines + 1;
    u->v->visible = lines;
}

/* Follow the shutdowns under way: report and forget those that ended. */
static void poll_tasks(ui *u)
{
    size_t i = 0;

    if (!u->c->s)
        return;
    while (i < u->ntasks) {
        enum xcp_task_status_type st;
        pending *p = &u->tasks[i];

        if (xcp_task_get_status(u->c->s, &st, p->task) < 0) {
            msg_error(u, p->what);
        } else if (st == XCP_TASK_STATUS_TYPE_PENDING
                   || st == XCP_TASK_STATUS_TYPE_CANCELLING) {
            i++;
            continue;
        } else if (st == XCP_TASK_STATUS_TYPE_SUCCESS) {
            set_msg(u, "%s: done%s", p->what, "");
        } else {
            xcp_string_set info = {0};
            char buf[200] = "failed";
            size_t j, off = 0;

            if (xcp_task_get_error_info(u->c->s, &info, p->task) == 0)
                for (j = 0; j < info.n && off < sizeof(buf) - 1; j++)
                    off += (size_t)snprintf(buf + off, sizeof(buf) - off,
                                            j == 0   ? "%s"
                                            : j == 1 ? " [%s"
                                                     : ", %s",
                                            info.items[j]);
            if (info.n > 1 && off < sizeof(buf) - 1)
                snprintf(buf + off, sizeof(buf) - off, "]");
            set_msg(u, "%s: %s", p->what, buf);
            xcp_string_set_dispose(&info);
        }
        xcp_task_destroy(u->c->s, p->task);
        u->tasks[i] = u->tasks[--u->ntasks];
    }
}

static int refresh_data(ui *u)
{
    place(u);
    if (top_sample_take(u->c->s, u->v, &u->smp) < 0) {
        msg_error(u, "refresh");
        return -1;
    }
    place(u);
    poll_tasks(u);
    return 0;
}

/* ---- drawing ---- */

/* printw at (y, x), cut before the right edge rather than wrapped. */
static void line(int y, int x, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (COLS - 1 - x > 0)
        mvaddnstr(y, x, buf, COLS - 1 - x);
}

static void fmt_num(char *buf, size_t len, double v, int prec)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.*f", prec, v);
}

/* A name in the terminal's locale (UTF-8...), control and unprintable
 * characters as '?', cut or padded to width columns. */
static void put_name(const char *name, int width)
{
    wchar_t w[NAME_COLS + 1];
    size_t n, k;
    int cols = 0, cw;

    n = mbstowcs(w, name, NAME_COLS);
    if (n == (size_t)-1) { /* not in the locale's encoding */
        for (n = 0; name[n] && n < NAME_COLS; n++)
            w[n] = (unsigned char)name[n] < 0x80 ? (wchar_t)name[n] : L'?';
    }
    for (k = 0; k < n; k++) {
        if ((cw = wcwidth(w[k])) < 0 || iswcntrl((wint_t)w[k])) {
            w[k] = L'?';
            cw = 1;
        }
        if (cols + cw > width)
            break;
        cols += cw;
    }
    addnwstr(w, (int)k);
    while (cols++ < width)
        addch(' ');
}

static void draw_row(const top_row *r, int y, bool sel)
{
    char cpu[16], vc[16], mem[16], pct[16], max[16], rd[16], wr[16],
        rx[16], tx[16], st[12];
    size_t i;

    fmt_num(cpu, sizeof(cpu), r->cpu, 1);
    fmt_num(vc, sizeof(vc), r->vcpus, 0);
    top_fmt_bytes(mem, sizeof(mem), r->mem);
    fmt_num(pct, sizeof(pct), r->mempct, 1);
    top_fmt_bytes(max, sizeof(max), r->maxmem);
    top_fmt_bytes(rd, sizeof(rd), r->rd);
    top_fmt_bytes(wr, sizeof(wr), r->wr);
    top_fmt_bytes(rx, sizeof(rx), r->rx);
    top_fmt_bytes(tx, sizeof(tx), r->tx);
    snprintf(st, sizeof(st), "%s", r->state);
    for (i = 0; st[i]; i++)
        st[i] = (char)tolower((unsigned char)st[i]);
    if (sel)
        attron(A_REVERSE);
    if (r->is_host)
        attron(A_BOLD);
    move(y, 0);
    put_name(r->name, NAME_COLS);
    line(y, NAME_COLS, " %-4s %-9s %7s %5s %8s %6s %8s %7s %7s %7s %7s",
         r->is_host ? "host" : "vm", st, cpu, vc, mem, pct, max, rd, wr, rx,
         tx);
    clrtoeol();
    if (r->is_host)
        attroff(A_BOLD);
    if (sel) {
        mvchgat(y, 0, -1, A_REVERSE, 0, NULL);
        attroff(A_REVERSE);
    }
}

static const char *sort_name(int col)
{
    static const char *const names[COL__COUNT] = {
        "type", "state", "cpu", "vcpus", "mem", "mem%", "maxmem",
        "rd",   "wr",    "rx",  "tx",    "uuid", "name"};

    return names[col];
}

static void draw_help(void)
{
    static const char *const lines[] = {
        "xcp-top keys",
        "",
        "  q, Q          quit",
        "  Up, Down      select a VM (also PgUp, PgDn, Home, End)",
        "  S, Right      sort by the next column; Left: the previous",
        "  r             reverse the sort order",
        "  /             filter VMs by a regular expression on name or uuid",
        "                (empty: every VM)",
        "  d             seconds between refreshes",
        "  p             pause the selected VM (asks y/n)",
        "  u             unpause the selected VM, or resume it when it is",
        "                suspended (asks y/n)",
        "  x             shut down the selected VM cleanly (asks y/n)",
        "  space         refresh now",
        "  h, ?          this help; any key returns",
        "",
        "Columns: CPU(%) summed over vCPUs (100 = one CPU busy), memory in",
        "use and its share of the host's, maximum memory, disk read and",
        "write, network received and sent per second; '-' when the server",
        "gives no data source for it.",
    };
    size_t i;

    erase();
    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        line((int)i, 0, "%s", lines[i]);
    refresh();
}

static void draw(ui *u)
{
    char clock[16];
    time_t t = time(NULL);
    struct tm tm;
    size_t i, n = nvms(u);
    int y;

    if (u->help) {
        draw_help();
        return;
    }
    erase();
    localtime_r(&t, &tm);
    strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
    line(0, 0,
             "xcp-top %s  %s  hosts %zu  VMs %zu running / %zu  every %gs  "
             "sort %s%s%s",
             clock, u->c->where, u->smp.nhosts, u->smp.vms_running,
             u->smp.vms_total, u->interval, sort_name(u->v->sort),
             u->v->reverse ? " (reversed)" : "",
             u->v->have_filter ? "  filtered" : "");
    clrtoeol();
    if (u->msg[0])
        line(1, 0, "%s", u->msg);
    else if (u->smp.ds_missing)
        line(1, 0, "(the server has no data sources: CPU, disk and "
                       "network figures unknown)");
    attron(A_REVERSE);
    line(2, 0, "%-*s %-4s %-9s %7s %5s %8s %6s %8s %7s %7s %7s %7s",
         NAME_COLS, "NAME", "TYPE", "STATE", "CPU(%)", "VCPUS", "MEM",
         "MEM(%)", "MAXMEM", "RD/s", "WR/s", "RX/s", "TX/s");
    for (int x = getcurx(stdscr); x < COLS; x++)
        addch(' ');
    attroff(A_REVERSE);
    y = TOP_LINES;
    for (i = 0; i < u->smp.nhosts && y < LINES - 1; i++)
        draw_row(&u->smp.rows[i], y++, false);
    for (i = u->v->first; i < n && y < LINES - 1; i++)
        draw_row(&u->smp.rows[u->smp.nhosts + i], y++, i == u->sel);
    attron(A_REVERSE);
    line(LINES - 1, 0, "%s", HELP_LINE);
    clrtoeol();
    attroff(A_REVERSE);
    refresh();
}

/* ---- input ---- */

/* Ask on the message line; buf gets the answer (empty on Escape). */
static void ask(const char *prompt, char *buf, int len)
{
    move(1, 0);
    clrtoeol();
    line(1, 0, "%s", prompt);
    echo();
    curs_set(1);
    timeout(-1);
    if (getnstr(buf, len - 1) == ERR)
        buf[0] = '\0';
    noecho();
    curs_set(0);
}

static bool confirm(const char *what, const char *name)
{
    int ch;

    move(1, 0);
    clrtoeol();
    attron(A_BOLD);
    line(1, 0, "%s VM '%s'? [y/N] ", what, name);
    attroff(A_BOLD);
    refresh();
    timeout(-1);
    ch = getch();
    return ch == 'y' || ch == 'Y';
}

/* Start a task for the VM; it is followed at each refresh. */
static void start_task(ui *u, const char *label, int rc)
{
    if (rc < 0) {
        msg_error(u, label);
        return;
    }
    snprintf(u->tasks[u->ntasks++].what, sizeof(u->tasks[0].what), "%s",
             label);
    set_msg(u, "%s: under way", label, "");
}

/*
 * p: pause (VM.pause); u: unpause a paused VM (VM.unpause) or resume a
 * suspended one (VM.resume, a task); x: clean shutdown (a task). Each
 * after a y/n confirmation; the server refuses what the power state does
 * not allow, and its error is shown.
 */
static void act(ui *u, int key)
{
    top_row *r = selected(u);
    bool suspended = r && !strcasecmp(r->state, "Suspended");
    const char *what = key == 'p'   ? "Pause"
                       : key == 'x' ? "Shut down"
                       : suspended  ? "Resume"
                                    : "Unpause";
    char label[96];
    xcp_task *task;
    xcp_vm vm;
    int rc;

    if (!r || !u->c->s) {
        set_msg(u, "%s%s", r ? "not connected" : "no VM selected", "");
        return;
    }
    if (!confirm(what, r->name)) {
        set_msg(u, "%s '%s': cancelled", what, r->name);
        return;
    }
    snprintf(vm.ref, sizeof(vm.ref), "%s", r->ref);
    snprintf(label, sizeof(label), "%s '%.60s'", what, r->name);
    if (key == 'p' || (key == 'u' && !suspended)) {
        rc = key == 'p' ? xcp_vm_pause(u->c->s, vm) : xcp_vm_unpause(u->c->s, vm);
        if (rc < 0)
            msg_error(u, label);
        else
            set_msg(u, "%s: done", label, "");
        return;
    }
    if (u->ntasks == MAX_TASKS) {
        set_msg(u, "%s: %s", label, "too many tasks under way");
        return;
    }
    task = &u->tasks[u->ntasks].task;
    rc = key == 'x' ? xcp_vm_clean_shutdown_async(u->c->s, task, vm)
                    : xcp_vm_resume_async(u->c->s, task, vm, false, false);
    start_task(u, label, rc);
}

static void set_filter(ui *u)
{
    char buf[256], msg[128];
    regex_t re;
    int err;

    ask("Filter (regular expression, empty for all): ", buf, sizeof(buf));
    if (u->v->have_filter) {
        regfree(&u->v->filter);
        u->v->have_filter = false;
    }
    if (!buf[0]) {
        set_msg(u, "%s%s", "filter cleared", "");
        return;
    }
    if ((err = regcomp(&re, buf, REG_EXTENDED | REG_ICASE | REG_NOSUB))) {
        regerror(err, &re, msg, sizeof(msg));
        set_msg(u, "bad filter: %s", msg, "");
        return;
    }
    u->v->filter = re;
    u->v->have_filter = true;
    set_msg(u, "filter: %.200s", buf, "");
}

static void set_delay(ui *u)
{
    char buf[32], *end;
    double d;

    ask("Seconds between refreshes: ", buf, sizeof(buf));
    d = strtod(buf, &end);
    if (end == buf || *end || !(d > 0 && d <= 86400))
        set_msg(u, "bad delay '%s'", buf, "");
    else
        u->interval = d;
}

static void next_sort(ui *u, int step)
{
    /* Every column but TYPE, in order, wrapping. */
    int c = u->v->sort;

    do
        c = (c + step + COL__COUNT) % COL__COUNT;
    while (c == COL_TYPE);
    u->v->sort = c;
}

/* Handle one key; returns 1 to refresh now, 0 to redraw, -1 to quit. */
static int key(ui *u, int ch)
{
    size_t n = nvms(u), page = vm_lines(u) ? vm_lines(u) : 1;

    if (u->help) {
        u->help = false;
        return 0;
    }
    switch (ch) {
    case 'q':
    case 'Q':
        return -1;
    case 'h':
    case 'H':
    case '?':
        u->help = true;
        return 0;
    case KEY_UP:
    case 'k':
        if (u->sel > 0)
            u->sel--;
        break;
    case KEY_DOWN:
    case 'j':
        if (u->sel + 1 < n)
            u->sel++;
        break;
    case KEY_PPAGE:
        u->sel = u->sel > page ? u->sel - page : 0;
        break;
    case KEY_NPAGE:
        u->sel = n == 0 ? 0 : u->sel + page < n ? u->sel + page : n - 1;
        break;
    case KEY_HOME:
        u->sel = 0;
        break;
    case KEY_END:
        u->sel = n ? n - 1 : 0;
        break;
    case 'S':
    case 's':
    case KEY_RIGHT:
        next_sort(u, 1);
        u->msg[0] = '\0';
        return 1;
    case KEY_LEFT:
        next_sort(u, -1);
        u->msg[0] = '\0';
        return 1;
    case 'r':
    case 'R':
        u->v->reverse = !u->v->reverse;
        return 1;
    case '/':
        set_filter(u);
        return 1;
    case 'd':
    case 'D':
        set_delay(u);
        return 0;
    case 'p':
    case 'u':
    case 'x':
        act(u, ch);
        return 1;
    case ' ':
    case 12: /* ^L */
        clearok(stdscr, TRUE);
        return 1;
    case KEY_RESIZE:
        return 1;
    default:
        return 0;
    }
    /* The selection moved: remember which VM it is on. */
    if (n)
        snprintf(u->sel_uuid, sizeof(u->sel_uuid), "%s",
                 u->smp.rows[u->smp.nhosts + u->sel].uuid);
    if (u->sel < u->v->first || u->sel >= u->v->first + vm_lines(u)) {
        place(u);
        return 1; /* new rows on screen: their data sources */
    }
    return 0;
}

int top_ui_run(top_conn *c, top_view *v, volatile sig_atomic_t *stop)
{
    const top_opts *o = c->o;
    ui u;
    double next;
    int rc = 0, k, ch;

    memset(&u, 0, sizeof(u));
    u.c = c;
    u.v = v;
    u.interval = o->interval;
    setlocale(LC_ALL, "");
    if (!initscr()) {
        fputs("xcp-top: cannot use the terminal (try -b)\n", stderr);
        return 1;
    }
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    v->visible = vm_lines(&u);
    refresh_data(&u);
    next = now_s() + u.interval;
    for (long it = 1; !*stop;) {
        double left = next - now_s();

        draw(&u);
        if (left <= 0) {
            if (o->count > 0 && it >= o->count)
                break;
            refresh_data(&u);
            it++;
            next = now_s() + u.interval;
            continue;
        }
        timeout((int)(left * 1000) + 1);
        ch = getch();
        if (ch == ERR)
            continue;
        k = key(&u, ch);
        if (k < 0)
            break;
        if (k > 0) {
            refresh_data(&u);
            next = now_s() + u.interval;
        }
    }
    endwin();
    top_sample_clear(&u.smp);
    return rc;
}
