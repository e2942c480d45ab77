//! The `processes` scheduler: the same results as `threads` (random graphs of closures, which
//! run in workers forked from this process, and of plugin tasks), crash isolation — plugin
//! tasks that segfault, abort and exit kill their worker, never this process — with the key
//! and signal named, retries, timeouts, cancellation, pointer values that cannot cross, and
//! no leaked processes or file descriptors.
//!
//! Checks that need the whole process to themselves (counting children and descriptors, the
//! pool's reuse, exec'd `daskr worker` processes) run in a fresh copy of this test binary
//! (`alone`), since the other tests run in parallel threads and start workers of their own.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use daskr::{
    Callbacks, CancelToken, Comp, ErrorKind, Func, Graph, KeyRef, Options, Plugin, Profiler,
    Progress, Scheduler, Value,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

// Plugins loaded in this process take the daskr_* functions from it.
include!(concat!(env!("OUT_DIR"), "/c_abi_symbols.rs"));

fn scratch() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("test-plugins/processes");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// tests/plugins/crashy.c, built once.
fn crashy() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        let lib = common::build_plugin(
            &common::root().join("tests/plugins/crashy.c"),
            &scratch().join("libcrashy.so"),
        );
        Plugin::open(lib).unwrap()
    })
}

fn task(symbol: &str) -> Func {
    crashy().func(symbol).unwrap()
}

fn procs(workers: usize) -> Options<'static> {
    Options {
        scheduler: Scheduler::Processes,
        num_workers: workers,
        ..Options::default()
    }
}

fn threads() -> Options<'static> {
    Options {
        scheduler: Scheduler::Threads,
        num_workers: 2,
        ..Options::default()
    }
}

fn add_closure() -> Func {
    Func::new("add", |c| {
        let mut s = 0;
        for i in 0..c.nargs() {
            s += sum(c.arg(i).unwrap());
        }
        c.ret(Value::Int(s));
    })
}

fn sum(v: &Value) -> i64 {
    match v.as_list() {
        Some(items) => items.iter().map(sum).sum(),
        None => v.as_int().unwrap_or(0),
    }
}

/// A random DAG of `n` entries: literals, aliases, lists, tasks (with inline tasks and
/// keyword arguments) calling `f`, and a random request.
fn random_graph(rng: &mut SmallRng, f: &Func, inline: bool) -> (Graph, Value) {
    let n = rng.random_range(1..80);
    let mut g = Graph::new();
    for i in 0..n {
        let key = format!("k{i}");
        let kind = if i == 0 { 0 } else { rng.random_range(0..5) };
        let pick = |rng: &mut SmallRng| Comp::key(format!("k{}", rng.random_range(0..i)));
        match kind {
            0 => {
                let v = match rng.random_range(0..4) {
                    0 => Value::Int(rng.random_range(0..100)),
                    1 => Value::str(&format!("s{i}")),
                    2 => Value::bytes(&[i as u8; 3]),
                    _ => Value::list(vec![Value::Int(i as i64), Value::Float(0.5)]).unwrap(),
                };
                g.add_value(&key, v).unwrap();
            }
            1 => {
                g.add_alias(&key, &format!("k{}", rng.random_range(0..i)))
                    .unwrap();
            }
            2 => {
                let items = (0..rng.random_range(0..4)).map(|_| pick(rng)).collect();
                g.add(&key, Comp::list(items)).unwrap();
            }
            _ => {
                let mut args: Vec<Comp> = (0..rng.random_range(0..4)).map(|_| pick(rng)).collect();
                if inline && rng.random_bool(0.3) {
                    args.push(Comp::task(f, vec![pick(rng), Comp::value(1)], vec![]));
                }
                g.add_task(&key, f, args, vec![]).unwrap();
            }
        }
    }
    let req: Vec<Value> = (0..rng.random_range(1..4))
        .map(|_| Value::str(&format!("k{}", rng.random_range(0..n))))
        .collect();
    (g, Value::list(req).unwrap())
}

