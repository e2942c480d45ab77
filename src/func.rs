//! Task functions and the call context a running task sees.
//!
//! One C signature serves every task: `void fn(daskr_call_t *call, void *user_data)`. The task
//! reads its arguments from `call`, and sets its result or its failure on it. Rust closures are
//! accepted too (the engine's own tests and tools use them).

use std::any::Any;
use std::ffi::c_void;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use crate::abi::daskr_call_t;
use crate::keys::KeyOf;
use crate::value::Value;

/// The C task signature.
pub type TaskFn = unsafe extern "C" fn(call: *mut daskr_call_t, user_data: *mut c_void);

/// Frees a C function's user data when the last graph using it goes away.
pub type FreeFn = unsafe extern "C" fn(user_data: *mut c_void);

type RustFn = dyn Fn(&mut Call<'_>) + Send + Sync;

enum Imp {
    C {
        f: TaskFn,
        user_data: *mut c_void,
        free: Option<FreeFn>,
    },
    Rust(Box<RustFn>),
}

struct Inner {
    name: Box<str>,
    imp: Imp,
    origin: Option<Origin>,
    /// The version the result cache keys this function's results by; None: its results are
    /// never cached (an impure plugin task, a function made without a version).
    cache_version: Option<Box<str>>,
}

/// Where a plugin's task function came from: enough to name it in a graph file and to load
/// it again in another process. Holding it keeps the plugin loaded.
#[derive(Clone)]
pub struct Origin {
    /// The plugin library's absolute path.
    pub path: Arc<Path>,
    /// The name the plugin declares for itself.
    pub plugin: Arc<str>,
    /// The exported symbol.
    pub symbol: Box<str>,
    /// The alias a graph file gave the plugin, if the function came from one.
    pub alias: Option<Box<str>>,
    /// The loaded library, held (never read) so every function taken from it keeps it alive.
    #[allow(dead_code)]
    pub(crate) library: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} ({})",
            self.plugin,
            self.symbol,
            self.path.display()
        )
    }
}

// SAFETY: whoever registers a C function promises (in the header) that it and its user data
// may be used from any thread, concurrently.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Imp::C {
            user_data,
            free: Some(free),
            ..
        } = self.imp
        {
            // SAFETY: supplied together with `user_data` by the creator; Arc makes this run once.
            unsafe { free(user_data) }
        }
    }
}

/// A named task function, cheap to clone (shared by every task that uses it).
#[derive(Clone)]
pub struct Func(Arc<Inner>);

impl Func {
    /// A C function with its user data; `free` (if any) runs once, when the last reference
    /// to this function is dropped.
    pub fn from_c(name: &str, f: TaskFn, user_data: *mut c_void, free: Option<FreeFn>) -> Func {
        Func(Arc::new(Inner {
            name: name.into(),
            imp: Imp::C { f, user_data, free },
            origin: None,
            cache_version: None,
        }))
    }

    /// `from_c` for a pure function whose results the result cache may keep: the same
    /// `version` and arguments always give the same result (change `version` when the code
    /// changes).
    pub fn from_c_versioned(
        name: &str,
        f: TaskFn,
        user_data: *mut c_void,
        free: Option<FreeFn>,
        version: &str,
    ) -> Func {
        Func(Arc::new(Inner {
            name: name.into(),
            imp: Imp::C { f, user_data, free },
            origin: None,
            cache_version: Some(version.into()),
        }))
    }

    /// A C function exported by a plugin (no user data); it keeps the plugin loaded.
    /// `version`: the plugin's, for a pure task (None for an impure one).
    pub(crate) fn from_plugin(
        name: &str,
        f: TaskFn,
        origin: Origin,
        version: Option<&str>,
    ) -> Func {
        Func(Arc::new(Inner {
            name: name.into(),
            imp: Imp::C {
                f,
                user_data: std::ptr::null_mut(),
                free: None,
            },
            origin: Some(origin),
            cache_version: version.map(Into::into),
        }))
    }

