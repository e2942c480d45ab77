//! `daskr_progress_t`: live counts of a running get, for another thread to read.

use super::guard;
use crate::run::Progress;

/// Live progress of the gets it is attached to (`daskr_get_options_t.progress`): read it from
/// another thread while a get runs, e.g. to draw a progress bar. Workers publish counts in
/// small batches, so attaching it costs a run nothing measurable. Thread-safe.
pub struct daskr_progress_t(pub(crate) Progress);

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
