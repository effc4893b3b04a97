/*
 * xe: internal declarations shared by the files of the xe command.
 *
 * xe is a client of the public libxcp API only (include/xcp/). It follows
 * the syntax and output of XAPI's xe (shared/spec/xe-cli.md): what XAPI
 * runs server-side (argument parsing, records, printing) runs here, on a
 * local (embedded) or remote session.
 *
 * Memory: every string xe computes lives in the per-invocation arena of
 * the context (xe_ctx.arena) and is released at exit, so small functions
 * can return text without ownership bookkeeping. Values returned by the
 * library are held by the record cache (api.c) and disposed with it.
 *
 * Errors: functions return 0 or -1; on -1 the reason is in ctx->err
 * (an API error copied out of the library's thread-local error, or a
 * CLI-level failure), printed once by xe_execute() (run.c).
 */
#ifndef XE_H
#define XE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <xcp/common.h>
#include <xcp/errors.h>
#include <xcp/model.h>
#include <xcp/session.h>
#include <xcp/transfer.h>
#include <xcp/value.h>
#include <xcp/xva.h>

/* ---- arena and strings (util.c) ---- */

typedef struct xe_chunk xe_chunk;

/** Per-invocation allocator: everything is freed by xe_arena_free(). */
typedef struct xe_arena {
    xe_chunk *head;
} xe_arena;

