//! The engine through its Rust API: results, culling, order, release, errors, schedulers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use daskr::{
    Callbacks, CancelToken, Comp, ErrorKind, Func, Graph, KeyRef, Options, Scheduler, Value,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{counting_chain, opts, sum_list};

fn add() -> Func {
    Func::new("add", |call| {
        let mut total = 0;
        for i in 0..call.nargs() {
            total += call.arg(i).and_then(Value::as_int).expect("int args");
        }
        let scale = call.kwarg("scale").and_then(Value::as_int).unwrap_or(1);
        call.ret(Value::Int(total * scale));
    })
}

const BOTH: [Scheduler; 2] = [Scheduler::Sync, Scheduler::Threads];

fn keys(ks: &[&str]) -> Value {
    Value::list(ks.iter().map(|k| Value::str(k)).collect()).unwrap()
}

#[test]
fn dask_style_graph_gives_shaped_results() {
    let f = add();
    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    g.add_task(
        "y",
        &f,
        vec![Comp::key("x"), Comp::value(Value::Int(1))],
        vec![],
    )
    .unwrap();
    g.add_task(
        "z",
        &f,
        vec![Comp::key("y"), Comp::value(Value::Int(10))],
        vec![("scale".into(), Comp::value(Value::Int(2)))],
    )
    .unwrap();
    g.add_alias("w", "z").unwrap();
    g.add(
        "l",
        Comp::list(vec![
            Comp::key("x"),
            Comp::key("y"),
            Comp::value(Value::str("s")),
        ]),
    )
    .unwrap();
    g.add(
        "n",
        Comp::task(
            &f,
            vec![
                Comp::task(&f, vec![Comp::key("x"), Comp::value(Value::Int(5))], vec![]),
                Comp::key("y"),
            ],
            vec![],
        ),
    )
    .unwrap();
    for s in BOTH {
        assert_eq!(g.get_key("z", &opts(s)).unwrap(), Value::Int(24));
        let req = Value::list(vec![
            Value::str("w"),
            keys(&["l", "n", "w"]),
            Value::list(vec![]).unwrap(),
        ])
        .unwrap();
        let out = g.get(&req, &opts(s)).unwrap();
        let expect = Value::list(vec![
            Value::Int(24),
            Value::list(vec![
                Value::list(vec![Value::Int(1), Value::Int(2), Value::str("s")]).unwrap(),
                Value::Int(8),
                Value::Int(24),
            ])
            .unwrap(),
            Value::list(vec![]).unwrap(),
        ])
        .unwrap();
        assert_eq!(out, expect);
        assert_eq!(
            g.get(&Value::list(vec![]).unwrap(), &opts(s)).unwrap(),
            Value::list(vec![]).unwrap()
        );
    }
}

#[test]
fn handles_name_dependencies_without_keys() {
    let f = add();
    let mut g = Graph::new();
    let a = g.add_value("a", Value::Int(2)).unwrap();
    let b = g
        .add_task("b", &f, vec![Comp::id(a), Comp::id(a)], vec![])
        .unwrap();
    g.add_task("c", &f, vec![Comp::id(b), Comp::key("a")], vec![])
        .unwrap();
    assert_eq!(
        g.get_key("c", &opts(Scheduler::Threads)).unwrap(),
        Value::Int(6)
    );
    // A handle of another graph — here with the same index as "a" — is refused, not read as
    // an entry of this one: directly, inside a list, and by `key`.
    let mut other = Graph::new();
    let foreign = other.add_value("elsewhere", Value::Int(7)).unwrap();
    assert_eq!(foreign.index(), a.index());
    assert_ne!(foreign, a);
    for comp in [Comp::id(foreign), Comp::list(vec![Comp::id(foreign)])] {
        let err = g.add_task("d", &f, vec![comp], vec![]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
        assert_eq!(err.key.as_deref(), Some("d"));
        assert!(err.message.contains("another graph"), "{err}");
    }
    assert!(!g.contains("d"));
    assert_eq!(g.key(foreign), None);
    assert_eq!(other.key(foreign), Some("elsewhere"));
}

/// Counts runs per key and checks each task runs once and only when needed.
#[test]
fn only_needed_tasks_run_exactly_once() {
    for s in BOTH {
        let runs = Arc::new(Mutex::new(Vec::<String>::new()));
        let r = runs.clone();
        let f = Func::new("rec", move |call| {
            r.lock().unwrap().push(call.key().unwrap().to_string());
            call.ret(Value::Int(1));
        });
        let mut g = Graph::new();
        g.add_task("a", &f, vec![], vec![]).unwrap();
        g.add_task("b", &f, vec![Comp::key("a")], vec![]).unwrap();
        g.add_task("c", &f, vec![Comp::key("a"), Comp::key("b")], vec![])
            .unwrap();
        g.add_task("unrelated", &f, vec![], vec![]).unwrap();
        g.add_alias("cyc1", "cyc2").unwrap();
        g.add_alias("cyc2", "cyc1").unwrap();
        g.get(&keys(&["c", "b", "c"]), &opts(s)).unwrap();
        let mut got = runs.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, vec!["a", "b", "c"], "{s:?}");
    }
}

