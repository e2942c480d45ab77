/* Thousands of random DAGs (fixed seed) built through the C ABI — literals, tasks with
 * positional and keyword arguments, nested lists, inline tasks, aliases, pointer values,
 * references by key and by handle (also to entries added later), now and then a failing
 * task — each computed with the sync scheduler and with the threads scheduler (2-4 workers).
 * The results must be equal to each other and to a model computed alongside in C; a failure
 * must name the failing key under both; culling must count the right entries; and every
 * pointer value made by a task must be released.
 *
 * Scale: 10000 graphs normally, 600 when DASKR_C_CHECK is set (valgrind / asan);
 * DASKR_TEST_SCALE multiplies either (e.g. 0.1 or 10). DASKR_TEST_SEED changes the seed. */
#include "check.h"

/* ---- random numbers ---- */

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int below(int n) { return (int)(rnd() % (uint64_t)n); }
static int chance(int percent) { return below(100) < percent; }

/* ---- the fold both the tasks and the model compute ---- */

static uint64_t H(uint64_t a, uint64_t b) {
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull + (a << 6) + (a >> 2));
    x ^= x >> 29;
    return x * 0xBF58476D1CE4E5B9ull;
}
static uint64_t fold_int(int64_t i) { return H(1, (uint64_t)i); }
static uint64_t fold_ptr(long id) { return H(3, (uint64_t)id); }
static uint64_t fold_list_start(size_t n) { return H(2, n); }
static uint64_t fold_str(const char *s) {
    uint64_t h = 5;
    for (; *s; s++) h = H(h, (unsigned char)*s);
    return h;
}

static uint64_t fold_value(const daskr_value_t *v) {
    int64_t i;
    if (daskr_value_get_int(v, &i)) return fold_int(i);
    long id = tracked_id(v);
    if (id >= 0) return fold_ptr(id);
    if (daskr_value_kind(v) == DASKR_KIND_LIST) {
        size_t n = daskr_value_list_len(v);
        uint64_t h = fold_list_start(n);
        for (size_t k = 0; k < n; k++) h = H(h, fold_value(daskr_value_list_at(v, k)));
        return h;
    }
    return H(4, (uint64_t)daskr_value_kind(v));
}

static int has_pointer(const daskr_value_t *v) {
    if (daskr_value_kind(v) == DASKR_KIND_POINTER) return 1;
    for (size_t k = 0; k < daskr_value_list_len(v); k++)
        if (has_pointer(daskr_value_list_at(v, k))) return 1;
    return 0;
}

/* Equality with tracked pointers compared by id (two gets make two different objects). */
static int same(const daskr_value_t *a, const daskr_value_t *b) {
    if (daskr_value_kind(a) != daskr_value_kind(b)) return 0;
    if (daskr_value_kind(a) == DASKR_KIND_POINTER) return tracked_id(a) == tracked_id(b) && tracked_id(a) >= 0;
    if (daskr_value_kind(a) != DASKR_KIND_LIST) return daskr_value_equal(a, b);
    size_t n = daskr_value_list_len(a);
    if (n != daskr_value_list_len(b)) return 0;
    for (size_t k = 0; k < n; k++)
        if (!same(daskr_value_list_at(a, k), daskr_value_list_at(b, k))) return 0;
    return 1;
}

/* ---- task functions ---- */

static const char *kwnames_all[] = {"alpha", "beta", "gamma", "\xce\xb4"};

/* mix(args..., kw=...): a hash of its arguments' folds, as an int. */
static int64_t mix_result(uint64_t h) { return (int64_t)(h >> 1); }

static void mix(daskr_call_t *call, void *user_data) {
    (void)user_data;
    uint64_t h = 17;
    for (size_t i = 0; i < daskr_call_nargs(call); i++) h = H(h, fold_value(daskr_call_arg(call, i)));
    for (size_t i = 0; i < daskr_call_nkwargs(call); i++) {
        const char *name = daskr_call_kwarg_name(call, i);
        const daskr_value_t *v = daskr_call_kwarg(call, name);
        if (v != daskr_call_kwarg_at(call, i)) {
            daskr_call_fail(call, "mix: kwarg lookup by name and by index differ");
            return;
        }
        h = H(h, H(fold_str(name), fold_value(v)));
    }
    daskr_call_return_int(call, mix_result(h));
}

