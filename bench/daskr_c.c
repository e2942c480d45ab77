/*
 * daskr through the C ABI on the benchmark shapes: build + run cost per task, no-op task bodies
 * that read their args and return a small int. (Formerly bench/shapes.c.)
 *
 *   daskr_c [--json] [--rounds R] [--spin-iters K] [--calibrate] [--scheduler processes]
 *           [N] [threads] [shape...]
 *
 * See bench_common.h for the options and what each row holds. Shapes:
 *   independent  N tasks + one sink that takes all of them as a list
 *   chain        N tasks in a line
 *   tree         binary reduction over N leaves (N-1 inner tasks)
 *   wavefront    side x side grid (side = floor(sqrt N)); a cell depends on its left and upper cell
 *   pipeline     the seed's load -> clean -> analyze -> store, fanned out to F = N/3 files:
 *                load-i = load(i), clean-i = clean(load-i), and per group of 100 files
 *                analyze-g = analyze([clean-...], method="mean"), store-g = store(analyze-g,
 *                to="results"); one final sink takes the list of stores
 *   spin         like independent, but each task spins ~1 ms of CPU (--spin-iters, else
 *                calibrated here): the parallel speedup measurement
 *   move-1k      N tasks that each return 1 KiB of bytes, and a sink that takes them all as a
 *   move-1m      list and returns their total length (1 MiB each for move-1m): under the
 *                processes scheduler, results that cross from worker to worker
 * Dependencies are passed by handle (daskr_comp_ref_task); every task has a string key, or
 * with --anonymous none (key NULL: the tasks are reached by handle only, as Taskflow's are;
 * rows named daskr-c-anon). The result is asked for by handle (daskr_graph_get_task).
 *
 * --scheduler processes runs the gets on the processes scheduler (workers = threads; rows
 * are named daskr-c-processes); the default is the threads scheduler.
 */
#include "bench_common.h"

#include <inttypes.h>

#include "bench_tasks.h"

/* blob(size): `size` bytes. total(list): the sum of the lengths of a list of bytes values. */
static uint8_t blob_data[1 << 20];

static void blob(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t size = 0;
    daskr_value_get_int(daskr_call_arg(call, 0), &size);
    if (size < 0 || size > (int64_t)sizeof blob_data) size = 0;
    daskr_call_return_bytes(call, blob_data, (size_t)size);
}

static void total(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *list = daskr_call_arg(call, 0);
    int64_t sum = 0;
    for (size_t i = 0, n = daskr_value_list_len(list); i < n; i++) {
        const uint8_t *data;
        size_t len;
        if (daskr_value_get_bytes(daskr_value_list_at(list, i), &data, &len)) sum += (int64_t)len + data[len / 2];
    }
    daskr_call_return_int(call, sum);
}

static void spin(daskr_call_t *call, void *user_data) {
    long iters = *(const long *)user_data;
    daskr_call_return_int(call, (int64_t)(bench_spin(iters, (uint64_t)(uintptr_t)call) & 7));
}

static void ok(daskr_error_t *e) {
    if (e) {
        fprintf(stderr, "daskr error (%s, key %s): %s\n", daskr_error_kind_name(daskr_error_kind(e)),
                daskr_error_key(e) ? daskr_error_key(e) : "-", daskr_error_message(e));
        exit(1);
    }
}

static daskr_func_t *f_noop, *f_sink, *f_analyze, *f_store, *f_spin, *f_blob, *f_total;
static long spin_iters;
static int anonymous; /* --anonymous: every task added with a NULL key */

/* The key of a task (prefix-i or prefix-i-j; j < 0: none), or NULL when tasks are anonymous. */
static const char *key_of(char *buf, const char *prefix, long i, long j) {
    return anonymous ? NULL : bench_key(buf, prefix, i, j);
}

static daskr_task_t add(daskr_graph_t *g, const daskr_func_t *f, const char *prefix, long i, long j,
                        daskr_comp_t **args, size_t n) {
    char key[64];
    daskr_task_t t;
    ok(daskr_graph_add_task(g, key_of(key, prefix, i, j), f, args, n, NULL, NULL, 0, &t));
    return t;
}

static daskr_comp_t *string_comp(const char *s) {
    daskr_value_t *v;
    ok(daskr_value_string(s, strlen(s), &v));
    return daskr_comp_value(v);
}