#[test]
fn errors_name_keys_before_anything_runs() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let f = Func::new("count", move |call| {
        r.fetch_add(1, Ordering::SeqCst);
        call.ret(Value::Null)
    });
    let mut g = Graph::new();
    g.add_task("a", &f, vec![], vec![]).unwrap();
    g.add_task("b", &f, vec![Comp::key("a"), Comp::key("ghost")], vec![])
        .unwrap();
    g.add_task("c1", &f, vec![Comp::key("a"), Comp::key("c3")], vec![])
        .unwrap();
    g.add_task("c2", &f, vec![Comp::key("c1")], vec![]).unwrap();
    g.add_task("c3", &f, vec![Comp::key("c2")], vec![]).unwrap();
    g.add_alias("self", "self").unwrap();
    for s in BOTH {
        let e = g.get_key("b", &opts(s)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingDependency);
        assert_eq!(e.key.as_deref(), Some("b"));
        assert_eq!(e.keys, vec!["ghost"]);
        assert!(
            e.message.contains("'b'") && e.message.contains("'ghost'"),
            "{}",
            e.message
        );

        let e = g.get_key("nope", &opts(s)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingKey);
        assert_eq!(e.key.as_deref(), Some("nope"));

        let e = g.get_key("c3", &opts(s)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cycle);
        let mut on_cycle = e.keys.clone();
        on_cycle.sort();
        assert_eq!(on_cycle, vec!["c1", "c2", "c3"], "{}", e.message);

        let e = g.get_key("self", &opts(s)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cycle);
        assert_eq!(e.keys, vec!["self"]);
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn add_errors() {
    let f = add();
    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    let e = g.add_value("x", Value::Int(2)).unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::InvalidGraph, Some("x"))
    );
    assert_eq!(
        g.add_value("", Value::Null).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        g.add_value("a\0b", Value::Null).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    // A failed add leaves the graph as it was.
    let mut deep = Comp::key("x");
    for _ in 0..daskr::MAX_NESTING + 5 {
        deep = Comp::list(vec![deep]);
    }
    let e = g.add("deep", deep).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("deep"));
    assert!(!g.contains("deep"));
    g.add_task("y", &f, vec![Comp::key("x")], vec![]).unwrap();
    assert_eq!(g.len(), 2);
}

struct Log(Mutex<Vec<String>>);
impl Callbacks for Log {
    fn start(&self, n: usize) {
        self.0.lock().unwrap().push(format!("start {n}"));
    }
    fn pretask(&self, key: KeyRef<'_>, _w: usize) {
        self.0.lock().unwrap().push(format!("pre {}", key.as_str()));
    }
    fn posttask(&self, key: KeyRef<'_>, ok: bool, _w: usize) {
        self.0
            .lock()
            .unwrap()
            .push(format!("post {} {ok}", key.as_str()));
    }
    fn finish(&self, failed: bool) {
        self.0.lock().unwrap().push(format!("finish {failed}"));
    }
}

