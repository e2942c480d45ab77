/* The distributed scheduler through the C ABI, against a running Dask cluster:
 *
 *   distributed_abi tcp://HOST:PORT PLUGIN.so PIPELINE.json
 *
 * (tests/distributed/test_distributed.py compiles and runs it with the cluster it started.)
 * Results equal the threads scheduler's on a graph of every kind of computation; callbacks,
 * stats and progress are reported; a function-pointer task, a failing task, a cancelled get
 * and a missing address give their errors; the address falls back to DASKR_ADDRESS. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#include "check.h"

static const char *address;
static daskr_plugin_t *plugin;

static daskr_func_t *pf(const char *symbol) {
    daskr_func_t *f = NULL;
    CHECK_OK(daskr_plugin_func(plugin, symbol, &f));
    return f;
}

static daskr_value_t *str(const char *s) {
    daskr_value_t *v = NULL;
    CHECK_OK(daskr_value_string(s, strlen(s), &v));
    return v;
}

static daskr_value_t *list2(daskr_value_t *a, daskr_value_t *b) {
    daskr_value_t *items[] = {a, b}, *v = NULL;
    CHECK_OK(daskr_value_list(items, 2, &v));
    return v;
}

static void options(daskr_get_options_t *o, daskr_scheduler_t s) {
    daskr_get_options_init(o, sizeof *o);
    o->scheduler = s;
    o->address = address;
}

typedef struct {
    int starts, finishes, pre, post, bad_order;
    size_t entries;
    bool failed;
} recorder_t;

static void cb_start(void *ud, size_t entries) {
    recorder_t *r = ud;
    r->starts++;
    r->entries = entries;
}
static void cb_pre(void *ud, const char *key, uint32_t worker) {
    recorder_t *r = ud;
    (void)key;
    (void)worker;
    if (!r->starts || r->finishes) r->bad_order++;
    r->pre++;
}
static void cb_post(void *ud, const char *key, bool ok, uint32_t worker) {
    recorder_t *r = ud;
    (void)key;
    (void)worker;
    CHECK(ok);
    r->post++;
}
static void cb_finish(void *ud, bool failed) {
    recorder_t *r = ud;
    r->finishes++;
    r->failed = failed;
}

/* x = 3; c0..c{n-1}: a chain of inc; every 10th also an add with kwargs and an inline task;
 * a list entry, an alias, a string literal and a sum over every chain link. */
static daskr_graph_t *mixed_graph(long n) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *inc = pf("inc"), *add = pf("add"), *sum = pf("sum"), *concat = pf("concat");
    CHECK_OK(daskr_graph_add_value(g, "x", daskr_value_int(3), NULL));
    CHECK_OK(daskr_graph_add_value(g, "s", str("text"), NULL));
    char key[64], prev[64];
    daskr_comp_t **links = malloc(sizeof *links * (size_t)n);
    for (long i = 0; i < n; i++) {
        snprintf(key, sizeof key, "c%ld", i);
        if (i == 0) snprintf(prev, sizeof prev, "x");
        else snprintf(prev, sizeof prev, "c%ld", i - 1);
        if (i % 10 == 5) {
            daskr_comp_t *inl_args[] = {daskr_comp_ref(prev), daskr_comp_value(daskr_value_int(1))};
            daskr_comp_t *inl = daskr_comp_task(add, inl_args, 2, NULL, NULL, 0);
            daskr_comp_t *args[] = {inl, daskr_comp_value(daskr_value_int(-1))};
            const char *names[] = {"scale"};
            daskr_comp_t *kw[] = {daskr_comp_value(daskr_value_int(1))};
            CHECK_OK(daskr_graph_add_task(g, key, add, args, 2, names, kw, 1, NULL));
        } else {
            daskr_comp_t *args[] = {daskr_comp_ref(prev)};
            CHECK_OK(daskr_graph_add_task(g, key, inc, args, 1, NULL, NULL, 0, NULL));
        }
        links[i] = daskr_comp_ref(key);
    }
    daskr_comp_t *all = daskr_comp_list(links, (size_t)n);
    free(links);
    daskr_comp_t *sum_args[] = {all};
    CHECK_OK(daskr_graph_add_task(g, "total", sum, sum_args, 1, NULL, NULL, 0, NULL));
    CHECK_OK(daskr_graph_add_alias(g, "alias", "total", NULL));
    daskr_comp_t *items[] = {daskr_comp_ref("alias"), daskr_comp_ref("s"), daskr_comp_value(daskr_value_null()),
                             daskr_comp_value(daskr_value_float(2.5))};
    daskr_comp_t *l = daskr_comp_list(items, 4);
    CHECK_OK(daskr_graph_add(g, "l", l, NULL));
    daskr_comp_t *cargs[] = {daskr_comp_ref("s"), daskr_comp_value(str("-more"))};
    CHECK_OK(daskr_graph_add_task(g, "joined", concat, cargs, 2, NULL, NULL, 0, NULL));
    daskr_func_free(inc);
    daskr_func_free(add);
    daskr_func_free(sum);
    daskr_func_free(concat);
    return g;
}

