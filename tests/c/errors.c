/* Errors from get: a failing task (its key and message; no dependent runs; every held result
 * released), cycles (keys on the cycle), self-aliases, missing dependencies and missing
 * requested keys (all found before any task runs), and culling before checking. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "check.h"

static atomic_long calls;        /* every task call */
static atomic_long after_calls;  /* calls of tasks that depend on a failing one */

/* Returns a tracked pointer value with the id given as argument 0. */
static void mk(daskr_call_t *call, void *user_data) {
    (void)user_data;
    atomic_fetch_add(&calls, 1);
    int64_t id = 0;
    daskr_value_get_int(daskr_call_arg(call, 0), &id);
    daskr_call_return(call, tracked_value((long)id));
}

/* Counts its tracked arguments (walking into lists); user_data non-NULL marks a dependent
 * of a failing task. */
static int64_t count_tracked(const daskr_value_t *v) {
    if (tracked_id(v) >= 0) return 1;
    int64_t i = 0, n = 0;
    if (daskr_value_get_int(v, &i)) return i;
    for (size_t k = 0; k < daskr_value_list_len(v); k++) n += count_tracked(daskr_value_list_at(v, k));
    return n;
}

static void consume(daskr_call_t *call, void *user_data) {
    atomic_fetch_add(&calls, 1);
    if (user_data) atomic_fetch_add(&after_calls, 1);
    int64_t n = 0;
    for (size_t i = 0; i < daskr_call_nargs(call); i++) n += count_tracked(daskr_call_arg(call, i));
    daskr_call_return_int(call, n);
}

/* Fails with the message in user_data (NULL: no message). */
static void fail(daskr_call_t *call, void *user_data) {
    atomic_fetch_add(&calls, 1);
    daskr_call_return(call, tracked_value(-1)); /* a result set before failing is released */
    daskr_call_fail(call, user_data);
}

static daskr_func_t *f_mk, *f_consume, *f_after, *f_bad, *f_bad2, *f_nomsg;

static void add_mk(daskr_graph_t *g, const char *key, long id) {
    daskr_comp_t *args[] = {int_comp(id)};
    CHECK_OK(daskr_graph_add_task(g, key, f_mk, args, 1, NULL, NULL, 0, NULL));
}

