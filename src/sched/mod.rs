//! Schedulers: given a plan, decide which ready position runs next and where.

pub(crate) mod distributed;
mod pool;
pub mod processes;
pub(crate) mod reentry;
pub(crate) mod sync;
pub(crate) mod threads;

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::plan::Plan;
use crate::profile::{PhaseSpan, Profiler};
use crate::run::{record_profile, Callbacks, CancelToken, Progress, Run, Stats};
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduler {
    /// The calling thread alone, in priority order: deterministic, for debugging.
    Sync,
    /// A native pool reused across calls; the calling thread works too.
    #[default]
    Threads,
    /// Worker processes: a task that crashes takes down its worker, not the caller. Values
    /// cross in the binary encoding (`encode`), work in partitions (`partition`, `wire`).
    Processes,
    /// A Dask cluster (`Options::address`), driven through Python's `distributed.Client`.
    Distributed,
}

impl Scheduler {
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Sync => "sync",
            Scheduler::Threads => "threads",
            Scheduler::Processes => "processes",
            Scheduler::Distributed => "distributed",
        }
    }

    pub fn from_name(name: &str) -> Result<Scheduler> {
        match name {
            "sync" => Ok(Scheduler::Sync),
            "threads" => Ok(Scheduler::Threads),
            "processes" => Ok(Scheduler::Processes),
            "distributed" => Ok(Scheduler::Distributed),
            other => Err(Error::invalid_argument(format!(
                "unknown scheduler '{other}' (expected 'sync', 'threads', 'processes' or \
                 'distributed')"
            ))),
        }
    }
}

/// How to run a `get`.
#[derive(Default, Clone, Copy)]
pub struct Options<'a> {
    pub scheduler: Scheduler,
    /// Threads for `threads` (the caller included), worker processes for `processes`; 0 means
    /// the available cores.
    pub num_workers: usize,
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
    /// `processes` and `distributed`: how many times a task whose worker died is run again on
    /// a fresh worker before the get fails with `worker_died` (0: never).
    pub retries: u32,
    /// `processes`: a task running longer than this has its worker killed and fails with
    /// `worker_died` (None: no limit).
    pub task_timeout: Option<Duration>,
    /// `distributed`: the Dask scheduler's address, `tcp://host:port`.
    pub address: Option<&'a str>,
}

impl Options<'_> {
    /// Why these options cannot run on their scheduler: `retries` and `task_timeout` need a
    /// worker that can be killed and replaced (`processes`); under `sync` and `threads` a task
    /// runs on a thread of the caller, which nothing can stop, so the option would be silently
    /// ignored — and a runaway task the caller meant to bound would hang the get forever.
    /// `names` are the option names the caller knows (`retries`, `task_timeout` here; the C
    /// and command-line surfaces pass their own).
    pub fn unsupported(&self, names: [&str; 2]) -> Option<Error> {
        if !matches!(self.scheduler, Scheduler::Sync | Scheduler::Threads) {
            return None;
        }
        let what = if self.retries > 0 {
            names[0]
        } else if self.task_timeout.is_some() {
            names[1]
        } else {
            return None;
        };
        Some(Error::invalid_argument(format!(
            "{what} is set, but the {} scheduler cannot honour it: its tasks run on the \
             caller's threads, which cannot be stopped or replaced; use the processes \
             scheduler, or leave {what} unset",
            self.scheduler.name()
        )))
    }
}

/// The default number of workers: the cores this process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Graph {
    /// Computes `keys` — a key (string value) or a nested list of keys — and returns the
    /// results in the same shape.
    pub fn get(&self, keys: &Value, options: &Options<'_>) -> Result<Value> {
        self.get_with_stats(keys, options).0
    }

    /// Computes one key.
    pub fn get_key(&self, key: &str, options: &Options<'_>) -> Result<Value> {
        self.get(&Value::str(key), options)
    }

    /// `get`, with figures about the run.
    pub fn get_with_stats(&self, keys: &Value, options: &Options<'_>) -> (Result<Value>, Stats) {
        let mut stats = Stats::default();
        if let Some(e) = options.unsupported(["retries", "task_timeout"]) {
            return (Err(e), stats);
        }
        let planning = Instant::now();
        let epoch = options.profiler.map(|_| planning);
        let plan = match Plan::new(self, keys) {
            Ok(plan) => plan,
            Err(e) => return (Err(e), stats),
        };
        if let Err(e) = reentry::check(self, &plan) {
            return (Err(e), stats);
        }
        stats.plan_time = planning.elapsed();
        stats.entries = plan.len() as u64;
        match options.scheduler {
            Scheduler::Processes => {
                let result = processes::get(self, &plan, keys, options, &mut stats);
                return (result, stats);
            }
            Scheduler::Distributed => {
                let result = distributed::get(self, &plan, keys, options, &mut stats);
                return (result, stats);
            }
            Scheduler::Sync | Scheduler::Threads => {}
        }
        let run = Run::new(self, &plan, options, epoch);
        run.callbacks_start();
        let running = Instant::now();
        let workers = match options.scheduler {
            Scheduler::Sync => 1,
            Scheduler::Threads if options.num_workers == 0 => default_workers(),
            Scheduler::Threads => options.num_workers,
            Scheduler::Processes | Scheduler::Distributed => unreachable!("returned above"),
        };
        // A run too small to share is not worth waking helpers for.
        let workers = workers.min(plan.len().max(1));
        // One worker has no one to share with: the sync loop runs the same priority order
        // without queues or atomics.
        if workers == 1 {
            sync::run(&run);
        } else {
            threads::run(&run, workers);
        }
        stats.run_time = running.elapsed();
        stats.workers = workers as u32;
        if let Some(profiler) = options.profiler {
            let since = |t: Instant| t.duration_since(planning);
            let phases = vec![
                PhaseSpan {
                    name: "plan".into(),
                    start: Duration::ZERO,
                    end: since(running),
                },
                PhaseSpan {
                    name: "run".into(),
                    start: since(running),
                    end: since(running) + stats.run_time,
                },
            ];
            record_profile(&run, profiler, phases, stats.workers);
        }
        let result = run.finish(keys, &mut stats);
        if let Some(callbacks) = options.callbacks {
            callbacks.finish(result.is_err());
        }
        (result, stats)
    }
}
