//! Running graphs over the C ABI: `daskr_graph_get`, its options, callbacks and statistics.

use std::ffi::{c_char, c_void};

use super::cancel::daskr_cancel_t;
use super::graph::{daskr_graph_t, daskr_task_t, hold};
use super::profile::daskr_profile_t;
use super::progress::daskr_progress_t;
use super::sched::daskr_scheduler_t;
use super::value::{borrow, boxed, daskr_value_t};
use super::{arg_str, guard, put, status};
use crate::comp::TaskId;
use crate::error::Error;
use crate::ffi::daskr_error_t;
use crate::options::{Options, Scheduler};
use crate::run::{Callbacks, KeyRef, Stats};
use crate::value::Value;

/// Observers of a run (Dask's start/pretask/posttask/finish). Any member may be NULL. Calls
/// are never concurrent with each other (daskr serialises them), though they may come from
/// different threads: `start` once, then `pretask`/`posttask` around each computed entry
/// (literals are not reported), then `finish` once — always, if `start` was called. `key` is
/// borrowed for the call; `worker` numbers the thread (0 is the caller's) — under the
/// processes scheduler, the worker process, and each task's pretask/posttask come together
/// when its partition's answer arrives.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct daskr_callbacks_t {
    pub user_data: *mut c_void,
    pub start: Option<unsafe extern "C" fn(user_data: *mut c_void, entries: usize)>,
    pub pretask:
        Option<unsafe extern "C" fn(user_data: *mut c_void, key: *const c_char, worker: u32)>,
    pub posttask: Option<
        unsafe extern "C" fn(user_data: *mut c_void, key: *const c_char, ok: bool, worker: u32),
    >,
    pub finish: Option<unsafe extern "C" fn(user_data: *mut c_void, failed: bool)>,
}

/// Figures about one get, filled in when `daskr_get_options_t.stats` points here.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct daskr_stats_t {
    /// Entries the request needed (after culling), literals included.
    pub entries: u64,
    /// Entries that ran, literals included (a literal "runs" when its value is put where its
    /// consumers read it). The `start` callback's count excludes literals: it counts what
    /// `pretask`/`posttask` will report.
    pub entries_run: u64,
    /// The most results held at once: how we compare memory with Dask. Measured only for gets
    /// given a `stats` pointer (under the threads scheduler it costs a counter shared by all
    /// workers).
    pub peak_held: u64,
    /// Threads that ran tasks (worker processes, under the processes scheduler).
    pub workers: u32,
    /// Nanoseconds spent resolving, culling, checking and ordering.
    pub plan_ns: u64,
    /// Nanoseconds from the first task to the last.
    pub run_ns: u64,
    // ---- version 2 (with daskr_get_options_t.cache) ----
    /// With a result cache: tasks whose result was read from it instead of computed.
    pub cache_hits: u64,
    /// With a result cache: tasks that could be cached, were not found, and ran.
    pub cache_misses: u64,
    /// With a result cache: needed tasks neither run nor read, every consumer having been
    /// found (counted as done by progress).
    pub cache_skipped: u64,
    /// With a result cache: bytes read from it and written to it.
    pub cache_bytes_read: u64,
    pub cache_bytes_written: u64,
}

