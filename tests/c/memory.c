/* Memory: a result is released (its destructor runs) as soon as its last dependent finished,
 * unless it was requested; the priority order finishes a branch before opening the next; the
 * statistics (entries, entries_run, peak_held) say so. Tasks look at the destructor counter
 * while they run to see what was already released. */
#include "check.h"

static long d0; /* tracked_destroyed when the current get started */

/* What each task saw: tracked_destroyed - d0 when it ran, by slot (user_data). */
/* Atomic: under the threads scheduler, tasks sharing a slot record it from several workers. */
static atomic_long seen[64];
static char order[64][16];
static atomic_int norder;

/* Tasks log from the threads scheduler's workers too: each takes its own slot atomically
 * (a plain norder++ let two workers write past the end: ASan's global-buffer-overflow). */
static void log_key(daskr_call_t *call) {
    int i = atomic_fetch_add(&norder, 1);
    if (i < 64) snprintf(order[i], sizeof order[0], "%s", daskr_call_key(call));
}

/* Returns a tracked value with the id in argument 0. */
static void mk(daskr_call_t *call, void *user_data) {
    (void)user_data;
    log_key(call);
    int64_t id = 0;
    daskr_value_get_int(daskr_call_arg(call, 0), &id);
    daskr_call_return(call, tracked_value((long)id));
}

/* Records what was released so far in seen[user_data], checks its tracked arguments are
 * alive, and returns a new tracked value (id = slot). */
static void pass(daskr_call_t *call, void *user_data) {
    long slot = (long)(intptr_t)user_data;
    log_key(call);
    seen[slot] = atomic_load(&tracked_destroyed) - d0;
    for (size_t i = 0; i < daskr_call_nargs(call); i++)
        if (tracked_id(daskr_call_arg(call, i)) < 0) {
            daskr_call_fail(call, "pass: argument is not a live tracked value");
            return;
        }
    daskr_call_return(call, tracked_value(slot));
}

/* Like pass, but returns an int (the number of arguments). */
static void consume(daskr_call_t *call, void *user_data) {
    long slot = (long)(intptr_t)user_data;
    log_key(call);
    seen[slot] = atomic_load(&tracked_destroyed) - d0;
    daskr_call_return_int(call, (int64_t)daskr_call_nargs(call));
}

/* Returns (a clone of) its argument: the same object, passed through. */
static void identity(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_call_return(call, daskr_value_clone(daskr_call_arg(call, 0)));
}

static int64_t sum_value(const daskr_value_t *v) {
    int64_t i;
    if (daskr_value_get_int(v, &i)) return i;
    int64_t t = 0;
    for (size_t k = 0; k < daskr_value_list_len(v); k++) t += sum_value(daskr_value_list_at(v, k));
    return t;
}

static void add(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t t = 0;
    for (size_t i = 0; i < daskr_call_nargs(call); i++) t += sum_value(daskr_call_arg(call, i));
    daskr_call_return_int(call, t);
}

static daskr_func_t *f_mk, *f_add, *f_identity;

static void start(void) {
    for (int i = 0; i < 64; i++) atomic_store(&seen[i], -1); /* "did not run" */
    norder = 0;
    d0 = atomic_load(&tracked_destroyed);
}

static void add_task1(daskr_graph_t *g, const char *key, daskr_task_fn fn, long slot, daskr_comp_t **args, size_t n) {
    daskr_func_t *f = make_func(key, fn, (void *)(intptr_t)slot);
    CHECK_OK(daskr_graph_add_task(g, key, f, args, n, NULL, NULL, 0, NULL));
    daskr_func_free(f);
}

static void add_mk(daskr_graph_t *g, const char *key, long id) {
    daskr_comp_t *args[] = {int_comp(id)};
    CHECK_OK(daskr_graph_add_task(g, key, f_mk, args, 1, NULL, NULL, 0, NULL));
}

