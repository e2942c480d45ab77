//! `daskr_graph_t`, `daskr_func_t` and `daskr_comp_t`: building graphs over the C ABI.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use super::graph_lock::{GraphLock, ReadGuard, WriteGuard};
use super::value::{daskr_value_t, take};
use super::{arg_str, guard, put, status};
use crate::abi::daskr_call_t;
use crate::comp::{Comp, TaskId};
use crate::error::{Error, ErrorKind};
use crate::ffi::daskr_error_t;
use crate::func::Func;
use crate::graph::{Args, Graph, ValidKey};
use crate::task_args::{self, AddTo, TaskParts};

/// A handle to a graph entry, returned when it is added (and by `daskr_graph_handle`). Valid
/// for the graph that made it, for that graph's whole life. It names its graph as well as the
/// entry, so using it with another graph fails with `DASKR_ERROR_INVALID_ARGUMENT` (and
/// `daskr_graph_key` gives NULL) instead of reaching an entry of that graph. Opaque: compare
/// handles for equality, nothing more (0 is never a handle).
pub type daskr_task_t = u64;

/// A task function: reads its arguments from `call` and sets its result (or its failure) on
/// it — see the `daskr_call_*` functions. It may run on any thread, concurrently with itself.
pub type daskr_task_fn =
    Option<unsafe extern "C" fn(call: *mut daskr_call_t, user_data: *mut c_void)>;

/// Frees user data.
pub type daskr_free_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A task graph.
///
/// Thread safety: any number of threads may run `daskr_graph_get` on one graph at once.
/// Changing it (`daskr_graph_add*`) while a get on it runs — or from two threads at once —
/// fails with `DASKR_ERROR_GRAPH_IN_USE` instead of racing; nothing is changed then. Freeing it
/// while gets on it run is deferred until the last of them returns (see `daskr_graph_free`).
pub struct daskr_graph_t {
    magic: AtomicU64,
    /// The caller's reference (until `daskr_graph_free`) plus one per running get: the last
    /// to let go frees the graph.
    refs: AtomicU64,
    graph: GraphLock,
}

const LIVE: u64 = 0x6461_736b_7267_7068;

/// A named task function with its user data; shared (reference-counted) by the graphs that
/// use it. The function may be called from any of daskr's threads, several at once; the handle
/// itself may be used and freed from any thread.
pub struct daskr_func_t(pub(crate) Func);

pub use crate::abi::daskr_comp_t;

// ---- graphs ----

/// A new, empty graph. Owned by the caller: free it with `daskr_graph_free`.
#[no_mangle]
pub extern "C" fn daskr_graph_new() -> *mut daskr_graph_t {
    guard(|| daskr_graph_t::from_graph(Graph::new()))
}

/// Frees a graph and everything it holds (literal values, its references to functions).
/// NULL is ignored.
///
/// While gets on the graph run — on other threads, or the get whose task or callback calls
/// this — the free is deferred: the graph is gone for every new call at once (they fail
/// with `DASKR_ERROR_INVALID_ARGUMENT`, "not a live daskr graph"), the running gets finish
/// normally, and the last of them to return frees it (the destructors of its literal values
/// and functions' user data then run on that get's thread, before it returns). A get that
/// starts after the free, or races with it from another thread, uses freed memory: as with
/// any free, no call may be made with the pointer once it is freed.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_free(graph: *mut daskr_graph_t) {
    guard(|| {
        if let Some(g) = graph.as_ref() {
            if g.magic.swap(0, Ordering::AcqRel) == LIVE {
                release(graph);
            }
        }
    })
}

/// Drops one reference to `graph`, freeing it with the last.
unsafe fn release(graph: *const daskr_graph_t) {
    if (*graph).refs.fetch_sub(1, Ordering::Release) == 1 {
        // Every other reference's uses happen before this free (as in `Arc`'s drop).
        std::sync::atomic::fence(Ordering::Acquire);
        drop(Box::from_raw(graph.cast_mut()));
    }
}

/// A live graph held for the length of a call that runs user code (a get): a
/// `daskr_graph_free` meanwhile only marks it dead, and dropping this frees it then.
pub(crate) struct Held(*const daskr_graph_t);

impl Held {
    pub(crate) fn graph(&self) -> &daskr_graph_t {
        // SAFETY: this reference keeps the graph allocated.
        unsafe { &*self.0 }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: the reference taken by `hold`.
        unsafe { release(self.0) }
    }
}

/// `live`, holding the graph (see `Held`).
pub(crate) unsafe fn hold(graph: *const daskr_graph_t) -> Result<Held, Error> {
    let g = live(graph)?;
    g.refs.fetch_add(1, Ordering::Relaxed);
    Ok(Held(g))
}

