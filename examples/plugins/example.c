/*
 * An example daskr plugin: the seed pipeline's tasks and a few general ones that tests and
 * graph files use.
 *
 *   load(name)                 8 deterministic readings for a file name (some negative)
 *   clean(readings)            drops the negative readings (sensor glitches)
 *   analyze(files, method=)    summarises every file's readings ("mean" or "max")
 *   store(summary, to=)        writes "[store -> <to>] <summary>" to stderr, returns its length
 *   inc(x)                     x + 1
 *   add(a, b, ..., scale=1)    (a + b + ...) * scale, ints or floats
 *   sum(list)                  the sum of a list of numbers
 *   concat(s, ...)             the strings joined
 *   identity(x)                x
 *   fail(message)              fails with `message`
 *   sleep_ms(ms, value=)       sleeps, then returns `value` (or ms)
 *   record(file, readings)     a per-file record: {"file": file, "readings": readings,
 *                              "mean": their mean (a float; null for none)}
 *   field(map, name)           the value named `name` in a map
 *   means(records)             a map from each record's "file" to its "mean"
 *
 * Built without linking libdaskr: the program that loads it provides the daskr_* functions.
 *   cc -std=c11 -shared -fPIC -Iinclude -Iexamples examples/plugins/example.c -o libexample.so
 * (`make plugins` does this into target/plugins/).
 *
 * `store` writes to stderr rather than stdout because stdout belongs to the program that runs
 * the graph (`daskr run` prints its JSON results there).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daskr.h"

#define EXPORT __attribute__((visibility("default")))

/* ---- the seed's pipeline (the same code as examples/pipeline.c) ---- */

#define PIPELINE_TASK EXPORT
#define PIPELINE_STORE_STREAM stderr
#include "pipeline_tasks.h" /* examples/: build with -Iexamples */

/* ---- general tasks ---- */

EXPORT void inc(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t x;
    double f;
    if (daskr_value_get_int(daskr_call_arg(call, 0), &x)) {
        daskr_call_return_int(call, x + 1);
    } else if (daskr_value_get_float(daskr_call_arg(call, 0), &f)) {
        daskr_call_return_float(call, f + 1.0);
    } else {
        daskr_call_fail(call, "inc: expected a number");
    }
}

/* Reads a number: returns 0 if it is not one, 1 for an int, 2 for a float. */
static int number(const daskr_value_t *v, int64_t *i, double *f) {
    if (daskr_value_get_int(v, i)) {
        *f = (double)*i;
        return 1;
    }
    if (daskr_value_get_float(v, f)) return 2;
    return 0;
}

/* Adds numbers, staying in int64 until a float shows up. */
struct total {
    int64_t i;
    double f;
    int is_float;
};

static int accumulate(struct total *t, const daskr_value_t *v) {
    int64_t i;
    double f;
    switch (number(v, &i, &f)) {
    case 1:
        t->i += i;
        t->f += f;
        return 1;
    case 2:
        t->f += f;
        t->is_float = 1;
        return 1;
    default:
        return 0;
    }
}

static void return_total(daskr_call_t *call, const struct total *t) {
    if (t->is_float) daskr_call_return_float(call, t->f);
    else daskr_call_return_int(call, t->i);
}

EXPORT void add(daskr_call_t *call, void *user_data) {
    (void)user_data;
    struct total t = {0, 0.0, 0};
    for (size_t a = 0; a < daskr_call_nargs(call); a++)
        REQUIRE(call, accumulate(&t, daskr_call_arg(call, a)), "add: every argument must be a number");
    const daskr_value_t *scale = daskr_call_kwarg(call, "scale");
    if (scale) {
        int64_t si;
        double sf;
        switch (number(scale, &si, &sf)) {
        case 1:
            t.i *= si;
            t.f *= sf;
            break;
        case 2:
            t.f *= sf;
            t.is_float = 1;
            break;
        default:
            REQUIRE(call, 0, "add: scale must be a number");
        }
    }
    return_total(call, &t);
}

EXPORT void sum(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *list = daskr_call_arg(call, 0);
    REQUIRE(call, daskr_value_kind(list) == DASKR_KIND_LIST, "sum: expected a list of numbers");
    struct total t = {0, 0.0, 0};
    for (size_t i = 0; i < daskr_value_list_len(list); i++)
        REQUIRE(call, accumulate(&t, daskr_value_list_at(list, i)), "sum: every item must be a number");
    return_total(call, &t);
}

EXPORT void concat(daskr_call_t *call, void *user_data) {
    (void)user_data;
    size_t n = daskr_call_nargs(call), total = 0;
    for (size_t a = 0; a < n; a++) {
        size_t len;
        const char *s;
        REQUIRE(call, daskr_value_get_string(daskr_call_arg(call, a), &s, &len), "concat: every argument must be a string");
        total += len;
    }
    char *buf = malloc(total + 1);
    REQUIRE(call, buf != NULL, "concat: out of memory");
    size_t at = 0;
    for (size_t a = 0; a < n; a++) {
        size_t len;
        const char *s;
        daskr_value_get_string(daskr_call_arg(call, a), &s, &len);
        memcpy(buf + at, s, len);
        at += len;
    }
    daskr_call_return_string(call, buf, total);
    free(buf);
}

EXPORT void identity(daskr_call_t *call, void *user_data) {
    (void)user_data;
    REQUIRE(call, daskr_call_nargs(call) == 1, "identity: expected one argument");
    daskr_call_return(call, daskr_value_clone(daskr_call_arg(call, 0)));
}

