//! `daskr_cache_t`: a result cache directory, for `daskr_get_options_t.cache`.

use std::ffi::c_char;

use super::{arg_str, guard, put, status};
use crate::cache::Cache;
use crate::ffi::daskr_error_t;

/// A result cache: task results kept in a directory under a hash of what determines them, so
/// a get given it (`daskr_get_options_t.cache`) runs only what is not there yet — a rerun
/// after a failure resumes, a rerun after a changed input runs what depends on it. Share it
/// between gets and threads freely; other processes may use the same directory at once.
/// docs/cache.md says what is cached and how.
pub struct daskr_cache_t(pub(crate) Cache);

/// Opens the cache in the directory `dir` (created if missing) into `*out`; free it with
/// `daskr_cache_free`.
#[no_mangle]
pub unsafe extern "C" fn daskr_cache_open(
    dir: *const c_char,
    out: *mut *mut daskr_cache_t,
) -> *mut daskr_error_t {
    status(|| {
        let dir = arg_str(dir, "dir")?;
        let cache = Cache::open(dir)?;
        put(out, Box::into_raw(Box::new(daskr_cache_t(cache))), "out")
    })
}

/// Bounds the directory's size in bytes: after a get that stored results, the least recently
/// used entries are removed until the rest fit. 0 (the default): no bound.
#[no_mangle]
pub unsafe extern "C" fn daskr_cache_set_max_bytes(cache: *const daskr_cache_t, bytes: u64) {
    guard(|| {
        if let Some(c) = cache.as_ref() {
            c.0.set_max_bytes(bytes)
        }
    })
}

/// Results whose encoding is larger than `bytes` are not stored. 0 (the default): no limit.
#[no_mangle]
pub unsafe extern "C" fn daskr_cache_set_max_entry_bytes(cache: *const daskr_cache_t, bytes: u64) {
    guard(|| {
        if let Some(c) = cache.as_ref() {
            c.0.set_max_entry_bytes(bytes)
        }
    })
}

/// How many entries the directory holds (`*entries`) and their size in bytes (`*bytes`);
/// either pointer may be NULL.
#[no_mangle]
pub unsafe extern "C" fn daskr_cache_usage(
    cache: *const daskr_cache_t,
    entries: *mut u64,
    bytes: *mut u64,
) {
    guard(|| {
        let usage = cache.as_ref().map(|c| c.0.usage()).unwrap_or_default();
        if let Some(e) = entries.as_mut() {
            *e = usage.entries;
        }
        if let Some(b) = bytes.as_mut() {
            *b = usage.bytes;
        }
    })
}

/// Removes every entry.
#[no_mangle]
pub unsafe extern "C" fn daskr_cache_clear(cache: *const daskr_cache_t) -> *mut daskr_error_t {
    status(|| {
        let c = cache
            .as_ref()
            .ok_or_else(|| crate::Error::invalid_argument("cache is NULL"))?;
        c.0.clear().map(|_| ())
    })
}

/// Frees the handle (the directory stays). NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn daskr_cache_free(cache: *mut daskr_cache_t) {
    guard(|| {
        if !cache.is_null() {
            drop(Box::from_raw(cache));
        }
    })
}
