/* A large graph built through the C ABI, the way a C program would: `chains` chains of
 * 10,000 tasks each (every task adds 1 to the one before it, referred to by handle) and one
 * task summing the chains' tips, computed with the threads scheduler. Prints the resident
 * memory the graph took per entry, and the peak resident set of the whole run.
 *
 * Scale: DASKR_SCALE_TASKS entries (about; rounded to whole chains): 100,000 by default (a
 * second in a debug build), 20,000 under DASKR_C_CHECK (valgrind / asan). `make test-scale`
 * runs 10,000,000 in a release build. Nothing here is timed: the figures are printed. */
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define CHAIN 10000

/* add(x, y...): the sum of its int arguments. */
static void add(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t total = 0, x;
    for (size_t i = 0, n = daskr_call_nargs(call); i < n; i++)
        if (daskr_value_get_int(daskr_call_arg(call, i), &x)) total += x;
    daskr_call_return_int(call, total);
}

/* This process's resident set now, in bytes (/proc/self/statm). */
static long resident(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void) {
    const char *env = getenv("DASKR_SCALE_TASKS");
    long want = env ? atol(env) : (check_slow_mode() ? 20000 : 100000);
    long chains = want / CHAIN > 0 ? want / CHAIN : 1;

    daskr_func_t *f = NULL;
    CHECK_OK(daskr_func_new("add", add, NULL, NULL, &f));
    if (!f) return 1;
    long before = resident();
    double t0 = now();
    daskr_graph_t *g = daskr_graph_new();
    daskr_task_t *tips = malloc(sizeof(daskr_task_t) * (size_t)chains);
    char key[64];
    for (long c = 0; c < chains && check_failures == 0; c++) {
        daskr_task_t prev;
        snprintf(key, sizeof key, "%ld-0", c);
        CHECK_OK(daskr_graph_add_value(g, key, daskr_value_int(0), &prev));
        for (long i = 1; i < CHAIN; i++) {
            daskr_comp_t *args[2] = {daskr_comp_ref_task(prev), daskr_comp_value(daskr_value_int(1))};
            snprintf(key, sizeof key, "%ld-%ld", c, i);
            daskr_error_t *e = daskr_graph_add_task(g, key, f, args, 2, NULL, NULL, 0, &prev);
            if (e) {
                CHECK_OK(e);
                break;
            }
        }
        tips[c] = prev;
    }
    daskr_comp_t **args = malloc(sizeof(daskr_comp_t *) * (size_t)chains);
    for (long c = 0; c < chains; c++) args[c] = daskr_comp_ref_task(tips[c]);
    CHECK_OK(daskr_graph_add_task(g, "total", f, args, (size_t)chains, NULL, NULL, 0, NULL));
    free(args);
    free(tips);
    daskr_func_free(f);
    size_t entries = daskr_graph_len(g);
    CHECK(entries == (size_t)(chains * CHAIN + 1));
    double built = now() - t0;
    long graph_bytes = resident() - before;

    daskr_get_options_t opts;
    daskr_get_options_init(&opts, sizeof opts);
    opts.scheduler = DASKR_SCHEDULER_THREADS;
    opts.num_workers = 2;
    daskr_value_t *out = NULL;
    t0 = now();
    CHECK_OK(daskr_graph_get_key(g, "total", &opts, &out));
    double ran = now() - t0;
    int64_t total = -1;
    CHECK(out && daskr_value_get_int(out, &total) && total == chains * (CHAIN - 1));
    daskr_value_free(out);
    daskr_graph_free(g);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("scale (C API): %zu entries; graph %ld bytes resident = %.1f bytes per entry; "
           "built in %.2f s, ran in %.2f s; peak resident set %ld bytes = %.1f bytes per entry\n",
           entries, graph_bytes, (double)graph_bytes / (double)entries, built, ran,
           ru.ru_maxrss * 1024L, (double)ru.ru_maxrss * 1024.0 / (double)entries);
    return check_report("scale");
}