/* Builds the shape into g; returns the handle of the task to request and sets *tasks. */
static daskr_task_t build(daskr_graph_t *g, const char *shape, long n, long *tasks) {
    daskr_task_t out;
    if (!strcmp(shape, "chain")) {
        daskr_task_t prev = add(g, f_noop, "chain", 0, -1, NULL, 0);
        for (long i = 1; i < n; i++) {
            daskr_comp_t *a[] = {daskr_comp_ref_task(prev)};
            prev = add(g, f_noop, "chain", i, -1, a, 1);
        }
        *tasks = n;
        return prev;
    }
    if (!strcmp(shape, "independent") || !strcmp(shape, "spin")) {
        int is_spin = shape[0] == 's';
        daskr_comp_t **refs = malloc((size_t)n * sizeof *refs);
        for (long i = 0; i < n; i++)
            refs[i] = daskr_comp_ref_task(add(g, is_spin ? f_spin : f_noop, "ind", i, -1, NULL, 0));
        daskr_comp_t *a[] = {daskr_comp_list(refs, (size_t)n)};
        free(refs);
        ok(daskr_graph_add_task(g, anonymous ? NULL : "sink", f_sink, a, 1, NULL, NULL, 0, &out));
        *tasks = n + 1;
        return out;
    }
    if (!strncmp(shape, "move-", 5)) {
        int64_t size = !strcmp(shape, "move-1m") ? 1 << 20 : 1 << 10;
        daskr_comp_t **refs = malloc((size_t)n * sizeof *refs);
        for (long i = 0; i < n; i++) {
            daskr_comp_t *a[] = {daskr_comp_value(daskr_value_int(size))};
            refs[i] = daskr_comp_ref_task(add(g, f_blob, "blob", i, -1, a, 1));
        }
        daskr_comp_t *a[] = {daskr_comp_list(refs, (size_t)n)};
        free(refs);
        ok(daskr_graph_add_task(g, anonymous ? NULL : "total", f_total, a, 1, NULL, NULL, 0, &out));
        *tasks = n + 1;
        return out;
    }
    if (!strcmp(shape, "tree")) {
        daskr_task_t *level = malloc((size_t)n * sizeof *level);
        long width = n, depth = 0, total = n;
        for (long i = 0; i < n; i++) level[i] = add(g, f_noop, "leaf", i, -1, NULL, 0);
        while (width > 1) {
            depth++;
            long w = 0;
            for (long i = 0; i + 1 < width; i += 2) {
                daskr_comp_t *a[] = {daskr_comp_ref_task(level[i]), daskr_comp_ref_task(level[i + 1])};
                level[w++] = add(g, f_noop, "sum", depth, i / 2, a, 2);
            }
            if (width & 1) level[w++] = level[width - 1];
            total += width / 2;
            width = w;
        }
        *tasks = total;
        out = level[0];
        free(level);
        return out;
    }
    if (!strcmp(shape, "wavefront")) {
        long side = bench_wave_side(n);
        daskr_task_t *row = malloc((size_t)side * sizeof *row);
        out = 0;
        for (long i = 0; i < side; i++) {
            for (long j = 0; j < side; j++) {
                daskr_comp_t *a[2];
                size_t k = 0;
                if (j > 0) a[k++] = daskr_comp_ref_task(row[j - 1]);
                if (i > 0) a[k++] = daskr_comp_ref_task(row[j]);
                row[j] = add(g, f_noop, "wave", i, j, a, k);
            }
        }
        out = row[side - 1];
        free(row);
        *tasks = side * side;
        return out;
    }
    if (!strcmp(shape, "pipeline")) {
        long files = bench_pipeline_files(n), groups = bench_pipeline_groups(n);
        daskr_comp_t **stores = malloc((size_t)groups * sizeof *stores);
        const char *method_kw[] = {"method"}, *to_kw[] = {"to"};
        for (long grp = 0; grp < groups; grp++) {
            daskr_comp_t *cleaned[BENCH_GROUP];
            size_t k = 0;
            for (long i = grp * BENCH_GROUP; i < files && i < (grp + 1) * BENCH_GROUP; i++) {
                daskr_comp_t *la[] = {daskr_comp_value(daskr_value_int(i))};
                daskr_task_t load = add(g, f_noop, "load", i, -1, la, 1);
                daskr_comp_t *ca[] = {daskr_comp_ref_task(load)};
                cleaned[k++] = daskr_comp_ref_task(add(g, f_noop, "clean", i, -1, ca, 1));
            }
            char key[64];
            daskr_task_t an;
            daskr_comp_t *aa[] = {daskr_comp_list(cleaned, k)};
            daskr_comp_t *akw[] = {string_comp("mean")};
            ok(daskr_graph_add_task(g, key_of(key, "analyze", grp, -1), f_analyze, aa, 1, method_kw, akw, 1, &an));
            daskr_task_t st;
            daskr_comp_t *sa[] = {daskr_comp_ref_task(an)};
            daskr_comp_t *skw[] = {string_comp("results")};
            ok(daskr_graph_add_task(g, key_of(key, "store", grp, -1), f_store, sa, 1, to_kw, skw, 1, &st));
            stores[grp] = daskr_comp_ref_task(st);
        }
        daskr_comp_t *a[] = {daskr_comp_list(stores, (size_t)groups)};
        free(stores);
        ok(daskr_graph_add_task(g, anonymous ? NULL : "pipeline", f_sink, a, 1, NULL, NULL, 0, &out));
        *tasks = 2 * files + 2 * groups + 1;
        return out;
    }
    fprintf(stderr, "unknown shape %s\n", shape);
    exit(2);
}

