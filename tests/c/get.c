/* daskr_graph_get / daskr_graph_get_key: request shapes, culling (calls counted per key),
 * each task once per get, kwargs and the call API, both schedulers with various worker
 * counts, graph reuse, concurrent gets from several threads, changing a graph during a get,
 * and get options. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include "check.h"

/* ---- task functions; user_data is the task's call counter ---- */

static int64_t sum_value(const daskr_value_t *v) {
    int64_t i;
    if (daskr_value_get_int(v, &i)) return i;
    int64_t total = 0;
    for (size_t k = 0; k < daskr_value_list_len(v); k++) total += sum_value(daskr_value_list_at(v, k));
    return total;
}

/* Returns the sum of its args plus 1 (so a chain counts up), counting calls. */
static void inc(daskr_call_t *call, void *user_data) {
    if (user_data) atomic_fetch_add((atomic_long *)user_data, 1);
    int64_t total = 1;
    for (size_t i = 0; i < daskr_call_nargs(call); i++) {
        const daskr_value_t *a = daskr_call_arg(call, i);
        if (!a) {
            daskr_call_fail(call, "inc: argument is NULL");
            return;
        }
        total += sum_value(a);
    }
    daskr_call_return_int(call, total);
}

enum { A_, B, C, D, E, U, NCOUNT };
static atomic_long counts[NCOUNT];
static const char *count_names[NCOUNT] = {"a", "b", "c", "d", "e", "u"};

static void reset_counts(void) {
    for (int i = 0; i < NCOUNT; i++) atomic_store(&counts[i], 0);
}

/* Checks the call counts against `expected` ("b=1 c=1" style: a count per key; others 0). */
static void check_counts(const long *expected, int line) {
    for (int i = 0; i < NCOUNT; i++) {
        long got = atomic_load(&counts[i]);
        if (got != expected[i]) {
            fprintf(stderr, "get.c:%d: key %s ran %ld times, expected %ld\n", line, count_names[i], got, expected[i]);
            check_failures++;
        }
    }
    reset_counts();
}
#define COUNTS(...)                                     \
    do {                                                \
        long check_expected_[NCOUNT] = {__VA_ARGS__};   \
        check_counts(check_expected_, __LINE__);        \
    } while (0)

/*   a = 1            (literal)
 *   b = inc(a)       = 2
 *   c = inc(b)       = 3
 *   d = inc(b, c)    = 6
 *   e = inc(d)       = 7
 *   u = inc(a)       = 2   (unrelated to e)
 *   al = alias of c  = 3
 */
static daskr_graph_t *build_main(daskr_func_t **funcs) {
    daskr_graph_t *g = daskr_graph_new();
    for (int i = 0; i < NCOUNT; i++) funcs[i] = make_func(count_names[i], inc, &counts[i]);
    daskr_task_t a, b, c, d;
    CHECK_OK(daskr_graph_add_value(g, "a", daskr_value_int(1), &a));
    daskr_comp_t *bargs[] = {daskr_comp_ref_task(a)};
    CHECK_OK(daskr_graph_add_task(g, "b", funcs[B], bargs, 1, NULL, NULL, 0, &b));
    daskr_comp_t *cargs[] = {daskr_comp_ref("b")};
    CHECK_OK(daskr_graph_add_task(g, "c", funcs[C], cargs, 1, NULL, NULL, 0, &c));
    daskr_comp_t *dargs[] = {daskr_comp_ref_task(b), daskr_comp_ref_task(c)};
    CHECK_OK(daskr_graph_add_task(g, "d", funcs[D], dargs, 2, NULL, NULL, 0, &d));
    daskr_comp_t *eargs[] = {daskr_comp_ref_task(d)};
    CHECK_OK(daskr_graph_add_task(g, "e", funcs[E], eargs, 1, NULL, NULL, 0, NULL));
    daskr_comp_t *uargs[] = {daskr_comp_ref("a")};
    CHECK_OK(daskr_graph_add_task(g, "u", funcs[U], uargs, 1, NULL, NULL, 0, NULL));
    CHECK_OK(daskr_graph_add_alias(g, "al", "c", NULL));
    return g;
}

/* get with a request given as a string or a (nested) list value; NULL on error (counted). */
static daskr_value_t *get(const daskr_graph_t *g, const daskr_value_t *keys, const daskr_get_options_t *o) {
    daskr_value_t *out = NULL;
    daskr_error_t *e = daskr_graph_get(g, keys, o, &out);
    if (e) {
        check_print_error("get", e);
        daskr_error_free(e);
        check_failures++;
        return NULL;
    }
    return out;
}

