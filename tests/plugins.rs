//! Plugins through the engine's Rust API: opening, declared tasks, running them under every
//! scheduler, keeping the library loaded, and each way opening or using one can fail.
//!
//! Plugins are compiled here with the system C compiler (found by the `cc` crate) and loaded
//! into this test process, which exports its daskr_* functions for them (build.rs links tests
//! with the dynamic list daskr.dynlist; the include! below keeps every C ABI function in the
//! binary).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use daskr::{Comp, ErrorKind, Graph, Options, Plugin, Scheduler, Value};

include!(concat!(env!("OUT_DIR"), "/c_abi_symbols.rs"));

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>/test-plugins/plugins (one folder per test binary).
fn out_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("test-plugins/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles C `source` into lib<name>.so without linking libdaskr.
fn build(name: &str, source: &str) -> PathBuf {
    let dir = out_dir();
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    common::build_plugin(&src, &dir.join(format!("lib{name}.so")))
}

fn example() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let source = std::fs::read_to_string(root().join("examples/plugins/example.c")).unwrap();
        build("example", &source)
    })
}

/// A plugin declaring `tasks` (C initialisers) with `abi` as its ABI version, plus `extra`.
fn declaring(name: &str, abi: &str, tasks: &str, extra: &str) -> PathBuf {
    build(
        name,
        &format!(
            r#"#include "daskr.h"
{extra}
static const daskr_plugin_task_t TASKS[] = {{ {tasks} }};
static const daskr_plugin_info_t INFO = {{ {abi}, "{name}", "0.1", TASKS, sizeof TASKS / sizeof TASKS[0] }};
const daskr_plugin_info_t *daskr_plugin_info(void) {{ return &INFO; }}
"#
        ),
    )
}

fn opts(scheduler: Scheduler, workers: usize) -> Options<'static> {
    Options {
        scheduler,
        num_workers: workers,
        ..Options::default()
    }
}

const SCHEDULERS: [(Scheduler, usize); 4] = [
    (Scheduler::Sync, 1),
    (Scheduler::Threads, 1),
    (Scheduler::Threads, 2),
    (Scheduler::Threads, 4),
];

#[test]
fn example_declares_its_tasks() {
    let p = Plugin::open(example()).unwrap();
    let info = p.info();
    assert_eq!(info.name, "example");
    assert_eq!(info.version, "1.0.0");
    assert_eq!(info.abi_version, daskr::ffi::DASKR_ABI_VERSION);
    let symbols: Vec<&str> = info.tasks.iter().map(|t| t.symbol.as_str()).collect();
    assert_eq!(
        symbols,
        [
            "load", "clean", "analyze", "store", "inc", "add", "sum", "concat", "identity", "fail",
            "sleep_ms", "record", "field", "means"
        ]
    );
    assert!(info.tasks.iter().all(|t| !t.doc.is_empty()));
    assert!(p.path().is_absolute());
}

#[test]
fn plugin_tasks_run_under_every_scheduler() {
    let p = Plugin::open(example()).unwrap();
    let (inc, add, sum, concat) = (
        p.func("inc").unwrap(),
        p.func_as("add", "ex").unwrap(),
        p.func("sum").unwrap(),
        p.func("concat").unwrap(),
    );
    assert_eq!(inc.name(), "example:inc");
    assert_eq!(add.name(), "ex:add");
    let origin = add.origin().expect("a plugin function has an origin");
    assert_eq!(&*origin.symbol, "add");
    assert_eq!(&*origin.plugin, "example");
    assert_eq!(origin.alias.as_deref(), Some("ex"));
    assert_eq!(&*origin.path, p.path());

    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    g.add_task("y", &inc, vec![Comp::key("x")], vec![]).unwrap();
    g.add_task(
        "z",
        &add,
        vec![Comp::key("y"), Comp::value(Value::Int(10))],
        vec![("scale".into(), Comp::value(Value::Int(2)))],
    )
    .unwrap();
    let parts: Vec<Comp> = (0..50)
        .map(|i| Comp::task(&inc, vec![Comp::value(Value::Int(i))], vec![]))
        .collect();
    g.add_task("s", &sum, vec![Comp::list(parts)], vec![])
        .unwrap();
    g.add_task(
        "c",
        &concat,
        vec![Comp::value(Value::str("da")), Comp::value(Value::str("sk"))],
        vec![],
    )
    .unwrap();
    let keys = Value::list(["z", "s", "c"].iter().map(|k| Value::str(k)).collect()).unwrap();
    let want = Value::list(vec![Value::Int(24), Value::Int(1275), Value::str("dask")]).unwrap();
    for (s, w) in SCHEDULERS {
        assert_eq!(g.get(&keys, &opts(s, w)).unwrap(), want, "{s:?} {w}");
    }
}

#[test]
fn functions_keep_the_plugin_loaded_after_the_handle_is_closed() {
    let inc = {
        let p = Plugin::open(example()).unwrap();
        p.func("inc").unwrap()
    };
    let mut g = Graph::new();
    g.add_task("y", &inc, vec![Comp::value(Value::Int(41))], vec![])
        .unwrap();
    drop(inc);
    assert_eq!(
        g.get_key("y", &opts(Scheduler::Threads, 2)).unwrap(),
        Value::Int(42)
    );
}

#[test]
fn a_failing_plugin_task_names_its_key_and_message() {
    let p = Plugin::open(example()).unwrap();
    let fail = p.func("fail").unwrap();
    let mut g = Graph::new();
    g.add_task("bad", &fail, vec![Comp::value(Value::str("boom"))], vec![])
        .unwrap();
    for (s, w) in SCHEDULERS {
        let e = g.get_key("bad", &opts(s, w)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TaskFailed);
        assert_eq!(e.key.as_deref(), Some("bad"));
        assert!(e.message.contains("boom"), "{}", e.message);
    }
}