#[test]
fn closures_agree_with_threads_on_random_dags() {
    let f = add_closure();
    let mut rng = SmallRng::seed_from_u64(7);
    for round in 0..60 {
        let (g, keys) = random_graph(&mut rng, &f, true);
        let expected = g.get(&keys, &threads()).unwrap();
        let workers = rng.random_range(1..5);
        let got = g.get(&keys, &procs(workers));
        assert_eq!(
            got.as_ref(),
            Ok(&expected),
            "round {round}, {workers} workers"
        );
    }
}

#[test]
fn plugin_tasks_agree_with_threads_on_random_dags() {
    let f = task("add");
    let mut rng = SmallRng::seed_from_u64(11);
    for round in 0..60 {
        // The plugin's add takes ints only: no lists of lists, so no literals but ints.
        let (g, keys) = random_int_graph(&mut rng, &f);
        let expected = g.get(&keys, &threads()).unwrap();
        let workers = rng.random_range(1..5);
        let got = g.get(&keys, &procs(workers));
        assert_eq!(
            got.as_ref(),
            Ok(&expected),
            "round {round}, {workers} workers"
        );
    }
}

/// A random DAG of int literals and `f` (a sum of ints) tasks.
fn random_int_graph(rng: &mut SmallRng, f: &Func) -> (Graph, Value) {
    let n = rng.random_range(1..120);
    let mut g = Graph::new();
    for i in 0..n {
        let key = format!("k{i}");
        if i == 0 || rng.random_bool(0.2) {
            g.add_value(&key, Value::Int(rng.random_range(0..100)))
                .unwrap();
        } else {
            let args = (0..rng.random_range(1..4))
                .map(|_| Comp::key(format!("k{}", rng.random_range(0..i))))
                .collect();
            g.add_task(&key, f, args, vec![]).unwrap();
        }
    }
    let req: Vec<Value> = (0..rng.random_range(1..4))
        .map(|_| Value::str(&format!("k{}", rng.random_range(0..n))))
        .collect();
    (g, Value::list(req).unwrap())
}

#[test]
fn a_million_long_chain_runs() {
    let n = 1_000_000;
    let g = common::counting_chain(&add_closure(), n);
    let (r, stats) = g.get_with_stats(&Value::str(&format!("c-{n}")), &procs(2));
    assert_eq!(r.unwrap(), Value::Int(n as i64));
    assert_eq!(stats.entries_run, n as u64 + 1);
    assert_eq!(stats.workers, 2);
}

/// A graph of plugin tasks: x = 1, y = inc(x), `bad` = `symbol`(), z = add(y, bad).
fn with_bad(symbol: &str) -> Graph {
    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    g.add_task("y", &task("inc"), vec![Comp::key("x")], vec![])
        .unwrap();
    g.add_task("bad", &task(symbol), vec![], vec![]).unwrap();
    g.add_task(
        "z",
        &task("add"),
        vec![Comp::key("y"), Comp::key("bad")],
        vec![],
    )
    .unwrap();
    g
}

#[test]
fn a_failing_task_is_named() {
    let mut g = with_bad("fail");
    g.add_task(
        "why",
        &task("fail"),
        vec![Comp::value(Value::str("no disk"))],
        vec![],
    )
    .unwrap();
    let e = g.get_key("why", &procs(2)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TaskFailed);
    assert_eq!(e.key.as_deref(), Some("why"));
    assert!(e.message.contains("no disk"), "{e}");
    // Closures fail the same way in forked workers.
    let mut g = Graph::new();
    g.add_task(
        "boom",
        &Func::new("boom", |c| c.fail("kaput")),
        vec![],
        vec![],
    )
    .unwrap();
    let e = g.get_key("boom", &procs(1)).unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::TaskFailed, Some("boom"))
    );
    assert!(e.message.contains("kaput"), "{e}");
}

#[test]
fn a_crashing_task_kills_its_worker_not_the_caller() {
    for (symbol, how) in [
        ("segfault", "SIGSEGV"),
        ("abort_now", "SIGABRT"),
        ("exit3", "exited with status 3"),
    ] {
        let g = with_bad(symbol);
        let e = g.get_key("z", &procs(2)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::WorkerDied, "{symbol}: {e}");
        assert_eq!(e.key.as_deref(), Some("bad"), "{symbol}: {e}");
        assert!(
            e.message.contains(how) && e.message.contains("'bad'"),
            "{symbol}: {e}"
        );
        // This process is alive, and the next get (the pool healed) works.
        assert_eq!(g.get_key("y", &procs(2)).unwrap(), Value::Int(2));
    }
}

