//! The atomics of the lock-free primitives that `loom` model-checks (src/ffi/loom_tests.rs):
//! std's in every normal build, loom's when built with `--cfg loom` (`make test-loom`), so the
//! model runs the very code the schedulers run. Only those primitives use this module:
//! `run::count_down` (through `FallingCount`), `ffi::graph_lock::GraphLock` and the threads
//! scheduler's parking, `sched::sleep::Sleep`.

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
pub(crate) use loom::{
    sync::atomic::{fence, AtomicU32, AtomicUsize},
    sync::{Condvar, Mutex},
    thread::yield_now,
};
#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic::{fence, AtomicU32, AtomicUsize},
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
