// The benchmark shapes for the task-graph libraries that pass no values and key nothing
// (oneTBB flow_graph in tbb_flow.cpp, Taskflow in taskflow.cpp): one node per task, one edge
// per dependency, the same graphs and sizes as bench/daskr_c.c. Kept here once so that every
// such row builds exactly the same graph.
//
// These libraries pass no values between nodes, so each task reads its predecessors' results
// from a shared int64 array and writes its own there (a small int): the same work the no-op
// daskr tasks do with their args (bench_tasks.h).
#ifndef DASKR_BENCH_NATIVE_SHAPES_HPP
#define DASKR_BENCH_NATIVE_SHAPES_HPP

#include "bench_common.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace bench {

inline long spin_iters = 0;
inline std::vector<uint32_t> lists; // index lists read by List bodies (filled while building, read while running)

// One body type for every node: what it reads (kind) and where it writes (self).
struct Body {
    enum Kind : uint8_t { None, One, Two, Range, List, Literal, Spin };
    int64_t *v;
    uint32_t self, a, b;
    Kind kind;
    void operator()() const {
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
    }
};

// Nodes a shape has: the same counts as daskr_c.c reports.
inline long task_count(const char *shape, long n) {
    if (!strcmp(shape, "chain")) return n;
    if (!strcmp(shape, "independent") || !strcmp(shape, "spin")) return n + 1;
    if (!strcmp(shape, "tree")) return 2 * n - 1;
    if (!strcmp(shape, "wavefront")) return bench_wave_side(n) * bench_wave_side(n);
    if (!strcmp(shape, "pipeline")) return 2 * bench_pipeline_files(n) + 2 * bench_pipeline_groups(n) + 1;
    fprintf(stderr, "unknown shape %s\n", shape);
    exit(2);
}

// Builds `shape` through B, which provides
//   uint32_t add(Body::Kind, uint32_t a, uint32_t b)  a node whose ids count up from 0,
//   void edge(uint32_t from, uint32_t to), void source(uint32_t id)  (a node with no inputs),
//   long count() const  nodes added so far.
template <class B> void build_shape(B &b, const char *shape, long n) {
    long tasks = task_count(shape, n);
    if (!strcmp(shape, "chain")) {
        uint32_t prev = b.add(Body::None, 0, 0);
        b.source(prev);
        for (long i = 1; i < n; i++) {
            uint32_t t = b.add(Body::One, prev, 0);
            b.edge(prev, t);
            prev = t;
        }
    } else if (!strcmp(shape, "independent") || !strcmp(shape, "spin")) {
        Body::Kind k = shape[0] == 's' ? Body::Spin : Body::None;
        for (long i = 0; i < n; i++) b.source(b.add(k, 0, 0));
        uint32_t sink = b.add(Body::Range, 0, (uint32_t)n);
        for (long i = 0; i < n; i++) b.edge((uint32_t)i, sink);
    } else if (!strcmp(shape, "tree")) {
        std::vector<uint32_t> level((size_t)n);
        for (long i = 0; i < n; i++) b.source(level[(size_t)i] = b.add(Body::None, 0, 0));
        long width = n;
        while (width > 1) {
            long w = 0;
            for (long i = 0; i + 1 < width; i += 2) {
                uint32_t l = level[(size_t)i], r = level[(size_t)i + 1];
                uint32_t t = b.add(Body::Two, l, r);
                b.edge(l, t);
                b.edge(r, t);
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
                if (i == 0 && j == 0) b.source(t = b.add(Body::None, 0, 0));
                else if (i == 0) t = b.add(Body::One, row[(size_t)j - 1], 0);
                else if (j == 0) t = b.add(Body::One, row[(size_t)j], 0);
                else t = b.add(Body::Two, row[(size_t)j - 1], row[(size_t)j]);
                if (j > 0) b.edge(row[(size_t)j - 1], t);
                if (i > 0) b.edge(row[(size_t)j], t);
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
                uint32_t load = b.add(Body::Literal, (uint32_t)i, 0);
                b.source(load);
                loads.push_back(load);
            }
            uint32_t first_clean = (uint32_t)b.count(); // the group's cleans are contiguous
            for (uint32_t load : loads) b.edge(load, b.add(Body::One, load, 0));
            uint32_t an = b.add(Body::Range, first_clean, first_clean + (uint32_t)loads.size());
            for (uint32_t c = first_clean; c < an; c++) b.edge(c, an);
            uint32_t st = b.add(Body::One, an, 0);
            b.edge(an, st);
            lists.push_back(st);
        }
        uint32_t sink = b.add(Body::List, 0, (uint32_t)lists.size());
        for (uint32_t st : lists) b.edge(st, sink);
    } else {
        fprintf(stderr, "unknown shape %s\n", shape);
        exit(2);
    }
    if (b.count() != tasks) {
        fprintf(stderr, "%s: built %ld nodes, expected %ld\n", shape, b.count(), tasks);
        exit(1);
    }
}

} // namespace bench

#endif
