/*
 * xe: the per-class CLI field tables (fields.c) and the engine that
 * evaluates, filters and writes them (record.c).
 *
 * A CLI class ("vm", "template", "host-cpu") is a list of fields in
 * XAPI's record order (ocaml/xapi-cli-server/records.ml). A field maps a
 * CLI name onto our model: a path of API field names, "metrics>VCPUs_number"
 * following the ref field "metrics" to the VM_metrics record, rendered
 * from the model type of the last field; or a getter for values XAPI
 * computes with extra calls. Flags say what XAPI's record offers for the
 * field (get_set, add_to_map, set ...), which decides the ( RO)/(MRW)/...
 * mark and which -param-* operations work; the model gives those it
 * knows (xe_fields_init). Adding a field is one line.
 */
#ifndef XE_FIELDS_H
#define XE_FIELDS_H

#include "xe.h"

enum {
    XE_F_RW = 1 << 0,        /* scalar setter: <Class>.set_<path> (or msg) */
    XE_F_SET = 1 << 1,       /* a set: get_set (filters :contains, (S..)) */
    XE_F_SETRW = 1 << 2,     /* add_<path>/remove_<path> */
    XE_F_MAP = 1 << 3,       /* a map: get_map (filters map:key=, (M..)) */
    XE_F_MAPRW = 1 << 4,     /* add_to_<path>/remove_from_<path> */
    XE_F_SETINMAP = 1 << 5,  /* param-set map:k=v calls msg(self, k, v) */
    XE_F_SETMAP = 1 << 6,    /* param-set map:k=v replaces the whole map */
    XE_F_CLEARMAP = 1 << 7,  /* param-clear calls set_<path> with {} */
    XE_F_HIDDEN = 1 << 8,    /* not shown by -list / -param-list */
    XE_F_EXPENSIVE = 1 << 9, /* "<expensive field>" in -list */
    XE_F_DEPRECATED = 1 << 10,
    XE_F_CI = 1 << 11,       /* case-insensitive filters */
    XE_F_COMMA = 1 << 12,    /* set joined with ", " (tags) */
    XE_F_MAPVALUES = 1 << 13, /* show only the values of a map */
    XE_F_BYTES = 1 << 14,    /* setter takes sizes with suffixes */
    XE_F_NULLREF = 1 << 15,  /* setting "" writes the null ref */
    XE_F_STRREFS = 1 << 16,  /* strings that are refs: shown as uuids */
    /* In a table only (xe_field.given): */
    XE_F_OWN = 1 << 17,      /* the entry gives the model's flags itself */
    XE_F_PLAIN = 1 << 18,    /* a set or map XAPI's CLI shows as plain
                              * text, ( RO), without get_set/get_map */
};

/* The flags the model can say (xe_field_model_flags). */
#define XE_F_MODEL                                                            \
    (XE_F_RW | XE_F_SET | XE_F_SETRW | XE_F_MAP | XE_F_MAPRW                  \
     | XE_F_DEPRECATED)

typedef struct xe_class xe_class;
typedef struct xe_field xe_field;

/** An object being shown: its CLI class, API class, ref and record. */
typedef struct xe_obj {
    const xe_class *cc;
    int cls;
    const char *ref;
    const xcp_value *rec;
} xe_obj;

/** A field's value: text, and members (sets) or keys/values (maps). */
typedef struct xe_fval {
    const char *text;
    xe_strv keys;
    xe_strv vals;
} xe_fval;

/** Computes a field; -1 with ctx->err set on a failing API call. */
typedef int (*xe_getter)(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                         xe_fval *out);

struct xe_field {
    const char *name;      /* CLI name; NULL in a table: the path's API
                            * name with '_' turned '-' (xe_fields_init) */
    const char *path;      /* API field path, or NULL with get */
    unsigned flags;        /* XE_F_*: given | the model's (xe_fields_init) */
    unsigned given;        /* XE_F_* the table states */
    const char *missing;   /* text when the path is broken; NULL: nid */
    xe_getter get;         /* computed fields */
    const char *msg;       /* setter message when not set_<path> */
    const char *addmsg;    /* adder when not add_<path>/add_to_<path> */
    const char *rmmsg;     /* its remover */
    const char *vtype;     /* setter value type when path gives none */
    const char *const *keys; /* keys allowed in add_to_map / set_map */
};

struct xe_class {
    const char *name;                /* CLI class: "vm", "host-cpu" */
    const char *api;                 /* API class: "VM", "host_cpu" */
    const char *plural;              /* for the -list help text */
    xe_field *fields;                /* completed by xe_fields_init */
    size_t nfields;
    const char *const *defaults;     /* default -list params */
    const char *const *filters;      /* implied filters: k, v, ..., NULL */
    bool standard;                   /* -list shown by "xe help" */
};

/* fields.c */
extern const xe_class xe_classes[];
extern const size_t xe_nclasses;
const xe_class *xe_class_find(const char *name);

/*
 * The XE_F_MODEL flags the model gives the field at path (API names,
 * '>' following refs) of API class cls: XE_F_RW for a scalar with a
 * <Class>.set_<field> message (generated for RW/RWs fields, or explicit);
 * XE_F_SET for a set, with XE_F_SETRW when add_<field> and
 * remove_<field> exist; XE_F_MAP for a map, with XE_F_MAPRW when
 * add_to_<field> and remove_from_<field> exist; XE_F_DEPRECATED when
 * the model says so.  Setters count on the object's own fields only: a
 * field through a ref is written on another object.  given adjusts what
 * the CLI shows: with XE_F_MAPVALUES a map is a set (of its values),
 * with XE_F_PLAIN a set or map is plain text.  -1 when path names no
 * model field.
 */