/* mkptr(x): a tracked pointer value whose id derives from x's fold. */
static long ptr_id(uint64_t fold) { return (long)(fold & 0xfffff); }

static void mkptr(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_call_return(call, tracked_value(ptr_id(fold_value(daskr_call_arg(call, 0)))));
}

static void fails(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_call_return(call, tracked_value(999)); /* replaced by the failure: released */
    daskr_call_fail(call, "random failure");
}

static daskr_func_t *f_mix, *f_mkptr, *f_fail;

/* ---- one random graph ---- */

enum { MAXN = 40 };

typedef struct {
    int n;
    char keys[MAXN][32];
    daskr_task_t handles[MAXN];
    uint64_t fold[MAXN];
    uint64_t deps[MAXN]; /* bit j: node j is referenced */
    int fails;           /* the failing node, or -1 */
    int literal_ptrs;    /* pointer literals the graph holds */
    daskr_graph_t *g;
} dag_t;

static daskr_comp_t *ref(dag_t *d, int node, int j) {
    d->deps[node] |= 1ull << j;
    return chance(50) ? daskr_comp_ref_task(d->handles[j]) : daskr_comp_ref(d->keys[j]);
}

static daskr_comp_t *gen_comp(dag_t *d, int node, int depth, uint64_t *fold);

/* Fills args/kwargs of a mix call; returns the mix's fold-derived int. */
static int64_t gen_call(dag_t *d, int node, int depth, daskr_comp_t **args, size_t *nargs, const char **kwn,
                        daskr_comp_t **kwv, size_t *nkw) {
    uint64_t h = 17, f;
    *nargs = (size_t)below(4);
    for (size_t i = 0; i < *nargs; i++) {
        args[i] = gen_comp(d, node, depth + 1, &f);
        h = H(h, f);
    }
    *nkw = 0;
    int start = below(4);
    int count = chance(40) ? 1 + below(3) : 0;
    for (int k = 0; k < count; k++) {
        const char *name = kwnames_all[(start + k) % 4];
        kwn[*nkw] = name;
        kwv[*nkw] = gen_comp(d, node, depth + 1, &f);
        h = H(h, H(fold_str(name), f));
        (*nkw)++;
    }
    return mix_result(h);
}

/* A random computation for (an argument of) `node`, referring only to nodes below it. */
static daskr_comp_t *gen_comp(dag_t *d, int node, int depth, uint64_t *fold) {
    int r = below(100);
    if (node > 0 && r < 45) {
        int j = below(node);
        *fold = d->fold[j];
        return ref(d, node, j);
    }
    if (depth < 3 && r < 60) { /* a list */
        size_t n = (size_t)below(4);
        daskr_comp_t *items[4];
        uint64_t h = fold_list_start(n), f;
        for (size_t i = 0; i < n; i++) {
            items[i] = gen_comp(d, node, depth + 1, &f);
            h = H(h, f);
        }
        *fold = h;
        return daskr_comp_list(items, n);
    }
    if (depth < 3 && r < 70) { /* an inline task */
        daskr_comp_t *args[4], *kwv[4];
        const char *kwn[4];
        size_t nargs, nkw;
        int64_t v = gen_call(d, node, depth, args, &nargs, kwn, kwv, &nkw);
        *fold = fold_int(v);
        return daskr_comp_task(f_mix, args, nargs, kwn, kwv, nkw);
    }
    int64_t x = (int64_t)below(2001) - 1000;
    *fold = fold_int(x);
    return int_comp(x);
}

