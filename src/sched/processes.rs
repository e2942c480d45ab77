//! The `processes` scheduler: worker processes that run partitions of the plan (see
//! `partition` and `wire`), so a task that crashes takes down a worker, not the caller.

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::plan::Plan;
use crate::run::Stats;
use crate::sched::Options;
use crate::value::Value;

pub(crate) fn get(
    _graph: &Graph,
    _plan: &Plan,
    _keys: &Value,
    _options: &Options<'_>,
    _stats: &mut Stats,
) -> Result<Value> {
    Err(Error::invalid_argument(
        "the 'processes' scheduler is not available in this build yet",
    ))
}