int xe_field_model_flags(int cls, const char *path, unsigned given);
/*
 * Complete the tables once, before any use: each entry's name (when the
 * table leaves it NULL) and flags (the given ones, plus the model's
 * unless the entry has XE_F_OWN).  0, or -1 when out of memory.
 */
int xe_fields_init(void);

/* record.c */
void xe_fval_init(xe_fval *v, xe_arena *a);
/** Follow a field path from an object: 0 and the value and its model
 *  type, or 1 when a ref on the way is null/unknown or a field absent. */
int xe_path_value(xe_ctx *ctx, int cls, const xcp_value *rec,
                  const char *path, const xcp_value **v, const char **type);
/** Text of a scalar value of a model type, as xe shows it. */
const char *xe_render_scalar(xe_ctx *ctx, const char *type,
                             const xcp_value *v);
/** Render a value of a model type into a field value. */
void xe_render(xe_ctx *ctx, const char *type, const xcp_value *v,
               unsigned flags, xe_fval *out);
/** Evaluate a field fully (expensive ones too). */
int xe_field_eval(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                  xe_fval *out);
/** XAPI safe_get_field: the text, HANDLE_INVALID shown as such. */
int xe_field_text(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                  const char **out);
/** "name ( RO)" etc. */
const char *xe_field_label(xe_ctx *ctx, const xe_field *f);
const xe_field *xe_field_find(const xe_class *cc, const char *name);
bool xe_field_settable(const xe_field *f);
bool xe_field_addable(const xe_field *f);
bool xe_field_clearable(const xe_field *f);

/** Every object of the class (implied filters not applied). */
int xe_objs_all(xe_ctx *ctx, const xe_class *cc, xe_obj **objs, size_t *n);
/**
 * The same, with only what the CLI fields fs[nfs] read in each record
 * (xcp_get_records_fields): a listing of a big pool without every
 * record whole. Falls back on xe_objs_all when one of them is computed.
 */
int xe_objs_some(xe_ctx *ctx, const xe_class *cc, const xe_field *const *fs,
                 size_t nfs, xe_obj **objs, size_t *n);
/** The object with that uuid (<Class>.get_by_uuid). */
int xe_obj_by_uuid(xe_ctx *ctx, const xe_class *cc, const char *uuid,
                   xe_obj *o);
/** Keep the objects matching k=v (XAPI filter_records_on_fields). */
int xe_filter(xe_ctx *ctx, xe_obj *objs, size_t *n, const char *k,
              const char *v);
/** The uuid text of an object. */
const char *xe_obj_uuid(const xe_obj *o);

/* -param-* writes */
int xe_field_set(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                 const char *value);
int xe_field_map_add(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                     const char *k, const char *v);
int xe_field_map_remove(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        const char *k);
int xe_field_set_add(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                     const char *v);
int xe_field_set_remove(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        const char *v);
int xe_field_map_replace(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                         const xe_strv *keys, const xe_strv *vals);
int xe_field_map_set_in(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        const char *k, const char *v);

/* Field type as XAPI's get_field_type sees a parameter name. */
typedef enum xe_ftype { XE_FT_NORMAL, XE_FT_SET, XE_FT_MAP } xe_ftype;
int xe_field_type(xe_ctx *ctx, const xe_class *cc, const char *name,
                  xe_ftype *type, const xe_field **f);

/* Records for printing (cmd_generic.c) */
/** Print objects as records; params NULL: every non-hidden field. */
int xe_print_objs(xe_ctx *ctx, const xe_obj *objs, size_t n,
                  const xe_strv *params, bool expensive_ok);

/* A per-VM operation of a command taking <vm-selectors>; *out may
 * receive a ref (clone) or stay NULL.  Returns 0 or -1 (ctx->err set). */
typedef int (*xe_vm_op)(xe_ctx *ctx, const xe_obj *vm, const void *data,
                        const char **out);
/* Run op on the VMs the command's <vm-selectors> choose, as XAPI's
 * do_vm_op (one VM, or several with --multiple); own lists the command's
 * own parameters, which are not selectors (cmd_vm.c). */
int xe_vm_do(xe_ctx *ctx, const char *const *own, xe_vm_op op,
             const void *data);
/* The same on exactly one VM, control domains included (XAPI's
 * include_control_vms, multiple false: several matches fail). */
int xe_vm_do_one(xe_ctx *ctx, const char *const *own, xe_vm_op op,
                 const void *data);
/* The same on exactly one VM, templates and snapshots included (what
 * vm-export may export). */
int xe_vm_do_single(xe_ctx *ctx, const char *const *own, xe_vm_op op,
                    const void *data);

/* Generated commands, the class in ctx->cmd_data. */
int xe_gen_list(xe_ctx *ctx);
int xe_gen_param_list(xe_ctx *ctx);
int xe_gen_param_get(xe_ctx *ctx);
int xe_gen_param_set(xe_ctx *ctx);
int xe_gen_param_add(xe_ctx *ctx);
int xe_gen_param_remove(xe_ctx *ctx);
int xe_gen_param_clear(xe_ctx *ctx);

#endif
