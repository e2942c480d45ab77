// See shim.h.
#include <string.h>

#include "_cgo_export.h"
#include "shim.h"

/* The get's cancel switch is looked up here, C to C, rather than by Go through one more cgo
 * call per task: the Go side finds its Get (context, task errors) by it. */
static void daskr_go_trampoline(daskr_call_t *call, void *user_data) {
    daskrGoCall(call, (uintptr_t)user_data, (uintptr_t)daskr_call_cancel(call));
}

static void daskr_go_delete_handle(void *user_data) { daskrGoDeleteHandle((uintptr_t)user_data); }

daskr_error_t *daskr_go_func_new(const char *name, uintptr_t handle, daskr_func_t **out) {
    return daskr_func_new(name, daskr_go_trampoline, (void *)handle, daskr_go_delete_handle, out);
}

daskr_error_t *daskr_go_func_new_versioned(const char *name, uintptr_t handle, const char *version,
                                          daskr_func_t **out) {
    return daskr_func_new_versioned(name, daskr_go_trampoline, (void *)handle, daskr_go_delete_handle, version,
                                    DASKR_FUNC_PURE, out);
}

daskr_error_t *daskr_go_value_object(uintptr_t handle, const char *tag, daskr_value_t **out) {
    return daskr_value_pointer((void *)handle, tag, daskr_go_delete_handle, out);
}

uintptr_t daskr_go_value_handle(const daskr_value_t *value) {
    /* Ours only if made here: our destructor (a foreign value could borrow the tag prefix). */
    if (daskr_value_pointer_destructor(value) != daskr_go_delete_handle) return 0;
    const char *tag = daskr_value_pointer_tag(value);
    if (!tag || strncmp(tag, DASKR_GO_TAG_PREFIX, strlen(DASKR_GO_TAG_PREFIX)) != 0) return 0;
    void *p = NULL;
    if (!daskr_value_get_pointer(value, tag, &p)) return 0;
    return (uintptr_t)p;
}

uintptr_t daskr_go_value_address(const daskr_value_t *value) {
    void *p = NULL;
    if (!daskr_value_get_pointer(value, NULL, &p)) return 0;
    return (uintptr_t)p;
}

static void cb_start(void *ud, size_t entries) { daskrGoCbStart((uintptr_t)ud, entries); }
static void cb_pretask(void *ud, const char *key, uint32_t worker) {
    daskrGoCbPretask((uintptr_t)ud, (char *)key, worker);
}
static void cb_posttask(void *ud, const char *key, bool ok, uint32_t worker) {
    daskrGoCbPosttask((uintptr_t)ud, (char *)key, ok, worker);
}
static void cb_finish(void *ud, bool failed) { daskrGoCbFinish((uintptr_t)ud, failed); }

daskr_error_t *daskr_go_get(const daskr_graph_t *graph, const daskr_value_t *keys, int scheduler,
                            uint32_t workers, const daskr_cancel_t *cancel, uintptr_t cb_handle,
                            daskr_stats_t *stats, const daskr_profile_t *profile,
                            const daskr_progress_t *progress, uint32_t retries, double task_timeout_s,
                            const char *address, const daskr_cache_t *cache, daskr_value_t **out) {
    daskr_get_options_t options;
    daskr_get_options_init(&options, sizeof options);
    options.scheduler = (daskr_scheduler_t)scheduler;
    options.num_workers = workers;
    options.cancel = cancel;
    options.stats = stats;
    options.profile = profile;
    options.progress = progress;
    options.retries = retries;
    options.task_timeout_s = task_timeout_s;
    options.address = address;
    options.cache = cache;
    daskr_callbacks_t callbacks = {(void *)cb_handle, cb_start, cb_pretask, cb_posttask, cb_finish};
    if (cb_handle) options.callbacks = &callbacks;
    return daskr_graph_get(graph, keys, &options, out);
}

daskr_error_t *daskr_go_add_task_handles(daskr_graph_t *graph, const char *key, size_t key_len,
                                         const daskr_func_t *func, const uint64_t *handles, size_t n,
                                         daskr_task_t *out) {
    /* On the stack (the Go side keeps to the sizes in shim.h): the usual task of a big graph
     * allocates nothing here. */
    char ckey[DASKR_GO_SMALL_KEY];
    if (key_len > 0) {
        memcpy(ckey, key, key_len);
        ckey[key_len] = 0;
    }
    daskr_comp_t *args[DASKR_GO_SMALL_ARGS];
    for (size_t i = 0; i < n; i++) args[i] = daskr_comp_ref_task(handles[i]);
    /* daskr_graph_add_task takes every argument, on failure too. */
    return daskr_graph_add_task(graph, key_len > 0 ? ckey : NULL, func, args, n, NULL, NULL, 0, out);
}

int daskr_go_call_int(const daskr_call_t *call, size_t i, int64_t *out, const daskr_value_t **value) {
    *value = daskr_call_arg(call, i);
    if (!*value) return 1;
    return daskr_value_get_int(*value, out) ? 0 : 2;
}
