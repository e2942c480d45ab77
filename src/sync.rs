//! The atomics and locks of the shared state that `loom` model-checks (src/ffi/loom_tests.rs):
//! std's in every normal build, loom's when built with `--cfg loom` (`make test-loom`), so the
//! model runs the very code the schedulers run. Only that state uses this module:
//! `run::count_down` (through `FallingCount`), `ffi::graph_lock::GraphLock`, the threads
//! scheduler's parking (`sched::sleep::Sleep`), its ready queues, memory budget, end of run,
//! the cancel switch (`run::CancelToken`) and a run's first failure (`FirstFailure`, here).

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
pub(crate) use loom::{
    sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU32, AtomicUsize},
    sync::{Condvar, Mutex},
    thread::yield_now,
};
#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU32, AtomicUsize},
    sync::{Condvar, Mutex},
    thread::yield_now,
};

/// A count that only falls, as `run::count_down` takes it: the schedulers' std `AtomicU32`s,
/// or loom's in a model (the schedulers' counts stay std atomics in every build).
pub(crate) trait FallingCount {
    fn load(&self, order: Ordering) -> u32;
    fn store(&self, value: u32, order: Ordering);
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32;
}

impl FallingCount for std::sync::atomic::AtomicU32 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u32 {
        std::sync::atomic::AtomicU32::load(self, order)
    }
    #[inline(always)]
    fn store(&self, value: u32, order: Ordering) {
        std::sync::atomic::AtomicU32::store(self, value, order)
    }
    #[inline(always)]
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
        std::sync::atomic::AtomicU32::fetch_sub(self, value, order)
    }
}

#[cfg(loom)]
impl FallingCount for loom::sync::atomic::AtomicU32 {
    fn load(&self, order: Ordering) -> u32 {
        loom::sync::atomic::AtomicU32::load(self, order)
    }
    fn store(&self, value: u32, order: Ordering) {
        loom::sync::atomic::AtomicU32::store(self, value, order)
    }
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
        loom::sync::atomic::AtomicU32::fetch_sub(self, value, order)
    }
}

/// A run's first failure, and the flag that stops it: of failures recorded at once (two tasks
/// failing on two workers, a failure and a cancel), exactly one is kept — the first to take
/// the lock — and every other is dropped there, by the thread that recorded it. The flag is
/// set after the failure is stored, so whoever sees it set and then takes the failure (after
/// the workers stopped) finds one.
pub(crate) struct FirstFailure<E> {
    stopped: AtomicBool,
    first: Mutex<Option<E>>,
}

impl<E> FirstFailure<E> {
    pub(crate) fn new() -> FirstFailure<E> {
        FirstFailure {
            stopped: AtomicBool::new(false),
            first: Mutex::new(None),
        }
    }

    /// True once a failure was recorded: start nothing new. Relaxed: a hint for early exit;
    /// the failure itself is read under the lock.
    #[inline]
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Records `error` unless a failure is recorded already (then `error` is dropped), and
    /// stops the run.
    pub(crate) fn record(&self, error: E) {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(error);
        }
        self.stopped.store(true, Ordering::Release);
    }

    /// Takes the recorded failure, if any, and lets the run go on (`resume`: the flag is
    /// cleared, for a run that goes on after a failed partition).
    pub(crate) fn take(&self, resume: bool) -> Option<E> {
        let e = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        if resume {
            self.stopped.store(false, Ordering::Release);
        }
        e
    }
}
