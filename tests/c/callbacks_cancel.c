/* Callbacks (start, pretask/posttask per computed entry, finish) and cancellation: the exact
 * sequence under the sync scheduler, never two callbacks at once under the threads scheduler,
 * finish exactly once whether the get succeeds, fails or is cancelled; cancelling from
 * another thread while tasks sleep, a switch triggered before the get, reset and reuse. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#include "check.h"

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- a recorder of callback events ---- */

enum { MAXKEYS = 512, MAXLOG = 64 };

typedef struct {
    atomic_int busy;
    atomic_int overlaps;
    int starts, finishes, pre, post, order_errors, failed_posts;
    size_t start_entries;
    bool finish_failed;
    uint32_t max_worker;
    unsigned char state[MAXKEYS]; /* per "t<i>" key: 0 none, 1 pretask seen, 2 posttask seen */
    int tree;                     /* keys are a tree: t<i> needs t<(i-1)/2> */
    char log[MAXLOG][24];
    int nlog;
} recorder_t;

static void rec_log(recorder_t *r, const char *fmt, const char *key, int flag) {
    if (r->nlog < MAXLOG) snprintf(r->log[r->nlog++], sizeof r->log[0], fmt, key, flag);
}

/* Marks a callback busy; a second one arriving meanwhile is an overlap. Spins a little to
 * give an overlap the chance to show. */
static void enter(recorder_t *r) {
    if (atomic_exchange(&r->busy, 1)) atomic_fetch_add(&r->overlaps, 1);
    for (volatile int i = 0; i < 200; i++) {
    }
}
static void leave(recorder_t *r) { atomic_store(&r->busy, 0); }

static int key_index(const char *key) {
    if (!key || key[0] != 't') return -1;
    int i = atoi(key + 1);
    return i >= 0 && i < MAXKEYS ? i : -1;
}

static void cb_start(void *ud, size_t entries) {
    recorder_t *r = ud;
    enter(r);
    if (r->starts || r->finishes || r->pre || r->post) r->order_errors++;
    r->starts++;
    r->start_entries = entries;
    char n[16];
    snprintf(n, sizeof n, "%zu", entries);
    rec_log(r, "start %s", n, 0);
    leave(r);
}

static void cb_pre(void *ud, const char *key, uint32_t worker) {
    recorder_t *r = ud;
    enter(r);
    if (r->starts != 1 || r->finishes) r->order_errors++;
    r->pre++;
    if (worker > r->max_worker) r->max_worker = worker;
    int i = key_index(key);
    if (i >= 0) {
        if (r->state[i] != 0) r->order_errors++;
        if (r->tree && i > 0 && r->state[(i - 1) / 2] != 2) r->order_errors++; /* its input is done */
        r->state[i] = 1;
    }
    rec_log(r, "pre %s", key, 0);
    leave(r);
}

static void cb_post(void *ud, const char *key, bool ok, uint32_t worker) {
    recorder_t *r = ud;
    enter(r);
    if (r->starts != 1 || r->finishes) r->order_errors++;
    r->post++;
    if (!ok) r->failed_posts++;
    if (worker > r->max_worker) r->max_worker = worker;
    int i = key_index(key);
    if (i >= 0) {
        if (r->state[i] != 1) r->order_errors++;
        r->state[i] = 2;
    }
    rec_log(r, ok ? "post %s ok" : "post %s failed", key, 0);
    leave(r);
}

static void cb_finish(void *ud, bool failed) {
    recorder_t *r = ud;
    enter(r);
    if (r->starts != 1 || r->finishes) r->order_errors++;
    if (r->pre != r->post) r->order_errors++;
    r->finishes++;
    r->finish_failed = failed;
    rec_log(r, failed ? "finish failed" : "finish ok", "", 0);
    leave(r);
}

static daskr_callbacks_t callbacks_for(recorder_t *r) {
    memset(r, 0, sizeof *r);
    daskr_callbacks_t cb = {r, cb_start, cb_pre, cb_post, cb_finish};
    return cb;
}

