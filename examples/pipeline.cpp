// The seed's pipeline, in C++ (the same graph, data and output as examples/pipeline.c):
//
//   load-i  = load("myfile.<x>.data")      (three files)
//   clean-i = clean(load-i)
//   analyze = analyze([clean-1, clean-2, clean-3], method="mean")
//   store   = store(analyze, to="results")
//
// Build and run: `make pipeline-cpp`.
#include <cinttypes>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "daskr.hpp"

int main() {
    // A small deterministic generator seeded by the file name stands in for reading it.
    daskr::Func load("load", [](daskr::Call &call) {
        auto path = call.arg<std::string_view>(0);
        uint64_t seed = 1469598103934665603ull;
        for (unsigned char c : path) seed = (seed ^ c) * 1099511628211ull;
        std::vector<double> readings;
        for (int i = 0; i < 8; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            readings.push_back(static_cast<double>((seed >> 33) % 2000) / 10.0 - 20.0); // -20.0 .. 179.9
        }
        return readings;
    });
    // Drops the glitches (negative readings).
    daskr::Func clean("clean", [](daskr::Call &call) {
        std::vector<double> good;
        for (double x : call.arg<std::vector<double>>(0))
            if (x >= 0.0) good.push_back(x);
        return good;
    });
    // Summarises all files with the statistic its keyword argument names.
    daskr::Func analyze("analyze", [](daskr::Call &call) {
        auto files = call.arg<std::vector<std::vector<double>>>(0);
        auto method = call.kwarg<std::string>("method", "mean");
        if (method != "mean" && method != "max") throw std::invalid_argument("analyze: method must be \"mean\" or \"max\"");
        double total = 0.0, max = 0.0;
        int64_t count = 0;
        for (const auto &readings : files)
            for (double x : readings) {
                total += x;
                max = (count == 0 || x > max) ? x : max;
                count++;
            }
        if (count == 0) throw std::runtime_error("analyze: no readings left after cleaning");
        double stat = method == "mean" ? total / static_cast<double>(count) : max;
        char summary[128];
        std::snprintf(summary, sizeof summary, "%" PRId64 " readings from %zu files, %s %.2f", count, files.size(),
                      method.c_str(), stat);
        return std::string(summary);
    });
    // Prints the summary and returns the number of bytes it wrote.
    daskr::Func store("store", [](daskr::Call &call) {
        auto summary = call.arg<std::string>(0);
        auto to = call.kwarg<std::string>("to", "stdout");
        return static_cast<int64_t>(std::printf("[store -> %s] %s\n", to.c_str(), summary.c_str()));
    });

    try {
        daskr::Graph g;
        const char *files[] = {"myfile.a.data", "myfile.b.data", "myfile.c.data"};
        std::vector<daskr::Comp> cleaned;
        for (int i = 0; i < 3; i++) {
            std::string n = std::to_string(i + 1);
            g.add_task("load-" + n, load, {files[i]});
            g.add_task("clean-" + n, clean, {daskr::ref("load-" + n)});
            cleaned.push_back(daskr::ref("clean-" + n));
        }
        g.add_task("analyze", analyze, {daskr::list(std::move(cleaned))}, {{"method", "mean"}});
        g.add_task("store", store, {daskr::ref("analyze")}, {{"to", "results"}});

        daskr::Stats stats{};
        daskr::Options options;
        options.stats = &stats;
        int64_t written = g.get("store", options).as<int64_t>();
        std::printf("store wrote %" PRId64 " bytes; %" PRIu64 " tasks ran on %u threads, at most %" PRIu64
                    " results held at once\n",
                    written, stats.entries_run, stats.workers, stats.peak_held);
    } catch (const daskr::Error &e) {
        std::fprintf(stderr, "daskr error (%s, key %s): %s\n", e.kind_name(), e.key() ? e.key()->c_str() : "-",
                     e.message().c_str());
        return 1;
    }
    return 0;
}