static void add_refs(daskr_graph_t *g, const char *key, daskr_func_t *f, const char *const *refs) {
    size_t n = 0;
    while (refs[n]) n++;
    daskr_comp_t *args[16];
    for (size_t i = 0; i < n; i++) args[i] = daskr_comp_ref(refs[i]);
    CHECK_OK(daskr_graph_add_task(g, key, f, args, n, NULL, NULL, 0, NULL));
}
#define REFS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void task_failure(const daskr_get_options_t *o, int sync) {
    daskr_graph_t *g = daskr_graph_new();
    char key[16];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "l%d", i);
        add_mk(g, key, i);
    }
    for (int i = 2; i < 8; i++) {
        char lk[16];
        snprintf(key, sizeof key, "m%d", i);
        snprintf(lk, sizeof lk, "l%d", i);
        add_refs(g, key, f_consume, REFS(lk));
    }
    add_refs(g, "bad", f_bad, REFS("l0", "l1"));
    add_refs(g, "after", f_after, REFS("bad", "m2"));
    add_refs(g, "top", f_after, REFS("after", "m3", "m4", "m5", "m6", "m7"));
    add_refs(g, "sibling", f_consume, REFS("m2"));

    const char *req[] = {"top", "l4", "m5", "sibling", NULL};
    daskr_value_t *k = keys_value(req);
    atomic_store(&calls, 0);
    atomic_store(&after_calls, 0);
    daskr_value_t *sentinel = (daskr_value_t *)&calls, *out = sentinel;
    daskr_error_t *e = daskr_graph_get(g, k, o, &out);
    CHECK(e != NULL);
    if (e) {
        CHECK(daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
        CHECK_STR(daskr_error_kind_name(daskr_error_kind(e)), "task_failed");
        CHECK_STR(daskr_error_key(e), "bad");
        CHECK(check_contains(daskr_error_message(e), "boom from bad"));
        CHECK(check_contains(daskr_error_message(e), "bad"));
        daskr_error_free(e);
    }
    CHECK(out == sentinel);
    CHECK(atomic_load(&after_calls) == 0);
    /* Every result computed, requested ones included, has been released. */
    CHECK(tracked_live() == 0);
    if (sync) {
        /* Priority order visits top -> after -> bad first: l0, l1, bad, and nothing after. */
        CHECK(atomic_load(&calls) == 3);
    }

    /* The graph is still usable: the parts that do not need `bad` compute. */
    const char *ok_req[] = {"sibling", "m7", NULL};
    daskr_value_t *ok = keys_value(ok_req);
    out = NULL;
    CHECK_OK(daskr_graph_get(g, ok, o, &out));
    CHECK_INT(daskr_value_list_at(out, 0), 1);
    CHECK_INT(daskr_value_list_at(out, 1), 1);
    daskr_value_free(out);
    daskr_value_free(ok);
    CHECK(tracked_live() == 0);

    /* A failing task with no message still names its key; an inline failing task names the
     * entry containing it. */
    add_refs(g, "nomsg", f_nomsg, REFS("l3"));
    CHECK_ERR(daskr_graph_get_key(g, "nomsg", o, &out), DASKR_ERROR_TASK_FAILED, "nomsg");
    daskr_comp_t *inner_args[] = {daskr_comp_ref("l5")};
    daskr_comp_t *outer_args[] = {daskr_comp_ref("l6"), daskr_comp_task(f_bad, inner_args, 1, NULL, NULL, 0)};
    CHECK_OK(daskr_graph_add_task(g, "outer", f_after, outer_args, 2, NULL, NULL, 0, NULL));
    atomic_store(&after_calls, 0);
    e = daskr_graph_get_key(g, "outer", o, &out);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    CHECK(e && daskr_error_key(e) && strcmp(daskr_error_key(e), "outer") == 0);
    CHECK(e && check_contains(daskr_error_message(e), "boom from bad"));
    daskr_error_free(e);
    CHECK(atomic_load(&after_calls) == 0); /* the outer task itself never ran */
    CHECK(tracked_live() == 0);

    /* Two failures: one is reported (with sync, the first in priority order: the first
     * requested). */
    add_refs(g, "bad2", f_bad2, REFS("l7"));
    const char *two[] = {"bad2", "bad", NULL};
    daskr_value_t *tk = keys_value(two);
    e = daskr_graph_get(g, tk, o, &out);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    if (e) {
        const char *fk = daskr_error_key(e);
        CHECK(fk && (strcmp(fk, "bad2") == 0 || strcmp(fk, "bad") == 0));
        if (sync) CHECK_STR(fk, "bad2");
        CHECK(check_contains(daskr_error_message(e), strcmp(fk ? fk : "", "bad2") == 0 ? "second boom" : "boom from bad"));
    }
    daskr_error_free(e);
    daskr_value_free(tk);
    CHECK(tracked_live() == 0);

    daskr_value_free(k);
    daskr_graph_free(g);
}

/* Many independent branches and one failure in the middle, under threads: whatever ran is
 * released. */