/// How to run a get. Initialise with `daskr_get_options_init` (which sets `struct_size`, so
/// later versions of the library can add fields without breaking callers), then set fields.
#[repr(C)]
pub struct daskr_get_options_t {
    /// `sizeof(daskr_get_options_t)` as the caller compiled it.
    pub struct_size: usize,
    pub scheduler: daskr_scheduler_t,
    /// Threads for the threads scheduler, the caller's included; worker processes for the
    /// processes scheduler. 0 = available cores.
    pub num_workers: u32,
    /// Borrowed for the get; NULL for none.
    pub callbacks: *const daskr_callbacks_t,
    /// Borrowed for the get; NULL for none.
    pub cancel: *const daskr_cancel_t,
    /// Filled in when the get returns (success or not); NULL for none.
    pub stats: *mut daskr_stats_t,
    /// Records the get's profile (each entry's run, the scheduler's phases) when not NULL.
    /// Borrowed for the get.
    pub profile: *const daskr_profile_t,
    /// Counts entries as they run, readable from another thread (progress bars) when not
    /// NULL. Borrowed for the get.
    pub progress: *const daskr_progress_t,
    /// Every scheduler (as Dask's `retries=`): how many more times a task that fails is run
    /// before the get fails with its error. Processes: a task whose worker died is also run
    /// again, on a fresh worker; distributed: Dask reruns the failed task's partition.
    /// Default 0.
    pub retries: u32,
    /// Processes: a task running longer than this many seconds has its worker killed and
    /// fails with `DASKR_ERROR_WORKER_DIED`. 0 (the default) for no limit; refused
    /// (`DASKR_ERROR_INVALID_ARGUMENT`) by the other schedulers, which cannot stop a task.
    pub task_timeout_s: f64,
    /// Distributed: the Dask scheduler's address, `tcp://host:port` (UTF-8, borrowed for the
    /// get). NULL for the `DASKR_ADDRESS` environment variable.
    pub address: *const c_char,
    // ---- version 2 ----
    /// A result cache (`daskr_cache_open`): tasks found in it are not run, and what runs is
    /// stored. Borrowed for the get; NULL (the default) for none. Read by every scheduler;
    /// under distributed it must be a directory every Dask worker reaches at the same path.
    pub cache: *const super::cache::daskr_cache_t,
}

/// Sets `options` to the defaults — threads scheduler, all cores, nothing attached — writing
/// at most `struct_size` bytes: pass `sizeof` of the struct you declared, so a library built
/// with more option fields never writes past it. It also records that size in
/// `options->struct_size`, which tells later calls which fields (and which version of
/// `daskr_stats_t`) the caller has.
#[no_mangle]
pub unsafe extern "C" fn daskr_get_options_init(
    options: *mut daskr_get_options_t,
    struct_size: usize,
) {
    guard(|| {
        if options.is_null() {
            return;
        }
        let defaults = daskr_get_options_t {
            struct_size,
            scheduler: daskr_scheduler_t::DASKR_SCHEDULER_THREADS,
            num_workers: 0,
            callbacks: std::ptr::null(),
            cancel: std::ptr::null(),
            stats: std::ptr::null_mut(),
            profile: std::ptr::null(),
            progress: std::ptr::null(),
            retries: 0,
            task_timeout_s: 0.0,
            address: std::ptr::null(),
            cache: std::ptr::null(),
        };
        let n = struct_size.min(std::mem::size_of::<daskr_get_options_t>());
        std::ptr::copy_nonoverlapping(
            (&defaults as *const daskr_get_options_t).cast::<u8>(),
            options.cast::<u8>(),
            n,
        );
    })
}

struct CCallbacks(daskr_callbacks_t);

// SAFETY: the caller of get promises its callbacks may be called from daskr's threads; daskr
// never calls two at once.
unsafe impl Sync for CCallbacks {}

impl Callbacks for CCallbacks {
    fn start(&self, entries: usize) {
        if let Some(f) = self.0.start {
            unsafe { f(self.0.user_data, entries) }
        }
    }
    fn pretask(&self, key: KeyRef<'_>, worker: usize) {
        if let Some(f) = self.0.pretask {
            unsafe { f(self.0.user_data, key.as_c_ptr(), worker as u32) }
        }
    }
    fn posttask(&self, key: KeyRef<'_>, ok: bool, worker: usize) {
        if let Some(f) = self.0.posttask {
            unsafe { f(self.0.user_data, key.as_c_ptr(), ok, worker as u32) }
        }
    }
    fn finish(&self, failed: bool) {
        if let Some(f) = self.0.finish {
            unsafe { f(self.0.user_data, failed) }
        }
    }
}