#[test]
fn failure_stops_new_tasks_and_reports_key() {
    let fail = Func::new("fail", |call| call.fail("boom"));
    let f = add();
    for s in BOTH {
        let mut g = Graph::new();
        g.add_value("x", Value::Int(1)).unwrap();
        g.add_task("bad", &fail, vec![Comp::key("x")], vec![])
            .unwrap();
        g.add_task("after", &f, vec![Comp::key("bad")], vec![])
            .unwrap();
        let log = Log(Mutex::new(vec![]));
        let o = Options {
            scheduler: s,
            callbacks: Some(&log),
            ..Options::default()
        };
        let e = g.get_key("after", &o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TaskFailed);
        assert_eq!(e.key.as_deref(), Some("bad"));
        assert!(e.message.contains("boom"));
        assert_eq!(
            *log.0.lock().unwrap(),
            vec!["start 2", "pre bad", "post bad false", "finish true"]
        );
    }
}

#[test]
fn cancel_returns_cancelled() {
    let cancel = CancelToken::new();
    let c = cancel.clone();
    let trip = Func::new("trip", move |call| {
        c.cancel();
        call.ret(Value::Int(0))
    });
    let f = add();
    for s in BOTH {
        cancel.reset();
        let mut g = Graph::new();
        g.add_task("a", &trip, vec![], vec![]).unwrap();
        g.add_task("b", &f, vec![Comp::key("a")], vec![]).unwrap();
        let o = Options {
            scheduler: s,
            cancel: Some(&cancel),
            ..Options::default()
        };
        assert_eq!(g.get_key("b", &o).unwrap_err().kind, ErrorKind::Cancelled);
    }
}

#[test]
fn sync_follows_priority_and_keeps_few_results() {
    // A binary reduction over 64 leaves: depth-first order holds at most ~log2(64)+2 results.
    let f = add();
    let mut g = Graph::new();
    let mut level: Vec<String> = (0..64).map(|i| format!("leaf-{i}")).collect();
    for k in &level {
        g.add_value(k, Value::Int(1)).unwrap();
    }
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        level = level
            .chunks(2)
            .enumerate()
            .map(|(i, pair)| {
                let k = format!("sum-{depth}-{i}");
                g.add_task(
                    &k,
                    &f,
                    vec![Comp::key(&pair[0]), Comp::key(&pair[1])],
                    vec![],
                )
                .unwrap();
                k
            })
            .collect();
    }
    for s in BOTH {
        let (r, stats) = g.get_with_stats(&Value::str(&level[0]), &opts(s));
        assert_eq!(r.unwrap(), Value::Int(64));
        assert_eq!(stats.entries, 127);
        assert_eq!(stats.entries_run, 127);
        if s == Scheduler::Sync {
            assert!(stats.peak_held <= 8, "peak {}", stats.peak_held);
        }
    }
}

#[test]
fn deep_chain_has_no_recursion_limit() {
    let n = 200_000;
    let g = counting_chain(&add(), n);
    for s in BOTH {
        let (r, stats) = g.get_with_stats(&Value::str(&format!("c-{n}")), &opts(s));
        assert_eq!(r.unwrap(), Value::Int(n as i64));
        assert!(stats.peak_held <= 3, "{s:?} held {}", stats.peak_held);
    }
}

/// Random DAGs: `threads` must agree with `sync` on every one.
#[test]
fn threads_agree_with_sync_on_random_dags() {
    let f = add();
    let sum = sum_list();
    let mut rng = SmallRng::seed_from_u64(7);
    for round in 0..2000 {
        let n = rng.random_range(1..60);
        let mut g = Graph::new();
        for i in 0..n {
            let key = format!("k{i}");
            let kind = if i == 0 { 0 } else { rng.random_range(0..5) };
            let pick = |rng: &mut SmallRng| Comp::key(format!("k{}", rng.random_range(0..i)));
            match kind {
                0 => g
                    .add_value(&key, Value::Int(rng.random_range(0..100)))
                    .map(|_| ()),
                1 => g
                    .add_alias(&key, &format!("k{}", rng.random_range(0..i)))
                    .map(|_| ()),
                2 => {
                    let items = (0..rng.random_range(0..4))
                        .map(|_| pick(&mut rng))
                        .collect();
                    g.add_task(&key, &sum, vec![Comp::list(items)], vec![])
                        .map(|_| ())
                }
                _ => {
                    let args = (0..rng.random_range(0..4))
                        .map(|_| pick(&mut rng))
                        .collect();
                    let kw = vec![("scale".to_string(), Comp::value(Value::Int(1)))];
                    g.add_task(&key, &f, args, kw).map(|_| ())
                }
            }
            .unwrap();
        }
        let req: Vec<Value> = (0..rng.random_range(1..4))
            .map(|_| Value::str(&format!("k{}", rng.random_range(0..n))))
            .collect();
        let req = Value::list(req).unwrap();
        let expect = g.get(&req, &opts(Scheduler::Sync)).unwrap();
        let workers = rng.random_range(1..5);
        let got = g
            .get(
                &req,
                &Options {
                    scheduler: Scheduler::Threads,
                    num_workers: workers,
                    ..Options::default()
                },
            )
            .unwrap();
        assert_eq!(got, expect, "round {round}");
    }
}

