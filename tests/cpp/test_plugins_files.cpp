// The C++ wrapper's plugins, graph files, DOT pictures, progress and a task's view of its
// get's cancel switch, against the real libdaskr.so and the example plugin
// (examples/plugins/example.c, built by CMake next to the tests: DASKR_TEST_PLUGIN).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "daskr.hpp"
#include "expect_error.hpp"

using daskr::Call;
using daskr::Error;
using daskr::Graph;

namespace {

using daskr_test::expect_error;

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

std::string read_all(const std::string &path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/// A temporary folder, removed with what the test put in it.
struct TempDir {
    std::string path;
    std::vector<std::string> files;
    TempDir() {
        std::string tmpl = ::testing::TempDir() + "daskr-cpp-XXXXXX";
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    std::string file(const std::string &name) {
        files.push_back(path + "/" + name);
        return files.back();
    }
    ~TempDir() {
        for (const auto &f : files) std::remove(f.c_str());
        std::remove(path.c_str());
    }
};

const std::string plugin_path = DASKR_TEST_PLUGIN;

std::string graph_file_text() {
    return R"({"plugins": {"ex": ")" + plugin_path + R"("},
  "graph": {"x": 1, "y": {"fn": "ex:inc", "args": ["x"]}, "z": {"fn": "ex:add", "args": ["y", 10]}},
  "keys": ["z", "y"]})";
}

} // namespace