    /// A Rust closure.
    pub fn new(name: &str, f: impl Fn(&mut Call<'_>) + Send + Sync + 'static) -> Func {
        Func(Arc::new(Inner {
            name: name.into(),
            imp: Imp::Rust(Box::new(f)),
            origin: None,
            cache_version: None,
        }))
    }

    /// A pure Rust closure whose results the result cache may keep, keyed by `version`.
    pub fn new_versioned(
        name: &str,
        version: &str,
        f: impl Fn(&mut Call<'_>) + Send + Sync + 'static,
    ) -> Func {
        Func(Arc::new(Inner {
            name: name.into(),
            imp: Imp::Rust(Box::new(f)),
            origin: None,
            cache_version: Some(version.into()),
        }))
    }

    /// The version the result cache keys this function by (None: never cached).
    pub fn cache_version(&self) -> Option<&str> {
        self.0.cache_version.as_deref()
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The plugin and symbol this function was loaded from, if it came from a plugin.
    pub fn origin(&self) -> Option<&Origin> {
        self.0.origin.as_ref()
    }

    /// An address identifying this function (shared by its clones).
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Runs the function on `call`. A panic in a Rust closure becomes the task's failure.
    pub(crate) fn invoke(&self, call: &mut Call<'_>) {
        match &self.0.imp {
            Imp::C { f, user_data, .. } => {
                // SAFETY: `call` outlives the call; C sees it only through daskr_call_* functions.
                unsafe { f(call as *mut Call<'_> as *mut daskr_call_t, *user_data) }
            }
            Imp::Rust(f) => {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(call))) {
                    call.fail(format!("task panicked: {}", panic_message(&*panic)));
                }
            }
        }
    }
}

impl fmt::Debug for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Func({})", self.name())
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// What a task did.
pub(crate) enum Outcome {
    Returned(Value),
    Failed(String),
}

/// What a running task sees: its key, its arguments (borrowed for the call) and where its
/// result goes.
pub struct Call<'a> {
    /// The graph entry being computed, whose key (with a trailing NUL; None: the entry is
    /// anonymous) is looked up only if the task asks.
    pub(crate) key: KeyOf<'a>,
    pub(crate) args: &'a [*const Value],
    /// Keyword names (each with a trailing NUL) and their values, in the order given.
    pub(crate) kwnames: &'a [&'a [u8]],
    pub(crate) kwargs: &'a [*const Value],
    pub(crate) outcome: Outcome,
}

impl<'a> Call<'a> {
    /// The key of the graph entry this task computes (for an inline task, the enclosing
    /// entry); None if that entry is anonymous.
    pub fn key(&self) -> Option<&str> {
        // SAFETY: keys are interned from &str; the slice ends with the NUL we strip here.
        self.key
            .c_name()
            .map(|k| unsafe { std::str::from_utf8_unchecked(&k[..k.len() - 1]) })
    }

    pub fn nargs(&self) -> usize {
        self.args.len()
    }

    pub fn arg(&self, i: usize) -> Option<&Value> {
        // SAFETY: every pointer refers to a value that lives until the call ends.
        self.args.get(i).map(|&p| unsafe { &*p })
    }

    pub fn nkwargs(&self) -> usize {
        self.kwargs.len()
    }

    pub fn kwarg(&self, name: &str) -> Option<&Value> {
        let i = self
            .kwnames
            .iter()
            .position(|n| &n[..n.len() - 1] == name.as_bytes())?;
        // SAFETY: as in `arg`.
        Some(unsafe { &*self.kwargs[i] })
    }

    /// The i-th keyword argument's name and value.
    pub fn kwarg_at(&self, i: usize) -> Option<(&str, &Value)> {
        let name = self.kwnames.get(i)?;
        // SAFETY: names are interned from &str; values as in `arg`.
        unsafe {
            Some((
                std::str::from_utf8_unchecked(&name[..name.len() - 1]),
                &*self.kwargs[i],
            ))
        }
    }

    pub(crate) fn kwname_c(&self, i: usize) -> Option<&[u8]> {
        self.kwnames.get(i).copied()
    }

    /// Sets the result (replacing an earlier one, or an earlier failure).
    pub fn ret(&mut self, value: Value) {
        self.outcome = Outcome::Returned(value);
    }

    /// Marks the task failed with a message; its result, if any, is dropped.
    pub fn fail(&mut self, message: impl Into<String>) {
        self.outcome = Outcome::Failed(message.into());
    }
}