pub(crate) unsafe fn live<'a>(graph: *const daskr_graph_t) -> Result<&'a daskr_graph_t, Error> {
    match graph.as_ref() {
        None => Err(Error::invalid_argument("graph is NULL")),
        Some(g) if g.magic.load(Ordering::Acquire) == LIVE => Ok(g),
        Some(_) => Err(Error::invalid_argument(
            "graph is not a live daskr graph (was it freed?)",
        )),
    }
}

impl daskr_graph_t {
    /// A new C handle owning `graph` (free it with `daskr_graph_free`).
    pub(crate) fn from_graph(graph: Graph) -> *mut daskr_graph_t {
        Box::into_raw(Box::new(daskr_graph_t {
            magic: AtomicU64::new(LIVE),
            refs: AtomicU64::new(1),
            graph: GraphLock::new(graph),
        }))
    }

    pub(crate) fn read(&self) -> ReadGuard<'_> {
        self.graph.read()
    }

    /// Runs `change` on the graph under its write lock. Pointer values dropped meanwhile (a
    /// rejected literal, say) have their destructors run after the lock is released, so a
    /// destructor that reads the graph cannot deadlock.
    fn change<R>(&self, change: impl FnOnce(&mut Graph) -> Result<R, Error>) -> Result<R, Error> {
        crate::value::defer_destructors(|| change(&mut *self.write()?))
    }

    fn write(&self) -> Result<WriteGuard<'_>, Error> {
        self.graph.try_write().ok_or_else(|| {
            Error::new(
                ErrorKind::GraphInUse,
                "the graph cannot change now: a get on it is running, or another thread is changing it",
            )
        })
    }
}

/// The number of entries defined in the graph.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_len(graph: *const daskr_graph_t) -> usize {
    guard(|| live(graph).map_or(0, |g| g.read().len()))
}

/// Whether `key` is defined in the graph.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_contains(
    graph: *const daskr_graph_t,
    key: *const c_char,
) -> bool {
    guard(|| match (live(graph), arg_str(key, "key")) {
        (Ok(g), Ok(k)) => g.read().contains(k),
        _ => false,
    })
}

/// What every add function does once it owns its parts: check the graph and the key, add the
/// entry under the write lock (pointer destructors waiting until it is released), and report
/// its handle.
unsafe fn add_entry<T>(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    out_task: *mut daskr_task_t,
    parts: T,
    add: impl FnOnce(&mut Graph, Option<&str>, T) -> Result<TaskId, Error>,
) -> Result<(), Error> {
    let id = Entry { graph, key }.add(true, |g, key| add(g, key.map(ValidKey::as_str), parts))?;
    put_task(out_task, id)
}

/// An entry being added, as the C caller named it: checked when the engine asks for the
/// graph. Made only by the `extern "C"` add functions, from their own arguments.
struct Entry {
    graph: *mut daskr_graph_t,
    key: *const c_char,
}

impl AddTo for Entry {
    // Inlined into each path of `task_args::add_task`, as the checks were when each path
    // wrote them out: the handles-only path is the hot path of building.
    #[inline(always)]
    fn add(
        self,
        defer: bool,
        add: impl FnOnce(&mut Graph, Option<ValidKey<'_>>) -> Result<TaskId, Error>,
    ) -> Result<TaskId, Error> {
        // SAFETY: the C caller's pointers, checked here as every add function checks them. A
        // NULL key adds an anonymous entry.
        let g = unsafe { live(self.graph)? };
        let key = match self.key.is_null() {
            true => None,
            false => Some(ValidKey::nul_free(unsafe { arg_str(self.key, "key")? })?),
        };
        if defer {
            g.change(|g| add(g, key))
        } else {
            add(&mut *g.write()?, key)
        }
    }
}

/// Adds the entry `key` computing `comp`. Takes `comp` (on failure too). On success, if
/// `out_task` is not NULL, `*out_task` is the entry's handle. Fails on an empty or non-UTF-8
/// key, a key already defined, a bad computation (the error names the key).
///
/// A NULL `key` adds an *anonymous* entry, as every add function but `daskr_graph_add_alias`
/// does: it has no key, costs no key storage or hashing, and is reached only by its handle (in
/// computations, and by `daskr_graph_get_task` / `daskr_graph_get_tasks`). Where something must
/// name it — an error, a callback, a trace, a graph file, another process — its name is
/// `#<index>` (the handle's low 32 bits), with `'` appended while that is a key of the graph.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_add(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    comp: *mut daskr_comp_t,
    out_task: *mut daskr_task_t,
) -> *mut daskr_error_t {
    status(|| {
        add_entry(
            graph,
            key,
            out_task,
            Comp::from_raw(comp),
            |g, key, comp| {
                let Some(comp) = comp else {
                    return Err(Error::invalid_graph(&g.label(key), "computation is NULL"));
                };
                match key {
                    Some(key) => g.add(key, comp),
                    None => g.add_anonymous(comp),
                }
            },
        )
    })
}

