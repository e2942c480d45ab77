// oneTBB flow_graph on the benchmark shapes: one continue_node<continue_msg> per task, one
// make_edge per dependency, the same shapes and sizes as bench/daskr_c.c (see its header and
// bench_common.h for the command line and what a row holds).
//
// TBB passes no values between nodes, so each task reads its predecessors' results from a
// shared int64 array and writes its own there (a small int): the same work the no-op daskr
// tasks do with their args. Nodes live in one buffer (placement new), the cheapest layout a
// TBB user could pick; keys do not exist. Threads are limited with tbb::global_control
// (max_allowed_parallelism). Run: try_put a continue_msg into every source node, then
// wait_for_all. peak_held is null: TBB keeps every result (there is no release).
//
// Build: g++ -std=c++17 -O2 -Ibench bench/tbb_flow.cpp -ltbb -o target/bench/tbb_flow
// (Debian package libtbb-dev).
#include "bench_common.h"

#include <algorithm>
#include <cstdint>
#include <new>
#include <vector>

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>

using tbb::flow::continue_msg;
using Node = tbb::flow::continue_node<continue_msg>;

namespace {

long spin_iters = 0;
std::vector<uint32_t> lists; // index lists read by List bodies (filled while building, read while running)

// One body type for every node: what it reads (kind) and where it writes (self).
struct Body {
    enum Kind : uint8_t { None, One, Two, Range, List, Literal, Spin };
    int64_t *v;
    uint32_t self, a, b;
    Kind kind;
    continue_msg operator()(const continue_msg &) const {
        int64_t r = 1;
        switch (kind) {
        case None: break;
        case One: r += v[a] & 1; break;
        case Two: r += (v[a] & 1) + (v[b] & 1); break;
        case Range: { // reads a list of results [a, b): returns its length (like the daskr sink)
            int64_t t = 0;
            for (uint32_t i = a; i < b; i++) t += v[i];
            r = (int64_t)(b - a) + (t & 1);
            break;
        }
        case List: { // reads the b results listed at lists[a..a+b)
            int64_t t = 0;
            for (uint32_t i = 0; i < b; i++) t += v[lists[a + i]];
            r = (int64_t)b + (t & 1);
            break;
        }
        case Literal: r += a & 1; break; // load(i)
        case Spin: r = (int64_t)bench_spin(spin_iters, self); break;
        }
        v[self] = r & 7;
        return continue_msg();
    }
};

struct Built {
    tbb::flow::graph *g = nullptr;
    Node *nodes = nullptr;
    long count = 0;
    std::vector<uint32_t> sources;
    std::vector<int64_t> values;
};

struct Builder {
    Built &b;
    long cap;
    explicit Builder(Built &out, long capacity) : b(out), cap(capacity) {
        b.g = new tbb::flow::graph;
        b.values.assign((size_t)capacity, 0);
        b.nodes = static_cast<Node *>(::operator new(sizeof(Node) * (size_t)capacity));
    }
    uint32_t add(Body::Kind kind, uint32_t a = 0, uint32_t bb = 0) {
        uint32_t id = (uint32_t)b.count++;
        new (&b.nodes[id]) Node(*b.g, Body{b.values.data(), id, a, bb, kind});
        return id;
    }
    void edge(uint32_t from, uint32_t to) { tbb::flow::make_edge(b.nodes[from], b.nodes[to]); }
};

void destroy(Built &b) {
    for (long i = 0; i < b.count; i++) b.nodes[i].~Node();
    ::operator delete(b.nodes);
    delete b.g;
    b = Built();
}

long task_count(const char *shape, long n) {
    if (!strcmp(shape, "chain")) return n;
    if (!strcmp(shape, "independent") || !strcmp(shape, "spin")) return n + 1;
    if (!strcmp(shape, "tree")) return 2 * n - 1;
    if (!strcmp(shape, "wavefront")) return bench_wave_side(n) * bench_wave_side(n);
    if (!strcmp(shape, "pipeline")) return 2 * bench_pipeline_files(n) + 2 * bench_pipeline_groups(n) + 1;
    fprintf(stderr, "unknown shape %s\n", shape);
    exit(2);
}

void build(Built &out, const char *shape, long n) {
    long tasks = task_count(shape, n);
    Builder B(out, tasks);
    if (!strcmp(shape, "chain")) {
        uint32_t prev = B.add(Body::None);
        out.sources.push_back(prev);
        for (long i = 1; i < n; i++) {
            uint32_t t = B.add(Body::One, prev);
            B.edge(prev, t);
            prev = t;
        }
    } else if (!strcmp(shape, "independent") || !strcmp(shape, "spin")) {
        Body::Kind k = shape[0] == 's' ? Body::Spin : Body::None;
        for (long i = 0; i < n; i++) out.sources.push_back(B.add(k));
        uint32_t sink = B.add(Body::Range, 0, (uint32_t)n);
        for (long i = 0; i < n; i++) B.edge((uint32_t)i, sink);
    } else if (!strcmp(shape, "tree")) {
        std::vector<uint32_t> level((size_t)n);
        for (long i = 0; i < n; i++) out.sources.push_back(level[(size_t)i] = B.add(Body::None));
        long width = n;
        while (width > 1) {
            long w = 0;
            for (long i = 0; i + 1 < width; i += 2) {
                uint32_t l = level[(size_t)i], r = level[(size_t)i + 1];
                uint32_t t = B.add(Body::Two, l, r);
                B.edge(l, t);
                B.edge(r, t);
                level[(size_t)w++] = t;
            }
            if (width & 1) level[(size_t)w++] = level[(size_t)width - 1];
            width = w;
        }
    } else if (!strcmp(shape, "wavefront")) {
        long side = bench_wave_side(n);
        std::vector<uint32_t> row((size_t)side);
        for (long i = 0; i < side; i++) {
            for (long j = 0; j < side; j++) {
                uint32_t t;
                if (i == 0 && j == 0) out.sources.push_back(t = B.add(Body::None));
                else if (i == 0) t = B.add(Body::One, row[(size_t)j - 1]);
                else if (j == 0) t = B.add(Body::One, row[(size_t)j]);
                else t = B.add(Body::Two, row[(size_t)j - 1], row[(size_t)j]);
                if (j > 0) B.edge(row[(size_t)j - 1], t);
                if (i > 0) B.edge(row[(size_t)j], t);
                row[(size_t)j] = t;
            }
        }
    } else if (!strcmp(shape, "pipeline")) {
        // load-i -> clean-i; analyze-g over the group's cleans; store-g; one sink over the stores.
        long files = bench_pipeline_files(n), groups = bench_pipeline_groups(n);
        std::vector<uint32_t> loads;
        lists.clear();
        for (long grp = 0; grp < groups; grp++) {
            loads.clear();
            long lo = grp * BENCH_GROUP, hi = std::min(files, (grp + 1) * BENCH_GROUP);
            for (long i = lo; i < hi; i++) {
                uint32_t load = B.add(Body::Literal, (uint32_t)i);
                out.sources.push_back(load);
                loads.push_back(load);
            }
            uint32_t first_clean = (uint32_t)out.count; // the group's cleans are contiguous
            for (uint32_t load : loads) B.edge(load, B.add(Body::One, load));
            uint32_t an = B.add(Body::Range, first_clean, first_clean + (uint32_t)loads.size());
            for (uint32_t c = first_clean; c < an; c++) B.edge(c, an);
            uint32_t st = B.add(Body::One, an);
            B.edge(an, st);
            lists.push_back(st);
        }
        uint32_t sink = B.add(Body::List, 0, (uint32_t)lists.size());
        for (uint32_t st : lists) B.edge(st, sink);
    } else {
        fprintf(stderr, "unknown shape %s\n", shape);
        exit(2);
    }
    if (out.count != tasks) {
        fprintf(stderr, "%s: built %ld nodes, expected %ld\n", shape, out.count, tasks);
        exit(1);
    }
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
        if (!strcmp(shape, "spin") && spin_iters == 0)
            spin_iters = a.spin_iters >= 0 ? a.spin_iters : bench_calibrate_spin();
        bench_rounds_t r;
        memset(&r, 0, sizeof r);
        r.rounds = a.rounds;
        long tasks = task_count(shape, a.n);
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
        bench_emit(&a, "tbb-flow", shape, tasks, &r, -1, !strcmp(shape, "spin") ? spin_iters : -1);
    }
    return 0;
}