static void shapes(const daskr_graph_t *g, const daskr_get_options_t *o) {
    reset_counts();
    /* One key, by daskr_graph_get_key and by a string value. */
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "c", o, &out));
    CHECK_INT(out, 3);
    daskr_value_free(out);
    COUNTS(0, 1, 1, 0, 0, 0);
    daskr_value_t *k = str_value("e");
    out = get(g, k, o);
    CHECK_INT(out, 7);
    daskr_value_free(out);
    daskr_value_free(k);
    COUNTS(0, 1, 1, 1, 1, 0);

    /* A list of keys: results in order. */
    const char *cb[] = {"c", "b", NULL};
    k = keys_value(cb);
    out = get(g, k, o);
    CHECK(daskr_value_list_len(out) == 2);
    CHECK_INT(daskr_value_list_at(out, 0), 3);
    CHECK_INT(daskr_value_list_at(out, 1), 2);
    daskr_value_free(out);
    daskr_value_free(k);
    COUNTS(0, 1, 1, 0, 0, 0);

    /* Nested: [["c"], ["u", ["d", "a"]], []] */
    const char *only_c[] = {"c", NULL}, *da[] = {"d", "a", NULL}, *none[] = {NULL};
    daskr_value_t *mid[] = {str_value("u"), keys_value(da)};
    daskr_value_t *top[] = {keys_value(only_c), list_value(mid, 2), keys_value(none)};
    k = list_value(top, 3);
    out = get(g, k, o);
    CHECK(daskr_value_list_len(out) == 3);
    const daskr_value_t *o0 = daskr_value_list_at(out, 0), *o1 = daskr_value_list_at(out, 1), *o2 = daskr_value_list_at(out, 2);
    CHECK(daskr_value_list_len(o0) == 1);
    CHECK_INT(daskr_value_list_at(o0, 0), 3);
    CHECK(daskr_value_list_len(o1) == 2);
    CHECK_INT(daskr_value_list_at(o1, 0), 2);
    const daskr_value_t *o11 = daskr_value_list_at(o1, 1);
    CHECK(daskr_value_list_len(o11) == 2);
    CHECK_INT(daskr_value_list_at(o11, 0), 6);
    CHECK_INT(daskr_value_list_at(o11, 1), 1);
    CHECK(daskr_value_kind(o2) == DASKR_KIND_LIST && daskr_value_list_len(o2) == 0);
    daskr_value_free(out);
    daskr_value_free(k);
    COUNTS(0, 1, 1, 1, 0, 1);

    /* The same key several times (and through an alias): each task still runs once. */
    const char *dup[] = {"d", "d", "c", "al", "d", NULL};
    k = keys_value(dup);
    out = get(g, k, o);
    CHECK(daskr_value_list_len(out) == 5);
    CHECK_INT(daskr_value_list_at(out, 0), 6);
    CHECK_INT(daskr_value_list_at(out, 1), 6);
    CHECK_INT(daskr_value_list_at(out, 2), 3);
    CHECK_INT(daskr_value_list_at(out, 3), 3);
    CHECK_INT(daskr_value_list_at(out, 4), 6);
    daskr_value_free(out);
    daskr_value_free(k);
    COUNTS(0, 1, 1, 1, 0, 0);

    /* An empty list gives an empty list and runs nothing. */
    k = keys_value(none);
    out = get(g, k, o);
    CHECK(out && daskr_value_kind(out) == DASKR_KIND_LIST && daskr_value_list_len(out) == 0);
    daskr_value_free(out);
    daskr_value_free(k);
    daskr_value_t *empties[] = {keys_value(none), keys_value(none)};
    k = list_value(empties, 2);
    out = get(g, k, o);
    CHECK(daskr_value_list_len(out) == 2 && daskr_value_list_len(daskr_value_list_at(out, 1)) == 0);
    daskr_value_free(out);
    daskr_value_free(k);
    COUNTS(0, 0, 0, 0, 0, 0);

    /* A literal entry and an alias, requested directly. */
    CHECK_OK(daskr_graph_get_key(g, "a", o, &out));
    CHECK_INT(out, 1);
    daskr_value_free(out);
    CHECK_OK(daskr_graph_get_key(g, "al", o, &out));
    CHECK_INT(out, 3);
    daskr_value_free(out);
    COUNTS(0, 1, 1, 0, 0, 0);
}

/* ---- kwargs and the call API ---- */

