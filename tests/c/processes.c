/* The processes scheduler through the C ABI: C function-pointer tasks run in workers forked
 * from this program; the same results as threads; a task that segfaults, aborts or exits
 * kills its worker, not this program, and the error names its key and how it died; retries
 * (a task that crashes only the first time), the task timeout, a pointer result that cannot
 * cross, callbacks and stats; and after daskr_workers_shutdown no child process and no new
 * file descriptor is left. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static void add(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t sum = 0, x;
    for (size_t i = 0; i < daskr_call_nargs(call); i++)
        if (daskr_value_get_int(daskr_call_arg(call, i), &x)) sum += x;
    daskr_call_return_int(call, sum);
}

static int *volatile nowhere = NULL;

static void segfault(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
    *nowhere = 1;
}

static void abort_now(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
    abort();
}

static void exit3(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
    _exit(3);
}

static void sleep_ms(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t ms = 0;
    daskr_value_get_int(daskr_call_arg(call, 0), &ms);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    daskr_call_return_int(call, ms);
}

/* Crashes unless the file named by user_data exists (creating it first). */
static void crash_once(daskr_call_t *call, void *user_data) {
    const char *path = user_data;
    if (access(path, F_OK) != 0) {
        FILE *f = fopen(path, "w");
        if (f) fclose(f);
        *nowhere = 1;
    }
    daskr_call_return_int(call, 100);
}

/* Fails while *user_data (a count of calls) is below 2, then returns the count. */
static void fail_twice(daskr_call_t *call, void *user_data) {
    int *calls = user_data;
    if (++*calls <= 2) {
        daskr_call_fail(call, "not yet");
        return;
    }
    daskr_call_return_int(call, *calls);
}

static void pointer(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_call_return(call, tracked_value(1));
}

static int open_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static daskr_func_t *f_add;

static void add_task(daskr_graph_t *g, const char *key, daskr_func_t *f, const char *const *refs) {
    daskr_comp_t *args[64];
    size_t n = 0;
    while (refs && refs[n]) {
        args[n] = daskr_comp_ref(refs[n]);
        n++;
    }
    CHECK_OK(daskr_graph_add_task(g, key, f, args, n, NULL, NULL, 0, NULL));
}
#define REFS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A tree of adds over n leaves, the same under processes and threads. */
static void same_as_threads(int n) {
    daskr_graph_t *g = daskr_graph_new();
    char key[32], a[32], b[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "l%d", i);
        CHECK_OK(daskr_graph_add_value(g, key, daskr_value_int(i), NULL));
    }
    int level = 0, width = n;
    while (width > 1) {
        for (int i = 0; i < width / 2; i++) {
            snprintf(key, sizeof key, "t%d-%d", level + 1, i);
            if (level == 0) {
                snprintf(a, sizeof a, "l%d", 2 * i);
                snprintf(b, sizeof b, "l%d", 2 * i + 1);
            } else {
                snprintf(a, sizeof a, "t%d-%d", level, 2 * i);
                snprintf(b, sizeof b, "t%d-%d", level, 2 * i + 1);
            }
            add_task(g, key, f_add, REFS(a, b));
        }
        width /= 2;
        level++;
    }
    snprintf(key, sizeof key, "t%d-0", level);
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_PROCESSES, 2);
    daskr_stats_t stats;
    o.stats = &stats;
    daskr_value_t *r = NULL;
    CHECK_OK(daskr_graph_get_key(g, key, &o, &r));
    if (r) {
        CHECK_INT(r, (int64_t)n * (n - 1) / 2);
        daskr_value_free(r);
    }
    CHECK(stats.entries == stats.entries_run);
    CHECK(stats.workers == 2);
    daskr_graph_free(g);
}

static void crash(daskr_task_fn fn, const char *how) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = make_func("bad", fn, NULL);
    CHECK_OK(daskr_graph_add_value(g, "x", daskr_value_int(1), NULL));
    add_task(g, "y", f_add, REFS("x"));
    add_task(g, "bad", f, REFS("x"));
    add_task(g, "z", f_add, REFS("y", "bad"));
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_PROCESSES, 2);
    daskr_value_t *r = NULL;
    daskr_error_t *e = daskr_graph_get_key(g, "z", &o, &r);
    CHECK(e != NULL && r == NULL);
    if (e) {
        CHECK(daskr_error_kind(e) == DASKR_ERROR_WORKER_DIED);
        CHECK_STR(daskr_error_key(e), "bad");
        CHECK(check_contains(daskr_error_message(e), how));
        if (!check_contains(daskr_error_message(e), how)) fprintf(stderr, "message: %s\n", daskr_error_message(e));
        daskr_error_free(e);
    }
    /* This program survived; the next get works. */
    CHECK_OK(daskr_graph_get_key(g, "y", &o, &r));
    if (r) {
        CHECK_INT(r, 1);
        daskr_value_free(r);
    }
    daskr_func_free(f);
    daskr_graph_free(g);
}