/* l -> m1 -> m2 -> m3: each input is released right after its one dependent finished. */
static void chain(const daskr_get_options_t *o) {
    daskr_graph_t *g = daskr_graph_new();
    add_mk(g, "l", 100);
    const char *keys[] = {"l", "m1", "m2", "m3"};
    for (int i = 1; i <= 3; i++) {
        daskr_comp_t *a[] = {daskr_comp_ref(keys[i - 1])};
        add_task1(g, keys[i], pass, i, a, 1);
    }
    start();
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "m3", o, &out));
    CHECK(seen[1] == 0 && seen[2] == 1 && seen[3] == 2);
    CHECK(atomic_load(&tracked_destroyed) - d0 == 3); /* l, m1, m2; m3 comes back */
    CHECK(tracked_id(out) == 3);
    daskr_value_free(out);
    CHECK(atomic_load(&tracked_destroyed) - d0 == 4);

    /* Requested results are not released during the call, even when a dependent finished. */
    start();
    const char *req[] = {"l", "m3", "m1", NULL};
    daskr_value_t *k = keys_value(req);
    CHECK_OK(daskr_graph_get(g, k, o, &out));
    CHECK(seen[1] == 0);
    CHECK(seen[2] == 0); /* l was requested: still held; m1 too */
    CHECK(seen[3] == 0); /* m1 was requested: still held */
    CHECK(atomic_load(&tracked_destroyed) - d0 == 1); /* only m2 */
    CHECK(tracked_id(daskr_value_list_at(out, 0)) == 100);
    CHECK(tracked_id(daskr_value_list_at(out, 1)) == 3);
    CHECK(tracked_id(daskr_value_list_at(out, 2)) == 1);
    daskr_value_free(out);
    daskr_value_free(k);
    CHECK(atomic_load(&tracked_destroyed) - d0 == 4);
    CHECK(tracked_live() == 0);
    daskr_graph_free(g);
}

/* root = consume(b0..b3), bi = consume(li), li = mk(i): with the sync scheduler the order is
 * l0 b0 l1 b1 ..., and when bi runs, l0..l(i-1) were already released. */
static void branches(void) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_comp_t *root_args[4];
    for (int i = 0; i < 4; i++) {
        char lk[8], bk[8];
        snprintf(lk, sizeof lk, "l%d", i);
        snprintf(bk, sizeof bk, "b%d", i);
        add_mk(g, lk, i);
        daskr_comp_t *a[] = {daskr_comp_ref(lk)};
        add_task1(g, bk, consume, i, a, 1);
        root_args[i] = daskr_comp_ref(bk);
    }
    add_task1(g, "root", consume, 10, root_args, 4);
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_SYNC, 1);
    daskr_stats_t st;
    o.stats = &st;
    start();
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "root", &o, &out));
    CHECK_INT(out, 4);
    daskr_value_free(out);
    for (int i = 0; i < 4; i++) CHECK(seen[i] == i);
    CHECK(seen[10] == 4);
    const char *expected[] = {"l0", "b0", "l1", "b1", "l2", "b2", "l3", "b3", "root"};
    CHECK(norder == 9);
    for (int i = 0; i < 9 && i < norder; i++) CHECK_STR(order[i], expected[i]);
    CHECK(st.entries == 9 && st.entries_run == 9);
    /* At most the four branch results root needs, plus the one leaf in flight. */
    CHECK(st.peak_held >= 4 && st.peak_held <= 5);
    CHECK(tracked_live() == 0);
    daskr_graph_free(g);
}

