/*
 * libxcp public API: errors.
 *
 * Every failing call returns a negative code and sets the thread's last
 * error: the XenAPI error name and its parameters, exactly as a XenAPI
 * server would send them ("VM_BAD_POWER_STATE", ["OpaqueRef:..",
 * "halted", "running"]). Bindings map these to exceptions.
 */
#ifndef XCP_ERRORS_H
#define XCP_ERRORS_H

#include <xcp/common.h>

XCP_BEGIN_DECLS

/** Return codes. The XenAPI name in xcp_error is the real information. */
enum {
    XCP_OK = 0,
    XCP_EAPI = -1,      /**< a XenAPI error (see xcp_error_last()) */
    XCP_ENOMEM = -2,    /**< out of memory */
    XCP_EINVAL = -3,    /**< invalid argument */
    XCP_EIO = -4,       /**< I/O or transport failure */
    XCP_EINTERNAL = -5, /**< internal error (a bug) */
    XCP_EINTR = -6,     /**< interrupted by xcp_session_interrupt(): the
                             error is INTERRUPTED [] */
};

/** The last error of the calling thread. */
typedef struct xcp_error {
    int code;            /**< the negative return code */
    const char *name;    /**< XenAPI error name, e.g. "HANDLE_INVALID" */
    size_t nparams;      /**< number of parameters */
    const char *const *params; /**< the parameters (strings) */
} xcp_error;

/**
 * The calling thread's last error, or NULL when the last call that failed
 * on this thread has been cleared. Pointers stay valid until the next
 * library call on this thread.
 */
XCP_EXTERN const xcp_error *xcp_error_last(void);

/** Clear the calling thread's last error. */
XCP_EXTERN void xcp_error_clear(void);

/**
 * Set the calling thread's last error to name with nparams parameters.
 * Returns XCP_EAPI (so it can be returned directly). For language bindings
 * and drivers; the library uses it internally.
 */
XCP_EXTERN int xcp_error_set(const char *name, size_t nparams,
                             const char *const *params);

/**
 * Human description of a XenAPI error name (the text xe prints on its
 * first line), or NULL when the name is unknown. A static string.
 */
XCP_EXTERN const char *xcp_error_description(const char *name);

/**
 * Names of the parameters of a XenAPI error (as xe prints them), or NULL
 * when unknown. *n receives the count. A static table.
 */
XCP_EXTERN const char *const *xcp_error_param_names(size_t *n,
                                                    const char *name);

XCP_END_DECLS

#endif
