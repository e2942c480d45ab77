/* Faults the program does not cause: a full disk while writing a trace or a DOT picture
 * (/dev/full: every write fails with ENOSPC). Each is a clear error naming the file, and the
 * graph, its results and the profile stay usable: the same get still works and a write to a
 * good path still succeeds. (Lying plugins are in tests/plugins.rs; killed workers in
 * tests/processes.rs and tests/stress.rs.) */
#define _DEFAULT_SOURCE
#include <unistd.h>

#include "check.h"

static void add(daskr_call_t *call, void *ud) {
    (void)ud;
    int64_t s = 0, x;
    for (size_t i = 0; i < daskr_call_nargs(call); i++)
        if (daskr_value_get_int(daskr_call_arg(call, i), &x)) s += x;
    daskr_call_return_int(call, s);
}

static void full_disk(void) {
    if (access("/dev/full", W_OK) != 0) {
        printf("faults: no /dev/full here, skipped\n");
        return;
    }
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = make_func("add", add, NULL);
    CHECK_OK(daskr_graph_add_value(g, "a", daskr_value_int(2), NULL));
    daskr_comp_t *args[] = {daskr_comp_ref("a"), int_comp(3)};
    CHECK_OK(daskr_graph_add_task(g, "b", f, args, 2, NULL, NULL, 0, NULL));
    daskr_func_free(f);

    daskr_profile_t *p = daskr_profile_new();
    daskr_get_options_t o;
    daskr_get_options_init(&o, sizeof o);
    o.scheduler = DASKR_SCHEDULER_THREADS;
    o.num_workers = 2;
    o.profile = p;
    daskr_value_t *r = NULL;
    int64_t x = 0;
    CHECK_OK(daskr_graph_get_key(g, "b", &o, &r));
    CHECK(r && daskr_value_get_int(r, &x) && x == 5);
    daskr_value_free(r);

    daskr_error_t *e = daskr_profile_write_trace(p, "/dev/full");
    CHECK(e != NULL);
    if (e) {
        CHECK(daskr_error_kind(e) != DASKR_ERROR_INTERNAL);
        CHECK(check_contains(daskr_error_message(e), "/dev/full"));
        daskr_error_free(e);
    }
    daskr_value_t *keys = str_value("b");
    e = daskr_graph_write_dot(g, keys, p, NULL, "/dev/full");
    CHECK(e != NULL);
    if (e) {
        CHECK(daskr_error_kind(e) != DASKR_ERROR_INTERNAL);
        CHECK(check_contains(daskr_error_message(e), "/dev/full"));
        daskr_error_free(e);
    }

    /* Everything still works: the same get, and writes to a real file. */
    r = NULL;
    CHECK_OK(daskr_graph_get_key(g, "b", &o, &r));
    CHECK(r && daskr_value_get_int(r, &x) && x == 5);
    daskr_value_free(r);
    char path[] = "/tmp/daskr-faults-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        CHECK_OK(daskr_profile_write_trace(p, path));
        CHECK_OK(daskr_graph_write_dot(g, keys, NULL, NULL, path));
        unlink(path);
    }
    daskr_value_free(keys);
    daskr_profile_free(p);
    daskr_graph_free(g);
}

int main(void) {
    full_disk();
    return check_report("faults");
}