EXPORT void fail(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *message = "fail: failed as asked";
    daskr_value_get_string(daskr_call_arg(call, 0), &message, NULL);
    daskr_call_fail(call, message);
}

EXPORT void sleep_ms(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t ms;
    REQUIRE(call, daskr_value_get_int(daskr_call_arg(call, 0), &ms) && ms >= 0 && ms <= 600000,
            "sleep_ms: expected milliseconds (0 .. 600000)");
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    const daskr_value_t *value = daskr_call_kwarg(call, "value");
    if (value) daskr_call_return(call, daskr_value_clone(value));
    else daskr_call_return_int(call, ms);
}

/* ---- maps: a record per file ---- */

EXPORT void record(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *file = daskr_call_arg(call, 0), *readings = daskr_call_arg(call, 1);
    REQUIRE(call, daskr_value_kind(file) == DASKR_KIND_STRING, "record: expected a file name");
    REQUIRE(call, daskr_value_kind(readings) == DASKR_KIND_LIST, "record: expected a list of readings");
    struct total t = {0, 0.0, 0};
    size_t n = daskr_value_list_len(readings);
    for (size_t i = 0; i < n; i++)
        REQUIRE(call, accumulate(&t, daskr_value_list_at(readings, i)), "record: every reading must be a number");
    const char *names[] = {"file", "readings", "mean"};
    daskr_value_t *values[] = {
        daskr_value_clone(file),
        daskr_value_clone(readings),
        n ? daskr_value_float(t.f / (double)n) : daskr_value_null(),
    };
    daskr_value_t *map;
    daskr_error_t *e = daskr_value_map(names, NULL, values, 3, &map); /* takes the values */
    REQUIRE(call, e == NULL, "record: could not build the map");
    daskr_call_return(call, map);
}

EXPORT void field(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *map = daskr_call_arg(call, 0);
    const char *name;
    REQUIRE(call, daskr_value_kind(map) == DASKR_KIND_MAP, "field: expected a map");
    REQUIRE(call, daskr_value_get_string(daskr_call_arg(call, 1), &name, NULL), "field: expected a name");
    const daskr_value_t *v = daskr_value_map_get(map, name);
    REQUIRE(call, v != NULL, "field: the map has no such name");
    daskr_call_return(call, daskr_value_clone(v));
}

EXPORT void means(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *records = daskr_call_arg(call, 0);
    REQUIRE(call, daskr_value_kind(records) == DASKR_KIND_LIST, "means: expected a list of records");
    size_t n = daskr_value_list_len(records);
    const char **names = calloc(n ? n : 1, sizeof *names);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    daskr_value_t **values = calloc(n ? n : 1, sizeof *values);
    if (!names || !lens || !values) {
        free(names);
        free(lens);
        free(values);
        daskr_call_fail(call, "means: out of memory");
        return;
    }
    const char *problem = NULL;
    for (size_t i = 0; i < n && !problem; i++) {
        const daskr_value_t *r = daskr_value_list_at(records, i);
        const daskr_value_t *mean = daskr_value_map_get(r, "mean");
        if (!daskr_value_get_string(daskr_value_map_get(r, "file"), &names[i], &lens[i]) || !mean)
            problem = "means: every record needs a \"file\" and a \"mean\"";
        else
            values[i] = daskr_value_clone(mean);
    }
    daskr_value_t *map = NULL;
    daskr_error_t *e = NULL;
    if (!problem) {
        e = daskr_value_map(names, lens, values, n, &map); /* takes the values */
    } else {
        for (size_t i = 0; i < n; i++) daskr_value_free(values[i]);
    }
    free(names);
    free(lens);
    free(values);
    if (problem) {
        daskr_call_fail(call, problem);
    } else if (e) {
        /* Two records of one file: the error names it. */
        daskr_call_fail(call, daskr_error_message(e));
        daskr_error_free(e);
    } else {
        daskr_call_return(call, map);
    }
}

/* ---- the declaration daskr reads when it opens the plugin ---- */

static const daskr_plugin_task_t TASKS[] = {
    {"load", "load(name): 8 deterministic readings for a file name, some negative"},
    {"clean", "clean(readings): the readings without the negative ones"},
    {"analyze", "analyze(files, method=\"mean\"|\"max\"): a one-line summary of every file's readings"},
    {"store", "store(summary, to=label): writes the summary to stderr, returns the bytes written"},
    {"inc", "inc(x): x + 1"},
    {"add", "add(a, b, ..., scale=1): (a + b + ...) * scale"},
    {"sum", "sum(list): the sum of a list of numbers"},
    {"concat", "concat(s, ...): the strings joined"},
    {"identity", "identity(x): x"},
    {"fail", "fail(message): fails with the message"},
    {"sleep_ms", "sleep_ms(ms, value=v): sleeps ms milliseconds, returns v (or ms)"},
    {"record", "record(file, readings): {\"file\": file, \"readings\": readings, \"mean\": their mean}"},
    {"field", "field(map, name): the value named name in the map"},
    {"means", "means(records): a map from each record's \"file\" to its \"mean\""},
};

static const daskr_plugin_info_t INFO = {
    DASKR_ABI_VERSION, "example", "1.0.0", TASKS, sizeof TASKS / sizeof TASKS[0],
};

EXPORT const daskr_plugin_info_t *daskr_plugin_info(void) {
    return &INFO;
}
