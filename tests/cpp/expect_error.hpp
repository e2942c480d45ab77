// What the C++ test files share: catching the daskr::Error a call is expected to throw.
#pragma once

#include <gtest/gtest.h>

#include "daskr.hpp"

namespace daskr_test {

/// Calls `f` and returns the daskr::Error it throws (fails the test if it throws nothing).
template <class F> daskr::Error expect_error(F &&f) {
    try {
        f();
    } catch (const daskr::Error &e) {
        return e;
    }
    ADD_FAILURE() << "expected a daskr::Error";
    return daskr::Error(DASKR_ERROR_INTERNAL, "no error was thrown");
}

} // namespace daskr_test