#[test]
fn a_death_is_noticed_while_something_holds_the_workers_socket() {
    // The task's own child keeps the dead worker's end of the connection open for 3 s: the
    // worker's end is noticed by its process ending, not by the connection closing.
    let g = with_bad("fork_and_crash");
    let started = Instant::now();
    let e = g.get_key("z", &procs(1)).unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::WorkerDied, Some("bad"))
    );
    assert!(e.message.contains("SIGSEGV"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn closures_that_crash_are_isolated_too() {
    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    g.add_task(
        "crash",
        &Func::new("crash", |_| std::process::abort()),
        vec![Comp::key("x")],
        vec![],
    )
    .unwrap();
    let e = g.get_key("crash", &procs(1)).unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::WorkerDied, Some("crash"))
    );
    assert!(e.message.contains("SIGABRT"), "{e}");
}

#[test]
fn a_task_that_crashes_once_succeeds_on_retry() {
    let marker = scratch().join(format!("crash-once-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let mut g = Graph::new();
    // Enough tasks on both sides that other partitions (and their held results) exist.
    for i in 0..40 {
        g.add_task(
            &format!("a{i}"),
            &task("inc"),
            vec![Comp::value(Value::Int(i))],
            vec![],
        )
        .unwrap();
    }
    g.add_task(
        "flaky",
        &task("crash_once"),
        vec![
            Comp::value(Value::str(marker.to_str().unwrap())),
            Comp::value(Value::Int(100)),
        ],
        vec![],
    )
    .unwrap();
    let mut args: Vec<Comp> = (0..40).map(|i| Comp::key(format!("a{i}"))).collect();
    args.push(Comp::key("flaky"));
    g.add_task("total", &task("add"), args, vec![]).unwrap();
    let expected = Value::Int((1..=40).sum::<i64>() + 100);

    // No retries: the crash is the answer.
    let e = g.get_key("total", &procs(2)).unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::WorkerDied, Some("flaky"))
    );
    // One retry: the task runs again on a fresh worker, and the get succeeds.
    std::fs::remove_file(&marker).unwrap();
    let opts = Options {
        retries: 1,
        ..procs(2)
    };
    assert_eq!(g.get_key("total", &opts).unwrap(), expected);
    assert!(marker.exists());
    std::fs::remove_file(&marker).unwrap();

    // One worker holds every result between partitions; its crash loses them all, and the
    // ones still needed are made again from their inputs (more entries run than planned).
    let opts = Options {
        retries: 1,
        ..procs(1)
    };
    let (r, stats) = g.get_with_stats(&Value::str("total"), &opts);
    assert_eq!(r.unwrap(), expected);
    assert!(stats.entries_run > stats.entries, "{stats:?}");
    std::fs::remove_file(&marker).unwrap();
}

#[test]
fn retries_are_counted_per_task() {
    let g = with_bad("segfault");
    let opts = Options {
        retries: 2,
        ..procs(2)
    };
    let e = g.get_key("z", &opts).unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::WorkerDied, Some("bad"))
    );
    assert!(e.message.contains("3 tries"), "{e}");
}

#[test]
fn a_task_past_its_timeout_is_killed() {
    let mut g = Graph::new();
    g.add_task(
        "quick",
        &task("sleep_ms"),
        vec![Comp::value(Value::Int(1)), Comp::value(Value::Int(7))],
        vec![],
    )
    .unwrap();
    g.add_task(
        "slow",
        &task("sleep_ms"),
        vec![Comp::value(Value::Int(20_000)), Comp::value(Value::Int(1))],
        vec![],
    )
    .unwrap();
    let opts = Options {
        task_timeout: Some(Duration::from_millis(300)),
        ..procs(2)
    };
    let started = Instant::now();
    let e = g
        .get(
            &Value::list(vec![Value::str("quick"), Value::str("slow")]).unwrap(),
            &opts,
        )
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::WorkerDied, Some("slow"))
    );
    assert!(e.message.contains("timeout of 300 ms"), "{e}");
    // Tasks within the limit are not touched.
    assert_eq!(g.get_key("quick", &opts).unwrap(), Value::Int(7));
    // A timeout counts as a death: with a retry the task gets a second chance.
    let opts = Options {
        task_timeout: Some(Duration::from_millis(100)),
        retries: 1,
        ..procs(1)
    };
    let e = g.get_key("slow", &opts).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("slow"));
    assert!(e.message.contains("on each of 2 tries"), "{e}");
}