/* x feeds a and b; c needs a and b. x lives until its second consumer finished. */
static void shared_input(const daskr_get_options_t *o) {
    daskr_graph_t *g = daskr_graph_new();
    add_mk(g, "x", 7);
    daskr_comp_t *aa[] = {daskr_comp_ref("x")};
    add_task1(g, "a", pass, 1, aa, 1);
    daskr_comp_t *ba[] = {daskr_comp_ref("x")};
    add_task1(g, "b", pass, 2, ba, 1);
    daskr_comp_t *ca[] = {daskr_comp_ref("a"), daskr_comp_ref("b")};
    add_task1(g, "c", consume, 3, ca, 2);
    start();
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "c", o, &out));
    CHECK_INT(out, 2);
    daskr_value_free(out);
    /* a and b both saw x alive (pass checks its argument); c saw x released, a and b not. */
    CHECK(seen[1] == 0 && seen[2] == 0);
    CHECK(seen[3] == 1);
    CHECK(atomic_load(&tracked_destroyed) - d0 == 3);
    CHECK(tracked_live() == 0);

    /* The same object passed through tasks lives as long as the last holder. */
    daskr_comp_t *ia[] = {daskr_comp_ref("x")};
    CHECK_OK(daskr_graph_add_task(g, "i1", f_identity, ia, 1, NULL, NULL, 0, NULL));
    daskr_comp_t *ib[] = {daskr_comp_ref("i1")};
    CHECK_OK(daskr_graph_add_task(g, "i2", f_identity, ib, 1, NULL, NULL, 0, NULL));
    start();
    CHECK_OK(daskr_graph_get_key(g, "i2", o, &out));
    CHECK(tracked_id(out) == 7);
    CHECK(atomic_load(&tracked_destroyed) == d0);
    daskr_value_free(out);
    CHECK(atomic_load(&tracked_destroyed) - d0 == 1);
    daskr_graph_free(g);
}

/* A literal pointer in the graph belongs to the graph: gets hand out references to it and
 * never destroy it; freeing the graph does, once. */
static void graph_owned_literals(const daskr_get_options_t *o) {
    daskr_graph_t *g = daskr_graph_new();
    CHECK_OK(daskr_graph_add_value(g, "lit", tracked_value(55), NULL));
    daskr_comp_t *pa[] = {daskr_comp_ref("lit"), daskr_comp_value(tracked_value(56))};
    add_task1(g, "p", consume, 1, pa, 2);
    d0 = atomic_load(&tracked_destroyed);
    for (int i = 0; i < 3; i++) {
        daskr_value_t *out = NULL;
        const char *req[] = {"lit", "p", "lit", NULL};
        daskr_value_t *k = keys_value(req);
        CHECK_OK(daskr_graph_get(g, k, o, &out));
        CHECK(tracked_id(daskr_value_list_at(out, 0)) == 55);
        CHECK(daskr_value_equal(daskr_value_list_at(out, 0), daskr_value_list_at(out, 2)));
        CHECK_INT(daskr_value_list_at(out, 1), 2);
        daskr_value_free(out);
        daskr_value_free(k);
    }
    CHECK(atomic_load(&tracked_destroyed) == d0);
    daskr_graph_free(g);
    CHECK(atomic_load(&tracked_destroyed) - d0 == 2);
}

/* A balanced binary reduction over n leaves. Leaves are literals (lit = 1) or tasks. */
static void build_tree(daskr_graph_t *g, int n, int task_leaves) {
    char key[32], left[32], right[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "t0-%d", i);
        if (task_leaves) {
            daskr_comp_t *a[] = {int_comp(1)};
            CHECK_OK(daskr_graph_add_task(g, key, f_add, a, 1, NULL, NULL, 0, NULL));
        } else {
            CHECK_OK(daskr_graph_add_value(g, key, daskr_value_int(1), NULL));
        }
    }
    int level = 0;
    for (int width = n / 2; width >= 1; width /= 2, level++) {
        for (int i = 0; i < width; i++) {
            snprintf(key, sizeof key, "t%d-%d", level + 1, i);
            snprintf(left, sizeof left, "t%d-%d", level, 2 * i);
            snprintf(right, sizeof right, "t%d-%d", level, 2 * i + 1);
            daskr_comp_t *a[] = {daskr_comp_ref(left), daskr_comp_ref(right)};
            CHECK_OK(daskr_graph_add_task(g, key, f_add, a, 2, NULL, NULL, 0, NULL));
        }
    }
}

