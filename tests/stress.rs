//! Stress: many random DAGs with random failures and cancellations at random moments, on
//! sync, threads and processes, each compared with sync, with every pointer value's
//! destructor counted; gets on one graph from 8 threads at once; processes runs whose
//! workers are killed at random. tests/c/random_dags.c does the same shapes through the C
//! ABI on sync and threads; this adds processes, cancellation and killed workers.
//!
//! Scale: DASKR_STRESS_GRAPHS random graphs (default 300 here; `make stress` runs 10,000),
//! DASKR_STRESS_KILL_GRAPHS graphs with killed workers (default 30; `make stress` runs 1,000),
//! DASKR_STRESS_SEED for another seed. Every assertion is about results, error kinds and
//! counts, never timings: a cancellation that comes after the run finished just means the
//! result must be the right one.

include!(concat!(env!("OUT_DIR"), "/c_abi_symbols.rs"));

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use daskr::{CancelToken, Comp, ErrorKind, Func, Graph, Options, Scheduler, Value};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

static CREATED: AtomicI64 = AtomicI64::new(0);
static DESTROYED: AtomicI64 = AtomicI64::new(0);

unsafe extern "C" fn destroy(p: *mut c_void) {
    DESTROYED.fetch_add(1, Ordering::SeqCst);
    drop(Box::from_raw(p.cast::<i64>()));
}

fn pointer(n: i64) -> Value {
    CREATED.fetch_add(1, Ordering::SeqCst);
    Value::pointer(Box::into_raw(Box::new(n)).cast(), "n", Some(destroy))
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn number(v: &Value) -> i64 {
    if let Some(i) = v.as_int() {
        return i;
    }
    if let Some(p) = v.as_pointer() {
        // SAFETY: every pointer value here holds a Box<i64> (`pointer`).
        return unsafe { *p.ptr().cast::<i64>() };
    }
    v.as_list()
        .map_or(0, |l| l.iter().map(number).fold(0i64, i64::wrapping_add))
}

fn args_sum(c: &daskr::Call<'_>) -> i64 {
    (0..c.nargs())
        .map(|i| number(c.arg(i).unwrap()))
        .fold(0i64, |a, b| a.wrapping_mul(31).wrapping_add(b))
}

/// The functions of the random graphs: sum, make a pointer, fail, and (processes only) kill
/// the worker the first time a given key runs.
struct Funcs {
    sum: Func,
    ptr: Func,
    fail: Func,
    kill_once: Func,
}

fn funcs(marks: PathBuf) -> Funcs {
    Funcs {
        sum: Func::new("sum", |c| {
            let s = args_sum(c);
            c.ret(Value::Int(s));
        }),
        ptr: Func::new("ptr", |c| {
            let s = args_sum(c);
            c.ret(pointer(s));
        }),
        fail: Func::new("fail", |c| c.fail("failed on purpose")),
        kill_once: Func::new("kill_once", move |c| {
            // The first run of this key (a marker file per key) kills its worker process;
            // a retry finds the marker and computes.
            let mark = marks.join(c.key());
            if std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&mark)
                .is_ok()
            {
                // SAFETY: kills this (worker) process.
                unsafe { libc::raise(libc::SIGKILL) };
            }
            let s = args_sum(c);
            c.ret(Value::Int(s));
        }),
    }
}

#[derive(Clone, Copy)]
struct Shape {
    pointers: bool,
    fail: bool,
    kills: bool,
}

/// A random DAG of 2..60 entries: literals, tasks on earlier entries (inline tasks and lists
/// among the arguments), now and then a failing task or a worker-killing one; returns the
/// graph and a request for a few of its keys.
fn random_graph(rng: &mut SmallRng, f: &Funcs, shape: Shape) -> (Graph, Value) {
    let mut g = Graph::new();
    let n = rng.random_range(2..60);
    for i in 0..n {
        let key = format!("k{i}");
        if i == 0 || rng.random_bool(0.15) {
            g.add_value(&key, Value::Int(rng.random_range(-50..50)))
                .unwrap();
            continue;
        }
        let mut args = Vec::new();
        for _ in 0..rng.random_range(0..4) {
            let dep = format!("k{}", rng.random_range(0..i));
            args.push(match rng.random_range(0..6) {
                0 => Comp::list(vec![Comp::key(dep), Comp::value(Value::Int(1))]),
                1 => Comp::task(&f.sum, vec![Comp::key(dep)], vec![]),
                _ => Comp::key(dep),
            });
        }
        let func = if shape.fail && rng.random_bool(0.03) {
            &f.fail
        } else if shape.kills && rng.random_bool(0.1) {
            &f.kill_once
        } else if shape.pointers && rng.random_bool(0.3) {
            &f.ptr
        } else {
            &f.sum
        };
        g.add(&key, Comp::task(func, args, vec![])).unwrap();
    }
    let keys: Vec<Value> = (0..rng.random_range(1..4))
        .map(|_| Value::str(&format!("k{}", rng.random_range(0..n))))
        .collect();
    (g, Value::list(keys).unwrap())
}