static void wide_failure(int workers, int width) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_comp_t **top = malloc(sizeof *top * (size_t)width);
    for (int i = 0; i < width; i++) {
        char lk[16], mk_[16];
        snprintf(lk, sizeof lk, "l%d", i);
        snprintf(mk_, sizeof mk_, "m%d", i);
        add_mk(g, lk, i);
        add_refs(g, mk_, i == width / 2 ? f_bad : f_consume, REFS(lk));
        top[i] = daskr_comp_ref(mk_);
    }
    daskr_comp_t *list = daskr_comp_list(top, (size_t)width);
    CHECK_OK(daskr_graph_add_task(g, "top", f_after, &list, 1, NULL, NULL, 0, NULL));
    free(top);
    atomic_store(&after_calls, 0);
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_THREADS, (uint32_t)workers);
    daskr_value_t *out = NULL;
    char badkey[16];
    snprintf(badkey, sizeof badkey, "m%d", width / 2);
    const char *req[] = {"top", "l0", "m1", NULL};
    daskr_value_t *k = keys_value(req);
    daskr_error_t *e = daskr_graph_get(g, k, &o, &out);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    CHECK(e && daskr_error_key(e) && strcmp(daskr_error_key(e), badkey) == 0);
    daskr_error_free(e);
    CHECK(out == NULL);
    CHECK(atomic_load(&after_calls) == 0);
    CHECK(tracked_live() == 0);
    daskr_value_free(k);
    daskr_graph_free(g);
}

static int same_set(const daskr_error_t *e, const char *const *keys) {
    size_t n = 0;
    while (keys[n]) n++;
    if (daskr_error_keys_len(e) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t j = 0; j < n; j++) found |= daskr_error_keys_at(e, j) && strcmp(daskr_error_keys_at(e, j), keys[i]) == 0;
        if (!found) return 0;
    }
    return 1;
}

/* Asserts a cycle error whose involved keys are exactly `keys` (any order), whose key is one
 * of them, and whose message names them. */
static void check_cycle(daskr_error_t *e, const char *const *keys, int line) {
    if (!e) {
        fprintf(stderr, "errors.c:%d: expected a cycle error, got success\n", line);
        check_failures++;
        return;
    }
    int ok = daskr_error_kind(e) == DASKR_ERROR_CYCLE && same_set(e, keys);
    ok = ok && strcmp(daskr_error_kind_name(daskr_error_kind(e)), "cycle") == 0;
    const char *key = daskr_error_key(e);
    int key_on_cycle = 0;
    for (size_t i = 0; keys[i]; i++) {
        key_on_cycle |= key && strcmp(key, keys[i]) == 0;
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", keys[i]);
        ok = ok && check_contains(daskr_error_message(e), quoted);
    }
    if (!ok || !key_on_cycle) {
        fprintf(stderr, "errors.c:%d: bad cycle error: %s (key %s, %zu keys): %s\n", line,
                daskr_error_kind_name(daskr_error_kind(e)), key ? key : "-", daskr_error_keys_len(e),
                daskr_error_message(e));
        check_failures++;
    }
    daskr_error_free(e);
}
#define CHECK_CYCLE(call, ...) check_cycle((call), (const char *const[]){__VA_ARGS__, NULL}, __LINE__)