static void check_log(const recorder_t *r, const char *const *expected, int line) {
    int n = 0;
    while (expected[n]) n++;
    int ok = r->nlog == n;
    for (int i = 0; ok && i < n; i++) ok = strcmp(r->log[i], expected[i]) == 0;
    if (!ok) {
        fprintf(stderr, "callbacks_cancel.c:%d: callback log differs; got:\n", line);
        for (int i = 0; i < r->nlog; i++) fprintf(stderr, "  %s\n", r->log[i]);
        fprintf(stderr, "expected:\n");
        for (int i = 0; i < n; i++) fprintf(stderr, "  %s\n", expected[i]);
        check_failures++;
    }
}
#define CHECK_LOG(r, ...) check_log((r), (const char *const[]){__VA_ARGS__, NULL}, __LINE__)

/* ---- tasks ---- */

static atomic_long started, finished;

static int64_t sum_value(const daskr_value_t *v) {
    int64_t i;
    if (daskr_value_get_int(v, &i)) return i;
    if (tracked_id(v) >= 0) return 1;
    int64_t t = 0;
    for (size_t k = 0; k < daskr_value_list_len(v); k++) t += sum_value(daskr_value_list_at(v, k));
    return t;
}

static void inc(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t t = 1;
    for (size_t i = 0; i < daskr_call_nargs(call); i++) t += sum_value(daskr_call_arg(call, i));
    daskr_call_return_int(call, t);
}

static void failing(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_call_fail(call, "failing on purpose");
}

/* When set, sleepers from the third on wait (up to 10 s) for this to be triggered: the cancel
 * then surely comes while tasks run, however late a loaded machine wakes the canceller. */
static const daskr_cancel_t *_Atomic sleepers_wait_for;

/* Sleeps user_data milliseconds, then returns a tracked value; counts starts and ends. */
static void sleeper(daskr_call_t *call, void *user_data) {
    long nth = atomic_fetch_add(&started, 1) + 1;
    const daskr_cancel_t *wait_for = atomic_load(&sleepers_wait_for);
    for (int waited = 0; wait_for && nth >= 3 && !daskr_cancel_is_triggered(wait_for) && waited < 10000; waited++)
        sleep_ms(1);
    sleep_ms((long)(intptr_t)user_data);
    int64_t n = 0;
    for (size_t i = 0; i < daskr_call_nargs(call); i++) n += sum_value(daskr_call_arg(call, i));
    daskr_call_return(call, tracked_value((long)n));
    atomic_fetch_add(&finished, 1);
}

/* ---- callbacks ---- */