static void kwtask(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t a = 0, five = 0, scale = 0, offset = 0;
    const char *name = NULL;
#define REQUIRE(cond)                                                  \
    do {                                                               \
        if (!(cond)) {                                                 \
            daskr_call_fail(call, "kwtask: check failed: " #cond);    \
            return;                                                    \
        }                                                              \
    } while (0)
    REQUIRE(daskr_call_nargs(call) == 2);
    REQUIRE(daskr_call_nkwargs(call) == 3);
    REQUIRE(daskr_value_get_int(daskr_call_arg(call, 0), &a) && a == 1);
    REQUIRE(daskr_value_get_int(daskr_call_arg(call, 1), &five) && five == 5);
    REQUIRE(daskr_call_arg(call, 2) == NULL);
    REQUIRE(daskr_call_kwarg_name(call, 0) && strcmp(daskr_call_kwarg_name(call, 0), "scale") == 0);
    REQUIRE(daskr_call_kwarg_name(call, 1) && strcmp(daskr_call_kwarg_name(call, 1), "offset") == 0);
    REQUIRE(daskr_call_kwarg_name(call, 2) && strcmp(daskr_call_kwarg_name(call, 2), "name") == 0);
    REQUIRE(daskr_call_kwarg_name(call, 3) == NULL);
    REQUIRE(daskr_call_kwarg_at(call, 3) == NULL);
    REQUIRE(daskr_value_get_int(daskr_call_kwarg(call, "scale"), &scale) && scale == 2); /* a reference to b */
    REQUIRE(daskr_value_get_int(daskr_call_kwarg_at(call, 1), &offset) && offset == 100);
    REQUIRE(daskr_value_get_string(daskr_call_kwarg(call, "name"), &name, NULL) && strcmp(name, "x") == 0);
    REQUIRE(daskr_call_kwarg_at(call, 0) == daskr_call_kwarg(call, "scale"));
    REQUIRE(daskr_call_kwarg(call, "missing") == NULL);
    REQUIRE(daskr_call_kwarg(call, "scal") == NULL);
    REQUIRE(daskr_call_kwarg(call, "") == NULL);
    REQUIRE(daskr_call_kwarg(call, NULL) == NULL);
    REQUIRE(daskr_call_kwarg(call, "sc\xff") == NULL);
#undef REQUIRE
    daskr_call_return_int(call, (a + five) * scale + offset);
}

/* Returns its own key, followed by "/" and its string argument if it has one. */
static void keytask(daskr_call_t *call, void *user_data) {
    (void)user_data;
    char buf[256];
    const char *inner = NULL;
    const char *key = daskr_call_key(call);
    if (!key) {
        daskr_call_fail(call, "no key");
        return;
    }
    int n;
    if (daskr_value_get_string(daskr_call_arg(call, 0), &inner, NULL))
        n = snprintf(buf, sizeof buf, "%s/%s", key, inner);
    else
        n = snprintf(buf, sizeof buf, "%s", key);
    daskr_call_return_string(call, buf, (size_t)n);
}

/* The ways a task can set its result; user_data selects one. */
static void returns(daskr_call_t *call, void *user_data) {
    switch ((int)(intptr_t)user_data) {
        case 0: break; /* nothing: null */
        case 1: daskr_call_return(call, NULL); break;
        case 2: daskr_call_return_float(call, 1.5); break;
        case 3: daskr_call_return_bool(call, true); break;
        case 4:
            daskr_call_return_int(call, 1);
            daskr_call_fail(call, "failed after returning");
            break;
        case 5:
            daskr_call_fail(call, "failed first");
            daskr_call_return_int(call, 7);
            break;
        case 6: daskr_call_return_string(call, "bad \xff\xfe string", 13); break;
        case 7: daskr_call_return_string(call, NULL, 0); break;
        case 8: daskr_call_return_string(call, "a\0b", 3); break;
        case 9: /* a returned value replaced by a later return is released */
            daskr_call_return(call, tracked_value(9));
            daskr_call_return_int(call, 9);
            break;
        case 10: daskr_call_fail(call, NULL); break;
        case 11: daskr_call_return_string(call, NULL, 3); break;
        case 12: { /* a value built in the task, with a string and bytes */
            daskr_value_t *b = NULL;
            daskr_error_t *e = daskr_value_bytes((const uint8_t *)"\x00\x01", 2, &b);
            if (e) {
                daskr_error_free(e);
                daskr_call_fail(call, "bytes");
                return;
            }
            daskr_value_t *items[] = {str_value("s"), b, tracked_value(12)};
            daskr_call_return(call, list_value(items, 3));
            break;
        }
        case 14: daskr_call_fail(call, "not UTF-8: \xff\xfe, still reported"); break;
        case 13: /* a returned value replaced by a failure is released */
            daskr_call_return(call, tracked_value(13));
            daskr_call_fail(call, "replaced");
            break;
    }
}

static void call_api(const daskr_get_options_t *o) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *kw = make_func("kw", kwtask, NULL), *key = make_func("key", keytask, NULL);
    CHECK_OK(daskr_graph_add_value(g, "a", daskr_value_int(1), NULL));
    CHECK_OK(daskr_graph_add_value(g, "b", daskr_value_int(2), NULL));
    const char *names[] = {"scale", "offset", "name"};
    daskr_comp_t *kwv[] = {daskr_comp_ref("b"), int_comp(100), str_comp("x")};
    daskr_comp_t *args[] = {daskr_comp_ref("a"), int_comp(5)};
    CHECK_OK(daskr_graph_add_task(g, "kw", kw, args, 2, names, kwv, 3, NULL));
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "kw", o, &out));
    CHECK_INT(out, 112);
    daskr_value_free(out);

    /* daskr_call_key: an inline task sees the key of the entry containing it. */
    daskr_comp_t *inner = daskr_comp_task(key, NULL, 0, NULL, NULL, 0);
    CHECK_OK(daskr_graph_add_task(g, "outer", key, &inner, 1, NULL, NULL, 0, NULL));
    CHECK_OK(daskr_graph_add_task(g, "k\xc3\xa9y", key, NULL, 0, NULL, NULL, 0, NULL));
    const char *ks[] = {"outer", "k\xc3\xa9y", NULL};
    daskr_value_t *req = keys_value(ks);
    out = get(g, req, o);
    const char *s = NULL;
    CHECK(daskr_value_get_string(daskr_value_list_at(out, 0), &s, NULL));
    CHECK_STR(s, "outer/outer");
    CHECK(daskr_value_get_string(daskr_value_list_at(out, 1), &s, NULL));
    CHECK_STR(s, "k\xc3\xa9y");
    daskr_value_free(out);
    daskr_value_free(req);

    /* Results set every way. */
    daskr_func_t *r[15];
    char rk[15][8];
    for (int i = 0; i < 15; i++) {
        r[i] = make_func("returns", returns, (void *)(intptr_t)i);
        snprintf(rk[i], sizeof rk[i], "r%d", i);
        CHECK_OK(daskr_graph_add_task(g, rk[i], r[i], NULL, 0, NULL, NULL, 0, NULL));
        daskr_func_free(r[i]);
    }
    long d0 = atomic_load(&tracked_destroyed);
