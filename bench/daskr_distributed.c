/*
 * daskr's distributed scheduler on one benchmark graph file, through the C ABI.
 *
 *   daskr_distributed [--rounds R] --address tcp://HOST:PORT GRAPH.json SHAPE TASKS N
 *
 * Each round reads the graph file (build: daskr_graph_from_file, plugin tasks from
 * bench/plugin_noop.c) and gets its "keys" with DASKR_SCHEDULER_DISTRIBUTED (run), then frees
 * the result and the graph. A first, untimed round starts the Dask driver and connects its
 * Client (its build+run is reported as first_s); the R timed rounds reuse it, as a
 * long-running program would (Dask's rows likewise time gets on a connected Client). Prints
 * one JSON row (the schema of target/bench/compare.json, see bench_common.h) with medians over
 * the timed rounds, and threads = the cluster's worker threads.
 * bench/distributed_bench.py writes the graph files and runs this.
 */
#include "bench_common.h"

#include "daskr.h"

static void ok(daskr_error_t *e) {
    if (e) {
        fprintf(stderr, "daskr error (%s, key %s): %s\n", daskr_error_kind_name(daskr_error_kind(e)),
                daskr_error_key(e) ? daskr_error_key(e) : "-", daskr_error_message(e));
        exit(1);
    }
}

int main(int argc, char **argv) {
    int rounds = 5;
    const char *address = NULL;
    const char *pos[4];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--address") && i + 1 < argc) address = argv[++i];
        else if (npos < 4) pos[npos++] = argv[i];
    }
    if (npos != 4 || !address || rounds < 1 || rounds > BENCH_MAX_ROUNDS) {
        fprintf(stderr, "usage: %s [--rounds R] --address tcp://HOST:PORT GRAPH.json SHAPE TASKS N\n", argv[0]);
        return 2;
    }
    const char *path = pos[0], *shape = pos[1];
    long tasks = atol(pos[2]), n = atol(pos[3]);
    double build[BENCH_MAX_ROUNDS], run[BENCH_MAX_ROUNDS], total[BENCH_MAX_ROUNDS], freed[BENCH_MAX_ROUNDS];
    double first = 0;
    uint32_t workers = 0;
    for (int round = 0; round <= rounds; round++) {
        int r = round == 0 ? 0 : round - 1; /* round 0: the warm-up, overwritten by round 1 */
        double t0 = bench_now();
        daskr_graph_t *g;
        daskr_value_t *keys;
        ok(daskr_graph_from_file(path, &g, &keys));
        double t1 = bench_now();
        daskr_get_options_t o;
        daskr_get_options_init(&o, sizeof o);
        o.scheduler = DASKR_SCHEDULER_DISTRIBUTED;
        o.address = address;
        daskr_stats_t stats;
        o.stats = &stats;
        daskr_value_t *out;
        ok(daskr_graph_get(g, keys, &o, &out));
        double t2 = bench_now();
        daskr_value_free(out);
        daskr_value_free(keys);
        daskr_graph_free(g);
        double t3 = bench_now();
        build[r] = t1 - t0;
        run[r] = t2 - t1;
        total[r] = t2 - t0;
        freed[r] = t3 - t2;
        if (round == 0) first = total[r];
        workers = stats.workers;
    }
    double tot = bench_median(total, rounds);
    printf("{\"system\": \"daskr-distributed\", \"shape\": \"%s\", \"threads\": %u, \"tasks\": %ld, "
           "\"build_s\": %.9f, \"run_s\": %.9f, \"ns_per_task\": %.3f, \"peak_held\": null, "
           "\"bytes_per_task\": null, \"free_s\": %.9f, \"rounds\": %d, \"n\": %ld, \"first_s\": %.6f}\n",
           shape, workers, tasks, bench_median(build, rounds), bench_median(run, rounds), tot * 1e9 / (double)tasks,
           bench_median(freed, rounds), rounds, n, first);
    return 0;
}