static void reduction_tree(int log2n) {
    int n = 1 << log2n;
    char root[32];
    snprintf(root, sizeof root, "t%d-0", log2n);
    for (int task_leaves = 0; task_leaves <= 1; task_leaves++) {
        daskr_graph_t *g = daskr_graph_new();
        build_tree(g, n, task_leaves);
        daskr_stats_t st;
        memset(&st, 0, sizeof st);
        daskr_get_options_t o = make_options(DASKR_SCHEDULER_SYNC, 1);
        o.stats = &st;
        daskr_value_t *out = NULL;
        CHECK_OK(daskr_graph_get_key(g, root, &o, &out));
        CHECK_INT(out, n);
        daskr_value_free(out);
        CHECK(st.entries == (uint64_t)(2 * n - 1));
        CHECK(st.entries_run == (uint64_t)(2 * n - 1));
        CHECK(st.workers == 1);
        if (st.peak_held > (uint64_t)(log2n + 3)) {
            fprintf(stderr, "memory.c: sync reduction over %d leaves held %llu results at once (> log2 n + 3 = %d)\n", n,
                    (unsigned long long)st.peak_held, log2n + 3);
            check_failures++;
        }
        CHECK(st.peak_held >= (uint64_t)log2n); /* a path of finished left siblings is held */

        /* Threads: the same counts. One worker (the caller alone) keeps the sync bound; w
         * workers each finish their branch depth-first, so the peak stays within a small
         * multiple of w * log2 n — far below the n/2 a breadth-first order would hold. */
        for (uint32_t w = 1; w <= 4; w++) {
            o = make_options(DASKR_SCHEDULER_THREADS, w);
            o.stats = &st;
            memset(&st, 0, sizeof st);
            CHECK_OK(daskr_graph_get_key(g, root, &o, &out));
            CHECK_INT(out, n);
            daskr_value_free(out);
            CHECK(st.entries == (uint64_t)(2 * n - 1));
            CHECK(st.entries_run == (uint64_t)(2 * n - 1));
            CHECK(st.workers >= 1 && st.workers <= w);
            uint64_t bound = w == 1 ? (uint64_t)(log2n + 3) : 2u * w * (uint64_t)(log2n + 3);
            if (st.peak_held > bound || st.peak_held < 1) {
                fprintf(stderr, "memory.c: threads (%u workers) reduction over %d leaves held %llu results (bound %llu)\n",
                        w, n, (unsigned long long)st.peak_held, (unsigned long long)bound);
                check_failures++;
            }
        }

        /* A subtree only: culled counts. */
        o = make_options(DASKR_SCHEDULER_SYNC, 1);
        o.stats = &st;
        CHECK_OK(daskr_graph_get_key(g, "t2-1", &o, &out)); /* 4 leaves, 2 + 1 inner nodes */
        CHECK_INT(out, 4);
        daskr_value_free(out);
        CHECK(st.entries == 7 && st.entries_run == 7);
        daskr_graph_free(g);
    }
}

/* Under threads, many branches of tracked values: after the get exactly the requested ones
 * are alive (in the result), and freeing the result frees them. */
static void threads_release(uint32_t workers, int width) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_comp_t **top = malloc(sizeof *top * (size_t)width);
    for (int i = 0; i < width; i++) {
        char lk[16], mk_[16];
        snprintf(lk, sizeof lk, "l%d", i);
        snprintf(mk_, sizeof mk_, "m%d", i);
        add_mk(g, lk, i);
        daskr_comp_t *a[] = {daskr_comp_ref(lk)};
        add_task1(g, mk_, pass, 0, a, 1);
        top[i] = daskr_comp_ref(mk_);
    }
    daskr_comp_t *list = daskr_comp_list(top, (size_t)width);
    free(top);
    add_task1(g, "top", consume, 1, &list, 1);
    const char *req[] = {"top", "l3", "m5", "l3", NULL};
    daskr_value_t *k = keys_value(req);
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_THREADS, workers);
    start();
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get(g, k, &o, &out));
    CHECK_INT(daskr_value_list_at(out, 0), 1);
    CHECK(tracked_live() == 2); /* l3 (twice in the result: one object) and m5 */
    CHECK(tracked_id(daskr_value_list_at(out, 1)) == 3);
    CHECK(daskr_value_equal(daskr_value_list_at(out, 1), daskr_value_list_at(out, 3)));
    daskr_value_free(out);
    CHECK(tracked_live() == 0);
    daskr_value_free(k);
    daskr_graph_free(g);
}

