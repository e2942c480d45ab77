# Entry points a newcomer needs (see README.md):
#   make pipeline   build the daskr command and the example plugin, and run the seed's
#                   load/clean/analyze/store pipeline: daskr run examples/pipeline.json
#   make pipeline-c the same pipeline as a C program linked with libdaskr
#   make test       every test suite: Rust (engine, header, C programs), C++, Go, and the
#                   distributed scheduler on a local Dask cluster (make test-distributed)
#   make bench      every system (daskr via C/C++/Go, oneTBB, Taskflow, Dask) on the benchmark
#                   shapes, cold and warm; make bench-quick: the small CI version
#                   (bench/compare.py, README; Taskflow only where DASKR_TASKFLOW_DIR or
#                   ../shared/anchors/taskflow holds its headers)
# Everything builds into target/.

CC ?= cc
CFLAGS ?= -std=c11 -O2 -Wall -Wextra -Werror
RELEASE_LIB := target/release/libdaskr.so
DASKR := target/release/daskr
EXAMPLE_PLUGIN := target/plugins/libexample.so

.PHONY: all lib bin plugins pipeline pipeline-c test test-rust test-c-memcheck clean

all: lib

lib:
	cargo build --release --lib

target/examples/pipeline: examples/pipeline.c examples/pipeline_tasks.h include/daskr.h lib
	@mkdir -p target/examples
	$(CC) $(CFLAGS) -Iinclude $< -Ltarget/release -ldaskr -Wl,-rpath,$(CURDIR)/target/release -o $@

pipeline-c: target/examples/pipeline
	./target/examples/pipeline

# The daskr command; it exports the daskr_* functions that plugins call.
bin:
	cargo build --release --bin daskr

# Plugins are built without linking libdaskr: the program that loads them provides daskr_*.
$(EXAMPLE_PLUGIN): examples/plugins/example.c examples/pipeline_tasks.h include/daskr.h
	@mkdir -p target/plugins
	$(CC) $(CFLAGS) -shared -fPIC -Iinclude -Iexamples $< -o $@

plugins: $(EXAMPLE_PLUGIN)

pipeline: bin plugins
	$(DASKR) run examples/pipeline.json

test: test-rust test-cpp test-go test-distributed

# Rust unit and integration tests; tests/c_abi.rs compiles and runs the C programs in tests/c.
# Then the unit tests as a Rust program using the crate without its allocator sees them
# (default-features = false: the huge-page allocator is not the global one).
test-rust:
	cargo test
	cargo test --lib --no-default-features

# The C programs again under valgrind: memory errors and definite leaks fail.
test-c-memcheck:
	DASKR_C_CHECK=valgrind cargo test --test c_abi

clean:
	cargo clean

# ---- Reliability (RELIABILITY.md) -------------------------------------------------------
.PHONY: fuzz stress test-asan test-tsan test-loom test-scale

# loom model checks (src/ffi/loom_tests.rs) of the lock-free primitives and of the threads
# scheduler running small gets (ready queues, first failure, cancellation, memory budget), in
# a target dir of their own (the whole crate builds with --cfg loom there). About 12 s after
# the build; each model prints how many interleavings it explored with -- --nocapture.
test-loom:
	RUSTFLAGS="--cfg loom" cargo test --release --lib --target-dir target/loom loom_tests -- --test-threads=1

# tests/stress.rs and tests/c/random_dags.c at full scale: 10,000 random DAGs each.
stress:
	DASKR_STRESS_GRAPHS=10000 DASKR_STRESS_KILL_GRAPHS=1000 cargo test --release --test stress -- --nocapture
	DASKR_TEST_SCALE=1 DASKR_C_ONLY=random_dags cargo test --release --test c_abi -- --nocapture

# 10,000,000 entries three ways, each printing bytes per entry (RELIABILITY.md): built through
# the Rust API (tests/scale.rs), through the C API (tests/c/scale.c), and read from a graph file
# by `daskr run` (tests/cli.rs). About 2 GB of memory and a few minutes; not part of `make test`.
test-scale:
	cargo test --release --test scale --test cli -- --ignored --nocapture ten_million
	DASKR_SCALE_TASKS=10000000 DASKR_C_ONLY=scale cargo test --release --test c_abi -- --nocapture

