/*
 * xcp-top: a live monitor of hosts and VMs (like xentop) on libxcp's
 * public API. Internal interface shared by its files: the command line
 * (opts.c, library-free so that a fuzzer can drive it), the snapshot of
 * what is shown (sample.c), the batch output (batch.c) and the ncurses
 * view (ui.c).
 */
#ifndef XCP_TOP_H
#define XCP_TOP_H

#include <xcp/xcp.h>

#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- command line (opts.c) ---- */

typedef enum top_action {
    TOP_RUN,     /* monitor */
    TOP_HELP,    /* --help: usage on stdout, exit 0 */
    TOP_VERSION, /* --version */
    TOP_BAD,     /* error text in errtext, exit 1 */
} top_action;

typedef struct top_opts {
    top_action action;
    char errtext[256];
    bool batch;         /* -b */
    double interval;    /* -i / -d, seconds (> 0) */
    long count;         /* -n, iterations; < 0: until stopped */
    const char *server; /* -s */
    int port;           /* -p; -1: default */
    const char *user;   /* -u */
    const char *password; /* -pw */
    const char *pwfile;   /* -pwf */
    bool nossl;           /* --nossl */
    const char *filter;   /* -f REGEX */
    int sort;             /* -S FIELD: a top_col, or -1 */
    bool reverse;         /* -r */
    bool hosts_only;      /* -H: hosts only (no VM rows) */
} top_opts;

/** Parse argv (argv[0] excluded). Strings point into argv. Never fails
 * otherwise than with action TOP_BAD and a message. */
void top_opts_parse(top_opts *o, int argc, char *const *argv);

/** The usage text of --help. */
void top_usage(FILE *f);

/* ---- what a refresh shows (sample.c) ---- */

/* Columns, in the order of the batch header; the sortable ones. */
typedef enum top_col {
    COL_TYPE,
    COL_STATE,
    COL_CPU,    /* % of one CPU, summed over vCPUs (as xentop) */
    COL_VCPUS,
    COL_MEM,    /* bytes in use */
    COL_MEMPCT, /* of the maximum */
    COL_MAXMEM, /* bytes */
    COL_RD,     /* disk read, bytes/s */
    COL_WR,     /* disk write, bytes/s */
    COL_RX,     /* network received, bytes/s */
    COL_TX,     /* network sent, bytes/s */
    COL_UUID,
    COL_NAME,
    COL__COUNT
} top_col;

/** Column heading (batch header and screen), and its sort key name. */
extern const char *const top_col_names[COL__COUNT];

/** Column by name, case-insensitive (heading or short alias), or -1. */
int top_col_by_name(const char *name);

typedef struct top_row {
    bool is_host;
    char ref[XCP_REF_MAX];
    char uuid[40];
    char *name;       /* owned */
    char state[12];   /* VM power state, host "up"/"down" */
    char host[XCP_REF_MAX]; /* VM: resident_on; host: its own ref */
    double vcpus;     /* NAN: unknown */
    double mem, mempct, maxmem, cpu, rd, wr, rx, tx; /* NAN: unknown */
    bool ds_wanted;   /* read its data sources at this refresh */
} top_row;

typedef struct top_stats {
    unsigned long calls;    /* requests made by the last refresh */
    unsigned long ds_calls; /* of which data-source reads */
} top_stats;

typedef struct top_sample {
    top_row *rows;
    size_t n, cap;
    size_t nhosts;       /* host rows come first */
    size_t vms_total, vms_running;
    bool ds_missing;     /* the server has no data sources */
    top_stats stats;
} top_sample;

/* ---- the records, kept current with event.from (cache.c) ---- */

enum { TOP_HOST, TOP_HOST_METRICS, TOP_VM, TOP_VM_METRICS, TOP_NCLS };

typedef struct top_obj {
    char ref[XCP_REF_MAX];
    xcp_value snap; /* the record, as event.from's snapshot */
    bool gone;      /* deleted (only during a merge) */
} top_obj;

typedef struct top_table {
    top_obj *v; /* sorted by ref */
    size_t n, cap;
} top_table;

typedef struct top_cache {
    char *token; /* of the last event.from; NULL before the first */
    top_table t[TOP_NCLS];
    size_t events; /* how many the last refresh brought */
} top_cache;

/**
 * Bring c up to date: one event.from (timeout 0) from its token; the
 * first time, a token and the records of each class (the fields shown);
 * from scratch again after EVENTS_LOST.
 * *calls counts the requests. Returns 0, or a negative code with the
 * library's error; c is then as it was (or empty after EVENTS_LOST).
 */