/// Adds the task entry `key`: `func(args..., kwnames[i]=kwvalues[i]...)`. Takes every
/// `args[i]` and `kwvalues[i]` (on failure too); `func`, `kwnames` and the arrays are
/// borrowed. `*out_task` (if not NULL) receives the entry's handle. A NULL `key` adds an
/// anonymous task (see `daskr_graph_add`): the cheapest way to add the tasks of a big graph.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_add_task(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    func: *const daskr_func_t,
    args: *const *mut daskr_comp_t,
    nargs: usize,
    kwnames: *const *const c_char,
    kwvalues: *const *mut daskr_comp_t,
    nkwargs: usize,
    out_task: *mut daskr_task_t,
) -> *mut daskr_error_t {
    status(|| {
        let func_ref = func.as_ref().map(|f| &f.0);
        let id = task_args::add_task(Entry { graph, key }, func_ref, args, nargs, nkwargs, || {
            task_parts(func, args, nargs, kwnames, kwvalues, nkwargs)
        })?;
        put_task(out_task, id)
    })
}

/// Adds the literal entry `key` with `value`. Takes `value` (on failure too). A NULL `key`
/// adds an anonymous literal (see `daskr_graph_add`).
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_add_value(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    value: *mut daskr_value_t,
    out_task: *mut daskr_task_t,
) -> *mut daskr_error_t {
    status(|| {
        add_entry(graph, key, out_task, take(value), |g, key, value| {
            let Some(value) = value else {
                return Err(Error::invalid_graph(&g.label(key), "value is NULL"));
            };
            match key {
                Some(key) => g.add_value(key, value),
                None => g.add_anonymous(Comp::value(value)),
            }
        })
    })
}

/// Adds the alias `key`, whose value is the value of `target`.
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_add_alias(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    target: *const c_char,
    out_task: *mut daskr_task_t,
) -> *mut daskr_error_t {
    status(|| {
        add_entry(graph, key, out_task, target, |g, key, target| {
            let key =
                key.ok_or_else(|| Error::invalid_argument("an alias needs a key (key is NULL)"))?;
            let target = arg_str(target, "alias target")
                .map_err(|e| Error::invalid_graph(key, e.message))?;
            g.add_alias(key, target)
        })
    })
}

/// The handle of `key` in `*out_task`, whether or not the key is defined yet (so an entry can
/// be referred to by handle before it is added).
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_handle(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    out_task: *mut daskr_task_t,
) -> *mut daskr_error_t {
    status(|| {
        let g = live(graph)?;
        let key = arg_str(key, "key")?;
        if out_task.is_null() {
            return Err(Error::invalid_argument("out_task is NULL"));
        }
        let id = g.change(|g| g.intern(key))?;
        put(out_task, id.0, "out_task")
    })
}

/// The key behind a handle (NUL-terminated, borrowed from the graph: valid until the graph
/// is next changed or freed), or NULL for a handle the graph did not hand out or one of an
/// anonymous entry (added with a NULL key: it has none).
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_key(
    graph: *const daskr_graph_t,
    task: daskr_task_t,
) -> *const c_char {
    guard(|| {
        let Ok(g) = live(graph) else {
            return std::ptr::null();
        };
        let g = g.read();
        match g.resolve(task).and_then(|id| g.key_of(id).c_name()) {
            Some(key) => key.as_ptr().cast(),
            None => std::ptr::null(),
        }
    })
}

unsafe fn put_task(out: *mut daskr_task_t, id: TaskId) -> Result<(), Error> {
    if !out.is_null() {
        put(out, id.0, "out_task")?;
    }
    Ok(())
}

// ---- functions ----

/// A new task function named `name` (used in errors, traces and pictures). `user_data` is
/// passed to every call; `free_user_data` (if not NULL) runs once when the last graph or
/// handle using the function is gone — and right away if this call fails. On success
/// `*out` is owned by the caller: free it with `daskr_func_free` (graphs keep their own
/// reference, so that may happen right after adding tasks).
#[no_mangle]
pub unsafe extern "C" fn daskr_func_new(
    name: *const c_char,
    fn_: daskr_task_fn,
    user_data: *mut c_void,
    free_user_data: daskr_free_fn,
    out: *mut *mut daskr_func_t,
) -> *mut daskr_error_t {
    status(|| func_new(name, fn_, user_data, free_user_data, out, |_| Ok(None)))
}