# The fuzz targets of tests/fuzz (graph files, the value decoder, partition messages, the
# worker protocol) and tests/c/fuzz_api.c (C API call sequences), longer than `cargo test`
# runs them and from a fresh seed each time (printed: DASKR_FUZZ_SEED=<n> reruns one).
FUZZ_ITERS ?= 20000
fuzz:
	DASKR_FUZZ_ITERS=$(FUZZ_ITERS) DASKR_FUZZ_SEED=$${DASKR_FUZZ_SEED:-random} \
		cargo test --test fuzz -- --nocapture
	DASKR_FUZZ_ITERS=$(FUZZ_ITERS) DASKR_FUZZ_SEED=$${DASKR_FUZZ_SEED:-$$(date +%s)} DASKR_C_ONLY=fuzz_api \
		cargo test --test c_abi -- --nocapture

# The C test programs, the C examples and the C++ GoogleTest suite under AddressSanitizer +
# UndefinedBehaviorSanitizer, with libdaskr itself built with -Zsanitizer=address (nightly).
test-asan:
	tests/sanitizers/run.sh asan

# The C stress programs under ThreadSanitizer, libdaskr and std built with -Zsanitizer=thread
# (nightly with the rust-src component, for -Zbuild-std).
test-tsan:
	tests/sanitizers/run.sh tsan

# ---- C++ wrapper, Go package, install ---------------------------------------------------
CXX ?= c++
CXXFLAGS_EXAMPLE := -std=c++17 -O2 -Wall -Wextra -Werror
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
VALGRIND := valgrind --quiet --child-silent-after-fork=yes --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect

.PHONY: test-cpp test-cpp-memcheck test-go pipeline-cpp pipeline-go install test-install

# The C++ wrapper's GoogleTest suite (tests/cpp), built by CMake in target/cpp, run by ctest.
test-cpp: lib
	cmake -S tests/cpp -B target/cpp -DCMAKE_BUILD_TYPE=Debug
	cmake --build target/cpp --parallel
	cd target/cpp && ctest --output-on-failure

# The same GoogleTest binary under valgrind: memory errors and definite leaks fail.
test-cpp-memcheck: test-cpp
	$(VALGRIND) target/cpp/daskr_cpp_tests --gtest_brief=1

# The Go package finds libdaskr with pkg-config (`#cgo pkg-config: daskr`); in the checkout,
# the daskr-uninstalled.pc that build.rs writes next to the library (this include/, this
# target/release/). Installed, <prefix>/lib/pkgconfig/daskr.pc does the same (test-install).
GO_IN_TREE := PKG_CONFIG_PATH=$(CURDIR)/target/release/pkgconfig$${PKG_CONFIG_PATH:+:$$PKG_CONFIG_PATH}

# The Go package (its Example functions included: go test checks their output), plain and
# with the race detector (the pipeline test compares with the C one).
test-go: lib bin plugins target/examples/pipeline
	cd bindings/go && $(GO_IN_TREE) $(GO) vet ./... && $(GO_IN_TREE) $(GO) test -count=1 ./... \
		&& $(GO_IN_TREE) $(GO) test -count=1 -race ./...

# go vet and staticcheck (a pinned version, installed into target/tools from the Go module
# proxy) over the Go package, its examples and the Go benchmark runner, checks not skipped.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CURDIR)/target/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck
.PHONY: lint-go
$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint-go: lib $(STATICCHECK)
	cd bindings/go && $(GO_IN_TREE) $(GO) vet ./... && $(GO_IN_TREE) $(STATICCHECK) -checks all ./...
	cd bench/go && $(GO_IN_TREE) $(GO) vet ./... && $(GO_IN_TREE) $(STATICCHECK) -checks all ./...

target/examples/pipeline-cpp: examples/pipeline.cpp include/daskr.hpp include/daskr.h lib
	@mkdir -p target/examples
	$(CXX) $(CXXFLAGS_EXAMPLE) -Iinclude $< -Ltarget/release -ldaskr -Wl,-rpath,$(CURDIR)/target/release -o $@

pipeline-cpp: target/examples/pipeline-cpp
	./target/examples/pipeline-cpp

pipeline-go: lib
	cd bindings/go && $(GO_IN_TREE) $(GO) run ./examples/pipeline