#[test]
fn concurrent_gets_share_a_graph() {
    let f = add();
    let mut g = Graph::new();
    let mut prev = g.add_value("v0", Value::Int(0)).unwrap();
    for i in 1..2000 {
        prev = g
            .add_task(
                &format!("v{i}"),
                &f,
                vec![Comp::id(prev), Comp::value(Value::Int(1))],
                vec![],
            )
            .unwrap();
    }
    let g = &g;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(move || {
                for _ in 0..20 {
                    assert_eq!(
                        g.get_key("v1999", &opts(Scheduler::Threads)).unwrap(),
                        Value::Int(1999)
                    );
                }
            });
        }
    });
}

/// Depth-first: a branch is finished (and its inputs freed) before the next one opens, and
/// leaf inputs are produced just before the task that needs them.
#[test]
fn sync_order_finishes_branches_first() {
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let o = order.clone();
    let rec = Func::new("rec", move |call| {
        o.lock().unwrap().push(call.key().unwrap().to_string());
        call.ret(Value::Int(1));
    });
    let mut g = Graph::new();
    for k in ["a1", "a2", "b1", "b2"] {
        g.add_task(k, &rec, vec![], vec![]).unwrap();
    }
    g.add_task("a", &rec, vec![Comp::key("a1"), Comp::key("a2")], vec![])
        .unwrap();
    g.add_task("b", &rec, vec![Comp::key("b1"), Comp::key("b2")], vec![])
        .unwrap();
    // `c` lists its leaf input first; the leaf still runs after the branches.
    g.add_task("leaf", &rec, vec![], vec![]).unwrap();
    g.add_task(
        "c",
        &rec,
        vec![Comp::key("leaf"), Comp::key("a"), Comp::key("b")],
        vec![],
    )
    .unwrap();
    let (r, stats) = g.get_with_stats(&Value::str("c"), &opts(Scheduler::Sync));
    r.unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        vec!["a1", "a2", "a", "b1", "b2", "b", "leaf", "c"]
    );
    // a, b1 and b2 are held while b's branch runs; then b, a, leaf until c.
    assert_eq!(stats.peak_held, 3);
}

#[test]
fn profiler_records_one_span_per_entry_on_its_worker() {
    let f = add();
    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    for i in 0..50 {
        g.add_task(
            &format!("t{i}"),
            &f,
            vec![Comp::key("x"), Comp::value(Value::Int(i))],
            vec![],
        )
        .unwrap();
    }
    let all: Vec<Comp> = (0..50).map(|i| Comp::key(format!("t{i}"))).collect();
    g.add("all", Comp::list(all)).unwrap();
    let profiler = daskr::Profiler::new();
    for s in BOTH {
        let o = Options {
            scheduler: s,
            num_workers: 2,
            profiler: Some(&profiler),
            ..Options::default()
        };
        g.get_key("all", &o).unwrap();
        let p = profiler.profile();
        assert_eq!(p.tasks.len(), 52, "{s:?}");
        let mut keys: Vec<&str> = p.tasks.iter().map(|t| t.key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 52);
        assert!(
            p.tasks.windows(2).all(|w| w[0].start <= w[1].start),
            "start order"
        );
        assert!(p
            .tasks
            .iter()
            .all(|t| t.ok && t.end >= t.start && t.worker < 2));
        let x = p.tasks.iter().find(|t| t.key == "x").unwrap();
        assert_eq!(x.func, "literal");
        assert_eq!(p.tasks.iter().find(|t| t.key == "t3").unwrap().func, "add");
        assert_eq!(
            p.tasks.iter().find(|t| t.key == "all").unwrap().func,
            "list"
        );
        assert_eq!(
            p.phases
                .iter()
                .map(|ph| ph.name.as_str())
                .collect::<Vec<_>>(),
            vec!["plan", "run"]
        );
        let json = p.chrome_trace_json();
        assert_eq!(json.matches("\"ph\":\"X\"").count(), 54);
        assert!(json.starts_with('{') && json.trim_end().ends_with('}'));
    }
}

