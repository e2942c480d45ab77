//! How to run a `get` (`Graph::get`, in `get`): which scheduler, how many workers, what
//! observes the run, and the options only some schedulers read. The schedulers themselves, and
//! which options each reads, are listed in `sched` (`SCHEDULERS`).

use std::time::Duration;

use crate::cache::Cache;
use crate::profile::Profiler;
use crate::run::{Callbacks, CancelToken, Progress, Watch};

/// Which scheduler runs a get. The order (and each value) is the C ABI's `daskr_scheduler_t`,
/// and `sched::SCHEDULERS` lists the schedulers in it: a new scheduler takes the next value.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheduler {
    /// A native pool reused across calls; the calling thread works too.
    #[default]
    Threads = 0,
    /// The calling thread alone, in priority order: deterministic, for debugging.
    Sync = 1,
    /// Worker processes: a task that crashes takes down its worker, not the caller. Values
    /// cross in the binary encoding (`encode`), work in partitions (`sched::partition`,
    /// `sched::wire`).
    Processes = 2,
    /// A Dask cluster (`Options::address`), driven through Python's `distributed.Client`.
    Distributed = 3,
}

/// How to run a `get`.
///
/// The fields before `num_workers` are read by every scheduler; those from it on only by the
/// schedulers their comment names (`sched::SCHEDULERS` lists them per scheduler, for the C
/// ABI, the command and the wrappers), and are ignored by the others.
#[derive(Default, Clone, Copy)]
pub struct Options<'a> {
    pub scheduler: Scheduler,
    pub callbacks: Option<&'a dyn Callbacks>,
    pub cancel: Option<&'a CancelToken>,
    /// Records each entry's run and the scheduler's phases (costs two clock reads a task).
    pub profiler: Option<&'a Profiler>,
    /// Counts entries as they run, for a progress display on another thread.
    pub progress: Option<&'a Progress>,
    /// Track the number of results held, for `Stats::peak_held` (0 otherwise). Off by
    /// default: under `threads` it is a counter shared by all workers, updated by every task
    /// that changes it, which costs parallel runs of tiny tasks up to ~2x.
    pub measure_memory: bool,
    /// Results kept on disk: a task found there is not run, and what runs is stored
    /// (`cache`, docs/cache.md). Every scheduler; under `distributed` it must be a directory
    /// every Dask worker reaches at the same path (a shared filesystem).
    pub cache: Option<&'a Cache>,

    // ---- read only by some schedulers ----
    /// Threads for `threads` (the caller included), worker processes for `processes`; 0 means
    /// the available cores.
    pub num_workers: usize,
    /// Every scheduler (as Dask's `retries=`): how many more times a task that fails is run
    /// before the get fails with its error (0: never). Under `processes` a task whose worker
    /// died (or was killed for its timeout) is run again on a fresh worker as well; under
    /// `distributed` Dask reruns the failed task's partition.
    pub retries: u32,
    /// `processes`: a task running longer than this has its worker killed and fails with
    /// `worker_died` (None: no limit). Refused by the others (`unsupported`).
    pub task_timeout: Option<Duration>,
    /// `distributed`: the Dask scheduler's address, `tcp://host:port`.
    pub address: Option<&'a str>,
}

/// The `Options` fields only some schedulers read, by name: what `SchedulerInfo::options`
/// lists.
pub const SCHEDULER_OPTIONS: [&str; 4] = ["num_workers", "retries", "task_timeout", "address"];

impl<'a> Options<'a> {
    /// What the run is told to report to and be stopped by.
    pub(crate) fn watch(&self) -> Watch<'a> {
        Watch {
            callbacks: self.callbacks,
            cancel: self.cancel,
            progress: self.progress,
            measure_memory: self.measure_memory,
            retries: self.retries,
        }
    }
}

/// The default number of workers: the cores this process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
