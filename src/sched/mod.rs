//! Schedulers: given a plan, decide which ready position runs next and where.
//!
//! `SCHEDULERS` is the one list of them: the engine dispatches a get through it, and the C
//! ABI (`daskr_scheduler_*`), the command (`--scheduler`) and the wrappers read names and the
//! options each scheduler reads from it. Adding a scheduler: docs/architecture.md.
//!
//! - `local`: `sync` and `threads`, in this process (`sync.rs`, `threads.rs`, `pool.rs`).
//! - `processes`, `distributed`: partitions of the plan (`partition`) run elsewhere, sent in
//!   the wire format (`wire`).

pub(crate) mod distributed;
pub(crate) mod local;
pub(crate) mod partition;
mod pool;
pub mod processes;
pub(crate) mod reentry;
pub(crate) mod sleep;
pub(crate) mod sync;
pub(crate) mod threads;
pub(crate) mod wire;

use std::time::Instant;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::options::{Options, Scheduler};
use crate::plan::Plan;
use crate::run::Stats;
use crate::value::Value;

/// Runs a planned get (`planning`: when planning began, the profile's time zero) and fills in
/// the figures the scheduler knows.
pub(crate) type GetFn =
    fn(&Graph, &Plan, &Value, &Options<'_>, &mut Stats, Instant) -> Result<Value>;

/// One scheduler, as the engine, the C ABI, the command and the wrappers see it.
pub struct SchedulerInfo {
    pub scheduler: Scheduler,
    /// Its name: `--scheduler NAME`, `daskr_scheduler_name`, the wrappers' names.
    pub name: &'static str,
    /// One line on what it is for (the command's help).
    pub summary: &'static str,
    /// Which of the `Options` fields only some schedulers read (`options::SCHEDULER_OPTIONS`)
    /// this one reads, by their Rust names (the C struct's `task_timeout_s` is
    /// `task_timeout`).
    pub options: &'static [&'static str],
    pub(crate) get: GetFn,
}

/// Every scheduler, in `Scheduler` order (the C ABI's values): entry `i` is the scheduler
/// whose value is `i`.
pub static SCHEDULERS: [SchedulerInfo; 4] = [
    SchedulerInfo {
        scheduler: Scheduler::Threads,
        name: "threads",
        summary: "A native thread pool",
        options: &["num_workers", "retries"],
        get: local::get,
    },
    SchedulerInfo {
        scheduler: Scheduler::Sync,
        name: "sync",
        summary: "The calling thread alone, in priority order: deterministic",
        options: &["retries"],
        get: local::get,
    },
    SchedulerInfo {
        scheduler: Scheduler::Processes,
        name: "processes",
        summary: "Worker processes: a crashing task kills its worker, not the caller",
        options: &["num_workers", "retries", "task_timeout"],
        get: |graph, plan, keys, options, stats, _| {
            processes::get(graph, plan, keys, options, stats)
        },
    },
    SchedulerInfo {
        scheduler: Scheduler::Distributed,
        name: "distributed",
        summary: "A Dask cluster (the address option)",
        options: &["address", "retries"],
        get: |graph, plan, keys, options, stats, _| {
            distributed::get(graph, plan, keys, options, stats)
        },
    },
];

// Here rather than in `options`, which the registry reads: the check reads the registry.
impl Options<'_> {
    /// Why these options cannot run on their scheduler: an option only some schedulers read
    /// that is set for one that does not (`sched::SCHEDULERS`), which would otherwise be
    /// silently ignored. `task_timeout` needs a worker that can be killed: under `sync` and
    /// `threads` a task runs on a thread of the caller, which nothing can stop, and a Dask
    /// worker is not daskr's to kill — and a runaway task the caller meant to bound would hang
    /// the get forever. `names` are the option names the caller knows (`retries`,
    /// `task_timeout` here; the C and command-line surfaces pass their own).
    pub fn unsupported(&self, names: [&str; 2]) -> Option<Error> {
        let s = self.scheduler;
        let (what, option) = if self.retries > 0 && !s.reads("retries") {
            (names[0], "retries")
        } else if self.task_timeout.is_some() && !s.reads("task_timeout") {
            (names[1], "task_timeout")
        } else {
            return None;
        };
        let why = match s {
            Scheduler::Sync | Scheduler::Threads => {
                "its tasks run on the caller's threads, which cannot be stopped or replaced"
            }
            Scheduler::Distributed => {
                "its tasks run in Dask's worker processes, which daskr does not control"
            }
            Scheduler::Processes => "it does not read it",
        };
        let readers: Vec<&str> = SCHEDULERS
            .iter()
            .filter(|r| r.options.contains(&option))
            .map(|r| r.name)
            .collect();
        Some(Error::invalid_argument(format!(
            "{what} is set, but the {} scheduler cannot honour it: {why}; use the {} scheduler, \
             or leave {what} unset",
            s.name(),
            readers.join(" or ")
        )))
    }
}

/// The registry's entry for `scheduler`.
pub fn of(scheduler: Scheduler) -> &'static SchedulerInfo {
    &SCHEDULERS[scheduler as usize]
}

impl Scheduler {
    pub fn name(self) -> &'static str {
        of(self).name
    }

    pub fn from_name(name: &str) -> Result<Scheduler> {
        match SCHEDULERS.iter().find(|s| s.name == name) {
            Some(s) => Ok(s.scheduler),
            None => {
                let names: Vec<String> =
                    SCHEDULERS.iter().map(|s| format!("'{}'", s.name)).collect();
                let (last, rest) = names.split_last().expect("there are schedulers");
                Err(Error::invalid_argument(format!(
                    "unknown scheduler '{name}' (expected {} or {last})",
                    rest.join(", ")
                )))
            }
        }
    }

    /// The scheduler whose value (the C ABI's `daskr_scheduler_t`) is `value`.
    pub fn from_value(value: u32) -> Option<Scheduler> {
        SCHEDULERS.get(value as usize).map(|s| s.scheduler)
    }

    /// Whether it reads the option named so (an `Options` field read only by some schedulers).
    pub fn reads(self, option: &str) -> bool {
        of(self).options.contains(&option)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_in_value_order() {
        for (i, s) in SCHEDULERS.iter().enumerate() {
            assert_eq!(s.scheduler as usize, i, "{}", s.name);
            assert_eq!(Scheduler::from_value(i as u32), Some(s.scheduler));
            assert_eq!(Scheduler::from_name(s.name).unwrap(), s.scheduler);
        }
        assert_eq!(Scheduler::from_value(SCHEDULERS.len() as u32), None);
        for s in &SCHEDULERS {
            for option in s.options {
                assert!(
                    crate::options::SCHEDULER_OPTIONS.contains(option),
                    "{}: {option}",
                    s.name
                );
            }
        }
        let e = Scheduler::from_name("fast").unwrap_err();
        assert!(
            e.message
                .contains("'threads', 'sync', 'processes' or 'distributed'"),
            "{}",
            e.message
        );
    }
}
