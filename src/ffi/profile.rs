//! `daskr_profile_t`: the record of a get's runs, read entry by entry or written as a trace.

use std::ffi::{c_char, CString};

use super::{arg_str, guard, status};
use crate::error::Error;
use crate::ffi::daskr_error_t;
use crate::profile::Profiler;

/// A profile recorder: attach it to gets (`daskr_get_options_t.profile`) and it keeps the
/// profile of the last one — each entry's run, timed on the thread that ran it, and the
/// scheduler's phases. Costs two clock reads per entry while attached. Thread-safe.
pub struct daskr_profile_t {
    pub(crate) profiler: Profiler,
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
    /// Read from the result cache (`daskr_get_options_t.cache`) instead of computed. (In
    /// what was padding: the struct's size is unchanged.)
    pub cached: bool,
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
                cached: t.cached,
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
            .map_err(|e| Error::io("cannot write trace file", std::path::Path::new(path), &e))
    })
}
