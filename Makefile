# Entry points a newcomer needs (see README.md):
#   make pipeline   build libdaskr and run the seed's load/clean/analyze/store pipeline (C)
#   make test       every test suite: Rust (engine, header, C programs), C++, Go
# Everything builds into target/.

CC ?= cc
CFLAGS ?= -std=c11 -O2 -Wall -Wextra -Werror
RELEASE_LIB := target/release/libdaskr.so

.PHONY: all lib pipeline test test-rust test-c-memcheck clean

all: lib

lib:
	cargo build --release --lib

target/examples/pipeline: examples/pipeline.c include/daskr.h lib
	@mkdir -p target/examples
	$(CC) $(CFLAGS) -Iinclude $< -Ltarget/release -ldaskr -Wl,-rpath,$(CURDIR)/target/release -o $@

pipeline: target/examples/pipeline
	./target/examples/pipeline

test: test-rust

# Rust unit and integration tests; tests/c_abi.rs compiles and runs the C programs in tests/c.
test-rust:
	cargo test

# The C programs again under valgrind: memory errors and definite leaks fail.
test-c-memcheck:
	DASKR_C_CHECK=valgrind cargo test --test c_abi

clean:
	cargo clean
