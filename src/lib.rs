//! daskr: Dask-style task graphs run natively.
//!
//! A graph maps keys to computations (literals, references, lists, tasks). `Graph::get` runs
//! exactly the tasks the requested keys need — in parallel, in an order that keeps few
//! results alive — and returns the results in the shape of the request.
//!
//! The engine (this crate's Rust API) is plain Rust; `ffi` is the C ABI over it, which the
//! header `include/daskr.h` describes and the C++ and Go wrappers build on.

mod alloc;
pub mod comp;
pub mod dot;
pub mod encode;
pub mod error;
pub mod ffi;
pub mod func;
pub mod graph;
pub mod graphfile;
mod keys;
#[cfg(all(test, loom))]
mod loom_tests;
// Used by the processes and distributed schedulers (processes in progress).
#[allow(dead_code)]
mod partition;
mod plan;
pub mod plugin;
pub mod profile;
pub mod run;
pub mod sched;
mod sync;
pub mod value;
#[allow(dead_code)]
pub mod wire;

#[global_allocator]
static ALLOCATOR: alloc::DaskrAlloc = alloc::DaskrAlloc;

pub use comp::{Comp, TaskId};
pub use error::{Error, ErrorKind, Result};
pub use func::{Call, Func};
pub use graph::Graph;
pub use graphfile::GraphFile;
pub use plugin::Plugin;
pub use profile::{Profile, Profiler};
pub use run::{Callbacks, CancelToken, KeyRef, Progress, Stats};
pub use sched::{default_workers, Options, Scheduler};
pub use value::{Kind, Value, MAX_NESTING};