#define GET_R(i) (out = NULL, daskr_graph_get_key(g, rk[i], o, &out))
    CHECK_OK(GET_R(0));
    CHECK(out && daskr_value_kind(out) == DASKR_KIND_NULL);
    daskr_value_free(out);
    CHECK_OK(GET_R(1));
    CHECK(out && daskr_value_kind(out) == DASKR_KIND_NULL);
    daskr_value_free(out);
    CHECK_OK(GET_R(2));
    double x = 0;
    CHECK(daskr_value_get_float(out, &x) && x == 1.5);
    daskr_value_free(out);
    CHECK_OK(GET_R(3));
    bool b = false;
    CHECK(daskr_value_get_bool(out, &b) && b);
    daskr_value_free(out);
    daskr_error_t *e = GET_R(4);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    CHECK(e && check_contains(daskr_error_message(e), "failed after returning"));
    daskr_error_free(e);
    CHECK(out == NULL);
    CHECK_OK(GET_R(5));
    CHECK_INT(out, 7);
    daskr_value_free(out);
    e = GET_R(6);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    CHECK(e && daskr_error_key(e) && strcmp(daskr_error_key(e), "r6") == 0);
    CHECK(e && check_contains(daskr_error_message(e), "UTF-8"));
    daskr_error_free(e);
    size_t len = 99;
    CHECK_OK(GET_R(7));
    CHECK(daskr_value_get_string(out, &s, &len) && len == 0 && s[0] == '\0');
    daskr_value_free(out);
    CHECK_OK(GET_R(8));
    CHECK(daskr_value_get_string(out, &s, &len) && len == 3 && s[1] == '\0' && s[2] == 'b');
    daskr_value_free(out);
    CHECK_OK(GET_R(9));
    CHECK_INT(out, 9);
    daskr_value_free(out);
    CHECK(atomic_load(&tracked_destroyed) == d0 + 1);
    e = GET_R(10);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED && strlen(daskr_error_message(e)) > 0);
    CHECK(e && daskr_error_key(e) && strcmp(daskr_error_key(e), "r10") == 0);
    daskr_error_free(e);
    e = GET_R(11);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    daskr_error_free(e);
    CHECK_OK(GET_R(12));
    CHECK(daskr_value_list_len(out) == 3 && tracked_id(daskr_value_list_at(out, 2)) == 12);
    const uint8_t *bytes = NULL;
    CHECK(daskr_value_get_bytes(daskr_value_list_at(out, 1), &bytes, &len) && len == 2 && bytes[1] == 1);
    daskr_value_free(out);
    CHECK(atomic_load(&tracked_destroyed) == d0 + 2);
    e = GET_R(13);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    daskr_error_free(e);
    CHECK(atomic_load(&tracked_destroyed) == d0 + 3);
    e = GET_R(14);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
    CHECK(e && check_contains(daskr_error_message(e), "still reported"));
    CHECK(e && daskr_error_key(e) && strcmp(daskr_error_key(e), "r14") == 0);
    daskr_error_free(e);
#undef GET_R

    daskr_func_free(kw);
    daskr_func_free(key);
    daskr_graph_free(g);
}

/* ---- concurrency ---- */

typedef struct {
    const daskr_graph_t *g;
    int index, gets;
    int failures;
} worker_arg_t;

static void *concurrent_worker(void *p) {
    worker_arg_t *w = p;
    const char *ks[] = {"e", "u", "al", NULL};
    daskr_value_t *req = keys_value(ks);
    daskr_get_options_t o = make_options(w->index % 2 ? DASKR_SCHEDULER_SYNC : DASKR_SCHEDULER_THREADS,
                                         (uint32_t)(w->index % 3 + 1));
    for (int i = 0; i < w->gets; i++) {
        daskr_value_t *out = NULL;
        daskr_error_t *e = daskr_graph_get(w->g, req, &o, &out);
        int64_t ev = 0, uv = 0, alv = 0;
        if (e || !daskr_value_get_int(daskr_value_list_at(out, 0), &ev) || ev != 7 ||
            !daskr_value_get_int(daskr_value_list_at(out, 1), &uv) || uv != 2 ||
            !daskr_value_get_int(daskr_value_list_at(out, 2), &alv) || alv != 3)
            w->failures++;
        daskr_error_free(e);
        daskr_value_free(out);
    }
    daskr_value_free(req);
    return NULL;
}

static void concurrent_gets(const daskr_graph_t *g, int gets) {
    reset_counts();
    enum { T = 4 };
    pthread_t threads[T];
    worker_arg_t args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (worker_arg_t){g, i, gets, 0};
        CHECK(pthread_create(&threads[i], NULL, concurrent_worker, &args[i]) == 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(threads[i], NULL);
        CHECK(args[i].failures == 0);
    }
    long n = (long)T * gets;
    COUNTS(0, n, n, n, n, n);
}

/* ---- changing a graph during a get on it ---- */

static daskr_func_t *f_inc_plain; /* a valid function for the adds tried during a get */
static atomic_int in_use_seen;
static atomic_int in_use_other;

static void mutate(daskr_call_t *call, void *user_data) {
    daskr_graph_t *g = user_data;
    daskr_error_t *e[4];
    daskr_task_t h = 0;
    e[0] = daskr_graph_add_value(g, "new", tracked_value(100), NULL);
    daskr_comp_t *args[] = {daskr_comp_value(tracked_value(101))};
    e[1] = daskr_graph_add_task(g, "new2", f_inc_plain, args, 1, NULL, NULL, 0, NULL);
    e[2] = daskr_graph_add_alias(g, "new3", "m", NULL);
    e[3] = daskr_graph_handle(g, "new4", &h);
    for (int i = 0; i < 4; i++) {
        if (e[i] && daskr_error_kind(e[i]) == DASKR_ERROR_GRAPH_IN_USE)
            atomic_fetch_add(&in_use_seen, 1);
        else
            atomic_fetch_add(&in_use_other, 1);
        daskr_error_free(e[i]);
    }
    /* Reading the graph is fine during a get. */
    if (daskr_graph_len(g) != 1 || !daskr_graph_contains(g, "m")) atomic_fetch_add(&in_use_other, 1);
    daskr_call_return_int(call, 5);
}

