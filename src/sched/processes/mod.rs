//! The `processes` scheduler: worker processes run partitions of the plan (see `partition`
//! and `wire`), so a task that crashes takes down a worker, not the caller.
//!
//! - `parent`: the get, on the calling thread — partition DAG, dispatch, moving results
//!   between workers, deaths, retries, timeouts, callbacks.
//! - `worker`: the loop a worker process runs (forked, or `daskr worker`).
//! - `spawn`: starting workers (fork or exec), the pool kept between gets, Go detection.
//! - `lifeline`: workers end with their parent (a parent-death signal; one spawner thread).
//! - `protocol`: the framed messages between the two; `page`: the shared page where a worker
//!   notes the task it is in.

mod lifeline;
mod page;
mod parent;
mod protocol;
mod spawn;
mod worker;

pub use lifeline::end_with_parent;
pub(crate) use parent::get;
pub use spawn::shutdown_workers;
pub use worker::serve_worker;
