//! The `threads` scheduler: the caller plus pool helpers share one run.
//!
//! Hot path, per task: one atomic decrement per dependent (pending counts), one per input
//! (consumer counts), no allocation, no string hashing, no global lock. What runs next, in
//! order of preference: the one dependent this task just made ready with the best priority
//! (a continuation that never touches a queue), the worker's own ready heap (ordered by
//! static priority), the plan's initially-ready positions (shared, claimed in priority order),
//! then the best entry of another worker's heap. Idle workers spin briefly, then park.
//!
//! Memory budget: a parallel run holds about as few results as the priority order run
//! serially does at its peak (what `sync`, and Dask, hold). A task that would add a result on
//! balance (it stores one and is not the last consumer of any input: a leaf, the first cell
//! of a wavefront's row) starts only while the results every worker holds or has claimed stay
//! within that peak — or when every other worker is waiting for room, and it is the best task
//! visible, as in the serial order. Tasks that free as much as they store always start, so a
//! wavefront of real work keeps its parallelism. Each worker publishes its own count (a store
//! to its own cache line, no shared counter); they are summed only for a task that adds. A
//! worker the budget holds back waits for some room (an eighth of the budget, at least
//! `MARGIN_MIN`) before it comes back, so that it and the busy worker do not trade the budget
//! back and forth.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

// The ready queues, the memory budget's counts, the end of the run and its flag take their
// lock and atomics from `crate::sync`: loom's in `make test-loom`, whose models run this
// scheduler (with src/ffi/loom_tests.rs's small graphs); std's in every other build.
use crate::sync;

use crossbeam_utils::CachePadded;

use super::sleep::Sleep;
use super::{pool, reentry};
use crate::error::{Error, ErrorKind};
use crate::func::panic_message;
use crate::run::{count_down, CancelToken, Run, Scratch};

const NONE: u32 = u32::MAX;

/// Dependents with at least this many inputs get their decrements batched per worker.
const FAN_IN_MIN: usize = 64;
/// At most this many decrements are held back at once.
const FAN_IN_BATCH: u32 = 64;
/// A worker the memory budget held back comes back for at least this much room (or an eighth
/// of the budget): under a budget of a few dozen (a binary tree's depth) a worker that came
/// back for each freed result would pay a round of cross-core traffic per task, where
/// leaving the work to the busy worker costs nothing.
const MARGIN_MIN: i64 = 16;
/// Rounds an idle worker looks for work (spinning, then yielding) before it parks. None in a
/// loom model: a spinning thread that only reads would multiply the interleavings without
/// checking anything the parking protocol (looked at once more before sleeping) does not.
const SPIN_ROUNDS: usize = if cfg!(loom) { 0 } else { 64 };

/// Decrements of one high fan-in dependent's pending count, not yet handed in.
struct FanIn {
    target: u32,
    count: u32,
}

impl Default for FanIn {
    fn default() -> FanIn {
        FanIn {
            target: NONE,
            count: 0,
        }
    }
}

/// A worker's ready positions, best (lowest) first. Others steal from it when idle.
#[derive(Default)]
struct Queue {
    heap: sync::Mutex<BinaryHeap<Reverse<u32>>>,
    /// The heap's best entry (NONE if empty), readable without the lock. Exact under the lock;
    /// a hint outside it.
    top: sync::AtomicU32,
}

impl Queue {
    fn new() -> Queue {
        Queue {
            heap: sync::Mutex::new(BinaryHeap::new()),
            top: sync::AtomicU32::new(NONE),
        }
    }
    fn push(&self, p: u32) {
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        heap.push(Reverse(p));
        self.top
            .store(heap.peek().map_or(NONE, |r| r.0), Ordering::Relaxed);
    }
    /// Takes the best entry, if `allowed`.
    fn pop(&self, allowed: impl Fn(u32) -> bool) -> Option<u32> {
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        if !allowed(heap.peek()?.0) {
            return None;
        }
        let p = heap.pop().map(|r| r.0);
        self.top
            .store(heap.peek().map_or(NONE, |r| r.0), Ordering::Relaxed);
        p
    }
    /// Takes the best entry, if `allowed`.
    fn try_steal(&self, allowed: impl Fn(u32) -> bool) -> Option<u32> {
        if self.top.load(Ordering::Relaxed) == NONE {
            return None;
        }
        let mut heap = self.heap.try_lock().ok()?;
        if !allowed(heap.peek()?.0) {
            return None;
        }
        let p = heap.pop().map(|r| r.0);
        self.top
            .store(heap.peek().map_or(NONE, |r| r.0), Ordering::Relaxed);
        p
    }
}

