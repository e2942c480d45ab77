//! daskr: Dask-style task graphs run natively.
//!
//! A graph maps keys to computations (literals, references, lists, tasks). `Graph::get` runs
//! exactly the tasks the requested keys need — in parallel, in an order that keeps few
//! results alive — and returns the results in the shape of the request.
//!
//! The engine (this crate's Rust API) is plain Rust; `ffi` is the C ABI over it, which the
//! header `include/daskr.h` describes and the C++ and Go wrappers build on. The engine never
//! imports `ffi` — the C declarations it needs itself are in `abi` — and its modules import
//! each other without loops (tests/layers.rs checks both; docs/architecture.md shows the
//! layers and the path of a get).

pub mod abi;
mod alloc;
pub mod cache;
pub mod comp;
pub mod dot;
pub mod encode;
pub mod error;
pub mod ffi;
pub mod func;
mod get;
pub mod graph;
pub mod graphfile;
mod keys;
pub mod map_names;
pub mod options;
mod plan;
pub mod plugin;
pub mod profile;
mod resume;
pub mod run;
pub mod sched;
mod sync;
mod task_args;
pub mod value;

// A global allocator is the program's choice, so a Rust user of the rlib can turn it off
// (Cargo.toml, feature `huge-page-alloc`).
#[cfg(feature = "huge-page-alloc")]
#[global_allocator]
static ALLOCATOR: alloc::DaskrAlloc = alloc::DaskrAlloc;

pub use cache::{Cache, CacheStats};
pub use comp::{Comp, TaskId};
pub use error::{Error, ErrorKind, Result};
pub use func::{Call, Func};
pub use get::Checked;
pub use graph::Graph;
pub use graphfile::GraphFile;
pub use options::{default_workers, Options, Scheduler};
pub use plugin::Plugin;
pub use profile::{Profile, Profiler};
pub use run::{Callbacks, CancelToken, KeyRef, Progress, Stats};
pub use sched::{SchedulerInfo, SCHEDULERS};
pub use value::{Kind, Value, MAX_NESTING};
