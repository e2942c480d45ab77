/* Freeing a graph while gets on it run (from other threads, or from inside one of its own
 * tasks) is deferred: the running gets finish with their results, every new call is refused,
 * and the graph's destructors run exactly once, when the last get returns. Run under
 * valgrind by `make test-c-memcheck`: no access to freed memory. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "check.h"

/* A gate the tasks wait at, so the free happens while they run. */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    int waiting;
    int open;
} gate_t;

static gate_t gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

/* waits(x): waits at the gate, then returns the tracked id of x plus one. */
static void waits(daskr_call_t *call, void *user_data) {
    (void)user_data;
    pthread_mutex_lock(&gate.m);
    gate.waiting++;
    pthread_cond_broadcast(&gate.c);
    while (!gate.open) pthread_cond_wait(&gate.c, &gate.m);
    pthread_mutex_unlock(&gate.m);
    daskr_call_return_int(call, tracked_id(daskr_call_arg(call, 0)) + 1);
}

typedef struct {
    daskr_graph_t *g;
    const char *key;
    int64_t result;
    int failed;
} getter_t;

static void *get_in_thread(void *arg) {
    getter_t *t = arg;
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_THREADS, 2);
    daskr_value_t *r = NULL;
    daskr_error_t *e = daskr_graph_get_key(t->g, t->key, &o, &r);
    if (e) {
        check_print_error("get_in_thread", e);
        daskr_error_free(e);
        t->failed = 1;
        return NULL;
    }
    if (!daskr_value_get_int(r, &t->result)) t->failed = 1;
    daskr_value_free(r);
    return NULL;
}

static void free_while_other_threads_get(void) {
    long freed_before = atomic_load(&userdata_freed);
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = make_func("waits", waits, NULL);
    CHECK_OK(daskr_graph_add_value(g, "x", tracked_value(41), NULL));
    daskr_comp_t *a1[] = {daskr_comp_ref("x")}, *a2[] = {daskr_comp_ref("x")};
    CHECK_OK(daskr_graph_add_task(g, "w1", f, a1, 1, NULL, NULL, 0, NULL));
    CHECK_OK(daskr_graph_add_task(g, "w2", f, a2, 1, NULL, NULL, 0, NULL));
    daskr_func_free(f); /* the graph keeps its own reference */

    gate.waiting = 0;
    gate.open = 0;
    getter_t t[2] = {{g, "w1", 0, 0}, {g, "w2", 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, get_in_thread, &t[i]) == 0);
    pthread_mutex_lock(&gate.m);
    while (gate.waiting < 2) pthread_cond_wait(&gate.c, &gate.m);
    pthread_mutex_unlock(&gate.m);

    /* Both gets are inside their tasks: the free is deferred. */
    daskr_graph_free(g);
    CHECK(tracked_live() == 1);
    CHECK(atomic_load(&userdata_freed) == freed_before);

    pthread_mutex_lock(&gate.m);
    gate.open = 1;
    pthread_cond_broadcast(&gate.c);
    pthread_mutex_unlock(&gate.m);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK(!t[i].failed);
        CHECK(t[i].result == 42);
    }
    /* The last get to return freed the graph: each destructor ran once. */
    CHECK(tracked_live() == 0);
    CHECK(atomic_load(&userdata_freed) == freed_before + 1);
}

/* frees_own_graph(): frees the graph it runs in, checks that the graph refuses new calls,
 * and returns 7. */
static daskr_graph_t *own_graph;

static void frees_own_graph(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_graph_free(own_graph);
    CHECK(daskr_graph_len(own_graph) == 0);
    CHECK(!daskr_graph_contains(own_graph, "x"));
    CHECK_ERR(daskr_graph_add_value(own_graph, "late", daskr_value_int(1), NULL),
              DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_value_t *r = NULL;
    CHECK_ERR(daskr_graph_get_key(own_graph, "x", NULL, &r), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_graph_free(own_graph); /* a second free of a dead graph is ignored */
    daskr_call_return_int(call, 7);
}

static void a_task_frees_its_own_graph(daskr_scheduler_t s) {
    long freed_before = atomic_load(&userdata_freed);
    own_graph = daskr_graph_new();
    daskr_func_t *f = make_func("frees_own_graph", frees_own_graph, NULL);
    CHECK_OK(daskr_graph_add_value(own_graph, "x", tracked_value(1), NULL));
    daskr_comp_t *args[] = {daskr_comp_ref("x")};
    CHECK_OK(daskr_graph_add_task(own_graph, "t", f, args, 1, NULL, NULL, 0, NULL));
    daskr_func_free(f);
    daskr_get_options_t o = make_options(s, 2);
    daskr_value_t *r = NULL;
    CHECK_OK(daskr_graph_get_key(own_graph, "t", &o, &r));
    CHECK_INT(r, 7);
    daskr_value_free(r);
    CHECK(tracked_live() == 0);
    CHECK(atomic_load(&userdata_freed) == freed_before + 1);
}

int main(void) {
    free_while_other_threads_get();
    a_task_frees_its_own_graph(DASKR_SCHEDULER_SYNC);
    a_task_frees_its_own_graph(DASKR_SCHEDULER_THREADS);
    return check_report("graph_free");
}