static void plan_errors(const daskr_get_options_t *o) {
    daskr_graph_t *g = daskr_graph_new();
    add_mk(g, "leaf", 1);
    /* A cycle a -> b -> c -> a, reached from x; and tasks outside it that would run first. */
    add_refs(g, "a", f_consume, REFS("leaf", "b"));
    add_refs(g, "b", f_consume, REFS("c"));
    add_refs(g, "c", f_consume, REFS("a", "leaf"));
    add_refs(g, "pre", f_consume, REFS("leaf"));
    add_refs(g, "x", f_consume, REFS("pre", "a"));
    /* Self-alias, self-reference, a 2-cycle through aliases. */
    CHECK_OK(daskr_graph_add_alias(g, "s", "s", NULL));
    add_refs(g, "t", f_consume, REFS("leaf", "t"));
    CHECK_OK(daskr_graph_add_alias(g, "p", "q", NULL));
    CHECK_OK(daskr_graph_add_alias(g, "q", "p", NULL));
    /* A cycle through a kwarg and an inline task inside a list. */
    const char *kn[] = {"kw"};
    daskr_comp_t *kw[] = {daskr_comp_ref("k2")};
    CHECK_OK(daskr_graph_add_task(g, "k1", f_consume, NULL, 0, kn, kw, 1, NULL));
    daskr_comp_t *inl_args[] = {daskr_comp_ref("k1")};
    daskr_comp_t *items[] = {int_comp(0), daskr_comp_task(f_consume, inl_args, 1, NULL, NULL, 0)};
    CHECK_OK(daskr_graph_add(g, "k2", daskr_comp_list(items, 2), NULL));
    /* Missing dependencies: by key, by a handle never defined, through an alias, in a kwarg,
     * deep in a nested list. */
    add_refs(g, "m", f_consume, REFS("leaf", "ghost"));
    add_refs(g, "above_m", f_consume, REFS("pre", "m"));
    daskr_task_t never;
    CHECK_OK(daskr_graph_handle(g, "never", &never));
    daskr_comp_t *h_args[] = {daskr_comp_ref("leaf"), daskr_comp_ref_task(never)};
    CHECK_OK(daskr_graph_add_task(g, "h", f_consume, h_args, 2, NULL, NULL, 0, NULL));
    CHECK_OK(daskr_graph_add_alias(g, "al", "nothere", NULL));
    daskr_comp_t *mk_kw[] = {daskr_comp_ref("absent")};
    CHECK_OK(daskr_graph_add_task(g, "mkw", f_consume, NULL, 0, kn, mk_kw, 1, NULL));
    daskr_comp_t *deep3[] = {daskr_comp_ref("gone")};
    daskr_comp_t *deep2[] = {daskr_comp_ref("leaf"), daskr_comp_list(deep3, 1)};
    daskr_comp_t *deep1 = daskr_comp_list(deep2, 2);
    CHECK_OK(daskr_graph_add_task(g, "deep", f_consume, &deep1, 1, NULL, NULL, 0, NULL));
    /* Healthy entries, and entries whose only trouble is in a part a request culls away. */
    add_refs(g, "fine", f_consume, REFS("pre"));

    atomic_store(&calls, 0);
    daskr_value_t *sentinel = (daskr_value_t *)&calls, *out = sentinel;
    CHECK_CYCLE(daskr_graph_get_key(g, "x", o, &out), "a", "b", "c");
    CHECK_CYCLE(daskr_graph_get_key(g, "a", o, &out), "a", "b", "c");
    CHECK_CYCLE(daskr_graph_get_key(g, "s", o, &out), "s");
    CHECK_CYCLE(daskr_graph_get_key(g, "t", o, &out), "t");
    CHECK_CYCLE(daskr_graph_get_key(g, "p", o, &out), "p", "q");
    CHECK_CYCLE(daskr_graph_get_key(g, "k2", o, &out), "k1", "k2");
    const char *with_cycle[] = {"fine", "pre", "x", NULL};
    daskr_value_t *k = keys_value(with_cycle);
    CHECK_CYCLE(daskr_graph_get(g, k, o, &out), "a", "b", "c");
    daskr_value_free(k);

    CHECK_ERR_KEYS(daskr_graph_get_key(g, "m", o, &out), DASKR_ERROR_MISSING_DEPENDENCY, "m", "ghost");
    CHECK_ERR_KEYS(daskr_graph_get_key(g, "above_m", o, &out), DASKR_ERROR_MISSING_DEPENDENCY, "m", "ghost");
    CHECK_ERR_KEYS(daskr_graph_get_key(g, "h", o, &out), DASKR_ERROR_MISSING_DEPENDENCY, "h", "never");
    CHECK_ERR_KEYS(daskr_graph_get_key(g, "al", o, &out), DASKR_ERROR_MISSING_DEPENDENCY, "al", "nothere");
    CHECK_ERR_KEYS(daskr_graph_get_key(g, "mkw", o, &out), DASKR_ERROR_MISSING_DEPENDENCY, "mkw", "absent");
    CHECK_ERR_KEYS(daskr_graph_get_key(g, "deep", o, &out), DASKR_ERROR_MISSING_DEPENDENCY, "deep", "gone");
    {
        daskr_error_t *e = daskr_graph_get_key(g, "m", o, &out);
        CHECK(e && check_contains(daskr_error_message(e), "ghost") && check_contains(daskr_error_message(e), "'m'"));
        CHECK(e && strcmp(daskr_error_kind_name(daskr_error_kind(e)), "missing_dependency") == 0);
        daskr_error_free(e);
    }

    /* Missing requested keys, alone, in a list of good keys, nested; a key that is only
     * referred to (by a handle) is not defined either. */
    CHECK_ERR(daskr_graph_get_key(g, "nope", o, &out), DASKR_ERROR_MISSING_KEY, "nope");
    CHECK_ERR(daskr_graph_get_key(g, "never", o, &out), DASKR_ERROR_MISSING_KEY, "never");
    CHECK_ERR(daskr_graph_get_key(g, "ghost", o, &out), DASKR_ERROR_MISSING_KEY, "ghost");
    const char *inner[] = {"pre", "nope2", NULL};
    daskr_value_t *nested_items[] = {str_value("fine"), keys_value(inner)};
    k = list_value(nested_items, 2);
    {
        daskr_error_t *e = daskr_graph_get(g, k, o, &out);
        CHECK(e && daskr_error_kind(e) == DASKR_ERROR_MISSING_KEY);
        CHECK(e && daskr_error_key(e) && strcmp(daskr_error_key(e), "nope2") == 0);
        CHECK(e && check_contains(daskr_error_message(e), "nope2"));
        CHECK(e && strcmp(daskr_error_kind_name(daskr_error_kind(e)), "missing_key") == 0);
        daskr_error_free(e);
    }
    daskr_value_free(k);
    /* A missing key and a cycle in one request: found before anything runs either way. */
    const char *both[] = {"fine", "x", "nope", NULL};
    k = keys_value(both);
    {
        daskr_error_t *e = daskr_graph_get(g, k, o, &out);
        CHECK(e && (daskr_error_kind(e) == DASKR_ERROR_MISSING_KEY || daskr_error_kind(e) == DASKR_ERROR_CYCLE));
        daskr_error_free(e);
    }
    daskr_value_free(k);
    CHECK(out == sentinel);
    /* None of the above ran a single task. */
    CHECK(atomic_load(&calls) == 0);

    /* Culling first: a cycle or a missing key in a part the request does not need is fine. */
    const char *healthy[] = {"fine", "pre", "leaf", NULL};
    k = keys_value(healthy);
    out = NULL;
    CHECK_OK(daskr_graph_get(g, k, o, &out));
    CHECK(daskr_value_list_len(out) == 3);
    CHECK_INT(daskr_value_list_at(out, 0), 1);
    CHECK_INT(daskr_value_list_at(out, 1), 1);
    CHECK(tracked_id(daskr_value_list_at(out, 2)) == 1);
    daskr_value_free(out);
    daskr_value_free(k);
    CHECK(atomic_load(&calls) == 3);
    CHECK(tracked_live() == 0);
    daskr_graph_free(g);
}

