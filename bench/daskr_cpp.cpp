// daskr through the C++ wrapper (include/daskr.hpp) on the benchmark shapes: the same graphs,
// keys and sizes as bench/daskr_c.c, built the way a C++ user would -- daskr::Graph::add_task
// with lambdas as daskr::Func, daskr::ref(handle) arguments, {{"method", "mean"}} kwargs --
// and run with Graph::get. Tasks set small int results with Call::ret_int (no allocation).
// Command line and rows: see bench_common.h.
//
// Build: g++ -std=c++17 -O2 -Iinclude -Ibench bench/daskr_cpp.cpp -Ltarget/release -ldaskr
//        -Wl,-rpath,$PWD/target/release -o target/bench/daskr_cpp
#include "bench_common.h"

#include <cinttypes>
#include <string>
#include <vector>

#include "daskr.hpp"

namespace {

long spin_iters = 0;

int64_t int_or(const daskr::ValueView &v, int64_t fallback) { return v.get<int64_t>().value_or(fallback); }

struct Funcs {
    daskr::Func noop{"noop", [](daskr::Call &c) {
                         int64_t t = 1;
                         for (size_t i = 0, n = c.nargs(); i < n; i++) t += int_or(c.arg(i), 0) & 1;
                         c.ret_int(t & 7);
                     }};
    daskr::Func sink{"sink", [](daskr::Call &c) { c.ret_int(static_cast<int64_t>(c.arg(0).size() & 7)); }};
    daskr::Func analyze{"analyze", [](daskr::Call &c) {
                            auto method = c.kwarg<std::string_view>("method", "mean");
                            auto list = c.arg(0);
                            int64_t t = 0;
                            for (size_t i = 0, n = list.size(); i < n; i++) t += int_or(list[i], 0);
                            c.ret_int((t + method[0]) & 7);
                        }};
    daskr::Func store{"store", [](daskr::Call &c) {
                          auto to = c.kwarg<std::string_view>("to", "stdout");
                          c.ret_int((int_or(c.arg(0), 0) + to[0]) & 7);
                      }};
    daskr::Func spin{"spin", [](daskr::Call &c) {
                         c.ret_int(static_cast<int64_t>(bench_spin(spin_iters, reinterpret_cast<uintptr_t>(&c)) & 7));
                     }};
};

daskr::Task add(daskr::Graph &g, const daskr::Func &f, const char *prefix, long i, long j, daskr::Args &&args = {},
                daskr::Kwargs &&kw = {}) {
    char key[64];
    return g.add_task(bench_key(key, prefix, i, j), f, std::move(args), std::move(kw));
}

// Builds the shape; returns the key to request and sets *tasks.
std::string build(daskr::Graph &g, const Funcs &F, const char *shape, long n, long *tasks) {
    char key[64];
    if (!strcmp(shape, "chain")) {
        daskr::Task prev = add(g, F.noop, "chain", 0, -1);
        for (long i = 1; i < n; i++) prev = add(g, F.noop, "chain", i, -1, {daskr::ref(prev)});
        *tasks = n;
        return bench_key(key, "chain", n - 1, -1);
    }
    if (!strcmp(shape, "independent") || !strcmp(shape, "spin")) {
        const daskr::Func &f = shape[0] == 's' ? F.spin : F.noop;
        std::vector<daskr::Comp> refs;
        refs.reserve((size_t)n);
        for (long i = 0; i < n; i++) refs.push_back(daskr::ref(add(g, f, "ind", i, -1)));
        g.add_task("sink", F.sink, {daskr::list(std::move(refs))});
        *tasks = n + 1;
        return "sink";
    }
    if (!strcmp(shape, "tree")) {
        std::vector<daskr::Task> level((size_t)n);
        long width = n, depth = 0, total = n;
        for (long i = 0; i < n; i++) level[(size_t)i] = add(g, F.noop, "leaf", i, -1);
        while (width > 1) {
            depth++;
            long w = 0;
            for (long i = 0; i + 1 < width; i += 2)
                level[(size_t)w++] =
                    add(g, F.noop, "sum", depth, i / 2, {daskr::ref(level[(size_t)i]), daskr::ref(level[(size_t)i + 1])});
            if (width & 1) level[(size_t)w++] = level[(size_t)width - 1];
            total += width / 2;
            width = w;
        }
        *tasks = total;
        return g.key(level[0]);
    }
    if (!strcmp(shape, "wavefront")) {
        long side = bench_wave_side(n);
        std::vector<daskr::Task> row((size_t)side);
        for (long i = 0; i < side; i++) {
            for (long j = 0; j < side; j++) {
                daskr::Args a;
                if (j > 0) a.push_back(daskr::ref(row[(size_t)j - 1]));
                if (i > 0) a.push_back(daskr::ref(row[(size_t)j]));
                row[(size_t)j] = add(g, F.noop, "wave", i, j, std::move(a));
            }
        }
        *tasks = side * side;
        return bench_key(key, "wave", side - 1, side - 1);
    }
    if (!strcmp(shape, "pipeline")) {
        long files = bench_pipeline_files(n), groups = bench_pipeline_groups(n);
        std::vector<daskr::Comp> stores;
        for (long grp = 0; grp < groups; grp++) {
            std::vector<daskr::Comp> cleaned;
            for (long i = grp * BENCH_GROUP; i < files && i < (grp + 1) * BENCH_GROUP; i++) {
                daskr::Task load = add(g, F.noop, "load", i, -1, {daskr::lit(static_cast<int64_t>(i))});
                cleaned.push_back(daskr::ref(add(g, F.noop, "clean", i, -1, {daskr::ref(load)})));
            }
            daskr::Task an = add(g, F.analyze, "analyze", grp, -1, {daskr::list(std::move(cleaned))}, {{"method", "mean"}});
            stores.push_back(daskr::ref(add(g, F.store, "store", grp, -1, {daskr::ref(an)}, {{"to", "results"}})));
        }
        g.add_task("pipeline", F.sink, {daskr::list(std::move(stores))});
        *tasks = 2 * files + 2 * groups + 1;
        return "pipeline";
    }
    fprintf(stderr, "unknown shape %s\n", shape);
    exit(2);
}

} // namespace