#[test]
fn cancelling_stops_the_run() {
    let mut g = Graph::new();
    for i in 0..8 {
        g.add_task(
            &format!("s{i}"),
            &task("sleep_ms"),
            vec![Comp::value(Value::Int(300)), Comp::value(Value::Int(i))],
            vec![],
        )
        .unwrap();
    }
    let keys = Value::list((0..8).map(|i| Value::str(&format!("s{i}"))).collect()).unwrap();
    let cancel = CancelToken::new();
    let opts = Options {
        cancel: Some(&cancel),
        ..procs(2)
    };
    let started = Instant::now();
    let e = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            cancel.cancel();
        });
        g.get(&keys, &opts).unwrap_err()
    });
    assert_eq!(e.kind, ErrorKind::Cancelled);
    // 8 x 300 ms on 2 workers is 1.2 s; cancelled, the running tasks finish and no more start.
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn pointers_cannot_cross_processes() {
    let mut g = Graph::new();
    g.add_task("p", &task("pointer"), vec![], vec![]).unwrap();
    let e = g.get_key("p", &procs(1)).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("p"));
    assert!(e.message.contains("threads scheduler"), "{e}");
    // A pointer literal in the graph cannot travel either.
    let mut g = Graph::new();
    g.add_value("lit", Value::pointer(8 as _, "thing", None))
        .unwrap();
    g.add_task("use", &add_closure(), vec![Comp::key("lit")], vec![])
        .unwrap();
    let e = g.get_key("use", &procs(1)).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("lit"));
    assert!(e.message.contains("threads scheduler"), "{e}");
    // A pointer used inside one partition never leaves it: an inline task's result.
    let mut g = Graph::new();
    let is_pointer = Func::new("is_pointer", |c| {
        c.ret(Value::Bool(c.arg(0).unwrap().as_pointer().is_some()))
    });
    g.add_task(
        "ok",
        &is_pointer,
        vec![Comp::task(&task("pointer"), vec![], vec![])],
        vec![],
    )
    .unwrap();
    assert_eq!(g.get_key("ok", &procs(2)).unwrap(), Value::Bool(true));
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    inside: AtomicUsize,
}

