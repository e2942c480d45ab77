/*
 * A test plugin whose tasks misbehave on purpose, for the processes scheduler's tests
 * (tests/processes.rs, tests/cli.rs): they segfault, abort, exit, sleep, and return values
 * that cannot leave a process — next to well-behaved ones.
 *
 *   inc(x)                      x + 1
 *   add(a, b, ...)              the sum of its (int) arguments
 *   pid()                       the process id of the worker running it
 *   segfault()                  writes through a NULL pointer
 *   abort_now()                 calls abort()
 *   exit3()                     calls _exit(3)
 *   sleep_ms(ms, value)         sleeps ms milliseconds, then returns value
 *   crash_once(path, value)     segfaults if the file at path does not exist yet (creating
 *                               it first), else returns value: crashes on the first try only
 *   fail_times(path, n, value)  fails its first n calls (counted in the file at path, so
 *                               across worker processes), then returns value: for retries
 *   pointer()                   a pointer value (cannot cross processes)
 *   blob(n)                     n bytes (0, 1, 2, ...)
 *   fail(message)               fails with message
 *   say(text)                   prints text and a newline on stdout (buffered), returns 1
 *   fork_and_crash()            starts a process that sleeps 3 s (holding the worker's
 *                               descriptors), then segfaults
 *   hang(path)                  writes the worker's pid to the file at path, then never
 *                               returns (a runaway task)
 *
 * Built without linking libdaskr, like every plugin (tests/common build_plugin).
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daskr.h"

#define EXPORT __attribute__((visibility("default")))

static int64_t int_arg(daskr_call_t *call, size_t i) {
    int64_t x = 0;
    daskr_value_get_int(daskr_call_arg(call, i), &x);
    return x;
}

EXPORT void inc(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t x;
    if (!daskr_value_get_int(daskr_call_arg(call, 0), &x)) {
        daskr_call_fail(call, "inc: expected an int");
        return;
    }
    daskr_call_return_int(call, x + 1);
}

EXPORT void add(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t sum = 0;
    for (size_t i = 0; daskr_call_arg(call, i); i++) {
        int64_t x;
        if (!daskr_value_get_int(daskr_call_arg(call, i), &x)) {
            daskr_call_fail(call, "add: expected ints");
            return;
        }
        sum += x;
    }
    daskr_call_return_int(call, sum);
}

EXPORT void pid(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_call_return_int(call, (int64_t)getpid());
}

static int *volatile nowhere = NULL;

EXPORT void segfault(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
    *nowhere = 1;
}

EXPORT void abort_now(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
    abort();
}

EXPORT void exit3(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
    _exit(3);
}

EXPORT void hang(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *path = NULL;
    size_t len = 0;
    if (!daskr_value_get_string(daskr_call_arg(call, 0), &path, &len) || len > 4000) {
        daskr_call_fail(call, "hang: expected a path");
        return;
    }
    /* Written to a temporary name and renamed, so a reader never sees half a pid. */
    char final[4096], tmp[4100];
    snprintf(final, sizeof final, "%.*s", (int)len, path);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        daskr_call_fail(call, "hang: cannot write the pid file");
        return;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
    rename(tmp, final);
    for (;;) {
        pause();
    }
}

EXPORT void sleep_ms(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t ms = int_arg(call, 0);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    daskr_call_return(call, daskr_value_clone(daskr_call_arg(call, 1)));
}

EXPORT void crash_once(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *path;
    size_t len;
    if (!daskr_value_get_string(daskr_call_arg(call, 0), &path, &len)) {
        daskr_call_fail(call, "crash_once: expected a path");
        return;
    }
    if (access(path, F_OK) != 0) {
        FILE *f = fopen(path, "w");
        if (f) fclose(f);
        *nowhere = 1;
    }
    daskr_call_return(call, daskr_value_clone(daskr_call_arg(call, 1)));
}

EXPORT void fail_times(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *path;
    size_t len;
    if (!daskr_value_get_string(daskr_call_arg(call, 0), &path, &len)) {
        daskr_call_fail(call, "fail_times: expected a path");
        return;
    }
    /* The calls so far: one byte appended per call (O_APPEND keeps concurrent calls apart). */
    long calls = 0;
    FILE *f = fopen(path, "a+");
    if (!f) {
        daskr_call_fail(call, "fail_times: cannot open the count file");
        return;
    }
    fseek(f, 0, SEEK_END);
    calls = ftell(f);
    fputc('x', f);
    fclose(f);
    if (calls < int_arg(call, 1)) {
        char message[64];
        snprintf(message, sizeof message, "failure %ld", calls + 1);
        daskr_call_fail(call, message);
        return;
    }
    daskr_call_return(call, daskr_value_clone(daskr_call_arg(call, 2)));
}

EXPORT void say(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *text = "";
    size_t len = 0;
    daskr_value_get_string(daskr_call_arg(call, 0), &text, &len);
    printf("%.*s\n", (int)len, text);
    daskr_call_return_int(call, 1);
}

EXPORT void fork_and_crash(daskr_call_t *call, void *user_data) {
    (void)call;
    (void)user_data;
    if (fork() == 0) {
        sleep(3);
        _exit(0);
    }
    *nowhere = 1;
}

static int thing = 42;

EXPORT void pointer(daskr_call_t *call, void *user_data) {
    (void)user_data;
    daskr_value_t *v;
    if (daskr_value_pointer(&thing, "crashy-thing", NULL, &v) == NULL) daskr_call_return(call, v);
}

EXPORT void blob(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t n = int_arg(call, 0);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    for (int64_t i = 0; i < n; i++) data[i] = (uint8_t)i;
    daskr_call_return_bytes(call, data, (size_t)n);
    free(data);
}

EXPORT void fail(daskr_call_t *call, void *user_data) {
    (void)user_data;
    const char *msg = "failed";
    size_t len;
    daskr_value_get_string(daskr_call_arg(call, 0), &msg, &len);
    daskr_call_fail(call, msg);
}

static const daskr_plugin_task_t TASKS[] = {
    {"inc", "inc(x): x + 1"},
    {"add", "add(a, b, ...): the sum"},
    {"pid", "pid(): the worker's process id"},
    {"segfault", "segfault(): writes through NULL"},
    {"abort_now", "abort_now(): abort()"},
    {"exit3", "exit3(): _exit(3)"},
    {"sleep_ms", "sleep_ms(ms, value): sleeps, returns value"},
    {"crash_once", "crash_once(path, value): segfaults unless path exists (creating it)"},
    {"fail_times", "fail_times(path, n, value): fails its first n calls, then returns value"},
    {"pointer", "pointer(): a pointer value"},
    {"blob", "blob(n): n bytes"},
    {"fail", "fail(message): fails"},
    {"say", "say(text): prints text on stdout"},
    {"fork_and_crash", "fork_and_crash(): leaves a process holding the worker's descriptors, then segfaults"},
    {"hang", "hang(path): writes the worker's pid to path, then never returns"},
};

static const daskr_plugin_info_t INFO = {
    DASKR_ABI_VERSION, "crashy", "0.1.0", TASKS, sizeof TASKS / sizeof TASKS[0],
};

EXPORT const daskr_plugin_info_t *daskr_plugin_info(void) { return &INFO; }
