//! Scale: long chains and deep nesting give a result or a clear depth error on every
//! scheduler, never a stack overflow; a 10,000,000-task graph fits in memory (ignored by
//! default: `cargo test --release --test scale -- --ignored --nocapture` prints bytes per task).
//! `make test-scale` runs it with its two siblings: the same graph built through the C API
//! (tests/c/scale.c) and read from a graph file by `daskr run` (tests/cli.rs).

include!(concat!(env!("OUT_DIR"), "/c_abi_symbols.rs"));

use daskr::{Comp, ErrorKind, Func, Graph, Options, Scheduler, Value, MAX_NESTING};

mod common;

fn add() -> Func {
    Func::new("add", |c| {
        let s = (0..c.nargs())
            .map(|i| c.arg(i).and_then(Value::as_int).unwrap_or(0))
            .sum();
        c.ret(Value::Int(s));
    })
}

fn opts(s: Scheduler) -> Options<'static> {
    Options {
        scheduler: s,
        num_workers: 2,
        ..Options::default()
    }
}

fn chain(n: usize) -> Graph {
    common::counting_chain(&add(), n)
}

/// A million-long chain on sync and threads (tests/processes.rs runs one on processes).
#[test]
fn a_million_long_chain_on_sync_and_threads() {
    let n = 1_000_000;
    let g = chain(n);
    for s in [Scheduler::Sync, Scheduler::Threads] {
        let r = g.get_key(&format!("c-{n}"), &opts(s));
        assert_eq!(r.unwrap(), Value::Int(n as i64), "{s:?}");
    }
}

/// Computations nested 100,000 deep (lists, inline tasks) are refused with a clear error
/// naming the key — on a test thread's small stack, so a recursion would overflow it.
#[test]
fn nesting_100000_deep_is_a_clear_error_not_a_stack_overflow() {
    let f = add();
    for inline in [false, true] {
        let mut c = Comp::value(Value::Int(1));
        for _ in 0..100_000 {
            c = if inline {
                Comp::task(&f, vec![c], vec![])
            } else {
                Comp::list(vec![c])
            };
        }
        let mut g = Graph::new();
        let e = g.add("deep", c).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("deep"), "{e}");
        assert!(
            matches!(e.kind, ErrorKind::InvalidGraph | ErrorKind::InvalidArgument),
            "{e}"
        );
    }
    // Just inside the limit: a result on every local scheduler.
    let mut c = Comp::value(Value::Int(1));
    for _ in 0..MAX_NESTING - 1 {
        c = Comp::list(vec![c]);
    }
    let mut g = Graph::new();
    g.add("ok", c).unwrap();
    for s in [Scheduler::Sync, Scheduler::Threads, Scheduler::Processes] {
        let v = g.get_key("ok", &opts(s)).unwrap();
        assert_eq!(v.depth(), MAX_NESTING - 1, "{s:?}");
    }
    // Lists of references are made from the results themselves (no vector in between): the
    // limit holds there too, once the results' depths are known.
    g.add("one", Comp::list(vec![Comp::key("ok"), Comp::key("ok")]))
        .unwrap();
    g.add("two", Comp::list(vec![Comp::key("one")])).unwrap();
    for s in [Scheduler::Sync, Scheduler::Threads] {
        let v = g.get_key("one", &opts(s)).unwrap();
        assert_eq!((v.depth(), v.as_list().unwrap().len()), (MAX_NESTING, 2));
        let e = g.get_key("two", &opts(s)).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("two"), "{e}");
        assert!(e.message.contains("levels deep"), "{e}");
    }
}

/// 10,000,000 tasks (a fan of chains: 1,000 chains of 10,000) built and run; prints the
/// graph's bytes per task.
#[test]
#[ignore = "10M tasks: minutes in a debug build; run with --release -- --ignored"]
fn ten_million_tasks_fit_in_memory() {
    let f = add();
    let mut g = Graph::new();
    let (chains, len) = (1_000, 10_000);
    let mut tips = Vec::with_capacity(chains);
    for c in 0..chains {
        let mut prev = g.add_value(&format!("{c}-0"), Value::Int(0)).unwrap();
        for i in 1..len {
            prev = g
                .add_task(
                    &format!("{c}-{i}"),
                    &f,
                    vec![Comp::id(prev), Comp::value(Value::Int(1))],
                    vec![],
                )
                .unwrap();
        }
        tips.push(Comp::id(prev));
    }
    g.add_task("total", &f, tips, vec![]).unwrap();
    let tasks = g.len();
    eprintln!(
        "scale: {tasks} entries, graph {} bytes = {:.1} bytes per entry",
        g.heap_bytes(),
        g.heap_bytes() as f64 / tasks as f64
    );
    let v = g.get_key("total", &opts(Scheduler::Threads)).unwrap();
    assert_eq!(v, Value::Int((chains * (len - 1)) as i64));
}
