// Taskflow (v4.1, header-only) on the benchmark shapes: one static task per node
// (tf::Taskflow::emplace), one precede per dependency, the shapes and no-op bodies of
// native_shapes.hpp (the same graphs and sizes as bench/daskr_c.c; see bench_common.h for the
// command line and what a row holds).
//
// Each task's callable captures one pointer to its Body (kept in one array), so it fits in
// std::function's inline buffer: no allocation per task beyond Taskflow's own node. Keys do
// not exist. The executor (tf::Executor with THREADS workers) is made once per process, when
// the first round runs, as a program makes one when it first needs it; like daskr's worker
// pool, its start is in the first (cold) round's run. Run: executor.run(taskflow).wait().
// peak_held is null: Taskflow passes no results, so there is nothing it holds or releases.
//
// Taskflow is not part of this repository: compare.py compiles this file against the headers
// in DASKR_TASKFLOW_DIR (default: ../shared/anchors/taskflow next to the checkout):
//   g++ -std=c++20 -O2 -pthread -Ibench -I$DASKR_TASKFLOW_DIR bench/taskflow.cpp
//       -o target/bench/taskflow
#include "native_shapes.hpp"

#include <cstdint>
#include <memory>
#include <vector>

#include <taskflow/taskflow.hpp>

using bench::Body;

namespace {

struct Built {
    tf::Taskflow flow;
    std::vector<tf::Task> tasks;
    std::vector<Body> bodies;
    std::vector<int64_t> values;
};

// The builder build_shape drives (native_shapes.hpp).
struct Builder {
    Built &b;
    explicit Builder(Built &out, long capacity) : b(out) {
        b.values.assign((size_t)capacity, 0);
        b.bodies.reserve((size_t)capacity); // stable addresses: tasks point into it
        b.tasks.reserve((size_t)capacity);
    }
    uint32_t add(Body::Kind kind, uint32_t a, uint32_t bb) {
        uint32_t id = (uint32_t)b.tasks.size();
        b.bodies.push_back(Body{b.values.data(), id, a, bb, kind});
        const Body *body = &b.bodies.back();
        b.tasks.push_back(b.flow.emplace([body] { (*body)(); }));
        return id;
    }
    void edge(uint32_t from, uint32_t to) { b.tasks[from].precede(b.tasks[to]); }
    void source(uint32_t) {} // Taskflow starts every task without predecessors itself
    long count() const { return (long)b.tasks.size(); }
};

} // namespace

int main(int argc, char **argv) {
    bench_args_t a;
    bench_parse(argc, argv, &a);
    if (a.calibrate) {
        printf("%ld\n", bench_calibrate_spin());
        return 0;
    }
    std::unique_ptr<tf::Executor> executor;
    for (int s = 0; s < a.nshapes; s++) {
        const char *shape = a.shapes[s];
        if (!strcmp(shape, "spin") && bench::spin_iters == 0)
            bench::spin_iters = a.spin_iters >= 0 ? a.spin_iters : bench_calibrate_spin();
        bench_rounds_t r;
        memset(&r, 0, sizeof r);
        r.rounds = a.rounds;
        long tasks = bench::task_count(shape, a.n);
        for (int k = 0; k < a.rounds; k++) {
            long rss0 = bench_rss();
            double t0 = bench_now();
            auto b = std::make_unique<Built>();
            {
                Builder B(*b, tasks);
                bench::build_shape(B, shape, a.n);
            }
            double t1 = bench_now();
            if (!executor) executor = std::make_unique<tf::Executor>(a.threads);
            executor->run(b->flow).wait();
            double t2 = bench_now();
            long rss1 = bench_rss();
            double t3 = bench_now();
            b.reset();
            double t4 = bench_now();
            if (k == 0) r.rss_before = rss0, r.rss_after = rss1;
            r.build[k] = t1 - t0;
            r.run[k] = t2 - t1;
            r.total[k] = t2 - t0;
            r.freed[k] = t4 - t3;
        }
        bench_emit(&a, "taskflow", shape, tasks, &r, -1, !strcmp(shape, "spin") ? bench::spin_iters : -1);
    }
    return 0;
}
