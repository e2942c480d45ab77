//! `daskr_error_t`: what failed, the key at fault, the other keys involved and a message.

use std::ffi::{c_char, CString};

use super::guard;
use crate::error::{Error, ErrorKind};

/// The kinds of error. Stable numbers; `daskr_error_kind_name` gives the JSON name.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum daskr_error_kind_t {
    /// A task failed (its message says why); `key` is the task's key.
    DASKR_ERROR_TASK_FAILED = 1,
    /// The needed part of the graph has a cycle; `keys` lists the keys on it. Also a get run
    /// inside a task that needs that task's own key (directly or through its dependents): it
    /// would wait on itself; `key` names the task.
    DASKR_ERROR_CYCLE = 2,
    /// `key` refers to a key that is not in the graph; `keys` holds that key.
    DASKR_ERROR_MISSING_DEPENDENCY = 3,
    /// A requested key (`key`) is not in the graph.
    DASKR_ERROR_MISSING_KEY = 4,
    /// The graph or a computation added to it is malformed (`key`: the entry) — a bad
    /// reference, nesting too deep, a NULL part.
    DASKR_ERROR_INVALID_GRAPH = 5,
    /// A plugin could not be loaded or used.
    DASKR_ERROR_PLUGIN = 6,
    /// The run was cancelled.
    DASKR_ERROR_CANCELLED = 7,
    /// A worker process died running a task.
    DASKR_ERROR_WORKER_DIED = 8,
    /// A bad argument to a function: NULL, invalid UTF-8, a freed graph, a task handle of
    /// another graph (`key`: the entry being added), an option out of range or that the
    /// scheduler cannot honour (a task timeout under sync, threads or distributed).
    DASKR_ERROR_INVALID_ARGUMENT = 9,
    /// The graph was changed during a get on it, or by two threads at once.
    DASKR_ERROR_GRAPH_IN_USE = 10,
    /// A value had another type than the one asked for.
    DASKR_ERROR_TYPE_MISMATCH = 11,
    /// A bug inside daskr (a caught panic).
    DASKR_ERROR_INTERNAL = 12,
    /// A file could not be read or written (missing, permission denied, a directory): the
    /// message names the path and the reason. Added in ABI 2.1; a caller built against an
    /// older header sees a number it has no name for.
    DASKR_ERROR_IO = 13,
}

impl From<ErrorKind> for daskr_error_kind_t {
    fn from(kind: ErrorKind) -> Self {
        use daskr_error_kind_t::*;
        match kind {
            ErrorKind::TaskFailed => DASKR_ERROR_TASK_FAILED,
            ErrorKind::Cycle => DASKR_ERROR_CYCLE,
            ErrorKind::MissingDependency => DASKR_ERROR_MISSING_DEPENDENCY,
            ErrorKind::MissingKey => DASKR_ERROR_MISSING_KEY,
            ErrorKind::InvalidGraph => DASKR_ERROR_INVALID_GRAPH,
            ErrorKind::Plugin => DASKR_ERROR_PLUGIN,
            ErrorKind::Cancelled => DASKR_ERROR_CANCELLED,
            ErrorKind::WorkerDied => DASKR_ERROR_WORKER_DIED,
            ErrorKind::InvalidArgument => DASKR_ERROR_INVALID_ARGUMENT,
            ErrorKind::GraphInUse => DASKR_ERROR_GRAPH_IN_USE,
            ErrorKind::TypeMismatch => DASKR_ERROR_TYPE_MISMATCH,
            ErrorKind::Internal => DASKR_ERROR_INTERNAL,
            ErrorKind::Io => DASKR_ERROR_IO,
        }
    }
}

/// An error. Owned by whoever received it; free it with `daskr_error_free`. Immutable, so it
/// may be read from any thread.
pub struct daskr_error_t {
    error: Error,
    key: Option<CString>,
    keys: Vec<CString>,
    message: CString,
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{fffd}")).expect("NULs were replaced")
}