struct Shared<'r, 'g> {
    run: &'r Run<'g>,
    /// The get's cancel switch, noted in each worker's frame for its tasks to read.
    cancel: Option<&'r CancelToken>,
    pending: Vec<AtomicU32>,
    initial: &'r [u32],
    cursor: CachePadded<AtomicUsize>,
    queues: Vec<CachePadded<Queue>>,
    sleep: Sleep,
    done: sync::AtomicBool,
    roots_left: sync::AtomicUsize,
    /// The most results the serial order holds at once; i64::MAX when it cannot bind (every
    /// result is held to the end anyway, as under a sink over everything).
    budget: i64,
    /// Each worker's results held plus initially-ready positions claimed and not yet run.
    committed: Vec<CachePadded<sync::AtomicI64>>,
    /// Workers inside `idle` (waiting for work, or held back by the budget).
    idle: sync::AtomicUsize,
}

/// Runs the plan on `workers` threads (the caller included; `cancel`: the get's cancel
/// switch, which its tasks can read).
pub(crate) fn run(run: &Run<'_>, workers: usize, cancel: Option<&CancelToken>) {
    let plan = run.plan;
    let n = plan.len();
    if n == 0 {
        return;
    }
    let pending: Vec<AtomicU32> = (0..n as u32)
        .map(|p| AtomicU32::new(plan.deps(p).len() as u32))
        .collect();
    let initial = &plan.initial;
    let shared = Shared {
        run,
        cancel,
        pending,
        initial,
        cursor: CachePadded::new(AtomicUsize::new(0)),
        queues: (0..workers)
            .map(|_| CachePadded::new(Queue::new()))
            .collect(),
        sleep: Sleep::new(),
        done: sync::AtomicBool::new(false),
        roots_left: sync::AtomicUsize::new(plan.requested.len()),
        budget: serial_peak(plan),
        committed: (0..workers)
            .map(|_| CachePadded::new(sync::AtomicI64::new(0)))
            .collect(),
        // A helper counts as idle until it starts: the pool may start it late (its threads
        // busy with another get), and nobody may wait for room it cannot make yet.
        idle: sync::AtomicUsize::new(workers),
    };
    pool::scoped(workers - 1, &|w| {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| shared.work(w))) {
            let message = format!("internal error in worker {w}: {}", panic_message(&*panic));
            shared.run.stop(Error::new(ErrorKind::Internal, message));
            shared.end();
        }
    });
}

/// The most results held at once when the positions run one after another in priority order:
/// each stores its result, and releases the inputs it is the last consumer of (dependents are
/// sorted, so that is its last dependent). i64::MAX if that is every result: no order can hold
/// fewer, so there is nothing to budget.
fn serial_peak(plan: &crate::plan::Plan) -> i64 {
    let n = plan.len() as u32;
    let (mut held, mut peak) = (0i64, 0i64);
    for p in 0..n {
        held += 1;
        for &d in plan.deps(p) {
            if plan.dependents(d).last() == Some(&p) && !plan.is_requested(d) {
                held -= 1;
            }
        }
        peak = peak.max(held);
    }
    if peak >= i64::from(n) {
        i64::MAX
    } else {
        peak
    }
}

impl Shared<'_, '_> {
    /// How many more results may be opened now (i64::MAX when unlimited): the budget less
    /// what every worker holds or has claimed; and whether every other worker is idle (then
    /// nobody else can make room, and this one goes on in priority order). `idle_self`: the
    /// caller is counted in `idle`.
    fn room(&self, idle_self: bool) -> (i64, bool) {
        if self.budget == i64::MAX {
            return (i64::MAX, false);
        }
        let committed: i64 = self
            .committed
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        let idle_others = self.idle.load(Ordering::SeqCst) - usize::from(idle_self);
        (
            self.budget - committed,
            idle_others >= self.queues.len() - 1,
        )
    }

    /// Whether running `q` now stays within the memory budget: it adds no result on balance,
    /// or there is room for what it adds — or every other worker waits for room (nobody else
    /// can make any) and `q` is the best work there is, as in the serial order, which never
    /// holds more than the budget.
    fn fits(&self, q: u32) -> bool {
        if self.budget == i64::MAX {
            return true;
        }
        let delta = self.run.held_delta(q);
        if delta <= 0 {
            return true;
        }
        let (room, alone) = self.room(false);
        delta <= room || (alone && q <= self.best_visible())
    }

