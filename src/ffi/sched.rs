//! The scheduler registry over the C ABI: `daskr_scheduler_t`, and the names and options of
//! the schedulers as the engine lists them (`sched::SCHEDULERS`), for wrappers that offer
//! them by name.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use super::{arg_str, guard, put, status};
use crate::ffi::daskr_error_t;
use crate::options::Scheduler;
use crate::sched::SCHEDULERS;

/// Which scheduler runs a get. The values are the engine's scheduler registry, in its one
/// order (`daskr_scheduler_name` and `daskr_scheduler_from_name` read the same list): a new
/// scheduler takes the next value, and no value is ever reused.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum daskr_scheduler_t {
    /// A native thread pool, reused across gets; the calling thread works too. The default.
    DASKR_SCHEDULER_THREADS = 0,
    /// The calling thread alone, in priority order: deterministic, for debugging.
    DASKR_SCHEDULER_SYNC = 1,
    /// Worker processes: a task that crashes (segfault, abort, exit) kills its worker, not the
    /// caller. Values cross in daskr's binary encoding; a pointer value that must cross is an
    /// error naming its key.
    DASKR_SCHEDULER_PROCESSES = 2,
    /// A Dask cluster at `daskr_get_options_t.address`: plugin tasks only.
    DASKR_SCHEDULER_DISTRIBUTED = 3,
}

impl From<daskr_scheduler_t> for Scheduler {
    fn from(s: daskr_scheduler_t) -> Scheduler {
        Scheduler::from_value(s as u32).expect("every daskr_scheduler_t is a registered scheduler")
    }
}

// Each C value names the engine's scheduler of that value, and the C enum has them all.
const _: () = {
    use daskr_scheduler_t::*;
    assert!(DASKR_SCHEDULER_THREADS as u32 == Scheduler::Threads as u32);
    assert!(DASKR_SCHEDULER_SYNC as u32 == Scheduler::Sync as u32);
    assert!(DASKR_SCHEDULER_PROCESSES as u32 == Scheduler::Processes as u32);
    assert!(DASKR_SCHEDULER_DISTRIBUTED as u32 == Scheduler::Distributed as u32);
    assert!(SCHEDULERS.len() == 4);
    // read_options checks the scheduler field as a u32.
    assert!(std::mem::size_of::<daskr_scheduler_t>() == 4);
};

impl super::OutValue for daskr_scheduler_t {
    fn discard(self) {}
}

/// How many schedulers there are: `daskr_scheduler_t` values run from 0 to this, exclusive.
#[no_mangle]
pub extern "C" fn daskr_scheduler_count() -> u32 {
    SCHEDULERS.len() as u32
}

/// The name of the scheduler of value `scheduler` ("threads", "sync", "processes",
/// "distributed"), as the `daskr` command and the wrappers spell it: static, do not free. NULL
/// for a value that is no scheduler.
#[no_mangle]
pub extern "C" fn daskr_scheduler_name(scheduler: u32) -> *const c_char {
    guard(|| {
        static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            SCHEDULERS
                .iter()
                .map(|s| CString::new(s.name).expect("scheduler names hold no NUL"))
                .collect()
        });
        names
            .get(scheduler as usize)
            .map_or(std::ptr::null(), |n| n.as_ptr())
    })
}

/// The scheduler named `name` (as `daskr_scheduler_name` spells it) in `*out`. Fails with
/// `DASKR_ERROR_INVALID_ARGUMENT`, listing the names, for an unknown one.
#[no_mangle]
pub unsafe extern "C" fn daskr_scheduler_from_name(
    name: *const c_char,
    out: *mut daskr_scheduler_t,
) -> *mut daskr_error_t {
    status(|| {
        let scheduler = Scheduler::from_name(arg_str(name, "name")?)?;
        put(out, c_scheduler(scheduler), "out")
    })
}

/// Whether the scheduler of value `scheduler` reads the `daskr_get_options_t` field named
/// `option` among those only some schedulers read (`num_workers`, `retries`,
/// `task_timeout_s`, `address`); the others ignore it (`task_timeout_s` they refuse). False for
/// an unknown scheduler or field.
#[no_mangle]
pub unsafe extern "C" fn daskr_scheduler_reads(scheduler: u32, option: *const c_char) -> bool {
    guard(|| {
        let (Some(s), Ok(option)) = (Scheduler::from_value(scheduler), arg_str(option, "option"))
        else {
            return false;
        };
        // The registry names options as the engine's `Options` does.
        let option = match option {
            "task_timeout_s" => "task_timeout",
            other => other,
        };
        s.reads(option)
    })
}

fn c_scheduler(s: Scheduler) -> daskr_scheduler_t {
    use daskr_scheduler_t::*;
    match s {
        Scheduler::Threads => DASKR_SCHEDULER_THREADS,
        Scheduler::Sync => DASKR_SCHEDULER_SYNC,
        Scheduler::Processes => DASKR_SCHEDULER_PROCESSES,
        Scheduler::Distributed => DASKR_SCHEDULER_DISTRIBUTED,
    }
}