/* A long chain with the missing dependency at its far end: nothing runs. */
static void found_before_running(const daskr_get_options_t *o) {
    daskr_graph_t *g = daskr_graph_new();
    add_mk(g, "k0", 0);
    char key[16], prev[16];
    for (int i = 1; i < 300; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(prev, sizeof prev, "k%d", i - 1);
        add_refs(g, key, f_consume, REFS(prev));
    }
    add_refs(g, "end", f_consume, REFS("k299", "missing-at-the-end"));
    atomic_store(&calls, 0);
    daskr_value_t *out = NULL;
    CHECK_ERR_KEYS(daskr_graph_get_key(g, "end", o, &out), DASKR_ERROR_MISSING_DEPENDENCY, "end", "missing-at-the-end");
    /* And a cycle closing at the far end. */
    add_refs(g, "c0", f_consume, REFS("k299", "c299"));
    for (int i = 1; i < 300; i++) {
        snprintf(key, sizeof key, "c%d", i);
        snprintf(prev, sizeof prev, "c%d", i - 1);
        add_refs(g, key, f_consume, REFS(prev));
    }
    daskr_error_t *e = daskr_graph_get_key(g, "c299", o, &out);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_CYCLE && daskr_error_keys_len(e) == 300);
    daskr_error_free(e);
    CHECK(atomic_load(&calls) == 0);
    CHECK(out == NULL);
    CHECK_OK(daskr_graph_get_key(g, "k299", o, &out));
    CHECK_INT(out, 1);
    daskr_value_free(out);
    CHECK(atomic_load(&calls) == 300);
    CHECK(tracked_live() == 0);
    daskr_graph_free(g);
}

