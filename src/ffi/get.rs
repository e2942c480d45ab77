//! Running graphs over the C ABI: options, callbacks, cancellation, statistics and `get`.

use std::ffi::{c_char, c_void, CString};

use super::graph::{daskr_graph_t, hold};
use super::value::{borrow, boxed, daskr_value_t};
use super::{arg_str, guard, put, status};
use crate::error::Error;
use crate::ffi::daskr_error_t;
use crate::profile::Profiler;
use crate::run::{Callbacks, CancelToken, KeyRef, Progress, Stats};
use crate::sched::{Options, Scheduler};
use crate::value::Value;

/// Which scheduler runs a get.
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
    /// Processes and distributed: how many times a task whose worker died is run again on a
    /// fresh worker before the get fails with `DASKR_ERROR_WORKER_DIED`. Default 0.
    pub retries: u32,
    /// Processes: a task running longer than this many seconds has its worker killed and
    /// fails with `DASKR_ERROR_WORKER_DIED`. 0 (the default) for no limit.
    pub task_timeout_s: f64,
    /// Distributed: the Dask scheduler's address, `tcp://host:port` (UTF-8, borrowed for the
    /// get). NULL for the `DASKR_ADDRESS` environment variable.
    pub address: *const c_char,
}

/// A cancel switch: trigger it from any thread to stop the gets given it. Thread-safe.
pub struct daskr_cancel_t(CancelToken);

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
        };
        let n = struct_size.min(std::mem::size_of::<daskr_get_options_t>());
        std::ptr::copy_nonoverlapping(
            (&defaults as *const daskr_get_options_t).cast::<u8>(),
            options.cast::<u8>(),
            n,
        );
    })
}

/// A new cancel switch, off. Free it with `daskr_cancel_free` once no get uses it.
#[no_mangle]
pub extern "C" fn daskr_cancel_new() -> *mut daskr_cancel_t {
    guard(|| Box::into_raw(Box::new(daskr_cancel_t(CancelToken::new()))))
}

/// Turns the switch on: gets using it start no new task and return `DASKR_ERROR_CANCELLED`
/// once their running tasks finish.
#[no_mangle]
pub unsafe extern "C" fn daskr_cancel_trigger(cancel: *const daskr_cancel_t) {
    guard(|| {
        if let Some(c) = cancel.as_ref() {
            c.0.cancel();
        }
    })
}

/// Whether the switch is on.
#[no_mangle]
pub unsafe extern "C" fn daskr_cancel_is_triggered(cancel: *const daskr_cancel_t) -> bool {
    guard(|| cancel.as_ref().is_some_and(|c| c.0.is_cancelled()))
}

/// Turns the switch off again, for reuse.
#[no_mangle]
pub unsafe extern "C" fn daskr_cancel_reset(cancel: *const daskr_cancel_t) {
    guard(|| {
        if let Some(c) = cancel.as_ref() {
            c.0.reset();
        }
    })
}

/// Frees a cancel switch. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn daskr_cancel_free(cancel: *mut daskr_cancel_t) {
    guard(|| {
        if !cancel.is_null() {
            drop(Box::from_raw(cancel));
        }
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
    if scheduler > daskr_scheduler_t::DASKR_SCHEDULER_DISTRIBUTED as u32 {
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
        get(graph, keys, options, out)
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
        get(graph, &key, options, out)
    })
}

unsafe fn get(
    graph: *const daskr_graph_t,
    keys: &Value,
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
        scheduler: match o.scheduler {
            daskr_scheduler_t::DASKR_SCHEDULER_SYNC => Scheduler::Sync,
            daskr_scheduler_t::DASKR_SCHEDULER_THREADS => Scheduler::Threads,
            daskr_scheduler_t::DASKR_SCHEDULER_PROCESSES => Scheduler::Processes,
            daskr_scheduler_t::DASKR_SCHEDULER_DISTRIBUTED => Scheduler::Distributed,
        },
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
    };
    if let Some(e) = options.unsupported(["options.retries", "options.task_timeout_s"]) {
        return Err(e);
    }
    let graph = g.read();
    let (result, stats) = graph.get_with_stats(keys, &options);
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
/// the two structs only ever grow together, in the same header versions. Version 1 (today)
/// has one of each; when either grows, add a row here.
fn stats_size(_options_size: usize) -> usize {
    std::mem::size_of::<daskr_stats_t>()
}

