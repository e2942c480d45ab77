//! The `distributed` scheduler: partitions of the plan run as Dask tasks on a Dask cluster,
//! driven through Python's `distributed.Client`.

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
        "the 'distributed' scheduler is not available in this build yet",
    ))
}