static void sync_sequence(void) {
    daskr_func_t *f = make_func("inc", inc, NULL), *bad = make_func("failing", failing, NULL);
    daskr_graph_t *g = daskr_graph_new();
    CHECK_OK(daskr_graph_add_value(g, "a", daskr_value_int(1), NULL));
    daskr_comp_t *ba[] = {daskr_comp_ref("a")};
    CHECK_OK(daskr_graph_add_task(g, "b", f, ba, 1, NULL, NULL, 0, NULL));
    daskr_comp_t *ca[] = {daskr_comp_ref("b")};
    CHECK_OK(daskr_graph_add_task(g, "c", f, ca, 1, NULL, NULL, 0, NULL));
    CHECK_OK(daskr_graph_add_alias(g, "d", "c", NULL));
    daskr_comp_t *li[] = {daskr_comp_ref("b"), daskr_comp_ref("c")};
    CHECK_OK(daskr_graph_add(g, "l", daskr_comp_list(li, 2), NULL));
    daskr_comp_t *xa[] = {daskr_comp_ref("a")};
    CHECK_OK(daskr_graph_add_task(g, "x", bad, xa, 1, NULL, NULL, 0, NULL));
    daskr_comp_t *ya[] = {daskr_comp_ref("x")};
    CHECK_OK(daskr_graph_add_task(g, "y", f, ya, 1, NULL, NULL, 0, NULL));

    recorder_t r;
    daskr_callbacks_t cb = callbacks_for(&r);
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_SYNC, 1);
    o.callbacks = &cb;
    const char *req[] = {"d", "l", NULL};
    daskr_value_t *k = keys_value(req), *out = NULL;
    CHECK_OK(daskr_graph_get(g, k, &o, &out));
    daskr_value_free(out);
    daskr_value_free(k);
    /* The literal "a" is not reported; the alias and the list entry are. */
    CHECK_LOG(&r, "start 4", "pre b", "post b ok", "pre c", "post c ok", "pre d", "post d ok", "pre l", "post l ok",
              "finish ok");
    CHECK(r.max_worker == 0 && r.order_errors == 0);

    /* Only a literal: start(0), finish. */
    callbacks_for(&r);
    CHECK_OK(daskr_graph_get_key(g, "a", &o, &out));
    daskr_value_free(out);
    CHECK_LOG(&r, "start 0", "finish ok");

    /* A failure: posttask(ok = false), nothing after it, finish(failed). */
    callbacks_for(&r);
    CHECK_ERR(daskr_graph_get_key(g, "y", &o, &out), DASKR_ERROR_TASK_FAILED, "x");
    CHECK_LOG(&r, "start 2", "pre x", "post x failed", "finish failed");

    /* A planning error: no callback at all. */
    callbacks_for(&r);
    CHECK_ERR(daskr_graph_get_key(g, "nope", &o, &out), DASKR_ERROR_MISSING_KEY, "nope");
    CHECK(r.nlog == 0);

    /* Callbacks with every member NULL, or only some. */
    daskr_callbacks_t none = {NULL, NULL, NULL, NULL, NULL};
    o.callbacks = &none;
    CHECK_OK(daskr_graph_get_key(g, "d", &o, &out));
    CHECK_INT(out, 3);
    daskr_value_free(out);
    callbacks_for(&r);
    daskr_callbacks_t some = {&r, NULL, cb_pre, NULL, cb_finish};
    o.callbacks = &some;
    CHECK_OK(daskr_graph_get_key(g, "c", &o, &out));
    daskr_value_free(out);
    CHECK(r.pre == 2 && r.finishes == 1 && r.post == 0);

    daskr_func_free(f);
    daskr_func_free(bad);
    daskr_graph_free(g);
}

/* Many small tasks on several threads: the callbacks never overlap; each computed key gets
 * exactly one pretask then one posttask, after its input's posttask. */
static void threads_never_concurrent(uint32_t workers, int n, int fail_at) {
    daskr_func_t *f = make_func("inc", inc, NULL), *bad = make_func("failing", failing, NULL);
    daskr_graph_t *g = daskr_graph_new();
    daskr_value_t **keys = malloc(sizeof *keys * (size_t)n);
    for (int i = 0; i < n; i++) {
        char key[16], parent[16];
        snprintf(key, sizeof key, "t%d", i);
        snprintf(parent, sizeof parent, "t%d", (i - 1) / 2);
        daskr_comp_t *a[] = {i ? daskr_comp_ref(parent) : NULL};
        CHECK_OK(daskr_graph_add_task(g, key, i == fail_at ? bad : f, a, i ? 1 : 0, NULL, NULL, 0, NULL));
        keys[i] = str_value(key);
    }
    daskr_value_t *req = list_value(keys, (size_t)n);
    free(keys);
    recorder_t *r = malloc(sizeof *r);
    daskr_callbacks_t cb = callbacks_for(r);
    r->tree = 1;
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_THREADS, workers);
    o.callbacks = &cb;
    daskr_value_t *out = NULL;
    daskr_error_t *e = daskr_graph_get(g, req, &o, &out);
    CHECK(atomic_load(&r->overlaps) == 0);
    CHECK(r->order_errors == 0);
    CHECK(r->starts == 1 && r->finishes == 1);
    CHECK(r->start_entries == (size_t)n);
    CHECK(r->max_worker < workers);
    if (fail_at < 0) {
        CHECK(e == NULL);
        CHECK(!r->finish_failed);
        CHECK(r->pre == n && r->post == n && r->failed_posts == 0);
        for (int i = 0; i < n; i++) CHECK(r->state[i] == 2);
        CHECK(daskr_value_list_len(out) == (size_t)n);
        daskr_value_free(out);
    } else {
        CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
        CHECK(r->finish_failed);
        CHECK(r->pre == r->post && r->failed_posts == 1);
        CHECK(r->state[fail_at] == 2);
        for (int i = 2 * fail_at + 1; i < n && i <= 2 * fail_at + 2; i++) CHECK(r->state[i] == 0); /* its dependents */
    }
    daskr_error_free(e);
    free(r);
    daskr_value_free(req);
    daskr_func_free(f);
    daskr_func_free(bad);
    daskr_graph_free(g);
}

