//! The schedulers that run a get in this process, on the plan's `Run`: `sync` (the calling
//! thread alone) and `threads` (the pool, the calling thread included).

use std::time::{Duration, Instant};

use super::{sync, threads};
use crate::error::Result;
use crate::graph::Graph;
use crate::options::{default_workers, Options, Scheduler};
use crate::plan::Plan;
use crate::profile::PhaseSpan;
use crate::run::{record_profile, Run, Stats};
use crate::value::Value;

/// Runs the plan under `sync` or `threads` (`planning`: when planning began).
pub(crate) fn get(
    graph: &Graph,
    plan: &Plan,
    keys: &Value,
    options: &Options<'_>,
    stats: &mut Stats,
    planning: Instant,
) -> Result<Value> {
    let epoch = options.profiler.map(|_| planning);
    let run = Run::new(graph, plan, options.watch(), epoch);
    run.callbacks_start();
    let running = Instant::now();
    let workers = match options.scheduler {
        Scheduler::Sync => 1,
        Scheduler::Threads if options.num_workers == 0 => default_workers(),
        Scheduler::Threads => options.num_workers,
        Scheduler::Processes | Scheduler::Distributed => unreachable!("not a local scheduler"),
    };
    // A run too small to share is not worth waking helpers for.
    let workers = workers.min(plan.len().max(1));
    // One worker has no one to share with: the sync loop runs the same priority order
    // without queues or atomics.
    if workers == 1 {
        sync::run(&run, options.cancel);
    } else {
        threads::run(&run, workers, options.cancel);
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
    let result = run.finish(keys, stats);
    if let Some(callbacks) = options.callbacks {
        callbacks.finish(result.is_err());
    }
    result
}