TEST(Plugins, OpenDescribeAndRunTheirTasks) {
    daskr::Func inc = [] {
        daskr::Plugin plugin(plugin_path);
        EXPECT_EQ(plugin.name(), "example");
        EXPECT_FALSE(plugin.version().empty());
        EXPECT_EQ(plugin.path().front(), '/');
        bool declares_inc = false;
        for (const auto &t : plugin.tasks()) declares_inc |= t.symbol == "inc" && !t.doc.empty();
        EXPECT_TRUE(declares_inc);
        Error e = expect_error([&] { plugin.func("no_such_task"); });
        EXPECT_EQ(e.kind(), DASKR_ERROR_PLUGIN);
        EXPECT_TRUE(contains(e.message(), "no_such_task")) << e.message();
        return plugin.func("inc");
    }(); // the plugin handle is gone; its function is not
    Graph g;
    g.add_value("x", 41);
    g.add_task("y", inc, {daskr::ref("x")});
    EXPECT_EQ(g.get("y").as<int64_t>(), 42);
    daskr::Options o;
    o.scheduler = daskr::Scheduler::Sync;
    EXPECT_EQ(g.get("y", o).as<int64_t>(), 42);
    // A failing plugin task: the error names the key.
    g.add_value("s", "not a number");
    g.add_task("bad", inc, {daskr::ref("s")});
    Error e = expect_error([&] { g.get("bad"); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_TASK_FAILED);
    EXPECT_EQ(e.key().value_or(""), "bad");
}

TEST(Plugins, BadPathsAreClearErrors) {
    Error e = expect_error([] { daskr::Plugin p("/nonexistent/libnothing.so"); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_PLUGIN);
    EXPECT_TRUE(contains(e.message(), "/nonexistent/libnothing.so")) << e.message();
    TempDir dir;
    std::string not_a_library = dir.file("plain.so");
    std::ofstream(not_a_library) << "not a library";
    e = expect_error([&] { daskr::Plugin p(not_a_library); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_PLUGIN);
    EXPECT_TRUE(contains(e.message(), not_a_library)) << e.message();
}

TEST(GraphFiles, ReadRunWriteAndReadBack) {
    TempDir dir;
    std::string path = dir.file("graph.json");
    std::ofstream(path) << graph_file_text();
    Graph::File file = Graph::read_file(path);
    EXPECT_EQ(file.graph.size(), 3u);
    ASSERT_TRUE(file.keys.has_value());
    daskr::Value r = file.graph.get(*file.keys);
    EXPECT_EQ(r[0].as<int64_t>(), 12);
    EXPECT_EQ(r[1].as<int64_t>(), 2);

    // Written (relative plugin paths: none here, the plugin is outside the folder) and read
    // back: the same graph, the same results.
    std::string copy = dir.file("copy.json");
    file.graph.write_file(copy, daskr::Keys("z"));
    Graph::File again = Graph::read_file(copy);
    ASSERT_TRUE(again.keys.has_value());
    EXPECT_EQ(again.graph.get(*again.keys).as<int64_t>(), 12);
    // No keys: the file has none.
    Graph::File bare = Graph::from_json(file.graph.to_json());
    EXPECT_FALSE(bare.keys.has_value());
    EXPECT_EQ(bare.graph.get("y").as<int64_t>(), 2);
    // A nested request survives the trip.
    Graph::File nested = Graph::from_json(file.graph.to_json(daskr::Keys{"z", {"x", "y"}}));
    daskr::Value n = nested.graph.get(*nested.keys);
    EXPECT_EQ(n[1][0].as<int64_t>(), 1);
}

TEST(GraphFiles, BadFilesAndUnwritableGraphsThrowNamingWhatWasWrong) {
    Error e = expect_error([] { Graph::from_json(R"({"graph": {"y": {"fn": "nope:inc", "args": []}}})"); });
    EXPECT_TRUE(e.kind() == DASKR_ERROR_INVALID_GRAPH || e.kind() == DASKR_ERROR_PLUGIN) << e.what();
    EXPECT_TRUE(contains(e.message(), "nope")) << e.message();
    e = expect_error([] { Graph::from_json("{not json"); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_GRAPH);
    e = expect_error([] { Graph::read_file("/nonexistent/graph.json"); });
    EXPECT_TRUE(contains(e.message(), "/nonexistent/graph.json")) << e.message();

    // A lambda has no name another program could load: to_json names its key.
    Graph g;
    g.add_task("lambda", [](Call &) { return 1; });
    e = expect_error([&] { g.to_json(); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_GRAPH);
    EXPECT_EQ(e.key().value_or(""), "lambda");
    Graph ok = std::move(Graph::from_json(graph_file_text()).graph);
    e = expect_error([&] { ok.write_file("/nonexistent-dir/graph.json"); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(e.message(), "/nonexistent-dir/graph.json"));
    // A default request that is not one.
    e = expect_error([] { Graph::from_json(R"({"graph": {"x": 1}, "keys": 5})"); });
    EXPECT_NE(e.kind(), DASKR_ERROR_INTERNAL);
}

TEST(Dot, DrawsTheNeededPartWithProfileAndFailedKey) {
    TempDir dir;
    Graph g;
    g.add_value("x", 1);
    g.add_task("y", [](Call &c) { return c.arg<int64_t>(0) + 1; }, {daskr::ref("x")});
    g.add_task("unneeded", [](Call &) { return 0; });
    daskr::Profile profile;
    daskr::Options o;
    o.profile = &profile;
    g.get("y", o);
    std::string path = dir.file("g.dot");
    g.write_dot(path, "y", &profile, std::string("y"));
    std::string dot = read_all(path);
    EXPECT_TRUE(contains(dot, "digraph")) << dot;
    EXPECT_TRUE(contains(dot, "\"y\"") || contains(dot, "y")) << dot;
    EXPECT_FALSE(contains(dot, "unneeded")) << dot;
    EXPECT_TRUE(contains(dot, "fillcolor=\"#ff6b6b\"")) << dot; // the failed key, in red
    EXPECT_TRUE(contains(dot, "tooltip=")) << dot;                // the profile's times
    // Without a profile or failed key; a missing key is an error naming it.
    g.write_dot(path, daskr::Keys{"y", "unneeded"});
    dot = read_all(path);
    EXPECT_TRUE(contains(dot, "unneeded")) << dot;
    EXPECT_FALSE(contains(dot, "#ff6b6b")) << dot;
    Error e = expect_error([&] { g.write_dot(path, "nope"); });
    EXPECT_EQ(e.key().value_or(""), "nope") << e.what();
    e = expect_error([&] { g.write_dot("/nonexistent-dir/g.dot", "y"); });
    EXPECT_TRUE(contains(e.message(), "/nonexistent-dir/g.dot")) << e.message();
}

TEST(Progress, PolledFromAnotherThreadWhileAGetRuns) {
    constexpr int n = 50;
    std::mutex m;
    std::condition_variable cv;
    bool seen = false;
    Graph g;
    // "gate" holds the get open until the poller has seen it running with its total.
    g.add_task("gate", [&](Call &) {
        std::unique_lock<std::mutex> lock(m);
        cv.wait_for(lock, std::chrono::seconds(30), [&] { return seen; });
        return 0;
    });
    std::vector<daskr::Comp> all;
    all.push_back(daskr::ref("gate"));
    for (int i = 0; i < n; i++) {
        g.add_task(daskr::key("t", i), [](Call &c) { return c.arg<int64_t>(0) + 1; }, {daskr::ref("gate")});
        all.push_back(daskr::ref(daskr::key("t", i)));
    }
    g.add("all", daskr::list(std::move(all)));
    daskr::Progress progress;
    EXPECT_FALSE(progress.running());
    EXPECT_EQ(progress.total(), 0u);
    uint64_t total_seen = 0;
    std::thread poller([&] {
        for (int i = 0; i < 300000 && !(progress.running() && progress.total() > 0); i++)
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        std::lock_guard<std::mutex> lock(m);
        total_seen = progress.total();
        seen = progress.running();
        cv.notify_all();
    });
    daskr::Options o;
    o.workers = 2;
    o.progress = &progress;
    daskr::Value r = g.get("all", o);
    poller.join();
    EXPECT_TRUE(seen);
    EXPECT_EQ(total_seen, uint64_t(n + 2)); // gate, the n tasks, the list
    EXPECT_FALSE(progress.running());
    EXPECT_EQ(progress.done(), progress.total());
    EXPECT_EQ(r[n].as<int64_t>(), 1);
}

TEST(Cancel, ATaskSeesAndTriggersItsGetsCancel) {
    std::atomic<bool> after_ran{false}, saw_cancelled{false}, without_cancel{true};
    Graph g;
    g.add_task("stop", [&](Call &c) {
        EXPECT_FALSE(c.cancelled());
        EXPECT_TRUE(c.cancel_get());
        saw_cancelled = c.cancelled();
        return 1;
    });
    g.add_task("after", [&](Call &c) {
        after_ran = true;
        return c.arg<int64_t>(0);
    }, {daskr::ref("stop")});
    g.add_task("plain", [&](Call &c) {
        without_cancel = c.cancel_get() || c.cancelled();
        return 0;
    });
    daskr::Cancel cancel;
    daskr::Options o;
    o.cancel = &cancel;
    for (auto s : {daskr::Scheduler::Sync, daskr::Scheduler::Threads}) {
        o.scheduler = s;
        Error e = expect_error([&] { g.get("after", o); });
        EXPECT_EQ(e.kind(), DASKR_ERROR_CANCELLED);
        EXPECT_TRUE(saw_cancelled.load());
        EXPECT_FALSE(after_ran.load());
        EXPECT_TRUE(cancel.is_triggered());
        cancel.reset();
    }
    g.get("plain");
    EXPECT_FALSE(without_cancel.load());
}
