/* Fuzzes sequences of C API calls: a byte string is read as a program — add entries (values,
 * tasks with positional and keyword arguments, aliases, lists, inline tasks, references by key
 * and by handle, handles that were never handed out, keys that are empty or not UTF-8), ask
 * for handles and keys, get with sync and threads (and now and then processes or a cancelled
 * get), write JSON and read it back, encode results, free a graph and start another — and
 * every call must either succeed or fail cleanly (never an internal error, never a crash);
 * sync, threads and processes must agree; every pointer value's destructor and every
 * function's user-data free must run exactly once by the end. Under DASKR_C_CHECK=valgrind
 * or the sanitizers (make test-asan) this also checks every call for memory errors.
 *
 * Inputs: every file in tests/fuzz/corpus/c_api/ (replayed as is: regression tests), then
 * DASKR_FUZZ_ITERS (default 1000; 60 under DASKR_C_CHECK) programs mutated from them or
 * random, from DASKR_FUZZ_SEED. A failing program's bytes are printed in hex. */
#define _DEFAULT_SOURCE
#include <dirent.h>

#include "check.h"

/* ---- the program being interpreted ---- */

static const uint8_t *prog;
static size_t prog_len, prog_at;
static unsigned next(void) { return prog_at < prog_len ? prog[prog_at++] : 0; }

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Keys: ordinary, empty, not UTF-8, with a control character, long. */
static const char *const KEYS[] = {"a", "b", "c", "d", "e", "f", "", "\xff\xfe", "k\x01",
                                   "a-rather-long-key-name-that-goes-on-and-on-and-on-and-on"};
#define NKEYS (sizeof KEYS / sizeof *KEYS)
static const char *key(void) { return KEYS[next() % NKEYS]; }

/* ---- task functions ---- */

static long int_sum(const daskr_value_t *v, int *ok) {
    int64_t i;
    if (daskr_value_get_int(v, &i)) return (long)(i & 0xffff);
    long id = tracked_id(v);
    if (id >= 0) return id;
    if (daskr_value_kind(v) == DASKR_KIND_LIST) {
        long s = 0;
        for (size_t k = 0; k < daskr_value_list_len(v); k++) s += int_sum(daskr_value_list_at(v, k), ok);
        return s;
    }
    *ok = 0;
    return 0;
}

static long call_sum(daskr_call_t *call, int *ok) {
    long s = 0;
    for (size_t i = 0; i < daskr_call_nargs(call); i++) s += int_sum(daskr_call_arg(call, i), ok);
    for (size_t i = 0; i < daskr_call_nkwargs(call); i++) s += int_sum(daskr_call_kwarg_at(call, i), ok);
    return s;
}

static void t_sum(daskr_call_t *call, void *ud) {
    (void)ud;
    int ok = 1;
    long s = call_sum(call, &ok);
    if (!ok) daskr_call_fail(call, "sum: not a number");
    else daskr_call_return_int(call, s);
}
static void t_fail(daskr_call_t *call, void *ud) {
    (void)ud;
    daskr_call_fail(call, "fail: as asked");
}
static void t_ptr(daskr_call_t *call, void *ud) {
    (void)ud;
    int ok = 1;
    long s = call_sum(call, &ok);
    daskr_call_return(call, tracked_value(s));
}
static void t_first(daskr_call_t *call, void *ud) {
    (void)ud;
    const daskr_value_t *a = daskr_call_arg(call, 0);
    daskr_call_return(call, a ? daskr_value_clone(a) : daskr_value_null());
}

/* ---- state ---- */

static daskr_graph_t *graph;
static daskr_task_t handles[16];
static size_t nhandles;
static int has_pointers; /* the graph may hold or make pointer values (processes refuse them) */

static daskr_func_t *funcs[4];
static daskr_func_t *func(void) {
    unsigned f = next() % 4;
    if (funcs[f] && f == 2) has_pointers = 1; /* ptr */
    return funcs[f];
}

static void expect_clean(daskr_error_t *e, const char *what) {
    if (!e) return;
    if (daskr_error_kind(e) == DASKR_ERROR_INTERNAL || !daskr_error_message(e)) {
        fprintf(stderr, "fuzz_api: %s: internal error: %s\n", what, daskr_error_message(e));
        check_failures++;
    }
    daskr_error_free(e);
}

