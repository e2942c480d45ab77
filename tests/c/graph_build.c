/* Building graphs over the C ABI: every add function, computations (literals, references by
 * key and by handle, lists, inline tasks, kwargs), handles and forward references, and every
 * error an add can give. Computations are taken even on failure: pointer literals inside
 * them are counted to prove it. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#include "check.h"

/* Sums every int in its arguments and keyword arguments, walking into lists. */
static int64_t sum_value(const daskr_value_t *v) {
    int64_t i;
    if (daskr_value_get_int(v, &i)) return i;
    int64_t total = 0;
    for (size_t k = 0; k < daskr_value_list_len(v); k++) total += sum_value(daskr_value_list_at(v, k));
    return total;
}

static void sum(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t total = 0;
    for (size_t i = 0; i < daskr_call_nargs(call); i++) total += sum_value(daskr_call_arg(call, i));
    for (size_t i = 0; i < daskr_call_nkwargs(call); i++) total += sum_value(daskr_call_kwarg_at(call, i));
    daskr_call_return_int(call, total);
}

static daskr_value_t *get_key(daskr_graph_t *g, const char *key) {
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_SYNC, 1);
    daskr_value_t *out = NULL;
    daskr_error_t *e = daskr_graph_get_key(g, key, &o, &out);
    if (e) {
        check_print_error(key, e);
        daskr_error_free(e);
        check_failures++;
        return daskr_value_null();
    }
    return out;
}

#define CHECK_GET_INT(g, key, expected)          \
    do {                                         \
        daskr_value_t *check_v_ = get_key(g, key); \
        CHECK_INT(check_v_, expected);           \
        daskr_value_free(check_v_);              \
    } while (0)

/* A handle carries its graph: one from another graph — even with the same index as an entry
 * here — is refused with invalid_argument naming the entry being added, on every path (only
 * handles, handles and literals, keyword arguments, inside a list), and names no key here. */
