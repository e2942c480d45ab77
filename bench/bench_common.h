/*
 * Shared by the native benchmark runners (daskr_c.c, daskr_cpp.cpp, tbb_flow.cpp): the command
 * line, timing, RSS, medians, fast key formatting, the shapes' sizes, the ~1 ms spin body and
 * the JSON row every runner prints. Plain C that also compiles as C++.
 *
 * Command line of every runner (the same as the old bench/shapes.c, plus options):
 *
 *   runner [--json] [--rounds R] [--spin-iters K] [--calibrate] [N] [threads] [shape...]
 *
 *   N        tasks per shape (default 1,000,000); threads: 0 = all cores (default)
 *   shapes   independent chain tree wavefront pipeline (default: all five), and spin
 *            (N tasks that each spin ~1 ms of CPU, independent shape; see --spin-iters)
 *   --json   one JSON object per line per shape, the schema of target/bench/compare.json
 *   --rounds R  build+run each shape R times (default: env ROUNDS, else 5); medians reported
 *   --calibrate print the spin iterations that take ~1 ms of thread CPU time, and exit
 *
 * What a row holds: build_s (graph construction through the public API, keys and all) and
 * run_s (the get/run until the result is back) are medians over the rounds; ns_per_task is the
 * median over rounds of (build+run)/tasks; free_s the median time to free the result and the
 * graph; bytes_per_task the RSS growth from before building to after the run (before freeing),
 * measured in round 0 only, which runs first in a fresh process (later rounds reuse freed
 * memory); peak_held the most results alive at once as the system reports it, the maximum
 * over the rounds (null if it cannot tell). Per round: build_rounds_s and run_rounds_s list
 * every round in order; cold_ns_per_task is round 0's (build+run)/tasks — the first graph of a
 * fresh process, which pays for fresh memory and starting threads — and warm_ns_per_task the
 * median of the later rounds' (null with one round).
 */
#ifndef DASKR_BENCH_COMMON_H
#define DASKR_BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_ROUNDS 64
#define BENCH_GROUP 100 /* pipeline: analyze runs over groups of this many files */

typedef struct {
    int json;
    int rounds;
    long n;
    unsigned threads; /* resolved: never 0 */
    long spin_iters;
    int calibrate;
    int nshapes;
    const char *shapes[16];
} bench_args_t;

static const char *const bench_all_shapes[] = {"independent", "chain", "tree", "wavefront", "pipeline"};