static void keep_handle(daskr_task_t t) { handles[nhandles++ % 16] = t; }

static daskr_task_t some_handle(void) {
    unsigned b = next();
    if (nhandles && b % 5) return handles[b % (nhandles < 16 ? nhandles : 16)];
    return (daskr_task_t)(b * 977u + 12345u); /* most likely never handed out */
}

static daskr_comp_t *comp(int depth) {
    unsigned op = next() % 8;
    if (depth > 4 && (op == 3 || op == 4)) op = 0;
    switch (op) {
    case 0: return int_comp((int64_t)next() - 100);
    case 1: return daskr_comp_ref(key());
    case 2: return daskr_comp_ref_task(some_handle());
    case 3: {
        daskr_comp_t *items[3];
        size_t n = next() % 4;
        for (size_t i = 0; i < n; i++) items[i] = comp(depth + 1);
        return daskr_comp_list(items, n);
    }
    case 4: {
        daskr_comp_t *args[2];
        size_t n = next() % 3;
        for (size_t i = 0; i < n; i++) args[i] = comp(depth + 1);
        return daskr_comp_task(func(), args, n, NULL, NULL, 0);
    }
    case 5: has_pointers = 1; return daskr_comp_value(tracked_value(next()));
    case 6: return str_comp(next() % 2 ? "text" : "");
    default: return daskr_comp_value(daskr_value_null());
    }
}

/* A key as a value: not-UTF-8 keys cannot be string values (refused: then a null, which a get
 * refuses in turn). */
static daskr_value_t *key_value(void) {
    const char *k = key();
    daskr_value_t *v = NULL;
    daskr_error_t *e = daskr_value_string(k, strlen(k), &v);
    if (e) {
        CHECK(daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT);
        daskr_error_free(e);
        return daskr_value_null();
    }
    return v;
}

/* The keys of a get: one key, a list of keys, or a nested list. */
static daskr_value_t *request(void) {
    switch (next() % 3) {
    case 0: return key_value();
    case 1: {
        daskr_value_t *items[3];
        size_t n = 1 + next() % 3;
        for (size_t i = 0; i < n; i++) items[i] = key_value();
        return list_value(items, n);
    }
    default: {
        daskr_value_t *inner[2] = {key_value(), key_value()};
        daskr_value_t *items[2] = {list_value(inner, 2), key_value()};
        return list_value(items, 2);
    }
    }
}

/* Equal values; pointer values (made afresh by each run's tasks) by their tracked id. */
static int same(const daskr_value_t *a, const daskr_value_t *b) {
    if (!a || !b) return a == b;
    if (daskr_value_kind(a) != daskr_value_kind(b)) return 0;
    if (daskr_value_kind(a) == DASKR_KIND_POINTER) return tracked_id(a) == tracked_id(b);
    if (daskr_value_kind(a) != DASKR_KIND_LIST) return daskr_value_equal(a, b);
    size_t n = daskr_value_list_len(a);
    if (n != daskr_value_list_len(b)) return 0;
    for (size_t i = 0; i < n; i++)
        if (!same(daskr_value_list_at(a, i), daskr_value_list_at(b, i))) return 0;
    return 1;
}

static daskr_error_t *get_with(const daskr_value_t *keys, daskr_scheduler_t s, uint32_t workers,
                               const daskr_cancel_t *cancel, daskr_value_t **out) {
    daskr_get_options_t o;
    daskr_get_options_init(&o, sizeof o);
    o.scheduler = s;
    o.num_workers = workers;
    o.cancel = cancel;
    *out = NULL;
    return daskr_graph_get(graph, keys, &o, out);
}

/* Gets `keys` under sync and threads (and processes when `processes`): the same result or the
 * same kind of error. */
