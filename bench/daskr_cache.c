/*
 * The result cache's cost per task (docs/cache.md), through the C ABI:
 *
 *   daskr_cache [--quick] [--json] [--cold] [N] [threads]
 *
 * The graph: N cheap tasks leaf-i = inc(i) (a pure, versioned C function; small int results)
 * and one sink summing them. Each scenario is timed over the whole get (planning included;
 * building the graph not) and reported per task (N + 1):
 *
 *   no-cache     the get without a cache (the baseline)
 *   miss         with an empty cache: every task runs and is stored
 *   rerun        nothing changed: every hash is computed, only the sink is read
 *   one-changed  leaf 0's input changed: leaf 0 and the sink run, the other N - 1 are read
 *   read-all     the sink's version changed: the sink runs and all N leaves are read
 *
 * The target: a rerun of cheap tasks no slower than running them (rerun <= no-cache).
 * --cold runs each scenario in a process of its own (this program, run again with
 * --scenario NAME --dir DIR), so each pays what a program's first get pays (fresh memory);
 * without it they run one after another in this process.
 * N defaults to 1,000,000 (--quick: 20,000). The cache directory is made under $TMPDIR (or
 * /tmp) and removed at the end.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daskr.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void check(daskr_error_t *e) {
    if (e) {
        fprintf(stderr, "daskr_cache: %s\n", daskr_error_message(e));
        exit(1);
    }
}

static void inc(daskr_call_t *call, void *ud) {
    (void)ud;
    int64_t x = 0;
    daskr_value_get_int(daskr_call_arg(call, 0), &x);
    daskr_call_return(call, daskr_value_int(x + 1));
}

static void sum(daskr_call_t *call, void *ud) {
    (void)ud;
    int64_t s = 0;
    size_t n = daskr_call_nargs(call);
    for (size_t i = 0; i < n; i++) {
        int64_t x = 0;
        daskr_value_get_int(daskr_call_arg(call, i), &x);
        s += x;
    }
    daskr_call_return(call, daskr_value_int(s));
}

/* leaf-0's input is `first` (0, or N for one-changed). */
static daskr_graph_t *build(long n, const char *sink_version, long first) {
    daskr_func_t *f_inc = NULL, *f_sum = NULL;
    check(daskr_func_new_versioned("inc", inc, NULL, NULL, "1", DASKR_FUNC_PURE, &f_inc));
    check(daskr_func_new_versioned("sum", sum, NULL, NULL, sink_version, DASKR_FUNC_PURE, &f_sum));
    daskr_graph_t *g = daskr_graph_new();
    daskr_comp_t **leaves = malloc(sizeof *leaves * (size_t)n);
    char key[32];
    for (long i = 0; i < n; i++) {
        snprintf(key, sizeof key, "leaf-%ld", i);
        daskr_comp_t *arg = daskr_comp_value(daskr_value_int(i == 0 ? first : i));
        daskr_task_t t = 0;
        check(daskr_graph_add_task(g, key, f_inc, &arg, 1, NULL, NULL, 0, &t));
        leaves[i] = daskr_comp_ref_task(t);
    }
    daskr_task_t t = 0;
    check(daskr_graph_add_task(g, "sink", f_sum, leaves, (size_t)n, NULL, NULL, 0, &t));
    free(leaves);
    daskr_func_free(f_inc);
    daskr_func_free(f_sum);
    return g;
}

typedef struct {
    double seconds;
    daskr_stats_t stats;
} timing_t;

static timing_t run(const daskr_graph_t *g, const daskr_cache_t *cache, unsigned threads, int64_t want) {
    daskr_get_options_t o;
    daskr_get_options_init(&o, sizeof o);
    o.num_workers = threads;
    o.cache = cache;
    timing_t t;
    memset(&t, 0, sizeof t);
    o.stats = &t.stats;
    daskr_value_t *out = NULL;
    double start = now();
    check(daskr_graph_get_key(g, "sink", &o, &out));
    t.seconds = now() - start;
    int64_t got = 0;
    if (!daskr_value_get_int(out, &got) || got != want) {
        fprintf(stderr, "daskr_cache: wrong result %lld (want %lld)\n", (long long)got, (long long)want);
        exit(1);
    }
    daskr_value_free(out);
    return t;
}

static const char *const NAMES[] = {"no-cache", "miss", "rerun", "one-changed", "read-all"};
#define SCENARIOS 5

