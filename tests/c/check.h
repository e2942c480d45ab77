/* Tiny assertion helpers shared by the C test programs. */
#ifndef DASKR_TEST_CHECK_H
#define DASKR_TEST_CHECK_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daskr.h"

static int check_failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                         \
        }                                                                             \
    } while (0)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                                         \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                     \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s (\"%s\") != \"%s\"\n", __FILE__, \
                    __LINE__, #a, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
            check_failures++;                                                                \
        }                                                                                    \
    } while (0)

/* Asserts a call succeeded; on failure prints the error and counts it. */
#define CHECK_OK(call)                                                                        \
    do {                                                                                      \
        daskr_error_t *check_e_ = (call);                                                     \
        if (check_e_) {                                                                       \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,         \
                    daskr_error_kind_name(daskr_error_kind(check_e_)), daskr_error_message(check_e_)); \
            daskr_error_free(check_e_);                                                       \
            check_failures++;                                                                 \
        }                                                                                     \
    } while (0)

/* Asserts a call failed with `kind` (and, if `key` is not NULL, named `key`). */
#define CHECK_ERR(call, kind, key)                                                           \
    do {                                                                                     \
        daskr_error_t *check_e_ = (call);                                                    \
        if (!check_e_) {                                                                     \
            fprintf(stderr, "%s:%d: %s succeeded, expected %s\n", __FILE__, __LINE__, #call, #kind); \
            check_failures++;                                                                \
        } else {                                                                             \
            CHECK(daskr_error_kind(check_e_) == (kind));                                     \
            if ((key) != NULL) CHECK_STR(daskr_error_key(check_e_), (const char *)(key));    \
            CHECK(daskr_error_message(check_e_) != NULL);                                   \
            daskr_error_free(check_e_);                                                      \
        }                                                                                    \
    } while (0)

/* Asserts a call failed with `kind`, named `key` (if not NULL), and involved exactly the
 * keys in the NULL-terminated list `...` in that order (if the list is non-empty). */
#define CHECK_ERR_KEYS(call, kind, key, ...)                                                 \
    do {                                                                                     \
        const char *check_keys_[] = {__VA_ARGS__, NULL};                                     \
        daskr_error_t *check_e_ = (call);                                                    \
        if (!check_e_) {                                                                     \
            fprintf(stderr, "%s:%d: %s succeeded, expected %s\n", __FILE__, __LINE__, #call, #kind); \
            check_failures++;                                                                \
        } else {                                                                             \
            CHECK(daskr_error_kind(check_e_) == (kind));                                     \
            if ((key) != NULL) CHECK_STR(daskr_error_key(check_e_), (const char *)(key));    \
            size_t check_n_ = 0;                                                             \
            while (check_keys_[check_n_]) check_n_++;                                        \
            CHECK(daskr_error_keys_len(check_e_) == check_n_);                               \
            for (size_t check_i_ = 0; check_i_ < check_n_; check_i_++)                      \
                CHECK_STR(daskr_error_keys_at(check_e_, check_i_), check_keys_[check_i_]);   \
            CHECK(daskr_error_keys_at(check_e_, check_n_) == NULL);                          \
            daskr_error_free(check_e_);                                                      \
        }                                                                                    \
    } while (0)

/* Prints an error that was not expected (for checks that keep the error to inspect it). */
static inline void check_print_error(const char *where, const daskr_error_t *e) {
    if (e)
        fprintf(stderr, "%s: unexpected error %s (key %s): %s\n", where,
                daskr_error_kind_name(daskr_error_kind(e)), daskr_error_key(e) ? daskr_error_key(e) : "-",
                daskr_error_message(e));
}

/* True if `hay` contains `needle` (NULL-safe). */
static inline int check_contains(const char *hay, const char *needle) {
    return hay && needle && strstr(hay, needle) != NULL;
}

/* ---- tracked pointer values: count creations and destructor calls ----
 * A tracked value owns a malloc'd object freed by its destructor, so valgrind also reports a
 * pointer value whose destructor never ran. */
typedef struct {
    long id;
} tracked_t;

static atomic_long tracked_created;
static atomic_long tracked_destroyed;

static inline void tracked_destroy(void *p) {
    atomic_fetch_add(&tracked_destroyed, 1);
    free(p);
}

/* A new pointer value (tag "tracked") owning a tracked_t with `id`. */
static inline daskr_value_t *tracked_value(long id) {
    tracked_t *t = malloc(sizeof *t);
    t->id = id;
    daskr_value_t *v = NULL;
    daskr_error_t *e = daskr_value_pointer(t, "tracked", tracked_destroy, &v);
    if (e) {
        check_print_error("tracked_value", e);
        daskr_error_free(e);
        free(t);
        check_failures++;
        return daskr_value_null();
    }
    atomic_fetch_add(&tracked_created, 1);
    return v;
}

/* The id of a tracked value, or -1 if `v` is not one. */
static inline long tracked_id(const daskr_value_t *v) {
    void *p = NULL;
    if (!daskr_value_get_pointer(v, "tracked", &p) || !p) return -1;
    return ((tracked_t *)p)->id;
}

static inline long tracked_live(void) {
    return atomic_load(&tracked_created) - atomic_load(&tracked_destroyed);
}

/* ---- func user data: count frees ----
 * Every function made with make_func (and every daskr_func_new given userdata_free, counted
 * by hand in userdata_given) must have its user data freed exactly once by the end:
 * check_report checks it. */
static atomic_long userdata_freed;
static atomic_long userdata_given;

static inline void userdata_free(void *p) {
    (void)p;
    atomic_fetch_add(&userdata_freed, 1);
}

/* ---- building ---- */

/* A new string value (aborts the test on failure: the strings used are valid). */
static inline daskr_value_t *str_value(const char *s) {
    daskr_value_t *v = NULL;
    daskr_error_t *e = daskr_value_string(s, strlen(s), &v);
    if (e) {
        check_print_error("str_value", e);
        daskr_error_free(e);
        check_failures++;
        return daskr_value_null();
    }
    return v;
}

static inline daskr_comp_t *int_comp(int64_t i) { return daskr_comp_value(daskr_value_int(i)); }

static inline daskr_comp_t *str_comp(const char *s) { return daskr_comp_value(str_value(s)); }

/* A list value of the `n` values in `items` (taken). */
static inline daskr_value_t *list_value(daskr_value_t **items, size_t n) {
    daskr_value_t *v = NULL;
    daskr_error_t *e = daskr_value_list(items, n, &v);
    if (e) {
        check_print_error("list_value", e);
        daskr_error_free(e);
        check_failures++;
        return daskr_value_null();
    }
    return v;
}

/* A list value of string keys from a NULL-terminated list. */
static inline daskr_value_t *keys_value(const char *const *keys) {
    size_t n = 0;
    while (keys[n]) n++;
    daskr_value_t **items = malloc((n ? n : 1) * sizeof *items);
    for (size_t i = 0; i < n; i++) items[i] = str_value(keys[i]);
    daskr_value_t *v = list_value(items, n);
    free(items);
    return v;
}

/* A function, or NULL (counted as a failure). */
static inline daskr_func_t *make_func(const char *name, daskr_task_fn fn, void *user_data) {
    daskr_func_t *f = NULL;
    atomic_fetch_add(&userdata_given, 1);
    daskr_error_t *e = daskr_func_new(name, fn, user_data, userdata_free, &f);
    if (e) {
        check_print_error("make_func", e);
        daskr_error_free(e);
        check_failures++;
    }
    return f;
}

/* Options for one scheduler and worker count. */
static inline daskr_get_options_t make_options(daskr_scheduler_t s, uint32_t workers) {
    daskr_get_options_t o;
    daskr_get_options_init(&o, sizeof o);
    o.scheduler = s;
    o.num_workers = workers;
    return o;
}

/* The int in `v`, or INT64_MIN (and a failure) if it is not one. */
#define CHECK_INT(v, expected)                                                                \
    do {                                                                                      \
        int64_t check_i_ = INT64_MIN;                                                         \
        if (!daskr_value_get_int((v), &check_i_) || check_i_ != (int64_t)(expected)) {        \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s is %lld (kind %d), expected %lld\n", \
                    __FILE__, __LINE__, #v, (long long)check_i_, (int)daskr_value_kind(v),    \
                    (long long)(expected));                                                   \
            check_failures++;                                                                 \
        }                                                                                     \
    } while (0)

/* Environment knobs: DASKR_C_CHECK (valgrind/asan) means run a smaller workload. */
static inline int check_slow_mode(void) {
    const char *c = getenv("DASKR_C_CHECK");
    return c && *c;
}

static int check_report(const char *name) {
    if (atomic_load(&userdata_freed) != atomic_load(&userdata_given)) {
        fprintf(stderr, "%s: %ld function user data given, %ld freed\n", name, (long)atomic_load(&userdata_given),
                (long)atomic_load(&userdata_freed));
        check_failures++;
    }
    if (check_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