static void compare_get(int processes) {
    daskr_value_t *keys = request();
    daskr_value_t *a = NULL, *b = NULL;
    daskr_error_t *ea = get_with(keys, DASKR_SCHEDULER_SYNC, 1, NULL, &a);
    daskr_error_t *eb = get_with(keys, DASKR_SCHEDULER_THREADS, 1 + next() % 3, NULL, &b);
    if ((ea == NULL) != (eb == NULL) || (ea && daskr_error_kind(ea) != daskr_error_kind(eb)) ||
        (a && !same(a, b))) {
        fprintf(stderr, "fuzz_api: sync and threads disagree: %s / %s\n",
                ea ? daskr_error_message(ea) : "ok", eb ? daskr_error_message(eb) : "ok");
        check_failures++;
    }
    if (a) { /* encode what can be encoded, and decode it back */
        daskr_value_t *enc = NULL, *dec = NULL;
        daskr_error_t *e = daskr_value_encode(a, &enc);
        if (!e) {
            const uint8_t *bytes;
            size_t len;
            CHECK(daskr_value_get_bytes(enc, &bytes, &len));
            CHECK_OK(daskr_value_decode(bytes, len, &dec));
            CHECK(dec && daskr_value_equal(dec, a));
            daskr_value_free(dec);
            daskr_value_free(enc);
        }
        expect_clean(e, "encode");
    }
    if (processes && !has_pointers) {
        daskr_value_t *c = NULL;
        daskr_error_t *ec = get_with(keys, DASKR_SCHEDULER_PROCESSES, 2, NULL, &c);
        if ((ea == NULL) != (ec == NULL) || (ea && daskr_error_kind(ea) != daskr_error_kind(ec)) ||
            (a && !same(a, c))) {
            fprintf(stderr, "fuzz_api: sync and processes disagree: %s / %s\n",
                    ea ? daskr_error_message(ea) : "ok", ec ? daskr_error_message(ec) : "ok");
            check_failures++;
        }
        daskr_value_free(c);
        expect_clean(ec, "get (processes)");
    }
    expect_clean(ea, "get (sync)");
    expect_clean(eb, "get (threads)");
    daskr_value_free(a);
    daskr_value_free(b);
    daskr_value_free(keys);
}

static void step(void) {
    daskr_task_t t = 0;
    switch (next() % 16) {
    case 0: case 1: case 2: case 3: {
        daskr_error_t *e = daskr_graph_add(graph, key(), comp(0), &t);
        if (!e) keep_handle(t);
        expect_clean(e, "add");
        break;
    }
    case 4: {
        daskr_comp_t *args[2], *kw[2];
        const char *names[2] = {"x", next() % 2 ? "x" : "\xff"}; /* a duplicate or bad name */
        size_t n = next() % 3, nk = next() % 3;
        for (size_t i = 0; i < n; i++) args[i] = comp(1);
        for (size_t i = 0; i < nk; i++) kw[i] = comp(1);
        daskr_error_t *e = daskr_graph_add_task(graph, key(), func(), args, n, names, kw, nk, &t);
        if (!e) keep_handle(t);
        expect_clean(e, "add_task");
        break;
    }
    case 5: {
        has_pointers |= next() % 2;
        daskr_value_t *v = has_pointers ? tracked_value(7) : daskr_value_int(7);
        expect_clean(daskr_graph_add_value(graph, key(), v, NULL), "add_value");
        break;
    }
    case 6: expect_clean(daskr_graph_add_alias(graph, key(), key(), NULL), "add_alias"); break;
    case 7: {
        daskr_error_t *e = daskr_graph_handle(graph, key(), &t);
        if (!e) keep_handle(t);
        expect_clean(e, "handle");
        break;
    }
    case 8: {
        const char *k = daskr_graph_key(graph, some_handle());
        if (k) CHECK(strlen(k) < 1000);
        break;
    }
    case 9: CHECK(daskr_graph_len(graph) <= 100000); (void)daskr_graph_contains(graph, key()); break;
    case 10: case 11: compare_get(0); break;
    case 12: compare_get(next() % 8 == 0); break;
    case 13: { /* a cancelled get: cancelled or done, nothing else */
        daskr_cancel_t *c = daskr_cancel_new();
        daskr_cancel_trigger(c);
        daskr_value_t *keys = request(), *out = NULL;
        daskr_error_t *e = get_with(keys, next() % 2 ? DASKR_SCHEDULER_SYNC : DASKR_SCHEDULER_THREADS, 2, c, &out);
        daskr_value_free(out);
        expect_clean(e, "cancelled get");
        daskr_value_free(keys);
        daskr_cancel_free(c);
        break;
    }
    case 14: { /* to JSON and back */
        daskr_value_t *json = NULL, *keys = request();
        daskr_error_t *e = daskr_graph_to_json(graph, keys, NULL, &json);
        if (!e) {
            const char *s;
            size_t len;
            CHECK(daskr_value_get_string(json, &s, &len));
            daskr_graph_t *g2 = NULL;
            daskr_value_t *k2 = NULL;
            daskr_error_t *e2 = daskr_graph_from_json(s, len, NULL, &g2, &k2);
            if (e2) {
                fprintf(stderr, "fuzz_api: written JSON does not read back: %s\n%s\n", daskr_error_message(e2), s);
                check_failures++;
                daskr_error_free(e2);
            }
            daskr_value_free(k2);
            daskr_graph_free(g2);
            daskr_value_free(json);
        }
        expect_clean(e, "to_json");
        daskr_value_free(keys);
        break;
    }
    default:
        daskr_graph_free(graph);
        graph = daskr_graph_new();
        nhandles = 0;
        has_pointers = 0;
        break;
    }
}