/* ---- cancellation ---- */

typedef struct {
    daskr_cancel_t *cancel;
    long after_started;
} canceller_arg_t;

static void *canceller(void *p) {
    canceller_arg_t *c = p;
    while (atomic_load(&started) < c->after_started) sleep_ms(1);
    daskr_cancel_trigger(c->cancel);
    return NULL;
}

/* `width` sleeping tasks feeding one: cancelled from another thread once some started. */
static daskr_graph_t *sleepers(int width, long ms) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *s = make_func("sleeper", sleeper, (void *)(intptr_t)ms);
    daskr_comp_t **items = malloc(sizeof *items * (size_t)width);
    for (int i = 0; i < width; i++) {
        char key[16];
        snprintf(key, sizeof key, "s%d", i);
        daskr_comp_t *a[] = {int_comp(i)};
        CHECK_OK(daskr_graph_add_task(g, key, s, a, 1, NULL, NULL, 0, NULL));
        items[i] = daskr_comp_ref(key);
    }
    daskr_comp_t *list = daskr_comp_list(items, (size_t)width);
    free(items);
    CHECK_OK(daskr_graph_add_task(g, "all", s, &list, 1, NULL, NULL, 0, NULL));
    daskr_func_free(s);
    return g;
}

static void cancel_from_thread(daskr_scheduler_t sched, uint32_t workers) {
    enum { WIDTH = 40 };
    daskr_graph_t *g = sleepers(WIDTH, 5);
    daskr_cancel_t *c = daskr_cancel_new();
    CHECK(!daskr_cancel_is_triggered(c));
    recorder_t r;
    daskr_callbacks_t cb = callbacks_for(&r);
    daskr_get_options_t o = make_options(sched, workers);
    o.cancel = c;
    o.callbacks = &cb;
    atomic_store(&started, 0);
    atomic_store(&finished, 0);
    canceller_arg_t arg = {c, 3};
    pthread_t t;
    atomic_store(&sleepers_wait_for, c);
    CHECK(pthread_create(&t, NULL, canceller, &arg) == 0);
    daskr_value_t *sentinel = (daskr_value_t *)&arg, *out = sentinel;
    daskr_error_t *e = daskr_graph_get_key(g, "all", &o, &out);
    pthread_join(t, NULL);
    atomic_store(&sleepers_wait_for, NULL);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_CANCELLED);
    CHECK(e && strcmp(daskr_error_kind_name(daskr_error_kind(e)), "cancelled") == 0);
    daskr_error_free(e);
    CHECK(out == sentinel);
    /* Tasks already running finished; no new task started after the cancel... */
    CHECK(atomic_load(&started) == atomic_load(&finished));
    CHECK(atomic_load(&started) >= 3 && atomic_load(&started) < WIDTH);
    /* ...every result they made was released, and finish(failed) came once. */
    CHECK(tracked_live() == 0);
    CHECK(r.starts == 1 && r.finishes == 1 && r.finish_failed && r.order_errors == 0);
    CHECK(atomic_load(&r.overlaps) == 0);
    CHECK(daskr_cancel_is_triggered(c));

    /* Still triggered: the next get is cancelled before any task starts. */
    atomic_store(&started, 0);
    callbacks_for(&r);
    CHECK_ERR(daskr_graph_get_key(g, "all", &o, &out), DASKR_ERROR_CANCELLED, NULL);
    CHECK(atomic_load(&started) == 0);
    CHECK(r.starts == 1 && r.pre == 0 && r.finishes == 1 && r.finish_failed);

    /* Reset, reuse the switch: the get completes. */
    daskr_cancel_reset(c);
    CHECK(!daskr_cancel_is_triggered(c));
    o.callbacks = NULL;
    daskr_graph_t *small = sleepers(4, 0);
    CHECK_OK(daskr_graph_get_key(small, "all", &o, &out));
    CHECK(tracked_id(out) == 4);
    daskr_value_free(out);
    CHECK(tracked_live() == 0);
    daskr_graph_free(small);
    daskr_cancel_free(c);
    daskr_graph_free(g);
}

