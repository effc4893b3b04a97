/*
 * libxcp public API: introspection of the object model.
 *
 * The classes, fields, enums and messages the library serves, as tables
 * (like curl's option table). xe, the bindings and generic tools walk them
 * instead of hard-coding field lists.
 *
 * Every pointer returned here (names, field and message descriptions, enum
 * value lists) points into static tables: valid as long as the library is
 * loaded, never freed.
 */
#ifndef XCP_MODEL_H
#define XCP_MODEL_H

#include <xcp/common.h>

XCP_BEGIN_DECLS

/** How a field may be written. */
typedef enum xcp_field_qual {
    XCP_QUAL_RO = 0, /**< read-only, maintained by the server */
    XCP_QUAL_ROS,    /**< static: given at create, then explicit messages */
    XCP_QUAL_RW,     /**< writable: generated set_/add_/remove_ messages */
    XCP_QUAL_RWS,    /**< static, but also writable through setters */
} xcp_field_qual;

/** Field flags. */
enum {
    XCP_FIELD_DEPRECATED = 1 << 0,
    XCP_FIELD_REMOVED = 1 << 1,
    XCP_FIELD_PROTO = 1 << 2,
    XCP_FIELD_REQUIRED = 1 << 3, /**< required in the create struct */
};

/** Class flags. */
enum {
    XCP_CLASS_CREATE = 1 << 0,   /**< has a generated create */
    XCP_CLASS_DESTROY = 1 << 1,  /**< has a generated destroy */
    XCP_CLASS_NOGETALL = 1 << 2, /**< no get_all / get_all_records */
    XCP_CLASS_NOEVENTS = 1 << 3, /**< produces no events */
    XCP_CLASS_NODB = 1 << 4,     /**< not stored (event) */
    XCP_CLASS_VOLATILE = 1 << 5, /**< stored in memory only (session, task) */
};

/** A field's description. */
typedef struct xcp_field_info {
    const char *name;   /**< API name, e.g. "name_label" */
    const char *type;   /**< e.g. "string", "ref:VM", "set:ref:VBD",
                             "map:string:string", "vm_power_state" */
    xcp_field_qual qual;
    unsigned flags;     /**< XCP_FIELD_* */
    const char *def;    /**< default value literal, or NULL */
} xcp_field_info;

/** A message's description. */
typedef struct xcp_message_info {
    const char *wire;   /**< wire name, e.g. "VM.start" */
    const char *cls;    /**< class name */
    size_t nparams;     /**< parameters, excluding the session */
    const char *const *param_names;
    const char *const *param_types;
    const char *const *param_defaults; /**< NULL entries: required */
    const char *result; /**< result type, "void" for none */
    bool async;         /**< callable as Async.<wire> */
    bool session;       /**< takes a session as first argument */
} xcp_message_info;

/** Number of classes. Class ids are 0 .. count-1. */
XCP_EXTERN int xcp_class_count(void);
/** Class id by name (exact, then case-insensitive), or -1. */
XCP_EXTERN int xcp_class_by_name(const char *name);
/** Class name as in the API ("VM", "host_metrics"), or NULL. */
XCP_EXTERN const char *xcp_class_name(int cls);
/** XCP_CLASS_* flags of a class. */
XCP_EXTERN unsigned xcp_class_flags(int cls);
/** Number of fields of a class (record width). */
XCP_EXTERN size_t xcp_class_field_count(int cls);
/** Field i of class cls, or NULL. */
XCP_EXTERN const xcp_field_info *xcp_class_field(int cls, size_t i);
/** Index of a field by API name, or -1. */
XCP_EXTERN int xcp_class_field_index(int cls, const char *name);

/** Values of an enum by name ("vm_power_state"), count in *n; or NULL. */
XCP_EXTERN const char *const *xcp_enum_values(size_t *n, const char *name);

/** Number of messages (explicit and generated). */
XCP_EXTERN size_t xcp_model_message_count(void);
/** Message i, or NULL. */
XCP_EXTERN const xcp_message_info *xcp_model_message(size_t i);
/** Message by wire name ("VM.start", "VM_start"; no Async.), or NULL. */
XCP_EXTERN const xcp_message_info *xcp_model_message_by_name(const char *wire);

XCP_END_DECLS

#endif