/* Returns a new tracked value; fails if more than two tracked values are alive (its input
 * and, momentarily, nothing else: the input's own input was released already). */
static atomic_long chain_violations;
static void step(daskr_call_t *call, void *user_data) {
    (void)user_data;
    if (tracked_live() > 1 + (long)(intptr_t)user_data) atomic_fetch_add(&chain_violations, 1);
    long id = tracked_id(daskr_call_arg(call, 0));
    daskr_call_return(call, tracked_value(id + 1));
}

/* A long chain: no depth limit, one result alive at a time. */
static void deep_chain(int n) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = make_func("step", step, NULL);
    daskr_task_t prev;
    daskr_comp_t *first[] = {int_comp(0)};
    CHECK_OK(daskr_graph_add_task(g, "c0", f_mk, first, 1, NULL, NULL, 0, &prev));
    char key[32];
    for (int i = 1; i < n; i++) {
        snprintf(key, sizeof key, "c%d", i);
        daskr_comp_t *a[] = {daskr_comp_ref_task(prev)};
        CHECK_OK(daskr_graph_add_task(g, key, f, a, 1, NULL, NULL, 0, &prev));
    }
    for (int s = 0; s < 2; s++) {
        daskr_stats_t st;
        daskr_get_options_t o = make_options(s ? DASKR_SCHEDULER_THREADS : DASKR_SCHEDULER_SYNC, 3);
        o.stats = &st;
        atomic_store(&chain_violations, 0);
        daskr_value_t *out = NULL;
        CHECK_OK(daskr_graph_get_key(g, key, &o, &out));
        CHECK(tracked_id(out) == n - 1);
        CHECK(tracked_live() == 1);
        daskr_value_free(out);
        CHECK(atomic_load(&chain_violations) == 0);
        CHECK(st.entries == (uint64_t)n && st.entries_run == (uint64_t)n);
        CHECK(st.peak_held <= 2);
    }
    CHECK(tracked_live() == 0);
    daskr_func_free(f);
    daskr_graph_free(g);
}

/* Fan-out / fan-in under threads: x feeds 50 tasks running in parallel; when the gather
 * runs, x has been released (its last consumer finished) and the 50 results are alive. */
static atomic_long gather_saw_live = -1;
static void gather(daskr_call_t *call, void *user_data) {
    (void)user_data;
    atomic_store(&gather_saw_live, tracked_live());
    daskr_call_return_int(call, (int64_t)daskr_call_nargs(call));
}

static void fan_out_in(uint32_t workers) {
    enum { W = 50 };
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *fg = make_func("gather", gather, NULL);
    add_mk(g, "x", 1);
    daskr_comp_t *gargs[W];
    for (int i = 0; i < W; i++) {
        char key[16];
        snprintf(key, sizeof key, "c%d", i);
        daskr_comp_t *a[] = {daskr_comp_ref("x")};
        add_task1(g, key, pass, 20, a, 1);
        gargs[i] = daskr_comp_ref(key);
    }
    CHECK_OK(daskr_graph_add_task(g, "gather", fg, gargs, W, NULL, NULL, 0, NULL));
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_THREADS, workers);
    start();
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "gather", &o, &out));
    CHECK_INT(out, W);
    daskr_value_free(out);
    CHECK(atomic_load(&gather_saw_live) == W);
    CHECK(tracked_live() == 0);
    daskr_func_free(fg);
    daskr_graph_free(g);
}