static inline double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline double bench_thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Resident set size in bytes (/proc/self/statm), or -1. */
static inline long bench_rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n values (sorts a copy); the mean of the two middle ones for even n. */
static inline double bench_median(const double *x, int n) {
    double tmp[BENCH_MAX_ROUNDS];
    if (n <= 0) return 0.0;
    memcpy(tmp, x, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, bench_cmp_double);
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

/* "<prefix>-<i>" or "<prefix>-<i>-<j>" (j >= 0) into buf (>= 64 bytes), without printf. */
static inline const char *bench_key(char *buf, const char *prefix, long i, long j) {
    size_t p = strlen(prefix);
    memcpy(buf, prefix, p);
    long parts[2] = {i, j};
    for (int k = 0; k < (j >= 0 ? 2 : 1); k++) {
        char digits[24];
        int d = 0;
        unsigned long v = (unsigned long)parts[k];
        do {
            digits[d++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        buf[p++] = '-';
        while (d) buf[p++] = digits[--d];
    }
    buf[p] = 0;
    return buf;
}

/* Shape sizes, identical in every runner (and in dask_bench.py). */
static inline long bench_wave_side(long n) {
    long s = (long)sqrt((double)n);
    while ((s + 1) * (s + 1) <= n) s++;
    while (s * s > n) s--;
    return s < 1 ? 1 : s;
}
static inline long bench_pipeline_files(long n) { return n / 3 < 1 ? 1 : n / 3; }
static inline long bench_pipeline_groups(long n) { return (bench_pipeline_files(n) + BENCH_GROUP - 1) / BENCH_GROUP; }

/* The ~1 ms task body: `iters` dependent multiply-adds (not optimisable away). */
static inline uint64_t bench_spin(long iters, uint64_t x) {
    for (long i = 0; i < iters; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

/* Iterations of bench_spin that take ~1 ms of this thread's CPU time (median of 7 tries). */
static inline long bench_calibrate_spin(void) {
    const long probe = 2000000;
    double per[7];
    volatile uint64_t sink = 0;
    for (int t = 0; t < 7; t++) {
        double c0 = bench_thread_cpu();
        sink = sink + bench_spin(probe, (uint64_t)t); /* not +=: C++20 deprecates it on volatile */
        per[t] = (bench_thread_cpu() - c0) / (double)probe;
    }
    (void)sink;
    double s = bench_median(per, 7);
    return s > 0 ? (long)(1e-3 / s) : probe;
}

static inline void bench_usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--json] [--rounds R] [--spin-iters K] [--calibrate] [N] [threads] [shape...]\n"
            "shapes: independent chain tree wavefront pipeline spin\n",
            argv0);
    exit(2);
}

static inline void bench_parse(int argc, char **argv, bench_args_t *a) {
    memset(a, 0, sizeof *a);
    a->n = 1000000;
    a->rounds = getenv("ROUNDS") ? atoi(getenv("ROUNDS")) : 5;
    a->spin_iters = -1;
    long threads = 0;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--json")) a->json = 1;
        else if (!strcmp(s, "--calibrate")) a->calibrate = 1;
        else if (!strcmp(s, "--rounds") && i + 1 < argc) a->rounds = atoi(argv[++i]);
        else if (!strcmp(s, "--spin-iters") && i + 1 < argc) a->spin_iters = atol(argv[++i]);
        else if (s[0] == '-') bench_usage(argv[0]);
        else if (pos == 0) a->n = atol(s), pos++;
        else if (pos == 1) threads = atol(s), pos++;
        else if (a->nshapes < 16) a->shapes[a->nshapes++] = s;
    }
    if (a->rounds < 1) a->rounds = 1;
    if (a->rounds > BENCH_MAX_ROUNDS) a->rounds = BENCH_MAX_ROUNDS;
    if (a->n < 1) a->n = 1;
    if (threads <= 0) threads = sysconf(_SC_NPROCESSORS_ONLN);
    a->threads = threads > 0 ? (unsigned)threads : 1u;
    if (a->nshapes == 0)
        for (int s = 0; s < 5; s++) a->shapes[a->nshapes++] = bench_all_shapes[s];
}

/* Per-round measurements of one shape. */
typedef struct {
    int rounds;
    double build[BENCH_MAX_ROUNDS], run[BENCH_MAX_ROUNDS], total[BENCH_MAX_ROUNDS], freed[BENCH_MAX_ROUNDS];
    long rss_before, rss_after; /* round 0 */
} bench_rounds_t;

/* Prints one row: JSON (--json) or a line for people. peak_held < 0 prints null. */
static inline void bench_emit(const bench_args_t *a, const char *system, const char *shape, long tasks,
                              const bench_rounds_t *r, long long peak_held, long spin_iters) {
    double build = bench_median(r->build, r->rounds), run = bench_median(r->run, r->rounds);
    double total = bench_median(r->total, r->rounds), freed = bench_median(r->freed, r->rounds);
    double ns = total * 1e9 / (double)tasks;
    int have_rss = r->rss_before >= 0 && r->rss_after >= 0;
    double bpt = have_rss ? (double)(r->rss_after - r->rss_before) / (double)tasks : 0.0;
    if (a->json) {
        printf("{\"system\": \"%s\", \"shape\": \"%s\", \"threads\": %u, \"tasks\": %ld, \"build_s\": %.9f, "
               "\"run_s\": %.9f, \"ns_per_task\": %.3f, \"peak_held\": ",
               system, shape, a->threads, tasks, build, run, ns);
        if (peak_held >= 0) printf("%lld", peak_held);
        else printf("null");
        printf(", \"bytes_per_task\": ");
        if (have_rss) printf("%.1f", bpt);
        else printf("null");
        printf(", \"free_s\": %.9f, \"rounds\": %d, \"n\": %ld", freed, r->rounds, a->n);
        /* Per round, in order: round 0 is the process's first graph (cold), the later rounds
         * reuse what it freed (warm); compare.py takes cold and warm from these. */
        printf(", \"cold_ns_per_task\": %.3f, \"warm_ns_per_task\": ", r->total[0] * 1e9 / (double)tasks);
        if (r->rounds > 1) printf("%.3f", bench_median(r->total + 1, r->rounds - 1) * 1e9 / (double)tasks);
        else printf("null");
        const double *lists[2] = {r->build, r->run};
        const char *names[2] = {"build_rounds_s", "run_rounds_s"};
        for (int l = 0; l < 2; l++) {
            printf(", \"%s\": [", names[l]);
            for (int k = 0; k < r->rounds; k++) printf("%s%.9f", k ? ", " : "", lists[l][k]);
            printf("]");
        }
        if (spin_iters >= 0) printf(", \"spin_iters\": %ld", spin_iters);
        printf("}\n");
    } else {
        printf("%-9s %-12s tasks=%ld threads=%u build+run=%.0f ns/task (build %.0f, run %.0f; free %.0f) "
               "peak_held=%lld rss=%.0f B/task\n",
               system, shape, tasks, a->threads, ns, build * 1e9 / (double)tasks, run * 1e9 / (double)tasks,
               freed * 1e9 / (double)tasks, peak_held, bpt);
    }
    fflush(stdout);
}

#endif
