/* A C program built against an installed daskr: 'y' = inc('x'), 'x' = 41. */
#include <stdio.h>

#include <daskr.h>

static void inc(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t x;
    if (!daskr_value_get_int(daskr_call_arg(call, 0), &x)) {
        daskr_call_fail(call, "inc: expected an int");
        return;
    }
    daskr_call_return_int(call, x + 1);
}

int main(void) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = NULL;
    daskr_value_t *y = NULL;
    daskr_task_t x;
    int64_t v = 0;
    if (daskr_func_new("inc", inc, NULL, NULL, &f) || daskr_graph_add_value(g, "x", daskr_value_int(41), &x)) return 1;
    daskr_comp_t *args[] = {daskr_comp_ref_task(x)};
    if (daskr_graph_add_task(g, "y", f, args, 1, NULL, NULL, 0, NULL)) return 1;
    daskr_error_t *err = daskr_graph_get_key(g, "y", NULL, &y);
    if (err || !daskr_value_get_int(y, &v) || v != 42) return 1;
    printf("C consumer: y = %lld (daskr %s)\n", (long long)v, daskr_version());
    daskr_value_free(y);
    daskr_func_free(f);
    daskr_graph_free(g);
    return 0;
}
