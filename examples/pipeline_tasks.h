/*
 * The seed's pipeline tasks — load, clean, analyze, store — shared by the C program
 * (examples/pipeline.c) and the example plugin (examples/plugins/example.c), so both compute
 * exactly the same thing. Before including, define
 *   PIPELINE_TASK          how the functions are declared (`static`, or exported), and
 *   PIPELINE_STORE_STREAM  where `store` writes (a plugin run by `daskr run` must keep stdout
 *                          for the command's JSON).
 *
 *   load(name)               8 deterministic readings for a file name (some negative), standing
 *                            in for reading the file, so the example needs no data
 *   clean(readings)          drops the negative readings (sensor glitches)
 *   analyze(files, method=)  summarises every file's readings ("mean" or "max")
 *   store(summary, to=)      writes "[store -> <to>] <summary>", returns the bytes written
 */
#ifndef DASKR_EXAMPLE_PIPELINE_TASKS_H
#define DASKR_EXAMPLE_PIPELINE_TASKS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daskr.h"

/* Fails the task and returns from it if `cond` does not hold. */
#define REQUIRE(call, cond, msg)          \
    do {                                  \
        if (!(cond)) {                    \
            daskr_call_fail((call), msg); \
            return;                       \
        }                                 \
    } while (0)

PIPELINE_TASK void load(daskr_call_t *call, void *user_data) {
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
    if (e) daskr_error_free(e);
    REQUIRE(call, e == NULL, "load: could not build the list");
    daskr_call_return(call, list);
}

PIPELINE_TASK void clean(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *raw = daskr_call_arg(call, 0);
    REQUIRE(call, daskr_value_kind(raw) == DASKR_KIND_LIST, "clean: expected a list of readings");
    size_t n = daskr_value_list_len(raw), kept = 0;
    daskr_value_t **good = malloc((n ? n : 1) * sizeof *good);
    REQUIRE(call, good != NULL, "clean: out of memory");
    for (size_t i = 0; i < n; i++) {
        double x;
        if (daskr_value_get_float(daskr_value_list_at(raw, i), &x) && x >= 0.0) good[kept++] = daskr_value_float(x);
    }
    daskr_value_t *list = NULL;
    daskr_error_t *e = daskr_value_list(good, kept, &list);
    free(good);
    if (e) daskr_error_free(e);
    REQUIRE(call, e == NULL, "clean: could not build the list");
    daskr_call_return(call, list);
}

PIPELINE_TASK void analyze(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *files = daskr_call_arg(call, 0);
    const char *method = "mean";
    daskr_value_get_string(daskr_call_kwarg(call, "method"), &method, NULL);
    REQUIRE(call, strcmp(method, "mean") == 0 || strcmp(method, "max") == 0,
            "analyze: method must be \"mean\" or \"max\"");
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

PIPELINE_TASK void store(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *summary, *to = "stdout";
    REQUIRE(call, daskr_value_get_string(daskr_call_arg(call, 0), &summary, NULL), "store: expected a summary string");
    daskr_value_get_string(daskr_call_kwarg(call, "to"), &to, NULL);
    int n = fprintf(PIPELINE_STORE_STREAM, "[store -> %s] %s\n", to, summary);
    fflush(PIPELINE_STORE_STREAM);
    daskr_call_return_int(call, n);
}

#endif