/* Scenario `k` in this process, with the cache in `dir`. */
static timing_t scenario(int k, long n, unsigned threads, const char *dir) {
    daskr_cache_t *cache = NULL;
    if (k > 0) check(daskr_cache_open(dir, &cache));
    long first = k == 3 ? n : 0;
    daskr_graph_t *g = build(n, k == 4 ? "2" : "1", first);
    int64_t want = (int64_t)n * (n + 1) / 2 + first;
    timing_t t = run(g, cache, threads, want);
    daskr_graph_free(g);
    if (cache) daskr_cache_free(cache);
    return t;
}

static void report(int k, long n, const timing_t *t, int json) {
    const daskr_stats_t *s = &t->stats;
    double tasks = (double)(n + 1);
    if (json) {
        printf("{\"bench\":\"cache\",\"scenario\":\"%s\",\"tasks\":%ld,\"threads\":%u,\"s\":%.6f,"
               "\"ns_per_task\":%.1f,\"entries_run\":%llu,\"hits\":%llu,\"misses\":%llu,"
               "\"bytes_read\":%llu,\"bytes_written\":%llu}\n",
               NAMES[k], n + 1, s->workers, t->seconds, t->seconds * 1e9 / tasks,
               (unsigned long long)s->entries_run, (unsigned long long)s->cache_hits,
               (unsigned long long)s->cache_misses, (unsigned long long)s->cache_bytes_read,
               (unsigned long long)s->cache_bytes_written);
    } else {
        printf("%-11s %8.1f ns/task  (%.3f s; %llu run, %llu hits, %llu misses, %llu B read, %llu B written)\n",
               NAMES[k], t->seconds * 1e9 / tasks, t->seconds, (unsigned long long)s->entries_run,
               (unsigned long long)s->cache_hits, (unsigned long long)s->cache_misses,
               (unsigned long long)s->cache_bytes_read, (unsigned long long)s->cache_bytes_written);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    int quick = 0, json = 0, cold = 0, only = -1;
    const char *given_dir = NULL;
    long n = -1;
    unsigned threads = 0;
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--cold")) cold = 1;
        else if (!strcmp(argv[i], "--scenario") && i + 1 < argc) {
            const char *name = argv[++i];
            for (int k = 0; k < SCENARIOS; k++)
                if (!strcmp(name, NAMES[k])) only = k;
            if (only < 0) {
                fprintf(stderr, "daskr_cache: no scenario '%s'\n", name);
                return 2;
            }
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) given_dir = argv[++i];
        else if (positional++ == 0) n = atol(argv[i]);
        else threads = (unsigned)atoi(argv[i]);
    }
    if (n < 0) n = quick ? 20000 : 1000000;
    if (only >= 0) {
        /* One scenario, in a process of its own (--cold). */
        if (!given_dir) {
            fprintf(stderr, "daskr_cache: --scenario needs --dir\n");
            return 2;
        }
        timing_t t = scenario(only, n, threads, given_dir);
        report(only, n, &t, json);
        return 0;
    }

    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/daskr-cache-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    timing_t t[SCENARIOS];
    for (int k = 0; k < SCENARIOS; k++) {
        if (cold) {
            char cmd[8400];
            snprintf(cmd, sizeof cmd, "'%s' --scenario %s --dir '%s' %s%ld %u", argv[0], NAMES[k], dir,
                     json ? "--json " : "", n, threads);
            if (system(cmd) != 0) {
                fprintf(stderr, "daskr_cache: '%s' failed\n", cmd);
                return 1;
            }
        } else {
            t[k] = scenario(k, n, threads, dir);
            report(k, n, &t[k], json);
        }
    }
    daskr_cache_t *cache = NULL;
    check(daskr_cache_open(dir, &cache));
    uint64_t entries = 0, bytes = 0;
    daskr_cache_usage(cache, &entries, &bytes);
    if (!json) {
        printf("cache: %llu entries, %llu bytes (%.1f bytes an entry)", (unsigned long long)entries,
               (unsigned long long)bytes, entries ? (double)bytes / (double)entries : 0.0);
        if (!cold)
            printf("; rerun vs no-cache: %.2fx (target <= 1.00: %s)", t[2].seconds / t[0].seconds,
                   t[2].seconds <= t[0].seconds ? "met" : "missed");
        printf("\n");
    }
    check(daskr_cache_clear(cache));
    daskr_cache_free(cache);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
