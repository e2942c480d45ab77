//! The `sync` scheduler: the calling thread runs positions in priority order. Post-order is a
//! topological order, so position p's inputs are always done when p's turn comes.

use super::reentry;
use crate::run::{CancelToken, Run, Scratch};

/// Runs the plan (`cancel`: the get's cancel switch, which its tasks can read).
pub(crate) fn run(run: &Run<'_>, cancel: Option<&CancelToken>) {
    let mut scratch = Scratch::default();
    reentry::with_frame(run.graph, run.plan, cancel, |frame| {
        for p in 0..run.plan.len() as u32 {
            if run.stopped() || run.check_cancel() {
                break;
            }
            frame.executing(p);
            run.execute(p, 0, &mut scratch);
        }
    });
    run.retire(scratch);
}
