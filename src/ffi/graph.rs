//! `daskr_graph_t`, `daskr_func_t` and `daskr_comp_t`: building graphs over the C ABI.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use super::graph_lock::{GraphLock, ReadGuard, WriteGuard};
use super::value::{daskr_value_t, take};
use super::{arg_str, guard, put, status};
use crate::comp::{Comp, TaskId};
use crate::comp::{CompKind, Node, Repr};
use crate::error::{Error, ErrorKind};
use crate::ffi::daskr_error_t;
use crate::func::{daskr_call_t, Func};
use crate::graph::{Arg, Args, Graph, SimpleArgs};
use crate::value::MAX_NESTING;
use smallvec::SmallVec;

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

/// A computation being built: a literal, a reference, a list or an inline task. Owned by the
/// caller until passed to a function that takes it (or freed with `daskr_comp_free`); not
/// meant to be shared between threads before that.
// Never made: a `daskr_comp_t *` is a handle tagged in its low bit, or the address of a
// boxed `Node` (see `comp_ptr`).
pub struct daskr_comp_t {
    _opaque: [u8; 0],
}

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
/// entry under the write lock, and report its handle.
unsafe fn add_entry<T>(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    out_task: *mut daskr_task_t,
    parts: T,
    add: impl FnOnce(&mut Graph, &str, T) -> Result<TaskId, Error>,
) -> Result<(), Error> {
    add_entry_deferring(graph, key, out_task, parts, true, add)
}

/// `add_entry`, saying whether pointer destructors dropped meanwhile must wait until the lock
/// is released (`defer`: parts holding no values need not pay for that).
unsafe fn add_entry_deferring<T>(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    out_task: *mut daskr_task_t,
    parts: T,
    defer: bool,
    add: impl FnOnce(&mut Graph, &str, T) -> Result<TaskId, Error>,
) -> Result<(), Error> {
    let g = live(graph)?;
    let key = arg_str(key, "key")?;
    let id = if defer {
        g.change(|g| add(g, key, parts))?
    } else {
        add(&mut *g.write()?, key, parts)?
    };
    put_task(out_task, id)
}

/// Adds the entry `key` computing `comp`. Takes `comp` (on failure too). On success, if
/// `out_task` is not NULL, `*out_task` is the entry's handle. Fails on a NULL, empty or
/// non-UTF-8 key, a key already defined, a bad computation (the error names the key).
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_add(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    comp: *mut daskr_comp_t,
    out_task: *mut daskr_task_t,
) -> *mut daskr_error_t {
    status(|| {
        add_entry(graph, key, out_task, take_comp(comp), |g, key, comp| {
            g.add(
                key,
                comp.ok_or_else(|| Error::invalid_graph(key, "computation is NULL"))?,
            )
        })
    })
}

/// Adds the task entry `key`: `func(args..., kwnames[i]=kwvalues[i]...)`. Takes every
/// `args[i]` and `kwvalues[i]` (on failure too); `func`, `kwnames` and the arrays are
/// borrowed. `*out_task` (if not NULL) receives the entry's handle.
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
        if let (Some(f), 0) = (func.as_ref(), nkwargs) {
            // Only handles: nothing to take. Handles and literals: taken, so only when this
            // path will use them.
            let mut refs: SmallVec<[u64; 8]> = SmallVec::new();
            if handle_args(args, nargs, &mut refs) {
                let g = live(graph)?;
                let key = arg_str(key, "key")?;
                let id = g.write()?.add_task_simple(key, &f.0, &mut refs)?;
                return put_task(out_task, id);
            }
            if let Some(mut simple) = simple_args(args, nargs) {
                let g = live(graph)?;
                let key = arg_str(key, "key")?;
                let id = g.write()?.add_task_simple(key, &f.0, &mut simple);
                drop(simple); // what a failed add left, now that the lock is released
                return put_task(out_task, id?);
            }
        }
        let parts = task_parts(func, args, nargs, kwnames, kwvalues, nkwargs);
        // The usual task of a big graph refers to its inputs by handle only: nothing it holds
        // can run a destructor, so it skips deferring them (a thread-local round trip).
        let handles_only = matches!(&parts, Ok((_, args, kwargs))
            if kwargs.is_empty() && args.iter().all(Comp::is_handle));
        let add = |g: &mut Graph, key: &str, parts: Result<TaskParts<'_>, Error>| {
            let (func, args, kwargs) = parts.map_err(|e| Error::invalid_graph(key, e.message))?;
            g.add_task_args(key, func, args, kwargs)
        };
        add_entry_deferring(graph, key, out_task, parts, !handles_only, add)
    })
}