fn c_stats(s: &Stats) -> daskr_stats_t {
    daskr_stats_t {
        entries: s.entries,
        entries_run: s.entries_run,
        peak_held: s.peak_held,
        workers: s.workers,
        plan_ns: s.plan_time.as_nanos() as u64,
        run_ns: s.run_time.as_nanos() as u64,
    }
}

/// A profile recorder: attach it to gets (`daskr_get_options_t.profile`) and it keeps the
/// profile of the last one — each entry's run, timed on the thread that ran it, and the
/// scheduler's phases. Costs two clock reads per entry while attached. Thread-safe.
pub struct daskr_profile_t {
    profiler: Profiler,
    /// NUL-terminated copies of the last profile's keys and function names, for C readers.
    c_strings: std::sync::Mutex<(u64, Vec<(CString, CString)>)>,
}

/// One entry's run, as recorded in a profile.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct daskr_profile_task_t {
    /// The entry's key. Borrowed from the profile: valid until it records another get or is freed.
    pub key: *const c_char,
    /// The task's function name ("alias", "list" or "literal" for other entries). Borrowed likewise.
    pub func: *const c_char,
    /// The thread that ran it (0 is the caller's).
    pub worker: u32,
    /// Nanoseconds since the get started.
    pub start_ns: u64,
    pub end_ns: u64,
    pub ok: bool,
}

/// A new profile recorder. Free it with `daskr_profile_free` once no get uses it.
#[no_mangle]
pub extern "C" fn daskr_profile_new() -> *mut daskr_profile_t {
    guard(|| {
        Box::into_raw(Box::new(daskr_profile_t {
            profiler: Profiler::new(),
            c_strings: std::sync::Mutex::new((0, Vec::new())),
        }))
    })
}

/// Frees a profile recorder. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn daskr_profile_free(profile: *mut daskr_profile_t) {
    guard(|| {
        if !profile.is_null() {
            drop(Box::from_raw(profile));
        }
    })
}

/// How many entries the last recorded get ran.
#[no_mangle]
pub unsafe extern "C" fn daskr_profile_len(profile: *const daskr_profile_t) -> usize {
    guard(|| {
        profile
            .as_ref()
            .map_or(0, |p| p.profiler.with(|_, prof| prof.tasks.len()))
    })
}

/// The i-th entry run (in start order) in `*out`, writing at most `struct_size` bytes (pass
/// `sizeof *out`, so a library whose struct grew never writes past yours); false if `i` is
/// out of range.
#[no_mangle]
pub unsafe extern "C" fn daskr_profile_task(
    profile: *const daskr_profile_t,
    i: usize,
    out: *mut daskr_profile_task_t,
    struct_size: usize,
) -> bool {
    guard(|| {
        let (Some(p), false) = (profile.as_ref(), out.is_null()) else {
            return false;
        };
        p.profiler.with(|generation, prof| {
            let Some(t) = prof.tasks.get(i) else {
                return false;
            };
            let mut cache = p.c_strings.lock().unwrap_or_else(|e| e.into_inner());
            if cache.0 != generation || cache.1.len() != prof.tasks.len() {
                let c = |s: &str| CString::new(s.replace('\0', "\u{fffd}")).expect("NULs replaced");
                *cache = (
                    generation,
                    prof.tasks.iter().map(|t| (c(&t.key), c(&t.func))).collect(),
                );
            }
            let (key, func) = &cache.1[i];
            let task = daskr_profile_task_t {
                key: key.as_ptr(),
                func: func.as_ptr(),
                worker: t.worker,
                start_ns: t.start.as_nanos() as u64,
                end_ns: t.end.as_nanos() as u64,
                ok: t.ok,
            };
            let n = struct_size.min(std::mem::size_of::<daskr_profile_task_t>());
            std::ptr::copy_nonoverlapping(
                (&task as *const daskr_profile_task_t).cast::<u8>(),
                out.cast::<u8>(),
                n,
            );
            true
        })
    })
}

/// Writes the last recorded get as a Chrome trace / Perfetto JSON file at `path` (one slice
/// per entry on the worker that ran it, with key and duration; the scheduler's phases on
/// their own track).
#[no_mangle]
pub unsafe extern "C" fn daskr_profile_write_trace(
    profile: *const daskr_profile_t,
    path: *const c_char,
) -> *mut daskr_error_t {
    status(|| {
        let p = profile
            .as_ref()
            .ok_or_else(|| Error::invalid_argument("profile is NULL"))?;
        let path = arg_str(path, "path")?;
        let json = p.profiler.with(|_, prof| prof.chrome_trace_json());
        std::fs::write(path, json)
            .map_err(|e| Error::invalid_argument(format!("cannot write trace file '{path}': {e}")))
    })
}

