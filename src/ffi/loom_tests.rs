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
//!   it asleep for ever, which loom reports as a deadlock), and the run's end wakes them all.
//!
//! The data is a `loom::cell::UnsafeCell`, which fails the model on any access not ordered
//! by happens-before with a conflicting one. The other shared state — first failure wins,
//! cancellation — is a `Mutex` and plain flags read with Relaxed order for early exit; it
//! holds by std's guarantees and is not modelled here.

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

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(PREEMPTIONS);
    b.check(f);
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
