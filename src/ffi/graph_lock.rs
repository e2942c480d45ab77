//! The lock around a C handle's graph: any number of readers (gets), or one writer (an add)
//! that never waits — a writer that finds the graph busy gets `DASKR_ERROR_GRAPH_IN_USE`.
//!
//! Why not `std::sync::RwLock`: its write unlock is a second locked read-modify-write per
//! add, and a locked instruction waits until every store before it has left the store
//! buffer — the add's writes into the graph's arrays, cache misses at a million entries.
//! perf put a quarter of the samples of building a 1M-task graph on that unlock. Here a
//! writer takes the lock with one compare-and-swap and gives it back with a plain store.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
// std atomics, or loom's when model-checked (src/sync.rs, src/ffi/loom_tests.rs).
use crate::sync::{yield_now, AtomicU32, Ordering};

use crate::graph::Graph;

/// `state`: the number of readers, or WRITER.
pub(crate) struct GraphLock {
    state: AtomicU32,
    graph: UnsafeCell<Graph>,
}

const WRITER: u32 = u32::MAX;

// SAFETY: the graph is reached only through the guards below, which give shared access to
// readers and exclusive access to the one writer (the state says which); and a Graph may be
// shared and sent between threads (checked below), as `RwLock<Graph>: Sync` would require.
unsafe impl Sync for GraphLock {}
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Graph>();
};

impl GraphLock {
    pub(crate) fn new(graph: Graph) -> GraphLock {
        GraphLock {
            state: AtomicU32::new(0),
            graph: UnsafeCell::new(graph),
        }
    }

    /// The graph for changing, if no one reads or writes it now.
    pub(crate) fn try_write(&self) -> Option<WriteGuard<'_>> {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| WriteGuard(self))
    }

    /// The graph for reading, once no one writes it (a writer holds it for one add).
    pub(crate) fn read(&self) -> ReadGuard<'_> {
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s < WRITER - 1
                && self
                    .state
                    .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return ReadGuard(self);
            }
            if s >= WRITER - 1 {
                yield_now();
            }
        }
    }
}

pub(crate) struct WriteGuard<'a>(&'a GraphLock);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // Only this writer changes the state while it is WRITER: a plain store releases it.
        self.0.state.store(0, Ordering::Release);
    }
}

impl Deref for WriteGuard<'_> {
    type Target = Graph;
    fn deref(&self) -> &Graph {
        // SAFETY: the writer has the graph to itself.
        unsafe { &*self.0.graph.get() }
    }
}

impl DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Graph {
        // SAFETY: as in `deref`.
        unsafe { &mut *self.0.graph.get() }
    }
}

pub(crate) struct ReadGuard<'a>(&'a GraphLock);

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.0.state.fetch_sub(1, Ordering::Release);
    }
}

impl Deref for ReadGuard<'_> {
    type Target = Graph;
    fn deref(&self) -> &Graph {
        // SAFETY: while a reader holds the lock, no one writes.
        unsafe { &*self.0.graph.get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_share_and_a_writer_is_alone() {
        let lock = GraphLock::new(Graph::new());
        {
            let (_a, _b) = (lock.read(), lock.read());
            assert!(lock.try_write().is_none());
        }
        let mut w = lock.try_write().expect("free");
        assert!(lock.try_write().is_none());
        w.intern("k").unwrap();
        drop(w);
        assert!(lock.read().id_of("k").is_some());
        assert!(lock.try_write().is_some());
    }

    #[test]
    fn a_reader_waits_out_a_writer() {
        let lock = GraphLock::new(Graph::new());
        std::thread::scope(|s| {
            let w = lock.try_write().expect("free");
            let reader = s.spawn(|| lock.read().id_of("late").is_some());
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut w = w;
            w.intern("late").unwrap();
            drop(w);
            assert!(reader.join().unwrap());
        });
    }
}