static void pre_triggered(void) {
    daskr_graph_t *g = sleepers(8, 0);
    daskr_cancel_t *c = daskr_cancel_new();
    daskr_cancel_trigger(c);
    daskr_cancel_trigger(c); /* idempotent */
    CHECK(daskr_cancel_is_triggered(c));
    for (int s = 0; s < 2; s++) {
        daskr_get_options_t o = make_options(s ? DASKR_SCHEDULER_THREADS : DASKR_SCHEDULER_SYNC, 3);
        o.cancel = c;
        atomic_store(&started, 0);
        daskr_value_t *out = NULL;
        CHECK_ERR(daskr_graph_get_key(g, "all", &o, &out), DASKR_ERROR_CANCELLED, NULL);
        CHECK(out == NULL);
        CHECK(atomic_load(&started) == 0);
        /* A plan error is still reported as such. */
        CHECK_ERR(daskr_graph_get_key(g, "nope", &o, &out), DASKR_ERROR_MISSING_KEY, "nope");
    }
    daskr_cancel_reset(c);
    daskr_cancel_reset(c);
    CHECK(!daskr_cancel_is_triggered(c));
    for (int s = 0; s < 2; s++) {
        daskr_get_options_t o = make_options(s ? DASKR_SCHEDULER_THREADS : DASKR_SCHEDULER_SYNC, 3);
        o.cancel = c;
        daskr_value_t *out = NULL;
        CHECK_OK(daskr_graph_get_key(g, "all", &o, &out));
        CHECK(tracked_id(out) == 8);
        daskr_value_free(out);
    }
    /* NULL switches are ignored. */
    daskr_cancel_trigger(NULL);
    daskr_cancel_reset(NULL);
    CHECK(!daskr_cancel_is_triggered(NULL));
    daskr_cancel_free(NULL);
    daskr_cancel_free(c);
    daskr_graph_free(g);
    CHECK(tracked_live() == 0);
}

/* A task cancels its own get: the switch is just as good from inside. */
static void cancel_self(daskr_call_t *call, void *user_data) {
    daskr_cancel_trigger(user_data);
    daskr_call_return(call, tracked_value(1));
}

static void cancel_from_task(void) {
    daskr_cancel_t *c = daskr_cancel_new();
    daskr_func_t *cs = make_func("cancel_self", cancel_self, c), *f = make_func("inc", inc, NULL);
    daskr_graph_t *g = daskr_graph_new();
    CHECK_OK(daskr_graph_add_task(g, "c", cs, NULL, 0, NULL, NULL, 0, NULL));
    daskr_comp_t *a[] = {daskr_comp_ref("c")};
    CHECK_OK(daskr_graph_add_task(g, "d", f, a, 1, NULL, NULL, 0, NULL));
    daskr_comp_t *b[] = {daskr_comp_ref("d")};
    CHECK_OK(daskr_graph_add_task(g, "e", f, b, 1, NULL, NULL, 0, NULL));
    for (int s = 0; s < 2; s++) {
        daskr_cancel_reset(c);
        recorder_t r;
        daskr_callbacks_t cb = callbacks_for(&r);
        daskr_get_options_t o = make_options(s ? DASKR_SCHEDULER_THREADS : DASKR_SCHEDULER_SYNC, 2);
        o.cancel = c;
        o.callbacks = &cb;
        daskr_value_t *out = NULL;
        CHECK_ERR(daskr_graph_get_key(g, "e", &o, &out), DASKR_ERROR_CANCELLED, NULL);
        CHECK(r.pre == 1 && r.post == 1 && r.finishes == 1 && r.finish_failed); /* only "c" ran */
        CHECK(tracked_live() == 0);
    }
    daskr_func_free(cs);
    daskr_func_free(f);
    daskr_graph_free(g);
    daskr_cancel_free(c);
}