impl Callbacks for Recorder {
    fn start(&self, n: usize) {
        self.events.lock().unwrap().push(format!("start {n}"));
    }
    fn pretask(&self, key: KeyRef<'_>, _w: usize) {
        assert_eq!(self.inside.fetch_add(1, Ordering::SeqCst), 0);
        self.events
            .lock()
            .unwrap()
            .push(format!("pre {}", key.as_str()));
    }
    fn posttask(&self, key: KeyRef<'_>, ok: bool, _w: usize) {
        self.events
            .lock()
            .unwrap()
            .push(format!("post {} {ok}", key.as_str()));
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
    fn finish(&self, failed: bool) {
        self.events.lock().unwrap().push(format!("finish {failed}"));
    }
}

#[test]
fn callbacks_progress_stats_and_profile() {
    let f = add_closure();
    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    for i in 0..50 {
        g.add_task(&format!("t{i}"), &f, vec![Comp::key("x")], vec![])
            .unwrap();
    }
    let all: Vec<Comp> = (0..50).map(|i| Comp::key(format!("t{i}"))).collect();
    g.add_task("sum", &f, all, vec![]).unwrap();
    let rec = Recorder::default();
    let progress = Progress::new();
    let profiler = Profiler::new();
    let opts = Options {
        callbacks: Some(&rec),
        progress: Some(&progress),
        profiler: Some(&profiler),
        measure_memory: true,
        ..procs(2)
    };
    let (r, stats) = g.get_with_stats(&Value::str("sum"), &opts);
    assert_eq!(r.unwrap(), Value::Int(50));
    let events = rec.events.lock().unwrap().clone();
    assert_eq!(events.first().map(String::as_str), Some("start 51"));
    assert_eq!(events.last().map(String::as_str), Some("finish false"));
    let pre = events.iter().filter(|e| e.starts_with("pre ")).count();
    let post = events.iter().filter(|e| e.ends_with(" true")).count();
    assert_eq!((pre, post), (51, 51));
    assert_eq!((progress.done(), progress.total()), (52, 52));
    assert_eq!((stats.entries, stats.entries_run), (52, 52));
    assert!(stats.peak_held > 0);
    let profile = profiler.profile();
    // Every entry, literals too (as under threads).
    assert_eq!(profile.tasks.len(), 52);
    assert!(profile.tasks.iter().all(|t| t.ok && t.end >= t.start));
    assert!(profile
        .tasks
        .iter()
        .any(|t| t.key == "sum" && t.func == "add"));

    // A crash is reported too: its task's posttask says it failed, and finish(true).
    let g = with_bad("segfault");
    let rec = Recorder::default();
    let opts = Options {
        callbacks: Some(&rec),
        ..procs(1)
    };
    g.get_key("z", &opts).unwrap_err();
    let events = rec.events.lock().unwrap().clone();
    assert!(events.contains(&"post bad false".to_string()), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("finish true"));
}

#[test]
fn results_move_between_workers() {
    // Wide fan-ins over many partitions: results made in one worker are read in another.
    let f = task("add");
    let mut g = Graph::new();
    for i in 0..2000 {
        g.add_value(&format!("x{i}"), Value::Int(i)).unwrap();
        g.add_task(
            &format!("y{i}"),
            &f,
            vec![Comp::key(format!("x{i}"))],
            vec![],
        )
        .unwrap();
    }
    for j in 0..10 {
        let args = (0..2000)
            .filter(|i| i % 10 == j)
            .map(|i| Comp::key(format!("y{i}")))
            .collect();
        g.add_task(&format!("s{j}"), &f, args, vec![]).unwrap();
    }
    let all = (0..10).map(|j| Comp::key(format!("s{j}"))).collect();
    g.add_task("total", &f, all, vec![]).unwrap();
    let keys = Value::list(vec![Value::str("total"), Value::str("y1999")]).unwrap();
    for workers in [2, 3] {
        assert_eq!(
            g.get(&keys, &procs(workers)).unwrap(),
            Value::list(vec![Value::Int((0..2000).sum()), Value::Int(1999)]).unwrap()
        );
    }
    // Large results cross intact.
    let mut g = Graph::new();
    g.add_task(
        "big",
        &task("blob"),
        vec![Comp::value(Value::Int(3 << 20))],
        vec![],
    )
    .unwrap();
    let r = g.get_key("big", &procs(1)).unwrap();
    let b = r.as_bytes().unwrap();
    assert_eq!(b.len(), 3 << 20);
    assert!(b.iter().enumerate().all(|(i, &x)| x == i as u8));
}

#[test]
fn concurrent_gets_each_have_their_workers() {
    // Closures (each get forks its own workers) and plugin tasks (pooled workers), from
    // several threads at once, on one graph.
    let f = add_closure();
    let inc = task("inc");
    let mut g = Graph::new();
    g.add_value("x", Value::Int(1)).unwrap();
    for i in 0..200 {
        g.add_task(
            &format!("c{i}"),
            &f,
            vec![Comp::key("x"), Comp::value(i)],
            vec![],
        )
        .unwrap();
        g.add_task(&format!("p{i}"), &inc, vec![Comp::value(i)], vec![])
            .unwrap();
    }
    let closures = Value::list((0..200).map(|i| Value::str(&format!("c{i}"))).collect()).unwrap();
    let plugins = Value::list((0..200).map(|i| Value::str(&format!("p{i}"))).collect()).unwrap();
    let expected: Vec<Value> = (0..200).map(|i| Value::Int(i + 1)).collect();
    let expected = Value::list(expected).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (g, keys, expected) =
                (&g, if t % 2 == 0 { &closures } else { &plugins }, &expected);
            s.spawn(move || {
                for _ in 0..5 {
                    assert_eq!(g.get(keys, &procs(2)).as_ref(), Ok(expected));
                }
            });
        }
    });
}