/// What both function constructors do: check the arguments — `cache_version`, given the
/// name, checks what only one of them takes and says under which version a pure function's
/// results may be cached — make the function, and free `user_data` if anything was wrong.
unsafe fn func_new<'a>(
    name: *const c_char,
    fn_: daskr_task_fn,
    user_data: *mut c_void,
    free_user_data: daskr_free_fn,
    out: *mut *mut daskr_func_t,
    cache_version: impl FnOnce(&str) -> Result<Option<&'a str>, Error>,
) -> Result<(), Error> {
    let checked = (|| {
        let name = arg_str(name, "name")?;
        let version = cache_version(name)?;
        let f = fn_.ok_or_else(|| Error::invalid_argument(format!("function '{name}' is NULL")))?;
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        Ok((name, version, f))
    })();
    match checked {
        Ok((name, version, f)) => {
            let func = match version {
                Some(version) => {
                    Func::from_c_versioned(name, f, user_data, free_user_data, version)
                }
                None => Func::from_c(name, f, user_data, free_user_data),
            };
            put(out, Box::into_raw(Box::new(daskr_func_t(func))), "out")
        }
        Err(e) => {
            if let Some(free) = free_user_data {
                free(user_data);
            }
            Err(e)
        }
    }
}

/// Flags for `daskr_func_new_versioned`.
/// `DASKR_FUNC_PURE`: the function's result depends on its arguments alone (not on the clock,
/// files, randomness or state), so the result cache may keep it.
pub const DASKR_FUNC_PURE: u32 = 1;

/// `daskr_func_new` for a function whose results a result cache (`daskr_cache_t`) may keep:
/// with `DASKR_FUNC_PURE` in `flags`, its results are stored under its name, `version` and its
/// arguments — change `version` whenever the function's code changes what it returns. Without
/// that flag it is never cached (as with `daskr_func_new`). Other flag bits are refused.
#[no_mangle]
pub unsafe extern "C" fn daskr_func_new_versioned(
    name: *const c_char,
    fn_: daskr_task_fn,
    user_data: *mut c_void,
    free_user_data: daskr_free_fn,
    version: *const c_char,
    flags: u32,
    out: *mut *mut daskr_func_t,
) -> *mut daskr_error_t {
    status(|| {
        func_new(name, fn_, user_data, free_user_data, out, |name| {
            let version = arg_str(version, "version")?;
            if flags & !DASKR_FUNC_PURE != 0 {
                return Err(Error::invalid_argument(format!(
                    "flags of function '{name}' are {flags:#x}: only DASKR_FUNC_PURE (1) is known"
                )));
            }
            Ok((flags & DASKR_FUNC_PURE != 0).then_some(version))
        })
    })
}

/// Releases the caller's reference to a function. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn daskr_func_free(func: *mut daskr_func_t) {
    guard(|| {
        if !func.is_null() {
            drop(Box::from_raw(func));
        }
    })
}

// ---- computations ----
//
// A `daskr_comp_t *` is a computation in its raw encoding (`Comp::into_raw`, which says why it
// is what it is); every function that takes one decodes it with `Comp::from_raw`.

unsafe fn take_comps(items: *const *mut daskr_comp_t, n: usize, what: &str) -> Result<Args, Error> {
    if n == 0 {
        return Ok(Args::new());
    }
    if items.is_null() {
        return Err(Error::invalid_argument(format!(
            "{what} is NULL but its length is {n}"
        )));
    }
    // Take every item before reporting a NULL one, so nothing handed over leaks.
    let mut comps = Args::with_capacity(n);
    let mut null_at = None;
    for (i, &p) in std::slice::from_raw_parts(items, n).iter().enumerate() {
        match Comp::from_raw(p) {
            Some(c) => comps.push(c),
            None => {
                null_at.get_or_insert(i);
            }
        }
    }
    match null_at {
        None => Ok(comps),
        Some(i) => Err(Error::invalid_argument(format!("{what}[{i}] is NULL"))),
    }
}