/* A list entry whose value would nest deeper than 256 fails like a task, naming the entry;
 * stats are filled in on failure too. */
static void too_deep_at_run_time(const daskr_get_options_t *o0) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_value_t *deep = tracked_value(1);
    for (int i = 0; i < 256; i++) deep = list_value(&deep, 1);
    CHECK_OK(daskr_graph_add_value(g, "deep", deep, NULL));
    daskr_comp_t *item[] = {daskr_comp_ref("deep")};
    CHECK_OK(daskr_graph_add(g, "wrap", daskr_comp_list(item, 1), NULL));
    daskr_comp_t *after_args[] = {daskr_comp_ref("wrap")};
    CHECK_OK(daskr_graph_add_task(g, "after", f_after, after_args, 1, NULL, NULL, 0, NULL));
    daskr_get_options_t o = *o0;
    daskr_stats_t st;
    memset(&st, 0, sizeof st);
    o.stats = &st;
    daskr_value_t *out = NULL;
    atomic_store(&after_calls, 0);
    daskr_error_t *e = daskr_graph_get_key(g, "after", &o, &out);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    CHECK(e && daskr_error_key(e) && strcmp(daskr_error_key(e), "wrap") == 0);
    CHECK(e && check_contains(daskr_error_message(e), "256"));
    daskr_error_free(e);
    CHECK(out == NULL);
    CHECK(atomic_load(&after_calls) == 0);
    CHECK(st.entries == 3);
    CHECK(st.entries_run >= 1 && st.entries_run <= 2);
    CHECK(tracked_live() == 1); /* the graph's literal */
    daskr_graph_free(g);
    CHECK(tracked_live() == 0);
}

static void kind_names(void) {
    const char *names[] = {"task_failed", "cycle", "missing_dependency", "missing_key", "invalid_graph", "plugin",
                           "cancelled", "worker_died", "invalid_argument", "graph_in_use", "type_mismatch", "internal", "io"};
    for (int k = DASKR_ERROR_TASK_FAILED; k <= DASKR_ERROR_IO; k++)
        CHECK_STR(daskr_error_kind_name((daskr_error_kind_t)k), names[k - 1]);
    /* A number that is not a kind: no crash, "unknown". */
    CHECK_STR(daskr_error_kind_name(0), "unknown");
    CHECK_STR(daskr_error_kind_name(14), "unknown");
    CHECK_STR(daskr_error_kind_name(99), "unknown");
    CHECK_STR(daskr_error_kind_name(0xffffffffu), "unknown");
}

/* Under threads, a failure while other tasks run: those finish (their results released),
 * and the tasks still queued never start. */
