//! Giving back what daskr keeps between gets: idle worker processes and retained memory.

use super::guard;

/// Ends the idle worker processes that the processes scheduler keeps between gets (they are
/// killed and reaped); the next get starts new ones. Workers of gets still running are not
/// touched. Useful before a program forks or execs something of its own, or to check for
/// leaked processes. Thread-safe.
#[no_mangle]
pub extern "C" fn daskr_workers_shutdown() {
    guard(crate::sched::processes::shutdown_workers)
}

/// Gives the memory daskr keeps for reuse back to the system, and returns how many bytes.
/// daskr keeps up to 512 MiB of the large blocks freed by graphs and gets (a big graph's
/// arrays) to build and run the next graph without the cost of fresh pages; a program that
/// is done with big graphs, or wants its resident size to drop now, calls this. Thread-safe.
/// A Rust program that links the crate without its `huge-page-alloc` feature keeps its own
/// allocator: nothing is retained then, and this returns 0.
#[no_mangle]
pub extern "C" fn daskr_memory_release() -> usize {
    guard(crate::alloc::release)
}

#[cfg(all(test, not(feature = "huge-page-alloc")))]
mod tests {
    /// Without daskr's allocator nothing is retained, and the C function says so.
    #[test]
    fn memory_release_returns_nothing_without_the_allocator() {
        drop(vec![1u8; 6 << 20]);
        assert_eq!(super::daskr_memory_release(), 0);
    }
}