static void same_as_threads(const daskr_graph_t *g, const daskr_value_t *keys) {
    daskr_get_options_t o;
    options(&o, DASKR_SCHEDULER_THREADS);
    daskr_value_t *want = NULL, *got = NULL;
    CHECK_OK(daskr_graph_get(g, keys, &o, &want));
    options(&o, DASKR_SCHEDULER_DISTRIBUTED);
    recorder_t rec = {0};
    daskr_callbacks_t cb = {&rec, cb_start, cb_pre, cb_post, cb_finish};
    o.callbacks = &cb;
    daskr_stats_t stats;
    o.stats = &stats;
    daskr_progress_t *progress = daskr_progress_new();
    o.progress = progress;
    CHECK_OK(daskr_graph_get(g, keys, &o, &got));
    CHECK(want && got && daskr_value_equal(want, got));
    CHECK(rec.starts == 1 && rec.finishes == 1 && !rec.failed && rec.bad_order == 0);
    CHECK((size_t)rec.pre == rec.entries && (size_t)rec.post == rec.entries && rec.entries > 0);
    CHECK(stats.workers == 2);
    CHECK(stats.entries_run == stats.entries);
    CHECK(daskr_progress_done(progress) == daskr_progress_total(progress));
    CHECK(!daskr_progress_running(progress));
    daskr_progress_free(progress);
    daskr_value_free(want);
    daskr_value_free(got);
}

static void c_inc(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t x = 0;
    daskr_value_get_int(daskr_call_arg(call, 0), &x);
    daskr_call_return_int(call, x + 1);
}