static void retry_and_timeout(void) {
    char marker[] = "/tmp/daskr-crash-once-XXXXXX";
    int fd = mkstemp(marker);
    CHECK(fd >= 0);
    close(fd);
    unlink(marker);
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = make_func("crash_once", crash_once, marker);
    daskr_func_t *s = make_func("sleep_ms", sleep_ms, NULL);
    CHECK_OK(daskr_graph_add_task(g, "flaky", f, NULL, 0, NULL, NULL, 0, NULL));
    daskr_comp_t *args[] = {int_comp(20000)};
    CHECK_OK(daskr_graph_add_task(g, "slow", s, args, 1, NULL, NULL, 0, NULL));
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_PROCESSES, 2);
    o.retries = 1;
    daskr_value_t *r = NULL;
    CHECK_OK(daskr_graph_get_key(g, "flaky", &o, &r));
    if (r) {
        CHECK_INT(r, 100);
        daskr_value_free(r);
    }
    unlink(marker);

    o.retries = 0;
    o.task_timeout_s = 0.2;
    time_t started = time(NULL);
    daskr_error_t *e = daskr_graph_get_key(g, "slow", &o, &r);
    CHECK(e && daskr_error_kind(e) == DASKR_ERROR_WORKER_DIED);
    if (e) {
        CHECK_STR(daskr_error_key(e), "slow");
        CHECK(check_contains(daskr_error_message(e), "timeout"));
        daskr_error_free(e);
    }
    CHECK(time(NULL) - started < 10);
    o.task_timeout_s = -1;
    CHECK_ERR(daskr_graph_get_key(g, "slow", &o, &r), DASKR_ERROR_INVALID_ARGUMENT, NULL);

    /* sync and threads run tasks on the caller's threads, which cannot be stopped or replaced:
     * a timeout there would be ignored, so it is refused, naming the option. Retries re-run a
     * task that failed, on every scheduler (as Dask's retries=). */
    daskr_scheduler_t local[] = {DASKR_SCHEDULER_SYNC, DASKR_SCHEDULER_THREADS};
    for (size_t i = 0; i < 2; i++) {
        daskr_get_options_t l = make_options(local[i], 2);
        l.task_timeout_s = 5;
        e = daskr_graph_get_key(g, "slow", &l, &r);
        CHECK(e && daskr_error_kind(e) == DASKR_ERROR_INVALID_ARGUMENT);
        if (e) {
            CHECK(check_contains(daskr_error_message(e), "options.task_timeout_s"));
            CHECK(check_contains(daskr_error_message(e), local[i] == DASKR_SCHEDULER_SYNC ? "sync" : "threads"));
            daskr_error_free(e);
        }
        l.task_timeout_s = 0;

        int calls = 0;
        daskr_graph_t *h = daskr_graph_new();
        daskr_func_t *t = make_func("fail_twice", fail_twice, &calls);
        CHECK_OK(daskr_graph_add_task(h, "t", t, NULL, 0, NULL, NULL, 0, NULL));
        l.retries = 2; /* two failures, then the third call returns 3 */
        r = NULL;
        CHECK_OK(daskr_graph_get_key(h, "t", &l, &r));
        if (r) {
            CHECK_INT(r, 3);
            daskr_value_free(r);
        }
        calls = 0;
        l.retries = 1; /* one retry too few: the second failure is the get's */
        e = daskr_graph_get_key(h, "t", &l, &r);
        CHECK(e && daskr_error_kind(e) == DASKR_ERROR_TASK_FAILED);
        if (e) {
            CHECK(check_contains(daskr_error_message(e), "not yet (on each of 2 tries)"));
            daskr_error_free(e);
        }
        CHECK(calls == 2);
        daskr_func_free(t);
        daskr_graph_free(h);
    }
    daskr_func_free(f);
    daskr_func_free(s);
    daskr_graph_free(g);
}

static void pointers(void) {
    daskr_graph_t *g = daskr_graph_new();
    daskr_func_t *f = make_func("pointer", pointer, NULL);
    CHECK_OK(daskr_graph_add_task(g, "p", f, NULL, 0, NULL, NULL, 0, NULL));
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_PROCESSES, 1);
    daskr_value_t *r = NULL;
    daskr_error_t *e = daskr_graph_get_key(g, "p", &o, &r);
    CHECK(e != NULL);
    if (e) {
        CHECK_STR(daskr_error_key(e), "p");
        CHECK(check_contains(daskr_error_message(e), "threads scheduler"));
        daskr_error_free(e);
    }
    daskr_func_free(f);
    daskr_graph_free(g);
}

static atomic_long pre, post, starts, finishes;
static void cb_start(void *ud, size_t n) {
    (void)ud;
    (void)n;
    starts++;
}
static void cb_pre(void *ud, const char *key, uint32_t w) {
    (void)ud;
    (void)key;
    (void)w;
    pre++;
}
static void cb_post(void *ud, const char *key, bool ok, uint32_t w) {
    (void)ud;
    (void)key;
    (void)w;
    if (ok) post++;
}
static void cb_finish(void *ud, bool failed) {
    (void)ud;
    if (!failed) finishes++;
}

static void callbacks(void) {
    daskr_graph_t *g = daskr_graph_new();
    CHECK_OK(daskr_graph_add_value(g, "x", daskr_value_int(1), NULL));
    char key[16];
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "t%d", i);
        add_task(g, key, f_add, REFS("x"));
    }
    daskr_callbacks_t cb = {NULL, cb_start, cb_pre, cb_post, cb_finish};
    daskr_get_options_t o = make_options(DASKR_SCHEDULER_PROCESSES, 2);
    o.callbacks = &cb;
    daskr_value_t *r = NULL;
    CHECK_OK(daskr_graph_get_key(g, "t29", &o, &r));
    if (r) {
        CHECK_INT(r, 1);
        daskr_value_free(r);
    }
    CHECK(starts == 1 && finishes == 1 && pre == 1 && post == 1);
    daskr_graph_free(g);
}

int main(void) {
    int fds = open_fds();
    f_add = make_func("add", add, NULL);
    same_as_threads(check_slow_mode() ? 256 : 4096);
    callbacks();
    pointers();
    crash(segfault, "SIGSEGV");
    crash(abort_now, "SIGABRT");
    crash(exit3, "exited with status 3");
    retry_and_timeout();
    daskr_func_free(f_add);
    daskr_workers_shutdown();
    /* No child left, no descriptor leaked. */
    errno = 0;
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
    CHECK(open_fds() == fds);
    CHECK(tracked_live() == 0);
    return check_report("processes");
}