fn opts(s: Scheduler, workers: usize) -> Options<'static> {
    Options {
        scheduler: s,
        num_workers: workers,
        ..Options::default()
    }
}

/// The same value, pointers compared by what they point to.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_pointer(), b.as_pointer(), a.as_list(), b.as_list()) {
        (Some(_), Some(_), _, _) => number(a) == number(b),
        (_, _, Some(x), Some(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        _ => a == b,
    }
}

fn scratch(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .unwrap()
        .join(format!("stress-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn random_dags_with_failures_and_cancellations_agree_with_sync() {
    let graphs = env("DASKR_STRESS_GRAPHS", 300);
    let mut rng = SmallRng::seed_from_u64(env("DASKR_STRESS_SEED", 18));
    let f = funcs(scratch("unused"));
    let (mut runs, mut cancelled, mut failed) = (0u64, 0u64, 0u64);
    for i in 0..graphs {
        // Processes on every 10th graph (a fork per worker costs more than the whole graph).
        let processes = i % 10 == 0;
        let shape = Shape {
            pointers: !processes,
            fail: rng.random_bool(0.3),
            kills: false,
        };
        let (g, keys) = random_graph(&mut rng, &f, shape);
        let want = g.get(&keys, &opts(Scheduler::Sync, 1));
        // The pointers sync's result holds, alive until it is dropped.
        let held = CREATED.load(Ordering::SeqCst) - DESTROYED.load(Ordering::SeqCst);
        let mut schedulers = vec![
            (Scheduler::Sync, 1),
            (Scheduler::Threads, rng.random_range(1..5)),
        ];
        if processes {
            schedulers.push((Scheduler::Processes, 2));
        }
        for (s, workers) in schedulers {
            // Cancelled from another thread at a random moment (often before, during or
            // after the run: any is fine) or not at all.
            let token = Arc::new(CancelToken::new());
            let delay = rng.random_range(0..400u64);
            let canceller = rng.random_bool(0.3).then(|| {
                let token = token.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_micros(delay));
                    token.cancel();
                })
            });
            let o = Options {
                cancel: Some(&token),
                ..opts(s, workers)
            };
            let got = g.get(&keys, &o);
            if let Some(c) = canceller {
                c.join().unwrap();
            }
            runs += 1;
            match (&want, &got) {
                (_, Err(e)) if e.kind == ErrorKind::Cancelled => {
                    assert!(
                        token.is_cancelled(),
                        "graph {i} {s:?}: cancelled, never asked"
                    );
                    cancelled += 1;
                }
                (Ok(w), Ok(v)) => assert!(same(w, v), "graph {i} {s:?}: {v:?} != {w:?}"),
                (Err(w), Err(e)) => {
                    assert_eq!(w.kind, e.kind, "graph {i} {s:?}: {e} vs sync: {w}");
                    assert!(e.key.is_some(), "graph {i} {s:?}: no key named: {e}");
                    failed += 1;
                }
                _ => panic!("graph {i} {s:?}: {got:?}, sync gave {want:?}"),
            }
            drop(got);
            // Every pointer made by this run's tasks was released, whatever the outcome.
            let live = CREATED.load(Ordering::SeqCst) - DESTROYED.load(Ordering::SeqCst);
            assert_eq!(
                live, held,
                "graph {i} {s:?}: pointer values never destroyed"
            );
        }
        drop(want);
        assert_eq!(
            CREATED.load(Ordering::SeqCst),
            DESTROYED.load(Ordering::SeqCst),
            "graph {i}: pointer values alive after every result was dropped"
        );
    }
    eprintln!(
        "stress: {graphs} graphs, {runs} runs ({cancelled} cancelled, {failed} failed as sync did)"
    );
}