static void foreign_handles(daskr_func_t *f) {
    daskr_graph_t *mine = daskr_graph_new(), *theirs = daskr_graph_new();
    daskr_task_t own = 0, foreign = 0;
    CHECK_OK(daskr_graph_add_value(mine, "x", daskr_value_int(1), &own));
    CHECK_OK(daskr_graph_add_value(theirs, "elsewhere", daskr_value_int(2), &foreign));
    CHECK(own != foreign && own != 0 && foreign != 0);
    CHECK(daskr_graph_key(mine, foreign) == NULL);
    CHECK_STR(daskr_graph_key(theirs, foreign), "elsewhere");

    daskr_comp_t *only[] = {daskr_comp_ref_task(foreign)};
    CHECK_ERR(daskr_graph_add_task(mine, "t1", f, only, 1, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT, "t1");
    daskr_comp_t *with_lit[] = {daskr_comp_ref_task(foreign), int_comp(3)};
    CHECK_ERR(daskr_graph_add_task(mine, "t2", f, with_lit, 2, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT,
              "t2");
    const char *kn[] = {"scale"};
    daskr_comp_t *kw_args[] = {daskr_comp_ref_task(own)}, *kw_values[] = {daskr_comp_ref_task(foreign)};
    CHECK_ERR(daskr_graph_add_task(mine, "t3", f, kw_args, 1, kn, kw_values, 1, NULL), DASKR_ERROR_INVALID_ARGUMENT,
              "t3");
    daskr_comp_t *items[] = {daskr_comp_ref_task(own), daskr_comp_ref_task(foreign)};
    CHECK_ERR(daskr_graph_add(mine, "t4", daskr_comp_list(items, 2), NULL), DASKR_ERROR_INVALID_ARGUMENT, "t4");
    CHECK(daskr_graph_len(mine) == 1);
    /* Their own handles still work. */
    daskr_comp_t *fine[] = {daskr_comp_ref_task(own), int_comp(3)};
    CHECK_OK(daskr_graph_add_task(mine, "t5", f, fine, 2, NULL, NULL, 0, NULL));
    CHECK_GET_INT(mine, "t5", 4);
    daskr_graph_free(mine);
    daskr_graph_free(theirs);
}

static void adds_and_handles(daskr_func_t *f) {
    daskr_graph_t *g = daskr_graph_new();
    CHECK(daskr_graph_len(g) == 0);
    daskr_task_t a, b, c, d, l, n, k, al;
    CHECK_OK(daskr_graph_add_value(g, "a", daskr_value_int(1), &a));
    CHECK_OK(daskr_graph_add_value(g, "b", daskr_value_int(10), &b));
    CHECK(a != b);
    /* c = sum(a, b by handle, 100) */
    daskr_comp_t *c_args[] = {daskr_comp_ref("a"), daskr_comp_ref_task(b), int_comp(100)};
    CHECK_OK(daskr_graph_add_task(g, "c", f, c_args, 3, NULL, NULL, 0, &c));
    /* d = sum(c, x=a, y=[b, 1000]) */
    const char *kwn[] = {"x", "y"};
    daskr_comp_t *y_items[] = {daskr_comp_ref_task(b), int_comp(1000)};
    daskr_comp_t *d_kw[] = {daskr_comp_ref_task(a), daskr_comp_list(y_items, 2)};
    daskr_comp_t *d_args[] = {daskr_comp_ref_task(c)};
    CHECK_OK(daskr_graph_add_task(g, "d", f, d_args, 1, kwn, d_kw, 2, &d));
    /* l = [a, [b, c], 5]  (daskr_graph_add with a list computation) */
    daskr_comp_t *inner[] = {daskr_comp_ref("b"), daskr_comp_ref_task(c)};
    daskr_comp_t *l_items[] = {daskr_comp_ref("a"), daskr_comp_list(inner, 2), int_comp(5)};
    CHECK_OK(daskr_graph_add(g, "l", daskr_comp_list(l_items, 3), &l));
    /* n = sum(sum(a, 2), [sum(b, z=3)])  (inline tasks) */
    daskr_comp_t *t1_args[] = {daskr_comp_ref_task(a), int_comp(2)};
    const char *zn[] = {"z"};
    daskr_comp_t *t2_kw[] = {int_comp(3)};
    daskr_comp_t *t2_args[] = {daskr_comp_ref("b")};
    daskr_comp_t *n_list[] = {daskr_comp_task(f, t2_args, 1, zn, t2_kw, 1)};
    daskr_comp_t *n_args[] = {daskr_comp_task(f, t1_args, 2, NULL, NULL, 0), daskr_comp_list(n_list, 1)};
    CHECK_OK(daskr_graph_add_task(g, "n", f, n_args, 2, NULL, NULL, 0, &n));
    /* k = an inline task as a whole entry */
    daskr_comp_t *k_args[] = {daskr_comp_ref_task(n), daskr_comp_ref_task(d)};
    CHECK_OK(daskr_graph_add(g, "k", daskr_comp_task(f, k_args, 2, NULL, NULL, 0), &k));
    CHECK_OK(daskr_graph_add_alias(g, "al", "k", &al));
    /* A literal entry given as a computation, out_task NULL. */
    CHECK_OK(daskr_graph_add(g, "lit", int_comp(7), NULL));
    CHECK_OK(daskr_graph_add_value(g, "s", str_value("text"), NULL));

    CHECK(daskr_graph_len(g) == 10);
    CHECK(daskr_graph_contains(g, "d") && daskr_graph_contains(g, "al") && !daskr_graph_contains(g, "zz"));
    CHECK(!daskr_graph_contains(g, NULL) && !daskr_graph_contains(NULL, "a"));
    CHECK(daskr_graph_len(NULL) == 0);
    CHECK_STR(daskr_graph_key(g, a), "a");
    CHECK_STR(daskr_graph_key(g, d), "d");
    CHECK_STR(daskr_graph_key(g, al), "al");
    CHECK(daskr_graph_key(g, 1000) == NULL);
    CHECK(daskr_graph_key(g, (daskr_task_t)-1) == NULL);
    CHECK(daskr_graph_key(NULL, a) == NULL);
    daskr_task_t h = 12345;
    CHECK_OK(daskr_graph_handle(g, "c", &h));
    CHECK(h == c);

    CHECK_GET_INT(g, "c", 111);
    CHECK_GET_INT(g, "d", 111 + 1 + 10 + 1000);
    CHECK_GET_INT(g, "n", 3 + 13);
    CHECK_GET_INT(g, "k", 16 + 1122);
    CHECK_GET_INT(g, "al", 1138);
    CHECK_GET_INT(g, "lit", 7);
    daskr_value_t *lv = get_key(g, "l");
    CHECK(daskr_value_list_len(lv) == 3);
    CHECK_INT(daskr_value_list_at(lv, 0), 1);
    const daskr_value_t *lv1 = daskr_value_list_at(lv, 1);
    CHECK(daskr_value_list_len(lv1) == 2);
    CHECK_INT(daskr_value_list_at(lv1, 0), 10);
    CHECK_INT(daskr_value_list_at(lv1, 1), 111);
    CHECK_INT(daskr_value_list_at(lv, 2), 5);
    daskr_value_free(lv);
    daskr_value_t *sv = get_key(g, "s");
    const char *text = NULL;
    CHECK(daskr_value_get_string(sv, &text, NULL));
    CHECK_STR(text, "text");
    daskr_value_free(sv);
    daskr_graph_free(g);
    daskr_graph_free(NULL);
}

static void forward_references(daskr_func_t *f) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_task_t later = 999, again = 998;
    CHECK_OK(daskr_graph_handle(g, "later", &later));
    CHECK(daskr_graph_len(g) == 0);            /* only referred to, not defined */
    CHECK(!daskr_graph_contains(g, "later"));
    CHECK_STR(daskr_graph_key(g, later), "later");
    CHECK_OK(daskr_graph_handle(g, "later", &again));
    CHECK(again == later);
    daskr_comp_t *args[] = {daskr_comp_ref_task(later), int_comp(1)};
    CHECK_OK(daskr_graph_add_task(g, "early", f, args, 2, NULL, NULL, 0, NULL));
    /* Referring by key to a key not yet added is fine too. */
    daskr_comp_t *args2[] = {daskr_comp_ref("early"), daskr_comp_ref("later2")};
    CHECK_OK(daskr_graph_add_task(g, "top", f, args2, 2, NULL, NULL, 0, NULL));
    daskr_task_t defined = 0;
    CHECK_OK(daskr_graph_add_value(g, "later", daskr_value_int(41), &defined));
    CHECK(defined == later);
    CHECK_OK(daskr_graph_add_value(g, "later2", daskr_value_int(100), NULL));
    CHECK(daskr_graph_len(g) == 4);
    CHECK_GET_INT(g, "early", 42);
    CHECK_GET_INT(g, "top", 142);
    /* Handle errors. */
    CHECK_ERR(daskr_graph_handle(g, "", &again), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_handle(g, NULL, &again), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_handle(g, "\xfe", &again), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_handle(NULL, "x", &again), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_graph_free(g);
}

/* Asserts that an error is `k1` or `k2` and names `key`: used where the header leaves the
 * kind open between a bad argument and a malformed computation. */
#define CHECK_ERR_EITHER(call, k1, k2, key)                                                   \
    do {                                                                                      \
        daskr_error_t *check_e_ = (call);                                                     \
        if (!check_e_) {                                                                      \
            fprintf(stderr, "%s:%d: %s succeeded, expected an error\n", __FILE__, __LINE__, #call); \
            check_failures++;                                                                 \
        } else {                                                                              \
            daskr_error_kind_t check_k_ = daskr_error_kind(check_e_);                         \
            CHECK(check_k_ == (k1) || check_k_ == (k2));                                      \
            CHECK_STR(daskr_error_key(check_e_), (key));                                      \
            daskr_error_free(check_e_);                                                       \
        }                                                                                     \
    } while (0)

static void add_errors(daskr_func_t *f) {
    daskr_graph_t *g = daskr_graph_new();
    CHECK_OK(daskr_graph_add_value(g, "a", daskr_value_int(1), NULL));
    long d0 = atomic_load(&tracked_destroyed);
#define TAKEN(n) CHECK(atomic_load(&tracked_destroyed) == d0 + (n))

    /* Duplicate keys, for every add: INVALID_GRAPH naming the key; the comp is released and
     * the entry keeps its first definition. */
    CHECK_ERR_KEYS(daskr_graph_add_value(g, "a", tracked_value(1), NULL), DASKR_ERROR_INVALID_GRAPH, "a", NULL);
    TAKEN(1);
    daskr_comp_t *dup_args[] = {daskr_comp_value(tracked_value(2)), daskr_comp_ref("a")};
    const char *kn[] = {"kw"};
    daskr_comp_t *dup_kw[] = {daskr_comp_value(tracked_value(3))};
    CHECK_ERR(daskr_graph_add_task(g, "a", f, dup_args, 2, kn, dup_kw, 1, NULL), DASKR_ERROR_INVALID_GRAPH, "a");
    TAKEN(3);
    daskr_comp_t *dup_list[] = {daskr_comp_value(tracked_value(4)), daskr_comp_value(tracked_value(5))};
    CHECK_ERR(daskr_graph_add(g, "a", daskr_comp_list(dup_list, 2), NULL), DASKR_ERROR_INVALID_GRAPH, "a");
    TAKEN(5);
    /* The same on the hot path (only handles and literals, no keyword arguments), and a
     * handle from nowhere: the literals are released once, after the graph is unlocked. */
    daskr_task_t ha;
    CHECK_OK(daskr_graph_handle(g, "a", &ha));
    daskr_comp_t *hot_args[] = {daskr_comp_value(tracked_value(6)), daskr_comp_ref_task(ha)};
    CHECK_ERR(daskr_graph_add_task(g, "a", f, hot_args, 2, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_GRAPH, "a");
    TAKEN(6);
    daskr_comp_t *stray_args[] = {daskr_comp_value(tracked_value(7)), daskr_comp_ref_task(1u << 30)};
    CHECK_ERR(daskr_graph_add_task(g, "stray", f, stray_args, 2, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT,
              "stray");
    TAKEN(7);
    CHECK(!daskr_graph_contains(g, "stray"));
    CHECK_ERR(daskr_graph_add_alias(g, "a", "b", NULL), DASKR_ERROR_INVALID_GRAPH, "a");
    CHECK(daskr_graph_len(g) == 1);
    CHECK_GET_INT(g, "a", 1);
    {
        daskr_error_t *e = daskr_graph_add_value(g, "a", daskr_value_int(2), NULL);
        CHECK(e && check_contains(daskr_error_message(e), "a"));
        daskr_error_free(e);
    }

    /* Empty and non-UTF-8 keys: INVALID_ARGUMENT; whatever was passed is released. (A NULL key
     * adds an anonymous entry, see anonymous.c; only an alias needs a key.) */
    d0 = atomic_load(&tracked_destroyed);
    CHECK_ERR(daskr_graph_add_value(g, "", tracked_value(1), NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_add_value(g, "\xc0\x80", tracked_value(2), NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_add_value(g, "k\xff", tracked_value(3), NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    TAKEN(3);
    daskr_comp_t *e_args[] = {daskr_comp_value(tracked_value(4))};
    CHECK_ERR(daskr_graph_add_task(g, "", f, e_args, 1, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_comp_t *n_args[] = {daskr_comp_value(tracked_value(5))};
    CHECK_ERR(daskr_graph_add_task(g, "\xfe", f, n_args, 1, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_comp_t *u_args[] = {daskr_comp_value(tracked_value(6))};
    CHECK_ERR(daskr_graph_add_task(g, "\xc3\x28", f, u_args, 1, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT,
              NULL);
    TAKEN(6);
    CHECK_ERR(daskr_graph_add(g, "", daskr_comp_value(tracked_value(7)), NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_add(g, "\xed\xa0\x80", daskr_comp_value(tracked_value(8)), NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_add(g, "\x80", daskr_comp_value(tracked_value(9)), NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    TAKEN(9);
    CHECK_ERR(daskr_graph_add_alias(g, "", "a", NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_add_alias(g, NULL, "a", NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    /* A bad alias target: the error names the alias. */
    CHECK_ERR(daskr_graph_add_alias(g, "al", NULL, NULL), DASKR_ERROR_INVALID_GRAPH, "al");
    CHECK_ERR(daskr_graph_add_alias(g, "al", "", NULL), DASKR_ERROR_INVALID_GRAPH, "al");
    CHECK_ERR(daskr_graph_add_alias(g, "al", "t\xff", NULL), DASKR_ERROR_INVALID_GRAPH, "al");
    CHECK(!daskr_graph_contains(g, "al"));

    /* A reference key that is not UTF-8 (or NULL, or empty) is reported when added, naming
     * the entry; the rest of the computation is released. */
    d0 = atomic_load(&tracked_destroyed);
    daskr_comp_t *r_args[] = {daskr_comp_value(tracked_value(1)), daskr_comp_ref("bad\xff")};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "r1", f, r_args, 2, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "r1");
    daskr_comp_t *r_items[] = {daskr_comp_ref(NULL), daskr_comp_value(tracked_value(2))};
    CHECK_ERR_EITHER(daskr_graph_add(g, "r2", daskr_comp_list(r_items, 2), NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "r2");
    daskr_comp_t *r3_args[] = {daskr_comp_ref(""), daskr_comp_value(tracked_value(3))};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "r3", f, r3_args, 2, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "r3");
    TAKEN(3);

    /* NULL graph: INVALID_ARGUMENT, and what was passed is released. */
    d0 = atomic_load(&tracked_destroyed);
    CHECK_ERR(daskr_graph_add_value(NULL, "x", tracked_value(1), NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_add(NULL, "x", daskr_comp_value(tracked_value(2)), NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_comp_t *ng_args[] = {daskr_comp_value(tracked_value(3))};
    const char *ngk[] = {"k"};
    daskr_comp_t *ng_kw[] = {daskr_comp_value(tracked_value(4))};
    CHECK_ERR(daskr_graph_add_task(NULL, "x", f, ng_args, 1, ngk, ng_kw, 1, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_graph_add_alias(NULL, "x", "a", NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    TAKEN(4);

    /* NULL func, NULL args/kwvalues arrays with a length, NULL items, NULL kwnames: the error
     * names the entry; every comp passed is released. */
    d0 = atomic_load(&tracked_destroyed);
    daskr_comp_t *nf_args[] = {daskr_comp_value(tracked_value(1))};
    daskr_comp_t *nf_kw[] = {daskr_comp_value(tracked_value(2))};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "nf", NULL, nf_args, 1, ngk, nf_kw, 1, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "nf");
    TAKEN(2);
    daskr_comp_t *na_kw[] = {daskr_comp_value(tracked_value(3))};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "na", f, NULL, 2, ngk, na_kw, 1, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "na");
    TAKEN(3);
    daskr_comp_t *nk_args[] = {daskr_comp_value(tracked_value(4))};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "nk", f, nk_args, 1, ngk, NULL, 1, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "nk");
    TAKEN(4);
    daskr_comp_t *ni_args[] = {daskr_comp_value(tracked_value(5)), NULL, daskr_comp_value(tracked_value(6))};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "ni", f, ni_args, 3, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "ni");
    TAKEN(6);
    daskr_comp_t *nn_args[] = {daskr_comp_value(tracked_value(7))};
    daskr_comp_t *nn_kw[] = {daskr_comp_value(tracked_value(8))};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "nn", f, nn_args, 1, NULL, nn_kw, 1, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "nn");
    TAKEN(8);
    const char *bad_names[] = {"ok", NULL};
    daskr_comp_t *bn_kw[] = {daskr_comp_value(tracked_value(9)), daskr_comp_value(tracked_value(10))};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "bn", f, NULL, 0, bad_names, bn_kw, 2, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "bn");
    TAKEN(10);
    const char *empty_name[] = {""};
    daskr_comp_t *en_kw[] = {daskr_comp_value(tracked_value(11))};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "en", f, NULL, 0, empty_name, en_kw, 1, NULL),
                     DASKR_ERROR_INVALID_ARGUMENT, DASKR_ERROR_INVALID_GRAPH, "en");
    TAKEN(11);
    const char *utf_name[] = {"n\xff"};
    daskr_comp_t *un_kw[] = {daskr_comp_value(tracked_value(12))};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "un", f, NULL, 0, utf_name, un_kw, 1, NULL),
                     DASKR_ERROR_INVALID_ARGUMENT, DASKR_ERROR_INVALID_GRAPH, "un");
    TAKEN(12);
    /* A NULL item inside a list or an inline task, deep down. */
    daskr_comp_t *deep_items[] = {daskr_comp_value(tracked_value(13)), NULL};
    daskr_comp_t *it_args[] = {daskr_comp_list(deep_items, 2), daskr_comp_value(tracked_value(14))};
    daskr_comp_t *outer_items[] = {daskr_comp_value(tracked_value(15)), daskr_comp_task(f, it_args, 2, NULL, NULL, 0)};
    CHECK_ERR_EITHER(daskr_graph_add(g, "nl", daskr_comp_list(outer_items, 2), NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "nl");
    TAKEN(15);
    /* Two keyword arguments with the same name: an error naming the entry (Dask's kwargs are
     * a dict; a second value would be unreachable by name), the values released. */
    const char *dup_names[] = {"a", "a"};
    daskr_comp_t *dk_kw[] = {daskr_comp_value(tracked_value(20)), daskr_comp_value(tracked_value(21))};
    long dk0 = atomic_load(&tracked_destroyed);
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "dk", f, NULL, 0, dup_names, dk_kw, 2, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "dk");
    CHECK(atomic_load(&tracked_destroyed) == dk0 + 2);
    CHECK(!daskr_graph_contains(g, "dk"));
    d0 += 2; /* keep TAKEN() counting the values below */
    /* A NULL literal value, a NULL computation. */
    CHECK_ERR_EITHER(daskr_graph_add(g, "nv", daskr_comp_value(NULL), NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "nv");
    CHECK_ERR(daskr_graph_add(g, "nc", NULL, NULL), DASKR_ERROR_INVALID_GRAPH, "nc");
    CHECK_ERR(daskr_graph_add_value(g, "nv2", NULL, NULL), DASKR_ERROR_INVALID_GRAPH, "nv2");

    /* A handle the graph did not hand out (from a bigger graph): an error naming the entry,
     * the comp released, the graph unchanged and the key still free to define. */
    daskr_graph_t *big = daskr_graph_new();
    daskr_task_t far = 0;
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof key, "big-%d", i);
        CHECK_OK(daskr_graph_handle(big, key, &far));
    }
    daskr_graph_free(big);
    size_t len_before = daskr_graph_len(g);
    daskr_comp_t *h_args[] = {daskr_comp_value(tracked_value(16)), daskr_comp_ref_task(far)};
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "h", f, h_args, 2, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "h");
    daskr_comp_t *h_items[] = {daskr_comp_value(tracked_value(17)), daskr_comp_ref_task((daskr_task_t)1 << 30)};
    CHECK_ERR_EITHER(daskr_graph_add(g, "h", daskr_comp_list(h_items, 2), NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "h");
    TAKEN(17);
    CHECK(daskr_graph_len(g) == len_before);
    CHECK(!daskr_graph_contains(g, "h"));
    daskr_comp_t *ok_args[] = {daskr_comp_ref("a"), int_comp(5)};
    CHECK_OK(daskr_graph_add_task(g, "h", f, ok_args, 2, NULL, NULL, 0, NULL));
    CHECK_GET_INT(g, "h", 6);

    /* None of the failed adds defined anything. */
    const char *never[] = {"al", "r1", "r2", "r3", "nf", "na", "nk", "ni", "nn", "bn", "en", "un", "nl", "nv", "nc", "nv2", "x"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) CHECK(!daskr_graph_contains(g, never[i]));
    CHECK(daskr_graph_len(g) == 2);
#undef TAKEN
    daskr_graph_free(g);
}

/* Nesting: 256 levels of lists or inline tasks are fine; 257 give an error naming the entry,
 * and the pointer literal at the bottom is released. */
static void nesting(daskr_func_t *f) {
    daskr_graph_t *g = daskr_graph_new();
    long d0 = atomic_load(&tracked_destroyed);

    daskr_comp_t *c = int_comp(3);
    for (int i = 0; i < 256; i++) c = daskr_comp_list(&c, 1);
    CHECK_OK(daskr_graph_add(g, "lists256", c, NULL));
    daskr_value_t *v = get_key(g, "lists256");
    int levels = 0;
    const daskr_value_t *inner = v;
    while (daskr_value_kind(inner) == DASKR_KIND_LIST && daskr_value_list_len(inner) == 1) {
        inner = daskr_value_list_at(inner, 0);
        levels++;
    }
    CHECK(levels == 256);
    CHECK_INT(inner, 3);
    daskr_value_free(v);

    c = daskr_comp_value(tracked_value(1));
    for (int i = 0; i < 257; i++) c = daskr_comp_list(&c, 1);
    /* (The too-deep comp may release its contents as soon as it is found too deep.) */
    CHECK(atomic_load(&tracked_destroyed) <= d0 + 1);
    {
        daskr_error_t *e = daskr_graph_add(g, "lists257", c, NULL);
        CHECK(e != NULL);
        if (e) {
            CHECK(daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT || daskr_error_kind(e) == DASKR_ERROR_INVALID_GRAPH);
            CHECK_STR(daskr_error_key(e), "lists257");
            CHECK(check_contains(daskr_error_message(e), "256"));
            daskr_error_free(e);
        }
    }
    CHECK(atomic_load(&tracked_destroyed) == d0 + 1);

    /* A list value 256 deep as a literal is fine alone; one comp level more is too deep. */
    daskr_value_t *deep = daskr_value_int(9);
    for (int i = 0; i < 256; i++) deep = list_value(&deep, 1);
    CHECK_OK(daskr_graph_add_value(g, "value256", daskr_value_clone(deep), NULL));
    daskr_comp_t *wrap = daskr_comp_value(deep);
    CHECK_ERR_EITHER(daskr_graph_add(g, "value257", daskr_comp_list(&wrap, 1), NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "value257");

    /* Inline tasks nested 256 deep: sum(sum(...sum(1)...)) */
    c = int_comp(1);
    for (int i = 0; i < 255; i++) c = daskr_comp_task(f, &c, 1, NULL, NULL, 0);
    CHECK_OK(daskr_graph_add_task(g, "tasks256", f, &c, 1, NULL, NULL, 0, NULL));
    CHECK_GET_INT(g, "tasks256", 1);
    c = daskr_comp_value(tracked_value(2));
    for (int i = 0; i < 256; i++) c = daskr_comp_task(f, &c, 1, NULL, NULL, 0);
    CHECK_ERR_EITHER(daskr_graph_add_task(g, "tasks257", f, &c, 1, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_ARGUMENT,
                     DASKR_ERROR_INVALID_GRAPH, "tasks257");
    CHECK(atomic_load(&tracked_destroyed) == d0 + 2);
    CHECK(daskr_graph_len(g) == 3);
    daskr_graph_free(g);
}

/* Computations that are never added are freed with daskr_comp_free, releasing what they hold. */
static void freed_comps(daskr_func_t *f) {
    long d0 = atomic_load(&tracked_destroyed);
    daskr_comp_free(NULL);
    daskr_comp_free(daskr_comp_value(tracked_value(1)));
    CHECK(atomic_load(&tracked_destroyed) == d0 + 1);
    daskr_comp_free(daskr_comp_ref("x"));
    daskr_comp_free(daskr_comp_ref_task(7));
    daskr_comp_free(daskr_comp_ref(NULL));
    daskr_comp_t *items[] = {daskr_comp_value(tracked_value(2)), daskr_comp_ref_task(0), daskr_comp_ref("y")};
    daskr_comp_t *args[] = {daskr_comp_list(items, 3), daskr_comp_value(tracked_value(3))};
    const char *kn[] = {"k"};
    daskr_comp_t *kw[] = {daskr_comp_value(tracked_value(4))};
    daskr_comp_free(daskr_comp_task(f, args, 2, kn, kw, 1));
    CHECK(atomic_load(&tracked_destroyed) == d0 + 4);
    /* An invalid comp (NULL func) also holds, then releases, what it was given. */
    daskr_comp_t *bad_args[] = {daskr_comp_value(tracked_value(5))};
    daskr_comp_t *bad = daskr_comp_task(NULL, bad_args, 1, NULL, NULL, 0);
    CHECK(bad != NULL);
    daskr_comp_free(bad);
    CHECK(atomic_load(&tracked_destroyed) == d0 + 5);
}

static void noop(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
}

/* A function's user data is freed exactly once: when the last graph, comp or handle using
 * it is gone; right away when daskr_func_new fails. */
static void func_user_data(void) {
    /* daskr_func_new is called directly here: 4 failing calls and 3 functions below. */
    atomic_fetch_add(&userdata_given, 7);
    long u0 = atomic_load(&userdata_freed);
    daskr_func_t *out = (daskr_func_t *)&u0;
    CHECK_ERR(daskr_func_new("f", NULL, &u0, userdata_free, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(atomic_load(&userdata_freed) == u0 + 1);
    CHECK(out == (daskr_func_t *)&u0);
    CHECK_ERR(daskr_func_new(NULL, noop, &u0, userdata_free, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_func_new("f\xff", noop, &u0, userdata_free, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_func_new("f", noop, &u0, userdata_free, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(atomic_load(&userdata_freed) == u0 + 4);
    CHECK_ERR(daskr_func_new("f", NULL, &u0, NULL, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL); /* no free fn: fine */
    daskr_func_free(NULL);

    /* Alone: freed with the func. */
    u0 = atomic_load(&userdata_freed);
    daskr_func_t *f = NULL;
    CHECK_OK(daskr_func_new("f", noop, &u0, userdata_free, &f));
    daskr_func_free(f);
    CHECK(atomic_load(&userdata_freed) == u0 + 1);

    /* Shared by two graphs and a loose comp: freed once, after the last of them. */
    u0 = atomic_load(&userdata_freed);
    CHECK_OK(daskr_func_new("f", noop, &u0, userdata_free, &f));
    daskr_graph_t *g1 = daskr_graph_new(), *g2 = daskr_graph_new();
    CHECK_OK(daskr_graph_add_task(g1, "t1", f, NULL, 0, NULL, NULL, 0, NULL));
    CHECK_OK(daskr_graph_add_task(g1, "t2", f, NULL, 0, NULL, NULL, 0, NULL));
    daskr_comp_t *inl = daskr_comp_task(f, NULL, 0, NULL, NULL, 0);
    CHECK_OK(daskr_graph_add(g2, "t", daskr_comp_task(f, &inl, 1, NULL, NULL, 0), NULL));
    daskr_comp_t *loose = daskr_comp_task(f, NULL, 0, NULL, NULL, 0);
    daskr_func_free(f);
    CHECK(atomic_load(&userdata_freed) == u0);
    daskr_value_t *v = get_key(g1, "t1");
    CHECK(daskr_value_kind(v) == DASKR_KIND_NULL); /* a task that sets nothing returns null */
    daskr_value_free(v);
    daskr_graph_free(g1);
    CHECK(atomic_load(&userdata_freed) == u0);
    daskr_comp_free(loose);
    CHECK(atomic_load(&userdata_freed) == u0);
    daskr_graph_free(g2);
    CHECK(atomic_load(&userdata_freed) == u0 + 1);

    /* A failed add (duplicate key) drops the graph's would-be reference, not the caller's. */
    u0 = atomic_load(&userdata_freed);
    CHECK_OK(daskr_func_new("f", noop, &u0, userdata_free, &f));
    g1 = daskr_graph_new();
    CHECK_OK(daskr_graph_add_value(g1, "t", daskr_value_int(0), NULL));
    CHECK_ERR(daskr_graph_add_task(g1, "t", f, NULL, 0, NULL, NULL, 0, NULL), DASKR_ERROR_INVALID_GRAPH, "t");
    CHECK(atomic_load(&userdata_freed) == u0);
    daskr_func_free(f);
    CHECK(atomic_load(&userdata_freed) == u0 + 1);
    daskr_graph_free(g1);
    CHECK(atomic_load(&userdata_freed) == u0 + 1);
}

/* Two threads adding to one graph at once: each add either succeeds or fails with
 * GRAPH_IN_USE (changing nothing, but still taking its value); retried, all land. */
typedef struct {
    daskr_graph_t *g;
    int id, n;
    long in_use, other_errors;
} adder_t;

static void *adder(void *p) {
    adder_t *a = p;
    for (int i = 0; i < a->n; i++) {
        char key[32];
        snprintf(key, sizeof key, "t%d-%d", a->id, i);
        for (;;) {
            daskr_error_t *e = i % 2 ? daskr_graph_add_value(a->g, key, tracked_value(i), NULL)
                                     : daskr_graph_add(a->g, key, daskr_comp_value(tracked_value(i)), NULL);
            if (!e) break;
            if (daskr_error_kind(e) == DASKR_ERROR_GRAPH_IN_USE)
                a->in_use++;
            else
                a->other_errors++;
            daskr_error_free(e);
            if (a->other_errors) break;
        }
    }
    return NULL;
}

static void concurrent_adds(int n) {
    daskr_graph_t *g = daskr_graph_new();
    long c0 = atomic_load(&tracked_created), d0 = atomic_load(&tracked_destroyed);
    adder_t a[2] = {{g, 0, n, 0, 0}, {g, 1, n, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, adder, &a[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(a[0].other_errors == 0 && a[1].other_errors == 0);
    CHECK(daskr_graph_len(g) == (size_t)(2 * n));
    /* Every value passed was taken: the failed attempts' were released right away. */
    long made = atomic_load(&tracked_created) - c0, gone = atomic_load(&tracked_destroyed) - d0;
    CHECK(made == 2 * n + a[0].in_use + a[1].in_use);
    CHECK(gone == a[0].in_use + a[1].in_use);
    CHECK(daskr_graph_contains(g, "t0-0") && daskr_graph_contains(g, "t1-0"));
    daskr_graph_free(g);
    CHECK(atomic_load(&tracked_destroyed) - d0 == made);
}

/* Strings passed in are copied: keys, referenced keys, keyword names, function names and
 * pointer tags may be overwritten (or freed) right after the call. */
static void kwecho(daskr_call_t *call, void *user_data) {
    (void)user_data;
    char buf[128];
    const char *name = daskr_call_kwarg_name(call, 0), *tag = daskr_value_pointer_tag(daskr_call_kwarg_at(call, 0));
    int n = snprintf(buf, sizeof buf, "%s=%s", name ? name : "?", tag ? tag : "?");
    daskr_call_return_string(call, buf, (size_t)n);
}

static void strings_are_copied(void) {
    char name[16], key[16], ref[16], kw[16], tag[16];
    strcpy(name, "kwecho");
    daskr_func_t *f = make_func(name, kwecho, NULL);
    memset(name, 'X', sizeof name - 1);
    daskr_graph_t *g = daskr_graph_new();
    char *heap_key = strdup("target");
    CHECK_OK(daskr_graph_add_value(g, heap_key, daskr_value_int(5), NULL));
    free(heap_key);
    strcpy(ref, "target");
    daskr_comp_t *r = daskr_comp_ref(ref);
    memset(ref, 'Y', sizeof ref - 1);
    CHECK_OK(daskr_graph_add(g, "alias", r, NULL));
    strcpy(tag, "my-tag");
    daskr_value_t *pv = NULL;
    CHECK_OK(daskr_value_pointer(&pv, tag, NULL, &pv));
    memset(tag, 'Z', sizeof tag - 1);
    strcpy(kw, "option");
    strcpy(key, "echo");
    const char *kwn[] = {kw};
    daskr_comp_t *kwv[] = {daskr_comp_value(pv)};
    CHECK_OK(daskr_graph_add_task(g, key, f, NULL, 0, kwn, kwv, 1, NULL));
    memset(kw, 'W', sizeof kw - 1);
    memset(key, 'V', sizeof key - 1);
    daskr_func_free(f);
    CHECK(daskr_graph_contains(g, "echo") && daskr_graph_contains(g, "alias"));
    CHECK_GET_INT(g, "alias", 5);
    daskr_value_t *out = get_key(g, "echo");
    const char *s = NULL;
    CHECK(daskr_value_get_string(out, &s, NULL));
    CHECK_STR(s, "option=my-tag");
    daskr_value_free(out);
    /* Errors name keys from their own copies too. */
    strcpy(key, "echo");
    daskr_error_t *e = daskr_graph_add_value(g, key, daskr_value_null(), NULL);
    memset(key, 'U', sizeof key - 1);
    CHECK(e && daskr_error_key(e) && strcmp(daskr_error_key(e), "echo") == 0);
    daskr_error_free(e);
    daskr_graph_free(g);
}

/* When an add fails (here: a duplicate key), the value it took is destroyed after the graph's
 * write lock is released, so a destructor that reads the same graph does not deadlock. The add
 * runs on a helper thread so a deadlock would be reported as a failure instead of hanging the
 * test (the stuck graph is then leaked on purpose). */
static daskr_graph_t *reentrant_graph;
static atomic_int reentrant_done;
static atomic_long reentrant_len = -1;

static void dtor_reads_graph(void *p) {
    (void)p;
    atomic_store(&reentrant_len, (long)daskr_graph_len(reentrant_graph));
}

static void *reentrant_add(void *p) {
    (void)p;
    daskr_value_t *v = NULL;
    daskr_error_t *e = daskr_value_pointer(&reentrant_done, "reads-graph", dtor_reads_graph, &v);
    daskr_error_free(e);
    e = daskr_graph_add_value(reentrant_graph, "a", v, NULL);
    if (e && daskr_error_kind(e) == DASKR_ERROR_INVALID_GRAPH) atomic_store(&reentrant_done, 1);
    else atomic_store(&reentrant_done, 2);
    daskr_error_free(e);
    return NULL;
}

static void destructor_reads_graph(void) {
    reentrant_graph = daskr_graph_new();
    CHECK_OK(daskr_graph_add_value(reentrant_graph, "a", daskr_value_int(1), NULL));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, reentrant_add, NULL) == 0);
    for (int i = 0; i < 3000 && !atomic_load(&reentrant_done); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(atomic_load(&reentrant_done) == 1);
    if (atomic_load(&reentrant_done)) {
        pthread_join(t, NULL);
        CHECK(atomic_load(&reentrant_len) == 1);
        daskr_graph_free(reentrant_graph);
    } else {
        pthread_detach(t); /* deadlocked: leave it */
    }
}

int main(void) {
    daskr_func_t *f = make_func("sum", sum, NULL);
    adds_and_handles(f);
    foreign_handles(f);
    forward_references(f);
    add_errors(f);
    nesting(f);
    freed_comps(f);
    daskr_func_free(f);
    func_user_data();
    concurrent_adds(check_slow_mode() ? 300 : 3000);
    strings_are_copied();
    destructor_reads_graph();
    CHECK(tracked_live() == 0);
    return check_report("graph_build");
}
