//! Parking for the threads scheduler's idle workers: an event count. No wake-up is lost, and
//! making work visible costs nothing more than a fence and a load while nobody sleeps.
//!
//! The protocol, Dekker's: a worker about to sleep counts itself in `sleepers`, then (a
//! SeqCst fence) looks for work once more; whoever makes work visible does so, then (a SeqCst
//! fence) reads `sleepers`. The two fences order the two sides, so at least one of them sees
//! the other: the sleeper finds the work, or the notifier finds the sleeper and bumps the
//! epoch under the lock the sleeper checked it under. Its atomics, lock and condition
//! variable come from `crate::sync`: loom's in `make test-loom`, which checks the protocol
//! (src/ffi/loom_tests.rs), std's in every other build.

use crate::sync::{fence, AtomicUsize, Condvar, Mutex, Ordering};

pub(crate) struct Sleep {
    sleepers: AtomicUsize,
    epoch: Mutex<u64>,
    wake: Condvar,
}

impl Sleep {
    pub(crate) fn new() -> Sleep {
        Sleep {
            sleepers: AtomicUsize::new(0),
            epoch: Mutex::new(0),
            wake: Condvar::new(),
        }
    }

    /// Wakes one sleeper (`all`: every one). Call after making the work (or the run's end)
    /// visible.
    pub(crate) fn notify(&self, all: bool) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let mut epoch = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
            *epoch += 1;
            if all {
                self.wake.notify_all();
            } else {
                self.wake.notify_one();
            }
        }
    }

    /// Sleeps until the next `notify`, unless `ready()` — asked once this worker counts as a
    /// sleeper — finds something to do already.
    pub(crate) fn wait_unless(&self, ready: impl Fn() -> bool) {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let mut epoch = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        let seen = *epoch;
        if !ready() {
            while *epoch == seen {
                epoch = self.wake.wait(epoch).unwrap_or_else(|e| e.into_inner());
            }
        }
        drop(epoch);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}