/* One entry referring to many keys, each several times (in args, kwargs, lists and inline
 * tasks): each input counts once, so each is released exactly once, after the entry ran. */
static void many_repeated_refs(const daskr_get_options_t *o) {
    enum { K = 40 };
    daskr_graph_t *g = daskr_graph_new();
    daskr_comp_t *args[3 * K], *kwv[2];
    char key[16];
    for (int i = 0; i < K; i++) {
        snprintf(key, sizeof key, "l%d", i);
        add_mk(g, key, i);
    }
    for (int i = 0; i < K; i++) {
        snprintf(key, sizeof key, "l%d", i);
        args[i] = daskr_comp_ref(key);
        args[K + i] = daskr_comp_ref(key);
        daskr_comp_t *inner[] = {daskr_comp_ref(key), daskr_comp_ref(key)};
        args[2 * K + i] = i % 2 ? daskr_comp_list(inner, 2) : daskr_comp_task(f_identity, inner, 2, NULL, NULL, 0);
    }
    const char *kwn[] = {"first", "last"};
    kwv[0] = daskr_comp_ref("l0");
    kwv[1] = daskr_comp_ref("l39");
    add_task1(g, "unneeded", consume, 30, NULL, 0); /* culled away: must not run */
    daskr_func_t *c = make_func("consume", consume, (void *)31);
    CHECK_OK(daskr_graph_add_task(g, "all", c, args, 3 * K, kwn, kwv, 2, NULL));
    daskr_func_free(c);
    start();
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "all", o, &out));
    CHECK_INT(out, 3 * K);
    daskr_value_free(out);
    CHECK(seen[31] == 0); /* every input alive while it ran */
    CHECK(seen[30] == -1);
    CHECK(tracked_live() == 0);
    CHECK(atomic_load(&tracked_destroyed) - d0 == K);
    daskr_graph_free(g);
}

/* A big graph's arrays are kept for reuse when it is freed; daskr_memory_release gives them
 * back to the system: the first call returns at least the expression arena (two 16-byte
 * expressions per task), the next finds nothing left. */
static void memory_release(void) {
    enum { N = 300000 };
    daskr_graph_t *g = daskr_graph_new();
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "r%d", i);
        daskr_comp_t *a[] = {int_comp(i)};
        CHECK_OK(daskr_graph_add_task(g, key, f_mk, a, 1, NULL, NULL, 0, NULL));
    }
    daskr_graph_free(g);
    CHECK(daskr_memory_release() >= (size_t)N * 2 * 16);
    CHECK(daskr_memory_release() == 0);
}

int main(void) {
    f_mk = make_func("mk", mk, NULL);
    f_add = make_func("add", add, NULL);
    f_identity = make_func("identity", identity, NULL);
    daskr_get_options_t sync = make_options(DASKR_SCHEDULER_SYNC, 1);
    chain(&sync);
    shared_input(&sync);
    graph_owned_literals(&sync);
    for (uint32_t w = 1; w <= 4; w++) {
        daskr_get_options_t threads = make_options(DASKR_SCHEDULER_THREADS, w);
        chain(&threads); /* a chain is sequential under any scheduler */
        graph_owned_literals(&threads);
    }
    branches();
    for (uint32_t w = 2; w <= 4; w++) fan_out_in(w);
    many_repeated_refs(&sync);
    for (uint32_t w = 2; w <= 4; w++) {
        daskr_get_options_t threads = make_options(DASKR_SCHEDULER_THREADS, w);
        many_repeated_refs(&threads);
    }
    deep_chain(check_slow_mode() ? 20000 : 100000);
    reduction_tree(check_slow_mode() ? 6 : 10);
    int reps = check_slow_mode() ? 4 : 40;
    for (int i = 0; i < reps; i++) threads_release(2 + (uint32_t)(i % 3), 100);
    memory_release();
    daskr_func_free(f_mk);
    daskr_func_free(f_add);
    daskr_func_free(f_identity);
    CHECK(tracked_live() == 0);
    return check_report("memory");
}
