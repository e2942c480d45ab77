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
mod local;
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
        options: &["num_workers"],
        get: local::get,
    },
    SchedulerInfo {
        scheduler: Scheduler::Sync,
        name: "sync",
        summary: "The calling thread alone, in priority order: deterministic",
        options: &[],
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
        options: &["address"],
        get: |graph, plan, keys, options, stats, _| {
            distributed::get(graph, plan, keys, options, stats)
        },
    },
];

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