static void graph_in_use(const daskr_get_options_t *o) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *m = make_func("mutate", mutate, g);
    f_inc_plain = make_func("inc", inc, NULL);
    CHECK_OK(daskr_graph_add_task(g, "m", m, NULL, 0, NULL, NULL, 0, NULL));
    daskr_func_free(m);
    atomic_store(&in_use_seen, 0);
    atomic_store(&in_use_other, 0);
    long d0 = atomic_load(&tracked_destroyed);
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "m", o, &out));
    CHECK_INT(out, 5);
    daskr_value_free(out);
    CHECK(atomic_load(&in_use_seen) == 4);
    CHECK(atomic_load(&in_use_other) == 0);
    CHECK(atomic_load(&tracked_destroyed) == d0 + 2); /* the values passed were taken */
    CHECK(daskr_graph_len(g) == 1);
    CHECK(!daskr_graph_contains(g, "new"));
    /* After the get, the graph can change again. */
    CHECK_OK(daskr_graph_add_value(g, "new", daskr_value_int(1), NULL));
    CHECK(daskr_graph_len(g) == 2);
    daskr_func_free(f_inc_plain);
    daskr_graph_free(g);
}

/* ---- options ---- */

static void options(const daskr_graph_t *g) {
    reset_counts();
    daskr_value_t *out = NULL;
    /* NULL options: defaults (threads, all cores). */
    CHECK_OK(daskr_graph_get_key(g, "e", NULL, &out));
    CHECK_INT(out, 7);
    daskr_value_free(out);
    /* daskr_get_options_init writes exactly the struct this header declares, no more (a
     * library whose options grew must not overrun a caller built against this header). */
    struct {
        daskr_get_options_t o;
        unsigned char canary[64];
    } guarded;
    memset(&guarded, 0xab, sizeof guarded);
    daskr_get_options_init(&guarded.o, sizeof guarded.o);
    int canary_ok = 1;
    for (size_t i = 0; i < sizeof guarded.canary; i++) canary_ok &= guarded.canary[i] == 0xab;
    CHECK(canary_ok);
    /* A caller whose (older) struct ends before `stats`: nothing past it is written. */
    memset(&guarded, 0xab, sizeof guarded);
    size_t older = offsetof(daskr_get_options_t, stats);
    daskr_get_options_init(&guarded.o, older);
    CHECK(guarded.o.struct_size == older && guarded.o.scheduler == DASKR_SCHEDULER_THREADS);
    int tail_ok = 1;
    for (size_t i = older; i < sizeof guarded.o; i++) tail_ok &= ((unsigned char *)&guarded.o)[i] == 0xab;
    CHECK(tail_ok);
    CHECK_OK(daskr_graph_get_key(g, "e", &guarded.o, &out)); /* fields past its size: defaults */
    CHECK_INT(out, 7);
    daskr_value_free(out);
    daskr_get_options_t o;
    memset(&o, 0xab, sizeof o);
    daskr_get_options_init(&o, sizeof o);
    CHECK(o.struct_size == sizeof o);
    CHECK(o.scheduler == DASKR_SCHEDULER_THREADS && o.num_workers == 0);
    CHECK(o.callbacks == NULL && o.cancel == NULL && o.stats == NULL);
    daskr_get_options_init(NULL, sizeof o);
    CHECK_OK(daskr_graph_get_key(g, "e", &o, &out));
    CHECK_INT(out, 7);
    daskr_value_free(out);
    COUNTS(0, 3, 3, 3, 3, 0);

    /* Stats. */
    daskr_stats_t st;
    memset(&st, 0xff, sizeof st);
    o = make_options(DASKR_SCHEDULER_SYNC, 0);
    o.stats = &st;
    CHECK_OK(daskr_graph_get_key(g, "e", &o, &out));
    daskr_value_free(out);
    CHECK(st.entries == 5);     /* a, b, c, d, e */
    CHECK(st.entries_run == 5); /* literals included */
    CHECK(st.workers == 1);
    CHECK(st.peak_held >= 1 && st.peak_held <= 5);
    o = make_options(DASKR_SCHEDULER_THREADS, 3);
    o.stats = &st;
    CHECK_OK(daskr_graph_get_key(g, "e", &o, &out));
    daskr_value_free(out);
    CHECK(st.entries == 5 && st.entries_run == 5);
    CHECK(st.workers >= 1 && st.workers <= 3);
    reset_counts();

    /* struct_size 0: not initialised -> INVALID_ARGUMENT, out untouched, nothing runs. */
    memset(&o, 0, sizeof o);
    daskr_value_t *sentinel = (daskr_value_t *)&o;
    out = sentinel;
    CHECK_ERR(daskr_graph_get_key(g, "e", &o, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(out == sentinel);
    daskr_value_t *k = str_value("e");
    CHECK_ERR(daskr_graph_get(g, k, &o, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(out == sentinel);
    COUNTS(0, 0, 0, 0, 0, 0);

    /* A caller compiled against an older, shorter struct: fields past struct_size are not
     * read (here `stats`, so it is not written). */
    o = make_options(DASKR_SCHEDULER_SYNC, 1);
    o.stats = &st;
    o.struct_size = offsetof(daskr_get_options_t, num_workers);
    memset(&st, 0xee, sizeof st);
    CHECK_OK(daskr_graph_get_key(g, "e", &o, &out));
    CHECK_INT(out, 7);
    daskr_value_free(out);
    CHECK(st.entries == 0xeeeeeeeeeeeeeeeeull && st.workers == 0xeeeeeeeeu);
    COUNTS(0, 1, 1, 1, 1, 0);

    /* Bad arguments to get. */
    out = sentinel;
    CHECK_ERR(daskr_graph_get(NULL, k, NULL, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_get(g, NULL, NULL, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_get(g, k, NULL, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_get_key(g, NULL, NULL, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_get_key(g, "e\xff", NULL, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_get_key(NULL, "e", NULL, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_get_key(g, "e", NULL, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_value_t *i = daskr_value_int(3);
    CHECK_ERR(daskr_graph_get(g, i, NULL, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_value_t *mixed_items[] = {str_value("e"), daskr_value_int(3)};
    daskr_value_t *mixed = list_value(mixed_items, 2);
    CHECK_ERR(daskr_graph_get(g, mixed, NULL, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(out == sentinel);
    COUNTS(0, 0, 0, 0, 0, 0);
    daskr_value_free(i);
    daskr_value_free(mixed);
    daskr_value_free(k);
}

/* ---- a get inside a task: gets on one graph may nest (any number may run at once) ---- */

static const daskr_graph_t *nest_graph;

static void nested_get(daskr_call_t *call, void *user_data) {
    daskr_get_options_t o = make_options(user_data ? DASKR_SCHEDULER_THREADS : DASKR_SCHEDULER_SYNC, 3);
    daskr_value_t *out = NULL;
    daskr_error_t *e = daskr_graph_get_key(nest_graph, "e", &o, &out);
    if (e) {
        daskr_call_fail(call, daskr_error_message(e));
        daskr_error_free(e);
        return;
    }
    daskr_call_return(call, out);
}

static void nested_gets(daskr_graph_t *g, int width) {
    nest_graph = g;
    daskr_func_t *nt = make_func("nested", nested_get, (void *)1), *ns = make_func("nested", nested_get, NULL);
    daskr_graph_t *outer = daskr_graph_new();
    daskr_value_t **keys = malloc(sizeof *keys * (size_t)width);
    for (int i = 0; i < width; i++) {
        char key[16];
        snprintf(key, sizeof key, "n%d", i);
        CHECK_OK(daskr_graph_add_task(outer, key, i % 2 ? nt : ns, NULL, 0, NULL, NULL, 0, NULL));
        keys[i] = str_value(key);
    }
    daskr_value_t *req = list_value(keys, (size_t)width);
    free(keys);
    reset_counts();
    for (int s = 0; s < 2; s++) {
        daskr_get_options_t o = make_options(s ? DASKR_SCHEDULER_THREADS : DASKR_SCHEDULER_SYNC, 4);
        daskr_value_t *out = NULL;
        CHECK_OK(daskr_graph_get(outer, req, &o, &out));
        CHECK(daskr_value_list_len(out) == (size_t)width);
        for (int i = 0; i < width; i++) CHECK_INT(daskr_value_list_at(out, (size_t)i), 7);
        daskr_value_free(out);
    }
    long n = 2L * width;
    COUNTS(0, n, n, n, n, 0);
    daskr_value_free(req);
    daskr_func_free(nt);
    daskr_func_free(ns);
    daskr_graph_free(outer);
}

/* ---- several graphs at once, from several threads, sharing the pool ---- */

static daskr_func_t *f_plain;

static void *own_graph_worker(void *p) {
    worker_arg_t *w = p;
    daskr_graph_t *g = daskr_graph_new();
    daskr_task_t prev;
    daskr_error_t *e = daskr_graph_add_value(g, "x0", daskr_value_int(w->index), &prev);
    if (e) w->failures++;
    daskr_error_free(e);
    for (int i = 1; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof key, "x%d", i);
        daskr_comp_t *a[] = {daskr_comp_ref_task(prev), int_comp(0)};
        e = daskr_graph_add_task(g, key, f_plain, a, 2, NULL, NULL, 0, &prev);
        if (e) w->failures++;
        daskr_error_free(e);
    }
    for (int i = 0; i < w->gets; i++) {
        daskr_get_options_t o = make_options(DASKR_SCHEDULER_THREADS, 2 + (uint32_t)(i % 3));
        daskr_value_t *out = NULL;
        e = daskr_graph_get_key(g, "x49", &o, &out);
        int64_t v = 0;
        if (e || !daskr_value_get_int(out, &v) || v != w->index + 49) w->failures++;
        daskr_error_free(e);
        daskr_value_free(out);
    }
    daskr_graph_free(g);
    return NULL;
}

static void many_graphs(int gets) {
    f_plain = make_func("inc", inc, NULL);
    enum { T = 4 };
    pthread_t threads[T];
    worker_arg_t args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (worker_arg_t){NULL, 100 * i, gets, 0};
        CHECK(pthread_create(&threads[i], NULL, own_graph_worker, &args[i]) == 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(threads[i], NULL);
        CHECK(args[i].failures == 0);
    }
    daskr_func_free(f_plain);
}

/* ---- gets on a graph while another thread adds to it ---- */

typedef struct {
    daskr_graph_t *g;
    int n;
    long in_use, other;
    atomic_int done;
} growing_t;

static void *grow(void *p) {
    growing_t *w = p;
    for (int i = 0; i < w->n; i++) {
        char key[16];
        snprintf(key, sizeof key, "g%d", i);
        for (;;) {
            daskr_comp_t *a[] = {daskr_comp_ref("base")};
            daskr_error_t *e = daskr_graph_add_task(w->g, key, f_plain, a, 1, NULL, NULL, 0, NULL);
            if (!e) break;
            if (daskr_error_kind(e) == DASKR_ERROR_GRAPH_IN_USE) {
                w->in_use++;
            } else {
                w->other++;
                daskr_error_free(e);
                break;
            }
            daskr_error_free(e);
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&w->done, 1);
    return NULL;
}

static void gets_while_adding(int n) {
    f_plain = make_func("inc", inc, NULL);
    growing_t w;
    memset(&w, 0, sizeof w);
    w.g = daskr_graph_new();
    w.n = n;
    CHECK_OK(daskr_graph_add_value(w.g, "base", daskr_value_int(10), NULL));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, grow, &w) == 0);
    long gets = 0, bad = 0;
    while (!atomic_load(&w.done)) {
        /* The base key, and whichever entries exist now: each gives its right value. */
        daskr_get_options_t o = make_options(gets % 2 ? DASKR_SCHEDULER_THREADS : DASKR_SCHEDULER_SYNC, 2);
        daskr_value_t *out = NULL;
        daskr_error_t *e = daskr_graph_get_key(w.g, "base", &o, &out);
        int64_t v = 0;
        if (e || !daskr_value_get_int(out, &v) || v != 10) bad++;
        daskr_error_free(e);
        daskr_value_free(out);
        out = NULL;
        e = daskr_graph_get_key(w.g, "g0", &o, &out);
        if (e ? daskr_error_kind(e) != DASKR_ERROR_MISSING_KEY : !daskr_value_get_int(out, &v) || v != 11) bad++;
        daskr_error_free(e);
        daskr_value_free(out);
        gets++;
    }
    pthread_join(t, NULL);
    CHECK(bad == 0 && w.other == 0);
    CHECK(daskr_graph_len(w.g) == (size_t)n + 1);
    char last[16];
    snprintf(last, sizeof last, "g%d", n - 1);
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(w.g, last, NULL, &out));
    CHECK_INT(out, 11);
    daskr_value_free(out);
    daskr_graph_free(w.g);
    daskr_func_free(f_plain);
}

/* ---- the call API given a NULL call: harmless ---- */

static void null_call(void) {
    CHECK(daskr_call_key(NULL) == NULL);
    CHECK(daskr_call_nargs(NULL) == 0 && daskr_call_nkwargs(NULL) == 0);
    CHECK(daskr_call_arg(NULL, 0) == NULL && daskr_call_kwarg(NULL, "x") == NULL);
    CHECK(daskr_call_kwarg_name(NULL, 0) == NULL && daskr_call_kwarg_at(NULL, 0) == NULL);
    daskr_call_return_int(NULL, 1);
    daskr_call_return_float(NULL, 1);
    daskr_call_return_bool(NULL, 1);
    daskr_call_return_string(NULL, "x", 1);
    daskr_call_fail(NULL, "x");
    long d0 = atomic_load(&tracked_destroyed);
    daskr_call_return(NULL, tracked_value(1)); /* takes the value even so */
    CHECK(atomic_load(&tracked_destroyed) == d0 + 1);
}

/* ---- options holding values outside their enum ---- */

static void bad_enum_options(const daskr_graph_t *g) {
    /* A scheduler value outside the enum is a bad argument, reported before anything runs. */
    _Static_assert(sizeof(daskr_scheduler_t) == sizeof(uint32_t), "the scheduler field is 32 bits");
    reset_counts();
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_SYNC, 1);
    uint32_t bad[] = {4, 7, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(&o.scheduler, &bad[i], sizeof bad[i]);
        daskr_value_t *sentinel = (daskr_value_t *)&o, *out = sentinel;
        daskr_error_t *e = daskr_graph_get_key(g, "e", &o, &out);
        CHECK(e && daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT);
        CHECK(e && check_contains(daskr_error_message(e), "scheduler"));
        daskr_error_free(e);
        CHECK(out == sentinel);
        if (out != sentinel) daskr_value_free(out);
    }
    COUNTS(0, 0, 0, 0, 0, 0);
}

/* The scheduler registry: every value has a name, names round-trip, and each scheduler
 * reads the options its documentation says. */
static void scheduler_registry(void) {
    CHECK(daskr_scheduler_count() == 4);
    const char *names[] = {"threads", "sync", "processes", "distributed"};
    daskr_scheduler_t values[] = {DASKR_SCHEDULER_THREADS, DASKR_SCHEDULER_SYNC, DASKR_SCHEDULER_PROCESSES,
                                  DASKR_SCHEDULER_DISTRIBUTED};
    for (uint32_t i = 0; i < daskr_scheduler_count(); i++) {
        CHECK((uint32_t)values[i] == i);
        CHECK_STR(daskr_scheduler_name(i), names[i]);
        daskr_scheduler_t s = DASKR_SCHEDULER_THREADS;
        CHECK_OK(daskr_scheduler_from_name(names[i], &s));
        CHECK(s == values[i]);
    }
    CHECK(daskr_scheduler_name(4) == NULL);
    daskr_scheduler_t s = DASKR_SCHEDULER_SYNC;
    CHECK_ERR(daskr_scheduler_from_name("fast", &s), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(s == DASKR_SCHEDULER_SYNC);
    CHECK_ERR(daskr_scheduler_from_name(NULL, &s), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_scheduler_from_name("sync", NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(daskr_scheduler_reads(DASKR_SCHEDULER_THREADS, "num_workers"));
    CHECK(!daskr_scheduler_reads(DASKR_SCHEDULER_SYNC, "num_workers"));
    CHECK(daskr_scheduler_reads(DASKR_SCHEDULER_PROCESSES, "task_timeout_s"));
    CHECK(daskr_scheduler_reads(DASKR_SCHEDULER_PROCESSES, "retries"));
    /* retries: every scheduler (a failing task runs again); task_timeout_s: processes only. */
    CHECK(daskr_scheduler_reads(DASKR_SCHEDULER_DISTRIBUTED, "retries"));
    CHECK(daskr_scheduler_reads(DASKR_SCHEDULER_SYNC, "retries"));
    CHECK(!daskr_scheduler_reads(DASKR_SCHEDULER_DISTRIBUTED, "task_timeout_s"));
    CHECK(daskr_scheduler_reads(DASKR_SCHEDULER_DISTRIBUTED, "address"));
    CHECK(!daskr_scheduler_reads(DASKR_SCHEDULER_THREADS, "address"));
    CHECK(!daskr_scheduler_reads(4, "address"));
    CHECK(!daskr_scheduler_reads(DASKR_SCHEDULER_THREADS, NULL));
}

/* ---- parallelism: num_workers tasks run at once, never more ---- */

typedef struct {
    atomic_int arrived, met, running, most;
    int n;
} rendezvous_t;

/* Waits until n tasks of this get have arrived — only possible if n run at once (it gives up
 * after ~10 s, which only happens when they never meet). Records the most tasks seen running
 * together. */
static void rendezvous(daskr_call_t *call, void *user_data) {
    rendezvous_t *r = user_data;
    int now = atomic_fetch_add(&r->running, 1) + 1, most = atomic_load(&r->most);
    while (most < now && !atomic_compare_exchange_weak(&r->most, &most, now)) {
    }
    atomic_fetch_add(&r->arrived, 1);
    for (int i = 0; i < 10000 && atomic_load(&r->arrived) < r->n; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&r->arrived) >= r->n) atomic_fetch_add(&r->met, 1);
    atomic_fetch_sub(&r->running, 1);
    daskr_call_return_int(call, 1);
}

static void *parallel_get(void *p) {
    rendezvous_t *r = p;
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = make_func("rendezvous", rendezvous, r);
    int tasks = 3 * r->n;
    daskr_value_t *items[64];
    for (int i = 0; i < tasks; i++) {
        char key[16];
        snprintf(key, sizeof key, "r%d", i);
        daskr_error_t *e = daskr_graph_add_task(g, key, f, NULL, 0, NULL, NULL, 0, NULL);
        if (e) atomic_store(&r->met, -1000);
        daskr_error_free(e);
        items[i] = str_value(key);
    }
    daskr_value_t *req = list_value(items, (size_t)tasks), *out = NULL;
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_THREADS, (uint32_t)r->n);
    daskr_error_t *e = daskr_graph_get(g, req, &o, &out);
    if (e || daskr_value_list_len(out) != (size_t)tasks) atomic_store(&r->met, -1000);
    daskr_error_free(e);
    daskr_value_free(out);
    daskr_value_free(req);
    daskr_func_free(f);
    daskr_graph_free(g);
    return NULL;
}

static void parallelism(void) {
    /* One get at a time, then two at once (sharing the pool): each gets its workers. */
    for (int n = 2; n <= 4; n++) {
        rendezvous_t r;
        memset(&r, 0, sizeof r);
        r.n = n;
        parallel_get(&r);
        CHECK(atomic_load(&r.met) == 3 * n);
        CHECK(atomic_load(&r.most) == n);
    }
    rendezvous_t r[2];
    memset(r, 0, sizeof r);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        r[i].n = 2;
        CHECK(pthread_create(&t[i], NULL, parallel_get, &r[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CHECK(atomic_load(&r[i].met) == 6);
        CHECK(atomic_load(&r[i].most) == 2);
    }
}

int main(void) {
    int slow = check_slow_mode();
    daskr_func_t *funcs[NCOUNT];
    daskr_graph_t *g = build_main(funcs);
    for (int i = 0; i < NCOUNT; i++) daskr_func_free(funcs[i]); /* the graph keeps its own */

    struct {
        daskr_scheduler_t s;
        uint32_t w;
    } configs[] = {{DASKR_SCHEDULER_SYNC, 0}, {DASKR_SCHEDULER_SYNC, 4},    {DASKR_SCHEDULER_THREADS, 1},
                   {DASKR_SCHEDULER_THREADS, 2}, {DASKR_SCHEDULER_THREADS, 3}, {DASKR_SCHEDULER_THREADS, 4},
                   {DASKR_SCHEDULER_THREADS, 0}, {DASKR_SCHEDULER_THREADS, 16}};
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        daskr_get_options_t o = make_options(configs[c].s, configs[c].w);
        shapes(g, &o);
        call_api(&o);
        graph_in_use(&o);
    }

    /* One graph, many gets: each get runs each needed task once. */
    reset_counts();
    int reps = slow ? 20 : 200;
    for (int i = 0; i < reps; i++) {
        daskr_get_options_t o = make_options(i % 2 ? DASKR_SCHEDULER_SYNC : DASKR_SCHEDULER_THREADS, (uint32_t)(i % 4));
        daskr_value_t *out = NULL;
        CHECK_OK(daskr_graph_get_key(g, "e", &o, &out));
        CHECK_INT(out, 7);
        daskr_value_free(out);
    }
    COUNTS(0, reps, reps, reps, reps, 0);

    concurrent_gets(g, slow ? 5 : 50);
    nested_gets(g, slow ? 8 : 64);
    many_graphs(slow ? 5 : 50);
    parallelism();
    gets_while_adding(slow ? 100 : 1000);
    null_call();
    options(g);
    bad_enum_options(g);
    scheduler_registry();
    daskr_graph_free(g);
    CHECK(tracked_live() == 0);
    return check_report("get");
}
