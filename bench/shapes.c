/*
 * Build + run cost per task through the C ABI, on the benchmark shapes (no-op task bodies that
 * read their args and return a small int). Usage: shapes [N] [threads] [shape...]
 * Each shape is built and run ROUNDS times (env, default 5); prints the round with the median
 * total: build and run ns per task, peak results held.
 */
#define _POSIX_C_SOURCE 199309L
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daskr.h"

static void noop(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t total = 1, x;
    size_t n = daskr_call_nargs(call);
    for (size_t i = 0; i < n; i++)
        if (daskr_value_get_int(daskr_call_arg(call, i), &x)) total += x & 1;
    daskr_call_return_int(call, total & 7);
}

static void sink(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *list = daskr_call_arg(call, 0);
    daskr_call_return_int(call, (int64_t)daskr_value_list_len(list));
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void ok(daskr_error_t *e) {
    if (e) {
        fprintf(stderr, "error: %s\n", daskr_error_message(e));
        exit(1);
    }
}

static daskr_func_t *f_noop, *f_sink;

static daskr_task_t add(daskr_graph_t *g, const char *prefix, long i, long j, daskr_comp_t **args, size_t n) {
    char key[48];
    if (j >= 0) snprintf(key, sizeof key, "%s-%ld-%ld", prefix, i, j);
    else snprintf(key, sizeof key, "%s-%ld", prefix, i);
    daskr_task_t t;
    ok(daskr_graph_add_task(g, key, f_noop, args, n, NULL, NULL, 0, &t));
    return t;
}

/* Builds the shape; returns the key to request. */
static const char *build(daskr_graph_t *g, const char *shape, long n, long *tasks) {
    if (!strcmp(shape, "chain")) {
        daskr_task_t prev = add(g, "chain", 0, -1, NULL, 0);
        for (long i = 1; i < n; i++) {
            daskr_comp_t *a[] = {daskr_comp_ref_task(prev)};
            prev = add(g, "chain", i, -1, a, 1);
        }
        *tasks = n;
        static char last[48];
        snprintf(last, sizeof last, "chain-%ld", n - 1);
        return last;
    }
    if (!strcmp(shape, "independent")) {
        daskr_comp_t **refs = malloc(n * sizeof *refs);
        for (long i = 0; i < n; i++) refs[i] = daskr_comp_ref_task(add(g, "ind", i, -1, NULL, 0));
        daskr_comp_t *a[] = {daskr_comp_list(refs, n)};
        free(refs);
        ok(daskr_graph_add_task(g, "sink", f_sink, a, 1, NULL, NULL, 0, NULL));
        *tasks = n + 1;
        return "sink";
    }
    if (!strcmp(shape, "tree")) {
        daskr_task_t *level = malloc(n * sizeof *level);
        long width = n, depth = 0, total = n;
        for (long i = 0; i < n; i++) level[i] = add(g, "leaf", i, -1, NULL, 0);
        while (width > 1) {
            depth++;
            long w = 0;
            for (long i = 0; i + 1 < width; i += 2) {
                daskr_comp_t *a[] = {daskr_comp_ref_task(level[i]), daskr_comp_ref_task(level[i + 1])};
                level[w++] = add(g, "sum", depth, i / 2, a, 2);
            }
            if (width & 1) level[w++] = level[width - 1];
            total += width / 2;
            width = w;
        }
        *tasks = total;
        static char root[48];
        strcpy(root, daskr_graph_key(g, level[0]));
        free(level);
        return root;
    }
    if (!strcmp(shape, "wavefront")) {
        long side = (long)sqrt((double)n);
        daskr_task_t *row = malloc(side * sizeof *row);
        for (long i = 0; i < side; i++) {
            for (long j = 0; j < side; j++) {
                daskr_comp_t *a[2];
                size_t k = 0;
                if (j > 0) a[k++] = daskr_comp_ref_task(row[j - 1]);
                if (i > 0) a[k++] = daskr_comp_ref_task(row[j]);
                row[j] = add(g, "wave", i, j, a, k);
            }
        }
        free(row);
        *tasks = side * side;
        static char last[48];
        snprintf(last, sizeof last, "wave-%ld-%ld", side - 1, side - 1);
        return last;
    }
    fprintf(stderr, "unknown shape %s\n", shape);
    exit(2);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    const char *all[] = {"independent", "chain", "tree", "wavefront"};
    const char **shapes = argc > 3 ? (const char **)argv + 3 : all;
    int nshapes = argc > 3 ? argc - 3 : 4;
    ok(daskr_func_new("noop", noop, NULL, NULL, &f_noop));
    ok(daskr_func_new("sink", sink, NULL, NULL, &f_sink));
    int rounds = getenv("ROUNDS") ? atoi(getenv("ROUNDS")) : 5;
    if (rounds < 1) rounds = 1;
    for (int s = 0; s < nshapes; s++) {
      double totals[64][5];
      long tasks = 0;
      uint64_t peak = 0;
      unsigned workers = 0;
      if (rounds > 64) rounds = 64;
      for (int r = 0; r < rounds; r++) {
        double t0 = now();
        daskr_graph_t *g = daskr_graph_new();
        const char *key = build(g, shapes[s], n, &tasks);
        double t1 = now();
        daskr_stats_t st;
        daskr_get_options_t o;
        daskr_get_options_init(&o);
        o.num_workers = threads;
        o.stats = &st;
        daskr_value_t *out;
        ok(daskr_graph_get_key(g, key, &o, &out));
        double t2 = now();
        daskr_value_free(out);
        daskr_graph_free(g);
        double t3 = now();
        totals[r][0] = (t2 - t0) * 1e9 / tasks;
        totals[r][1] = (t1 - t0) * 1e9 / tasks;
        totals[r][2] = (t2 - t1) * 1e9 / tasks;
        totals[r][3] = st.plan_ns / (double)tasks;
        totals[r][4] = (t3 - t2) * 1e9 / tasks;
        peak = st.peak_held;
        workers = st.workers;
      }
      /* the round with the median build+run */
      int order[64];
      for (int r = 0; r < rounds; r++) order[r] = r;
      for (int a = 0; a < rounds; a++)
          for (int b = a + 1; b < rounds; b++)
              if (totals[order[b]][0] < totals[order[a]][0]) { int t = order[a]; order[a] = order[b]; order[b] = t; }
      double *m = totals[order[rounds / 2]];
      printf("%-12s tasks=%ld threads=%u build+run=%.0f ns/task (build %.0f, run %.0f incl. plan %.0f; free %.0f) peak_held=%" PRIu64 "\n",
             shapes[s], tasks, workers, m[0], m[1], m[2], m[3], m[4], peak);
    }
    daskr_func_free(f_noop);
    daskr_func_free(f_sink);
    return 0;
}