/// Adds the literal entry `key` with `value`. Takes `value` (on failure too).
#[no_mangle]
pub unsafe extern "C" fn daskr_graph_add_value(
    graph: *mut daskr_graph_t,
    key: *const c_char,
    value: *mut daskr_value_t,
    out_task: *mut daskr_task_t,
) -> *mut daskr_error_t {
    status(|| {
        add_entry(graph, key, out_task, take(value), |g, key, value| {
            g.add_value(
                key,
                value.ok_or_else(|| Error::invalid_graph(key, "value is NULL"))?,
            )
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
/// is next changed or freed), or NULL for a handle the graph did not hand out.
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
        match g.resolve(task) {
            Some(id) => g.key_c(id).as_ptr().cast(),
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
    status(|| {
        let checked = (|| {
            let name = arg_str(name, "name")?;
            let f =
                fn_.ok_or_else(|| Error::invalid_argument(format!("function '{name}' is NULL")))?;
            if out.is_null() {
                return Err(Error::invalid_argument("out is NULL"));
            }
            Ok((name, f))
        })();
        match checked {
            Ok((name, f)) => put(
                out,
                Box::into_raw(Box::new(daskr_func_t(Func::from_c(
                    name,
                    f,
                    user_data,
                    free_user_data,
                )))),
                "out",
            ),
            Err(e) => {
                if let Some(free) = free_user_data {
                    free(user_data);
                }
                Err(e)
            }
        }
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
// A reference by handle is the hot path of graph building, so it costs no allocation: its
// `daskr_comp_t *` is the handle itself, tagged in the low bit. Any other comp is the box of
// its node (`Comp`'s own: no second allocation), whose address is even. Every function that
// takes a comp decodes it through `take_comp`.

fn comp_ptr(comp: Comp) -> *mut daskr_comp_t {
    match comp.0 {
        Repr::Id(id) => daskr_comp_ref_task(id),
        Repr::Node(node) => Box::into_raw(node).cast(),
    }
}

pub(crate) unsafe fn take_comp(p: *mut daskr_comp_t) -> Option<Comp> {
    if p.is_null() {
        None
    } else if p as usize & 1 == 1 {
        Some(Comp(Repr::Id((p as usize >> 1) as u64)))
    } else {
        Some(Comp(Repr::Node(Box::from_raw(p.cast::<Node>()))))
    }
}

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
        match take_comp(p) {
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

/// Puts the entry ids of `args` in `ids` if every one is a reference by handle
/// (`daskr_comp_ref_task`), which owns nothing; false (`ids` to be ignored) otherwise.
unsafe fn handle_args(
    args: *const *mut daskr_comp_t,
    n: usize,
    ids: &mut SmallVec<[u64; 8]>,
) -> bool {
    if n == 0 {
        return true;
    }
    if args.is_null() {
        return false;
    }
    for &p in std::slice::from_raw_parts(args, n) {
        if p as usize & 1 == 0 {
            return false;
        }
        ids.push((p as usize >> 1) as u64);
    }
    true
}

/// `args`, taken, if every one is a reference by handle (`daskr_comp_ref_task`) or a literal
/// (`daskr_comp_value`): then the task is added without flattening computations. None (and
/// nothing taken) otherwise.
unsafe fn simple_args(args: *const *mut daskr_comp_t, n: usize) -> Option<SimpleArgs> {
    if n == 0 {
        return Some(SimpleArgs::new());
    }
    if args.is_null() {
        return None;
    }
    let args = std::slice::from_raw_parts(args, n);
    let simple = |p: *mut daskr_comp_t| {
        p as usize & 1 == 1
            || p.cast::<Node>().as_ref().is_some_and(|node| {
                // As deep as the general path accepts (one level for the task around it).
                matches!(node.kind, CompKind::Value(_)) && node.depth < MAX_NESTING
            })
    };
    if !args.iter().all(|&p| simple(p)) {
        return None;
    }
    let take = |p: *mut daskr_comp_t| match take_comp(p) {
        Some(Comp(Repr::Node(node))) => match node.kind {
            CompKind::Value(v) => Arg::Lit(v),
            _ => unreachable!("checked above: a literal"),
        },
        Some(Comp(Repr::Id(r))) => Arg::Ref(r),
        None => unreachable!("checked above: not NULL"),
    };
    let mut simple = SimpleArgs::with_capacity(n);
    for &p in args {
        simple.push(take(p));
    }
    Some(simple)
}

type TaskParts<'f> = (&'f Func, Args, Vec<(String, Comp)>);

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
        Some(v) => comp_ptr(Comp::value(v)),
        None => comp_ptr(Comp::invalid(Error::invalid_argument(
            "literal value is NULL",
        ))),
    })
}

/// A reference to the entry `key` (copied; it may be added later). Problems with `key` are
/// reported when the computation is added, naming the entry.
#[no_mangle]
pub unsafe extern "C" fn daskr_comp_ref(key: *const c_char) -> *mut daskr_comp_t {
    guard(|| match arg_str(key, "referenced key") {
        Ok(k) => comp_ptr(Comp::key(k)),
        Err(e) => comp_ptr(Comp::invalid(e)),
    })
}

/// A reference to the entry behind a handle. Costs no allocation and no key lookup. A
/// handle of another graph is refused when the computation is added.
#[no_mangle]
pub extern "C" fn daskr_comp_ref_task(task: daskr_task_t) -> *mut daskr_comp_t {
    // The handle shifted left by one, tagged in the low bit: handles use 63 bits (a graph's
    // serial number has 31), so a 64-bit pointer holds one whole.
    ((task as usize) << 1 | 1) as *mut daskr_comp_t
}

// The tagged-pointer encoding above needs 64-bit pointers.
const _: () = assert!(usize::BITS == 64);

/// A list computation: evaluates to the list of its items' values. Takes every `items[i]`.
#[no_mangle]
pub unsafe extern "C" fn daskr_comp_list(
    items: *const *mut daskr_comp_t,
    n: usize,
) -> *mut daskr_comp_t {
    guard(|| match take_comps(items, n, "items") {
        Ok(items) => comp_ptr(Comp::list(items.into_vec())),
        Err(e) => comp_ptr(Comp::invalid(e)),
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
        comp_ptr(
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
    guard(|| drop(take_comp(comp)))
}
