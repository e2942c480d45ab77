//! Adding a task whose arguments come as raw computations (`Comp::into_raw`, the C ABI's
//! `daskr_comp_t *`): the one entry that picks the build path, so the C function only
//! converts its arguments and says how to reach the graph (`AddTo`).
//!
//! The usual task of a big graph refers to its inputs by handle, perhaps with a few literals,
//! and has no keyword arguments: it is added without building or flattening computations
//! (`Graph::add_task_simple`). Anything else goes through `Graph::add_task_args`.

use smallvec::SmallVec;

use crate::abi::daskr_comp_t;
use crate::comp::{Comp, CompKind, Repr, TaskId};
use crate::error::{Error, Result};
use crate::func::Func;
use crate::graph::{Arg, Args, Graph, SimpleArgs, ValidKey};

/// A task's function, positional and keyword arguments, taken.
pub(crate) type TaskParts<'f> = (&'f Func, Args, Vec<(String, Comp)>);

/// Where an entry is added: the caller's graph and key, checked only once the arguments the
/// entry owns have been taken (so nothing handed over leaks when they are bad).
pub(crate) trait AddTo {
    /// Checks the graph and the key, and runs `add` on the graph under its write lock. With
    /// `defer`, pointer values dropped meanwhile have their destructors run after the lock is
    /// released (a destructor may call back into daskr); parts that hold no values skip that
    /// (a thread-local round trip).
    fn add(
        self,
        defer: bool,
        add: impl FnOnce(&mut Graph, Option<ValidKey<'_>>) -> Result<TaskId>,
    ) -> Result<TaskId>;
}

/// Adds the task entry: `func` (None: none was given) called on the `nargs` raw computations
/// at `args`, with `nkwargs` keyword arguments. When a fast path applies, only what it needs
/// is taken; otherwise `general` takes every part (all of them, before anything can fail).
///
/// # Safety
/// `args` is NULL or points at `nargs` raw computations (`Comp::from_raw`'s contract).
#[inline]
pub(crate) unsafe fn add_task<'f>(
    to: impl AddTo,
    func: Option<&'f Func>,
    args: *const *mut daskr_comp_t,
    nargs: usize,
    nkwargs: usize,
    general: impl FnOnce() -> Result<TaskParts<'f>>,
) -> Result<TaskId> {
    if let (Some(f), 0) = (func, nkwargs) {
        // Only handles: nothing to take. Handles and literals: taken, so only when this path
        // will use them.
        let mut refs = SmallVec::new();
        if handle_args(args, nargs, &mut refs) {
            return to.add(false, |g, key| g.add_task_simple(key, f, &mut refs));
        }
        if let Some(mut simple) = simple_args(args, nargs) {
            let id = to.add(false, |g, key| g.add_task_simple(key, f, &mut simple));
            drop(simple); // what a failed add left, now that the lock is released
            return id;
        }
    }
    let parts = general();
    // The usual task of a big graph refers to its inputs by handle only: nothing it holds can
    // run a destructor, so it skips deferring them.
    let handles_only = matches!(&parts, Ok((_, args, kwargs))
        if kwargs.is_empty() && args.iter().all(Comp::is_handle));
    to.add(!handles_only, |g, key| {
        let key = key.map(ValidKey::as_str);
        let (func, args, kwargs) =
            parts.map_err(|e| Error::invalid_graph(&g.label(key), e.message))?;
        g.add_task_args(key, func, args, kwargs)
    })
}

/// Puts the entry ids of `args` in `ids` if every one is a reference by handle (which owns
/// nothing); false (`ids` to be ignored) otherwise.
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
        match Comp::raw_handle(p) {
            Some(id) => ids.push(id),
            None => return false,
        }
    }
    true
}

/// `args`, taken, if every one is a reference by handle or a literal that needs no
/// flattening (`Comp::raw_is_plain`); None (and nothing taken) otherwise.
unsafe fn simple_args(args: *const *mut daskr_comp_t, n: usize) -> Option<SimpleArgs> {
    if n == 0 {
        return Some(SimpleArgs::new());
    }
    if args.is_null() {
        return None;
    }
    let args = std::slice::from_raw_parts(args, n);
    if !args.iter().all(|&p| Comp::raw_is_plain(p)) {
        return None;
    }
    let take = |p: *mut daskr_comp_t| match Comp::from_raw(p) {
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