static atomic_long slept_start, slept_end;
static void sleepy(daskr_call_t *call, void *user_data) {
    atomic_fetch_add(&slept_start, 1);
    struct timespec ts = {0, (long)(intptr_t)user_data * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    daskr_call_return(call, tracked_value(7));
    atomic_fetch_add(&slept_end, 1);
}

static void failure_while_running(uint32_t workers) {
    enum { WIDTH = 40 };
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *s = make_func("sleepy", sleepy, (void *)5);
    daskr_func_t *quick_fail = make_func("bad", fail, "early boom");
    daskr_comp_t *items[WIDTH + 1];
    /* "boom" comes early in priority order (first argument), the sleepers after it. */
    CHECK_OK(daskr_graph_add_task(g, "boom", quick_fail, NULL, 0, NULL, NULL, 0, NULL));
    items[0] = daskr_comp_ref("boom");
    for (int i = 0; i < WIDTH; i++) {
        char key[16];
        snprintf(key, sizeof key, "s%d", i);
        CHECK_OK(daskr_graph_add_task(g, key, s, NULL, 0, NULL, NULL, 0, NULL));
        items[i + 1] = daskr_comp_ref(key);
    }
    daskr_comp_t *list = daskr_comp_list(items, WIDTH + 1);
    CHECK_OK(daskr_graph_add_task(g, "all", f_after, &list, 1, NULL, NULL, 0, NULL));
    atomic_store(&slept_start, 0);
    atomic_store(&slept_end, 0);
    atomic_store(&after_calls, 0);
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_THREADS, workers);
    daskr_stats_t st;
    o.stats = &st;
    daskr_value_t *out = NULL;
    CHECK_ERR(daskr_graph_get_key(g, "all", &o, &out), DASKR_ERROR_TASK_FAILED, "boom");
    CHECK(atomic_load(&slept_start) == atomic_load(&slept_end));
    CHECK(atomic_load(&slept_start) < WIDTH);
    CHECK(atomic_load(&after_calls) == 0);
    CHECK(st.entries == WIDTH + 2 && st.entries_run < WIDTH + 2);
    CHECK(tracked_live() == 0);
    daskr_func_free(s);
    daskr_func_free(quick_fail);
    daskr_graph_free(g);
}

/* Stats are written even when planning fails (nothing ran). */
static void stats_on_plan_error(void) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_stats_t st;
    memset(&st, 0xff, sizeof st);
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_SYNC, 1);
    o.stats = &st;
    daskr_value_t *out = NULL;
    CHECK_ERR(daskr_graph_get_key(g, "nope", &o, &out), DASKR_ERROR_MISSING_KEY, "nope");
    CHECK(st.entries == 0 && st.entries_run == 0 && st.peak_held == 0);
    daskr_graph_free(g);
}

int main(void) {
    f_mk = make_func("mk", mk, NULL);
    f_consume = make_func("consume", consume, NULL);
    f_after = make_func("after", consume, (void *)1);
    f_bad = make_func("bad", fail, "boom from bad");
    f_bad2 = make_func("bad2", fail, "second boom");
    f_nomsg = make_func("nomsg", fail, NULL);

    daskr_get_options_t sync = make_options(DASKR_SCHEDULER_SYNC, 1);
    task_failure(&sync, 1);
    plan_errors(&sync);
    found_before_running(&sync);
    for (uint32_t w = 1; w <= 4; w++) {
        daskr_get_options_t threads = make_options(DASKR_SCHEDULER_THREADS, w);
        task_failure(&threads, 0);
        plan_errors(&threads);
        found_before_running(&threads);
    }
    too_deep_at_run_time(&sync);
    for (uint32_t w = 2; w <= 3; w++) {
        daskr_get_options_t threads = make_options(DASKR_SCHEDULER_THREADS, w);
        too_deep_at_run_time(&threads);
    }
    kind_names();
    stats_on_plan_error();
    for (uint32_t w = 2; w <= 4; w++) failure_while_running(w);
    int reps = check_slow_mode() ? 3 : 30;
    for (int i = 0; i < reps; i++) wide_failure(2 + i % 3, 64);

    daskr_func_free(f_mk);
    daskr_func_free(f_consume);
    daskr_func_free(f_after);
    daskr_func_free(f_bad);
    daskr_func_free(f_bad2);
    daskr_func_free(f_nomsg);
    CHECK(tracked_live() == 0);
    return check_report("errors");
}
