//! The process-wide thread pool behind the `threads` scheduler, reused across gets.
//!
//! A get borrows its plan and results; the pool's threads are `'static`. `scoped` bridges the
//! two the way a scope does: it hands helper threads a pointer to borrowed work and does not
//! return until every helper that picked the work up has let go of it, and helpers that pick it
//! up later find it closed and skip it.

// A loom build runs `scoped` on loom threads (at the end): the pool is not used there.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Pool {
    jobs: Sender<Job>,
    receiver: Receiver<Job>,
    threads: AtomicUsize,
    spawn_lock: Mutex<()>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, receiver) = unbounded();
        Pool {
            jobs,
            receiver,
            threads: AtomicUsize::new(0),
            spawn_lock: Mutex::new(()),
        }
    })
}

/// Stack size of pool threads: tasks are user code, give them what a main thread has.
const STACK_SIZE: usize = 8 << 20;

impl Pool {
    fn ensure_threads(&self, n: usize) {
        if self.threads.load(Ordering::Acquire) >= n {
            return;
        }
        let _one_spawner = self.spawn_lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.threads.load(Ordering::Acquire) < n {
            let i = self.threads.load(Ordering::Acquire);
            let receiver = self.receiver.clone();
            let spawned = thread::Builder::new()
                .name(format!("daskr-worker-{i}"))
                .stack_size(STACK_SIZE)
                .spawn(move || {
                    for job in receiver {
                        job();
                    }
                });
            if spawned.is_err() {
                // Out of threads: the caller still works, so the run completes with fewer.
                return;
            }
            self.threads.store(i + 1, Ordering::Release);
        }
    }
}

/// How many helpers are inside the work, and whether it is closed to late ones.
struct Gate {
    state: Mutex<(bool, usize)>,
    left: Condvar,
}

/// Runs `work(0)` on the calling thread and `work(1..=helpers)` on pool threads, returning
/// once no thread runs `work` any more. `work` must return promptly once its own run is over
/// (a helper that starts after that sees the gate closed and never calls it).
#[cfg(not(loom))]
pub(crate) fn scoped(helpers: usize, work: &(dyn Fn(usize) + Sync)) {
    if helpers == 0 {
        work(0);
        return;
    }
    let pool = pool();
    pool.ensure_threads(helpers);
    let gate = Arc::new(Gate {
        state: Mutex::new((false, 0)),
        left: Condvar::new(),
    });
    // SAFETY: the pointer is only dereferenced by a helper that entered the gate while it was
    // open, and `Close` (run on every exit from this function, unwinding included) waits for
    // every such helper to leave before `work` can go out of scope.
    let work: &'static (dyn Fn(usize) + Sync) = unsafe {
        std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(work)
    };
    for i in 1..=helpers {
        let gate = gate.clone();
        let job: Job = Box::new(move || {
            {
                let mut state = gate.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.0 {
                    return;
                }
                state.1 += 1;
            }
            struct Leave<'g>(&'g Gate);
            impl Drop for Leave<'_> {
                fn drop(&mut self) {
                    let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                    state.1 -= 1;
                    self.0.left.notify_all();
                }
            }
            let _leave = Leave(&gate);
            work(i);
        });
        if pool.jobs.send(job).is_err() {
            break;
        }
    }
    struct Close(Arc<Gate>);
    impl Drop for Close {
        fn drop(&mut self) {
            let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            state.0 = true;
            while state.1 > 0 {
                state = self.0.left.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
    let _close = Close(gate);
    work(0);
}

/// In a loom model (src/ffi/loom_tests.rs runs the threads scheduler): the helpers are loom
/// threads of their own, started for this run and joined before it returns, so loom sees and
/// interleaves every worker. (The pool itself, its gate and late helpers, is not modelled.)
#[cfg(loom)]
pub(crate) fn scoped(helpers: usize, work: &(dyn Fn(usize) + Sync)) {
    // SAFETY: every thread given the pointer is joined below, before `work` goes out of
    // scope; `work` does not unwind (the threads scheduler catches its panics).
    let work: &'static (dyn Fn(usize) + Sync) = unsafe {
        std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(work)
    };
    let threads: Vec<_> = (1..=helpers)
        .map(|i| loom::thread::spawn(move || work(i)))
        .collect();
    work(0);
    for t in threads {
        t.join().expect("a worker panicked");
    }
}
