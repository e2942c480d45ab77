/*
 * The benchmark's no-op task bodies — each reads its args and returns a small int — shared by
 * the C runner (bench/daskr_c.c, as static functions) and the no-op plugin the distributed
 * rows run (bench/plugin_noop.c, exported). Define BENCH_TASK before including this header
 * to choose the functions' storage class (default: static).
 */
#ifndef DASKR_BENCH_TASKS_H
#define DASKR_BENCH_TASKS_H

#include <stdint.h>

#include "daskr.h"

#ifndef BENCH_TASK
#define BENCH_TASK static
#endif

/* noop(x, ...): 1 + the low bits of its int args, & 7. */
BENCH_TASK void noop(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t total = 1, x;
    size_t n = daskr_call_nargs(call);
    for (size_t i = 0; i < n; i++)
        if (daskr_value_get_int(daskr_call_arg(call, i), &x)) total += x & 1;
    daskr_call_return_int(call, total & 7);
}

/* sink(list): the list's length & 7. */
BENCH_TASK void sink(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *list = daskr_call_arg(call, 0);
    daskr_call_return_int(call, (int64_t)(daskr_value_list_len(list) & 7));
}

/* analyze(list, method=...) and store(x, to=...): read their args and kwarg like the seed's. */
BENCH_TASK void analyze(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_value_t *list = daskr_call_arg(call, 0);
    const char *method = "mean";
    daskr_value_get_string(daskr_call_kwarg(call, "method"), &method, NULL);
    int64_t total = 0, x;
    for (size_t i = 0, n = daskr_value_list_len(list); i < n; i++)
        if (daskr_value_get_int(daskr_value_list_at(list, i), &x)) total += x;
    daskr_call_return_int(call, (total + method[0]) & 7);
}

BENCH_TASK void store(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *to = "stdout";
    int64_t x = 0;
    daskr_value_get_string(daskr_call_kwarg(call, "to"), &to, NULL);
    daskr_value_get_int(daskr_call_arg(call, 0), &x);
    daskr_call_return_int(call, (x + to[0]) & 7);
}

#endif