/// Reads the caller's options, honouring `struct_size` (fields past it keep their defaults).
unsafe fn read_options(options: *const daskr_get_options_t) -> Result<daskr_get_options_t, Error> {
    let mut raw = std::mem::MaybeUninit::<daskr_get_options_t>::uninit();
    daskr_get_options_init(raw.as_mut_ptr(), std::mem::size_of::<daskr_get_options_t>());
    if options.is_null() {
        return Ok(raw.assume_init());
    }
    let size = std::ptr::addr_of!((*options).struct_size).read();
    if size < std::mem::size_of::<usize>() {
        return Err(Error::invalid_argument(
            "options.struct_size is not set: initialise options with daskr_get_options_init",
        ));
    }
    // Copy the caller's bytes into untyped storage and check the enum field as an integer
    // before the struct is read as Rust: an out-of-range enum value is undefined behaviour.
    let n = size.min(std::mem::size_of::<daskr_get_options_t>());
    std::ptr::copy_nonoverlapping(options.cast::<u8>(), raw.as_mut_ptr().cast::<u8>(), n);
    let scheduler = std::ptr::addr_of!((*raw.as_ptr()).scheduler)
        .cast::<u32>()
        .read();
    if Scheduler::from_value(scheduler).is_none() {
        return Err(Error::invalid_argument(format!(
            "options.scheduler is {scheduler}, which is not a daskr_scheduler_t"
        )));
    }
    // struct_size keeps the caller's size: `stats_size` reads the caller's version from it.
    Ok(raw.assume_init())
}

/// Computes `keys` — a string value naming one key, or a (nested) list of them — and stores
/// the results, in the same shape, in `*out` (owned by the caller). Only the entries the keys
/// need run, each once. `options` may be NULL for the defaults. The graph is only read: any
/// number of gets may run on it at once. On failure `*out` is left alone and every result
/// computed so far has been released.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_get(
    graph: *const daskr_graph_t,
    keys: *const daskr_value_t,
    options: *const daskr_get_options_t,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let keys = borrow(keys).ok_or_else(|| Error::invalid_argument("keys is NULL"))?;
        get(graph, Request::Keys(keys), options, out)
    })
}

/// `daskr_graph_get` for one key: `*out` is that key's value.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_get_key(
    graph: *const daskr_graph_t,
    key: *const c_char,
    options: *const daskr_get_options_t,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        let key = Value::str(arg_str(key, "key")?);
        get(graph, Request::Keys(&key), options, out)
    })
}

/// `daskr_graph_get` by handle: `*out` is the value of the entry behind `task` (keyed or
/// anonymous). The way to compute an anonymous entry.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_get_task(
    graph: *const daskr_graph_t,
    task: daskr_task_t,
    options: *const daskr_get_options_t,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| get(graph, Request::Task(TaskId(task)), options, out))
}

/// `daskr_graph_get` by handles: `*out` is the list of the values of the `n` entries behind
/// `tasks`, in order (a handle may repeat).
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_get_tasks(
    graph: *const daskr_graph_t,
    tasks: *const daskr_task_t,
    n: usize,
    options: *const daskr_get_options_t,
    out: *mut *mut daskr_value_t,
) -> *mut daskr_error_t {
    status(|| {
        if tasks.is_null() && n > 0 {
            return Err(Error::invalid_argument("tasks is NULL"));
        }
        let handles: Vec<TaskId> = match n {
            0 => Vec::new(),
            _ => std::slice::from_raw_parts(tasks, n)
                .iter()
                .map(|&t| TaskId(t))
                .collect(),
        };
        get(graph, Request::Tasks(&handles), options, out)
    })
}

