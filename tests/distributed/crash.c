/* A plugin whose task kills the process that runs it: for the test that a task which keeps
 * killing Dask workers fails the get with worker_died (and does not take the caller along).
 * Built by tests/distributed/test_distributed.py. */
#include <unistd.h>

#include "daskr.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void crash(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
    _exit(70);
}

static const daskr_plugin_task_t TASKS[] = {{"crash", "crash(): exits the process at once"}};
static const daskr_plugin_info_t INFO = {DASKR_ABI_VERSION, "crash", "1.0.0", TASKS, 1};

EXPORT const daskr_plugin_info_t *daskr_plugin_info(void) {
    return &INFO;
}
