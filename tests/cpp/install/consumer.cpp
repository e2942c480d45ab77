// A C++ program built against an installed daskr: 'y' = inc('x'), 'x' = 41.
#include <cstdio>

#include <daskr.hpp>

int main() {
    daskr::Graph g;
    auto x = g.add_value("x", 41);
    g.add_task("y", daskr::Func("inc", [](daskr::Call &c) { return c.arg<int64_t>(0) + 1; }), {x});
    auto y = g.get("y").as<int64_t>();
    std::printf("C++ consumer: y = %lld (daskr %s)\n", static_cast<long long>(y), daskr_version());
    return y == 42 ? 0 : 1;
}