#[test]
fn an_empty_request_and_a_literal() {
    let mut g = Graph::new();
    g.add_value("x", Value::str("hi")).unwrap();
    assert_eq!(
        g.get(&Value::list(vec![]).unwrap(), &procs(2)).unwrap(),
        Value::list(vec![]).unwrap()
    );
    assert_eq!(g.get_key("x", &procs(2)).unwrap(), Value::str("hi"));
}

#[test]
fn a_processes_get_inside_a_forked_worker() {
    // Workers are started from a spawner thread, which a forked worker does not have: a
    // processes get inside its task starts its own workers itself (and does not wait for a
    // thread that is not there).
    let inner = Func::new("inner", |c| {
        let mut g = Graph::new();
        g.add_task(
            "k",
            &add_closure(),
            vec![Comp::value(Value::Int(5))],
            vec![],
        )
        .unwrap();
        match g.get_key("k", &procs(1)) {
            Ok(v) => c.ret(v),
            Err(e) => c.fail(e.message),
        }
    });
    let mut g = Graph::new();
    g.add_task("outer", &inner, vec![], vec![]).unwrap();
    assert_eq!(g.get_key("outer", &procs(1)).unwrap(), Value::Int(5));
}

// ---- checks that need a process to themselves ----

/// Runs the ignored test `name` alone in a fresh copy of this binary, with `env`.
fn alone(name: &str, env: &[(&str, &str)]) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} failed:\n{text}");
    assert!(text.contains("1 passed"), "{name} did not run:\n{text}");
}

#[test]
fn no_processes_or_descriptors_leak() {
    alone("leak_check", &[]);
}

#[test]
fn a_missing_worker_executable_is_a_clear_error() {
    alone(
        "exec_mode_without_daskr",
        &[
            ("DASKR_PROCESSES_START", "exec"),
            ("DASKR_WORKER", "/nonexistent/daskr"),
        ],
    );
}

