//! Adding a task whose arguments come as raw computations (`Comp::into_raw`, the C ABI's
//! `daskr_comp_t *`): the one entry that picks the build path, so the C function only
//! converts its arguments.
//!
//! The usual task of a big graph refers to its inputs by handle, perhaps with a few literals,
//! and has no keyword arguments: it is added without building or flattening computations
//! (`Graph::add_task_simple`). Anything else goes through `Graph::add_task_args`.

use smallvec::SmallVec;

use crate::abi::daskr_comp_t;
use crate::comp::{Comp, CompKind, Repr, TaskId};
use crate::error::{Error, Result};
use crate::func::Func;
use crate::graph::{Arg, Args, Graph, SimpleArgs};

/// A task's function, positional and keyword arguments, taken.
pub(crate) type TaskParts<'f> = (&'f Func, Args, Vec<(String, Comp)>);

/// A task's arguments, taken from their raw encoding in the cheapest form the graph can add.
pub(crate) enum TaskArgs<'f> {
    /// Every argument a reference by handle: nothing was taken, nothing is held.
    Handles(&'f Func, SmallVec<[u32; 8]>),
    /// References by handle and literals, no keyword arguments. After a failed add it still
    /// holds the literals, to be dropped once the graph's lock is released.
    Simple(&'f Func, SimpleArgs),
    /// Anything else, to be flattened; or why the parts could not be taken (reported naming
    /// the key). None once added.
    General(Option<Result<TaskParts<'f>>>),
}

impl<'f> TaskArgs<'f> {
    /// Takes the `nargs` raw computations at `args` for a task of `func` (None: no function
    /// was given) with `nkwargs` keyword arguments. When a fast path applies, only what it
    /// needs is taken; otherwise `general` takes every part (before anything can fail, so
    /// nothing handed over leaks).
    ///
    /// # Safety
    /// `args` is NULL or points at `nargs` raw computations (`Comp::from_raw`'s contract).
    #[inline]
    pub(crate) unsafe fn take(
        func: Option<&'f Func>,
        args: *const *mut daskr_comp_t,
        nargs: usize,
        nkwargs: usize,
        general: impl FnOnce() -> Result<TaskParts<'f>>,
    ) -> TaskArgs<'f> {
        if let (Some(f), 0) = (func, nkwargs) {
            // Only handles: nothing to take. Handles and literals: taken, so only when this
            // path will use them.
            if let Some(handles) = handles(args, nargs) {
                return TaskArgs::Handles(f, handles);
            }
            if let Some(simple) = simple(args, nargs) {
                return TaskArgs::Simple(f, simple);
            }
        }
        TaskArgs::General(Some(general()))
    }

    /// Whether pointer values dropped while adding must have their destructors wait until the
    /// graph's lock is released (`value::defer_destructors`). The fast paths hold nothing a
    /// failed add drops (`Simple` hands its literals back), and neither does a general task
    /// that refers to its inputs by handle only: they skip deferring (a thread-local round
    /// trip).
    pub(crate) fn defers_drops(&self) -> bool {
        match self {
            TaskArgs::Handles(..) | TaskArgs::Simple(..) => false,
            TaskArgs::General(parts) => !matches!(parts, Some(Ok((_, args, kwargs)))
                if kwargs.is_empty() && args.iter().all(Comp::is_handle)),
        }
    }
}

impl Graph {
    /// Adds the task entry `key` by the path its arguments were taken for.
    #[inline]
    pub(crate) fn add_task_from(&mut self, key: &str, task: &mut TaskArgs<'_>) -> Result<TaskId> {
        match task {
            TaskArgs::Handles(func, handles) => self.add_task_simple(key, func, handles),
            TaskArgs::Simple(func, simple) => self.add_task_simple(key, func, simple),
            TaskArgs::General(parts) => {
                let (func, args, kwargs) = parts
                    .take()
                    .expect("a task's arguments are added once")
                    .map_err(|e| Error::invalid_graph(key, e.message))?;
                self.add_task_args(key, func, args, kwargs)
            }
        }
    }
}

/// The entry ids of `args` if every one is a reference by handle (which owns nothing).
unsafe fn handles(args: *const *mut daskr_comp_t, n: usize) -> Option<SmallVec<[u32; 8]>> {
    let mut ids = SmallVec::new();
    if n == 0 {
        return Some(ids);
    }
    if args.is_null() {
        return None;
    }
    for &p in std::slice::from_raw_parts(args, n) {
        ids.push(Comp::raw_handle(p)?);
    }
    Some(ids)
}

/// `args`, taken, if every one is a reference by handle or a literal that needs no
/// flattening (`Comp::raw_is_plain`); None (and nothing taken) otherwise.
unsafe fn simple(args: *const *mut daskr_comp_t, n: usize) -> Option<SimpleArgs> {
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