# The shared library's names (docs/install.md): the SONAME carries the C ABI version
# (DASKR_ABI_VERSION, which changes exactly when the C ABI breaks), the real file adds the
# release: libdaskr.so.2.0.1.0 <- libdaskr.so.2 (SONAME) <- libdaskr.so (for -ldaskr).
ABI := $(shell sed -n 's/^pub const DASKR_ABI_VERSION: u32 = \([0-9]*\);$$/\1/p' src/abi.rs)
SONAME := libdaskr.so.$(ABI)
REALNAME := $(SONAME).$(VERSION)
LIBDIR := $(DESTDIR)$(PREFIX)/lib
# Every file install puts in the prefix (uninstall removes exactly these).
INSTALLED := lib/$(REALNAME) lib/$(SONAME) lib/libdaskr.so lib/libdaskr.a bin/daskr \
	include/daskr.h include/daskr.hpp lib/cmake/daskr/daskrConfig.cmake \
	lib/cmake/daskr/daskrConfigVersion.cmake lib/pkgconfig/daskr.pc

.PHONY: uninstall

# Installs the library (real file, SONAME and dev links; static library), headers, the daskr
# command (the processes scheduler's workers: found in <prefix>/bin from <prefix>/lib), CMake
# package (daskr::daskr) and pkg-config file under $(DESTDIR)$(PREFIX):
# make install PREFIX=$$HOME/.local
install: lib bin
	install -d $(LIBDIR)/cmake/daskr $(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 755 target/release/libdaskr.so $(LIBDIR)/$(REALNAME)
	ln -sfn $(REALNAME) $(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(LIBDIR)/libdaskr.so
	install -m 644 target/release/libdaskr.a $(LIBDIR)/
	install -m 755 target/release/daskr $(DESTDIR)$(PREFIX)/bin/
	install -m 644 include/daskr.h include/daskr.hpp $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@SONAME@|$(SONAME)|g' -e 's|@REALNAME@|$(REALNAME)|g' \
		cmake/daskrConfig.cmake.in > $(LIBDIR)/cmake/daskr/daskrConfig.cmake
	sed 's|@VERSION@|$(VERSION)|g' cmake/daskrConfigVersion.cmake.in > $(LIBDIR)/cmake/daskr/daskrConfigVersion.cmake
	sed -e 's|@PREFIX@|$(abspath $(PREFIX))|g' -e 's|@VERSION@|$(VERSION)|g' daskr.pc.in > $(LIBDIR)/pkgconfig/daskr.pc

# Removes what install put there, and the folders install made if that left them empty.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALLED))
	-rmdir $(LIBDIR)/cmake/daskr $(LIBDIR)/cmake $(LIBDIR)/pkgconfig 2>/dev/null

# Installs into a temporary prefix and builds, against it only, a C and a C++ consumer
# (tests/cpp/install) both ways, CMake find_package(daskr) and pkg-config, and a Go consumer
# (tests/cpp/install/go: the Go package, whose `#cgo pkg-config: daskr` finds the prefix; built
# with a Go build cache of its own: the cache does not notice pkg-config answering otherwise,
# golang/go#24544, and would hand the checkout's builds the prefix's flags, or this the checkout's) that
# also runs the example plugin under the processes scheduler, whose workers must be the
# installed daskr command. Each must load the installed library by its SONAME; then
# uninstall must leave the prefix without a file.
test-install: lib bin
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	prefix=$$tmp/prefix; \
	$(MAKE) --no-print-directory install PREFIX=$$prefix; \
	test "$$(readlink $$prefix/lib/$(SONAME))" = $(REALNAME); \
	test "$$(readlink $$prefix/lib/libdaskr.so)" = $(SONAME); \
	for f in $$prefix/lib/$(REALNAME) $$prefix/bin/daskr; do \
	  other=$$(nm -D --defined-only --format=posix $$f | cut -d' ' -f1 | grep -v '^daskr_' || true); \
	  test -z "$$other" || { echo "$$f exports more than daskr_*: $$other" | head -c 2000; exit 1; }; \
	done; \
	echo "== CMake: find_package(daskr)"; \
	cmake -S tests/cpp/install -B $$tmp/cmake -DCMAKE_PREFIX_PATH=$$prefix; \
	cmake --build $$tmp/cmake; \
	echo "== pkg-config --cflags --libs daskr"; \
	flags=$$(PKG_CONFIG_PATH=$$prefix/lib/pkgconfig pkg-config --cflags --libs daskr); echo "$$flags"; \
	$(CC) -std=c11 -Wall -Werror tests/cpp/install/consumer.c $$flags -o $$tmp/consumer_c_pc; \
	$(CXX) -std=c++17 -Wall -Werror tests/cpp/install/consumer.cpp $$flags -o $$tmp/consumer_cpp_pc; \
	echo "== Go: #cgo pkg-config: daskr, from <prefix>/lib/pkgconfig only"; \
	(cd tests/cpp/install/go && PKG_CONFIG_PATH=$$prefix/lib/pkgconfig GOCACHE=$$tmp/gocache \
	  $(GO) build -o $$tmp/consumer_go .); \
	$(CC) -std=c11 -shared -fPIC -I$$prefix/include -Iexamples examples/plugins/example.c -o $$tmp/libexample.so; \
	for exe in $$tmp/cmake/consumer_c $$tmp/cmake/consumer_cpp $$tmp/consumer_c_pc $$tmp/consumer_cpp_pc $$tmp/consumer_go; do \
	  readelf -d $$exe | grep -q "NEEDED.*\[$(SONAME)\]" || { echo "$$exe does not ask for $(SONAME)"; readelf -d $$exe; exit 1; }; \
	  ldd $$exe | grep -q "$(SONAME) => $$prefix/lib/$(SONAME)" || { echo "$$exe does not use $$prefix/lib/$(SONAME)"; ldd $$exe; exit 1; }; \
	done; \
	for exe in $$tmp/cmake/consumer_c $$tmp/cmake/consumer_cpp $$tmp/consumer_c_pc $$tmp/consumer_cpp_pc; do $$exe; done; \
	env -u DASKR_WORKER $$tmp/consumer_go $$tmp/libexample.so; \
	echo "== without <prefix>/bin/daskr the processes scheduler has no worker, and says where it looked"; \
	mv $$prefix/bin/daskr $$tmp/daskr.moved; \
	if env -u DASKR_WORKER $$tmp/consumer_go $$tmp/libexample.so 2>$$tmp/err; then echo "ran without a daskr command"; exit 1; fi; \
	grep -F "$$prefix/bin/daskr" $$tmp/err || { cat $$tmp/err; exit 1; }; \
	mv $$tmp/daskr.moved $$prefix/bin/daskr; \
	$(MAKE) --no-print-directory uninstall PREFIX=$$prefix; \
	left=$$(find $$prefix ! -type d); \
	test -z "$$left" || { echo "uninstall left: $$left"; exit 1; }; \
	echo "test-install: OK"

# ---- Benchmarks: bench/compare.py builds the runners, runs every system on the same shapes,
# writes target/bench/compare.json and prints the ratios (docs/performance.md). Taskflow's
# headers are not in the repository: DASKR_TASKFLOW_DIR (from the environment or
# `make bench DASKR_TASKFLOW_DIR=...`) says where they are, else ../shared/anchors/taskflow
# next to the checkout; without them the Taskflow row is skipped with a note.
.PHONY: bench bench-quick

bench:
	GO=$(GO) python3 bench/compare.py

bench-quick: bench-cache-quick
	GO=$(GO) python3 bench/compare.py --quick

# The result cache's cost per task (bench/daskr_cache.c): no cache, misses, a rerun, reads, on
# N cheap tasks and a sink (1,000,000; --quick 20,000).
.PHONY: bench-cache bench-cache-quick
target/bench/daskr_cache: bench/daskr_cache.c include/daskr.h lib
	@mkdir -p target/bench
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -Iinclude $< -Ltarget/release -ldaskr -Wl,-rpath,$(CURDIR)/target/release -o $@

bench-cache: target/bench/daskr_cache
	target/bench/daskr_cache

bench-cache-quick: target/bench/daskr_cache
	target/bench/daskr_cache --quick

# ---- The distributed scheduler: a Python venv with Dask's distributed (PyPI), pytest and the
# daskr_dask package (bindings/python, editable), shared with the benchmarks; the tests start a
# Dask scheduler and two workers on 127.0.0.1 and stop them by PID (tests/distributed).
.PHONY: venv test-distributed
PYTHON ?= python3
VENV := target/bench/venv
VENV_PY := $(VENV)/bin/python
DASK_VERSION ?= 2026.8.0
PYTEST_VERSION ?= 9.2.0
VENV_STAMP := $(VENV)/.daskr-dask-$(DASK_VERSION)-pytest-$(PYTEST_VERSION)

$(VENV_STAMP): bindings/python/pyproject.toml
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --disable-pip-version-check "dask==$(DASK_VERSION)" \
		"distributed==$(DASK_VERSION)" "pytest==$(PYTEST_VERSION)"
	$(VENV_PY) -m pip install -q --disable-pip-version-check -e bindings/python
	@touch $@

venv: $(VENV_STAMP)

test-distributed: lib bin plugins venv
	$(VENV_PY) -m pytest -q tests/distributed
