/*
 * tests/api/helpers.h - shared fixtures for the public-API tests: a local
 * session on a fresh temporary state directory (sim hypervisor), VM
 * installation the way xe does it, and assertions on the thread's last
 * XenAPI error (name and parameters).
 *
 * Every test process gets its own state dir: use
 *     TestSuite(x, .init = api_setup, .fini = api_teardown);
 * and the global `S` is the open session.
 */
#ifndef TESTS_API_HELPERS_H
#define TESTS_API_HELPERS_H

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xcp/xcp.h>

#define MiB (1024LL * 1024)
#define GiB (1024LL * MiB)

/* Fill a typed ref (any xcp_<class>) from a string. */
#define SET_REF(r, s) snprintf((r).ref, sizeof((r).ref), "%s", (s))

/* Names of the default templates (data/templates.yaml). */
#define T_DEBIAN "Debian Bookworm 12"
#define T_OTHER "Other install media"

/* The session of the running test, and its state directory. */
extern xcp_session *S;
extern char api_dir[256];

/* Fixture: set the suite environment (unless already set), make a fresh
 * state dir, open a local session on it. */
void api_setup(void);
/* Close the session and remove the state dir. */
void api_teardown(void);
/* Close the session and open a new one on the same state dir. */
void api_reopen(void);
/* Another local session on api_dir, with originator. */
xcp_session *api_session(const char *originator);
/* Open the session on api_dir (after api_setup's environment). */
void api_open(void);
/* Reopen through hypervisor driver hv ("sim", or "sim-qemu": disks whose
 * back ends never pause, as Xen's QEMU), and later reopens too, until the
 * next api_setup. */
void api_reopen_with_hv(const char *hv);
/* Reopen with sim faults injected at open (XCP_SIM_FAULTS syntax). */
void api_reopen_with_faults(const char *faults);
/* Make every guest ignore shutdown requests from now on, and clean
 * shutdowns give up after timeout_ms. */
void api_hang_guests(int timeout_ms);

/* The default template called name (asserts it exists, exactly one). */
xcp_vm api_template(const char *name);
/* Clone a template and provision it: a Halted VM with its disks. */
xcp_vm api_install_from(const char *tmpl, const char *name);
/* api_install_from(T_DEBIAN): one 10 GiB disk on userdevice 0. */
xcp_vm api_install(const char *name);
/* Add a VIF on the first network at `device`; mac "" or NULL: generated. */
xcp_vif api_add_vif(xcp_vm vm, const char *device, const char *mac);

/* The only host / pool / default SR / first network. */
xcp_host api_host(void);
xcp_pool api_pool(void);
xcp_sr api_default_sr(void);
xcp_network api_network(void);

/* Power state of vm (asserts the getter succeeds). */
enum xcp_vm_power_state api_power(xcp_vm vm);
int64_t api_domid(xcp_vm vm);

/* Set membership helpers. */
bool api_ops_has(const xcp_vm_operations_set *s, enum xcp_vm_operations op);
bool api_vm_set_has(const xcp_vm_set *s, xcp_vm vm);
bool api_str_set_has(const xcp_string_set *s, const char *v);
bool api_is_null(const char *ref);

/* Count the VDIs in the default SR whose type is `type` (-1 = any). */
size_t api_count_vdis(int type);

/* How many VDIs sr has (SR.get_VDIs; asserts the call succeeds). */
size_t api_sr_vdi_count(xcp_sr sr);

/* Does VDI v's allowed_operations hold op? (asserts the call succeeds) */
bool api_vdi_allows(xcp_vdi v, enum xcp_vdi_operations op);

/* A new read-write disk VBD of vdi for vm at userdevice (not plugged). */
xcp_vbd api_disk_vbd(xcp_vm vm, xcp_vdi vdi, const char *userdevice);

/* How many qcow2 image files the default SR's directory holds. */
size_t api_count_image_files(void);

/* A new file SR at api_dir/name (also its name_label), with
 * sm-config:image-format=fmt unless NULL (asserts the call succeeds). */
xcp_sr api_file_sr(const char *name, const char *fmt);

/* VDI.list_changed_blocks(from, to) as the list of the changed blocks'
 * numbers, "3,100," ("" for none; static storage, until the next call),
 * and in *nbytes (if not NULL) the bytes of the bitmap; NULL, with the
 * thread's error, when the call fails. */
const char *api_changed_blocks(xcp_vdi from, xcp_vdi to, size_t *nbytes);

/* VDI.create of a user disk `name` (empty description) of size bytes in
 * sr; returns what the call does (*out set on success). */
int api_vdi_create(xcp_vdi *out, xcp_sr sr, const char *name, int64_t size);

/*
 * Assert that the call that returned rc failed with the XenAPI error
 * `name` and exactly the nparams given parameters (NULL in the list: any
 * value at that position).
 */
void api_assert_error_(const char *file, int line, int rc, const char *name,
                       size_t nparams, const char *const *params);
#define API_NARGS(...) \
    (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define assert_error(rc, name, ...)                                        \
    api_assert_error_(__FILE__, __LINE__, (rc), (name),                    \
                      API_NARGS(__VA_ARGS__),                              \
                      (const char *const[]){__VA_ARGS__})
#define assert_error0(rc, name)                                            \
    api_assert_error_(__FILE__, __LINE__, (rc), (name), 0, NULL)
/* Only the error name; parameters not checked. */
void api_assert_error_name_(const char *file, int line, int rc,
                            const char *name);
#define assert_error_name(rc, name)                                        \
    api_assert_error_name_(__FILE__, __LINE__, (rc), (name))

/* Assert a call succeeded, printing the XenAPI error if not. */
void api_assert_ok_(const char *file, int line, int rc, const char *what);
#define OK(call) api_assert_ok_(__FILE__, __LINE__, (call), #call)

#endif
