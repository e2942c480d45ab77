//! `daskr_cancel_t`: a switch that stops the gets given it.

use super::guard;
use crate::run::CancelToken;

/// A cancel switch: trigger it from any thread to stop the gets given it. Thread-safe.
// Transparent: `daskr_call_cancel` hands out the engine's token as the caller's switch.
#[repr(transparent)]
pub struct daskr_cancel_t(pub(crate) CancelToken);

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