#[test]
#[ignore = "run alone by a_missing_worker_executable_is_a_clear_error"]
fn exec_mode_without_daskr() {
    let e = with_bad("inc").get_key("y", &procs(1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(
        e.message.contains("DASKR_WORKER") && e.message.contains("/nonexistent/daskr"),
        "{e}"
    );
    assert!(children().is_empty());
}

#[test]
fn exec_workers_run_plugin_tasks() {
    alone(
        "exec_mode",
        &[
            ("DASKR_PROCESSES_START", "exec"),
            ("DASKR_WORKER", env!("CARGO_BIN_EXE_daskr")),
        ],
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// This process's children (any thread's), from /proc.
fn children() -> Vec<u32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = t.unwrap().path().join("children");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        out.extend(text.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
    }
    out
}

fn state_of(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|s| s.trim().chars().next())
        .unwrap_or('?')
}

#[test]
#[ignore = "run alone by no_processes_or_descriptors_leak"]
fn leak_check() {
    let _ = crashy();
    let fds = open_fds();
    assert!(children().is_empty());
    // Plugin gets reuse the pool's workers: the same processes answer twice.
    let mut g = Graph::new();
    for i in 0..8 {
        g.add_task(&format!("p{i}"), &task("pid"), vec![], vec![])
            .unwrap();
    }
    let keys = Value::list((0..8).map(|i| Value::str(&format!("p{i}"))).collect()).unwrap();
    let pids = |v: Value| -> Vec<i64> {
        let mut p: Vec<i64> = v
            .as_list()
            .unwrap()
            .iter()
            .map(|x| x.as_int().unwrap())
            .collect();
        p.sort();
        p.dedup();
        p
    };
    let first = pids(g.get(&keys, &procs(2)).unwrap());
    assert_eq!(first.len(), 2);
    assert!(!first.contains(&(std::process::id() as i64)));
    let second = pids(g.get(&keys, &procs(2)).unwrap());
    assert_eq!(first, second, "the pool's workers are reused");
    let mut kids = children();
    kids.sort();
    assert_eq!(kids.iter().map(|&p| p as i64).collect::<Vec<_>>(), first);

    // Crashes of every kind, retries, timeouts, failures, closures (forked per get).
    for symbol in ["segfault", "abort_now", "exit3", "fail"] {
        with_bad(symbol).get_key("z", &procs(2)).unwrap_err();
    }
    let opts = Options {
        retries: 1,
        ..procs(2)
    };
    with_bad("segfault").get_key("z", &opts).unwrap_err();
    let mut g2 = Graph::new();
    g2.add_task(
        "slow",
        &task("sleep_ms"),
        vec![Comp::value(Value::Int(10_000)), Comp::value(Value::Int(1))],
        vec![],
    )
    .unwrap();
    let opts = Options {
        task_timeout: Some(Duration::from_millis(100)),
        ..procs(2)
    };
    g2.get_key("slow", &opts).unwrap_err();
    let mut g3 = Graph::new();
    g3.add_task(
        "c",
        &add_closure(),
        vec![Comp::value(Value::Int(4))],
        vec![],
    )
    .unwrap();
    assert_eq!(g3.get_key("c", &procs(3)).unwrap(), Value::Int(4));
    // The pool healed: the dead were replaced, and it still answers.
    let after = pids(g.get(&keys, &procs(2)).unwrap());
    assert_eq!(after.len(), 2);
    // An idle worker killed from outside is noticed and replaced.
    // SAFETY: a plain kill of our own child.
    unsafe { libc::kill(after[0] as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(50));
    let again = pids(g.get(&keys, &procs(2)).unwrap());
    assert_eq!(again.len(), 2);
    assert!(!again.contains(&after[0]));
    // Only live idle workers remain (no zombies), at most as many as the last get used.
    let kids = children();
    assert!(kids.len() <= 3, "{kids:?}");
    for &k in &kids {
        assert_ne!(state_of(k), 'Z', "zombie {k}");
    }
    daskr::sched::processes::shutdown_workers();
    assert!(children().is_empty(), "{:?}", children());
    assert_eq!(open_fds(), fds, "descriptors leaked");
}

#[test]
#[ignore = "run alone by exec_workers_run_plugin_tasks"]
fn exec_mode() {
    // Plugin graphs run in exec'd `daskr worker` processes, with the same results.
    let f = task("add");
    let mut rng = SmallRng::seed_from_u64(3);
    for round in 0..15 {
        let (g, keys) = random_int_graph(&mut rng, &f);
        let expected = g.get(&keys, &threads()).unwrap();
        let workers = rng.random_range(1..4);
        assert_eq!(
            g.get(&keys, &procs(workers)).as_ref(),
            Ok(&expected),
            "round {round}"
        );
    }
    // Crashes are isolated and named there too.
    let e = with_bad("segfault").get_key("z", &procs(2)).unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::WorkerDied, Some("bad"))
    );
    assert!(e.message.contains("SIGSEGV"), "{e}");
    // Workers are not forks of this process.
    let mut g = Graph::new();
    g.add_task("p", &task("pid"), vec![], vec![]).unwrap();
    let pid = g.get_key("p", &procs(1)).unwrap().as_int().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("daskr"), "{}", exe.display());
    // Functions of this process cannot go to such workers: a clear error naming the key.
    let mut g = Graph::new();
    g.add_task("local", &add_closure(), vec![], vec![]).unwrap();
    let e = g.get_key("local", &procs(1)).unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ErrorKind::InvalidArgument, Some("local"))
    );
    assert!(
        e.message.contains("plugin tasks") && e.message.contains("threads scheduler"),
        "{e}"
    );
    daskr::sched::processes::shutdown_workers();
    assert!(children().is_empty());
}

#[test]
fn pooled_workers_outlive_the_thread_that_started_them() {
    alone("pool_across_threads", &[]);
    alone(
        "pool_across_threads",
        &[
            ("DASKR_PROCESSES_START", "exec"),
            ("DASKR_WORKER", env!("CARGO_BIN_EXE_daskr")),
        ],
    );
}

