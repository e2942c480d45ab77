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

/* Fails the task and returns from it if `cond` does not hold. */
#define REQUIRE(call, cond, msg)         \
    do {                                 \
        if (!(cond)) {                   \
            daskr_call_fail((call), msg); \
            return;                      \
        }                                \
    } while (0)

static void load(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *path;
    size_t len;
    REQUIRE(call, daskr_value_get_string(daskr_call_arg(call, 0), &path, &len), "load: expected a file name");
    /* A small deterministic generator seeded by the file name stands in for reading it. */
    uint64_t seed = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) seed = (seed ^ (unsigned char)path[i]) * 1099511628211ull;
    enum { N = 8 };
    daskr_value_t *readings[N];
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        double x = (double)((seed >> 33) % 2000) / 10.0 - 20.0; /* -20.0 .. 179.9 */
        readings[i] = daskr_value_float(x);
    }
    daskr_value_t *list = NULL;
    daskr_error_t *e = daskr_value_list(readings, N, &list);
    REQUIRE(call, e == NULL, "load: could not build the list");
    daskr_call_return(call, list);
}

static void clean(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *raw = daskr_call_arg(call, 0);
    REQUIRE(call, daskr_value_kind(raw) == DASKR_KIND_LIST, "clean: expected a list of readings");
    size_t n = daskr_value_list_len(raw), kept = 0;
    daskr_value_t **good = malloc((n ? n : 1) * sizeof *good);
    for (size_t i = 0; i < n; i++) {
        double x;
        if (daskr_value_get_float(daskr_value_list_at(raw, i), &x) && x >= 0.0) good[kept++] = daskr_value_float(x);
    }
    daskr_value_t *list = NULL;
    daskr_error_t *e = daskr_value_list(good, kept, &list);
    free(good);
    REQUIRE(call, e == NULL, "clean: could not build the list");
    daskr_call_return(call, list);
}

static void analyze(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *files = daskr_call_arg(call, 0);
    const char *method = "mean";
    daskr_value_get_string(daskr_call_kwarg(call, "method"), &method, NULL);
    REQUIRE(call, strcmp(method, "mean") == 0 || strcmp(method, "max") == 0, "analyze: method must be \"mean\" or \"max\"");
    double total = 0.0, max = 0.0;
    int64_t count = 0;
    for (size_t f = 0; f < daskr_value_list_len(files); f++) {
        const daskr_value_t *readings = daskr_value_list_at(files, f);
        for (size_t i = 0; i < daskr_value_list_len(readings); i++) {
            double x;
            if (!daskr_value_get_float(daskr_value_list_at(readings, i), &x)) continue;
            total += x;
            max = (count == 0 || x > max) ? x : max;
            count++;
        }
    }
    REQUIRE(call, count > 0, "analyze: no readings left after cleaning");
    double stat = strcmp(method, "mean") == 0 ? total / (double)count : max;
    char summary[128];
    int n = snprintf(summary, sizeof summary, "%" PRId64 " readings from %zu files, %s %.2f", count,
                     daskr_value_list_len(files), method, stat);
    daskr_call_return_string(call, summary, (size_t)n);
}

static void store(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *summary, *to = "stdout";
    REQUIRE(call, daskr_value_get_string(daskr_call_arg(call, 0), &summary, NULL), "store: expected a summary string");
    daskr_value_get_string(daskr_call_kwarg(call, "to"), &to, NULL);
    int n = printf("[store -> %s] %s\n", to, summary);
    daskr_call_return_int(call, n);
}

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