fn open_err(path: &Path) -> daskr::Error {
    let e = Plugin::open(path).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Plugin, "{e}");
    e
}

#[test]
fn a_missing_file_is_refused_naming_it() {
    let path = out_dir().join("no-such-plugin.so");
    let e = open_err(&path);
    assert!(e.message.contains("no-such-plugin.so"), "{}", e.message);
    assert!(e.message.contains("no such file"), "{}", e.message);
}

#[test]
fn a_file_that_is_not_a_shared_library_is_refused() {
    let path = out_dir().join("not-a-library.so");
    std::fs::write(&path, "just text\n").unwrap();
    let e = open_err(&path);
    assert!(e.message.contains("not-a-library.so"), "{}", e.message);
    assert!(
        e.message.contains("cannot load it as a shared library"),
        "{}",
        e.message
    );
}

#[test]
fn a_library_without_the_entry_point_is_refused() {
    let path = build("no_entry", "int answer(void) { return 42; }\n");
    let e = open_err(&path);
    assert!(e.message.contains("libno_entry.so"), "{}", e.message);
    assert!(
        e.message.contains("does not export daskr_plugin_info"),
        "{}",
        e.message
    );
}

#[test]
fn another_abi_version_is_refused_naming_both() {
    let path = declaring("abi999", "999", r#"{"t", "a task"}"#, TASK_T);
    let e = open_err(&path);
    assert!(e.message.contains("libabi999.so"), "{}", e.message);
    assert!(e.message.contains("ABI version 999"), "{}", e.message);
    assert!(
        e.message
            .contains(&format!("ABI version {}", daskr::ffi::DASKR_ABI_VERSION)),
        "{}",
        e.message
    );
}

const TASK_T: &str = r#"
void t(daskr_call_t *call, void *user_data) { (void)user_data; daskr_call_return_int(call, 7); }
void undeclared(daskr_call_t *call, void *user_data) { (void)user_data; daskr_call_return_int(call, 8); }
"#;

#[test]
fn a_declared_task_that_is_not_exported_is_refused() {
    let path = declaring(
        "ghost",
        "DASKR_ABI_VERSION",
        r#"{"t", "exported"}, {"ghost", "not exported"}"#,
        TASK_T,
    );
    let e = open_err(&path);
    assert!(e.message.contains("libghost.so"), "{}", e.message);
    assert!(e.message.contains("'ghost'"), "{}", e.message);
}

#[test]
fn only_declared_symbols_can_be_used() {
    let path = declaring("small", "DASKR_ABI_VERSION", r#"{"t", NULL}"#, TASK_T);
    let p = Plugin::open(&path).unwrap();
    assert_eq!(p.info().tasks[0].doc, "");
    let mut g = Graph::new();
    g.add_task("x", &p.func("t").unwrap(), vec![], vec![])
        .unwrap();
    assert_eq!(g.get_key("x", &Options::default()).unwrap(), Value::Int(7));

    // Missing altogether.
    let e = p.func("nope").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Plugin);
    assert!(e.message.contains("libsmall.so"), "{}", e.message);
    assert!(e.message.contains("no task 'nope'"), "{}", e.message);
    assert!(e.message.contains("declares: t"), "{}", e.message);
    // Exported by the plugin, or found through its dependencies (the example uses libc's
    // snprintf), but not declared: refused, as calling it as a task would crash.
    let ex = Plugin::open(example()).unwrap();
    for (p, symbol) in [(&p, "undeclared"), (&ex, "snprintf")] {
        let e = p.func(symbol).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Plugin);
        assert!(e.message.contains(&format!("'{symbol}'")), "{}", e.message);
        assert!(
            e.message.contains("exported but not declared"),
            "{}",
            e.message
        );
    }
}

#[test]
fn unresolved_daskr_functions_are_refused_when_opened() {
    let path = declaring(
        "unresolved",
        "DASKR_ABI_VERSION",
        r#"{"t", "calls a function this daskr does not have"}"#,
        r#"
void daskr_no_such_function(daskr_call_t *call);
void t(daskr_call_t *call, void *user_data) { (void)user_data; daskr_no_such_function(call); }
"#,
    );
    let e = open_err(&path);
    assert!(e.message.contains("libunresolved.so"), "{}", e.message);
    assert!(
        e.message.contains("daskr_no_such_function"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("link that program with libdaskr"),
        "{}",
        e.message
    );
}

#[test]
fn a_bad_declaration_is_refused() {
    let path = declaring(
        "twice",
        "DASKR_ABI_VERSION",
        r#"{"t", "one"}, {"t", "two"}"#,
        TASK_T,
    );
    let e = open_err(&path);
    assert!(
        e.message.contains("declares the task 't' twice"),
        "{}",
        e.message
    );
}

#[test]
fn the_same_plugin_can_be_opened_many_times() {
    let funcs: Vec<_> = (0..20)
        .map(|_| Plugin::open(example()).unwrap().func("inc").unwrap())
        .collect();
    let mut g = Graph::new();
    for (i, f) in funcs.iter().enumerate() {
        g.add_task(
            &format!("k{i}"),
            f,
            vec![Comp::value(Value::Int(i as i64))],
            vec![],
        )
        .unwrap();
    }
    assert_eq!(
        g.get_key("k19", &Options::default()).unwrap(),
        Value::Int(20)
    );
}