#[test]
#[ignore = "run alone by pooled_workers_outlive_the_thread_that_started_them"]
fn pool_across_threads() {
    // Workers end with their parent: the kernel's parent-death signal, whose "parent" is the
    // thread that started the worker. They are started from a thread that lives as long as the
    // process, so a worker pooled by a get on a thread that has since exited still serves.
    let mut g = Graph::new();
    g.add_task("p", &task("pid"), vec![], vec![]).unwrap();
    let g = &g;
    let first = std::thread::scope(|s| s.spawn(|| g.get_key("p", &procs(1))).join())
        .unwrap()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(g.get_key("p", &procs(1)).unwrap(), first);
    }
    daskr::sched::processes::shutdown_workers();
    assert!(children().is_empty());
}

/// Kills worker `pid` from the test (the caller's) process and waits until it is a zombie:
/// dead, its descriptors closed, not yet reaped — what the scheduler sees of a worker that
/// died a moment ago and that it has not noticed yet.
fn kill_and_wait_dead(pid: i32) {
    // SAFETY: a worker process of this test; the scheduler reaps it.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // The state follows the command name, which is in parentheses.
        let state = stat.rsplit(')').next().unwrap().trim_start().chars().next();
        if state == Some('Z') {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Kills the worker that ran `h` the first time the caller hears it finished.
struct KillAfterH {
    dir: PathBuf,
    killed: std::sync::atomic::AtomicBool,
}

impl Callbacks for KillAfterH {
    fn posttask(&self, key: KeyRef<'_>, _ok: bool, _w: usize) {
        match key.as_str() {
            // Both of `y`'s other inputs are made (on the other worker): let `h` finish.
            "a2" => std::fs::write(self.dir.join("go"), "").unwrap(),
            "h" if !self.killed.swap(true, Ordering::SeqCst) => {
                let pid = std::fs::read_to_string(self.dir.join("h.pid")).unwrap();
                kill_and_wait_dead(pid.parse().unwrap());
            }
            _ => {}
        }
    }
}

#[test]
fn a_worker_that_died_before_its_fetch_was_sent_is_noticed() {
    // Regression (the killed-worker stress hung): `y` reads `h` (on worker 0) and `a1`, `a2`
    // (on worker 1), so it goes to worker 1, which must fetch `h` from worker 0. Worker 0 is
    // dead by then, unnoticed: sending it the fetch fails. That death used to be handled
    // while the poll set was being built — it gave worker 1's partition back to the ready
    // queue and started a replacement for worker 0, neither of which that poll watched — and
    // the get then polled an idle worker forever.
    let dir = std::env::temp_dir().join(format!("daskr-fetch-dead-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.clone();
    let h = Func::new("h", move |c| {
        std::fs::write(d.join("h.pid"), std::process::id().to_string()).unwrap();
        while !d.join("go").exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        c.ret(Value::Int(1));
    });
    let mut g = Graph::new();
    g.add_task("h", &h, vec![], vec![]).unwrap();
    let f = add_closure();
    g.add_task("a1", &f, vec![Comp::value(10)], vec![]).unwrap();
    g.add_task("a2", &f, vec![Comp::value(100)], vec![])
        .unwrap();
    let args = vec![Comp::key("h"), Comp::key("a1"), Comp::key("a2")];
    g.add_task("y", &f, args, vec![]).unwrap();
    // Leaked: a get that hangs keeps it borrowed.
    let cb: &'static KillAfterH = Box::leak(Box::new(KillAfterH {
        dir: dir.clone(),
        killed: Default::default(),
    }));
    // One retry: should the plan ever order `h` after `a1` and `a2`, the dead worker would
    // hold two of `y`'s inputs and be given `y` itself — a death on a run, not a fetch, which
    // is a failure without a retry.
    let opts = Options {
        callbacks: Some(cb),
        retries: 1,
        ..procs(2)
    };
    // The lost `h` is made again (its worker died between tasks), so the get gives the
    // right result.
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(g.get_key("y", &opts)));
    // A hang fails the test rather than leaving the run stuck (no timing is asserted: the
    // get takes milliseconds).
    let r = result
        .recv_timeout(Duration::from_secs(300))
        .expect("the get never returned");
    assert_eq!(r.unwrap(), Value::Int(111));
    assert!(
        cb.killed.load(Ordering::SeqCst),
        "the worker running h was killed"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
