/* A plugin whose tasks kill the process that runs them: for the tests that a task which keeps
 * killing Dask workers fails the get with worker_died (and does not take the caller along),
 * that a worker killed in the middle of a partition has that partition run again, and that
 * a worker killed while it sends a result away has the result made again.
 * Built by tests/distributed/test_distributed.py. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
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

/* Bytes this process has sent on each of its TCP sockets (TCP_INFO's bytes_acked, by fd;
 * 0 for other fds): `sent[fd]` for fd < MAX_FDS. */
#define MAX_FDS 4096
static void bytes_sent(unsigned long long *sent) {
    memset(sent, 0, MAX_FDS * sizeof *sent);
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        struct tcp_info info;
        socklen_t len = sizeof info;
        if (fd > 0 && fd < MAX_FDS && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0) {
            sent[fd] = info.tcpi_bytes_acked;
        }
    }
    closedir(d);
}

struct watch {
    unsigned long long before[MAX_FDS], now[MAX_FDS], threshold;
    char *marker;
};

/* Polls every millisecond (for two minutes at most): once one of the process's sockets has
 * carried `threshold` bytes more than when the task ran — the result going out, nothing else
 * a worker sends is that big — notes so in the marker and SIGKILLs the process, in the
 * middle of the send. */
static void *kill_while_sending(void *arg) {
    struct watch *w = arg;
    const struct timespec ms = {0, 1000000};
    for (int i = 0; i < 120000; i++) {
        bytes_sent(w->now);
        for (int fd = 0; fd < MAX_FDS; fd++) {
            unsigned long long from = w->now[fd] >= w->before[fd] ? w->before[fd] : 0;
            if (w->now[fd] - from >= w->threshold) {
                FILE *f = fopen(w->marker, "w");
                if (f) {
                    fprintf(f, "killed after sending %llu bytes\n", w->now[fd] - from);
                    fclose(f);
                }
                kill(getpid(), SIGKILL);
            }
        }
        nanosleep(&ms, NULL);
    }
    free(w->marker);
    free(w);
    return NULL;
}

/* die_sending(n, marker): a string of n 'x's. The first run anywhere (the one that creates
 * the file `marker`) also starts a thread that SIGKILLs its process once it has sent a
 * quarter of that result over a socket: a Dask worker killed while it sends the result to
 * whoever asked for it. A later run just returns the string. */
EXPORT void die_sending(daskr_call_t *call, void *user_data) {
    (void)user_data;
    int64_t n = 0;
    const char *marker = NULL;
    if (!daskr_value_get_int(daskr_call_arg(call, 0), &n) || n <= 0 ||
        !daskr_value_get_string(daskr_call_arg(call, 1), &marker, NULL)) {
        daskr_call_fail(call, "die_sending(n, marker): expected a positive int and a path");
        return;
    }
    char *s = malloc((size_t)n);
    if (!s) {
        daskr_call_fail(call, "die_sending: out of memory");
        return;
    }
    memset(s, 'x', (size_t)n);
    int fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0) {
        close(fd);
        struct watch *w = calloc(1, sizeof *w);
        pthread_t t;
        if (w) {
            w->marker = strdup(marker);
            bytes_sent(w->before);
            w->threshold = (unsigned long long)n / 4;
        }
        if (!w || !w->marker || pthread_create(&t, NULL, kill_while_sending, w) != 0) {
            if (w) {
                free(w->marker);
            }
            free(w);
            free(s);
            daskr_call_fail(call, "die_sending: cannot watch this process's writes");
            return;
        }
        pthread_detach(t);
    }
    daskr_call_return_string(call, s, (size_t)n);
    free(s);
}

static const daskr_plugin_task_t TASKS[] = {
    {"crash", "crash(): exits the process at once"},
    {"crash_once", "crash_once(x, marker): SIGKILLs its process the first time, then x + 1"},
    {"die_sending", "die_sending(n, marker): n 'x's; the first time, SIGKILLs its process as it sends them"},
};
static const daskr_plugin_info_t INFO = {DASKR_ABI_VERSION, "crash", "1.0.0", TASKS, 3};

EXPORT const daskr_plugin_info_t *daskr_plugin_info(void) {
    return &INFO;
}
