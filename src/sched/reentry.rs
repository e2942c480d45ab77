//! Gets from inside tasks that would wait on themselves.
//!
//! A task may run a get on its own graph (for keys it does not need as arguments, say). But a
//! get that needs the key of a task running on this thread in an enclosing get — the task's own
//! key, or a key depending on it — would run that task again, which would get again, and so
//! on: the stack overflows, with no word of why. It is a cycle that goes through a get, and is
//! reported as one (`cycle`, naming the key) before anything runs.
//!
//! Each scheduler loop notes, for its thread, the run it works on and the position it is
//! executing (a `Frame`: one store per task); a get looks for its own graph among this
//! thread's frames. The get inside a task always starts on the thread running that task, so a
//! thread's own frames are enough: the task that would wait is always among them.
//!
//! The frame also carries the get's cancel switch: a task finds the get it runs for through
//! its thread's innermost frame (`daskr_call_cancel`), which lets a long task stop early and
//! a binding tell concurrent gets of one function apart (Go hands each its get's context).

use std::cell::Cell;

use crate::error::{Error, ErrorKind, Result};
use crate::graph::Graph;
use crate::plan::{Plan, UNPLANNED};
use crate::run::CancelToken;

/// One scheduler loop on this thread: the run's graph and plan, and the position executing.
pub(crate) struct Frame<'a> {
    graph: &'a Graph,
    plan: &'a Plan,
    executing: Cell<u32>,
    /// The cancel switch of the get this loop runs.
    cancel: Option<&'a CancelToken>,
    /// The frame of the get this loop runs inside (a task's get), or null.
    outer: *const Frame<'static>,
}

#[cfg(not(loom))]
thread_local! {
    /// The innermost frame on this thread (null outside every run).
    static INNERMOST: Cell<*const Frame<'static>> = const { Cell::new(std::ptr::null()) };
}
// In a loom model, whose threads all run on one OS thread, each loom thread's own.
#[cfg(loom)]
loom::thread_local! {
    static INNERMOST: Cell<*const Frame<'static>> = Cell::new(std::ptr::null());
}

impl Frame<'_> {
    /// Notes that position `p` is about to execute on this thread.
    #[inline]
    pub(crate) fn executing(&self, p: u32) {
        self.executing.set(p);
    }
}

/// Runs a scheduler loop (`body`) with its frame noted for this thread.
pub(crate) fn with_frame<R>(
    graph: &Graph,
    plan: &Plan,
    cancel: Option<&CancelToken>,
    body: impl FnOnce(&Frame<'_>) -> R,
) -> R {
    let frame = Frame {
        graph,
        plan,
        executing: Cell::new(UNPLANNED),
        cancel,
        outer: INNERMOST.with(Cell::get),
    };
    struct Leave(*const Frame<'static>);
    impl Drop for Leave {
        fn drop(&mut self) {
            INNERMOST.with(|f| f.set(self.0));
        }
    }
    let _leave = Leave(frame.outer);
    // The frame lives on this stack until `_leave` (dropped first, unwinding too) unlinks it.
    INNERMOST.with(|f| f.set((&frame as *const Frame<'_>).cast()));
    body(&frame)
}

/// Calls `f` with the cancel switch of the get whose loop runs innermost on this thread (the
/// get a task running here belongs to); None outside every run or for a get without one.
pub(crate) fn with_current_cancel<R>(f: impl FnOnce(Option<&CancelToken>) -> R) -> R {
    let at = INNERMOST.with(Cell::get);
    // SAFETY: as in `check`: the innermost frame lives until its `with_frame` returns, which
    // is after every task of its loop (and so after `f`, called from one of them).
    f(unsafe { at.as_ref() }.and_then(|frame| frame.cancel))
}

/// A get of `plan` on `graph` about to start on this thread: the error if it needs a key whose
/// task runs on this thread in an enclosing get of the same graph.
pub(crate) fn check(graph: &Graph, plan: &Plan) -> Result<()> {
    let mut at = INNERMOST.with(Cell::get);
    // SAFETY: every frame linked from INNERMOST is alive: each is unlinked before its
    // `with_frame` returns, and the outer ones are on this thread's stack below it.
    while let Some(frame) = unsafe { at.as_ref() } {
        let p = frame.executing.get();
        if std::ptr::eq(frame.graph, graph) && p != UNPLANNED {
            let id = frame.plan.order[p as usize];
            if plan.pos.get(id as usize).is_some_and(|&q| q != UNPLANNED) {
                let key = graph.key_name(id);
                return Err(Error::new(
                    ErrorKind::Cycle,
                    format!(
                        "a get inside task '{key}' needs '{key}' itself: it would wait on its \
                         own result (a cycle through the get)"
                    ),
                )
                .with_key(key.clone())
                .with_keys(vec![key.into_owned()]));
            }
        }
        at = frame.outer;
    }
    Ok(())
}