/// Takes a task's argument computations (all of them, before anything can fail).
unsafe fn task_parts<'f>(
    func: *const daskr_func_t,
    args: *const *mut daskr_comp_t,
    nargs: usize,
    kwnames: *const *const c_char,
    kwvalues: *const *mut daskr_comp_t,
    nkwargs: usize,
) -> Result<TaskParts<'f>, Error> {
    let args = take_comps(args, nargs, "args");
    let kwvalues = take_comps(kwvalues, nkwargs, "kwargs");
    let func = func
        .as_ref()
        .ok_or_else(|| Error::invalid_argument("function is NULL"))?;
    let (args, kwvalues) = (args?, kwvalues?);
    if nkwargs > 0 && kwnames.is_null() {
        return Err(Error::invalid_argument(
            "kwnames is NULL but there are keyword arguments",
        ));
    }
    let mut kwargs = Vec::with_capacity(nkwargs);
    for (i, v) in kwvalues.into_iter().enumerate() {
        let name = arg_str(*kwnames.add(i), &format!("keyword name {i}"))?;
        kwargs.push((name.to_string(), v));
    }
    Ok((&func.0, args, kwargs))
}

/// A literal computation. Takes `value`.
#[no_mangle]
pub unsafe extern "C" fn daskr_comp_value(value: *mut daskr_value_t) -> *mut daskr_comp_t {
    guard(|| match take(value) {
        Some(v) => Comp::into_raw(Comp::value(v)),
        None => Comp::into_raw(Comp::invalid(Error::invalid_argument(
            "literal value is NULL",
        ))),
    })
}

/// A reference to the entry `key` (copied; it may be added later). Problems with `key` are
/// reported when the computation is added, naming the entry.
#[no_mangle]
pub unsafe extern "C" fn daskr_comp_ref(key: *const c_char) -> *mut daskr_comp_t {
    guard(|| match arg_str(key, "referenced key") {
        Ok(k) => Comp::into_raw(Comp::key(k)),
        Err(e) => Comp::into_raw(Comp::invalid(e)),
    })
}

/// A reference to the entry behind a handle. Costs no allocation and no key lookup. A
/// handle of another graph is refused when the computation is added.
#[no_mangle]
pub extern "C" fn daskr_comp_ref_task(task: daskr_task_t) -> *mut daskr_comp_t {
    Comp::id(TaskId(task)).into_raw()
}

/// A list computation: evaluates to the list of its items' values. Takes every `items[i]`.
#[no_mangle]
pub unsafe extern "C" fn daskr_comp_list(
    items: *const *mut daskr_comp_t,
    n: usize,
) -> *mut daskr_comp_t {
    guard(|| match take_comps(items, n, "items") {
        Ok(items) => Comp::into_raw(Comp::list(items.into_vec())),
        Err(e) => Comp::into_raw(Comp::invalid(e)),
    })
}

/// A map computation: evaluates to the map of `names[i]` to the value of `values[i]`, in this
/// order (references in the values are resolved like a list's items). Names are as for
/// `daskr_value_map` (NUL-terminated, or `name_lens[i]` bytes when `name_lens` is not NULL).
/// Takes every `values[i]`; `names`, `name_lens` and `values` themselves are borrowed. A bad
/// name (NULL, not UTF-8, given twice) or a NULL value is reported when the computation is
/// added, naming the entry and the name.
#[no_mangle]
pub unsafe extern "C" fn daskr_comp_map(
    names: *const *const c_char,
    name_lens: *const usize,
    values: *const *mut daskr_comp_t,
    n: usize,
) -> *mut daskr_comp_t {
    guard(|| {
        let values = take_comps(values, n, "values");
        let comp = match (super::value::map_names(names, name_lens, n), values) {
            (Ok(names), Ok(values)) => Comp::map_of(names, values.into_vec()),
            (Err(e), _) | (_, Err(e)) => Comp::invalid(e),
        };
        Comp::into_raw(comp)
    })
}

/// An inline task: evaluated as part of the entry that contains it, not scheduled alone.
/// Takes `args[i]` and `kwvalues[i]`; `func` and `kwnames` are borrowed.
#[no_mangle]
pub unsafe extern "C" fn daskr_comp_task(
    func: *const daskr_func_t,
    args: *const *mut daskr_comp_t,
    nargs: usize,
    kwnames: *const *const c_char,
    kwvalues: *const *mut daskr_comp_t,
    nkwargs: usize,
) -> *mut daskr_comp_t {
    guard(|| {
        Comp::into_raw(
            match task_parts(func, args, nargs, kwnames, kwvalues, nkwargs) {
                Ok((func, args, kwargs)) => Comp::task(func, args.into_vec(), kwargs),
                Err(e) => Comp::invalid(e),
            },
        )
    })
}

/// Frees a computation that was not passed on. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn daskr_comp_free(comp: *mut daskr_comp_t) {
    guard(|| drop(Comp::from_raw(comp)))
}