void *xe_alloc(xe_arena *a, size_t n);
void *xe_realloc(xe_arena *a, void *p, size_t n);
char *xe_strdup(xe_arena *a, const char *s);
char *xe_strndup(xe_arena *a, const char *s, size_t n);
char *xe_sprintf(xe_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *xe_vsprintf(xe_arena *a, const char *fmt, va_list ap);
void xe_arena_free(xe_arena *a);

/** A growable string in the arena. */
typedef struct xe_buf {
    xe_arena *a;
    char *s;
    size_t len, cap;
} xe_buf;

void xe_buf_init(xe_buf *b, xe_arena *a);
void xe_buf_add(xe_buf *b, const char *s);
void xe_buf_addn(xe_buf *b, const char *s, size_t n);
/** The whole of a small text file in the arena, or NULL. */
char *xe_slurp(xe_arena *a, const char *path);
void xe_buf_addc(xe_buf *b, char c);
void xe_buf_printf(xe_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** The string (never NULL). */
const char *xe_buf_str(xe_buf *b);

/** A growable array of strings in the arena. */
typedef struct xe_strv {
    xe_arena *a;
    size_t n, cap;
    const char **v;
} xe_strv;

void xe_strv_init(xe_strv *sv, xe_arena *a);
void xe_strv_add(xe_strv *sv, const char *s);
bool xe_strv_has(const xe_strv *sv, const char *s);
const char *xe_strv_join(const xe_strv *sv, const char *sep);

bool xe_streq(const char *a, const char *b);
bool xe_strcaseeq(const char *a, const char *b);
bool xe_prefix(const char *s, const char *prefix);
/** ASCII lowercase copy. */
char *xe_lower(xe_arena *a, const char *s);
/** Split s at every sep (an empty s gives no item, like XAPI get_words). */
void xe_split(xe_strv *out, const char *s, char sep);

/*
 * Parsers that follow XAPI's: sizes with suffixes (bytes_of_string),
 * booleans (Record_util.bool_of_string) and OCaml-style int64.
 * They return 0 or -1 (the caller words the message).
 */
int xe_parse_bytes(const char *s, int64_t *out);
int xe_parse_bool(const char *s, bool *out);
int xe_parse_int(const char *s, int64_t *out);
int xe_parse_float(const char *s, double *out);

/* ---- command line (args.c) ---- */

/** One key=value parameter of the command, in command-line order. */
typedef struct xe_param {
    const char *key;
    const char *val;
} xe_kv;

typedef struct xe_params {
    size_t n, cap;
    xe_kv *v;
} xe_params;

void xe_params_add(xe_arena *a, xe_params *p, const char *k, const char *v);
/** First value of key, or NULL. */
const char *xe_params_get(const xe_params *p, const char *key);
bool xe_params_has(const xe_params *p, const char *key);

/** Connection settings (client options, ~/.xe, XE_EXTRA_ARGS). */
typedef struct xe_conn {
    const char *server;     /* NULL: not given (local) */
    int port;               /* -1: default */
    const char *user;
    const char *password;
    const char *pwfile;
    bool nossl;
    bool debug;
    bool debugonfail;
    const char *traceparent;
} xe_conn;

/** What the command line asks for. */
typedef enum xe_action {
    XE_RUN = 0,      /* run a command */
    XE_USAGE,        /* print usage on stderr, exit 0 */
    XE_VERSION,      /* print the protocol version, exit 0 */
    XE_BAD,          /* message already in errtext, exit 1 */
} xe_action;

typedef struct xe_cmdline {
    xe_action action;
    xe_conn conn;
    const char *prelude;  /* stderr text before usage (bad port, rc) */
    const char *errtext;  /* XE_BAD: what to print on stderr */
    size_t nwords;        /* words sent to the "server" side */
    const char **words;
} xe_cmdline;

/**
 * Client-side parse (XAPI's newcli.ml): strip connection options from
 * argv (argv[0] excluded), merge rc-file lines and XE_EXTRA_ARGS
 * (either may be NULL). Never touches the environment or files.
 */
void xe_cmdline_parse(xe_arena *a, xe_cmdline *out, int argc,
                      char *const argv[], const char *rc_text,
                      const char *extra_args);

/** Result of the server-side parse (XAPI's parse_commandline). */
typedef struct xe_command {
    const char *name;
    xe_params params;
} xe_command;

/**
 * Split the words into a command name and key=value parameters
 * ("--x" gives x=true, "-u v" style switches take the next word).
 * Returns 0, or -1 on a syntax error (XAPI reports all of them as
 * "Syntax error: " with an empty detail).
 */
int xe_command_parse(xe_arena *a, xe_command *out, size_t nwords,
                     const char *const *words);

/* ---- context and errors ---- */

typedef enum xe_err_kind {
    XE_E_NONE = 0,
    XE_E_API,      /* XenAPI error: name + params */
    XE_E_CLI,      /* "Error: <text>" */
    XE_E_PARAM,    /* "<prefix>: <text>" + "For usage run: 'xe help'" */
    XE_E_MULTI,    /* "operation failed on <uuid>: <msg>" lines (stdout) */
    XE_E_RAW,      /* text printed on stderr as is */
} xe_err_kind;

typedef struct xe_failure {
    const char *uuid;
    const char *msg;
} xe_failure;

typedef struct xe_err {
    xe_err_kind kind;
    const char *text;          /* CLI, PARAM (detail), RAW */
    const char *prefix;        /* PARAM: "Syntax error", "Unknown command" */
    const char *name;          /* API */
    size_t nparams;
    const char **params;
    size_t nfail;              /* MULTI */
    xe_failure *fail;
} xe_err;

typedef struct xe_cent xe_cent;

#define XE_CACHE_BUCKETS 256

/** Per-invocation cache of records, keyed by ref. */
typedef struct xe_cache {
    xe_cent *b[XE_CACHE_BUCKETS];
    xcp_value partial;  /* xe_partial_records' answer: records with
                           some fields only, never served by xe_record */
} xe_cache;

/** Output state: records/lists are buffered in --minimal mode. */
typedef struct xe_out {
    bool minimal;
    xe_strv minbuf;    /* --minimal lines, in print order */
} xe_out;

typedef struct xe_io xe_io;
typedef struct xe_ctx xe_ctx;

/*
 * A download whose data xe's own code makes (pool-dump-database), or an
 * upload it takes in (blob-put): the xe program writes or reads the
 * user's file itself; xcpd's /cli has the thin client GET or PUT XAPI's
 * handler path (HttpGet, HttpPut), which xcpd serves with the same
 * functions (xe_download_find).
 */
typedef struct xe_download {
    const char *label;   /* the transfer's task */
    const char *path;    /* XAPI's HTTP handler, "/pool/xmldbdump" */
    const char *query;   /* more of the query than session_id, task_id
                            ("ref=OpaqueRef:..."; escaped) */
    /* Write the data to fd: 0, or -1 with ctx->err. query: as above
     * (xcpd: the request's, session_id and task_id left out). NULL for
     * an upload. */
    int (*produce)(xe_ctx *ctx, const char *query, int fd);
    /* An upload (HTTP PUT): take in what fd holds, read to its end: 0,
     * or -1 with ctx->err. NULL for a download. */
    int (*consume)(xe_ctx *ctx, const char *query, int fd);
    /* Served by xcpd to a request without a session too (the function
     * then sees ctx->anonymous and serves public data only). */
    bool anonymous_ok;
} xe_download;

/** The value of key in a download's query (decoded, arena), or NULL. */
const char *xe_query_get(xe_ctx *ctx, const char *query, const char *key);

/** The download served at path (a handler xcpd registers), or NULL. */
const xe_download *xe_download_find(const char *path);
/** The same for either method: put, the upload at path. */
const xe_download *xe_transfer_find(const char *path, bool put);
/** Http.urlencode of s (arena): RFC 3986's unreserved kept. */
const char *xe_url_encode(xe_ctx *ctx, const char *s);

struct xe_ctx {
    xe_arena arena;
    const xe_io *io;        /* the user's side (io.c): never NULL */
    xcp_session *s;
    const char *cmdname;
    xe_params params;
    xe_out out;
    xe_cache cache;
    xe_err err;
    FILE *in;               /* where prompts read from */
    const void *cmd_data;   /* generated commands: their CLI class */
    bool anonymous;         /* xcpd: a download's request came without
                               a session (xe_download.anonymous_ok) */
    const char *content_type; /* xcpd: the Content-Type of the data a
                               download's produce wrote (set by it;
                               arena or static), NULL: none sent */
};

/** Set a CLI failure ("Error: ..."); returns -1. */
int xe_fail(xe_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Set an API error by hand (name and n params); returns -1. */
int xe_fail_api(xe_ctx *ctx, const char *name, size_t n,
                const char *const *params);
/** Copy the library's last error into ctx->err; returns -1. */
int xe_fail_lib(xe_ctx *ctx);

/** Parameter helpers on ctx->params. */
const char *xe_param(xe_ctx *ctx, const char *key);
/** get_bool_param: absent gives def; a bad value fails the command. */
int xe_param_bool(xe_ctx *ctx, const char *key, bool def, bool *out);
/** A size parameter (bytes_of_string), failing with XAPI's message. */
int xe_param_bytes(xe_ctx *ctx, const char *key, int64_t *out);

/** XAPI's stdparams: never used as filters or field settings. */
bool xe_is_stdparam(const char *key);

/* ---- output (out.c) ---- */

/** One printed line of a record: label (with mark) and value. */
typedef struct xe_row {
    const char *label;
    const char *value;
} xe_row;

typedef struct xe_table_rec {
    size_t n;
    xe_row *rows;
} xe_table_rec;

void xe_print_table(xe_ctx *ctx, const xe_table_rec *recs, size_t n);
void xe_print_list(xe_ctx *ctx, const char *const *items, size_t n);
void xe_print_line(xe_ctx *ctx, const char *s);   /* PList of one */
void xe_print_msg(xe_ctx *ctx, const char *s);    /* PMsg */
void xe_print_stderr(xe_ctx *ctx, const char *s); /* PStderr */
/** Direct print to stdout, even in --minimal mode (uninstall). */
void xe_print_direct(xe_ctx *ctx, const char *s);
void xe_out_flush(xe_ctx *ctx);
/** Print ctx->err as XAPI does; returns the exit code. */
int xe_print_error(xe_ctx *ctx);
/** Text of an API error (description and param lines), as in do_multiple. */
const char *xe_api_error_text(xe_ctx *ctx, const char *name, size_t n,
                              const char *const *params);
void xe_print_usage(FILE *f);

/* ---- the user's side: terminal, files, transfers (io.c) ---- */

/*
 * Where a command's output goes and where the files it reads or writes
 * are: the terminal and files of this process for the xe program
 * (xe_io_local), or, in xcpd serving XAPI's /cli, the thin client at the
 * other end of the connection (prints become Print/PrintStderr, files
 * Load/HttpGet/HttpPut exchanges). Commands reach it only through the
 * xe_io_* functions below, so their code is the same in both.
 */
struct xe_io {
    /** Any fragment of text for the user's stdout / stderr. */
    void (*out)(const xe_io *io, const char *s);
    void (*err)(const xe_io *io, const char *s);
    /** One line typed by the user (no newline, arena copy); NULL when
     *  the input has ended (ctx->err is then set). */
    char *(*prompt)(const xe_io *io, xe_ctx *ctx);
    /** The whole of a small file of the user's (arena), or NULL. */
    char *(*load)(const xe_io *io, xe_ctx *ctx, const char *path);
    /** The transfers: 0, or -1 with ctx->err. vm_import adds the
     *  imported VMs' refs to *vms (arena strings). */
    int (*vm_export)(const xe_io *io, xe_ctx *ctx, const char *file,
                     const char *vm, const xcp_vm_export_options *o);
    int (*vm_import)(const xe_io *io, xe_ctx *ctx, const char *file,
                     const xcp_vm_import_options *o, xe_strv *vms);
    int (*vdi_transfer)(const xe_io *io, xe_ctx *ctx, const char *file,
                        const char *vdi, bool import,
                        const xcp_vdi_transfer_options *o);
    /** Attach the user's terminal to console ref con: 0 or -1. */
    int (*console)(const xe_io *io, xe_ctx *ctx, const char *con);
    void *arg;              /* the implementation's */
    /** One line of debug output (no newline): what the command does on
     *  the server's side (XAPI's protocol: a Debug message, which the
     *  stock xe shows with --debug). NULL: none wanted. */
    void (*debug)(const xe_io *io, const char *s);
    /** Make d's data into the user's file (or, for an upload, take the
     *  user's file in): 0, or -1 with ctx->err. */
    int (*download)(const xe_io *io, xe_ctx *ctx, const char *file,
                    const xe_download *d);
};

/** This process's terminal and files (what the xe program uses). */
const xe_io *xe_io_local(void);
/** The same, with debug lines written to f ("debug: <line>"), as
 *  newcli's --debug (stderr) and --debug-on-fail (a temporary file). */
const xe_io *xe_io_local_debug(FILE *f);

/** Through ctx->io: see struct xe_io. */
void xe_io_out(xe_ctx *ctx, const char *s);
void xe_io_err(xe_ctx *ctx, const char *s);
char *xe_io_prompt(xe_ctx *ctx);
char *xe_io_load(xe_ctx *ctx, const char *path);
int xe_io_vm_export(xe_ctx *ctx, const char *file, const char *vm,
                    const xcp_vm_export_options *o);
int xe_io_vm_import(xe_ctx *ctx, const char *file,
                    const xcp_vm_import_options *o, xe_strv *vms);
int xe_io_vdi_transfer(xe_ctx *ctx, const char *file, const char *vdi,
                       bool import, const xcp_vdi_transfer_options *o);
int xe_io_console(xe_ctx *ctx, const char *con);
int xe_io_download(xe_ctx *ctx, const char *file, const xe_download *d);
/** Whether the user's side takes debug lines (xe --debug, /cli). */
bool xe_io_debugging(const xe_ctx *ctx);
/** A debug line for the user's side, when it takes them. */
void xe_io_debug(xe_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- running a command (run.c): XAPI's server side ---- */

/** Opens ctx->s once the command is known to exist and to have its
 *  required parameters: 0, or -1 with ctx->err. */
typedef int (*xe_open_fn)(xe_ctx *ctx, void *arg);

/** Set up ctx for one command whose output goes to io. */
void xe_ctx_init(xe_ctx *ctx, const xe_io *io);
/** Release what ctx holds (records, session, arena). */
void xe_ctx_dispose(xe_ctx *ctx);

/**
 * The server side of one command, as XAPI's xapi_cli.ml: parse the
 * words, answer "help", find the command, check its required
 * parameters, open the session with open_fn and run it; then print the
 * output (--minimal's) or the error. Returns the exit code.
 */
int xe_execute(xe_ctx *ctx, size_t nwords, const char *const *words,
               xe_open_fn open_fn, void *arg);

/* ---- library access (api.c) ---- */

/** Argument list builder for xcp_call. */
typedef struct xe_args {
    size_t n;
    xcp_value v[20];
} xe_args;

void xe_args_init(xe_args *a);
void xe_args_str(xe_args *a, const char *s);
void xe_args_int(xe_args *a, int64_t i);
void xe_args_bool(xe_args *a, bool b);
void xe_args_float(xe_args *a, double f);
void xe_args_value(xe_args *a, xcp_value *v);   /* moved in */
void xe_args_dispose(xe_args *a);

/**
 * Call a message; on failure copy the error into ctx->err. result may be
 * NULL. The args are disposed.
 */
int xe_call(xe_ctx *ctx, xcp_value *result, const char *method,
            xe_args *args);
/** Same, without touching ctx->err on failure. */
int xe_call_quiet(xe_ctx *ctx, xcp_value *result, const char *method,
                  xe_args *args);
/** Call "Async.<method>" and wait for the task. */
int xe_call_async(xe_ctx *ctx, xcp_value *result, const char *method,
                  xe_args *args);
/** Call a message whose result is a string (ref, uuid); arena copy. */
int xe_call_str(xe_ctx *ctx, const char **out, const char *method,
                xe_args *args);
/** Convenience: <Class>.<msg>(self) returning a string, or void. */
int xe_call1(xe_ctx *ctx, const char *method, const char *self);
int xe_get_by_uuid(xe_ctx *ctx, const char *api_cls, const char *uuid,
                   const char **ref);
/** <method>(self) returning a value, a string (arena) or a bool. */
int xe_get_value(xe_ctx *ctx, const char *method, const char *self,
                 xcp_value *out);
int xe_get_str(xe_ctx *ctx, const char *method, const char *self,
               const char **out);
int xe_get_bool(xe_ctx *ctx, const char *method, const char *self,
                bool *out);
/** Same, leaving ctx->err alone on failure (lookups that may fail);
 *  out may be NULL. xe_try_str gives NULL on failure. */
int xe_try_value(xe_ctx *ctx, const char *method, const char *self,
                 xcp_value *out);
const char *xe_try_str(xe_ctx *ctx, const char *method, const char *self);

/** A record from the cache (fetched with <Class>.get_record when absent),
 *  or NULL when the ref is null/invalid. */
const xcp_value *xe_record(xe_ctx *ctx, int cls, const char *ref);
/** Fetch all records of a class into the cache; refs in server order. */
int xe_all_records(xe_ctx *ctx, int cls, xe_strv *refs);
/**
 * Only the named API fields of every record of cls (refs into *refs, the
 * STRUCTs of fields in *recs, parallel; both live until xe_cache_clear or
 * the next call). Not cached per ref: xe_record still gives whole ones.
 */
int xe_partial_records(xe_ctx *ctx, int cls, const char *const *fields,
                       size_t nfields, xe_strv *refs,
                       const xcp_value ***recs);
void xe_cache_clear(xe_ctx *ctx);
/** uuid of a ref of a known class, or NULL. */
const char *xe_ref_uuid(xe_ctx *ctx, int cls, const char *ref);
/** name_label of a ref of a known class, or NULL. */
const char *xe_ref_name(xe_ctx *ctx, int cls, const char *ref);
/** XAPI's ref_convert: "uuid (name)" / "uuid" for any known ref. */
const char *xe_ref_convert(xe_ctx *ctx, const char *s);
/** uuid of any ref (class unknown), or NULL. */
const char *xe_any_ref_uuid(xe_ctx *ctx, const char *ref);

/** Field of a record by API name, or NULL. */
const xcp_value *xe_rec_field(const xcp_value *rec, const char *name);
const char *xe_rec_str(const xcp_value *rec, const char *name);
bool xe_rec_bool(const xcp_value *rec, const char *name);
int xe_class_id(const char *api_name);

/** Build a create struct: only fields the model has are added. */
void xe_struct_str(xcp_value *st, int cls, const char *f, const char *s);
void xe_struct_int(xcp_value *st, int cls, const char *f, int64_t i);
void xe_struct_bool(xcp_value *st, int cls, const char *f, bool b);
void xe_struct_float(xcp_value *st, int cls, const char *f, double d);
void xe_struct_empty_map(xcp_value *st, int cls, const char *f);
void xe_struct_empty_set(xcp_value *st, int cls, const char *f);
void xe_struct_value(xcp_value *st, int cls, const char *f, xcp_value *v);

/* ---- commands ---- */

typedef int (*xe_cmd_fn)(xe_ctx *ctx);

enum {
    XE_CF_VMSEL = 1 << 0,     /* takes <vm-selectors> */
    XE_CF_HOSTSEL = 1 << 1,
    XE_CF_SRSEL = 1 << 2,
    XE_CF_STANDARD = 1 << 3,  /* listed by plain "xe help" */
    XE_CF_HIDDEN = 1 << 4,
};

typedef struct xe_cmd {
    const char *name;
    const char *const *reqd;
    const char *const *optn;
    const char *help;
    unsigned flags;
    xe_cmd_fn fn;
} xe_cmd;

/** The command named name (static or generated), or NULL. The returned
 *  description lives in the arena. */
const xe_cmd *xe_cmd_find(xe_ctx *ctx, const char *name);
int xe_cmd_help(xe_ctx *ctx);

/* Static command implementations (cmd_vm.c, cmd_dev.c). */
int xe_console(xe_ctx *ctx); /* cmd_console.c */
int xe_vdi_import(xe_ctx *ctx); /* cmd_transfer.c */
int xe_vdi_export(xe_ctx *ctx);
/* A transfer's progress bar on stderr (cmd_transfer.c): xe_bar_start
 * sets *fn and *ctx to xe_bar_show and b when stderr is a terminal, and
 * leaves them otherwise; xe_bar_end ends the bar's line. */
typedef struct xe_bar {
    struct timespec t0;
    int shown;
} xe_bar;
void xe_bar_start(xe_bar *b, xcp_transfer_progress *fn, void **ctx);
void xe_bar_show(void *ctx, uint64_t done, uint64_t total);
void xe_bar_end(xe_bar *b);
int xe_vm_export(xe_ctx *ctx); /* cmd_xva.c */
int xe_vm_import(xe_ctx *ctx);
int xe_vm_install(xe_ctx *ctx);
int xe_vm_cd_insert(xe_ctx *ctx);   /* cmd_cd.c */
int xe_vm_cd_eject(xe_ctx *ctx);
int xe_cd_list(xe_ctx *ctx);
int xe_vm_uninstall(xe_ctx *ctx);
int xe_vm_start(xe_ctx *ctx);
int xe_vm_shutdown(xe_ctx *ctx);
int xe_vm_reboot(xe_ctx *ctx);
int xe_vm_suspend(xe_ctx *ctx);
int xe_vm_resume(xe_ctx *ctx);
int xe_vm_pause(xe_ctx *ctx);
int xe_vm_unpause(xe_ctx *ctx);
int xe_vm_reset_powerstate(xe_ctx *ctx);
int xe_vm_clone(xe_ctx *ctx);
int xe_vm_copy(xe_ctx *ctx);
int xe_vm_snapshot(xe_ctx *ctx);
int xe_vm_checkpoint(xe_ctx *ctx);
int xe_vm_destroy(xe_ctx *ctx);
int xe_vm_create(xe_ctx *ctx);
int xe_vm_memory_set(xe_ctx *ctx);
int xe_vm_memory_dynamic_range_set(xe_ctx *ctx);
int xe_vm_memory_static_range_set(xe_ctx *ctx);
int xe_vm_memory_limits_set(xe_ctx *ctx);
int xe_vm_memory_target_set(xe_ctx *ctx);
int xe_vm_compute_memory_overhead(xe_ctx *ctx);
int xe_vm_migrate(xe_ctx *ctx);
int xe_vm_vcpu_hotplug(xe_ctx *ctx);
int xe_snapshot_revert(xe_ctx *ctx);
int xe_snapshot_destroy(xe_ctx *ctx);
int xe_snapshot_uninstall(xe_ctx *ctx);
int xe_snapshot_clone(xe_ctx *ctx);
int xe_snapshot_copy(xe_ctx *ctx);
int xe_template_uninstall(xe_ctx *ctx);
int xe_vdi_create(xe_ctx *ctx);
int xe_vdi_copy(xe_ctx *ctx);
int xe_vdi_resize(xe_ctx *ctx);
int xe_vdi_destroy(xe_ctx *ctx);
int xe_vbd_create(xe_ctx *ctx);
int xe_vbd_destroy(xe_ctx *ctx);
int xe_vbd_plug(xe_ctx *ctx);
int xe_vbd_unplug(xe_ctx *ctx);
int xe_vif_create(xe_ctx *ctx);
int xe_vif_destroy(xe_ctx *ctx);
int xe_vif_plug(xe_ctx *ctx);
int xe_vif_unplug(xe_ctx *ctx);
int xe_network_create(xe_ctx *ctx);
int xe_network_destroy(xe_ctx *ctx);
int xe_pbd_plug(xe_ctx *ctx);
int xe_pbd_unplug(xe_ctx *ctx);
int xe_sr_scan(xe_ctx *ctx);
int xe_sr_create(xe_ctx *ctx);
int xe_sr_introduce(xe_ctx *ctx);
int xe_sr_probe(xe_ctx *ctx);
int xe_sr_forget(xe_ctx *ctx);
int xe_sr_destroy(xe_ctx *ctx);
int xe_sr_update(xe_ctx *ctx);
int xe_pbd_create(xe_ctx *ctx);
int xe_pbd_destroy(xe_ctx *ctx);
int xe_vdi_forget(xe_ctx *ctx);
int xe_vdi_update(xe_ctx *ctx);
/* Changed block tracking: VDI.enable_cbt, disable_cbt, data_destroy of
 * uuid=; list_changed_blocks of vdi-from-uuid= and vdi-to-uuid=, its
 * base64 bitmap printed. */
int xe_vdi_enable_cbt(xe_ctx *ctx);
int xe_vdi_disable_cbt(xe_ctx *ctx);
int xe_vdi_data_destroy(xe_ctx *ctx);
int xe_vdi_list_changed_blocks(xe_ctx *ctx);
int xe_vdi_introduce(xe_ctx *ctx);
int xe_vdi_resize(xe_ctx *ctx);
int xe_vdi_copy(xe_ctx *ctx);
int xe_vdi_clone(xe_ctx *ctx);
int xe_vdi_snapshot(xe_ctx *ctx);
int xe_vbd_insert(xe_ctx *ctx);
int xe_vbd_eject(xe_ctx *ctx);
int xe_vif_move(xe_ctx *ctx);
int xe_task_cancel(xe_ctx *ctx);

#define XE_NID "<not in database>"
#define XE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
