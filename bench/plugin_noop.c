/*
 * The benchmark's no-op tasks as a daskr plugin, for the graph files the distributed rows run
 * (bench/distributed_bench.py): the same bodies as bench/daskr_c.c's — read the args, return
 * a small int — plus sleep_ms and spin_ms for the "few large tasks" check.
 *
 *   cc -std=c11 -O2 -shared -fPIC -Iinclude -Ibench bench/plugin_noop.c -o target/bench/libbench_noop.so
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>

#include "daskr.h"

#define EXPORT __attribute__((visibility("default")))

#define BENCH_TASK EXPORT
#include "bench_tasks.h"

/* spin_ms(ms): burns ms milliseconds of this thread's CPU time, returns ms. */
EXPORT void spin_ms(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t ms;
    if (!daskr_value_get_int(daskr_call_arg(call, 0), &ms) || ms < 0 || ms > 600000) {
        daskr_call_fail(call, "spin_ms: expected milliseconds (0 .. 600000)");
        return;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    volatile uint64_t sink_ = 0;
    do {
        for (int i = 0; i < 10000; i++) sink_ += (uint64_t)i;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
    daskr_call_return_int(call, ms);
}

/* sleep_ms(ms): sleeps ms milliseconds, returns ms: a large task that needs no CPU, so that
 * spreading is measured apart from what else runs on a shared machine's cores. */
EXPORT void sleep_ms(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t ms;
    if (!daskr_value_get_int(daskr_call_arg(call, 0), &ms) || ms < 0 || ms > 600000) {
        daskr_call_fail(call, "sleep_ms: expected milliseconds (0 .. 600000)");
        return;
    }
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    daskr_call_return_int(call, ms);
}

static const daskr_plugin_task_t TASKS[] = {
    {"noop", "noop(x, ...): 1 + the low bits of its int args, & 7"},
    {"sink", "sink(list): the list's length & 7"},
    {"analyze", "analyze(list, method=): the sum of the list plus method[0], & 7"},
    {"store", "store(x, to=): x + to[0], & 7"},
    {"spin_ms", "spin_ms(ms): burns ms milliseconds of CPU, returns ms"},
    {"sleep_ms", "sleep_ms(ms): sleeps ms milliseconds, returns ms"},
};

static const daskr_plugin_info_t INFO = {
    DASKR_ABI_VERSION, "bench_noop", "1.0.0", TASKS, sizeof TASKS / sizeof TASKS[0],
};

EXPORT const daskr_plugin_info_t *daskr_plugin_info(void) {
    return &INFO;
}