/// What a get asks for: keys (a key or a nested list of keys), or entries by handle.
enum Request<'a> {
    Keys(&'a Value),
    Tasks(&'a [TaskId]),
    /// One entry by handle: its value alone, not a list of one.
    Task(TaskId),
}

unsafe fn get(
    graph: *const daskr_graph_t,
    request: Request<'_>,
    options: *const daskr_get_options_t,
    out: *mut *mut daskr_value_t,
) -> Result<(), Error> {
    // Held to the end: a daskr_graph_free meanwhile (another thread, a task) is deferred.
    let held = hold(graph)?;
    let g = held.graph();
    if out.is_null() {
        return Err(Error::invalid_argument("out is NULL"));
    }
    let o = read_options(options)?;
    let t = o.task_timeout_s;
    let timeout = if t == 0.0 {
        None
    } else if t.is_finite() && t > 0.0 {
        // Longer than any run could last: no limit in practice (and no overflow).
        Some(std::time::Duration::try_from_secs_f64(t).unwrap_or(std::time::Duration::MAX))
    } else {
        return Err(Error::invalid_argument(format!(
            "options.task_timeout_s is {t}: give a positive number of seconds, or 0 for none"
        )));
    };
    let address = if o.address.is_null() {
        None
    } else {
        Some(arg_str(o.address, "options.address")?)
    };
    let callbacks = o.callbacks.as_ref().map(|c| CCallbacks(*c));
    let cancel = o.cancel.as_ref().map(|c| &c.0);
    let options = Options {
        scheduler: o.scheduler.into(),
        num_workers: o.num_workers as usize,
        callbacks: callbacks.as_ref().map(|c| c as &dyn Callbacks),
        cancel,
        profiler: o.profile.as_ref().map(|p| &p.profiler),
        progress: o.progress.as_ref().map(|p| &p.0),
        // peak_held is part of the stats: measured when they are asked for.
        measure_memory: !o.stats.is_null(),
        retries: o.retries,
        task_timeout: timeout,
        address,
        cache: o.cache.as_ref().map(|c| &c.0),
    };
    if let Some(e) = options.unsupported(["options.retries", "options.task_timeout_s"]) {
        return Err(e);
    }
    let graph = g.read();
    let (result, stats) = match request {
        Request::Keys(keys) => graph.get_with_stats(keys, &options),
        Request::Tasks(tasks) => graph.get_tasks_with_stats(tasks, &options),
        Request::Task(task) => graph.get_task_with_stats(task, &options),
    };
    if !o.stats.is_null() {
        // Only as much as the caller's version of daskr_stats_t holds.
        let s = c_stats(&stats);
        let n = stats_size(o.struct_size).min(std::mem::size_of::<daskr_stats_t>());
        std::ptr::copy_nonoverlapping(
            (&s as *const daskr_stats_t).cast::<u8>(),
            o.stats.cast::<u8>(),
            n,
        );
    }
    put(out, boxed(result?), "out")
}

/// The size of the `daskr_stats_t` a caller has, from the size of its `daskr_get_options_t`:
/// the two structs only ever grow together, in the same header versions. Version 1 ends
/// with `address` and `run_ns`; version 2 (today) adds `cache` and the `cache_*` figures.
fn stats_size(options_size: usize) -> usize {
    if options_size < std::mem::offset_of!(daskr_get_options_t, cache) + 8 {
        std::mem::offset_of!(daskr_stats_t, cache_hits)
    } else {
        std::mem::size_of::<daskr_stats_t>()
    }
}

fn c_stats(s: &Stats) -> daskr_stats_t {
    daskr_stats_t {
        entries: s.entries,
        entries_run: s.entries_run,
        peak_held: s.peak_held,
        workers: s.workers,
        plan_ns: s.plan_time.as_nanos() as u64,
        run_ns: s.run_time.as_nanos() as u64,
        cache_hits: s.cache.hits,
        cache_misses: s.cache.misses,
        cache_skipped: s.cache.skipped,
        cache_bytes_read: s.cache.bytes_read,
        cache_bytes_written: s.cache.bytes_written,
    }
}
