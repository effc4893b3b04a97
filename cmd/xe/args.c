/*
 * xe: command-line parsing, split as in XAPI between the client side
 * (connection options, ~/.xe, XE_EXTRA_ARGS: newcli.ml) and the server
 * side (command name and key=value parameters: cli_frontend.ml).
 * Pure functions over strings: no environment, no files, no libxcp, so
 * tests/fuzz/fuzz_xe_args.c can drive them directly.
 */
#include "xe.h"

#include <string.h>

void xe_params_add(xe_arena *a, xe_params *p, const char *k, const char *v)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = xe_realloc(a, p->v, p->cap * sizeof(*p->v));
    }
    p->v[p->n].key = k;
    p->v[p->n].val = v;
    p->n++;
}

const char *xe_params_get(const xe_params *p, const char *key)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (strcmp(p->v[i].key, key) == 0)
            return p->v[i].val;
    return NULL;
}

bool xe_params_has(const xe_params *p, const char *key)
{
    return xe_params_get(p, key) != NULL;
}

/* State of one client-side parse. */
typedef struct cl_state {
    xe_arena *a;
    xe_cmdline *out;
    xe_buf prelude;
    bool usage;         /* a bad port asks for the usage text */
    bool bad;           /* an unhandled client exception */
} cl_state;

static bool ocaml_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(v, "false") == 0) {
        *out = false;
        return true;
    }
    return false;
}

static void set_port(cl_state *st, const char *v)
{
    int64_t p;

    if (xe_parse_int(v, &p) < 0 || p < 0 || p > 65535) {
        xe_buf_add(&st->prelude, "Port number must be an integer (0-65535)\n");
        st->usage = true;
        return;
    }
    st->out->conn.port = (int)p;
}

static void set_nossl(cl_state *st, const char *v)
{
    bool b;

    if (!ocaml_bool(v, &b)) {
        st->bad = true;
        st->out->errtext = "Unhandled exception\n"
                           "Invalid_argument(\"bool_of_string\")\n";
        return;
    }
    st->out->conn.nossl = b;
}

/* Apply a client keyword; false when k is not one (XAPI set_keyword). */
static bool set_keyword(cl_state *st, const char *k, const char *v)
{
    xe_conn *c = &st->out->conn;
    bool b;

    if (strcmp(k, "server") == 0)
        c->server = v;
    else if (strcmp(k, "port") == 0)
        set_port(st, v);
    else if (strcmp(k, "username") == 0)
        c->user = v;
    else if (strcmp(k, "password") == 0)
        c->password = v;
    else if (strcmp(k, "passwordfile") == 0)
        c->pwfile = v;
    else if (strcmp(k, "nossl") == 0)
        set_nossl(st, v);
    else if (strcmp(k, "debug") == 0)
        c->debug = ocaml_bool(v, &b) && b;
    else if (strcmp(k, "debugonfail") == 0)
        c->debugonfail = ocaml_bool(v, &b) && b;
    else if (strcmp(k, "traceparent") == 0)
        c->traceparent = v;
    else
        return false;
    return true;
}

/* Client switches: how many words each takes and the keyword it sets. */
static const struct {
    const char *sw;
    const char *key;
    bool arg;
} client_switches[] = {
    {"-s", "server", true},          {"-p", "port", true},
    {"-u", "username", true},        {"-pw", "password", true},
    {"-pwf", "passwordfile", true},  {"--nossl", "nossl", false},
    {"--debug", "debug", false},     {"--debug-on-fail", "debugonfail", false},
    {"-h", "server", true},          {"--traceparent", "traceparent", true},
};

/* Words consumed by a client switch at w[0] (0 = not a switch). */
static size_t client_switch(cl_state *st, size_t n, const char *const *w)
{
    size_t i;

    for (i = 0; i < XE_ARRAY_LEN(client_switches); i++) {
        if (strcmp(w[0], client_switches[i].sw) != 0)
            continue;
        if (!client_switches[i].arg) {
            set_keyword(st, client_switches[i].key, "true");
            return 1;
        }
        if (n < 2)
            return 0;
        set_keyword(st, client_switches[i].key, w[1]);
        return 2;
    }
    return 0;
}

/* XAPI process_args: keep the words that are not client options. */
static void process_args(cl_state *st, size_t n, const char *const *w,
                         xe_strv *rest)
{
    size_t used;
    const char *eq;

    while (n > 0) {
        used = client_switch(st, n, w);
        if (used == 0) {
            eq = strchr(w[0], '=');
            if (eq == NULL
                || !set_keyword(st, xe_strndup(st->a, w[0],
                                               (size_t)(eq - w[0])),
                                eq + 1))
                xe_strv_add(rest, w[0]);
            used = 1;
        }
        w += used;
        n -= used;
    }
}