pub(crate) fn into_raw(error: Error) -> *mut daskr_error_t {
    let key = error.key.as_deref().map(c_string);
    let keys = error.keys.iter().map(|k| c_string(k)).collect();
    let message = c_string(&error.message);
    Box::into_raw(Box::new(daskr_error_t {
        error,
        key,
        keys,
        message,
    }))
}

/// The error's kind. `error` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn daskr_error_kind(error: *const daskr_error_t) -> daskr_error_kind_t {
    match error.as_ref() {
        Some(e) => e.error.kind.into(),
        None => daskr_error_kind_t::DASKR_ERROR_INVALID_ARGUMENT,
    }
}

/// The stable name of a kind ("task_failed", "cycle", ...): `kind` is a `daskr_error_kind_t`
/// value; any other number gives "unknown". Static; do not free.
#[no_mangle]
pub extern "C" fn daskr_error_kind_name(kind: u32) -> *const c_char {
    use daskr_error_kind_t::*;
    // An integer, not the enum, crosses here: a C caller may pass any number, and a Rust enum
    // holding a value outside its variants is undefined behaviour.
    let name: &'static str = match kind {
        k if k == DASKR_ERROR_TASK_FAILED as u32 => "task_failed\0",
        k if k == DASKR_ERROR_CYCLE as u32 => "cycle\0",
        k if k == DASKR_ERROR_MISSING_DEPENDENCY as u32 => "missing_dependency\0",
        k if k == DASKR_ERROR_MISSING_KEY as u32 => "missing_key\0",
        k if k == DASKR_ERROR_INVALID_GRAPH as u32 => "invalid_graph\0",
        k if k == DASKR_ERROR_PLUGIN as u32 => "plugin\0",
        k if k == DASKR_ERROR_CANCELLED as u32 => "cancelled\0",
        k if k == DASKR_ERROR_WORKER_DIED as u32 => "worker_died\0",
        k if k == DASKR_ERROR_INVALID_ARGUMENT as u32 => "invalid_argument\0",
        k if k == DASKR_ERROR_GRAPH_IN_USE as u32 => "graph_in_use\0",
        k if k == DASKR_ERROR_TYPE_MISMATCH as u32 => "type_mismatch\0",
        k if k == DASKR_ERROR_INTERNAL as u32 => "internal\0",
        k if k == DASKR_ERROR_IO as u32 => "io\0",
        _ => "unknown\0",
    };
    name.as_ptr().cast()
}

/// The key at fault, or NULL if the error is not about one key. Borrowed from `error`: valid
/// until it is freed.
#[no_mangle]
pub unsafe extern "C" fn daskr_error_key(error: *const daskr_error_t) -> *const c_char {
    guard(|| match error.as_ref().and_then(|e| e.key.as_ref()) {
        Some(k) => k.as_ptr(),
        None => std::ptr::null(),
    })
}

/// How many other keys the error involves (the keys on a cycle, the missing dependency).
#[no_mangle]
pub unsafe extern "C" fn daskr_error_keys_len(error: *const daskr_error_t) -> usize {
    guard(|| error.as_ref().map_or(0, |e| e.keys.len()))
}

/// The i-th involved key, or NULL past the end. Borrowed from `error`.
#[no_mangle]
pub unsafe extern "C" fn daskr_error_keys_at(
    error: *const daskr_error_t,
    i: usize,
) -> *const c_char {
    guard(|| match error.as_ref().and_then(|e| e.keys.get(i)) {
        Some(k) => k.as_ptr(),
        None => std::ptr::null(),
    })
}

/// A message for people, naming what went wrong. Borrowed from `error`; never NULL for a
/// non-NULL error.
#[no_mangle]
pub unsafe extern "C" fn daskr_error_message(error: *const daskr_error_t) -> *const c_char {
    guard(|| match error.as_ref() {
        Some(e) => e.message.as_ptr(),
        None => c"(null error)".as_ptr(),
    })
}

/// Frees an error. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn daskr_error_free(error: *mut daskr_error_t) {
    guard(|| {
        if !error.is_null() {
            drop(Box::from_raw(error));
        }
    })
}
