/* The result cache over the C ABI: a rerun reads what it stored, the stats and the profile
 * say so, bad arguments are errors (user data freed once), and a caller built against the
 * version-1 options (without `cache`) gets version-1 stats, nothing written past them. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <unistd.h>

#include "check.h"

static atomic_long calls, freed;

static void twice(daskr_call_t *call, void *user_data) {
    (void)user_data;
    atomic_fetch_add(&calls, 1);
    int64_t x = 0;
    daskr_value_get_int(daskr_call_arg(call, 0), &x);
    daskr_call_return_int(call, 2 * x);
}

static void free_counter(void *user_data) {
    (void)user_data;
    atomic_fetch_add(&freed, 1);
}

static int64_t get_b(const daskr_graph_t *g, daskr_get_options_t *o) {
    daskr_value_t *out = NULL;
    CHECK_OK(daskr_graph_get_key(g, "b", o, &out));
    int64_t v = -1;
    CHECK(out && daskr_value_get_int(out, &v));
    daskr_value_free(out);
    return v;
}

int main(void) {
    char dir[] = "/tmp/daskr-c-cache-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    daskr_cache_t *cache = NULL;
    CHECK_ERR(daskr_cache_open(NULL, &cache), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_cache_open("", &cache), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_cache_open(dir, NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_OK(daskr_cache_open(dir, &cache));

    /* Bad versioned functions: refused, their user data freed right away. */
    daskr_func_t *f = NULL;
    CHECK_ERR(daskr_func_new_versioned("twice", twice, NULL, free_counter, NULL, DASKR_FUNC_PURE, &f),
              DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_ERR(daskr_func_new_versioned("twice", twice, NULL, free_counter, "1", 6, &f),
              DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK(atomic_load(&freed) == 2);
    CHECK_OK(daskr_func_new_versioned("twice", twice, NULL, free_counter, "1", DASKR_FUNC_PURE, &f));

    daskr_graph_t *g = daskr_graph_new();
    daskr_task_t a = 0;
    daskr_comp_t *arg = daskr_comp_value(daskr_value_int(21));
    CHECK_OK(daskr_graph_add_task(g, "a", f, &arg, 1, NULL, NULL, 0, &a));
    daskr_comp_t *ref = daskr_comp_ref_task(a);
    CHECK_OK(daskr_graph_add_task(g, "b", f, &ref, 1, NULL, NULL, 0, NULL));
    daskr_func_free(f);

    daskr_stats_t stats;
    daskr_profile_t *profile = daskr_profile_new();
    daskr_get_options_t o;
    daskr_get_options_init(&o, sizeof o);
    o.cache = cache;
    o.stats = &stats;
    o.profile = profile;
    CHECK(get_b(g, &o) == 84);
    CHECK(stats.entries_run == 2 && stats.cache_misses == 2 && stats.cache_bytes_written > 0);
    CHECK(get_b(g, &o) == 84);
    CHECK(atomic_load(&calls) == 2);
    CHECK(stats.entries_run == 0 && stats.cache_hits == 1 && stats.cache_skipped == 1);
    CHECK(stats.cache_bytes_read > 0 && stats.cache_bytes_written == 0);
    daskr_profile_task_t t;
    CHECK(daskr_profile_len(profile) == 1);
    CHECK(daskr_profile_task(profile, 0, &t, sizeof t) && t.cached);
    CHECK_STR(t.key, "b");

    uint64_t entries = 0, bytes = 0;
    daskr_cache_usage(cache, &entries, &bytes);
    CHECK(entries == 2 && bytes > 0);
    daskr_cache_usage(cache, NULL, NULL);
    daskr_cache_usage(NULL, &entries, &bytes);
    CHECK(entries == 0 && bytes == 0);

    /* A caller of the first version: its options end at `address`, its stats at `run_ns`. */
    struct {
        daskr_stats_t stats;
        uint64_t guard[5];
    } old;
    memset(&old, 0xab, sizeof old);
    daskr_get_options_t o1;
    daskr_get_options_init(&o1, offsetof(daskr_get_options_t, cache));
    o1.stats = &old.stats;
    CHECK(get_b(g, &o1) == 84); /* no cache: it runs */
    CHECK(old.stats.entries_run == 2);
    const unsigned char *tail = (const unsigned char *)&old.stats + offsetof(daskr_stats_t, cache_hits);
    for (size_t i = 0; i < sizeof old - offsetof(daskr_stats_t, cache_hits); i++) CHECK(tail[i] == 0xab);

    daskr_cache_set_max_bytes(NULL, 1);
    daskr_cache_set_max_entry_bytes(NULL, 1);
    CHECK_ERR(daskr_cache_clear(NULL), DASKR_ERROR_INVALID_ARGUMENT, NULL);
    CHECK_OK(daskr_cache_clear(cache));
    daskr_cache_usage(cache, &entries, &bytes);
    CHECK(entries == 0);
    daskr_graph_free(g);
    CHECK(atomic_load(&freed) == 3);
    daskr_profile_free(profile);
    daskr_cache_free(cache);
    daskr_cache_free(NULL);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_report("cache");
}
