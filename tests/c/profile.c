/* A profile recorder attached to a get (one span per entry, on the worker that ran it), and a
 * progress counter. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <unistd.h>

#include "check.h"

static void one(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_call_return_int(call, 1);
}

int main(void) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = NULL;
    CHECK_OK(daskr_func_new("one", one, NULL, NULL, &f));
    enum { N = 40 };
    daskr_comp_t *refs[N];
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "t%d", i);
        daskr_task_t t;
        CHECK_OK(daskr_graph_add_task(g, key, f, NULL, 0, NULL, NULL, 0, &t));
        refs[i] = daskr_comp_ref_task(t);
    }
    CHECK_OK(daskr_graph_add(g, "all", daskr_comp_list(refs, N), NULL));

    daskr_profile_t *profile = daskr_profile_new();
    daskr_progress_t *progress = daskr_progress_new();
    CHECK(daskr_profile_len(profile) == 0);
    for (int s = 0; s < 2; s++) {
        daskr_get_options_t o;
        daskr_get_options_init(&o, sizeof o);
        o.scheduler = s ? DASKR_SCHEDULER_THREADS : DASKR_SCHEDULER_SYNC;
        o.num_workers = 2;
        o.profile = profile;
        o.progress = progress;
        daskr_value_t *out = NULL;
        CHECK_OK(daskr_graph_get_key(g, "all", &o, &out));
        daskr_value_free(out);
        CHECK(daskr_profile_len(profile) == N + 1);
        CHECK(daskr_progress_total(progress) == N + 1);
        CHECK(daskr_progress_done(progress) == N + 1);
        CHECK(!daskr_progress_running(progress));
        int lists = 0;
        uint64_t last_start = 0;
        for (size_t i = 0; i < daskr_profile_len(profile); i++) {
            daskr_profile_task_t t;
            CHECK(daskr_profile_task(profile, i, &t, sizeof t));
            CHECK(t.ok && t.end_ns >= t.start_ns && t.start_ns >= last_start && t.worker < 2);
            last_start = t.start_ns;
            if (strcmp(t.key, "all") == 0) {
                CHECK_STR(t.func, "list");
                lists++;
            } else {
                CHECK_STR(t.func, "one");
            }
        }
        CHECK(lists == 1);
        daskr_profile_task_t none;
        CHECK(!daskr_profile_task(profile, N + 1, &none, sizeof none));
    }
    char path[] = "/tmp/daskr-trace-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_OK(daskr_profile_write_trace(profile, path));
    FILE *fp = fopen(path, "r");
    CHECK(fp != NULL);
    if (fp) {
        char buf[64] = {0};
        CHECK(fread(buf, 1, sizeof buf - 1, fp) > 0 && buf[0] == '{');
        fclose(fp);
    }
    remove(path);
    CHECK_ERR(daskr_profile_write_trace(profile, "/nonexistent-dir/x.json"), DASKR_ERROR_IO, NULL);

    daskr_profile_free(profile);
    daskr_progress_free(progress);
    daskr_func_free(f);
    daskr_graph_free(g);
    return check_report("profile");
}