/* ~/.xe: key=value lines, blank lines skipped; one bad line drops all. */
static void parse_rc(cl_state *st, const char *text, xe_strv *rest)
{
    xe_strv lines, keys, vals;
    size_t i;
    const char *eq;

    xe_strv_init(&lines, st->a);
    xe_strv_init(&keys, st->a);
    xe_strv_init(&vals, st->a);
    if (text == NULL)
        return;
    xe_split(&lines, text, '\n');
    /* input_line: a final newline does not make an extra line */
    if (lines.n > 0 && *lines.v[lines.n - 1] == '\0')
        lines.n--;
    for (i = 0; i < lines.n; i++) {
        if (*lines.v[i] == '\0')
            continue;
        eq = strchr(lines.v[i], '=');
        if (eq == NULL) {
            xe_buf_add(&st->prelude,
                       "Error parsing rc file. No defaults loaded\n");
            return;
        }
        xe_strv_add(&keys, xe_strndup(st->a, lines.v[i],
                                      (size_t)(eq - lines.v[i])));
        xe_strv_add(&vals, eq + 1);
    }
    for (i = 0; i < keys.n; i++)
        if (!set_keyword(st, keys.v[i], vals.v[i]))
            xe_strv_add(rest, xe_sprintf(st->a, "%s=%s", keys.v[i],
                                         vals.v[i]));
}

/* XE_EXTRA_ARGS: comma separated, "\," escapes a comma, backslashes go. */
static void split_extra(xe_arena *a, const char *s, xe_strv *out)
{
    size_t len = strlen(s), pos = 0, i = 0, j;
    xe_buf seg;

    while (pos < len) {
        if (s[pos] == ',') {
            pos++;
            i = pos;
        } else if (i >= len || (s[i] == ',' && i > 0 && s[i - 1] != '\\')) {
            xe_buf_init(&seg, a);
            xe_buf_add(&seg, "");
            for (j = pos; j < i; j++)
                if (s[j] != '\\')
                    xe_buf_addc(&seg, s[j]);
            xe_strv_add(out, xe_buf_str(&seg));
            i++;
            pos = i;
        } else {
            i++;
        }
    }
}

static bool is_help_word(const char *w)
{
    return strcmp(w, "-help") == 0 || strcmp(w, "--help") == 0;
}

void xe_cmdline_parse(xe_arena *a, xe_cmdline *out, int argc,
                      char *const argv[], const char *rc_text,
                      const char *extra_args)
{
    cl_state st;
    xe_strv rc_rest, extra, extra_rest, rest;
    bool help = false;
    int i;

    memset(out, 0, sizeof(*out));
    out->conn.port = -1;
    st.a = a;
    st.out = out;
    st.usage = false;
    st.bad = false;
    xe_buf_init(&st.prelude, a);
    xe_strv_init(&rc_rest, a);
    xe_strv_init(&extra, a);
    xe_strv_init(&extra_rest, a);
    xe_strv_init(&rest, a);
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-version") == 0) {
            out->action = XE_VERSION;
            return;
        }
        help = help || is_help_word(argv[i]);
    }
    parse_rc(&st, rc_text, &rc_rest);
    if (extra_args != NULL)
        split_extra(a, extra_args, &extra);
    process_args(&st, extra.n, extra.v, &extra_rest);
    process_args(&st, (size_t)argc, (const char *const *)argv, &rest);
    for (i = 0; (size_t)i < extra_rest.n; i++)
        xe_strv_add(&rest, extra_rest.v[i]);
    for (i = 0; (size_t)i < rc_rest.n; i++)
        xe_strv_add(&rest, rc_rest.v[i]);
    out->prelude = xe_buf_str(&st.prelude);
    out->nwords = rest.n;
    out->words = rest.v;
    if (st.bad)
        out->action = XE_BAD;
    else if (st.usage || help || rest.n == 0)
        out->action = XE_USAGE;
    else
        out->action = XE_RUN;
}

/* Server-side switches taking a value (cli_frontend.ml switch_map). */
static const char *server_switch(const char *sw)
{
    static const struct {
        const char *sw, *key;
    } map[] = {
        {"-u", "username"}, {"-pw", "password"}, {"-s", "server"},
        {"-h", "server"},   {"-p", "port"},
    };
    size_t i;

    for (i = 0; i < XE_ARRAY_LEN(map); i++)
        if (strcmp(sw, map[i].sw) == 0)
            return map[i].key;
    return NULL;
}

int xe_command_parse(xe_arena *a, xe_command *out, size_t nwords,
                     const char *const *words)
{
    size_t i;
    const char *w, *eq, *key;

    memset(out, 0, sizeof(*out));
    if (nwords == 0 || strchr(words[0], '=') != NULL)
        return -1;
    out->name = words[0];
    for (i = 1; i < nwords; i++) {
        w = words[i];
        if (xe_prefix(w, "--")) {
            xe_params_add(a, &out->params, w + 2, "true");
        } else if (w[0] == '-') {
            key = server_switch(w);
            if (key == NULL || i + 1 >= nwords)
                return -1;
            xe_params_add(a, &out->params, key, words[++i]);
        } else {
            eq = strchr(w, '=');
            if (eq == NULL)
                xe_params_add(a, &out->params, w, "");
            else
                xe_params_add(a, &out->params,
                              xe_strndup(a, w, (size_t)(eq - w)), eq + 1);
        }
    }
    return 0;
}
