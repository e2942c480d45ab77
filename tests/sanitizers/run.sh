#!/usr/bin/env bash
# make test-asan / make test-tsan: the C test programs (tests/c), the C examples and the C++
# GoogleTest suite (tests/cpp) against a libdaskr that is itself instrumented.
#
#   asan: libdaskr built by nightly rustc with -Zsanitizer=address; the C and C++ code with
#         gcc -fsanitize=address,undefined (UBSan: C and C++ only — Rust has no UBSan; its
#         side is the debug build's overflow checks and debug assertions). Leaks are checked
#         by LeakSanitizer. Everything builds into target/asan.
#   tsan: libdaskr built with -Zsanitizer=thread and -Zbuild-std (std instrumented too, or
#         TSan reports std's own synchronisation as races; needs the nightly rust-src
#         component), the C stress programs with -fsanitize=thread. Into target/tsan.
#
# Gaps, by design of the tools: blocks of 4 MiB and more come from daskr's own mmap pool
# (src/alloc.rs), which ASan does not see into; a plain -Zsanitizer build (no -Zbuild-std)
# leaves Rust's std uninstrumented; workers started by exec (`daskr worker`) are not
# instrumented (the forked ones are: they are this process).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-asan}
triple=$(rustc -vV | sed -n 's/^host: //p')
td=target/$mode
lib=$td/$triple/debug
cc=${CC:-gcc}
case "$mode" in
  asan)
    rustflags="-Zsanitizer=address -Cforce-frame-pointers=yes"
    build_std=()
    cflags=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    # LeakSanitizer on; UBSan stops at the first report with a stack.
    export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    programs=(tests/c/*.c)
    ;;
  tsan)
    rustflags="-Zsanitizer=thread -Cforce-frame-pointers=yes"
    build_std=(-Zbuild-std)
    cflags=(-fsanitize=thread -fno-omit-frame-pointer)
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitizers/tsan.supp"
    # The programs that hammer the threads scheduler: random DAGs, concurrent gets,
    # callbacks and cancellation from other threads.
    programs=(tests/c/random_dags.c tests/c/get.c tests/c/callbacks_cancel.c tests/c/memory.c tests/c/fuzz_api.c)
    ;;
  *) echo "usage: $0 asan|tsan" >&2; exit 2 ;;
esac

echo "== libdaskr with -Zsanitizer=$mode (nightly) into $lib"
# The library as it ships (the huge-page allocator on: the tests check daskr_memory_release
# gives blocks back), without the command's dependencies. (ASan cannot see inside the blocks
# that allocator keeps: RELIABILITY.md, gaps.)
RUSTFLAGS="$rustflags" cargo +nightly build "${build_std[@]}" --lib --no-default-features --features huge-page-alloc --target "$triple" --target-dir "$td"

out=$td/c-tests
mkdir -p "$out"
failed=()
run() { # name, command...
  local name=$1; shift
  if ! "$@" >"$out/$name.log" 2>&1; then
    failed+=("$name")
    echo "FAILED: $name (log: $out/$name.log)"; tail -40 "$out/$name.log"
  else
    echo "ok: $name"
  fi
}
for src in "${programs[@]}" examples/pipeline.c; do
  name=$(basename "$src" .c)
  # processes.c crashes worker processes on purpose (a NULL store, abort()): the sanitizers
  # must let those crash as they would unsanitized, for the test to see the signal.
  extra=()
  if [ "$name" = processes ] && [ "$mode" = asan ]; then
    extra=(-fno-sanitize=null)
  fi
  if [ "$mode" = tsan ]; then
    # gcc's own libtsan is older than the instrumentation rustc emits (no __tsan_memmove):
    # compile with gcc's instrumentation, link nightly rustc's TSan runtime instead (the
    # same compiler-rt interface), whole, into the executable, exported for libdaskr.
    rt=$(rustc +nightly --print sysroot)/lib/rustlib/$triple/lib/librustc-nightly_rt.tsan.a
    "$cc" -std=c11 -Wall -Wextra -Werror -g -O0 -pthread "${cflags[@]}" -Iinclude -Iexamples -c "$src" -o "$out/$name.o"
    "$cc" -pthread "$out/$name.o" -o "$out/$name" -Wl,--whole-archive "$rt" -Wl,--no-whole-archive -rdynamic \
      -L"$lib" -Wl,-rpath,"$PWD/$lib" -ldaskr -ldl -lm -lrt -lstdc++
  else
    "$cc" -std=c11 -Wall -Wextra -Werror -g -O0 -pthread "${cflags[@]}" "${extra[@]}" -Iinclude -Iexamples "$src" \
      -L"$lib" -Wl,-rpath,"$PWD/$lib" -ldaskr -o "$out/$name"
  fi
  opts=()
  if [ "$name" = processes ]; then
    opts=(ASAN_OPTIONS="$ASAN_OPTIONS:handle_segv=0:handle_abort=0:handle_sigbus=0")
  fi
  # DASKR_C_CHECK: the programs run their smaller workload, as under valgrind.
  run "$name" env "${opts[@]}" DASKR_C_CHECK="$mode" "$out/$name"
done

if [ "$mode" = asan ]; then
  echo "== C++ GoogleTest suite and the C/C++ pipeline examples"
  flags="${cflags[*]}"
  cmake -S tests/cpp -B "$td/cpp" -DCMAKE_BUILD_TYPE=Debug -DDASKR_LIBRARY="$PWD/$lib/libdaskr.so" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_MODULE_LINKER_FLAGS="$flags" >"$out/cmake.log" 2>&1 || { cat "$out/cmake.log"; exit 1; }
  cmake --build "$td/cpp" --parallel >>"$out/cmake.log" 2>&1 || { tail -40 "$out/cmake.log"; exit 1; }
  run cpp-tests "$td/cpp/daskr_cpp_tests" --gtest_brief=1
  run pipeline-cpp sh -c "cd $td/cpp && ctest --output-on-failure -R pipeline"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "test-$mode: failed: ${failed[*]}" >&2
  exit 1
fi
echo "test-$mode: OK"
