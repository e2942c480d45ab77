// Tests of include/daskr.hpp against the real libdaskr.so. Each test asserts results, error
// kinds and keys, and destructor counts; the binary also runs under valgrind
// (`make test-cpp-memcheck`) to check that nothing leaks.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#include "daskr.hpp"
#include "expect_error.hpp"

using daskr::Call;
using daskr::Error;
using daskr::Func;
using daskr::Graph;
using daskr::Value;

namespace {

// ----- helpers ---------------------------------------------------------------------------

/// A C++ object that counts its constructions and destructions.
struct Counted {
    static std::atomic<int> made, destroyed;
    int64_t n;
    explicit Counted(int64_t v) : n(v) { made++; }
    ~Counted() { destroyed++; }
    Counted(const Counted &) = delete;
    static void reset() { made = 0, destroyed = 0; }
};
std::atomic<int> Counted::made{0}, Counted::destroyed{0};

struct Named {
    std::string text;
};
struct Other {
    int x = 0;
};

using daskr_test::expect_error;

Func inc_func() {
    return Func("inc", [](Call &c) { return c.arg<int64_t>(0) + 1; });
}

daskr::Options sync_options() {
    daskr::Options o;
    o.scheduler = daskr::Scheduler::Sync;
    return o;
}

// ----- RAII and types --------------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<Graph> && std::is_move_constructible_v<Graph>);
static_assert(!std::is_copy_constructible_v<Value> && std::is_move_constructible_v<Value>);
static_assert(!std::is_copy_constructible_v<Func> && std::is_move_constructible_v<Func>);
static_assert(!std::is_copy_constructible_v<daskr::Comp> && std::is_move_constructible_v<daskr::Comp>);
static_assert(!std::is_copy_constructible_v<daskr::Cancel> && std::is_move_constructible_v<daskr::Cancel>);
static_assert(std::is_base_of_v<std::exception, Error>);

TEST(Basics, IncrementLikeTheReadme) {
    Graph g;
    auto x = g.add_value("x", 1);
    g.add_task("y", inc_func(), {x});
    EXPECT_EQ(g.get("y").as<int64_t>(), 2);
    EXPECT_EQ(g.size(), 2u);
    EXPECT_TRUE(g.contains("y"));
    EXPECT_FALSE(g.contains("z"));
    EXPECT_EQ(g.key(x), "x");
}

TEST(Basics, AnonymousEntriesAreReachedByHandle) {
    Graph g;
    daskr::Task prev = g.add_anonymous_value(0);
    for (int i = 0; i < 100; i++) prev = g.add_anonymous_task(inc_func(), {prev});
    daskr::Task keyless = g.add_anonymous_task(Func("keyless", [](Call &c) { return c.key().empty(); }));
    daskr::Task both = g.add_anonymous(daskr::list({prev, daskr::ref("named")}));
    g.add_task("named", inc_func(), {prev});
    for (auto s : {daskr::Scheduler::Sync, daskr::Scheduler::Threads, daskr::Scheduler::Processes}) {
        daskr::Options o;
        o.scheduler = s;
        EXPECT_EQ(g.get_task(prev, o).as<int64_t>(), 100);
        Value all = g.get_tasks({both, keyless, prev}, o);
        ASSERT_EQ(all.view().size(), 3u);
        EXPECT_EQ(all.view()[0][0].as<int64_t>(), 100);
        EXPECT_EQ(all.view()[0][1].as<int64_t>(), 101);
        EXPECT_EQ(all.view()[1].as<bool>(), true);
        EXPECT_EQ(g.get("named", o).as<int64_t>(), 101);
    }
    EXPECT_EQ(g.size(), 104u);
    Error e = expect_error([&] { (void)g.key(prev); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_ARGUMENT);
    // A failing anonymous task is named by its index.
    daskr::Task bad = g.add_anonymous_task(Func("bad", [](Call &) -> int64_t { throw std::runtime_error("nope"); }));
    e = expect_error([&] { (void)g.get_task(bad, sync_options()); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_TASK_FAILED);
    EXPECT_EQ(e.key(), "#" + std::to_string(static_cast<uint32_t>(bad.id)));
}

TEST(Basics, SchedulersComeFromTheLibrary) {
    const char *names[] = {"threads", "sync", "processes", "distributed"};
    ASSERT_EQ(daskr::scheduler_count(), 4u);
    for (uint32_t i = 0; i < daskr::scheduler_count(); i++) {
        auto s = static_cast<daskr::Scheduler>(i);
        EXPECT_EQ(daskr::scheduler_name(s), names[i]);
        EXPECT_EQ(daskr::scheduler_named(names[i]), s);
    }
    EXPECT_EQ(daskr::scheduler_name(daskr::Scheduler::Processes), "processes");
    EXPECT_EQ(daskr::scheduler_name(static_cast<daskr::Scheduler>(9)), "");
    try {
        daskr::scheduler_named("fast");
        ADD_FAILURE() << "an unknown scheduler was accepted";
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_ARGUMENT);
    }
    EXPECT_TRUE(daskr::scheduler_reads(daskr::Scheduler::Threads, "workers"));
    EXPECT_FALSE(daskr::scheduler_reads(daskr::Scheduler::Sync, "workers"));
    EXPECT_TRUE(daskr::scheduler_reads(daskr::Scheduler::Processes, "task_timeout"));
    EXPECT_TRUE(daskr::scheduler_reads(daskr::Scheduler::Distributed, "retries"));
    EXPECT_FALSE(daskr::scheduler_reads(daskr::Scheduler::Distributed, "task_timeout"));
    EXPECT_TRUE(daskr::scheduler_reads(daskr::Scheduler::Distributed, "address"));
}

TEST(Basics, MovedGraphStillWorksAndMovedFromIsEmpty) {
    Graph a;
    a.add_value("x", 41);
    Graph b = std::move(a);
    b.add_task("y", inc_func(), {daskr::ref("x")});
    EXPECT_EQ(b.get("y").as<int>(), 42);
    Value v = b.get("y");
    Value w = std::move(v);
    EXPECT_EQ(w.as<int64_t>(), 42);
    EXPECT_EQ(v.raw(), nullptr); // NOLINT: moved-from is empty
}

TEST(Basics, LambdaCapturesAndStdFunction) {
    std::atomic<int> calls{0};
    int64_t offset = 100;
    Graph g;
    g.add_value("x", 1);
    g.add_task("y", [&calls, offset](Call &c) {
        calls++;
        return c.arg<int64_t>(0) + offset;
    }, {daskr::ref("x")});
    std::function<int64_t(Call &)> twice = [](Call &c) { return 2 * c.arg<int64_t>(0); };
    g.add_task("z", Func("twice", twice), {daskr::ref("y")});
    EXPECT_EQ(g.get("z").as<int64_t>(), 202);
    EXPECT_EQ(calls.load(), 1);
}

TEST(Basics, CallableFreedExactlyOnceWhenLastGraphGoes) {
    auto token = std::make_shared<int>(7);
    std::weak_ptr<int> watch = token;
    {
        Graph g;
        {
            Func f("hold", [token](Call &) { return *token; });
            token.reset();
            g.add_task("a", f, {});
            g.add_task("b", f, {});
        } // the Func handle goes; the graph keeps the function
        EXPECT_FALSE(watch.expired());
        EXPECT_EQ(g.get("a").as<int>(), 7);
    }
    EXPECT_TRUE(watch.expired());
}

// ----- reading arguments -----------------------------------------------------------------

// daskr::Args holds a few items inline, then moves them to the heap; moved or dropped unused,
// it frees what it holds exactly once (the memcheck run checks there is no leak).
TEST(Args, PushBackPastTheInlineItemsAndMoves) {
    Graph g;
    daskr::Args a;
    for (int i = 0; i < 10; i++) a.push_back(daskr::lit(i));
    EXPECT_EQ(a.size(), 10u);
    daskr::Args moved = std::move(a);
    EXPECT_EQ(a.size(), 0u);
    g.add("l", daskr::list(std::move(moved)));
    EXPECT_EQ(g.get("l").as<std::vector<int64_t>>(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    daskr::Args few{daskr::lit(std::string("x")), daskr::lit(2)};
    daskr::Args many;
    for (int i = 0; i < 6; i++) many.push_back(daskr::lit(std::string(40, 'y')));
    many = std::move(few); // frees the six, takes the two
    EXPECT_EQ(many.size(), 2u);
}

TEST(Args, TypedReadersForEveryKind) {
    Graph g;
    std::map<std::string, std::string> seen;
    std::mutex m;
    Func check("check", [&](Call &c) {
        std::lock_guard<std::mutex> lock(m);
        EXPECT_EQ(c.nargs(), 8u);
        EXPECT_EQ(c.arg<int64_t>(0), -5);
        EXPECT_EQ(c.arg<int>(0), -5);
        EXPECT_DOUBLE_EQ(c.arg<double>(1), 2.5);
        EXPECT_DOUBLE_EQ(c.arg<double>(0), -5.0); // ints read as doubles
        EXPECT_EQ(c.arg<std::string>(2), "héllo");
        EXPECT_EQ(c.arg<std::string_view>(2), "héllo");
        EXPECT_EQ(c.arg<bool>(3), true);
        EXPECT_EQ(c.arg<std::vector<int64_t>>(4), (std::vector<int64_t>{1, 2, 3}));
        EXPECT_EQ(c.arg<std::vector<std::vector<std::string>>>(5),
                  (std::vector<std::vector<std::string>>{{"a"}, {}, {"b", "c"}}));
        EXPECT_EQ(c.arg<daskr::Bytes>(6), daskr::Bytes(std::string_view("\x00\xff", 2)));
        EXPECT_EQ(c.arg<daskr::BytesView>(6).size, 2u);
        EXPECT_TRUE(c.arg(7).is_null());
        EXPECT_EQ(c.arg<std::optional<int64_t>>(7), std::nullopt);
        EXPECT_EQ(c.arg<std::optional<int64_t>>(0), std::optional<int64_t>(-5));
        EXPECT_EQ(c.arg<std::optional<int64_t>>(99), std::nullopt);
        EXPECT_EQ(c.arg(4)[1].as<int64_t>(), 2);
        EXPECT_EQ(c.arg(4).size(), 3u);
        EXPECT_TRUE(c.arg(0).is<int64_t>());
        EXPECT_FALSE(c.arg(0).is<std::string>());
        EXPECT_EQ(c.arg(0).get<int64_t>(), std::optional<int64_t>(-5));
        EXPECT_EQ(c.arg(0).get<int8_t>(), std::optional<int8_t>(-5));
        EXPECT_EQ(c.arg(0).get<uint32_t>(), std::nullopt); // out of range, no exception
        EXPECT_EQ(c.arg(0).get<double>(), std::optional<double>(-5.0));
        EXPECT_EQ(c.arg(0).get<std::string_view>(), std::nullopt);
        EXPECT_EQ(c.arg(2).get<std::string_view>(), std::optional<std::string_view>("héllo"));
        EXPECT_EQ(c.arg(3).get<bool>(), std::optional<bool>(true));
        EXPECT_EQ(c.arg(3).get<int64_t>(), std::nullopt);
        EXPECT_EQ(c.arg(7).get<int64_t>(), std::nullopt); // null
        EXPECT_FALSE(c.arg(0).is<uint16_t>());

        EXPECT_EQ(c.nkwargs(), 3u);
        EXPECT_EQ(c.kwarg<std::string>("sep"), ",");
        EXPECT_EQ(c.kwarg<std::string_view>("sep"), ",");
        EXPECT_EQ(c.kwarg<int64_t>("n"), 3);
        EXPECT_EQ(c.kwarg<std::optional<std::string>>("absent"), std::nullopt);
        EXPECT_EQ(c.kwarg<std::optional<std::string>>("sep"), std::optional<std::string>(","));
        EXPECT_EQ(c.kwarg<std::string>("absent", "fallback"), "fallback");
        EXPECT_EQ(c.kwarg<int64_t>("n", 9), 3);
        EXPECT_TRUE(c.has_kwarg("flag"));
        EXPECT_FALSE(c.has_kwarg("absent"));
        EXPECT_FALSE(c.kwarg("absent").has_value());
        EXPECT_EQ(c.kwarg<bool>("flag"), false);
        auto all = c.kwargs();
        EXPECT_EQ(all.size(), 3u);
        for (auto &[name, v] : all) seen[std::string(name)] = daskr::detail::kind_str(v.kind());
        EXPECT_EQ(c.key(), "t");
        return true;
    });
    g.add_value("n", 3);
    g.add_task("t", check,
               {-5, 2.5, "héllo", true, std::vector<int64_t>{1, 2, 3},
                daskr::list({daskr::list({"a"}), daskr::list({}), std::vector<std::string>{"b", "c"}}),
                daskr::Bytes(std::string_view("\x00\xff", 2)), nullptr},
               {{"sep", ","}, {"n", daskr::ref("n")}, {"flag", false}});
    EXPECT_TRUE(g.get("t").as<bool>());
    EXPECT_EQ(seen["sep"], "string");
    EXPECT_EQ(seen["n"], "int");
    EXPECT_EQ(seen["flag"], "bool");
}

TEST(Args, WrongTypeFailsTheTaskWithAClearMessage) {
    Graph g;
    g.add_task("t", inc_func(), {"not a number"});
    Error e = expect_error([&] { g.get("t"); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_TASK_FAILED);
    EXPECT_EQ(e.key(), std::optional<std::string>("t"));
    EXPECT_NE(e.message().find("argument 0: expected int, got string"), std::string::npos) << e.message();
}

TEST(Args, MissingArgumentAndKwargFailTheTask) {
    Graph g;
    g.add_task("no-arg", inc_func(), {});
    g.add_task("no-kw", [](Call &c) { return c.kwarg<std::string>("sep"); }, {});
    g.add_task("range", [](Call &c) { return c.arg<uint8_t>(0); }, {300});
    Error e1 = expect_error([&] { g.get("no-arg"); });
    EXPECT_NE(e1.message().find("missing argument 0"), std::string::npos) << e1.message();
    Error e2 = expect_error([&] { g.get("no-kw"); });
    EXPECT_NE(e2.message().find("missing keyword argument 'sep'"), std::string::npos) << e2.message();
    Error e3 = expect_error([&] { g.get("range"); });
    EXPECT_NE(e3.message().find("out of range"), std::string::npos) << e3.message();
}

// ----- returning results -----------------------------------------------------------------

TEST(Results, EveryKindRoundTrips) {
    Graph g;
    g.add_task("int", [](Call &) { return int64_t{-7}; });
    g.add_task("uint", [](Call &) { return 7u; });
    g.add_task("double", [](Call &) { return 0.25; });
    g.add_task("bool", [](Call &) { return true; });
    g.add_task("string", [](Call &) { return std::string("s"); });
    g.add_task("cstr", [](Call &) { return "c"; });
    g.add_task("bytes", [](Call &) { return daskr::Bytes(std::string_view("\x01\x02\x03", 3)); });
    g.add_task("vector", [](Call &) { return std::vector<double>{1.5, 2.5}; });
    g.add_task("nested", [](Call &) { return std::vector<std::vector<int>>{{1}, {2, 3}}; });
    g.add_task("bools", [](Call &) { return std::vector<bool>{true, false}; });
    g.add_task("void", [](Call &) {});
    g.add_task("set-ret", [](Call &c) { c.ret(std::vector<std::string>{"x", "y"}); });
    g.add_task("nullopt", [](Call &) { return std::optional<int>(); });
    g.add_task("null", [](Call &) { return nullptr; });
    g.add_task("value", [](Call &) { return Value::list({}); });
    g.add_task("echo", [](Call &c) { return c.arg(0); }, {daskr::ref("nested")});

    EXPECT_EQ(g.get("int").as<int64_t>(), -7);
    EXPECT_EQ(g.get("uint").as<int64_t>(), 7);
    EXPECT_EQ(g.get("double").as<double>(), 0.25);
    EXPECT_EQ(g.get("bool").as<bool>(), true);
    EXPECT_EQ(g.get("string").as<std::string>(), "s");
    EXPECT_EQ(g.get("cstr").as<std::string>(), "c");
    EXPECT_EQ(g.get("bytes").as<daskr::Bytes>().data, (std::vector<uint8_t>{1, 2, 3}));
    EXPECT_EQ(g.get("vector").as<std::vector<double>>(), (std::vector<double>{1.5, 2.5}));
    EXPECT_EQ(g.get("nested").as<std::vector<std::vector<int>>>(), (std::vector<std::vector<int>>{{1}, {2, 3}}));
    EXPECT_EQ(g.get("bools").as<std::vector<bool>>(), (std::vector<bool>{true, false}));
    EXPECT_TRUE(g.get("void").is_null());
    EXPECT_EQ(g.get("set-ret").as<std::vector<std::string>>(), (std::vector<std::string>{"x", "y"}));
    EXPECT_TRUE(g.get("nullopt").is_null());
    EXPECT_TRUE(g.get("null").is_null());
    EXPECT_EQ(g.get("value").kind(), DASKR_KIND_LIST);
    EXPECT_EQ(g.get("echo"), g.get("nested"));
    EXPECT_EQ(g.get("int").kind(), DASKR_KIND_INT);
    EXPECT_EQ(g.get("bytes").kind(), DASKR_KIND_BYTES);
    // Wrong reads of a result throw TYPE_MISMATCH.
    Error e = expect_error([&] { (void)g.get("string").as<int64_t>(); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_TYPE_MISMATCH);
}

TEST(Results, ExplicitRetHelpers) {
    Graph g;
    g.add_task("i", [](Call &c) { c.ret_int(3); });
    g.add_task("f", [](Call &c) { c.ret_float(1.5); });
    g.add_task("b", [](Call &c) { c.ret_bool(false); });
    g.add_task("s", [](Call &c) { c.ret_string("str"); });
    g.add_task("fail", [](Call &c) { c.fail("explicitly failed"); });
    Value v = g.get({"i", "f", "b", "s"});
    EXPECT_EQ(v[0].as<int>(), 3);
    EXPECT_EQ(v[1].as<double>(), 1.5);
    EXPECT_EQ(v[2].as<bool>(), false);
    EXPECT_EQ(v[3].as<std::string>(), "str");
    Error e = expect_error([&] { g.get("fail"); });
    EXPECT_EQ(e.message().find("explicitly failed") != std::string::npos, true) << e.message();
}

// ----- maps ------------------------------------------------------------------------------

TEST(Maps, BuildIterateAndLookUp) {
    Value m = Value::map({{"file", Value::string("a.csv")}, {"n", Value::integer(3)}, {std::string("a\0b", 3), Value::null()}});
    EXPECT_EQ(m.kind(), DASKR_KIND_MAP);
    daskr::MapView entries = m.map();
    ASSERT_EQ(entries.size(), 3u);
    std::vector<std::string> names;
    for (auto [name, value] : entries) names.emplace_back(name);
    EXPECT_EQ(names, (std::vector<std::string>{"file", "n", std::string("a\0b", 3)}));
    EXPECT_EQ(m["file"].as<std::string>(), "a.csv");
    EXPECT_EQ(entries.value(1).as<int>(), 3);
    EXPECT_TRUE(entries.find(std::string("a\0b", 3)).has_value());
    EXPECT_FALSE(entries.find("nope").has_value());
    Error e = expect_error([&] { (void)m["nope"]; });
    EXPECT_NE(e.message().find("'nope'"), std::string::npos) << e.message();
    e = expect_error([&] { (void)entries.name(3); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_ARGUMENT);
    e = expect_error([&] { (void)Value::integer(1).map(); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_TYPE_MISMATCH);

    // Conversions: std::map keeps name order, std::unordered_map is sorted by name.
    std::map<std::string, std::vector<int>> sm{{"b", {2}}, {"a", {1, 1}}};
    Value fm = daskr::to_value(sm);
    EXPECT_EQ(fm.map().name(0), "a");
    EXPECT_EQ((fm.as<std::map<std::string, std::vector<int>>>()), sm);
    std::unordered_map<std::string, double> um{{"z", 1.5}, {"y", 2.5}, {"x", 0.5}};
    Value fu = daskr::to_value(um);
    EXPECT_EQ(fu.map().name(0), "x");
    EXPECT_EQ(fu.map().name(2), "z");
    EXPECT_EQ((fu.as<std::unordered_map<std::string, double>>()), um);
    EXPECT_EQ(fu, daskr::to_value(std::map<std::string, double>(um.begin(), um.end())));
    e = expect_error([&] { (void)fm.as<std::map<std::string, std::string>>(); });
    EXPECT_NE(e.message().find("entry 'a'"), std::string::npos) << e.message();
    // Equal whatever the order, like Python's dicts.
    EXPECT_EQ(Value::map({{"a", Value::integer(1)}, {"b", Value::integer(2)}}),
              Value::map({{"b", Value::integer(2)}, {"a", Value::integer(1)}}));
}

TEST(Maps, TasksTakeAndReturnMapsAndMapComputationsResolveReferences) {
    for (auto s : {daskr::Scheduler::Sync, daskr::Scheduler::Threads}) {
        Graph g;
        g.add("readings", std::vector<double>{1.0, 2.0, 6.0});
        g.add_task(
            "record",
            [](Call &c) {
                auto xs = c.arg<std::vector<double>>(1);
                double sum = 0;
                for (double x : xs) sum += x;
                return Value::map({{"file", c.arg(0).clone()}, {"readings", c.arg(1).clone()}, {"mean", Value::number(sum / xs.size())}});
            },
            {"a.csv", daskr::ref("readings")});
        g.add_task("mean", [](Call &c) { return c.arg(0)["mean"].as<double>(); }, {daskr::ref("record")});
        g.add("summary", daskr::map({{"mean", daskr::ref("mean")},
                                     {"n", daskr::task(inc_func(), {41})},
                                     {"file", daskr::lit("readings")},
                                     {"rec", daskr::ref("record")}}));
        daskr::Options o;
        o.scheduler = s;
        Value r = g.get("summary", o);
        EXPECT_EQ(r["mean"].as<double>(), 3.0);
        EXPECT_EQ(r["n"].as<int>(), 42);
        EXPECT_EQ(r["file"].as<std::string>(), "readings");
        EXPECT_EQ(r["rec"]["file"].as<std::string>(), "a.csv");
        EXPECT_EQ(r.map().name(3), "rec");
    }
}

TEST(Maps, BadMapsThrowNamingTheName) {
    Error e = expect_error([] { Value::map({{"k", Value::null()}, {"k", Value::null()}}); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(e.message().find("\"k\" is given twice"), std::string::npos) << e.message();
    Graph g;
    e = expect_error([&] { g.add("bad", daskr::map({{"x", 1}, {"x", 2}})); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_GRAPH);
    EXPECT_EQ(e.key(), "bad");
    EXPECT_NE(e.message().find("\"x\" is given twice"), std::string::npos) << e.message();
}

TEST(Maps, ObjectsInsideMapsAreDeletedExactlyOnce) {
    Counted::reset();
    {
        Graph g;
        g.add_task(
            "make",
            [](Call &) {
                Value obj = Value::object(std::make_unique<Counted>(5));
                Value again = obj.clone();
                return Value::map({{"a", std::move(obj)}, {"b", std::move(again)}});
            });
        g.add_task("use", [](Call &c) { return c.arg(0)["b"].object<Counted>().n; }, {daskr::ref("make")});
        EXPECT_EQ(g.get("use").as<int64_t>(), 5);
        EXPECT_EQ(Counted::made.load(), 1);
        EXPECT_EQ(Counted::destroyed.load(), 1); // released once nothing needed it
        // A map refused (a name twice) still deletes the objects it was given, once.
        expect_error([] {
            Value::map({{"x", Value::object(std::make_unique<Counted>(1))}, {"x", Value::object(std::make_unique<Counted>(2))}});
        });
        EXPECT_EQ(Counted::destroyed.load(), 3);
    }
    EXPECT_EQ(Counted::made.load(), 3);
    EXPECT_EQ(Counted::destroyed.load(), 3);
}

// ----- C++ objects as pointer values -----------------------------------------------------

TEST(Objects, PassedBetweenTasksAndDeletedExactlyOnceOnSuccess) {
    Counted::reset();
    {
        Graph g;
        g.add_task("make", [](Call &c) { return std::make_unique<Counted>(c.arg<int64_t>(0)); }, {20});
        g.add_task("use", [](Call &c) { return c.object<Counted>(0).n + 1; }, {daskr::ref("make")});
        EXPECT_EQ(g.get("use").as<int64_t>(), 21);
        // Not requested: released during the get.
        EXPECT_EQ(Counted::made.load(), 1);
        EXPECT_EQ(Counted::destroyed.load(), 1);

        // Requested: lives as long as the result does.
        {
            Value v = g.get({"make", "use"});
            EXPECT_EQ(v[0].object<Counted>().n, 20);
            EXPECT_EQ(v[0].tag(), std::optional<std::string_view>(daskr::type_tag<Counted>::name()));
            EXPECT_EQ(Counted::made.load(), 2);
            EXPECT_EQ(Counted::destroyed.load(), 1);
            Value keep = v[0].clone();
            v = Value();
            EXPECT_EQ(Counted::destroyed.load(), 1); // `keep` still refers to it
            EXPECT_EQ(keep.object<Counted>().n, 20);
        }
        EXPECT_EQ(Counted::destroyed.load(), 2);
    }
    EXPECT_EQ(Counted::made.load(), Counted::destroyed.load());
}

TEST(Objects, DeletedExactlyOnceOnFailure) {
    Counted::reset();
    Graph g;
    g.add_task("make", [](Call &) { return std::make_unique<Counted>(1); });
    g.add_task("boom", [](Call &c) -> int64_t {
        (void)c.object<Counted>(0);
        throw std::runtime_error("boom after reading the object");
    }, {daskr::ref("make")});
    g.add_task("after", inc_func(), {daskr::ref("boom")});
    for (auto options : {daskr::Options{}, sync_options()}) {
        Counted::reset();
        Error e = expect_error([&] { g.get({"make", "after"}, options); });
        EXPECT_EQ(e.kind(), DASKR_ERROR_TASK_FAILED);
        EXPECT_EQ(e.key(), std::optional<std::string>("boom"));
        EXPECT_EQ(Counted::made.load(), 1);
        EXPECT_EQ(Counted::destroyed.load(), 1); // even though "make" was requested
    }
}

TEST(Objects, DeletedExactlyOnceOnCancel) {
    Counted::reset();
    daskr::Cancel cancel;
    std::atomic<bool> after_ran{false};
    Graph g;
    g.add_task("make", [](Call &) { return std::make_unique<Counted>(1); });
    g.add_task("stop", [&cancel](Call &c) {
        cancel.trigger();
        return c.object<Counted>(0).n;
    }, {daskr::ref("make")});
    g.add_task("after", [&after_ran](Call &c) {
        after_ran = true;
        return c.arg<int64_t>(0);
    }, {daskr::ref("stop")});
    daskr::Options o = sync_options();
    o.cancel = &cancel;
    Error e = expect_error([&] { g.get({"make", "after"}, o); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_CANCELLED);
    EXPECT_FALSE(after_ran.load());
    EXPECT_EQ(Counted::made.load(), 1);
    EXPECT_EQ(Counted::destroyed.load(), 1);
}

TEST(Objects, TagIsChecked) {
    Graph g;
    g.add_task("make", [](Call &) { return std::make_unique<Other>(); });
    g.add_task("misuse", [](Call &c) { return c.object<Counted>(0).n; }, {daskr::ref("make")});
    g.add_task("not-a-pointer", [](Call &c) { return c.object<Counted>(0).n; }, {5});
    Error e = expect_error([&] { g.get("misuse"); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_TASK_FAILED);
    EXPECT_NE(e.message().find("expected an object tagged"), std::string::npos) << e.message();
    Error e2 = expect_error([&] { g.get("not-a-pointer"); });
    EXPECT_NE(e2.message().find("got int"), std::string::npos) << e2.message();
    Value other = g.get("make");
    EXPECT_EQ(expect_error([&] { other.object<Counted>(); }).kind(), DASKR_ERROR_TYPE_MISMATCH);
    EXPECT_EQ(other.object<Other>().x, 0);
}

} // namespace

DASKR_TYPE_TAG(Named, "test.Named");

namespace {

TEST(Objects, UserGivenTags) {
    Graph g;
    g.add_task("named", [](Call &) { return std::make_unique<Named>(Named{"hi"}); });
    g.add_value("explicit", Value::object(std::make_unique<Other>(Other{5}), "my-other"));
    Value v = g.get({"named", "explicit"});
    EXPECT_EQ(v[0].tag(), std::optional<std::string_view>("test.Named"));
    EXPECT_EQ(v[0].object<Named>().text, "hi");
    EXPECT_EQ(v[1].tag(), std::optional<std::string_view>("my-other"));
    EXPECT_EQ(v[1].object<Other>("my-other").x, 5);
    EXPECT_THROW(v[1].object<Other>(), Error); // the default tag differs
}

TEST(Objects, LiteralObjectsInTheGraphDieWithTheGraph) {
    Counted::reset();
    {
        Graph g;
        g.add_value("obj", std::make_unique<Counted>(3));
        g.add_task("read", [](Call &c) { return c.object<Counted>(0).n; }, {daskr::ref("obj")});
        EXPECT_EQ(g.get("read").as<int>(), 3);
        EXPECT_EQ(g.get("read").as<int>(), 3);
        EXPECT_EQ(Counted::destroyed.load(), 0);
    }
    EXPECT_EQ(Counted::made.load(), 1);
    EXPECT_EQ(Counted::destroyed.load(), 1);
}

// ----- errors both ways ------------------------------------------------------------------

TEST(Errors, TaskExceptionBecomesTheTaskFailure) {
    Graph g;
    g.add_task("std", [](Call &) -> int { throw std::invalid_argument("bad input 42"); });
    g.add_task("other", [](Call &) -> int { throw 42; });
    g.add_task("daskr", [](Call &) -> int { throw Error(DASKR_ERROR_TYPE_MISMATCH, "inner daskr error"); });
    g.add_task("down", inc_func(), {daskr::ref("std")});

    Error e = expect_error([&] { g.get("down"); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_TASK_FAILED);
    EXPECT_STREQ(e.kind_name(), "task_failed");
    EXPECT_EQ(e.key(), std::optional<std::string>("std"));
    EXPECT_NE(e.message().find("bad input 42"), std::string::npos) << e.message();
    EXPECT_NE(std::string(e.what()).find("bad input 42"), std::string::npos);

    Error e2 = expect_error([&] { g.get("other"); });
    EXPECT_EQ(e2.key(), std::optional<std::string>("other"));
    EXPECT_NE(e2.message().find("not a std::exception"), std::string::npos) << e2.message();

    Error e3 = expect_error([&] { g.get("daskr"); });
    EXPECT_NE(e3.message().find("inner daskr error"), std::string::npos) << e3.message();

    // Catchable as a std::exception too.
    EXPECT_THROW(g.get("std"), std::exception);
}

TEST(Errors, GetErrorsCarryKindKeyAndKeys) {
    Graph g;
    g.add_alias("a", "b");
    g.add_alias("b", "a");
    g.add_task("lost", inc_func(), {daskr::ref("nowhere")});
    g.add_value("fine", 1);

    Error missing = expect_error([&] { g.get({"fine", "nope"}); });
    EXPECT_EQ(missing.kind(), DASKR_ERROR_MISSING_KEY);
    EXPECT_EQ(missing.key(), std::optional<std::string>("nope"));

    Error cycle = expect_error([&] { g.get("a"); });
    EXPECT_EQ(cycle.kind(), DASKR_ERROR_CYCLE);
    std::set<std::string> on_cycle(cycle.keys().begin(), cycle.keys().end());
    EXPECT_EQ(on_cycle, (std::set<std::string>{"a", "b"}));

    Error dep = expect_error([&] { g.get("lost"); });
    EXPECT_EQ(dep.kind(), DASKR_ERROR_MISSING_DEPENDENCY);
    EXPECT_EQ(dep.key(), std::optional<std::string>("lost"));
    EXPECT_EQ(dep.keys(), (std::vector<std::string>{"nowhere"}));
    EXPECT_NE(dep.message().find("nowhere"), std::string::npos);

    // The graph still works after errors.
    EXPECT_EQ(g.get("fine").as<int>(), 1);
}

TEST(Errors, FailedBuildCallsThrow) {
    Graph g;
    g.add_value("x", 1);
    Error dup = expect_error([&] { g.add_value("x", 2); });
    EXPECT_EQ(dup.key(), std::optional<std::string>("x"));
    EXPECT_NE(dup.kind(), DASKR_ERROR_INTERNAL);
    EXPECT_THROW(g.add_value("", 1), Error);
    EXPECT_THROW(g.add_task("x", inc_func(), {1}), Error);
    EXPECT_THROW(g.add_alias("alias", std::string("bad\xff", 4)), Error);
    EXPECT_THROW(g.add_value(std::string("bad\xff", 4), 1), Error);
    EXPECT_THROW(Value::string(std::string("bad\xff", 4)), Error);
    EXPECT_THROW(g.key(daskr::Task{12345}), Error);
    EXPECT_THROW(Func(std::string("bad\xff", 4), [](Call &) {}), Error);
    EXPECT_EQ(g.size(), 1u);
    EXPECT_EQ(g.get("x").as<int>(), 1);
}

// ----- tuple keys ------------------------------------------------------------------------

TEST(Keys, TupleKeysUseDasksRepr) {
    EXPECT_EQ(daskr::key("x", 0, 1), "('x', 0, 1)");
    EXPECT_EQ(daskr::key("x"), "('x',)");
    EXPECT_EQ(daskr::key(std::string("load"), -3), "('load', -3)");
    EXPECT_EQ(daskr::key("it's", 2), "(\"it's\", 2)");
    EXPECT_EQ(daskr::key("both'\"", 2), "('both\\'\"', 2)");
    EXPECT_EQ(daskr::key("a\\b\n", uint64_t{18446744073709551615ull}), "('a\\\\b\\n', 18446744073709551615)");
    EXPECT_EQ(daskr::key(std::string_view("x"), true), "('x', True)");

    Graph g;
    for (int i = 0; i < 3; i++) g.add_value(daskr::key("x", i), i * 10);
    g.add_task(daskr::key("sum", 0), [](Call &c) {
        int64_t s = 0;
        for (auto x : c.arg<std::vector<int64_t>>(0)) s += x;
        return s;
    }, {daskr::list({daskr::ref(daskr::key("x", 0)), daskr::ref(daskr::key("x", 1)), daskr::ref(daskr::key("x", 2))})});
    EXPECT_EQ(g.get("('sum', 0)").as<int64_t>(), 30);
}

// ----- computations and requests ---------------------------------------------------------

TEST(Requests, NestedKeysGiveNestedResults) {
    Graph g;
    g.add_value("a", 1);
    g.add_value("b", "two");
    g.add_task("c", inc_func(), {daskr::ref("a")});
    Value r = g.get({"a", {"b", "c"}, {}});
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].as<int>(), 1);
    EXPECT_EQ(r[1][0].as<std::string>(), "two");
    EXPECT_EQ(r[1][1].as<int>(), 2);
    EXPECT_EQ(r[2].size(), 0u);
    EXPECT_EQ(r[2].kind(), DASKR_KIND_LIST);
    EXPECT_THROW(r[3], Error);
    EXPECT_THROW(r[0][0], Error);

    EXPECT_EQ(g.get(daskr::Keys::list()).size(), 0u);
    EXPECT_EQ(g.get({"c", "c"}).as<std::vector<int>>(), (std::vector<int>{2, 2}));
    EXPECT_EQ(g.get(std::vector<std::string>{"a", "c"}).as<std::vector<int>>(), (std::vector<int>{1, 2}));
    EXPECT_EQ(g.get({"a"}).as<std::vector<int>>(), (std::vector<int>{1}));
}

TEST(Requests, ListsInlineTasksAliasesAndHandles) {
    Graph g;
    auto add = Func("add", [](Call &c) { return c.arg<int64_t>(0) + c.kwarg<int64_t>("y", 0); });
    auto one = g.add_value("one", 1);
    g.add("pair", daskr::list({one, daskr::task(add, {one}, {{"y", 10}})})); // [1, add(1, y=10)]
    g.add_alias("alias", "pair");
    auto later = g.handle("later"); // referred to before it is defined
    g.add_task("use-later", add, {later}, {{"y", daskr::ref("one")}});
    g.add_value("later", 5);
    std::vector<daskr::Comp> many;
    for (int i = 0; i < 4; i++) many.push_back(daskr::lit(i));
    g.add("many", daskr::list(std::move(many)));

    EXPECT_EQ(g.get("alias").as<std::vector<int64_t>>(), (std::vector<int64_t>{1, 11}));
    EXPECT_EQ(g.get("use-later").as<int64_t>(), 6);
    EXPECT_EQ(g.get("many").as<std::vector<int>>(), (std::vector<int>{0, 1, 2, 3}));
}

TEST(Requests, AHandleFromAnotherGraphIsRefused) {
    Graph mine, theirs;
    auto own = mine.add_value("x", 1);
    auto foreign = theirs.add_value("elsewhere", 2); // the same index as "x" in `mine`
    EXPECT_NE(own, foreign);
    auto add = Func("add", [](Call &c) { return c.arg<int64_t>(0) + 1; });
    Error e = expect_error([&] { mine.add_task("t", add, {foreign}); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_ARGUMENT);
    ASSERT_TRUE(e.key());
    EXPECT_EQ(*e.key(), "t");
    e = expect_error([&] { mine.add("l", daskr::list({own, foreign})); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_ARGUMENT);
    EXPECT_THROW(mine.key(foreign), Error);
    EXPECT_EQ(theirs.key(foreign), "elsewhere");
    mine.add_task("t", add, {own});
    EXPECT_EQ(mine.get("t").as<int64_t>(), 2);
}

// ----- options ---------------------------------------------------------------------------

TEST(Options, SyncSchedulerRunsOnTheCallingThread) {
    Graph g;
    auto caller = std::this_thread::get_id();
    std::atomic<int> elsewhere{0};
    for (int i = 0; i < 20; i++)
        g.add_task("t" + std::to_string(i), [&, caller](Call &) {
            if (std::this_thread::get_id() != caller) elsewhere++;
            return 1;
        });
    std::vector<std::string> keys;
    for (int i = 0; i < 20; i++) keys.push_back("t" + std::to_string(i));
    daskr::Stats stats{};
    auto o = sync_options();
    o.stats = &stats;
    g.get(keys, o);
    EXPECT_EQ(elsewhere.load(), 0);
    EXPECT_EQ(stats.workers, 1u);
    EXPECT_EQ(stats.entries_run, 20u);
    EXPECT_EQ(stats.entries, 20u);
}

TEST(Options, ThreadsSchedulerWithWorkersAndStats) {
    Graph g;
    std::atomic<int> ran{0};
    std::vector<daskr::Comp> parts;
    for (int i = 0; i < 1000; i++) {
        std::string k = daskr::key("part", i);
        g.add_task(k, [&ran](Call &c) {
            ran++;
            return c.arg<int64_t>(0) * 2;
        }, {i});
        parts.push_back(daskr::ref(k));
    }
    g.add_task("total", [](Call &c) {
        int64_t s = 0;
        for (auto x : c.arg<std::vector<int64_t>>(0)) s += x;
        return s;
    }, {daskr::list(std::move(parts))});
    daskr::Stats stats{};
    daskr::Options o;
    o.workers = 4;
    o.stats = &stats;
    EXPECT_EQ(g.get("total", o).as<int64_t>(), 999 * 1000);
    EXPECT_EQ(ran.load(), 1000);
    EXPECT_EQ(stats.entries_run, 1001u);
    EXPECT_GE(stats.workers, 1u);
    EXPECT_LE(stats.workers, 4u);
}

TEST(Options, ProfileRecordsEachEntryAndWritesATrace) {
    Graph g;
    g.add_value("x", 1);
    for (int i = 0; i < 20; i++)
        g.add_task(daskr::key("t", i), [](Call &c) { return c.arg<int64_t>(0) + 1; }, {daskr::ref("x")});
    std::vector<daskr::Comp> all;
    for (int i = 0; i < 20; i++) all.push_back(daskr::ref(daskr::key("t", i)));
    g.add("all", daskr::list(std::move(all)));
    daskr::Profile profile;
    daskr::Options o;
    o.workers = 2;
    o.profile = &profile;
    g.get("all", o);
    auto tasks = profile.tasks();
    ASSERT_EQ(tasks.size(), 22u); // x, 20 tasks, the list
    uint64_t last = 0;
    for (const auto &t : tasks) {
        EXPECT_TRUE(t.ok);
        EXPECT_LT(t.worker, 2u);
        EXPECT_GE(t.end_ns, t.start_ns);
        EXPECT_GE(t.start_ns, last);
        last = t.start_ns;
        if (t.key == "x") {
            EXPECT_EQ(t.func, "literal");
        } else if (t.key == "all") {
            EXPECT_EQ(t.func, "list");
        }
    }
    std::string path = ::testing::TempDir() + "daskr-cpp-trace.json";
    profile.write_trace(path);
    FILE *f = std::fopen(path.c_str(), "r");
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(std::fgetc(f), '{');
    std::fclose(f);
    std::remove(path.c_str());
    EXPECT_THROW(profile.write_trace("/nonexistent-dir/trace.json"), daskr::Error);
}

TEST(Options, CallbacksSeeStartTasksAndFinish) {
    Graph g;
    g.add_value("x", 1);
    g.add_task("y", inc_func(), {daskr::ref("x")});
    g.add_task("z", inc_func(), {daskr::ref("y")});
    std::vector<std::string> events; // never concurrent: no lock needed
    daskr::Options o;
    o.callbacks.start = [&](size_t n) { events.push_back("start " + std::to_string(n)); };
    o.callbacks.pretask = [&](std::string_view k, uint32_t) { events.push_back("pre " + std::string(k)); };
    o.callbacks.posttask = [&](std::string_view k, bool ok, uint32_t) {
        events.push_back("post " + std::string(k) + (ok ? " ok" : " failed"));
    };
    o.callbacks.finish = [&](bool failed) { events.push_back(failed ? "finish failed" : "finish ok"); };
    EXPECT_EQ(g.get("z", o).as<int>(), 3);
    // start's count is the entries that will be computed (the literal "x" is not reported;
    // stats.entries counts it).
    EXPECT_EQ(events, (std::vector<std::string>{"start 2", "pre y", "post y ok", "pre z", "post z ok", "finish ok"}));

    g.add_task("bad", [](Call &) -> int { throw std::runtime_error("no"); });
    events.clear();
    EXPECT_THROW(g.get("bad", o), Error);
    EXPECT_EQ(events, (std::vector<std::string>{"start 1", "pre bad", "post bad failed", "finish failed"}));
}

TEST(Options, ThrowingCallbackIsRethrownAfterTheGet) {
    Counted::reset();
    Graph g;
    g.add_task("make", [](Call &) { return std::make_unique<Counted>(1); });
    std::atomic<int> finished{0};
    daskr::Options o;
    o.callbacks.pretask = [](std::string_view, uint32_t) { throw std::logic_error("progress bar broke"); };
    o.callbacks.finish = [&](bool) { finished++; };
    try {
        g.get("make", o);
        ADD_FAILURE() << "expected the callback's exception";
    } catch (const std::logic_error &e) {
        EXPECT_STREQ(e.what(), "progress bar broke");
    }
    EXPECT_EQ(finished.load(), 0); // callbacks stop after the first exception
    EXPECT_EQ(Counted::made.load(), 1);
    EXPECT_EQ(Counted::destroyed.load(), 1); // the result was freed, not leaked
}

TEST(Options, CancelFromAnotherThread) {
    Counted::reset();
    daskr::Cancel cancel;
    EXPECT_FALSE(cancel.is_triggered());
    std::mutex m;
    std::condition_variable cv;
    bool started = false, release = false;
    std::atomic<bool> after_ran{false};
    Graph g;
    g.add_task("obj", [](Call &) { return std::make_unique<Counted>(1); });
    g.add_task("slow", [&](Call &c) {
        std::unique_lock<std::mutex> lock(m);
        started = true;
        cv.notify_all();
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
        return c.object<Counted>(0).n;
    }, {daskr::ref("obj")});
    g.add_task("after", [&](Call &c) {
        after_ran = true;
        return c.arg<int64_t>(0);
    }, {daskr::ref("slow")});

    std::thread canceller([&] {
        std::unique_lock<std::mutex> lock(m);
        // (bounded, so a get that fails before "slow" starts cannot hang the test)
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return started; });
        cancel.trigger();
        release = true;
        cv.notify_all();
    });
    daskr::Options o;
    o.cancel = &cancel;
    Error e = expect_error([&] { g.get("after", o); });
    canceller.join();
    EXPECT_EQ(e.kind(), DASKR_ERROR_CANCELLED);
    EXPECT_FALSE(after_ran.load());
    EXPECT_TRUE(cancel.is_triggered());
    EXPECT_EQ(Counted::made.load(), Counted::destroyed.load());

    // Reset and reuse.
    cancel.reset();
    EXPECT_FALSE(cancel.is_triggered());
    release = true;
    EXPECT_EQ(g.get("after", o).as<int>(), 1);
    EXPECT_EQ(Counted::made.load(), Counted::destroyed.load());
}

TEST(Options, AlreadyTriggeredCancelRunsNothing) {
    daskr::Cancel cancel;
    cancel.trigger();
    std::atomic<int> ran{0};
    Graph g;
    g.add_task("t", [&ran](Call &) { return ++ran; });
    for (auto o : {daskr::Options{}, sync_options()}) {
        o.cancel = &cancel;
        EXPECT_EQ(expect_error([&] { g.get("t", o); }).kind(), DASKR_ERROR_CANCELLED);
    }
    EXPECT_EQ(ran.load(), 0);
}

TEST(Requests, DeepChainOfLambdaTasks) {
    const int n = 100000;
    Graph g;
    Func inc = inc_func();
    auto prev = g.add_value("c0", 0);
    for (int i = 1; i <= n; i++) prev = g.add_task("c" + std::to_string(i), inc, {prev});
    EXPECT_EQ(g.get("c" + std::to_string(n), sync_options()).as<int64_t>(), n);
    EXPECT_EQ(g.get("c" + std::to_string(n)).as<int64_t>(), n);
}

TEST(Options, ConcurrentGetsOnOneGraph) {
    Graph g;
    g.add_value("x", 1);
    for (int i = 0; i < 50; i++) g.add_task("y" + std::to_string(i), inc_func(), {daskr::ref("x")});
    std::vector<std::string> keys;
    for (int i = 0; i < 50; i++) keys.push_back("y" + std::to_string(i));
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++)
        threads.emplace_back([&] {
            for (int r = 0; r < 20; r++) {
                auto v = g.get(keys).as<std::vector<int>>();
                if (v == std::vector<int>(50, 2)) ok++;
            }
        });
    for (auto &t : threads) t.join();
    EXPECT_EQ(ok.load(), 80);
}

TEST(Options, ChangingAGraphDuringAGetThrowsGraphInUse) {
    Graph g;
    Error seen(DASKR_ERROR_INTERNAL, "not set");
    bool threw = false;
    g.add_task("t", [&](Call &) {
        try {
            g.add_value("new", 1);
        } catch (const Error &e) {
            seen = e;
            threw = true;
        }
        return 0;
    });
    g.get("t", sync_options());
    EXPECT_TRUE(threw);
    EXPECT_EQ(seen.kind(), DASKR_ERROR_GRAPH_IN_USE);
    EXPECT_FALSE(g.contains("new"));
}

TEST(Interop, CFunctionsAndValuesMix) {
    Graph g;
    auto cfn = Func::from_c("c-inc", [](daskr_call_t *call, void *) {
        int64_t x = 0;
        daskr_value_get_int(daskr_call_arg(call, 0), &x);
        daskr_call_return_int(call, x + 1);
    });
    g.add_value("x", Value(daskr_value_int(4)));
    g.add_task("y", cfn, {daskr::ref("x")});
    Value y = g.get("y");
    int64_t raw = 0;
    EXPECT_TRUE(daskr_value_get_int(y.raw(), &raw));
    EXPECT_EQ(raw, 5);
    daskr_value_t *released = y.release();
    daskr_value_free(released);
}


// ----- the processes scheduler -------------------------------------------------------------

daskr::Options processes(uint32_t workers) {
    daskr::Options o;
    o.scheduler = daskr::Scheduler::Processes;
    o.workers = workers;
    return o;
}

TEST(Processes, LambdasRunInWorkerProcessesWithTheSameResults) {
    Graph g;
    auto x = g.add_value("x", 20);
    g.add_task("y", [](Call &c) { return c.arg<int64_t>(0) + 1; }, {x});
    g.add_task("pid", [](Call &) { return static_cast<int64_t>(getpid()); });
    g.add_task("words", [](Call &c) {
        return std::vector<std::string>{"n=" + std::to_string(c.arg<int64_t>(0)), "ok"};
    }, {daskr::ref("y")});
    daskr::Stats stats{};
    auto o = processes(2);
    o.stats = &stats;
    Value r = g.get({"y", "words", "pid"}, o);
    EXPECT_EQ(r[0].as<int64_t>(), 21);
    EXPECT_EQ(r[1].as<std::vector<std::string>>(), (std::vector<std::string>{"n=21", "ok"}));
    EXPECT_NE(r[2].as<int64_t>(), static_cast<int64_t>(getpid())); // another process ran it
    EXPECT_EQ(stats.entries_run, 4u);
    EXPECT_EQ(stats.workers, 2u);
}

TEST(Processes, ACrashKillsTheWorkerNotTheProgram) {
    Graph g;
    g.add_task("boom", [](Call &) -> int { std::abort(); });
    g.add_task("fine", [](Call &) { return 7; });
    Error e = expect_error([&] { g.get("boom", processes(1)); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_WORKER_DIED);
    EXPECT_STREQ(e.kind_name(), "worker_died");
    ASSERT_TRUE(e.key());
    EXPECT_EQ(*e.key(), "boom");
    EXPECT_NE(e.message().find("SIGABRT"), std::string::npos) << e.message();
    EXPECT_EQ(g.get("fine", processes(1)).as<int>(), 7);
    // A C++ exception in a worker is the task's failure, as anywhere.
    g.add_task("throws", [](Call &) -> int { throw std::runtime_error("nope"); });
    e = expect_error([&] { g.get("throws", processes(1)); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_TASK_FAILED);
    EXPECT_NE(e.message().find("nope"), std::string::npos) << e.message();
}

TEST(Processes, RetriesAndTaskTimeout) {
    char marker[] = "/tmp/daskr-cpp-crash-once-XXXXXX";
    int fd = mkstemp(marker);
    ASSERT_GE(fd, 0);
    close(fd);
    unlink(marker);
    std::string path = marker;
    Graph g;
    g.add_task("flaky", [path](Call &) {
        if (access(path.c_str(), F_OK) != 0) {
            if (FILE *f = std::fopen(path.c_str(), "w")) std::fclose(f);
            std::abort(); // the first try crashes
        }
        return 5;
    });
    g.add_task("slow", [](Call &) {
        std::this_thread::sleep_for(std::chrono::seconds(20));
        return 1;
    });
    auto o = processes(1);
    o.retries = 1;
    EXPECT_EQ(g.get("flaky", o).as<int>(), 5);
    unlink(marker);

    o.retries = 0;
    o.task_timeout = std::chrono::milliseconds(200);
    auto started = std::chrono::steady_clock::now();
    Error e = expect_error([&] { g.get("slow", o); });
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
    EXPECT_EQ(e.kind(), DASKR_ERROR_WORKER_DIED);
    ASSERT_TRUE(e.key());
    EXPECT_EQ(*e.key(), "slow");
    EXPECT_NE(e.message().find("timeout of 200 ms"), std::string::npos) << e.message();
    daskr::shutdown_workers();
}

// A big graph's arrays are kept for reuse once it is gone; release_memory gives them back.
TEST(Memory, ReleaseMemory) {
    constexpr int n = 300000;
    {
        Graph g;
        Func inc = inc_func();
        for (int i = 0; i < n; i++) g.add_task(daskr::key("r", i), inc, {daskr::lit(i)});
    }
    EXPECT_GE(daskr::release_memory(), std::size_t(n) * 2 * 16); // at least the expressions
    EXPECT_EQ(daskr::release_memory(), 0u);
}

TEST(Processes, ObjectsCannotCrossProcesses) {
    Counted::reset();
    Graph g;
    g.add_task("obj", [](Call &) { return std::make_unique<Counted>(3); });
    Error e = expect_error([&] { g.get("obj", processes(1)); });
    ASSERT_TRUE(e.key());
    EXPECT_EQ(*e.key(), "obj");
    EXPECT_NE(e.message().find("threads scheduler"), std::string::npos) << e.message();
    EXPECT_EQ(Counted::made.load(), 0); // made (and freed) in the worker, not here
}

TEST(Processes, OptionFieldsReachTheLibrary) {
    Graph g;
    g.add_value("x", 1);
    daskr::Options o;
    o.task_timeout = std::chrono::duration<double>(-1);
    EXPECT_EQ(expect_error([&] { g.get("x", o); }).kind(), DASKR_ERROR_INVALID_ARGUMENT);
    // A timeout under threads (the default) would be ignored: refused. Retries are honoured
    // by every scheduler (a failing task runs again).
    o = daskr::Options{};
    o.task_timeout = std::chrono::seconds(5);
    Error e = expect_error([&] { g.get("x", o); });
    EXPECT_EQ(e.kind(), DASKR_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(e.message().find("task_timeout"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("threads"), std::string::npos) << e.message();
    o = daskr::Options{};
    o.retries = 1;
    EXPECT_NO_THROW(g.get("x", o));
    o = daskr::Options{};
    o.scheduler = daskr::Scheduler::Distributed;
    o.address = "tcp://127.0.0.1:1"; // nothing listens there
    EXPECT_THROW(g.get("x", o), Error);
}

} // namespace

// ---- result cache ----

TEST(Cache, RerunReadsWhatDidNotChangeAndFreesEverything) {
    char tmpl[] = "/tmp/daskr-cpp-cache-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::atomic<int> calls{0};
    auto destroyed = std::make_shared<std::atomic<int>>(0);
    struct Guard {
        std::shared_ptr<std::atomic<int>> n;
        ~Guard() { (*n)++; }
    };
    {
        daskr::Cache cache(tmpl);
        auto guard = std::shared_ptr<Guard>(new Guard{destroyed});
        auto twice = daskr::Func::versioned("twice", "1", [&calls, guard](Call &c) {
            calls++;
            return c.arg<int64_t>(0) * 2;
        });
        Graph g;
        auto a = g.add_task("a", twice, {21});
        g.add_task("b", twice, {a});
        daskr::Stats stats{};
        daskr::Options o;
        o.cache = &cache;
        o.stats = &stats;
        EXPECT_EQ(g.get("b", o).as<int64_t>(), 84);
        EXPECT_EQ(stats.cache_misses, 2u);
        EXPECT_GT(stats.cache_bytes_written, 0u);
        EXPECT_EQ(g.get("b", o).as<int64_t>(), 84);
        EXPECT_EQ(calls.load(), 2);
        EXPECT_EQ(stats.entries_run, 0u);
        EXPECT_EQ(stats.cache_hits, 1u);
        EXPECT_EQ(stats.cache_skipped, 1u);
        EXPECT_EQ(cache.usage().entries, 2u);
        cache.clear();
        EXPECT_EQ(cache.usage().entries, 0u);
        // A plain Func is never cached.
        Graph h;
        h.add_task("p", [&calls](Call &) { return ++calls; });
        h.get("p", o);
        h.get("p", o);
        EXPECT_EQ(calls.load(), 4);
        EXPECT_EQ(cache.usage().entries, 0u);
        guard.reset();
    }
    EXPECT_EQ(destroyed->load(), 1);
    EXPECT_THROW(daskr::Cache(""), daskr::Error);
    std::string rm = std::string("rm -rf ") + tmpl;
    EXPECT_EQ(std::system(rm.c_str()), 0);
}
