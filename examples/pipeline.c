/*
 * The seed's pipeline, in C: Dask's "custom graphs" example
 *
 *   load-i  = load("myfile.<x>.data")      (three files)
 *   clean-i = clean(load-i)
 *   analyze = analyze([clean-1, clean-2, clean-3], method="mean")
 *   store   = store(analyze, to="results")
 *
 * `load` makes each file's readings (deterministic numbers, some negative: sensor glitches)
 * so the example needs no data; `clean` drops the glitches; `analyze` summarises all files
 * with the statistic its keyword argument names; `store` prints the summary and returns the
 * number of bytes it wrote. Build and run: `make pipeline`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daskr.h"

/* load, clean, analyze and store: shared with the example plugin. */
#define PIPELINE_TASK static
#define PIPELINE_STORE_STREAM stdout
#include "pipeline_tasks.h"

/* Prints an error and exits: the example has nothing to clean up that the OS won't. */
static void ok(daskr_error_t *e) {
    if (e) {
        fprintf(stderr, "daskr error (%s, key %s): %s\n", daskr_error_kind_name(daskr_error_kind(e)),
                daskr_error_key(e) ? daskr_error_key(e) : "-", daskr_error_message(e));
        exit(1);
    }
}

static daskr_func_t *func(const char *name, daskr_task_fn fn) {
    daskr_func_t *f = NULL;
    ok(daskr_func_new(name, fn, NULL, NULL, &f));
    return f;
}

static daskr_comp_t *string_comp(const char *s) {
    daskr_value_t *v = NULL;
    ok(daskr_value_string(s, strlen(s), &v));
    return daskr_comp_value(v);
}

int main(void) {
    daskr_func_t *f_load = func("load", load), *f_clean = func("clean", clean);
    daskr_func_t *f_analyze = func("analyze", analyze), *f_store = func("store", store);
    daskr_graph_t *g = daskr_graph_new();

    const char *files[] = {"myfile.a.data", "myfile.b.data", "myfile.c.data"};
    daskr_comp_t *cleaned[3];
    for (int i = 0; i < 3; i++) {
        char load_key[16], clean_key[16];
        snprintf(load_key, sizeof load_key, "load-%d", i + 1);
        snprintf(clean_key, sizeof clean_key, "clean-%d", i + 1);
        daskr_comp_t *load_args[] = {string_comp(files[i])};
        ok(daskr_graph_add_task(g, load_key, f_load, load_args, 1, NULL, NULL, 0, NULL));
        daskr_comp_t *clean_args[] = {daskr_comp_ref(load_key)};
        ok(daskr_graph_add_task(g, clean_key, f_clean, clean_args, 1, NULL, NULL, 0, NULL));
        cleaned[i] = daskr_comp_ref(clean_key);
    }
    daskr_comp_t *analyze_args[] = {daskr_comp_list(cleaned, 3)};
    const char *analyze_kw[] = {"method"};
    daskr_comp_t *analyze_kwv[] = {string_comp("mean")};
    ok(daskr_graph_add_task(g, "analyze", f_analyze, analyze_args, 1, analyze_kw, analyze_kwv, 1, NULL));
    daskr_comp_t *store_args[] = {daskr_comp_ref("analyze")};
    const char *store_kw[] = {"to"};
    daskr_comp_t *store_kwv[] = {string_comp("results")};
    ok(daskr_graph_add_task(g, "store", f_store, store_args, 1, store_kw, store_kwv, 1, NULL));

    daskr_stats_t stats;
    daskr_get_options_t options;
    daskr_get_options_init(&options, sizeof options);
    options.stats = &stats;
    daskr_value_t *result = NULL;
    ok(daskr_graph_get_key(g, "store", &options, &result));
    int64_t written = 0;
    daskr_value_get_int(result, &written);
    printf("store wrote %" PRId64 " bytes; %" PRIu64 " tasks ran on %u threads, at most %" PRIu64
           " results held at once\n",
           written, stats.entries_run, stats.workers, stats.peak_held);

    daskr_value_free(result);
    daskr_graph_free(g);
    daskr_func_free(f_load);
    daskr_func_free(f_clean);
    daskr_func_free(f_analyze);
    daskr_func_free(f_store);
    return 0;
}
