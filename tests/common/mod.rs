//! What several integration tests share: the repository root and compiling C with the
//! system compiler (found by the `cc` crate) — test programs and plugins; and the engine
//! tests' task functions and options.
#![allow(dead_code)] // each test uses a part

use std::path::{Path, PathBuf};
use std::process::Command;

use daskr::{Comp, Func, Graph, Options, Scheduler, Value};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/<sub>`, created: where a test keeps what it builds and writes (the test
/// binary runs from `target/<profile>/deps`).
pub fn target_dir(sub: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The C compiler with the flags every test build uses (C11, all warnings as errors, the
/// repository's include/ and examples/ — the example plugin includes pipeline_tasks.h).
pub fn c_compiler() -> Command {
    let target = env!("DASKR_TARGET");
    let mut cmd = cc::Build::new()
        .cargo_metadata(false)
        .target(target)
        .host(target)
        .opt_level(0)
        .debug(true)
        .get_compiler()
        .to_command();
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-I{}", root().join("include").display()))
        .arg(format!("-I{}", root().join("examples").display()));
    cmd
}

/// Compiles the C file `source` into the plugin `lib`, without linking libdaskr (the host
/// provides the daskr_* functions). Writes through a temporary name so a concurrent test never
/// loads a half-written library.
pub fn build_plugin(source: &Path, lib: &Path) -> PathBuf {
    let tmp = lib.with_extension(format!("so.{}.tmp", std::process::id()));
    let status = c_compiler()
        .args(["-shared", "-fPIC"])
        .arg(source)
        .arg("-o")
        .arg(&tmp)
        .status()
        .expect("the C compiler runs");
    assert!(status.success(), "compiling {} failed", source.display());
    std::fs::rename(&tmp, lib).unwrap();
    lib.to_path_buf()
}

/// `sum(list)`: the sum of a list of ints.
pub fn sum_list() -> Func {
    Func::new("sum", |call| {
        let items = call.arg(0).and_then(Value::as_list).expect("a list");
        call.ret(Value::Int(items.iter().map(|v| v.as_int().unwrap()).sum()));
    })
}

/// Options for `s` that count the results held (stats.peak_held).
pub fn opts(s: Scheduler) -> Options<'static> {
    Options {
        scheduler: s,
        measure_memory: true,
        ..Options::default()
    }
}

/// A chain `c-0` = 0, `c-i` = f(c-(i-1), 1) for i in 1..=n, linked by handle: with an adding
/// `f`, `c-n` is n.
pub fn counting_chain(f: &Func, n: usize) -> Graph {
    let mut g = Graph::new();
    let mut prev = g.add_value("c-0", Value::Int(0)).unwrap();
    for i in 1..=n {
        prev = g
            .add_task(
                &format!("c-{i}"),
                f,
                vec![Comp::id(prev), Comp::value(Value::Int(1))],
                vec![],
            )
            .unwrap();
    }
    g
}