#[test]
fn eight_threads_get_from_one_graph_at_once() {
    let mut rng = SmallRng::seed_from_u64(env("DASKR_STRESS_SEED", 8));
    let f = funcs(scratch("unused8"));
    let shape = Shape {
        pointers: false,
        fail: true,
        kills: false,
    };
    for round in 0..10 {
        let (g, _) = random_graph(&mut rng, &f, shape);
        let n = g.len();
        let requests: Vec<Value> = (0..8)
            .map(|_| {
                Value::list(
                    (0..4)
                        .map(|_| Value::str(&format!("k{}", rng.random_range(0..n))))
                        .collect(),
                )
                .unwrap()
            })
            .collect();
        let want: Vec<_> = requests
            .iter()
            .map(|k| g.get(k, &opts(Scheduler::Sync, 1)).map_err(|e| e.kind))
            .collect();
        std::thread::scope(|s| {
            for (t, (keys, want)) in requests.iter().zip(&want).enumerate() {
                let g = &g;
                s.spawn(move || {
                    for rep in 0..20 {
                        let sched = if (t + rep) % 2 == 0 {
                            Scheduler::Threads
                        } else {
                            Scheduler::Sync
                        };
                        let got = g.get(keys, &opts(sched, 2)).map_err(|e| e.kind);
                        assert_eq!(&got, want, "round {round} thread {t} rep {rep} {sched:?}");
                    }
                });
            }
        });
    }
}

#[test]
fn processes_runs_whose_workers_are_killed_at_random() {
    // Its own knob: each graph forks workers for two gets and loses some to kills. (At 1,000
    // graphs this once hung: a worker found dead while its fetch was being sent —
    // tests/processes.rs `a_worker_that_died_before_its_fetch_was_sent_is_noticed`.)
    let graphs = env("DASKR_STRESS_KILL_GRAPHS", 30);
    let mut rng = SmallRng::seed_from_u64(env("DASKR_STRESS_SEED", 9));
    let shape = Shape {
        pointers: false,
        fail: false,
        kills: true,
    };
    let (mut died, mut recovered) = (0, 0);
    for i in 0..graphs.max(3) {
        let marks = scratch(&format!("kills{i}"));
        let f = funcs(marks.clone());
        let (g, keys) = random_graph(&mut rng, &f, shape);
        // What the graph computes when nothing dies: every marker made first, so that sync,
        // which runs kill_once in this very process, computes instead of killing it.
        let want = {
            for k in 0..g.len() {
                std::fs::write(marks.join(format!("k{k}")), "").unwrap();
            }
            let sync = g.get(&keys, &opts(Scheduler::Sync, 1));
            std::fs::remove_dir_all(&marks).unwrap();
            std::fs::create_dir_all(&marks).unwrap();
            sync
        };
        // With retries, a worker killed once per key still gives the result.
        let o = Options {
            retries: 100,
            ..opts(Scheduler::Processes, 2)
        };
        let got = g.get(&keys, &o);
        match (&want, &got) {
            (Ok(w), Ok(v)) => {
                assert_eq!(w, v, "graph {i}");
                recovered += 1;
            }
            _ => panic!("graph {i}: {got:?}, sync gave {want:?}"),
        }
        // Without retries, a kill is worker_died naming the key (or the run never needed one).
        std::fs::remove_dir_all(&marks).unwrap();
        std::fs::create_dir_all(&marks).unwrap();
        match g.get(&keys, &opts(Scheduler::Processes, 2)) {
            Ok(v) => assert_eq!(Ok(&v), want.as_ref().map_err(|_| ()), "graph {i}"),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::WorkerDied, "graph {i}: {e}");
                let key = e.key.as_deref().expect("worker_died names the key");
                assert!(
                    marks.join(key).exists(),
                    "graph {i}: {key} never killed its worker"
                );
                died += 1;
            }
        }
        std::fs::remove_dir_all(&marks).unwrap();
    }
    eprintln!("stress: killed workers: {recovered} recovered with retries, {died} worker_died");
}
