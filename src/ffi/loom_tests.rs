//! Model checks, under every interleaving `loom` can find (and its model of the C++11 memory
//! orderings), of the schedulers' lock-free primitives — the code they run, not a copy: the
//! primitives take their atomics from src/sync.rs, which is loom's in this build.
//! `make test-loom` runs them (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom_tests`).
//!
//! - `count_down`, with the data it guards: a result read by its consumers and freed by the
//!   one that releases the last count (skipping the locked decrement when it sees it is
//!   last); a task's inputs handed in one at a time and in a batch (the threads scheduler's
//!   fan-in), the task run by whoever hands in the last;
//! - `GraphLock`: readers share the graph, a writer is alone and never waits, a reader waits
//!   a writer out;
//! - `Sleep`, the threads scheduler's parking: no wake-up is lost — a worker going to sleep
//!   as another makes work visible either sees the work or is woken (a lost one would leave
//!   it asleep for ever, which loom reports as a deadlock), and the run's end wakes them all;
//! - the `threads` scheduler itself, running real gets of a four-task diamond on two workers
//!   (the caller and a loom thread): its ready queues (a task pushed once and popped once, by
//!   its worker or a thief; push then wake, count itself a sleeper then look once more), the
//!   last task ending the run for both workers; **first failure wins** (two tasks failing at
//!   once: one `task_failed` naming one of them, every value freed once; a failure waking a
//!   worker asleep with nothing to do; `FirstFailure` alone keeping one of two errors and
//!   dropping the other once); **cancellation** racing the
//!   run, under `threads` and `sync` (the result or `cancelled`, never both or neither, every
//!   value freed once); the **memory budget** holding leaves back on a tree of sums without
//!   a deadlock, the peak held within the budget plus one. Each of these asserts that its race
//!   went both ways in some interleaving (a stolen task and a kept one, either error
//!   reported, both outcomes).
//!
//! The data is a `loom::cell::UnsafeCell`, which fails the model on any access not ordered
//! by happens-before with a conflicting one. What the scheduler models do not see: the
//! process-wide pool (in a loom build `pool::scoped` starts loom threads for the run), and
//! the scheduler's std atomics (pending inputs, consumer counts, the initially-ready cursor),
//! which loom does not interleave — the counts' protocol is `count_down`'s, checked above.

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU32;
use loom::sync::Arc;
use loom::thread;

use super::graph_lock::GraphLock;
use crate::graph::Graph;
use crate::run::count_down;
use crate::sched::sleep::Sleep;

/// Every interleaving with at most `PREEMPTIONS` preemptions (loom's bounded search: most
/// concurrency bugs need two or three; unbounded, the three-thread models take hours).
const PREEMPTIONS: usize = 3;

/// Checks `f` under every interleaving (up to the bound); returns how many it ran.
fn model(f: impl Fn() + Sync + Send + 'static) -> usize {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(PREEMPTIONS);
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    b.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
    println!("{runs} interleavings");
    runs
}

/// Outcomes seen across a model's interleavings, to show the race was explored (each
/// outcome reached by some interleaving), not only run one way.
#[derive(Default)]
struct Seen(std::sync::Mutex<std::collections::BTreeSet<String>>);

impl Seen {
    fn note(&self, what: impl Into<String>) {
        self.0.lock().unwrap().insert(what.into());
    }
    fn all(&self, expected: &[&str]) {
        let seen = self.0.lock().unwrap();
        for e in expected {
            assert!(
                seen.contains(*e),
                "no interleaving gave {e:?}; seen: {seen:?}"
            );
        }
    }
}

/// `model` for a body that notes its outcomes: each of `expected` must be noted by some
/// interleaving (the race was explored both ways, not only run one way).
fn model_reaching(expected: &'static [&'static str], f: impl Fn(&Seen) + Sync + Send + 'static) {
    let seen = std::sync::Arc::new(Seen::default());
    let noted = seen.clone();
    model(move || f(&noted));
    seen.all(expected);
}