#[test]
fn progress_counts_entries_as_they_run() {
    let f = add();
    let mut g = Graph::new();
    let mut prev = g.add_value("p0", Value::Int(0)).unwrap();
    let n = 20_000;
    for i in 1..n {
        prev = g
            .add_task(
                &format!("p{i}"),
                &f,
                vec![Comp::id(prev), Comp::value(Value::Int(1))],
                vec![],
            )
            .unwrap();
    }
    let progress = daskr::Progress::new();
    for s in BOTH {
        let seen = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut seen = vec![];
                while seen.len() < 10_000 {
                    seen.push(progress.done());
                    if !progress.running() && !seen.is_empty() && progress.done() == n as u64 {
                        break;
                    }
                    std::hint::spin_loop();
                }
                seen
            });
            g.get_key(
                &format!("p{}", n - 1),
                &Options {
                    scheduler: s,
                    progress: Some(&progress),
                    ..Options::default()
                },
            )
            .unwrap();
            reader.join().unwrap()
        });
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "never goes backwards"
        );
        assert_eq!(progress.total(), n as u64);
        assert_eq!(progress.done(), n as u64);
        assert!(!progress.running());
    }
}

#[test]
fn dot_pictures_the_culled_graph() {
    let f = add();
    let fail = Func::new("fail", |call| call.fail("no"));
    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    g.add_task("y", &f, vec![Comp::key("x")], vec![]).unwrap();
    g.add_task(
        "z \"quoted\"",
        &f,
        vec![Comp::key("y"), Comp::key("x")],
        vec![],
    )
    .unwrap();
    g.add_task("unused", &fail, vec![Comp::key("x")], vec![])
        .unwrap();
    let keys = Value::str("z \"quoted\"");
    let profiler = daskr::Profiler::new();
    g.get(
        &keys,
        &Options {
            profiler: Some(&profiler),
            ..Options::default()
        },
    )
    .unwrap();
    let profile = profiler.profile();
    let dot = daskr::dot::to_dot(
        &g,
        &keys,
        daskr::dot::DotStyle {
            profile: Some(&profile),
            failed_key: Some("y"),
        },
    )
    .unwrap();
    assert!(dot.starts_with("digraph daskr {"));
    assert_eq!(dot.matches(" -> ").count(), 3, "{dot}");
    assert!(!dot.contains("unused"));
    assert!(dot.contains("z \\\"quoted\\\"\\nadd"), "{dot}");
    assert!(dot.contains("peripheries=2"));
    assert!(dot.contains("#ff6b6b"));
    assert!(dot.contains("fillcolor=\"#ff"), "profile colours");
    // Graphviz, when installed, must accept it.
    if std::process::Command::new("dot").arg("-V").output().is_ok() {
        let dir = std::env::temp_dir().join(format!("daskr-dot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let svg = dir.join("g.svg");
        daskr::dot::write(&svg, &dot).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
        std::fs::remove_dir_all(&dir).ok();
    }
    let e = daskr::dot::to_dot(&g, &Value::str("nope"), Default::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingKey);
}

#[test]
fn a_keyword_given_twice_is_an_error() {
    let f = add();
    let mut g = Graph::new();
    let kw = vec![
        ("a".to_string(), Comp::value(Value::Int(1))),
        ("a".to_string(), Comp::value(Value::Int(2))),
    ];
    let e = g.add_task("t", &f, vec![], kw).unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::InvalidGraph, Some("t"))
    );
    assert!(e.message.contains("'a' is given twice"), "{}", e.message);
    assert!(!g.contains("t"));
    let inline = Comp::task(
        &f,
        vec![],
        vec![
            ("b".into(), Comp::value(Value::Int(1))),
            ("b".into(), Comp::value(Value::Int(1))),
        ],
    );
    assert!(g.add("u", inline).is_err());
}