/* A progress callback cancels the get (a "stop" button): after the third task. */
static void pre_cancel(void *ud, const char *key, uint32_t worker) {
    (void)key;
    (void)worker;
    daskr_cancel_t *c = ud;
    if (atomic_fetch_add(&started, 0) >= 3) daskr_cancel_trigger(c);
}

static void cancel_from_callback(daskr_scheduler_t sched) {
    daskr_graph_t *g = sleepers(30, 1);
    daskr_cancel_t *c = daskr_cancel_new();
    daskr_callbacks_t cb = {c, NULL, pre_cancel, NULL, NULL};
    daskr_get_options_t o = make_options(sched, 2);
    o.cancel = c;
    o.callbacks = &cb;
    atomic_store(&started, 0);
    atomic_store(&finished, 0);
    daskr_value_t *out = NULL;
    CHECK_ERR(daskr_graph_get_key(g, "all", &o, &out), DASKR_ERROR_CANCELLED, NULL);
    CHECK(atomic_load(&started) == atomic_load(&finished));
    CHECK(atomic_load(&started) >= 3 && atomic_load(&started) < 30);
    CHECK(tracked_live() == 0);
    daskr_cancel_free(c);
    daskr_graph_free(g);
}

/* One switch, two gets running at once on two threads: one trigger cancels both. */
typedef struct {
    daskr_graph_t *g;
    daskr_cancel_t *c;
    daskr_error_kind_t kind;
} shared_get_t;

static void *get_thread(void *p) {
    shared_get_t *s = p;
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_THREADS, 2);
    o.cancel = s->c;
    daskr_value_t *out = NULL;
    daskr_error_t *e = daskr_graph_get_key(s->g, "all", &o, &out);
    s->kind = e ? daskr_error_kind(e) : (daskr_error_kind_t)0;
    daskr_error_free(e);
    daskr_value_free(out);
    return NULL;
}

static void one_switch_two_gets(void) {
    daskr_graph_t *g = sleepers(40, 3);
    daskr_cancel_t *c = daskr_cancel_new();
    atomic_store(&started, 0);
    atomic_store(&finished, 0);
    shared_get_t s[2] = {{g, c, 0}, {g, c, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, get_thread, &s[i]) == 0);
    while (atomic_load(&started) < 4) sleep_ms(1);
    daskr_cancel_trigger(c);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(s[0].kind == DASKR_ERROR_CANCELLED && s[1].kind == DASKR_ERROR_CANCELLED);
    CHECK(atomic_load(&started) == atomic_load(&finished));
    CHECK(atomic_load(&started) < 80);
    CHECK(tracked_live() == 0);
    daskr_cancel_free(c);
    daskr_graph_free(g);
}

int main(void) {
    int slow = check_slow_mode();
    sync_sequence();
    int reps = slow ? 2 : 20;
    for (int i = 0; i < reps; i++) {
        threads_never_concurrent(4, 300, -1);
        threads_never_concurrent(2 + (uint32_t)(i % 3), 200, 37);
    }
    cancel_from_thread(DASKR_SCHEDULER_SYNC, 1);
    for (uint32_t w = 1; w <= 4; w++) cancel_from_thread(DASKR_SCHEDULER_THREADS, w);
    pre_triggered();
    cancel_from_callback(DASKR_SCHEDULER_SYNC);
    cancel_from_callback(DASKR_SCHEDULER_THREADS);
    one_switch_two_gets();
    cancel_from_task();
    CHECK(tracked_live() == 0);
    return check_report("callbacks_cancel");
}