static void run_program(const uint8_t *bytes, size_t len) {
    prog = bytes;
    prog_len = len;
    prog_at = 0;
    graph = daskr_graph_new();
    nhandles = 0;
    has_pointers = 0;
    int before = check_failures;
    for (int steps = 0; prog_at < prog_len && steps < 200; steps++) step();
    daskr_graph_free(graph);
    graph = NULL;
    if (tracked_live() != 0) {
        fprintf(stderr, "fuzz_api: %ld pointer values not destroyed\n", tracked_live());
        check_failures++;
        atomic_store(&tracked_destroyed, atomic_load(&tracked_created));
    }
    if (check_failures != before) {
        fprintf(stderr, "fuzz_api: failing program (%zu bytes):", len);
        for (size_t i = 0; i < len; i++) fprintf(stderr, "%s%02x", i % 32 ? "" : "\n", bytes[i]);
        fprintf(stderr, "\n");
    }
}

/* ---- corpus and mutation ---- */

#define MAXPROG 512
static uint8_t corpus[64][MAXPROG];
static size_t corpus_len[64];
static size_t ncorpus;

static void load_corpus(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *ent;
    while ((ent = readdir(d)) && ncorpus < 64) {
        if (ent->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        corpus_len[ncorpus] = fread(corpus[ncorpus], 1, MAXPROG, f);
        fclose(f);
        ncorpus++;
    }
    closedir(d);
}

int main(void) {
    const char *iters_env = getenv("DASKR_FUZZ_ITERS");
    const char *seed_env = getenv("DASKR_FUZZ_SEED");
    long iters = iters_env ? atol(iters_env) : (check_slow_mode() ? 60 : 1000);
    rng_state = seed_env ? strtoull(seed_env, NULL, 10) : 0xda5c4f;

    daskr_task_fn fns[4] = {t_sum, t_fail, t_ptr, t_first};
    const char *names[4] = {"sum", "fail", "ptr", "first"};
    for (int i = 0; i < 4; i++) funcs[i] = make_func(names[i], fns[i], NULL);

    load_corpus("tests/fuzz/corpus/c_api");
    for (size_t i = 0; i < ncorpus; i++) run_program(corpus[i], corpus_len[i]);
    size_t replayed = ncorpus;

    uint8_t buf[MAXPROG];
    for (long it = 0; it < iters; it++) {
        size_t len;
        if (ncorpus && rnd() % 2) { /* mutate a corpus program */
            size_t c = rnd() % ncorpus;
            len = corpus_len[c];
            memcpy(buf, corpus[c], len);
            for (int m = 1 + (int)(rnd() % 4); m > 0; m--) {
                if (len && rnd() % 2) buf[rnd() % len] = (uint8_t)rnd();
                else if (len < MAXPROG) buf[len++] = (uint8_t)rnd();
            }
        } else { /* a random program */
            len = 16 + rnd() % 240;
            for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rnd();
        }
        run_program(buf, len);
    }
    for (int i = 0; i < 4; i++) daskr_func_free(funcs[i]);
    daskr_workers_shutdown();
    printf("fuzz_api: %zu corpus programs, %ld mutated or random ones\n", replayed, iters);
    return check_report("fuzz_api");
}
