/* The smallest end-to-end use of the C ABI: build, get, free. */
#include "check.h"

static void inc(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t x;
    if (!daskr_value_get_int(daskr_call_arg(call, 0), &x)) {
        daskr_call_fail(call, "inc: argument 0 must be an int");
        return;
    }
    daskr_call_return_int(call, x + 1);
}

int main(void) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = NULL;
    CHECK_OK(daskr_func_new("inc", inc, NULL, NULL, &f));
    daskr_task_t x, y;
    CHECK_OK(daskr_graph_add_value(g, "x", daskr_value_int(41), &x));
    daskr_comp_t *args[] = {daskr_comp_ref_task(x)};
    CHECK_OK(daskr_graph_add_task(g, "y", f, args, 1, NULL, NULL, 0, &y));
    daskr_func_free(f);
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "y", NULL, &out));
    int64_t v = 0;
    CHECK(daskr_value_get_int(out, &v) && v == 42);
    daskr_value_free(out);
    daskr_graph_free(g);
    return check_report("smoke");
}
