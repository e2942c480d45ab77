/* A plugin whose tasks kill the process that runs them: for the tests that a task which keeps
 * killing Dask workers fails the get with worker_died (and does not take the caller along),
 * and that a worker killed in the middle of a partition has that partition run again.
 * Built by tests/distributed/test_distributed.py. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "daskr.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void crash(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
    _exit(70);
}

/* crash_once(x, marker): the first run anywhere (the one that creates the file `marker`)
 * SIGKILLs its own process, as the OOM killer or an operator would; a later run returns
 * x + 1. */
EXPORT void crash_once(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t x = 0;
    const char *marker = NULL;
    if (!daskr_value_get_int(daskr_call_arg(call, 0), &x) ||
        !daskr_value_get_string(daskr_call_arg(call, 1), &marker, NULL)) {
        daskr_call_fail(call, "crash_once(x, marker): expected an int and a path");
        return;
    }
    int fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0) {
        close(fd);
        kill(getpid(), SIGKILL);
    }
    daskr_call_return_int(call, x + 1);
}

static const daskr_plugin_task_t TASKS[] = {
    {"crash", "crash(): exits the process at once"},
    {"crash_once", "crash_once(x, marker): SIGKILLs its process the first time, then x + 1"},
};
static const daskr_plugin_info_t INFO = {DASKR_ABI_VERSION, "crash", "1.0.0", TASKS, 2};

EXPORT const daskr_plugin_info_t *daskr_plugin_info(void) {
    return &INFO;
}