/// Wide fan-ins (dependents with hundreds of inputs) take the batched-decrement path of the
/// threads scheduler: results must still match sync, including fan-ins in the middle.
#[test]
fn wide_fan_ins_agree_with_sync() {
    let f = add();
    let sum = sum_list();
    let mut rng = SmallRng::seed_from_u64(11);
    for round in 0..60 {
        let mut g = Graph::new();
        let width = rng.random_range(60..700);
        let leaves: Vec<daskr::TaskId> = (0..width)
            .map(|i| {
                g.add_value(&format!("l{i}"), Value::Int(i as i64 % 7))
                    .unwrap()
            })
            .collect();
        // Two overlapping wide sums, a mid-graph task on each, and a final wide join.
        let mut mids = vec![];
        for m in 0..rng.random_range(1..4) {
            let picks: Vec<Comp> = leaves
                .iter()
                .filter(|_| rng.random_bool(0.8))
                .map(|&t| Comp::id(t))
                .collect();
            let s = g
                .add_task(&format!("s{m}"), &sum, vec![Comp::list(picks)], vec![])
                .unwrap();
            mids.push(
                g.add_task(
                    &format!("m{m}"),
                    &f,
                    vec![Comp::id(s), Comp::value(Value::Int(1))],
                    vec![],
                )
                .unwrap(),
            );
        }
        let mut all: Vec<Comp> = mids.iter().map(|&t| Comp::id(t)).collect();
        all.extend(leaves.iter().step_by(3).map(|&t| Comp::id(t)));
        g.add_task("join", &sum, vec![Comp::list(all)], vec![])
            .unwrap();
        let expect = g.get_key("join", &opts(Scheduler::Sync)).unwrap();
        for workers in [2, 3, 4] {
            let o = Options {
                num_workers: workers,
                ..Options::default()
            };
            assert_eq!(
                g.get_key("join", &o).unwrap(),
                expect,
                "round {round}, {workers} workers"
            );
        }
    }
}

/// A graph a task can reach while a get on it runs (the tasks below call get on it).
struct Shared(std::sync::atomic::AtomicPtr<Graph>);

impl Shared {
    fn graph(&self) -> &Graph {
        // SAFETY: set to a graph that outlives every get the tests run on it.
        unsafe { &*self.0.load(Ordering::Acquire) }
    }
}

/// A get run inside a task: the key it asked for, and what it returned.
type InnerGet = (String, Result<Value, daskr::Error>);

#[test]
fn a_get_inside_a_task_that_would_wait_on_itself_is_a_cycle() {
    for s in BOTH {
        let shared = Arc::new(Shared(Default::default()));
        let inner: Arc<Mutex<Vec<InnerGet>>> = Default::default();
        // get(key) from inside a task: what the inner get said, then the task fails with it
        // (or returns its value).
        let getter = |wanted: &'static str| {
            let (shared, inner) = (shared.clone(), inner.clone());
            Func::new("getter", move |call| {
                let r = shared.graph().get_key(wanted, &opts(s));
                inner.lock().unwrap().push((wanted.to_string(), r.clone()));
                match r {
                    Ok(v) => call.ret(v),
                    Err(e) => call.fail(e.message),
                }
            })
        };
        let mut g = Graph::new();
        g.add_value("x", Value::Int(41)).unwrap();
        g.add_task("me", &getter("me"), vec![], vec![]).unwrap();
        g.add_task("a", &getter("b"), vec![], vec![]).unwrap();
        g.add_task("b", &add(), vec![Comp::key("a"), Comp::value(1)], vec![])
            .unwrap();
        g.add_task("fine", &getter("y"), vec![], vec![]).unwrap();
        g.add_task("y", &add(), vec![Comp::key("x"), Comp::value(1)], vec![])
            .unwrap();
        shared
            .0
            .store(&g as *const Graph as *mut Graph, Ordering::Release);
        // Its own key: the inner get is refused, naming the key, before anything runs.
        for (outer, waits_on) in [("me", "me"), ("a", "a")] {
            inner.lock().unwrap().clear();
            let e = g.get_key(outer, &opts(s)).unwrap_err();
            assert_eq!(
                (e.kind, e.key.as_deref()),
                (ErrorKind::TaskFailed, Some(outer))
            );
            let seen = inner.lock().unwrap().clone();
            assert_eq!(seen.len(), 1, "{s:?} {outer}: {seen:?}");
            let e = seen[0].1.clone().unwrap_err();
            assert_eq!(
                (e.kind, e.key.as_deref(), e.keys.clone()),
                (ErrorKind::Cycle, Some(waits_on), vec![waits_on.to_string()]),
                "{s:?} {outer}"
            );
            assert!(e.message.contains(&format!("'{waits_on}'")), "{e}");
        }
        // A get inside a task for keys that do not need it runs as usual.
        assert_eq!(g.get_key("fine", &opts(s)).unwrap(), Value::Int(42));
        // And once the outer get is over, the key may be asked for from outside again.
        assert_eq!(g.get_key("y", &opts(s)).unwrap(), Value::Int(42));
    }
}

