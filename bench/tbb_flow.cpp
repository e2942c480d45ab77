// oneTBB flow_graph on the benchmark shapes: one continue_node<continue_msg> per task, one
// make_edge per dependency, the shapes and no-op bodies of native_shapes.hpp (the same graphs
// and sizes as bench/daskr_c.c; see bench_common.h for the command line and what a row holds).
//
// Nodes live in one buffer (placement new), the cheapest layout a TBB user could pick; keys do
// not exist. Threads are limited with tbb::global_control (max_allowed_parallelism). Run:
// try_put a continue_msg into every source node, then wait_for_all. peak_held is null: TBB
// keeps every result (there is no release).
//
// Build: g++ -std=c++17 -O2 -Ibench bench/tbb_flow.cpp -ltbb -o target/bench/tbb_flow
// (Debian package libtbb-dev).
#include "native_shapes.hpp"

#include <cstdint>
#include <new>
#include <vector>

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>

using tbb::flow::continue_msg;
using bench::Body;

namespace {

// A continue_node's body: runs the shared Body (native_shapes.hpp).
struct Step {
    Body body;
    continue_msg operator()(const continue_msg &) const {
        body();
        return continue_msg();
    }
};
using Node = tbb::flow::continue_node<continue_msg>;

struct Built {
    tbb::flow::graph *g = nullptr;
    Node *nodes = nullptr;
    long nodes_made = 0;
    std::vector<uint32_t> sources;
    std::vector<int64_t> values;
};

// The builder build_shape drives (native_shapes.hpp).
struct Builder {
    Built &b;
    explicit Builder(Built &out, long capacity) : b(out) {
        b.g = new tbb::flow::graph;
        b.values.assign((size_t)capacity, 0);
        b.nodes = static_cast<Node *>(::operator new(sizeof(Node) * (size_t)capacity));
    }
    uint32_t add(Body::Kind kind, uint32_t a, uint32_t bb) {
        uint32_t id = (uint32_t)b.nodes_made++;
        new (&b.nodes[id]) Node(*b.g, Step{Body{b.values.data(), id, a, bb, kind}});
        return id;
    }
    void edge(uint32_t from, uint32_t to) { tbb::flow::make_edge(b.nodes[from], b.nodes[to]); }
    void source(uint32_t id) { b.sources.push_back(id); }
    long count() const { return b.nodes_made; }
};

void destroy(Built &b) {
    for (long i = 0; i < b.nodes_made; i++) b.nodes[i].~Node();
    ::operator delete(b.nodes);
    delete b.g;
    b = Built();
}

void build(Built &out, const char *shape, long n) {
    Builder B(out, bench::task_count(shape, n));
    bench::build_shape(B, shape, n);
}

} // namespace

int main(int argc, char **argv) {
    bench_args_t a;
    bench_parse(argc, argv, &a);
    if (a.calibrate) {
        printf("%ld\n", bench_calibrate_spin());
        return 0;
    }
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, a.threads);
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
            Built b;
            build(b, shape, a.n);
            double t1 = bench_now();
            for (uint32_t src : b.sources) b.nodes[src].try_put(continue_msg());
            b.g->wait_for_all();
            double t2 = bench_now();
            long rss1 = bench_rss();
            double t3 = bench_now();
            destroy(b);
            double t4 = bench_now();
            if (k == 0) r.rss_before = rss0, r.rss_after = rss1;
            r.build[k] = t1 - t0;
            r.run[k] = t2 - t1;
            r.total[k] = t2 - t0;
            r.freed[k] = t4 - t3;
        }
        bench_emit(&a, "tbb-flow", shape, tasks, &r, -1, !strcmp(shape, "spin") ? bench::spin_iters : -1);
    }
    return 0;
}
