//! `daskr_call_t`: what a running task function sees.
//!
//! Everything a task reads from its call (arguments, names, its key) is borrowed until the
//! task function returns; to keep an argument longer, `daskr_value_clone` it.

use std::ffi::{c_char, CStr};

use super::cancel::daskr_cancel_t;
use super::guard;
use super::value::{as_c, daskr_value_t, take};
pub use crate::abi::daskr_call_t;
use crate::func::Call;
use crate::run::CancelToken;
use crate::sched::reentry;
use crate::value::Value;

unsafe fn call<'a>(c: *const daskr_call_t) -> Option<&'a Call<'a>> {
    c.cast::<Call<'a>>().as_ref()
}

unsafe fn call_mut<'a>(c: *mut daskr_call_t) -> Option<&'a mut Call<'a>> {
    c.cast::<Call<'a>>().as_mut()
}

/// The key of the entry this task computes (for an inline task, the entry containing it);
/// NULL if that entry is anonymous (added with a NULL key).
#[no_mangle]
pub unsafe extern "C" fn daskr_call_key(call_: *const daskr_call_t) -> *const c_char {
    guard(|| {
        call(call_)
            .and_then(|c| c.key.c_name())
            .map_or(std::ptr::null(), |k| k.as_ptr().cast())
    })
}

/// The number of positional arguments.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_nargs(call_: *const daskr_call_t) -> usize {
    guard(|| call(call_).map_or(0, Call::nargs))
}

/// The i-th positional argument (borrowed for the call), or NULL if out of range.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_arg(
    call_: *const daskr_call_t,
    i: usize,
) -> *const daskr_value_t {
    guard(|| {
        call(call_)
            .and_then(|c| c.arg(i))
            .map_or(std::ptr::null(), as_c)
    })
}

/// The number of keyword arguments.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_nkwargs(call_: *const daskr_call_t) -> usize {
    guard(|| call(call_).map_or(0, Call::nkwargs))
}

/// The keyword argument `name` (borrowed for the call), or NULL if there is none.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_kwarg(
    call_: *const daskr_call_t,
    name: *const c_char,
) -> *const daskr_value_t {
    guard(|| {
        let (Some(c), false) = (call(call_), name.is_null()) else {
            return std::ptr::null();
        };
        let Ok(name) = CStr::from_ptr(name).to_str() else {
            return std::ptr::null();
        };
        c.kwarg(name).map_or(std::ptr::null(), as_c)
    })
}

/// The name of the i-th keyword argument (borrowed for the call), or NULL if out of range.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_kwarg_name(
    call_: *const daskr_call_t,
    i: usize,
) -> *const c_char {
    guard(|| {
        call(call_)
            .and_then(|c| c.kwname_c(i))
            .map_or(std::ptr::null(), |n| n.as_ptr().cast())
    })
}

/// The value of the i-th keyword argument (borrowed for the call), or NULL if out of range.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_kwarg_at(
    call_: *const daskr_call_t,
    i: usize,
) -> *const daskr_value_t {
    guard(|| {
        call(call_)
            .and_then(|c| c.kwarg_at(i))
            .map_or(std::ptr::null(), |(_, v)| as_c(v))
    })
}

/// Sets the task's result. Takes `value`. A later return or failure replaces it; a task that
/// sets nothing returns null. NULL `value` returns null.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_return(call_: *mut daskr_call_t, value: *mut daskr_value_t) {
    guard(|| {
        let v = take(value).unwrap_or(Value::Null);
        if let Some(c) = call_mut(call_) {
            c.ret(v);
        }
    })
}

/// Sets an int64 result (no allocation).
#[no_mangle]
pub unsafe extern "C" fn daskr_call_return_int(call_: *mut daskr_call_t, i: i64) {
    guard(|| set(call_, Value::Int(i)))
}

/// Sets a float64 result (no allocation).
#[no_mangle]
pub unsafe extern "C" fn daskr_call_return_float(call_: *mut daskr_call_t, x: f64) {
    guard(|| set(call_, Value::Float(x)))
}

/// Sets a bool result (no allocation).
#[no_mangle]
pub unsafe extern "C" fn daskr_call_return_bool(call_: *mut daskr_call_t, b: bool) {
    guard(|| set(call_, Value::Bool(b)))
}

/// Sets a string result, copying `len` bytes of `s`. Bytes that are not UTF-8 fail the task
/// with a message saying so.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_return_string(
    call_: *mut daskr_call_t,
    s: *const c_char,
    len: usize,
) {
    guard(|| {
        let Some(c) = call_mut(call_) else { return };
        let bytes = if len == 0 {
            &[][..]
        } else if s.is_null() {
            return c.fail("returned string is NULL");
        } else {
            std::slice::from_raw_parts(s.cast::<u8>(), len)
        };
        match Value::str_from_utf8(bytes) {
            Ok(v) => c.ret(v),
            Err(e) => c.fail(format!("returned {}", e.message)),
        }
    })
}

/// Sets a bytes result, copying `len` bytes of `data` (NULL is allowed when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn daskr_call_return_bytes(
    call_: *mut daskr_call_t,
    data: *const u8,
    len: usize,
) {
    guard(|| {
        let Some(c) = call_mut(call_) else { return };
        if len > 0 && data.is_null() {
            return c.fail("returned bytes are NULL");
        }
        let bytes = if len == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(data, len)
        };
        c.ret(Value::bytes(bytes));
    })
}

unsafe fn set(call_: *mut daskr_call_t, v: Value) {
    if let Some(c) = call_mut(call_) {
        c.ret(v);
    }
}

/// Fails the task with `message` (copied; NULL gives a generic message). The get reports a
/// `DASKR_ERROR_TASK_FAILED` error naming this task's key and carrying the message.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_fail(call_: *mut daskr_call_t, message: *const c_char) {
    guard(|| {
        let Some(c) = call_mut(call_) else { return };
        let message = if message.is_null() {
            "the task failed (no message)".to_string()
        } else {
            CStr::from_ptr(message).to_string_lossy().into_owned()
        };
        c.fail(message);
    })
}

/// The cancel switch of the get this task runs for (the one its options gave; borrowed for
/// the call), or NULL if the get has none. Call it from the task's own thread, during the
/// task. With it a task can stop its whole get (`daskr_cancel_trigger`), and a binding can
/// tell which of several concurrent gets a shared task function is running for.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_cancel(call_: *const daskr_call_t) -> *const daskr_cancel_t {
    guard(|| {
        if call(call_).is_none() {
            return std::ptr::null();
        }
        // A daskr_cancel_t is a transparent CancelToken: the get's token is the caller's switch.
        reentry::with_current_cancel(|c| {
            c.map_or(std::ptr::null(), |t| {
                (t as *const CancelToken).cast::<daskr_cancel_t>()
            })
        })
    })
}

/// Whether the get this task runs for has been cancelled: a long task can poll it and return
/// early (its result is discarded: the get returns `DASKR_ERROR_CANCELLED`). False for a get
/// without a cancel switch. Call it from the task's own thread, during the task.
#[no_mangle]
pub unsafe extern "C" fn daskr_call_cancelled(call_: *const daskr_call_t) -> bool {
    guard(|| {
        call(call_).is_some()
            && reentry::with_current_cancel(|c| c.is_some_and(CancelToken::is_cancelled))
    })
}