/// A result slot with `consumers` readers: each reads it, then counts down; the one that
/// released the last count frees it. Exactly one frees it, after every read.
fn release_after_reads(consumers: u32) {
    model(move || {
        let slot = Arc::new(UnsafeCell::new(Some(42u64)));
        let count = Arc::new(AtomicU32::new(consumers));
        let freed = Arc::new(AtomicU32::new(0));
        let workers: Vec<_> = (0..consumers)
            .map(|_| {
                let (slot, count, freed) = (slot.clone(), count.clone(), freed.clone());
                thread::spawn(move || {
                    // SAFETY (checked by loom): the read is ordered before the take.
                    let v = slot.with(|p| unsafe { *p });
                    assert_eq!(v, Some(42), "a consumer read a freed result");
                    if count_down(&*count, 1) {
                        slot.with_mut(|p| unsafe { *p = None });
                        freed.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(freed.load(loom::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(slot.with(|p| unsafe { *p }), None);
    });
}

#[test]
fn loom_a_result_is_freed_once_after_both_consumers_read_it() {
    release_after_reads(2);
}

#[test]
fn loom_a_result_is_freed_once_after_three_consumers_read_it() {
    release_after_reads(3);
}

/// A task with three inputs: one producer hands in one (count 1), another two at once (a
/// fan-in batch, count 2). Each writes its inputs first; whoever hands in the last runs the
/// task, reading all three — after their writes.
#[test]
fn loom_the_last_input_handed_in_runs_the_task_after_every_write() {
    model(|| {
        let inputs = Arc::new([
            UnsafeCell::new(0u32),
            UnsafeCell::new(0),
            UnsafeCell::new(0),
        ]);
        let pending = Arc::new(AtomicU32::new(3));
        let runs = Arc::new(AtomicU32::new(0));
        let producer = |first: usize, n: u32| {
            let (inputs, pending, runs) = (inputs.clone(), pending.clone(), runs.clone());
            thread::spawn(move || {
                for i in first..first + n as usize {
                    inputs[i].with_mut(|p| unsafe { *p = i as u32 + 1 });
                }
                if count_down(&*pending, n) {
                    let sum: u32 = inputs.iter().map(|c| c.with(|p| unsafe { *p })).sum();
                    assert_eq!(sum, 6, "the task ran before an input was written");
                    runs.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        let a = producer(0, 1);
        let b = producer(1, 2);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(runs.load(loom::sync::atomic::Ordering::Relaxed), 1);
    });
}

/// The model has teeth: the same protocol with the load Relaxed instead of Acquire lets the
/// freeing consumer's take race with another's read, and loom says so.
#[test]
#[should_panic(expected = "Causality violation")]
fn loom_a_relaxed_skip_would_race() {
    fn broken(count: &AtomicU32, n: u32) -> bool {
        use loom::sync::atomic::Ordering::*;
        if count.load(Relaxed) == n {
            count.store(0, Relaxed);
            return true;
        }
        count.fetch_sub(n, AcqRel) == n
    }
    model(|| {
        let slot = Arc::new(UnsafeCell::new(1u64));
        let count = Arc::new(AtomicU32::new(2));
        let t = {
            let (slot, count) = (slot.clone(), count.clone());
            thread::spawn(move || {
                slot.with(|p| unsafe { *p });
                if broken(&count, 1) {
                    slot.with_mut(|p| unsafe { *p = 0 });
                }
            })
        };
        slot.with(|p| unsafe { *p });
        if broken(&count, 1) {
            slot.with_mut(|p| unsafe { *p = 0 });
        }
        t.join().unwrap();
    });
}

/// GraphLock: a reader and a writer, and two readers. The writer either gets the graph
/// alone or is refused (never waits); a reader never sees a write in progress; readers share;
/// the lock ends free.
#[test]
fn loom_graph_lock_a_writer_is_alone() {
    model(|| {
        let lock = Arc::new(GraphLock::new(Graph::new()));
        // Shadow data touched under the guards: loom checks the accesses are exclusive.
        let shadow = Arc::new(UnsafeCell::new(0u32));
        let r = {
            let (lock, shadow) = (lock.clone(), shadow.clone());
            thread::spawn(move || {
                let g = lock.read();
                let v = shadow.with(|p| unsafe { *p });
                assert!(v == 0 || v == 2, "a reader saw a write in progress");
                drop(g);
            })
        };
        if let Some(g) = lock.try_write() {
            shadow.with_mut(|p| unsafe { *p = 1 });
            shadow.with_mut(|p| unsafe { *p = 2 });
            drop(g);
        }
        r.join().unwrap();
        assert!(lock.try_write().is_some(), "the lock ends free");
    });
}

#[test]
fn loom_graph_lock_readers_share_and_a_writer_is_refused_meanwhile() {
    model(|| {
        let lock = Arc::new(GraphLock::new(Graph::new()));
        let r = {
            let lock = lock.clone();
            thread::spawn(move || {
                let _g = lock.read();
            })
        };
        {
            let _g = lock.read();
            assert!(
                lock.try_write().is_none(),
                "a writer got in beside a reader"
            );
        }
        r.join().unwrap();
        assert!(lock.try_write().is_some(), "the lock ends free");
    });
}

/// A reader that arrives while the writer holds the lock waits it out and then sees the
/// write.
#[test]
fn loom_a_reader_waits_out_a_writer() {
    model(|| {
        let lock = Arc::new(GraphLock::new(Graph::new()));
        let shadow = Arc::new(UnsafeCell::new(0u32));
        let w = lock.try_write().expect("free at first");
        let r = {
            let (lock, shadow) = (lock.clone(), shadow.clone());
            thread::spawn(move || {
                let _g = lock.read();
                shadow.with(|p| unsafe { *p })
            })
        };
        shadow.with_mut(|p| unsafe { *p = 7 });
        drop(w);
        assert_eq!(r.join().unwrap(), 7);
    });
}

/// A worker that finds no work parks; another makes work visible (a Relaxed store, as a
/// queue's `top` is published) and notifies one. However the two interleave, the worker
/// ends up seeing the work: it is never left asleep. (The model has teeth: a sleeper that
/// looked for work before counting itself as a sleeper makes loom report "deadlock" — tried
/// by hand; not kept as a should_panic test, since loom then aborts unwinding the threads it
/// left blocked.)
#[test]
fn loom_a_worker_going_to_sleep_as_work_arrives_is_not_left_asleep() {
    use loom::sync::atomic::Ordering::Relaxed;
    model(|| {
        let sleep = Arc::new(Sleep::new());
        let work = Arc::new(AtomicU32::new(0));
        let worker = {
            let (sleep, work) = (sleep.clone(), work.clone());
            thread::spawn(move || {
                while work.load(Relaxed) == 0 {
                    sleep.wait_unless(|| work.load(Relaxed) != 0);
                }
            })
        };
        work.store(1, Relaxed);
        sleep.notify(false);
        worker.join().unwrap();
    });
}

/// Two workers park; one piece of work wakes one of them (`notify(false)`), then the run's
/// end (a flag, `notify(true)`) wakes every one still asleep.
#[test]
fn loom_the_end_of_the_run_wakes_every_sleeper() {
    use loom::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    model(|| {
        let sleep = Arc::new(Sleep::new());
        let work = Arc::new(AtomicU32::new(0));
        let done = Arc::new(AtomicU32::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (sleep, work, done) = (sleep.clone(), work.clone(), done.clone());
                thread::spawn(move || loop {
                    if done.load(Acquire) != 0 {
                        return;
                    }
                    // Take the work if there is some (at most one worker gets it).
                    if work.load(Relaxed) == 1
                        && work.compare_exchange(1, 2, Relaxed, Relaxed).is_ok()
                    {
                        continue;
                    }
                    sleep.wait_unless(|| done.load(Acquire) != 0 || work.load(Relaxed) == 1);
                })
            })
            .collect();
        work.store(1, Relaxed);
        sleep.notify(false);
        done.store(1, Release);
        sleep.notify(true);
        for w in workers {
            w.join().unwrap();
        }
    });
}

// ---- The threads scheduler itself, on small graphs --------------------------------------
//
// The models below run real gets: `Graph::get_key` under `threads` with two workers, the
// caller and a helper (a loom thread: `pool::scoped` in a loom build). loom interleaves
// them at every operation on what `crate::sync` provides — the ready queues' locks and
// `top`s, parking (`Sleep`), the run's end (`roots_left`, `done`), the first failure and its
// stop flag, the cancel switch; the scheduler's other counters (pending inputs, consumers,
// the budget's) are std atomics there, read and written between those points, and checked
// on their own above (`count_down`). A lost wake-up or an end nobody sees leaves a thread
// blocked, which loom reports as a deadlock; a task run twice, or never, fails the counts.

mod counted {
    //! Tasks that count their runs, and values whose destructor counts how often it ran.
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    use crate::{Comp, Func, Graph, Value};

    /// Per-model counts: runs of each function, destructors run; the (loom) threads that
    /// ran `use1`/`fail`.
    #[derive(Default)]
    pub(super) struct Counts {
        pub make: AtomicUsize,
        pub use1: AtomicUsize,
        pub sum: AtomicUsize,
        pub fail: AtomicUsize,
        pub freed: AtomicUsize,
        pub ran_on: std::sync::Mutex<Vec<loom::thread::ThreadId>>,
    }

    impl Counts {
        /// Whether the middle tasks ran on two threads (one was stolen) or on one.
        pub(super) fn spread(&self) -> &'static str {
            let on = self.ran_on.lock().unwrap();
            if on.windows(2).any(|w| w[0] != w[1]) {
                "two threads"
            } else {
                "one thread"
            }
        }
    }

    unsafe extern "C" fn free_counted(p: *mut c_void) {
        // SAFETY: `p` is the `freed` counter of a `Counts` the model keeps alive.
        unsafe { &*(p as *const AtomicUsize) }.fetch_add(1, SeqCst);
    }

    fn func(
        counts: &Arc<Counts>,
        name: &str,
        f: impl Fn(&Counts, &mut crate::func::Call<'_>) + Send + Sync + 'static,
    ) -> Func {
        let counts = counts.clone();
        Func::new(name, move |call| f(&counts, call))
    }

    /// `sum(ints...)`, counted in `sum`.
    fn sum(counts: &Arc<Counts>) -> Func {
        func(counts, "sum", |c, call| {
            c.sum.fetch_add(1, SeqCst);
            let total = (0..call.nargs())
                .map(|i| call.arg(i).and_then(Value::as_int).expect("ints"))
                .sum();
            call.ret(Value::Int(total));
        })
    }

    /// `r = make()` (a value whose destructor counts), `x = g(r)`, `y = g(r)`,
    /// `z = sum(x, y)`, where `g` returns 1 (`use1`) or fails (`fail`): when `r` finishes, it
    /// makes two tasks ready at once — one the worker goes on with, one pushed to its queue
    /// for the other worker to steal (or for itself to pop later).
    pub(super) fn diamond(counts: &Arc<Counts>, failing: bool) -> Graph {
        let make = func(counts, "make", |c, call| {
            c.make.fetch_add(1, SeqCst);
            let freed = &c.freed as *const AtomicUsize as *mut c_void;
            call.ret(Value::pointer(freed, "counted", Some(free_counted)));
        });
        let g = if failing {
            func(counts, "fail", |c, call| {
                c.fail.fetch_add(1, SeqCst);
                c.ran_on.lock().unwrap().push(loom::thread::current().id());
                let key = call.key().unwrap_or("?").to_string();
                call.fail(format!("{key} failed"));
            })
        } else {
            func(counts, "use1", |c, call| {
                assert!(call.arg(0).and_then(Value::as_pointer).is_some());
                c.use1.fetch_add(1, SeqCst);
                c.ran_on.lock().unwrap().push(loom::thread::current().id());
                call.ret(Value::Int(1));
            })
        };
        let sum = sum(counts);
        let mut graph = Graph::new();
        graph.add_task("r", &make, vec![], vec![]).unwrap();
        graph
            .add_task("x", &g, vec![Comp::key("r")], vec![])
            .unwrap();
        graph
            .add_task("y", &g, vec![Comp::key("r")], vec![])
            .unwrap();
        graph
            .add_task("z", &sum, vec![Comp::key("x"), Comp::key("y")], vec![])
            .unwrap();
        graph
    }

    /// A binary tree of sums over four leaves that return 1: `s1 = sum(a, b)`,
    /// `s2 = sum(c, d)`, `t = sum(s1, s2)`. The serial order holds at most 3 results (a, b;
    /// s1; s1, c, d), so the threads scheduler's memory budget is 3 and holds leaves back.
    pub(super) fn tree(counts: &Arc<Counts>) -> Graph {
        let one = func(counts, "one", |c, call| {
            c.make.fetch_add(1, SeqCst);
            call.ret(Value::Int(1));
        });
        let sum = sum(counts);
        let mut graph = Graph::new();
        for leaf in ["a", "b", "c", "d"] {
            graph.add_task(leaf, &one, vec![], vec![]).unwrap();
        }
        for (k, x, y) in [("s1", "a", "b"), ("s2", "c", "d"), ("t", "s1", "s2")] {
            let args = vec![Comp::key(x), Comp::key(y)];
            graph.add_task(k, &sum, args, vec![]).unwrap();
        }
        graph
    }

    /// `r = make()`, `x = use1(r)` (or `fail(r)`, `failing`): a chain of two, where a second
    /// worker never has anything to do.
    pub(super) fn chain(counts: &Arc<Counts>, failing: bool) -> Graph {
        let make = func(counts, "make", |c, call| {
            c.make.fetch_add(1, SeqCst);
            let freed = &c.freed as *const AtomicUsize as *mut c_void;
            call.ret(Value::pointer(freed, "counted", Some(free_counted)));
        });
        let use1 = func(counts, "use1", move |c, call| {
            if failing {
                c.fail.fetch_add(1, SeqCst);
                call.fail("x failed");
            } else {
                c.use1.fetch_add(1, SeqCst);
                call.ret(Value::Int(1));
            }
        });
        let mut graph = Graph::new();
        graph.add_task("r", &make, vec![], vec![]).unwrap();
        graph
            .add_task("x", &use1, vec![Comp::key("r")], vec![])
            .unwrap();
        graph
    }
}

fn threads(workers: usize) -> crate::Options<'static> {
    crate::Options {
        scheduler: crate::Scheduler::Threads,
        num_workers: workers,
        ..Default::default()
    }
}

/// The ready queues: the task pushed to a queue is popped exactly once (by its worker or a
/// thief), a worker that looked at the queues and found them empty is woken by the push
/// (push, then wake; count itself a sleeper, then look once more), and the last task's
/// completion ends the run for both workers. Every task runs once, the result is right, the
/// shared input is freed once.
/// (Teeth, tried by hand: an end of the run that sets `done` without waking the sleepers
/// makes loom report a deadlock. Dropping the wake after a push does not fail it, rightly:
/// the pusher pops its own queue before it could sleep, so a wake-up lost there would cost
/// parallelism, not progress.)
#[test]
fn loom_threads_every_ready_task_runs_once_and_the_last_ends_the_run() {
    use std::sync::atomic::Ordering::SeqCst;
    // The pushed task was stolen in some interleavings, kept by its worker in others.
    model_reaching(&["two threads", "one thread"], move |noted| {
        let counts = std::sync::Arc::new(counted::Counts::default());
        let graph = counted::diamond(&counts, false);
        let result = graph.get_key("z", &threads(2)).expect("the get succeeds");
        assert_eq!(result.as_int(), Some(2));
        let runs = [&counts.make, &counts.use1, &counts.sum].map(|c| c.load(SeqCst));
        assert_eq!(runs, [1, 2, 1], "a task ran twice or never");
        assert_eq!(counts.freed.load(SeqCst), 1, "r was not freed exactly once");
        noted.note(counts.spread());
    });
}

/// First failure wins: `x` and `y` both fail, on two workers at once or one after the
/// other. The get reports exactly one of their errors (`task_failed`, naming `x` or `y`);
/// the shared input is freed once — released by the failing consumers or, when the run
/// stopped before one of them started, when the run ends.
#[test]
fn loom_threads_two_failures_at_once_report_exactly_one() {
    use std::sync::atomic::Ordering::SeqCst;
    model_reaching(
        &["x reported", "y reported", "1 failed", "2 failed"],
        move |noted| {
            let counts = std::sync::Arc::new(counted::Counts::default());
            let graph = counted::diamond(&counts, true);
            let e = graph.get_key("z", &threads(2)).expect_err("the get fails");
            assert_eq!(e.kind, crate::ErrorKind::TaskFailed);
            let key = e.key.clone().expect("the error names the task");
            assert!(key == "x" || key == "y", "error of {key}");
            assert!(
                e.message.contains(&format!("{key} failed")),
                "{}",
                e.message
            );
            let fails = counts.fail.load(SeqCst);
            assert!((1..=2).contains(&fails), "{fails} failures ran");
            assert_eq!(counts.sum.load(SeqCst), 0, "z ran after its inputs failed");
            assert_eq!(counts.freed.load(SeqCst), 1, "r was not freed exactly once");
            noted.note(format!("{key} reported"));
            noted.note(format!("{fails} failed"));
        },
    );
}

/// A failure ends the run for a worker asleep with nothing to do: the chain's second worker
/// parks at once (nothing is ever pushed), and the failing worker's end of the run must wake
/// it. (Teeth, tried by hand: a worker that stops at its task's failure without ending the
/// run leaves the other asleep, and loom reports the deadlock.)
#[test]
fn loom_threads_a_failure_wakes_an_idle_worker_and_ends_the_run() {
    use std::sync::atomic::Ordering::SeqCst;
    model(|| {
        let counts = std::sync::Arc::new(counted::Counts::default());
        let graph = counted::chain(&counts, true);
        let e = graph.get_key("x", &threads(2)).expect_err("the get fails");
        assert_eq!(
            (e.kind, e.key.as_deref()),
            (crate::ErrorKind::TaskFailed, Some("x"))
        );
        assert_eq!(counts.fail.load(SeqCst), 1);
        assert_eq!(counts.freed.load(SeqCst), 1, "r was not freed exactly once");
    });
}

/// `FirstFailure` itself, with errors that count their drops: two recorded at once, exactly
/// one is kept (either) and the other dropped, once; taking the kept one leaves none.
#[test]
fn loom_first_failure_keeps_one_and_drops_the_other_once() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    struct Failure(u32, std::sync::Arc<AtomicUsize>);
    impl Drop for Failure {
        fn drop(&mut self) {
            self.1.fetch_add(1, SeqCst);
        }
    }
    model_reaching(&["kept 1", "kept 2"], move |noted| {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        let first = Arc::new(crate::sync::FirstFailure::new());
        let other = {
            let (first, drops) = (first.clone(), drops.clone());
            thread::spawn(move || first.record(Failure(2, drops)))
        };
        first.record(Failure(1, drops.clone()));
        other.join().unwrap();
        assert!(first.stopped());
        assert_eq!(
            drops.load(SeqCst),
            1,
            "the losing failure was not dropped once"
        );
        let kept = first.take(false).expect("one failure is kept");
        assert!(kept.0 == 1 || kept.0 == 2);
        assert!(first.take(false).is_none(), "more than one was kept");
        noted.note(format!("kept {}", kept.0));
        drop(kept);
        assert_eq!(drops.load(SeqCst), 2);
    });
}

/// Gets `key` of `graph` with `options` while another thread triggers the get's cancel
/// switch; checks that every counted result made was freed exactly once, whichever won.
fn get_racing_a_cancel(
    graph: &crate::Graph,
    counts: &counted::Counts,
    key: &str,
    options: crate::Options<'_>,
) -> crate::Result<crate::Value> {
    use std::sync::atomic::Ordering::SeqCst;
    let cancel = crate::CancelToken::new();
    let canceller = {
        let cancel = cancel.clone();
        thread::spawn(move || cancel.cancel())
    };
    let result = graph.get_key(
        key,
        &crate::Options {
            cancel: Some(&cancel),
            ..options
        },
    );
    canceller.join().unwrap();
    let made = counts.make.load(SeqCst);
    assert_eq!(
        counts.freed.load(SeqCst),
        made,
        "a result was not freed exactly once"
    );
    result
}

/// Cancellation racing the run: another thread triggers the cancel switch while the two
/// workers run the diamond. The get returns either the result or `cancelled` — never a
/// result with a cancel recorded, never neither — and every result made is freed once.
#[test]
fn loom_threads_a_cancel_racing_the_run_gives_the_result_or_cancelled() {
    use std::sync::atomic::Ordering::SeqCst;
    model_reaching(&["result", "cancelled"], move |noted| {
        let counts = std::sync::Arc::new(counted::Counts::default());
        let graph = counted::diamond(&counts, false);
        match get_racing_a_cancel(&graph, &counts, "z", threads(2)) {
            Ok(v) => {
                assert_eq!(v.as_int(), Some(2));
                assert_eq!(counts.sum.load(SeqCst), 1);
                noted.note("result");
            }
            Err(e) => {
                assert_eq!(e.kind, crate::ErrorKind::Cancelled, "{}", e.message);
                noted.note("cancelled");
            }
        }
        assert!(counts.use1.load(SeqCst) <= 2 && counts.sum.load(SeqCst) <= 1);
    });
}

/// The same race under `sync`, the caller alone: a cancel before or between the tasks stops
/// the chain (`cancelled`), one after the last gives the result; `r`, if made, freed once.
#[test]
fn loom_sync_a_cancel_racing_the_run_gives_the_result_or_cancelled() {
    use std::sync::atomic::Ordering::SeqCst;
    model_reaching(
        &[
            "result",
            "cancelled after 0 tasks",
            "cancelled after 1 tasks",
        ],
        move |noted| {
            let counts = std::sync::Arc::new(counted::Counts::default());
            let graph = counted::chain(&counts, false);
            let options = crate::Options {
                scheduler: crate::Scheduler::Sync,
                ..Default::default()
            };
            match get_racing_a_cancel(&graph, &counts, "x", options) {
                Ok(v) => {
                    assert_eq!((v.as_int(), counts.use1.load(SeqCst)), (Some(1), 1));
                    noted.note("result");
                }
                Err(e) => {
                    assert_eq!(e.kind, crate::ErrorKind::Cancelled, "{}", e.message);
                    noted.note(format!(
                        "cancelled after {} tasks",
                        counts.make.load(SeqCst)
                    ));
                }
            }
        },
    );
}

/// The memory budget holds tasks back without ever holding every one back: on the tree of
/// sums (budget 3, the serial order's peak), two workers always finish — a worker the budget
/// sends to wait is woken, or finds work within the budget, or runs the best task when
/// every other worker waits too. Every task runs once; the peak of results held, measured,
/// stays within the budget plus one per other worker (what a worker can start between
/// another's check of the counts and its publishing: the budget is soft, RELIABILITY.md).
/// (What it does not show: that the rule letting a worker run the best task when every other
/// one waits is needed — on this graph, tried by hand without it, no interleaving deadlocks.)
#[test]
fn loom_threads_the_memory_budget_holds_back_without_a_deadlock() {
    use std::sync::atomic::Ordering::SeqCst;
    let seen = std::sync::Arc::new(Seen::default());
    let noted = seen.clone();
    model(move || {
        let counts = std::sync::Arc::new(counted::Counts::default());
        let graph = counted::tree(&counts);
        let options = crate::Options {
            measure_memory: true,
            ..threads(2)
        };
        let (result, stats) = graph.get_with_stats(&crate::Value::str("t"), &options);
        assert_eq!(result.expect("the get succeeds").as_int(), Some(4));
        let runs = [&counts.make, &counts.sum].map(|c| c.load(SeqCst));
        assert_eq!(runs, [4, 3], "a task ran twice or never");
        assert!(
            stats.peak_held <= 3 + 1,
            "{} results held at once",
            stats.peak_held
        );
        noted.note(format!("peak {}", stats.peak_held));
    });
    println!("peaks: {:?}", seen.0.lock().unwrap());
}
