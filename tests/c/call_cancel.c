/* daskr_call_cancel / daskr_call_cancelled: a task finds its own get's cancel switch (the one
 * the options gave, under sync and threads, in a nested get too), sees it triggered, and can
 * trigger it to stop the whole get. */
#include "check.h"

/* Returns whether daskr_call_cancel gave the switch passed as user data (NULL: none). */
static void which_switch(daskr_call_t *call, void *user_data) {
    daskr_call_return_bool(call, daskr_call_cancel(call) == (const daskr_cancel_t *)user_data);
}

/* Triggers its get's switch, then reports whether the call sees it triggered. */
static atomic_int saw_cancelled;
static void stop_my_get(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const daskr_cancel_t *mine = daskr_call_cancel(call);
    CHECK(mine != NULL);
    CHECK(!daskr_call_cancelled(call));
    daskr_cancel_trigger(mine);
    if (daskr_call_cancelled(call)) atomic_fetch_add(&saw_cancelled, 1);
    daskr_call_return_int(call, 1);
}

/* Runs a get of "inner" (on the graph in user data) with a switch of its own, and returns
 * whether the inner task saw that switch and, after the get, this task sees its own again. */
static daskr_cancel_t *inner_cancel;
static void nested(daskr_call_t *call, void *user_data) {
    const daskr_cancel_t *outer = daskr_call_cancel(call);
    daskr_get_options_t o;
    daskr_get_options_init(&o, sizeof o);
    o.cancel = inner_cancel;
    daskr_value_t *out = NULL;
    daskr_error_t *e = daskr_graph_get_key((const daskr_graph_t *)user_data, "inner", &o, &out);
    bool inner_ok = false;
    if (!e) daskr_value_get_bool(out, &inner_ok);
    daskr_error_free(e);
    daskr_value_free(out);
    daskr_call_return_bool(call, inner_ok && outer != NULL && daskr_call_cancel(call) == outer);
}

static bool get_bool(daskr_graph_t *g, const char *key, daskr_scheduler_t s, const daskr_cancel_t *c) {
    daskr_get_options_t o;
    daskr_get_options_init(&o, sizeof o);
    o.scheduler = s;
    o.num_workers = 2;
    o.cancel = c;
    daskr_value_t *out = NULL;
    bool b = false;
    CHECK_OK(daskr_graph_get_key(g, key, &o, &out));
    CHECK(daskr_value_get_bool(out, &b));
    daskr_value_free(out);
    return b;
}

int main(void) {
    CHECK(daskr_call_cancel(NULL) == NULL);
    CHECK(!daskr_call_cancelled(NULL));
    daskr_cancel_t *cancel = daskr_cancel_new();
    inner_cancel = daskr_cancel_new();
    const daskr_scheduler_t scheds[] = {DASKR_SCHEDULER_SYNC, DASKR_SCHEDULER_THREADS};
    for (int i = 0; i < 2; i++) {
        daskr_graph_t *g = daskr_graph_new();
        daskr_func_t *with = NULL, *without = NULL, *stop = NULL, *nest = NULL, *inner = NULL;
        CHECK_OK(daskr_func_new("with", which_switch, cancel, NULL, &with));
        CHECK_OK(daskr_func_new("without", which_switch, NULL, NULL, &without));
        CHECK_OK(daskr_func_new("stop", stop_my_get, NULL, NULL, &stop));
        CHECK_OK(daskr_func_new("nested", nested, g, NULL, &nest));
        CHECK_OK(daskr_func_new("inner", which_switch, inner_cancel, NULL, &inner));
        CHECK_OK(daskr_graph_add_task(g, "with", with, NULL, 0, NULL, NULL, 0, NULL));
        CHECK_OK(daskr_graph_add_task(g, "without", without, NULL, 0, NULL, NULL, 0, NULL));
        CHECK_OK(daskr_graph_add_task(g, "nested", nest, NULL, 0, NULL, NULL, 0, NULL));
        CHECK_OK(daskr_graph_add_task(g, "inner", inner, NULL, 0, NULL, NULL, 0, NULL));
        /* "after" needs "stop": once stop has cancelled the get, after never runs. */
        CHECK_OK(daskr_graph_add_task(g, "stop", stop, NULL, 0, NULL, NULL, 0, NULL));
        daskr_comp_t *args[] = {daskr_comp_ref("stop")};
        CHECK_OK(daskr_graph_add_task(g, "after", with, args, 1, NULL, NULL, 0, NULL));

        CHECK(get_bool(g, "with", scheds[i], cancel));
        CHECK(get_bool(g, "without", scheds[i], NULL));
        CHECK(get_bool(g, "nested", scheds[i], cancel));

        daskr_get_options_t o;
        daskr_get_options_init(&o, sizeof o);
        o.scheduler = scheds[i];
        o.cancel = cancel;
        daskr_value_t *out = NULL;
        atomic_store(&saw_cancelled, 0);
        CHECK_ERR(daskr_graph_get_key(g, "after", &o, &out), DASKR_ERROR_CANCELLED, NULL);
        CHECK(out == NULL);
        CHECK(atomic_load(&saw_cancelled) == 1);
        CHECK(daskr_cancel_is_triggered(cancel));
        daskr_cancel_reset(cancel);

        daskr_func_free(with);
        daskr_func_free(without);
        daskr_func_free(stop);
        daskr_func_free(nest);
        daskr_func_free(inner);
        daskr_graph_free(g);
    }
    daskr_cancel_free(cancel);
    daskr_cancel_free(inner_cancel);
    return check_report("call_cancel");
}
