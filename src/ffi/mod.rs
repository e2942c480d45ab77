//! The C ABI: thin `extern "C"` shims over the engine. Each one checks its arguments, runs
//! inside `guard` (no panic crosses the boundary) and converts; no scheduling logic lives here.
//! The engine never imports this module: the C declarations it needs live in `abi`, which is
//! re-exported here and there where the C API presents them (docs/architecture.md).
//!
//! Conventions (shared by every function, and repeated in the header where it matters):
//! - a function that can fail returns an owned `daskr_error_t *`, NULL on success;
//! - `const T *` arguments are borrowed for the call; `T *` arguments documented as "takes"
//!   are owned by daskr from the call on, on success and on failure alike;
//! - strings are NUL-terminated UTF-8 unless a length is passed.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

pub mod cache;
pub mod call;
pub mod cancel;
pub mod dot;
pub mod error;
pub mod get;
pub mod graph;
pub(crate) mod graph_lock;
// loom models of GraphLock and the engine's count_down: here, since ffi may see the engine.
pub mod graphfile;
#[cfg(all(test, loom))]
mod loom_tests;
pub mod partition;
pub mod plugin;
pub mod profile;
pub mod progress;
pub mod release;
pub mod sched;
pub mod value;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorKind};
use crate::func::panic_message;

pub use crate::abi::DASKR_ABI_VERSION;
pub use error::daskr_error_t;

/// What an `extern "C"` function returns when a panic is caught inside it.
pub(crate) trait OnPanic {
    fn on_panic(message: String) -> Self;
}

impl OnPanic for *mut daskr_error_t {
    fn on_panic(message: String) -> Self {
        error::into_raw(Error::new(
            ErrorKind::Internal,
            format!("internal error (panic): {message}"),
        ))
    }
}

macro_rules! null_on_panic {
    ($($t:ty),*) => {$(
        impl OnPanic for *mut $t { fn on_panic(_: String) -> Self { std::ptr::null_mut() } }
        impl OnPanic for *const $t { fn on_panic(_: String) -> Self { std::ptr::null() } }
    )*};
}
null_on_panic!(
    value::daskr_value_t,
    graph::daskr_graph_t,
    graph::daskr_func_t,
    graph::daskr_comp_t,
    cancel::daskr_cancel_t,
    profile::daskr_profile_t,
    progress::daskr_progress_t,
    cache::daskr_cache_t,
    c_char
);

macro_rules! default_on_panic {
    ($($t:ty),*) => {$(
        impl OnPanic for $t { fn on_panic(_: String) -> Self { <$t>::default() } }
    )*};
}
default_on_panic!((), bool, usize, u32, u64, value::daskr_destructor_fn);

/// Runs an ABI function body; a panic becomes the return type's failure value.
#[inline(always)]
pub(crate) fn guard<R: OnPanic>(body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| R::on_panic(panic_message(&*panic)))
}

/// Runs a body that fails with an `Error`, returning the C error pointer (NULL for success).
#[inline(always)]
pub(crate) fn status(body: impl FnOnce() -> Result<(), Error>) -> *mut daskr_error_t {
    guard(|| match body() {
        Ok(()) => std::ptr::null_mut(),
        Err(e) => error::into_raw(e),
    })
}

/// A borrowed C string argument, checked: `what` names the argument in the error.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{what} is NULL")));
    }
    let bytes = CStr::from_ptr(p).to_bytes();
    // Keys are nearly always ASCII: a word-at-a-time check is cheaper than full UTF-8
    // validation for the short strings every add passes.
    if bytes.is_ascii() {
        return Ok(std::str::from_utf8_unchecked(bytes));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid_argument(format!(
            "{what} is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })
}

/// Writes an out-parameter, failing (and naming it) if it is NULL. The value is made before
/// `out` can be checked, so on failure it is discarded — freed, for an owned handle — instead
/// of leaking.
pub(crate) unsafe fn put<T: OutValue>(out: *mut T, value: T, what: &str) -> Result<(), Error> {
    if out.is_null() {
        value.discard();
        return Err(Error::invalid_argument(format!("{what} is NULL")));
    }
    out.write(value);
    Ok(())
}

/// What an out-parameter can hold: a plain value, or an owned handle that is freed if it
/// cannot be handed over.
pub(crate) trait OutValue {
    fn discard(self);
}

impl OutValue for u32 {
    fn discard(self) {}
}

impl OutValue for u64 {
    fn discard(self) {}
}

/// Handles that daskr allocates as a `Box` and frees with `Box::from_raw`.
pub(crate) trait BoxedHandle {}

impl<T: BoxedHandle> OutValue for *mut T {
    fn discard(self) {
        if !self.is_null() {
            // SAFETY: every BoxedHandle pointer handed to `put` comes from Box::into_raw and
            // has not been shared yet.
            drop(unsafe { Box::from_raw(self) });
        }
    }
}

impl BoxedHandle for value::daskr_value_t {}
impl BoxedHandle for graph::daskr_graph_t {}
impl BoxedHandle for graph::daskr_func_t {}
impl BoxedHandle for plugin::daskr_plugin_t {}
impl BoxedHandle for cache::daskr_cache_t {}

/// The library's version, e.g. "0.1.0". Static; do not free.
#[no_mangle]
pub extern "C" fn daskr_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The C ABI version this library implements (`DASKR_ABI_VERSION` in the header it was built
/// with).
#[no_mangle]
pub extern "C" fn daskr_abi_version() -> u32 {
    DASKR_ABI_VERSION
}