int top_cache_update(xcp_session *s, top_cache *c, unsigned long *calls);

/**
 * Merge event.from's events (an array of {class, operation, ref,
 * snapshot} structs) into c: "add" and "mod" put the snapshot in (moved
 * out of events), "del" drops the object; other classes are ignored.
 * Returns 0, or -1 (allocation failure, events not an array).
 */
int top_cache_merge(top_cache *c, xcp_value *events);

/** The record of ref in class cls (TOP_VM...), or NULL. Borrowed from c
 * until its next update. */
const xcp_value *top_cache_get(const top_cache *c, int cls, const char *ref);

/** Free what c holds and empty it. */
void top_cache_dispose(top_cache *c);

/** The view's state that decides what a refresh reads and shows. */
typedef struct top_view {
    int sort;        /* top_col */
    bool reverse;
    bool hosts_only;
    bool have_filter;
    regex_t filter;  /* on name or uuid, when have_filter */
    /* Interactive: the window of VM rows on screen; the data sources are
     * read for those only unless the sort needs every row's (batch: all). */
    bool all_ds;
    size_t first, visible;
    bool ds_unsupported; /* the server gave no data-source values */
    top_cache cache;     /* the records, across refreshes */
} top_view;

/** Free what a view holds (filter, records). */
void top_view_dispose(top_view *v);

/** Free the rows of s and empty it. */
void top_sample_clear(top_sample *s);

/**
 * One refresh: hosts, then the VMs that pass the filter, sorted, with
 * their figures. Records from the view's cache (one event.from: what
 * changed since the last refresh); data sources with one
 * get_data_sources per shown host and running VM. Returns 0, or -1 with
 * the library's error (xcp_error_last) when the records cannot be read.
 */
int top_sample_take(xcp_session *s, top_view *v, top_sample *out);

/**
 * Fold the current values of a host's or VM's data sources (what
 * get_data_sources returns: an array of data_source records, name_label
 * and value; disabled ones skipped) into its row: cpuN summed as % of one
 * CPU, vbd_<dev>_read/write, vif_<n>_rx/tx (a host's pif_aggr_rx/tx, else
 * its pif_<dev>_rx/tx) summed; a host's memory_total_kib/memory_free_kib
 * and CPU count, and cpu_avg when there are no cpuN. Returns 0, or 1
 * when sources carry no values (an array of names): r is then untouched.
 */
int top_row_add_ds(top_row *r, const xcp_value *sources);

/** Whether a row passes the view's filter (hosts always do). */
bool top_view_match(const top_view *v, const top_row *r);

/** Sort the VM rows of s (after the hosts) by the view's key. */
void top_sample_sort(top_sample *s, const top_view *v);

/* ---- the connection (main.c) ---- */

typedef enum top_via {
    TOP_VIA_NONE,   /* not opened yet: this host's socket, else embedded */
    TOP_VIA_ENGINE, /* the engine, embedded */
    TOP_VIA_SOCKET, /* this host's xcpd, through its unix socket */
    TOP_VIA_REMOTE, /* -s */
} top_via;

typedef struct top_conn {
    const top_opts *o;
    xcp_session *s; /* NULL while closed */
    top_via via;    /* how it was first opened, kept on reconnection */
    char where[4200]; /* for the title: "unix:/...", "https://h", ... */
} top_conn;

/**
 * Open (or reopen) c's session: the way it went the first time, so a
 * monitor of a daemon never takes the state directory from it. Returns 0
 * or a negative code with the library's error.
 */
int top_conn_open(top_conn *c);

/**
 * A refresh through c: top_sample_take, and when the session was lost
 * (SESSION_INVALID: the daemon restarted; a transport failure) a new
 * session and the records from scratch, once. Returns 0 or -1 with the
 * library's error.
 */
int top_refresh(top_conn *c, top_view *v, top_sample *out);

/* ---- output ---- */

/** Batch mode: one header line, then one line per row. */
void top_batch_print(FILE *f, const top_sample *s);

/** Interactive mode until q, o->count refreshes or *stop; returns the
 * exit status. */
int top_ui_run(top_conn *c, top_view *v, volatile sig_atomic_t *stop);

/** Format a byte count the way the screen shows it (K/M/G/T, 1024; "-"
 * when unknown). */
void top_fmt_bytes(char *buf, size_t len, double v);

#endif