static void *cancel_later(void *arg) {
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    daskr_cancel_trigger(arg);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s tcp://HOST:PORT PLUGIN.so PIPELINE.json\n", argv[0]);
        return 2;
    }
    address = argv[1];
    CHECK_OK(daskr_plugin_open(argv[2], &plugin));

    /* every kind of computation, several partitions per worker */
    daskr_graph_t *g = mixed_graph(3000);
    daskr_value_t *keys = list2(str("l"), list2(str("c2999"), list2(str("joined"), str("c7"))));
    same_as_threads(g, keys);
    daskr_value_free(keys);
    /* one key; a key asked twice */
    keys = str("total");
    same_as_threads(g, keys);
    daskr_value_free(keys);
    keys = list2(str("c10"), str("c10"));
    same_as_threads(g, keys);
    daskr_value_free(keys);

    /* the address from DASKR_ADDRESS; none at all is a clear error before anything runs */
    daskr_get_options_t o;
    options(&o, DASKR_SCHEDULER_DISTRIBUTED);
    o.address = NULL;
    daskr_value_t *out = NULL;
    unsetenv("DASKR_ADDRESS");
    CHECK_ERR(daskr_graph_get_key(g, "c1", &o, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    setenv("DASKR_ADDRESS", address, 1);
    CHECK_OK(daskr_graph_get_key(g, "c1", &o, &out));
    int64_t v = 0;
    CHECK(out && daskr_value_get_int(out, &v) && v == 5);
    daskr_value_free(out);
    out = NULL;

    /* a function pointer cannot leave this process: the error names its key */
    daskr_func_t *local = NULL;
    CHECK_OK(daskr_func_new("c_inc", c_inc, NULL, NULL, &local));
    daskr_comp_t *largs[] = {daskr_comp_ref("c3")};
    CHECK_OK(daskr_graph_add_task(g, "local", local, largs, 1, NULL, NULL, 0, NULL));
    daskr_func_free(local);
    options(&o, DASKR_SCHEDULER_DISTRIBUTED);
    daskr_error_t *e = daskr_graph_get_key(g, "local", &o, &out);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT);
    if (e) {
        CHECK_STR(daskr_error_key(e), "local");
        CHECK(strstr(daskr_error_message(e), "Dask cluster") != NULL);
        CHECK(strstr(daskr_error_message(e), "c_inc") != NULL);
        daskr_error_free(e);
    }

    /* a failing task: task_failed with its key and message; finish says failed */
    daskr_func_t *fail = pf("fail");
    daskr_comp_t *fargs[] = {daskr_comp_value(str("it broke"))};
    CHECK_OK(daskr_graph_add_task(g, "bad", fail, fargs, 1, NULL, NULL, 0, NULL));
    daskr_func_free(fail);
    daskr_func_t *add = pf("add");
    daskr_comp_t *aargs[] = {daskr_comp_ref("bad"), daskr_comp_ref("c100")};
    CHECK_OK(daskr_graph_add_task(g, "after-bad", add, aargs, 2, NULL, NULL, 0, NULL));
    daskr_func_free(add);
    recorder_t rec = {0};
    daskr_callbacks_t cb = {&rec, cb_start, NULL, NULL, cb_finish};
    o.callbacks = &cb;
    e = daskr_graph_get_key(g, "after-bad", &o, &out);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    if (e) {
        CHECK_STR(daskr_error_key(e), "bad");
        CHECK(strstr(daskr_error_message(e), "it broke") != NULL);
        daskr_error_free(e);
    }
    CHECK(rec.starts == 1 && rec.finishes == 1 && rec.failed);
    o.callbacks = NULL;
    /* the driver is still good after a failure */
    CHECK_OK(daskr_graph_get_key(g, "c1", &o, &out));
    daskr_value_free(out);
    out = NULL;
    daskr_graph_free(g);

    /* cancelling from another thread */
    g = daskr_graph_new();
    daskr_func_t *sleep_fn = pf("sleep_ms");
    char key[32];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "nap%d", i);
        daskr_comp_t *sargs[] = {daskr_comp_value(daskr_value_int(700))};
        CHECK_OK(daskr_graph_add_task(g, key, sleep_fn, sargs, 1, NULL, NULL, 0, NULL));
    }
    daskr_func_free(sleep_fn);
    daskr_cancel_t *cancel = daskr_cancel_new();
    options(&o, DASKR_SCHEDULER_DISTRIBUTED);
    o.cancel = cancel;
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, cancel);
    keys = list2(list2(str("nap0"), str("nap1")), list2(str("nap2"), list2(str("nap3"), str("nap7"))));
    CHECK_ERR(daskr_graph_get(g, keys, &o, &out), DASKR_ERROR_CANCELLED, NULL);
    pthread_join(t, NULL);
    daskr_value_free(keys);
    daskr_cancel_free(cancel);
    daskr_graph_free(g);

    /* a graph file */
    daskr_value_t *fkeys = NULL;
    CHECK_OK(daskr_graph_from_file(argv[3], &g, &fkeys));
    same_as_threads(g, fkeys);
    daskr_value_free(fkeys);
    daskr_graph_free(g);

    daskr_plugin_free(plugin);
    return check_report("distributed_abi");
}