static void build(dag_t *d) {
    d->n = 1 + below(chance(10) ? MAXN : 16);
    d->fails = -1;
    d->literal_ptrs = 0;
    d->g = daskr_graph_new();
    for (int i = 0; i < d->n; i++) {
        snprintf(d->keys[i], sizeof d->keys[i], chance(20) ? "('n\xc5\x93ud', %d)" : "node-%d", i);
        CHECK_OK(daskr_graph_handle(d->g, d->keys[i], &d->handles[i]));
        d->deps[i] = 0;
    }
    /* Add the entries in a random order: references to entries added later are fine. */
    int perm[MAXN];
    for (int i = 0; i < d->n; i++) perm[i] = i;
    if (chance(50))
        for (int i = d->n - 1; i > 0; i--) {
            int j = below(i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    /* Folds must be known before a node is referred to: compute nodes in index order, but
     * add them in `perm` order, by first building all comps. */
    daskr_comp_t *comps[MAXN];
    for (int i = 0; i < d->n; i++) {
        int r = below(100);
        uint64_t f;
        if (r < 15) { /* an int literal */
            int64_t x = (int64_t)below(100);
            d->fold[i] = fold_int(x);
            comps[i] = int_comp(x);
        } else if (r < 18) { /* a pointer literal, owned by the graph */
            long id = 1000000 + i;
            d->fold[i] = fold_ptr(id);
            comps[i] = daskr_comp_value(tracked_value(id));
            d->literal_ptrs++;
        } else if (r < 28 && i > 0) { /* an alias */
            int j = below(i);
            d->fold[i] = d->fold[j];
            comps[i] = ref(d, i, j);
        } else if (r < 36) { /* a list entry */
            comps[i] = gen_comp(d, i, 2, &f);
            if (chance(50)) {
                daskr_comp_t *one[] = {comps[i]};
                comps[i] = daskr_comp_list(one, 1);
                f = H(fold_list_start(1), f);
            }
            d->fold[i] = f;
        } else if (r < 44) { /* mkptr(x) */
            daskr_comp_t *arg = gen_comp(d, i, 1, &f);
            d->fold[i] = fold_ptr(ptr_id(f));
            comps[i] = daskr_comp_task(f_mkptr, &arg, 1, NULL, NULL, 0);
        } else if (r < 46 && d->fails < 0) { /* the one failing task */
            daskr_comp_t *arg = gen_comp(d, i, 1, &f);
            d->fails = i;
            d->fold[i] = 0;
            comps[i] = daskr_comp_task(f_fail, &arg, 1, NULL, NULL, 0);
        } else { /* mix(args..., kwargs...) */
            daskr_comp_t *args[4], *kwv[4];
            const char *kwn[4];
            size_t nargs, nkw;
            int64_t v = gen_call(d, i, 0, args, &nargs, kwn, kwv, &nkw);
            d->fold[i] = fold_int(v);
            comps[i] = daskr_comp_task(f_mix, args, nargs, kwn, kwv, nkw);
        }
    }
    for (int k = 0; k < d->n; k++) {
        int i = perm[k];
        daskr_task_t t = 0;
        CHECK_OK(daskr_graph_add(d->g, d->keys[i], comps[i], &t));
        CHECK(t == d->handles[i]);
    }
    CHECK(daskr_graph_len(d->g) == (size_t)d->n);
}

/* A random request: a key, or a nested list of keys (repeats allowed). */
static daskr_value_t *gen_request(dag_t *d, int depth, uint64_t *fold, uint64_t *roots) {
    if (depth > 0 && chance(depth == 1 ? 30 : 70)) {
        int j = below(d->n);
        *roots |= 1ull << j;
        *fold = d->fold[j];
        return str_value(d->keys[j]);
    }
    size_t n = (size_t)below(depth == 0 ? 6 : 3);
    daskr_value_t *items[6];
    uint64_t h = fold_list_start(n), f;
    for (size_t i = 0; i < n; i++) {
        items[i] = gen_request(d, depth + 1, &f, roots);
        h = H(h, f);
    }
    *fold = h;
    return list_value(items, n);
}

static uint64_t needed(const dag_t *d, uint64_t roots) {
    uint64_t seen = 0;
    for (int i = d->n - 1; i >= 0; i--) /* dependencies have lower indices */
        if ((roots | seen) >> i & 1) seen |= 1ull << i | d->deps[i];
    return seen | roots;
}

static int popcount64(uint64_t x) {
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

static long graphs_failed, graphs_ok;

static void one_graph(int index) {
    dag_t d;
    build(&d);
    int requests = 1 + below(3);
    for (int q = 0; q < requests; q++) {
        uint64_t want = 0, roots = 0;
        daskr_value_t *req = chance(15) ? (roots = 1ull << (q % d.n), want = d.fold[q % d.n], str_value(d.keys[q % d.n]))
                                        : gen_request(&d, 0, &want, &roots);
        uint64_t need = needed(&d, roots);
        int should_fail = d.fails >= 0 && (need >> d.fails & 1);
        daskr_value_t *results[2] = {NULL, NULL};
        for (int s = 0; s < 2; s++) {
            daskr_get_options_t o = make_options(s ? DASKR_SCHEDULER_THREADS : DASKR_SCHEDULER_SYNC, (uint32_t)(2 + below(3)));
            daskr_stats_t st;
            o.stats = &st;
            daskr_error_t *e = daskr_graph_get(d.g, req, &o, &results[s]);
            if (should_fail) {
                int ok = e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED && daskr_error_key(e) &&
                         strcmp(daskr_error_key(e), d.keys[d.fails]) == 0 && results[s] == NULL;
                if (!ok) {
                    fprintf(stderr, "random_dags: graph %d request %d (%s): expected failure of %s\n", index, q,
                            s ? "threads" : "sync", d.keys[d.fails]);
                    check_print_error("random_dags", e);
                    check_failures++;
                }
            } else if (e) {
                fprintf(stderr, "random_dags: graph %d request %d (%s) failed\n", index, q, s ? "threads" : "sync");
                check_print_error("random_dags", e);
                check_failures++;
            } else {
                if (fold_value(results[s]) != want) {
                    fprintf(stderr, "random_dags: graph %d request %d (%s): result differs from the model\n", index, q,
                            s ? "threads" : "sync");
                    check_failures++;
                }
                if (st.entries != (uint64_t)popcount64(need) || st.entries_run != st.entries) {
                    fprintf(stderr, "random_dags: graph %d request %d (%s): entries %llu run %llu, expected %d\n", index, q,
                            s ? "threads" : "sync", (unsigned long long)st.entries, (unsigned long long)st.entries_run,
                            popcount64(need));
                    check_failures++;
                }
            }
            daskr_error_free(e);
        }
        if (!should_fail && results[0] && results[1]) {
            if (!same(results[0], results[1])) {
                fprintf(stderr, "random_dags: graph %d request %d: sync and threads results differ\n", index, q);
                check_failures++;
            }
            if (!has_pointer(results[0]) && !daskr_value_equal(results[0], results[1])) {
                fprintf(stderr, "random_dags: graph %d request %d: daskr_value_equal says they differ\n", index, q);
                check_failures++;
            }
        }
        daskr_value_free(results[0]);
        daskr_value_free(results[1]);
        daskr_value_free(req);
        should_fail ? graphs_failed++ : graphs_ok++;
        /* Only the graph's own pointer literals are still alive. */
        if (tracked_live() != d.literal_ptrs) {
            fprintf(stderr, "random_dags: graph %d request %d: %ld pointer values alive, expected %d\n", index, q,
                    tracked_live(), d.literal_ptrs);
            check_failures++;
        }
    }
    daskr_graph_free(d.g);
    CHECK(tracked_live() == 0);
}

int main(void) {
    double scale = 1.0;
    const char *s = getenv("DASKR_TEST_SCALE");
    if (s && atof(s) > 0) scale = atof(s);
    const char *seed = getenv("DASKR_TEST_SEED");
    rng_state = seed ? strtoull(seed, NULL, 0) : 0x5eed2026u;
    int graphs = (int)((check_slow_mode() ? 600 : 10000) * scale);
    if (graphs < 1) graphs = 1;

    f_mix = make_func("mix", mix, NULL);
    f_mkptr = make_func("mkptr", mkptr, NULL);
    f_fail = make_func("fail", fails, NULL);
    for (int i = 0; i < graphs && check_failures < 20; i++) one_graph(i);
    daskr_func_free(f_mix);
    daskr_func_free(f_mkptr);
    daskr_func_free(f_fail);
    /* The generator must exercise both outcomes. */
    CHECK(graphs_ok > 0);
    CHECK(graphs < 50 || graphs_failed > 0);
    CHECK(tracked_live() == 0);
    printf("random_dags: %d graphs, %ld requests computed, %ld failing as planned\n", graphs, graphs_ok, graphs_failed);
    return check_report("random_dags");
}
