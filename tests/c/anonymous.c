/* Anonymous entries over the C ABI: a NULL key adds an entry reached only by its handle
 * (daskr_graph_get_task, daskr_graph_get_tasks); it has no key (daskr_graph_key and, inside
 * its task, daskr_call_key give NULL) and errors name it "#<index>". Pointer values held by
 * anonymous entries are released exactly once, with the graph. */
#include "check.h"

static void add(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t total = 0, x;
    for (size_t i = 0; i < daskr_call_nargs(call); i++)
        if (daskr_value_get_int(daskr_call_arg(call, i), &x)) total += x;
    daskr_call_return_int(call, total);
}

/* Returns 1 if the task has no key, 0 otherwise. */
static void keyless(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_call_return_int(call, daskr_call_key(call) == NULL);
}

static void boom(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_call_fail(call, "boom");
}

static const daskr_scheduler_t schedulers[] = {DASKR_SCHEDULER_SYNC, DASKR_SCHEDULER_THREADS,
                                               DASKR_SCHEDULER_PROCESSES};

static void chain_and_tree(daskr_func_t *f_add, daskr_func_t *f_keyless) {
    daskr_graph_t *g = daskr_graph_new();
    /* A chain of 1000 anonymous increments. */
    daskr_task_t prev;
    CHECK_OK(daskr_graph_add_value(g, NULL, daskr_value_int(0), &prev));
    for (int i = 1; i <= 1000; i++) {
        daskr_comp_t *a[] = {daskr_comp_ref_task(prev), daskr_comp_value(daskr_value_int(1))};
        CHECK_OK(daskr_graph_add_task(g, NULL, f_add, a, 2, NULL, NULL, 0, &prev));
    }
    CHECK(daskr_graph_key(g, prev) == NULL);
    /* A keyed entry over it, an anonymous list, and a task asking for its own key. */
    daskr_task_t keyed, list, who;
    daskr_comp_t *ka[] = {daskr_comp_ref_task(prev)};
    CHECK_OK(daskr_graph_add_task(g, "end", f_add, ka, 1, NULL, NULL, 0, &keyed));
    daskr_comp_t *items[] = {daskr_comp_ref_task(prev), daskr_comp_ref("end")};
    CHECK_OK(daskr_graph_add(g, NULL, daskr_comp_list(items, 2), &list));
    CHECK_OK(daskr_graph_add_task(g, NULL, f_keyless, NULL, 0, NULL, NULL, 0, &who));
    /* A pointer value held by an anonymous entry. */
    daskr_task_t held;
    CHECK_OK(daskr_graph_add_value(g, NULL, tracked_value(1), &held));
    CHECK(daskr_graph_len(g) == 1001 + 4);

    for (size_t s = 0; s < sizeof schedulers / sizeof *schedulers; s++) {
        daskr_get_options_t o = make_options(schedulers[s], 2);
        daskr_value_t *out = NULL;
        CHECK_OK(daskr_graph_get_task(g, prev, &o, &out));
        CHECK_INT(out, 1000);
        daskr_value_free(out);
        daskr_task_t want[] = {list, keyed, who, prev};
        out = NULL;
        CHECK_OK(daskr_graph_get_tasks(g, want, 4, &o, &out));
        CHECK(out && daskr_value_list_len(out) == 4);
        const daskr_value_t *pair = daskr_value_list_at(out, 0);
        CHECK(daskr_value_list_len(pair) == 2);
        CHECK_INT(daskr_value_list_at(pair, 0), 1000);
        CHECK_INT(daskr_value_list_at(pair, 1), 1000);
        CHECK_INT(daskr_value_list_at(out, 1), 1000);
        CHECK_INT(daskr_value_list_at(out, 2), 1);
        CHECK_INT(daskr_value_list_at(out, 3), 1000);
        daskr_value_free(out);
        /* The keyed entry is still reached by key. */
        out = NULL;
        CHECK_OK(daskr_graph_get_key(g, "end", &o, &out));
        CHECK_INT(out, 1000);
        daskr_value_free(out);
        /* No handles: an empty list. */
        out = NULL;
        CHECK_OK(daskr_graph_get_tasks(g, NULL, 0, &o, &out));
        CHECK(out && daskr_value_list_len(out) == 0);
        daskr_value_free(out);
    }
    /* The pointer, asked for on sync: handed back, and released once with the graph. */
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_SYNC, 1);
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_task(g, held, &o, &out));
    daskr_value_free(out);
    CHECK(atomic_load(&tracked_destroyed) == 0);
    daskr_graph_free(g);
    CHECK(atomic_load(&tracked_destroyed) == 1);
}

static void errors(daskr_func_t *f_boom) {
    daskr_graph_t *g = daskr_graph_new(), *other = daskr_graph_new();
    daskr_task_t first, bad, foreign, undefined;
    CHECK_OK(daskr_graph_add_value(g, "first", daskr_value_int(1), &first));
    daskr_comp_t *a[] = {daskr_comp_ref_task(first)};
    CHECK_OK(daskr_graph_add_task(g, NULL, f_boom, a, 1, NULL, NULL, 0, &bad));
    CHECK_OK(daskr_graph_add_value(other, NULL, daskr_value_int(3), &foreign));
    CHECK_OK(daskr_graph_handle(g, "later", &undefined));
    for (size_t s = 0; s < sizeof schedulers / sizeof *schedulers; s++) {
        daskr_get_options_t o = make_options(schedulers[s], 2);
        daskr_value_t *out = NULL;
        /* A failing anonymous task is named by its index (1: after "first"). */
        CHECK_ERR(daskr_graph_get_task(g, bad, &o, &out), DASKR_ERROR_TASK_FAILED, "#1");
        CHECK(out == NULL);
        CHECK_ERR(daskr_graph_get_task(g, foreign, &o, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
        CHECK_ERR(daskr_graph_get_task(g, undefined, &o, &out), DASKR_ERROR_MISSING_KEY, "later");
        daskr_task_t two[] = {first, foreign};
        CHECK_ERR(daskr_graph_get_tasks(g, two, 2, &o, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
        CHECK_ERR(daskr_graph_get_tasks(g, NULL, 1, &o, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
        CHECK(out == NULL);
    }
    /* A bad anonymous add: the error names the entry it would have been ("#3": index 2 is
     * "later"); what it was given is released. */
    daskr_comp_t *b[] = {daskr_comp_ref_task(foreign), daskr_comp_value(tracked_value(2))};
    CHECK_ERR(daskr_graph_add_task(g, NULL, f_boom, b, 2, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT, "#3");
    CHECK(atomic_load(&tracked_destroyed) == 2);
    CHECK_ERR(daskr_graph_add(g, NULL, NULL, NULL), DASKR_ERROR_INVALID_GRAPH, "#3");
    CHECK_ERR(daskr_graph_add_alias(g, NULL, "first", NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_graph_free(other);
    daskr_graph_free(g);
}

int main(void) {
    daskr_func_t *f_add = make_func("add", add, NULL);
    daskr_func_t *f_keyless = make_func("keyless", keyless, NULL);
    daskr_func_t *f_boom = make_func("boom", boom, NULL);
    chain_and_tree(f_add, f_keyless);
    errors(f_boom);
    daskr_func_free(f_add);
    daskr_func_free(f_keyless);
    daskr_func_free(f_boom);
    daskr_workers_shutdown();
    CHECK(tracked_live() == 0);
    return check_report("anonymous");
}
