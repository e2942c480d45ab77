//! `Graph::get`, the engine's entry point: plan the request, then hand the plan to the
//! scheduler the options name (`sched::SCHEDULERS`), which runs it and returns the results.

use std::time::Instant;

use crate::comp::TaskId;
use crate::error::Result;
use crate::graph::Graph;
use crate::options::Options;
use crate::plan::Plan;
use crate::run::Stats;
use crate::value::Value;

/// What `Graph::check` found: the plan a get of those keys would run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Entries the keys need (the graph culled to them).
    pub entries: usize,
    /// Those that compute something (not literals).
    pub computed: usize,
}

impl Graph {
    /// Plans a get of `keys` without running anything: fails as the get would before its first
    /// task (a missing key or dependency, a cycle), so a graph can be checked cheaply.
    pub fn check(&self, keys: &Value) -> Result<Checked> {
        let plan = Plan::new(self, keys)?;
        crate::sched::reentry::check(self, &plan)?;
        Ok(Checked {
            entries: plan.len(),
            computed: plan.computed(self),
        })
    }

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
        self.run_request(|g| Plan::new(g, keys), keys, options)
    }

    /// Computes the entries behind `tasks` (handles of this graph, keyed or anonymous) and
    /// returns their results as a list, in order.
    pub fn get_tasks(&self, tasks: &[TaskId], options: &Options<'_>) -> Result<Vec<Value>> {
        let (result, _) = self.get_tasks_with_stats(tasks, options);
        result.map(|list| list.as_list().map(<[Value]>::to_vec).unwrap_or_default())
    }

    /// `get_tasks`, with figures about the run; the results come as one list value.
    pub fn get_tasks_with_stats(
        &self,
        tasks: &[TaskId],
        options: &Options<'_>,
    ) -> (Result<Value>, Stats) {
        // The schedulers rebuild the result in the shape of the request, reading only its
        // list structure: a list of as many placeholders as tasks gives back a list of results.
        let shape = match Value::list(vec![Value::Null; tasks.len()]) {
            Ok(shape) => shape,
            Err(e) => return (Err(e), Stats::default()),
        };
        self.run_request(|g| Plan::of_tasks(g, tasks), &shape, options)
    }

    /// Computes the entry behind `task` (keyed or anonymous), with figures about the run.
    pub fn get_task_with_stats(
        &self,
        task: TaskId,
        options: &Options<'_>,
    ) -> (Result<Value>, Stats) {
        // A shape that is not a list is one result.
        self.run_request(|g| Plan::of_tasks(g, &[task]), &Value::Null, options)
    }

    /// Plans a request (`plan`), then runs it on the scheduler the options name; `shape` is
    /// the request's shape, which the result takes.
    pub(crate) fn run_request(
        &self,
        plan: impl FnOnce(&Graph) -> Result<Plan>,
        shape: &Value,
        options: &Options<'_>,
    ) -> (Result<Value>, Stats) {
        let keys = shape;
        let mut stats = Stats::default();
        if let Some(e) = options.unsupported(["retries", "task_timeout"]) {
            return (Err(e), stats);
        }
        let planning = Instant::now();
        let plan = match plan(self) {
            Ok(plan) => plan,
            Err(e) => return (Err(e), stats),
        };
        if let Err(e) = crate::sched::reentry::check(self, &plan) {
            return (Err(e), stats);
        }
        stats.entries = plan.len() as u64;
        // With a result cache, the plan shrinks to what must run or be read (`resume`).
        let plan = match options.cache {
            None => plan,
            Some(cache) => crate::resume::resume(self, &plan, cache),
        };
        stats.plan_time = planning.elapsed();
        let scheduler = crate::sched::of(options.scheduler);
        let result = (scheduler.get)(self, &plan, keys, options, &mut stats, planning);
        if let Some(cache) = &plan.cache {
            // The processes and distributed schedulers' workers stored in their own memory:
            // what the plan knows (hits, and the positions that were to run and be stored).
            if matches!(
                options.scheduler,
                crate::options::Scheduler::Processes | crate::options::Scheduler::Distributed
            ) {
                stats.cache = cache.finish_elsewhere(result.is_ok());
            }
        }
        (result, stats)
    }
}