/// Live progress of the gets it is attached to (`daskr_get_options_t.progress`): read it from
/// another thread while a get runs, e.g. to draw a progress bar. Workers publish counts in
/// small batches, so attaching it costs a run nothing measurable. Thread-safe.
pub struct daskr_progress_t(Progress);

/// A new progress counter. Free it with `daskr_progress_free` once no get uses it.
#[no_mangle]
pub extern "C" fn daskr_progress_new() -> *mut daskr_progress_t {
    guard(|| Box::into_raw(Box::new(daskr_progress_t(Progress::new()))))
}

/// Entries the current (or last) get needs, literals included.
#[no_mangle]
pub unsafe extern "C" fn daskr_progress_total(progress: *const daskr_progress_t) -> u64 {
    guard(|| progress.as_ref().map_or(0, |p| p.0.total()))
}

/// Entries run so far (a little behind while running; exact once the get has returned).
#[no_mangle]
pub unsafe extern "C" fn daskr_progress_done(progress: *const daskr_progress_t) -> u64 {
    guard(|| progress.as_ref().map_or(0, |p| p.0.done()))
}

/// Whether a get using this counter is running.
#[no_mangle]
pub unsafe extern "C" fn daskr_progress_running(progress: *const daskr_progress_t) -> bool {
    guard(|| progress.as_ref().is_some_and(|p| p.0.running()))
}

/// Frees a progress counter. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn daskr_progress_free(progress: *mut daskr_progress_t) {
    guard(|| {
        if !progress.is_null() {
            drop(Box::from_raw(progress));
        }
    })
}

/// Writes a picture of the part of `graph` that `keys` need (a key, or a nested list of keys)
/// to `path`: Graphviz DOT, or SVG when `path` ends in ".svg" (rendered by Graphviz's `dot`;
/// a clear error if it is not installed). Tasks are boxes labelled with key and function,
/// edges run from an input to its consumer, requested keys have a double border. If
/// `profile` is not NULL, entries are coloured by how long they ran in its last get; if
/// `failed_key` is not NULL, that entry is drawn in red.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_write_dot(
    graph: *const daskr_graph_t,
    keys: *const daskr_value_t,
    profile: *const daskr_profile_t,
    failed_key: *const c_char,
    path: *const c_char,
) -> *mut daskr_error_t {
    status(|| {
        let held = hold(graph)?;
        let g = held.graph();
        let keys = borrow(keys).ok_or_else(|| Error::invalid_argument("keys is NULL"))?;
        let path = arg_str(path, "path")?;
        let failed_key = if failed_key.is_null() {
            None
        } else {
            Some(arg_str(failed_key, "failed_key")?)
        };
        let graph = g.read();
        let dot = match profile.as_ref() {
            Some(p) => p.profiler.with(|_, prof| {
                crate::dot::to_dot(
                    &graph,
                    keys,
                    crate::dot::DotStyle {
                        profile: Some(prof),
                        failed_key,
                    },
                )
            })?,
            None => crate::dot::to_dot(
                &graph,
                keys,
                crate::dot::DotStyle {
                    profile: None,
                    failed_key,
                },
            )?,
        };
        crate::dot::write(std::path::Path::new(path), &dot)
    })
}

/// Ends the idle worker processes that the processes scheduler keeps between gets (they are
/// killed and reaped); the next get starts new ones. Workers of gets still running are not
/// touched. Useful before a program forks or execs something of its own, or to check for
/// leaked processes. Thread-safe.
#[no_mangle]
pub extern "C" fn daskr_workers_shutdown() {
    guard(crate::sched::processes::shutdown_workers)
}

/// Gives the memory daskr keeps for reuse back to the system, and returns how many bytes.
/// daskr keeps up to 512 MiB of the large blocks freed by graphs and gets (a big graph's
/// arrays) to build and run the next graph without the cost of fresh pages; a program that
/// is done with big graphs, or wants its resident size to drop now, calls this. Thread-safe.
#[no_mangle]
pub extern "C" fn daskr_memory_release() -> usize {
    guard(crate::alloc::release)
}

// read_options checks the scheduler field as a u32.
const _: () = assert!(std::mem::size_of::<daskr_scheduler_t>() == 4);