int main(int argc, char **argv) {
    bench_args_t a;
    bench_parse(argc, argv, &a);
    if (a.calibrate) {
        printf("%ld\n", bench_calibrate_spin());
        return 0;
    }
    try {
        Funcs F;
        for (int s = 0; s < a.nshapes; s++) {
            const char *shape = a.shapes[s];
            if (!strcmp(shape, "spin") && spin_iters == 0)
                spin_iters = a.spin_iters >= 0 ? a.spin_iters : bench_calibrate_spin();
            bench_rounds_t r;
            memset(&r, 0, sizeof r);
            r.rounds = a.rounds;
            long tasks = 0;
            uint64_t peak = 0;
            // Timed rounds without stats; one more, untimed, measures peak_held (as daskr_c.c).
            for (int k = 0; k <= a.rounds; k++) {
                bool measure = k == a.rounds;
                long rss0 = bench_rss();
                double t0 = bench_now(), t1, t2, t3, t4;
                long rss1;
                daskr::Stats st{};
                {
                    daskr::Graph g;
                    std::string key = build(g, F, shape, a.n, &tasks);
                    t1 = bench_now();
                    daskr::Options o;
                    o.workers = a.threads;
                    o.stats = measure ? &st : nullptr;
                    daskr::Value out = g.get(key, o);
                    t2 = bench_now();
                    rss1 = bench_rss();
                    t3 = bench_now();
                } // frees the result, then the graph
                t4 = bench_now();
                if (k == 0) r.rss_before = rss0, r.rss_after = rss1;
                if (!measure) {
                    r.build[k] = t1 - t0;
                    r.run[k] = t2 - t1;
                    r.total[k] = t2 - t0;
                    r.freed[k] = t4 - t3;
                    continue;
                }
                peak = st.peak_held;
                if ((long)st.entries_run != tasks) {
                    fprintf(stderr, "%s: %" PRIu64 " entries ran, expected %ld\n", shape, st.entries_run, tasks);
                    return 1;
                }
            }
            bench_emit(&a, "daskr-cpp", shape, tasks, &r, (long long)peak, !strcmp(shape, "spin") ? spin_iters : -1);
        }
    } catch (const std::exception &e) {
        fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