int main(int argc, char **argv) {
    /* --scheduler NAME is this runner's own option: take it out before the common parse. */
    daskr_scheduler_t scheduler = DASKR_SCHEDULER_THREADS;
    const char *system = "daskr-c";
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--scheduler") && i + 1 < argc) {
            const char *name = argv[++i];
            if (!strcmp(name, "processes")) {
                scheduler = DASKR_SCHEDULER_PROCESSES;
                system = "daskr-c-processes";
            } else if (strcmp(name, "threads") != 0) {
                fprintf(stderr, "unknown scheduler %s (threads or processes)\n", name);
                return 2;
            }
            continue;
        }
        if (!strcmp(argv[i], "--anonymous")) {
            anonymous = 1;
            system = "daskr-c-anon";
            continue;
        }
        argv[kept++] = argv[i];
    }
    argc = kept;
    bench_args_t a;
    bench_parse(argc, argv, &a);
    if (a.calibrate) {
        printf("%ld\n", bench_calibrate_spin());
        return 0;
    }
    ok(daskr_func_new("noop", noop, NULL, NULL, &f_noop));
    ok(daskr_func_new("sink", sink, NULL, NULL, &f_sink));
    ok(daskr_func_new("analyze", analyze, NULL, NULL, &f_analyze));
    ok(daskr_func_new("store", store, NULL, NULL, &f_store));
    ok(daskr_func_new("spin", spin, &spin_iters, NULL, &f_spin));
    ok(daskr_func_new("blob", blob, NULL, NULL, &f_blob));
    ok(daskr_func_new("total", total, NULL, NULL, &f_total));
    for (int s = 0; s < a.nshapes; s++) {
        const char *shape = a.shapes[s];
        if (!strcmp(shape, "spin") && spin_iters == 0)
            spin_iters = a.spin_iters >= 0 ? a.spin_iters : bench_calibrate_spin();
        bench_rounds_t r;
        memset(&r, 0, sizeof r);
        r.rounds = a.rounds;
        long tasks = 0;
        uint64_t peak = 0;
        /* Rounds 0..R-1 are timed without stats; one more, untimed, asks for stats (peak_held is
         * measured only then: it costs a shared counter), as Dask's peak comes from untimed runs. */
        for (int k = 0; k <= a.rounds; k++) {
            int measure = k == a.rounds;
            long rss0 = bench_rss();
            double t0 = bench_now();
            daskr_graph_t *g = daskr_graph_new();
            daskr_task_t want = build(g, shape, a.n, &tasks);
            double t1 = bench_now();
            daskr_stats_t st;
            daskr_get_options_t o;
            daskr_get_options_init(&o, sizeof o);
            o.scheduler = scheduler;
            o.num_workers = a.threads;
            o.stats = measure ? &st : NULL;
            daskr_value_t *out;
            ok(daskr_graph_get_task(g, want, &o, &out));
            double t2 = bench_now();
            long rss1 = bench_rss();
            double t3 = bench_now();
            daskr_value_free(out);
            daskr_graph_free(g);
            double t4 = bench_now();
            if (k == 0) r.rss_before = rss0, r.rss_after = rss1;
            if (!measure) {
                r.build[k] = t1 - t0;
                r.run[k] = t2 - t1;
                r.total[k] = t2 - t0;
                r.freed[k] = t4 - t3;
                continue;
            }
            peak = st.peak_held;
            if ((long)st.entries_run != tasks) {
                fprintf(stderr, "%s: %" PRIu64 " entries ran, expected %ld\n", shape, st.entries_run, tasks);
                return 1;
            }
        }
        bench_emit(&a, system, shape, tasks, &r, (long long)peak, !strcmp(shape, "spin") ? spin_iters : -1);
    }
    daskr_func_free(f_noop);
    daskr_func_free(f_sink);
    daskr_func_free(f_analyze);
    daskr_func_free(f_store);
    daskr_func_free(f_spin);
    daskr_func_free(f_blob);
    daskr_func_free(f_total);
    daskr_workers_shutdown();
    return 0;
}
