/* Values over the C ABI: every constructor and accessor, ownership of list items and pointer
 * values (destructor calls counted), clone / equal / free, and the error accessors. */
#include "check.h"

static void scalars(void) {
    daskr_value_t *n = daskr_value_null(), *t = daskr_value_bool(true), *f = daskr_value_bool(false);
    daskr_value_t *i = daskr_value_int(-42), *big = daskr_value_int(INT64_MAX), *x = daskr_value_float(2.5);
    CHECK(daskr_value_kind(n) == DASKR_KIND_NULL);
    CHECK(daskr_value_kind(t) == DASKR_KIND_BOOL);
    CHECK(daskr_value_kind(i) == DASKR_KIND_INT);
    CHECK(daskr_value_kind(x) == DASKR_KIND_FLOAT);
    CHECK(daskr_value_kind(NULL) == DASKR_KIND_NULL);

    bool b = false;
    CHECK(daskr_value_get_bool(t, &b) && b == true);
    CHECK(daskr_value_get_bool(f, &b) && b == false);
    int64_t iv = 0;
    CHECK(daskr_value_get_int(i, &iv) && iv == -42);
    CHECK(daskr_value_get_int(big, &iv) && iv == INT64_MAX);
    double d = 0;
    CHECK(daskr_value_get_float(x, &d) && d == 2.5);

    /* Wrong-type accessors return false and leave the out parameter alone. */
    b = true;
    CHECK(!daskr_value_get_bool(n, &b) && b == true);
    CHECK(!daskr_value_get_bool(i, &b) && b == true);
    iv = 7;
    CHECK(!daskr_value_get_int(x, &iv) && iv == 7); /* a float is not an int */
    CHECK(!daskr_value_get_int(t, &iv) && iv == 7);
    CHECK(!daskr_value_get_int(n, &iv) && iv == 7);
    CHECK(!daskr_value_get_int(NULL, &iv) && iv == 7);
    d = 9.75;
    CHECK(!daskr_value_get_float(i, &d) && d == 9.75); /* an int is not a float */
    const char *s = "sentinel";
    size_t len = 1234;
    CHECK(!daskr_value_get_string(i, &s, &len) && strcmp(s, "sentinel") == 0 && len == 1234);
    const uint8_t *bytes = (const uint8_t *)"z";
    CHECK(!daskr_value_get_bytes(x, &bytes, &len) && bytes[0] == 'z' && len == 1234);
    void *p = &iv;
    CHECK(!daskr_value_get_pointer(i, NULL, &p) && p == &iv);
    CHECK(daskr_value_pointer_tag(i) == NULL);
    CHECK(daskr_value_list_len(i) == 0);
    CHECK(daskr_value_list_at(i, 0) == NULL);

    daskr_value_free(n);
    daskr_value_free(t);
    daskr_value_free(f);
    daskr_value_free(i);
    daskr_value_free(big);
    daskr_value_free(x);
}

