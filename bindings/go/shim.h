/* C glue for the Go package: the one task trampoline, destructors and callbacks that
 * forward to exported Go functions, and helpers that keep handle numbers out of Go-side
 * pointer conversions. Declarations only (cgo's rule for files with //export). */
#ifndef DASKR_GO_SHIM_H
#define DASKR_GO_SHIM_H

#include <stdint.h>

#include "daskr.h"

/* The tag prefix of pointer values that hold a Go value (a runtime/cgo.Handle). */
#define DASKR_GO_TAG_PREFIX "daskr-go:"

/* daskr_func_new with the Go trampoline; `handle` (a cgo.Handle of the Go function) is
 * deleted through daskrGoDeleteHandle when daskr frees the function (or right away on
 * failure). */
daskr_error_t *daskr_go_func_new(const char *name, uintptr_t handle, daskr_func_t **out);
/* daskr_go_func_new for a pure function the result cache may keep, under `version`. */
daskr_error_t *daskr_go_func_new_versioned(const char *name, uintptr_t handle, const char *version,
                                          daskr_func_t **out);

/* A pointer value holding `handle` (a cgo.Handle); its destructor deletes the handle. On
 * failure the handle is NOT deleted (the caller still owns it). */
daskr_error_t *daskr_go_value_object(uintptr_t handle, const char *tag, daskr_value_t **out);

/* The cgo.Handle inside a pointer value made by daskr_go_value_object, or 0 if `value` is
 * not one. */
uintptr_t daskr_go_value_handle(const daskr_value_t *value);

/* The address inside any pointer value (0 if not a pointer value). */
uintptr_t daskr_go_value_address(const daskr_value_t *value);

/* daskr_graph_get with options built on the C side. `cb_handle` (0 for none) is a cgo.Handle
 * passed to the daskrGoCb* functions; `stats`, `profile`, `progress` and `address` may be NULL. */
daskr_error_t *daskr_go_get(const daskr_graph_t *graph, const daskr_value_t *keys, int scheduler,
                            uint32_t workers, const daskr_cancel_t *cancel, uintptr_t cb_handle,
                            daskr_stats_t *stats, const daskr_profile_t *profile,
                            const daskr_progress_t *progress, uint32_t retries, double task_timeout_s,
                            const char *address, const daskr_cache_t *cache, daskr_value_t **out);

/* daskr_graph_add_task for a task whose arguments are all task handles and that has no
 * keyword arguments, in one call from Go: `key` is `key_len` bytes, not NUL-terminated
 * (0: anonymous), key_len < DASKR_GO_SMALL_KEY and n <= DASKR_GO_SMALL_ARGS (the Go side
 * takes the general path otherwise). */
#define DASKR_GO_SMALL_KEY 128
#define DASKR_GO_SMALL_ARGS 16
daskr_error_t *daskr_go_add_task_handles(daskr_graph_t *graph, const char *key, size_t key_len,
                                         const daskr_func_t *func, const uint64_t *handles, size_t n,
                                         daskr_task_t *out);

/* The i-th argument of a running task as an int, in one call from Go: 0 and *out set; 1 if
 * there is no such argument; 2 if it is not an int (*value is the argument then). */
int daskr_go_call_int(const daskr_call_t *call, size_t i, int64_t *out, const daskr_value_t **value);

#endif