#[test]
fn timeouts_are_refused_where_they_would_be_ignored() {
    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    // A timeout needs a worker that can be killed: not a thread of the caller, not a Dask
    // worker (refused before the cluster's address is even looked at).
    for s in [Scheduler::Sync, Scheduler::Threads, Scheduler::Distributed] {
        let o = Options {
            task_timeout: Some(std::time::Duration::from_secs(1)),
            ..opts(s)
        };
        let e = g.get_key("x", &o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{s:?}");
        assert!(
            e.message.contains("task_timeout")
                && e.message.contains(s.name())
                && e.message.contains("processes"),
            "{e}"
        );
    }
}

/// A graph whose task `flaky` fails its first `failures` calls (counted in `calls`), then
/// returns 7; `total` adds 1 to it.
fn flaky_graph(failures: usize, calls: &Arc<AtomicUsize>) -> Graph {
    let mut g = Graph::new();
    let counter = Arc::clone(calls);
    let flaky = Func::new("flaky", move |call| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        if n < failures {
            call.fail(format!("failure {}", n + 1));
        } else {
            call.ret(Value::Int(7));
        }
    });
    g.add_task("flaky", &flaky, vec![], vec![]).unwrap();
    g.add_task(
        "total",
        &add(),
        vec![Comp::key("flaky"), Comp::value(Value::Int(1))],
        vec![],
    )
    .unwrap();
    g
}

#[test]
fn retries_run_a_failing_task_again() {
    for s in BOTH {
        // Two failures, two retries: the third call succeeds.
        let calls = Arc::new(AtomicUsize::new(0));
        let g = flaky_graph(2, &calls);
        let o = Options {
            retries: 2,
            ..opts(s)
        };
        assert_eq!(g.get_key("total", &o).unwrap(), Value::Int(8), "{s:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "{s:?}");

        // One retry too few: the get fails with the last failure, saying how often it tried.
        let calls = Arc::new(AtomicUsize::new(0));
        let g = flaky_graph(2, &calls);
        let o = Options {
            retries: 1,
            ..opts(s)
        };
        let e = g.get_key("total", &o).unwrap_err();
        assert_eq!(
            (e.kind, e.key.as_deref()),
            (ErrorKind::TaskFailed, Some("flaky")),
            "{s:?}"
        );
        assert!(
            e.message.contains("failure 2") && e.message.contains("on each of 2 tries"),
            "{e}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2, "{s:?}");

        // No retries (the default): one call, the message as ever.
        let calls = Arc::new(AtomicUsize::new(0));
        let g = flaky_graph(1, &calls);
        let e = g.get_key("total", &opts(s)).unwrap_err();
        assert_eq!(e.message, "task 'flaky' failed: failure 1", "{s:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{s:?}");
    }
}

#[test]
fn retries_stop_when_the_run_is_cancelled() {
    // A task that cancels the run as it fails is not run again: a cancelled get ends.
    let cancel = CancelToken::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut g = Graph::new();
    let (c, n) = (cancel.clone(), Arc::clone(&calls));
    let f = Func::new("cancels", move |call| {
        n.fetch_add(1, Ordering::SeqCst);
        c.cancel();
        call.fail("no");
    });
    g.add_task("t", &f, vec![], vec![]).unwrap();
    for s in BOTH {
        calls.store(0, Ordering::SeqCst);
        cancel.reset();
        let o = Options {
            retries: 5,
            cancel: Some(&cancel),
            ..opts(s)
        };
        let e = g.get_key("t", &o).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cancelled, "{s:?} {e}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{s:?}");
    }
}