static void strings(void) {
    /* UTF-8 text, copied; the view is NUL-terminated and its length excludes the NUL. */
    const char *text = "h\xc3\xa9llo \xe2\x82\xac"; /* "héllo €" */
    daskr_value_t *v = NULL;
    CHECK_OK(daskr_value_string(text, strlen(text), &v));
    CHECK(daskr_value_kind(v) == DASKR_KIND_STRING);
    const char *data = NULL;
    size_t len = 0;
    CHECK(daskr_value_get_string(v, &data, &len));
    CHECK(len == strlen(text) && data && memcmp(data, text, len) == 0 && data[len] == '\0');
    CHECK(data != text); /* copied */
    CHECK(daskr_value_get_string(v, &data, NULL)); /* len may be NULL */
    CHECK_STR(data, text);
    daskr_value_free(v);

    /* Only `len` bytes are copied: the source need not be NUL-terminated. */
    char unterminated[4] = {'a', 'b', 'c', 'd'};
    CHECK_OK(daskr_value_string(unterminated, 3, &v));
    CHECK(daskr_value_get_string(v, &data, &len) && len == 3);
    CHECK_STR(data, "abc");
    daskr_value_free(v);

    /* Embedded NUL: the length says how long the string is. */
    CHECK_OK(daskr_value_string("a\0b", 3, &v));
    CHECK(daskr_value_get_string(v, &data, &len) && len == 3);
    CHECK(data[0] == 'a' && data[1] == '\0' && data[2] == 'b' && data[3] == '\0');
    daskr_value_free(v);

    /* Empty, also from NULL with length 0. */
    CHECK_OK(daskr_value_string(NULL, 0, &v));
    CHECK(daskr_value_get_string(v, &data, &len) && len == 0 && data && data[0] == '\0');
    daskr_value_t *e2 = NULL;
    CHECK_OK(daskr_value_string("", 0, &e2));
    CHECK(daskr_value_equal(v, e2));
    daskr_value_free(v);
    daskr_value_free(e2);

    /* Not UTF-8: an error, and *out is left alone. */
    daskr_value_t *sentinel = (daskr_value_t *)&len;
    v = sentinel;
    CHECK_ERR(daskr_value_string("ok\xff", 3, &v), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(v == sentinel);
    CHECK_ERR(daskr_value_string("\xc3", 1, &v), DASKR_ERROR_INVALID_ARGUMENT, NULL); /* truncated */
    CHECK_ERR(daskr_value_string("\xed\xa0\x80", 3, &v), DASKR_ERROR_INVALID_ARGUMENT, NULL); /* surrogate */
    CHECK_ERR(daskr_value_string("\xc0\xaf", 2, &v), DASKR_ERROR_INVALID_ARGUMENT, NULL); /* overlong */
    CHECK(v == sentinel);
    /* NULL data with a length, NULL out. */
    CHECK_ERR(daskr_value_string(NULL, 5, &v), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(v == sentinel);
    /* A NULL `out`: an error, and what was made or taken is released (no leak: valgrind;
     * a list's taken items have their destructors run). */
    CHECK_ERR(daskr_value_string("x", 1, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_value_bytes((const uint8_t *)"x", 1, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    {
        long destroyed = atomic_load(&tracked_destroyed);
        daskr_value_t *taken[] = {tracked_value(1), tracked_value(2)};
        CHECK_ERR(daskr_value_list(taken, 2, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
        CHECK(atomic_load(&tracked_destroyed) == destroyed + 2); /* taken "on failure too" */
    }

    /* A string is not bytes and vice versa. */
    CHECK_OK(daskr_value_string("abc", 3, &v));
    const uint8_t *bp = (const uint8_t *)"q";
    CHECK(!daskr_value_get_bytes(v, &bp, &len) && bp[0] == 'q');
    daskr_value_free(v);
}

static void bytes(void) {
    const uint8_t raw[5] = {0, 255, 0, 'x', 0};
    daskr_value_t *v = NULL;
    CHECK_OK(daskr_value_bytes(raw, sizeof raw, &v));
    CHECK(daskr_value_kind(v) == DASKR_KIND_BYTES);
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK(daskr_value_get_bytes(v, &data, &len) && len == 5 && memcmp(data, raw, 5) == 0 && data != raw);
    const char *s = "sentinel";
    CHECK(!daskr_value_get_string(v, &s, &len) && strcmp(s, "sentinel") == 0 && len == 5);

    /* Bytes are compared by content; bytes never equal a string with the same content. */
    daskr_value_t *same = NULL, *other = NULL, *str = NULL;
    CHECK_OK(daskr_value_bytes(raw, sizeof raw, &same));
    CHECK_OK(daskr_value_bytes(raw, 4, &other));
    CHECK_OK(daskr_value_string("abc", 3, &str));
    daskr_value_t *abc = NULL;
    CHECK_OK(daskr_value_bytes((const uint8_t *)"abc", 3, &abc));
    CHECK(daskr_value_equal(v, same));
    CHECK(!daskr_value_equal(v, other));
    CHECK(!daskr_value_equal(str, abc));
    daskr_value_free(same);
    daskr_value_free(other);
    daskr_value_free(str);
    daskr_value_free(abc);
    daskr_value_free(v);

    /* Length 0, with and without data. */
    CHECK_OK(daskr_value_bytes(NULL, 0, &v));
    data = raw;
    len = 99;
    CHECK(daskr_value_get_bytes(v, &data, &len) && len == 0);
    daskr_value_t *v2 = NULL;
    CHECK_OK(daskr_value_bytes(raw, 0, &v2));
    CHECK(daskr_value_equal(v, v2));
    daskr_value_free(v);
    daskr_value_free(v2);

    daskr_value_t *sentinel = (daskr_value_t *)&len;
    v = sentinel;
    CHECK_ERR(daskr_value_bytes(NULL, 3, &v), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(v == sentinel);
}

static void lists(void) {
    /* Empty list, also from a NULL array. */
    daskr_value_t *empty = NULL;
    CHECK_OK(daskr_value_list(NULL, 0, &empty));
    CHECK(daskr_value_kind(empty) == DASKR_KIND_LIST);
    CHECK(daskr_value_list_len(empty) == 0);
    CHECK(daskr_value_list_at(empty, 0) == NULL);

    /* Mixed items, borrowed views. */
    long before = atomic_load(&tracked_destroyed);
    daskr_value_t *items[] = {daskr_value_int(1), str_value("two"), tracked_value(3), daskr_value_null(), empty};
    daskr_value_t *l = NULL;
    CHECK_OK(daskr_value_list(items, 5, &l));
    CHECK(daskr_value_list_len(l) == 5);
    CHECK_INT(daskr_value_list_at(l, 0), 1);
    const char *s = NULL;
    CHECK(daskr_value_get_string(daskr_value_list_at(l, 1), &s, NULL));
    CHECK_STR(s, "two");
    CHECK(tracked_id(daskr_value_list_at(l, 2)) == 3);
    CHECK(daskr_value_kind(daskr_value_list_at(l, 3)) == DASKR_KIND_NULL);
    CHECK(daskr_value_kind(daskr_value_list_at(l, 4)) == DASKR_KIND_LIST);
    CHECK(daskr_value_list_at(l, 5) == NULL);
    CHECK(daskr_value_list_at(l, (size_t)-1) == NULL);

    /* Equality is structural. */
    daskr_value_t *items2[] = {daskr_value_int(1), str_value("two"), daskr_value_clone(daskr_value_list_at(l, 2)),
                               daskr_value_null(), list_value(NULL, 0)};
    daskr_value_t *l2 = list_value(items2, 5);
    CHECK(daskr_value_equal(l, l2));
    daskr_value_t *items3[] = {daskr_value_int(1), str_value("two"), tracked_value(3), daskr_value_null(),
                               list_value(NULL, 0)};
    daskr_value_t *l3 = list_value(items3, 5);
    CHECK(!daskr_value_equal(l, l3)); /* another pointer value with the same id: not the same object */
    daskr_value_t *short_items[] = {daskr_value_int(1)};
    daskr_value_t *l4 = list_value(short_items, 1);
    CHECK(!daskr_value_equal(l, l4));
    daskr_value_free(l2);
    daskr_value_free(l3);
    daskr_value_free(l4);
    CHECK(atomic_load(&tracked_destroyed) == before + 1); /* l3's pointer; l2 shared l's */

    /* An item outlives the list through a clone. */
    daskr_value_t *kept = daskr_value_clone(daskr_value_list_at(l, 2));
    daskr_value_free(l);
    CHECK(atomic_load(&tracked_destroyed) == before + 1);
    CHECK(tracked_id(kept) == 3);
    daskr_value_free(kept);
    CHECK(atomic_load(&tracked_destroyed) == before + 2);

    /* A NULL item: an error, and every other item was still taken (and released). */
    before = atomic_load(&tracked_destroyed);
    daskr_value_t *bad_items[] = {tracked_value(10), NULL, tracked_value(11)};
    daskr_value_t *sentinel = (daskr_value_t *)&before, *out = sentinel;
    CHECK_ERR(daskr_value_list(bad_items, 3, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(out == sentinel);
    CHECK(atomic_load(&tracked_destroyed) == before + 2);
    /* A NULL array with a length. */
    CHECK_ERR(daskr_value_list(NULL, 2, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(out == sentinel);

    /* Nesting: 256 levels are fine, 257 are an error that still releases everything. */
    before = atomic_load(&tracked_destroyed);
    daskr_value_t *deep = tracked_value(256);
    for (int level = 1; level <= 256; level++) {
        daskr_value_t *one[] = {deep};
        daskr_value_t *next = NULL;
        daskr_error_t *e = daskr_value_list(one, 1, &next);
        if (e) {
            fprintf(stderr, "nesting level %d failed: %s\n", level, daskr_error_message(e));
            daskr_error_free(e);
            check_failures++;
            deep = NULL;
            break;
        }
        deep = next;
    }
    if (deep) {
        const daskr_value_t *inner = deep;
        int levels = 0;
        while (daskr_value_kind(inner) == DASKR_KIND_LIST) {
            inner = daskr_value_list_at(inner, 0);
            levels++;
        }
        CHECK(levels == 256);
        CHECK(tracked_id(inner) == 256);
        daskr_value_t *deeper = daskr_value_clone(deep);
        daskr_value_t *one[] = {deeper};
        out = sentinel;
        daskr_error_t *e = daskr_value_list(one, 1, &out);
        CHECK(e != NULL && daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT);
        CHECK(e != NULL && check_contains(daskr_error_message(e), "256"));
        daskr_error_free(e);
        CHECK(out == sentinel);
        CHECK(atomic_load(&tracked_destroyed) == before); /* `deep` still holds it */
        /* Wide is fine at any depth below the limit: two deep lists side by side. */
        daskr_value_t *pair[] = {daskr_value_int(0), daskr_value_clone(daskr_value_list_at(deep, 0))};
        daskr_value_t *wide = list_value(pair, 2);
        CHECK(daskr_value_list_len(wide) == 2);
        daskr_value_free(wide);
        daskr_value_free(deep);
    }
    CHECK(atomic_load(&tracked_destroyed) == before + 1);
}

static atomic_int plain_destroyed;
static void plain_destroy(void *p) {
    (void)p;
    atomic_fetch_add(&plain_destroyed, 1);
}

static void pointers(void) {
    long before = atomic_load(&tracked_destroyed);
    daskr_value_t *v = tracked_value(77);
    CHECK(daskr_value_kind(v) == DASKR_KIND_POINTER);
    CHECK_STR(daskr_value_pointer_tag(v), "tracked");
    void *p = NULL;
    CHECK(daskr_value_get_pointer(v, "tracked", &p) && p && ((tracked_t *)p)->id == 77);
    void *q = NULL;
    CHECK(daskr_value_get_pointer(v, NULL, &q) && q == p); /* NULL tag: no check */
    void *untouched = &before;
    q = untouched;
    CHECK(!daskr_value_get_pointer(v, "other", &q) && q == untouched);
    CHECK(!daskr_value_get_pointer(v, "tracke", &q) && q == untouched);
    CHECK(!daskr_value_get_pointer(v, "trackedX", &q) && q == untouched);
    CHECK(!daskr_value_get_pointer(v, "", &q) && q == untouched);

    /* The destructor runs once, after the last of the clones is freed. */
    daskr_value_t *c1 = daskr_value_clone(v), *c2 = daskr_value_clone(c1);
    CHECK(daskr_value_equal(v, c1) && daskr_value_equal(c2, v));
    daskr_value_free(v);
    daskr_value_free(c1);
    CHECK(atomic_load(&tracked_destroyed) == before);
    CHECK(daskr_value_get_pointer(c2, "tracked", &q) && q == p);
    daskr_value_free(c2);
    CHECK(atomic_load(&tracked_destroyed) == before + 1);

    /* Two pointer values are different values, even with the same tag. */
    daskr_value_t *a = tracked_value(1), *b = tracked_value(1);
    CHECK(!daskr_value_equal(a, b));
    daskr_value_free(a);
    daskr_value_free(b);
    CHECK(atomic_load(&tracked_destroyed) == before + 3);

    /* A NULL tag means ""; a NULL destructor is allowed; a NULL pointer is a value too. */
    static int object;
    daskr_value_t *n = NULL;
    CHECK_OK(daskr_value_pointer(&object, NULL, NULL, &n));
    CHECK_STR(daskr_value_pointer_tag(n), "");
    CHECK(daskr_value_get_pointer(n, "", &q) && q == &object);
    daskr_value_free(n);
    CHECK_OK(daskr_value_pointer(NULL, "nothing", plain_destroy, &n));
    q = untouched;
    CHECK(daskr_value_get_pointer(n, "nothing", &q) && q == NULL);
    daskr_value_free(n);
    CHECK(atomic_load(&plain_destroyed) == 1);

    /* On failure nothing is taken: the destructor does not run. */
    daskr_value_t *sentinel = (daskr_value_t *)&object, *out = sentinel;
    CHECK_ERR(daskr_value_pointer(&object, "bad\xff tag", plain_destroy, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(out == sentinel);
    CHECK_ERR(daskr_value_pointer(&object, "t", plain_destroy, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(atomic_load(&plain_destroyed) == 1);

    /* Clones from several threads' worth of references: still once. */
    daskr_value_t *shared = tracked_value(5);
    daskr_value_t *clones[64];
    for (int i = 0; i < 64; i++) clones[i] = daskr_value_clone(i ? clones[i - 1] : shared);
    daskr_value_free(shared);
    for (int i = 63; i >= 1; i--) daskr_value_free(clones[i]);
    CHECK(atomic_load(&tracked_destroyed) == before + 3);
    daskr_value_free(clones[0]);
    CHECK(atomic_load(&tracked_destroyed) == before + 4);
}

static void clone_equal_free(void) {
    CHECK(daskr_value_clone(NULL) == NULL);
    daskr_value_free(NULL);
    CHECK(daskr_value_equal(NULL, NULL));
    daskr_value_t *i = daskr_value_int(1), *f = daskr_value_float(1.0), *i2 = daskr_value_int(1);
    daskr_value_t *t = daskr_value_bool(true), *nul = daskr_value_null(), *nul2 = daskr_value_null();
    CHECK(!daskr_value_equal(i, NULL) && !daskr_value_equal(NULL, i));
    CHECK(!daskr_value_equal(nul, NULL)); /* a null value is not a NULL pointer */
    CHECK(daskr_value_equal(nul, nul2));
    CHECK(daskr_value_equal(i, i2));
    CHECK(!daskr_value_equal(i, f)); /* kinds differ */
    CHECK(!daskr_value_equal(i, t));
    daskr_value_t *f2 = daskr_value_float(1.0), *f3 = daskr_value_float(1.5);
    CHECK(daskr_value_equal(f, f2) && !daskr_value_equal(f, f3));
    daskr_value_t *c = daskr_value_clone(i);
    CHECK(c != i && daskr_value_equal(c, i));
    daskr_value_free(i); /* the clone is independent */
    CHECK_INT(c, 1);
    daskr_value_t *s1 = str_value("abc"), *s2 = str_value("abc"), *s3 = str_value("abd");
    CHECK(daskr_value_equal(s1, s2) && !daskr_value_equal(s1, s3));
    daskr_value_t *sc = daskr_value_clone(s1);
    daskr_value_free(s1);
    const char *data = NULL;
    CHECK(daskr_value_get_string(sc, &data, NULL));
    CHECK_STR(data, "abc");
    daskr_value_free(sc);
    daskr_value_free(s2);
    daskr_value_free(s3);
    daskr_value_free(c);
    daskr_value_free(f);
    daskr_value_free(f2);
    daskr_value_free(f3);
    daskr_value_free(i2);
    daskr_value_free(t);
    daskr_value_free(nul);
    daskr_value_free(nul2);
}

static void errors_and_version(void) {
    const char *v = daskr_version();
    CHECK(v && *v && strchr(v, '.') != NULL);
    CHECK(daskr_abi_version() == DASKR_ABI_VERSION);

    struct {
        daskr_error_kind_t kind;
        const char *name;
    } kinds[] = {
        {DASKR_ERROR_TASK_FAILED, "task_failed"},
        {DASKR_ERROR_CYCLE, "cycle"},
        {DASKR_ERROR_MISSING_DEPENDENCY, "missing_dependency"},
        {DASKR_ERROR_MISSING_KEY, "missing_key"},
        {DASKR_ERROR_INVALID_GRAPH, "invalid_graph"},
        {DASKR_ERROR_PLUGIN, "plugin"},
        {DASKR_ERROR_CANCELLED, "cancelled"},
        {DASKR_ERROR_WORKER_DIED, "worker_died"},
        {DASKR_ERROR_INVALID_ARGUMENT, "invalid_argument"},
        {DASKR_ERROR_GRAPH_IN_USE, "graph_in_use"},
        {DASKR_ERROR_TYPE_MISMATCH, "type_mismatch"},
        {DASKR_ERROR_INTERNAL, "internal"},
        {DASKR_ERROR_IO, "io"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) CHECK_STR(daskr_error_kind_name(kinds[i].kind), kinds[i].name);

    /* An error about no key in particular. */
    daskr_value_t *out = NULL;
    daskr_error_t *e = daskr_value_string("\xff", 1, &out);
    CHECK(e != NULL);
    if (e) {
        CHECK(daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT);
        CHECK(daskr_error_key(e) == NULL);
        CHECK(daskr_error_keys_len(e) == 0);
        CHECK(daskr_error_keys_at(e, 0) == NULL);
        CHECK(check_contains(daskr_error_message(e), "UTF-8"));
        daskr_error_free(e);
    }
    daskr_error_free(NULL);
}

/* The binary encoding: every kind round-trips; pointers do not encode; untrusted input —
 * every truncation, every single-byte change, random bytes — gives a value or an
 * INVALID_ARGUMENT error, never a crash, and *out is left alone on error. */
static daskr_value_t *sample_value(void) {
    daskr_value_t *b = NULL, *s = NULL, *e = NULL;
    CHECK_OK(daskr_value_bytes((const uint8_t *)"\x00\xff\x01", 3, &b));
    CHECK_OK(daskr_value_string("h\xc3\xa9 \x00 z", 7, &s));
    CHECK_OK(daskr_value_string(NULL, 0, &e));
    daskr_value_t *inner[] = {daskr_value_int(-1), daskr_value_float(-0.5), list_value(NULL, 0)};
    daskr_value_t *items[] = {daskr_value_null(),         daskr_value_bool(true),      daskr_value_bool(false),
                              daskr_value_int(0),         daskr_value_int(INT64_MIN), daskr_value_int(INT64_MAX),
                              daskr_value_int(300),       daskr_value_float(3.25),    daskr_value_float(-1e300),
                              s,                          e,                          b,
                              list_value(inner, 3)};
    return list_value(items, sizeof items / sizeof items[0]);
}

static uint64_t fuzz_state = 12345;
static uint32_t fuzz_next(void) {
    fuzz_state = fuzz_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(fuzz_state >> 33);
}

/* Decodes untrusted bytes: a value (freed) or INVALID_ARGUMENT with *out untouched. */
static int decode_untrusted(const uint8_t *data, size_t len) {
    daskr_value_t *sentinel = (daskr_value_t *)&fuzz_state, *out = sentinel;
    daskr_error_t *e = daskr_value_decode(data, len, &out);
    if (e) {
        CHECK(daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT);
        CHECK(out == sentinel);
        daskr_error_free(e);
        return 0;
    }
    CHECK(out != sentinel && out != NULL);
    /* What decoded encodes again, to something that decodes equal. */
    daskr_value_t *again = NULL, *back = NULL;
    CHECK_OK(daskr_value_encode(out, &again));
    const uint8_t *d2 = NULL;
    size_t l2 = 0;
    if (again && daskr_value_get_bytes(again, &d2, &l2)) {
        CHECK_OK(daskr_value_decode(d2, l2, &back));
        CHECK(back && daskr_value_equal(back, out));
    }
    daskr_value_free(back);
    daskr_value_free(again);
    daskr_value_free(out);
    return 1;
}

static void encoding(int slow) {
    daskr_value_t *v = sample_value(), *enc = NULL, *dec = NULL;
    CHECK_OK(daskr_value_encode(v, &enc));
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK(daskr_value_get_bytes(enc, &data, &len) && len > 10);
    CHECK(data && data[0] == 1); /* version 1 */
    CHECK_OK(daskr_value_decode(data, len, &dec));
    CHECK(daskr_value_equal(v, dec));
    daskr_value_free(dec);

    /* Small values stay small: 5 is 03 0a after the version byte; null is 00. */
    daskr_value_t *five = daskr_value_int(5), *e5 = NULL;
    CHECK_OK(daskr_value_encode(five, &e5));
    const uint8_t *d5 = NULL;
    size_t l5 = 0;
    CHECK(daskr_value_get_bytes(e5, &d5, &l5) && l5 == 3 && d5[1] == 0x03 && d5[2] == 0x0a);
    daskr_value_free(five);
    daskr_value_free(e5);

    /* Every truncation is an error; every single-byte change decodes or errors. */
    for (size_t n = 0; n < len; n++) CHECK(decode_untrusted(data, n) == 0);
    uint8_t *copy = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        for (int k = 0; k < (slow ? 2 : 8); k++) {
            memcpy(copy, data, len);
            copy[i] = (uint8_t)fuzz_next();
            decode_untrusted(copy, len);
        }
    }
    memcpy(copy, data, len);
    copy[len] = 0;
    CHECK(decode_untrusted(copy, len + 1) == 0); /* trailing bytes */
    copy[0] = 2;
    CHECK(decode_untrusted(copy, len) == 0); /* unknown version */
    free(copy);
    /* Random messages after a valid version byte. */
    uint8_t buf[64];
    for (int i = 0; i < (slow ? 2000 : 50000); i++) {
        size_t n = 1 + fuzz_next() % sizeof buf;
        buf[0] = 1;
        for (size_t k = 1; k < n; k++) buf[k] = (uint8_t)(fuzz_next() % 4 ? fuzz_next() % 9 : fuzz_next());
        decode_untrusted(buf, n);
    }
    /* Hostile lengths and counts: a huge list count, a huge string length, a long varint. */
    const uint8_t huge_list[] = {1, 0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    const uint8_t huge_str[] = {1, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'};
    const uint8_t long_varint[] = {1, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t bad_utf8[] = {1, 0x05, 0x01, 0xff};
    CHECK(decode_untrusted(huge_list, sizeof huge_list) == 0);
    CHECK(decode_untrusted(huge_str, sizeof huge_str) == 0);
    CHECK(decode_untrusted(long_varint, sizeof long_varint) == 0);
    CHECK(decode_untrusted(bad_utf8, sizeof bad_utf8) == 0);
    CHECK(decode_untrusted(NULL, 0) == 0);
    /* Nesting: 256 levels decode, 257 do not. */
    uint8_t nest[1 + 2 * 257 + 1];
    nest[0] = 1;
    for (int i = 0; i < 257; i++) {
        nest[1 + 2 * i] = 0x07;
        nest[2 + 2 * i] = 0x01;
    }
    nest[1 + 2 * 257] = 0x00;
    CHECK(decode_untrusted(nest, sizeof nest) == 0);
    nest[1 + 2 * 256] = 0x00; /* 256 lists around a null */
    CHECK(decode_untrusted(nest, 1 + 2 * 256 + 1) == 1);

    /* Pointers do not encode: INVALID_ARGUMENT naming the type tag; nothing is taken. */
    daskr_value_t *items[] = {daskr_value_int(1), tracked_value(9)};
    daskr_value_t *with_ptr = list_value(items, 2), *sentinel = (daskr_value_t *)&len, *out = sentinel;
    daskr_error_t *e = daskr_value_encode(with_ptr, &out);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT && check_contains(daskr_error_message(e), "tracked"));
    daskr_error_free(e);
    CHECK(out == sentinel);
    CHECK(tracked_id(daskr_value_list_at(with_ptr, 1)) == 9);
    daskr_value_free(with_ptr);
    CHECK_ERR(daskr_value_encode(NULL, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_value_encode(v, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_value_decode(data, len, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_value_decode(NULL, 4, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(out == sentinel);
    daskr_value_free(enc);
    daskr_value_free(v);
}

/* A task reading a map argument by name: get(map, name). */
static void map_get_task(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *name = NULL;
    const daskr_value_t *m = daskr_call_arg(call, 0);
    if (daskr_value_kind(m) != DASKR_KIND_MAP || !daskr_value_get_string(daskr_call_arg(call, 1), &name, NULL)) {
        daskr_call_fail(call, "get: expected a map and a name");
        return;
    }
    const daskr_value_t *v = daskr_value_map_get(m, name);
    if (!v) {
        daskr_call_fail(call, "get: no such name");
        return;
    }
    daskr_call_return(call, daskr_value_clone(v));
}

static void maps(void) {
    long before = atomic_load(&tracked_destroyed);
    const char *names[] = {"file", "count", "ptr"};
    daskr_value_t *values[] = {NULL, daskr_value_int(3), tracked_value(5)};
    CHECK_OK(daskr_value_string("a.csv", 5, &values[0]));
    daskr_value_t *m = NULL;
    CHECK_OK(daskr_value_map(names, NULL, values, 3, &m));
    CHECK(daskr_value_kind(m) == DASKR_KIND_MAP);
    CHECK(daskr_value_map_len(m) == 3);
    size_t len = 0;
    for (size_t i = 0; i < 3; i++) CHECK_STR(daskr_value_map_name(m, i, &len), names[i]);
    CHECK(daskr_value_map_name(m, 0, &len) && len == 4);
    CHECK(daskr_value_map_name(m, 3, &len) == NULL && daskr_value_map_value(m, 3) == NULL);
    int64_t i = 0;
    CHECK(daskr_value_get_int(daskr_value_map_value(m, 1), &i) && i == 3);
    CHECK(daskr_value_get_int(daskr_value_map_get(m, "count"), &i) && i == 3);
    CHECK(daskr_value_map_get(m, "nope") == NULL && daskr_value_map_get(m, NULL) == NULL);
    CHECK(daskr_value_kind(daskr_value_map_get(m, "ptr")) == DASKR_KIND_POINTER);
    /* Other kinds have no entries. */
    daskr_value_t *n = daskr_value_int(1);
    CHECK(daskr_value_map_len(n) == 0 && daskr_value_map_get(n, "file") == NULL);
    CHECK(daskr_value_map_name(n, 0, NULL) == NULL && daskr_value_map_value(n, 0) == NULL);
    CHECK(daskr_value_list_len(m) == 0);
    daskr_value_free(n);

    /* Names with lengths may hold NULs; equality ignores order, as Python's dicts do. */
    const char *named[] = {"a\0b", "ptr"};
    size_t lens[] = {3, 3};
    daskr_value_t *two[] = {daskr_value_int(1), daskr_value_clone(daskr_value_map_get(m, "ptr"))};
    daskr_value_t *m2 = NULL;
    CHECK_OK(daskr_value_map(named, lens, two, 2, &m2));
    CHECK(daskr_value_map_name(m2, 0, &len) && len == 3 && memcmp(daskr_value_map_name(m2, 0, NULL), "a\0b", 4) == 0);
    const char *ab[] = {"a", "b"}, *ba[] = {"b", "a"};
    daskr_value_t *x1[] = {daskr_value_int(1), daskr_value_int(2)}, *x2[] = {daskr_value_int(2), daskr_value_int(1)};
    daskr_value_t *mab = NULL, *mba = NULL;
    CHECK_OK(daskr_value_map(ab, NULL, x1, 2, &mab));
    CHECK_OK(daskr_value_map(ba, NULL, x2, 2, &mba));
    CHECK(daskr_value_equal(mab, mba) && !daskr_value_equal(mab, m2));

    /* Bad input: an error naming the entry; every value is taken (on failure too). */
    daskr_value_t *sentinel = (daskr_value_t *)&before, *out = sentinel;
    const char *twice[] = {"k", "k"};
    daskr_value_t *tv[] = {tracked_value(6), tracked_value(7)};
    daskr_error_t *e = daskr_value_map(twice, NULL, tv, 2, &out);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT && strstr(daskr_error_message(e), "\"k\" is given twice"));
    daskr_error_free(e);
    const char *with_null[] = {"a", NULL};
    daskr_value_t *tv2[] = {tracked_value(8), tracked_value(9)};
    e = daskr_value_map(with_null, NULL, tv2, 2, &out);
    CHECK(e && strstr(daskr_error_message(e), "map name 1 is NULL"));
    daskr_error_free(e);
    daskr_value_t *tv3[] = {tracked_value(10), NULL};
    e = daskr_value_map(ab, NULL, tv3, 2, &out);
    CHECK(e && strstr(daskr_error_message(e), "\"b\""));
    daskr_error_free(e);
    const char *bad_utf8[] = {"\xff"};
    daskr_value_t *tv4[] = {tracked_value(11)};
    CHECK_ERR(daskr_value_map(bad_utf8, NULL, tv4, 1, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(out == sentinel);
    CHECK(atomic_load(&tracked_destroyed) == before + 6);

    /* Too deep: maps and lists nest together, up to 256 levels. */
    daskr_value_t *deep = daskr_value_int(0);
    const char *inner[] = {"in"};
    for (int level = 0; level < 256; level++) {
        daskr_value_t *one[] = {deep};
        CHECK_OK(daskr_value_map(inner, NULL, one, 1, &deep));
    }
    daskr_value_t *one[] = {deep};
    e = daskr_value_map(inner, NULL, one, 1, &out);
    CHECK(e && strstr(daskr_error_message(e), "nests"));
    daskr_error_free(e);

    /* The encoding keeps the order; a pointer inside cannot be encoded. */
    daskr_value_t *enc = NULL, *dec = NULL;
    CHECK_OK(daskr_value_encode(mba, &enc));
    const uint8_t *data;
    CHECK(daskr_value_get_bytes(enc, &data, &len));
    CHECK_OK(daskr_value_decode(data, len, &dec));
    CHECK(daskr_value_equal(dec, mba));
    CHECK_STR(daskr_value_map_name(dec, 0, NULL), "b");
    CHECK_ERR(daskr_value_encode(m, &out), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    daskr_value_free(enc);
    daskr_value_free(dec);

    /* A map computation: references resolved, the pointer inside released exactly once. */
    daskr_graph_t *g = daskr_graph_new();
    CHECK_OK(daskr_graph_add(g, "rec", daskr_comp_value(m), NULL)); /* takes m */
    daskr_task_t x;
    CHECK_OK(daskr_graph_add(g, "x", daskr_comp_value(daskr_value_int(40)), &x));
    daskr_func_t *get = NULL;
    CHECK_OK(daskr_func_new("get", map_get_task, NULL, NULL, &get));
    daskr_value_t *file_name = NULL;
    CHECK_OK(daskr_value_string("file", 4, &file_name));
    daskr_comp_t *get_args[] = {daskr_comp_ref("rec"), daskr_comp_value(file_name)};
    const char *cnames[] = {"by-key", "by-handle", "task", "lit"};
    daskr_comp_t *cvals[] = {daskr_comp_ref("rec"), daskr_comp_ref_task(x),
                             daskr_comp_task(get, get_args, 2, NULL, NULL, 0), daskr_comp_value(mab)};
    CHECK_OK(daskr_graph_add(g, "summary", daskr_comp_map(cnames, NULL, cvals, 4), NULL));
    daskr_comp_t *twice_vals[] = {daskr_comp_value(daskr_value_int(1)), daskr_comp_value(tracked_value(12))};
    e = daskr_graph_add(g, "bad", daskr_comp_map(twice, NULL, twice_vals, 2), NULL);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_INVALID_GRAPH && strstr(daskr_error_message(e), "\"k\" is given twice"));
    CHECK_STR(daskr_error_key(e), "bad");
    daskr_error_free(e);
    CHECK(atomic_load(&tracked_destroyed) == before + 7);
    daskr_get_options_t o;
    daskr_get_options_init(&o, sizeof o);
    for (int s = 0; s < 2; s++) {
        o.scheduler = s == 0 ? DASKR_SCHEDULER_SYNC : DASKR_SCHEDULER_THREADS;
        daskr_value_t *r = NULL;
        CHECK_OK(daskr_graph_get_key(g, "summary", &o, &r));
        CHECK(daskr_value_map_len(r) == 4);
        CHECK_STR(daskr_value_map_name(r, 3, NULL), "lit");
        CHECK(daskr_value_get_int(daskr_value_map_get(r, "by-handle"), &i) && i == 40);
        CHECK(daskr_value_map_len(daskr_value_map_get(r, "by-key")) == 3);
        const char *s_data;
        CHECK(daskr_value_get_string(daskr_value_map_get(r, "task"), &s_data, &len) && strcmp(s_data, "a.csv") == 0);
        CHECK(daskr_value_equal(daskr_value_map_get(r, "lit"), mba));
        daskr_value_free(r);
    }
    daskr_func_free(get);
    daskr_graph_free(g);
    CHECK(atomic_load(&tracked_destroyed) == before + 7);
    daskr_value_free(m2);
    CHECK(atomic_load(&tracked_destroyed) == before + 8); /* the pointer in m, m2 and rec: once */
    daskr_value_free(mba); /* (`deep` went to the map that was too deep: taken on failure too) */
}

int main(void) {
    scalars();
    strings();
    bytes();
    lists();
    pointers();
    clone_equal_free();
    maps();
    errors_and_version();
    encoding(check_slow_mode());
    CHECK(tracked_live() == 0);
    return check_report("values");
}
