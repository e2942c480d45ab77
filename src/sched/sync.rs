//! The `sync` scheduler: the calling thread runs positions in priority order. Post-order is a
//! topological order, so position p's inputs are always done when p's turn comes.

use crate::run::{Run, Scratch};

/// Runs the plan.
pub(crate) fn run(run: &Run<'_>) {
    let mut scratch = Scratch::default();
    for p in 0..run.plan.len() as u32 {
        if run.stopped() || run.check_cancel() {
            break;
        }
        run.execute(p, 0, &mut scratch);
    }
    run.retire(scratch);
}