    /// The best position any worker could start now (its heap tops, the next initially-ready
    /// one); NONE if none is visible.
    fn best_visible(&self) -> u32 {
        self.queues
            .iter()
            .map(|q| q.top.load(Ordering::Relaxed))
            .fold(self.initial_head(), u32::min)
    }

    fn over(&self) -> bool {
        self.done.load(Ordering::Acquire) || self.run.stopped()
    }

    /// Ends the run for every worker.
    fn end(&self) {
        self.done.store(true, Ordering::Release);
        self.sleep.notify(true);
    }

    fn work(&self, w: usize) {
        reentry::with_frame(self.run.graph, self.run.plan, self.cancel, |frame| {
            self.work_in(w, frame)
        });
    }

    fn work_in(&self, w: usize, frame: &reentry::Frame<'_>) {
        self.idle.fetch_sub(1, Ordering::SeqCst);
        let mut scratch = Scratch::default();
        let mut next = None;
        let mut claimed = 0..0;
        let mut fan_in = FanIn::default();
        let mut published = 0i64;
        let plan = self.run.plan;
        loop {
            let p = match self.pick(w, next.take(), &mut claimed, scratch.held) {
                Some(p) => p,
                // Before waiting, hand in the decrements held back: they may be what makes
                // the remaining work ready.
                None if fan_in.count > 0 => {
                    next = self.flush(w, &mut fan_in, None);
                    continue;
                }
                None if self.idle(w) => continue,
                None => break,
            };
            if self.over() || self.run.check_cancel() {
                self.end();
                break;
            }
            frame.executing(p);
            if !self.run.execute(p, w, &mut scratch) {
                self.end();
                break;
            }
            if self.budget != i64::MAX {
                let committed = scratch.held + claimed.len() as i64;
                if committed != published {
                    self.committed[w].store(committed, Ordering::Relaxed);
                    published = committed;
                }
            }
            let mut pushed = false;
            for &q in plan.dependents(p) {
                if plan.deps(q).len() >= FAN_IN_MIN {
                    // A dependent with many inputs (a sink over a million tasks): its counter is
                    // shared by every worker, so decrements are held back and handed in as one.
                    if fan_in.target != q || fan_in.count == FAN_IN_BATCH {
                        next = self.flush(w, &mut fan_in, next);
                        fan_in.target = q;
                    }
                    fan_in.count += 1;
                    // Hand in at once if these are the last decrements it waits for, so the
                    // dependent runs now rather than after unrelated work.
                    if self.pending[q as usize].load(Ordering::Relaxed) <= fan_in.count {
                        next = self.flush(w, &mut fan_in, next);
                    }
                    continue;
                }
                if count_down(&self.pending[q as usize], 1) {
                    // Dependents are sorted, so the first one ready is the best continuation.
                    if next.is_none() {
                        next = Some(q);
                    } else {
                        self.queues[w].push(q);
                        pushed = true;
                    }
                }
            }
            if pushed {
                self.sleep.notify(false);
            }
            if plan.is_requested(p) && self.roots_left.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.end();
                break;
            }
        }
        self.run.retire(scratch);
    }

    /// Hands in held-back decrements; a dependent they make ready becomes the continuation if
    /// there is none yet, else goes to this worker's queue.
    fn flush(&self, w: usize, fan_in: &mut FanIn, next: Option<u32>) -> Option<u32> {
        let (q, n) = (fan_in.target, fan_in.count);
        *fan_in = FanIn::default();
        if n == 0 || !count_down(&self.pending[q as usize], n) {
            return next;
        }
        if next.is_none() {
            return Some(q);
        }
        self.queues[w].push(q);
        self.sleep.notify(false);
        next
    }

    fn initial_head(&self) -> u32 {
        let c = self.cursor.load(Ordering::Relaxed);
        self.initial.get(c).copied().unwrap_or(NONE)
    }

    /// Takes the next initially-ready position: from this worker's claimed batch, claiming a
    /// new batch when it is used up. Batches (a few dozen positions, fewer near the end) keep
    /// the shared cursor off the hot path when a million tasks start out ready.
    /// Claiming is held back by the memory budget: a batch is never bigger than the room left,
    /// and is reserved (published with what the worker holds, `held`) as it is claimed.
    fn take_initial(&self, w: usize, claimed: &mut Range<usize>, held: i64) -> Option<u32> {
        if claimed.start >= claimed.end {
            if self.initial_head() == NONE {
                return None;
            }
            let (room, alone) = self.room(false);
            if room < 1 && !(alone && self.initial_head() <= self.best_visible()) {
                return None;
            }
            let mut c = self.cursor.load(Ordering::Relaxed);
            loop {
                let left = self.initial.len().checked_sub(c).filter(|&n| n > 0)?;
                // Workers may claim at the same moment, each seeing the same room: each
                // takes its share of it.
                let share = (room.clamp(1, 32 * 64) as usize / self.queues.len()).max(1);
                let batch = (left / (4 * self.queues.len())).clamp(1, 32).min(share);
                match self.cursor.compare_exchange_weak(
                    c,
                    c + batch,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        *claimed = c..c + batch;
                        if self.budget != i64::MAX {
                            self.committed[w].store(held + batch as i64, Ordering::Relaxed);
                        }
                        break;
                    }
                    Err(now) => c = now,
                }
            }
        }
        let i = claimed.next()?;
        Some(self.initial[i])
    }

    /// The best ready position this worker can get, or None if there is none right now.
    fn pick(
        &self,
        w: usize,
        continuation: Option<u32>,
        claimed: &mut Range<usize>,
        held: i64,
    ) -> Option<u32> {
        let own = &self.queues[w];
        let initial_head = if claimed.start >= claimed.end {
            self.initial_head()
        } else {
            self.initial[claimed.start]
        };
        let fits = |q: u32| self.fits(q);
        if let Some(c) = continuation {
            if c <= own.top.load(Ordering::Relaxed) && c <= initial_head && fits(c) {
                return Some(c);
            }
            own.push(c);
        }
        if initial_head < own.top.load(Ordering::Relaxed) {
            if let Some(p) = self.take_initial(w, claimed, held) {
                return Some(p);
            }
        }
        if let Some(p) = own.pop(fits) {
            return Some(p);
        }
        if let Some(p) = self.take_initial(w, claimed, held) {
            return Some(p);
        }
        self.steal(w)
    }

    /// Takes the best entry of another worker's heap, if running it now stays within the
    /// memory budget (tasks that free as much as they store always do).
    fn steal(&self, w: usize) -> Option<u32> {
        let n = self.queues.len();
        (1..n).find_map(|i| self.queues[(w + i) % n].try_steal(|q| self.fits(q)))
    }

    fn work_visible(&self) -> bool {
        self.cursor.load(Ordering::Relaxed) < self.initial.len()
            || self
                .queues
                .iter()
                .any(|q| q.top.load(Ordering::Relaxed) != NONE)
    }

    /// Waits for work. Returns false when the run is over.
    fn idle(&self, _w: usize) -> bool {
        self.idle.fetch_add(1, Ordering::SeqCst);
        let more = self.wait_for_work();
        self.idle.fetch_sub(1, Ordering::SeqCst);
        // Work was seen that `pick` could not take (another worker holds that queue's lock, or
        // is about to take the work): the caller goes round again, a spin. In a loom model the
        // spinner says so, or loom may run it alone for ever instead of the worker it waits for.
        #[cfg(loom)]
        sync::yield_now();
        more
    }

    /// Work this idle worker may take: visible, and within the memory budget.
    fn work_open(&self) -> bool {
        if !self.work_visible() {
            return false;
        }
        let (room, alone) = self.room(true);
        // A worker the budget sent here waits for some room, not one result's worth: coming
        // back for each would make it and the busy worker trade the budget back and forth.
        room >= (self.budget / 8).max(MARGIN_MIN)
            || alone
            || self.queues.iter().any(|q| {
                let top = q.top.load(Ordering::Relaxed);
                top != NONE && self.run.held_delta(top) <= room
            })
    }

    fn wait_for_work(&self) -> bool {
        for round in 0..SPIN_ROUNDS {
            if self.over() {
                return false;
            }
            if self.work_open() {
                return true;
            }
            if round < SPIN_ROUNDS * 3 / 4 {
                for _ in 0..32 {
                    std::hint::spin_loop();
                }
            } else {
                sync::yield_now();
            }
        }
        self.sleep.wait_unless(|| self.over() || self.work_open());
        !self.over()
    }
}
