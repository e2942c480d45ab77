//! One `get` in progress: the result slots, the release of results, failure and cancellation,
//! callbacks and statistics. Shared by every scheduler; a scheduler only decides which
//! position runs next and on which thread.
//!
//! Memory rule: each position's slot counts its remaining consumers (dependents, +1 if
//! requested). The consumer that brings the count to zero drops the value — on its own worker
//! thread, right after its task finished — so a result lives exactly as long as it is needed.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::{Attached, Use};
use crate::error::{Error, ErrorKind};
use crate::func::{Call, Outcome};
use crate::graph::{ArgsAt, Graph, TaskCall, View};
use crate::plan::Plan;
use crate::profile::{Profile, Profiler, TaskSpan};
use crate::value::Value;

/// What a `get` may be told to observe: start, then (pretask, posttask)* for each computed
/// entry (not for literals), then finish — never two at once, finish always after start.
pub trait Callbacks: Sync {
    fn start(&self, _entries: usize) {}
    fn pretask(&self, _key: KeyRef<'_>, _worker: usize) {}
    fn posttask(&self, _key: KeyRef<'_>, _ok: bool, _worker: usize) {}
    fn finish(&self, _failed: bool) {}
}

/// A key as callbacks see it: readable as `&str`, and as a NUL-terminated C string.
#[derive(Clone, Copy)]
pub struct KeyRef<'a>(&'a [u8]);

impl<'a> KeyRef<'a> {
    pub fn as_str(&self) -> &'a str {
        // SAFETY: keys are interned from &str; the last byte is the NUL.
        unsafe { std::str::from_utf8_unchecked(&self.0[..self.0.len() - 1]) }
    }
    pub fn as_c_ptr(&self) -> *const std::ffi::c_char {
        self.0.as_ptr().cast()
    }
    /// A key's bytes with their trailing NUL (`Graph::key_c`).
    pub(crate) fn from_c(bytes: &'a [u8]) -> KeyRef<'a> {
        KeyRef(bytes)
    }
}

/// A cancel switch another thread can flip; a run that sees it stops starting tasks and
/// returns a `cancelled` error once the running ones finish.
#[derive(Clone, Default)]
// Its flag comes from `crate::sync`: loom's in `make test-loom`, which races it with a run.
pub struct CancelToken(Arc<crate::sync::AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    pub fn reset(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Live progress of a get, readable from any thread while it runs (for progress bars): how
/// many entries it needs and how many have run so far. Workers publish their counts every
/// `PROGRESS_BATCH` entries and when they stop, so a progress reader costs the run nothing
/// measurable (no lock, no callback per task).
#[derive(Default)]
pub struct Progress {
    total: AtomicU64,
    done: AtomicU64,
    running: AtomicBool,
}

const PROGRESS_BATCH: u64 = 256;

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }
    /// Entries the current (or last) get needs, literals included.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
    /// Entries run so far (lags by at most `PROGRESS_BATCH` per worker while running; exact
    /// once the get returned).
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
    /// Whether a get using it is running.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
    pub(crate) fn begin(&self, total: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.running.store(true, Ordering::Release);
    }
    pub(crate) fn end(&self) {
        self.running.store(false, Ordering::Release);
    }
    /// Counts `n` more entries as run (schedulers that learn of them in batches).
    pub(crate) fn add_done(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

/// Figures about one `get`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries the request needed (after culling), literals included.
    pub entries: u64,
    /// Entries whose computation ran (literals included).
    pub entries_run: u64,
    /// Most results held at once (measured only with `Options::measure_memory`; else 0).
    pub peak_held: u64,
    /// Threads that ran tasks (worker processes, under `processes`).
    pub workers: u32,
    /// Time to resolve, cull, check and order.
    pub plan_time: Duration,
    /// Time from the first task to the last.
    pub run_time: Duration,
    /// What the get did with its result cache (zeros without one).
    pub cache: crate::cache::CacheStats,
}

/// Result slots, one per position.
///
/// Invariants that make the unsafe accessors sound: position `p`'s slot is written once, by
/// the worker that ran `p`, before that worker publishes completion (a Release decrement of a
/// dependent's pending count or the end of the run); it is read only by consumers that have
/// observed that publication (Acquire), while their consumer count is still held; it is
/// emptied by the one consumer that brings the count to zero, or after every worker stopped.
struct Slots(Box<[UnsafeCell<Option<Value>>]>);

// SAFETY: see the invariants above; Value itself is Send + Sync.
unsafe impl Sync for Slots {}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots((0..n).map(|_| UnsafeCell::new(None)).collect())
    }
    /// SAFETY: only the worker that ran `p`, before publishing its completion.
    unsafe fn set(&self, p: u32, v: Value) {
        *self.0[p as usize].get() = Some(v);
    }
    /// SAFETY: only after `p`'s completion was observed, while holding one of its consumers.
    unsafe fn get(&self, p: u32) -> &Value {
        (*self.0[p as usize].get())
            .as_ref()
            .expect("a dependency's result is present while it has consumers")
    }
    /// SAFETY: by the consumer that released the last count, or once no worker runs.
    unsafe fn take(&self, p: u32) -> Option<Value> {
        (*self.0[p as usize].get()).take()
    }
}

/// Takes `n` from a count that only falls (a result's consumers, a task's inputs still to
/// come); true if those were the last. Whoever reads exactly `n` left is the only one still to
/// count down, so it skips the locked decrement — a plain store instead of a lock-prefixed
/// RMW, which would also wait for the store buffer to drain. The Acquire load pairs with the
/// others' Release decrements, made after they were done with what the count guards.
pub(crate) fn count_down(count: &impl crate::sync::FallingCount, n: u32) -> bool {
    if count.load(Ordering::Acquire) == n {
        count.store(0, Ordering::Relaxed);
        return true;
    }
    count.fetch_sub(n, Ordering::AcqRel) == n
}

/// What a run is told to report to and be stopped by: the part of `Options` every scheduler
/// honours (`Options::watch`).
#[derive(Clone, Copy, Default)]
pub(crate) struct Watch<'a> {
    pub callbacks: Option<&'a dyn Callbacks>,
    pub cancel: Option<&'a CancelToken>,
    pub progress: Option<&'a Progress>,
    /// Track the number of results held, for `Stats::peak_held`.
    pub measure_memory: bool,
    /// How many more times an entry that failed is run before the run fails (`Options::retries`).
    pub retries: u32,
}

pub(crate) struct Run<'a> {
    pub graph: &'a Graph,
    pub plan: &'a Plan,
    slots: Slots,
    consumers: Vec<AtomicU32>,
    held: AtomicI64,
    peak: AtomicI64,
    failure: crate::sync::FirstFailure<Error>,
    cancel: Option<&'a CancelToken>,
    callbacks: Option<&'a dyn Callbacks>,
    callback_lock: Mutex<()>,
    entries_run: AtomicU64,
    progress: Option<&'a Progress>,
    measure_memory: bool,
    retries: u32,
    /// When profiling: the get's start, and the spans workers handed in when they retired.
    epoch: Option<Instant>,
    spans: Mutex<Vec<Span>>,
    /// With a result cache: what each position does with it (the plan's, see `resume`).
    cache: Option<&'a Attached>,
}

/// A timed run of position `p` (times in ns since the epoch).
struct Span {
    p: u32,
    worker: u32,
    start: u64,
    end: u64,
    ok: bool,
    /// Read from the result cache, not computed.
    cached: bool,
}

/// Scratch a worker reuses from task to task (so a call allocates nothing), and what it
/// counted; handed back with `Run::retire`.
#[derive(Default)]
pub(crate) struct Scratch {
    ptrs: Vec<*const Value>,
    entries_run: u64,
    /// Entries run but not yet published to `Progress`.
    unpublished: u64,
    spans: Vec<Span>,
    /// Results this worker stored minus those it released: summed over the workers, the
    /// results held now (the threads scheduler's memory budget reads it).
    pub held: i64,
}

impl<'a> Run<'a> {
    pub fn new(
        graph: &'a Graph,
        plan: &'a Plan,
        watch: Watch<'a>,
        epoch: Option<Instant>,
    ) -> Run<'a> {
        let (cancel, callbacks, progress) = (watch.cancel, watch.callbacks, watch.progress);
        let cache = plan.cache.as_deref();
        if let Some(p) = progress {
            // Entries the cache spared count as done from the start.
            let spared = cache.map_or(0, |c| c.skipped);
            p.begin(plan.len() as u64 + spared);
            p.add_done(spared);
        }
        Run {
            graph,
            plan,
            slots: Slots::new(plan.len()),
            consumers: plan.consumers.iter().map(|&c| AtomicU32::new(c)).collect(),
            held: AtomicI64::new(0),
            peak: AtomicI64::new(0),
            failure: crate::sync::FirstFailure::new(),
            cancel,
            callbacks,
            callback_lock: Mutex::new(()),
            entries_run: AtomicU64::new(0),
            progress,
            measure_memory: watch.measure_memory,
            retries: watch.retries,
            epoch,
            spans: Mutex::new(Vec::new()),
            cache,
        }
    }

    /// A worker is done with this run: add what it counted and recorded.
    pub fn retire(&self, scratch: Scratch) {
        self.entries_run
            .fetch_add(scratch.entries_run, Ordering::Relaxed);
        if let Some(p) = self.progress {
            p.done.fetch_add(scratch.unpublished, Ordering::Relaxed);
        }
        if !scratch.spans.is_empty() {
            self.spans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(scratch.spans);
        }
    }

    /// Nanoseconds since the epoch (0 when not profiling).
    #[inline]
    fn clock(&self) -> u64 {
        self.epoch.map_or(0, |e| e.elapsed().as_nanos() as u64)
    }

    /// True once a task failed or the run was cancelled: start nothing new.
    #[inline]
    pub fn stopped(&self) -> bool {
        self.failure.stopped()
    }

    /// Checks the cancel switch; true (and the run stopped) if it is on.
    #[inline]
    pub fn check_cancel(&self) -> bool {
        if let Some(c) = self.cancel {
            if c.is_cancelled() {
                self.stop(Error::cancelled());
                return true;
            }
        }
        false
    }

    /// Records the first failure and stops the run.
    pub fn stop(&self, error: Error) {
        self.failure.record(error);
    }

    /// How many results running `p` now would add to those held: its own, less the inputs it
    /// is the last remaining consumer of. (An estimate: other consumers may finish meanwhile.)
    pub(crate) fn held_delta(&self, p: u32) -> i64 {
        let freed = self
            .plan
            .deps(p)
            .iter()
            .filter(|&&d| self.consumers[d as usize].load(Ordering::Relaxed) == 1)
            .count();
        1 - freed as i64
    }

    pub fn callbacks_start(&self) {
        if let Some(cb) = self.callbacks {
            cb.start(self.plan.computed(self.graph));
        }
    }

    /// Runs position `p` (whose dependencies have all completed), stores its result and
    /// releases its inputs. Returns false if the task failed.
    #[inline]
    pub fn execute(&self, p: u32, worker: usize, scratch: &mut Scratch) -> bool {
        // One test of an Option per task without a cache: the cache's work is compiled out of
        // the other copy.
        if self.cache.is_none() {
            self.execute_as::<false>(p, worker, scratch)
        } else {
            self.execute_as::<true>(p, worker, scratch)
        }
    }

    /// `execute`, with (`CACHED`) or without a result cache.
    #[inline(always)]
    fn execute_as<const CACHED: bool>(&self, p: u32, worker: usize, scratch: &mut Scratch) -> bool {
        let graph = self.graph;
        let id = self.plan.order[p as usize];
        // Found in the result cache: taken, not computed (nor reported as run).
        let found = CACHED && self.cache.is_some_and(|c| c.use_of(p) == Use::Found);
        let observed = self
            .callbacks
            .filter(|_| !found && (self.plan.task_func(p).is_some() || !graph.is_literal(id)));
        // Named only when something looks: an anonymous entry's name is made on demand.
        let name = observed.map(|_| graph.key_c(id));
        if let (Some(cb), Some(name)) = (observed, &name) {
            let _one_at_a_time = self.callback_lock.lock().unwrap_or_else(|e| e.into_inner());
            cb.pretask(KeyRef(name), worker);
        }
        let started = self.clock();
        let mut run_once = || match self.cache.filter(|_| CACHED) {
            None => self.compute(p, id, &mut scratch.ptrs),
            Some(cache) => self.cached(cache, p, id, &mut scratch.ptrs),
        };
        let mut result = run_once();
        // ---- retries (as Dask's `retries=`): a failed entry runs again, up to `retries` more
        // times, unless the run was stopped (another failure, a cancel) meanwhile. (A result
        // found in the cache never fails.)
        let mut tries = 1;
        while result.is_err() && tries <= self.retries && !self.stopped() && !self.check_cancel() {
            tries += 1;
            result = run_once();
        }
        // ---- end of retries
        scratch.entries_run += u64::from(!found);
        if let Some(progress) = self.progress {
            scratch.unpublished += 1;
            if scratch.unpublished == PROGRESS_BATCH {
                progress.done.fetch_add(PROGRESS_BATCH, Ordering::Relaxed);
                scratch.unpublished = 0;
            }
        }
        let ok = result.is_ok();
        if self.epoch.is_some() {
            let end = self.clock();
            scratch.spans.push(Span {
                p,
                worker: worker as u32,
                start: started,
                end,
                ok,
                cached: found,
            });
        }
        let stored = match result {
            Ok(v) => {
                // SAFETY: this worker ran `p`; completion is published after this returns.
                unsafe { self.slots.set(p, v) };
                1
            }
            Err(message) => {
                let key = graph.key_name(id);
                let tries = match tries {
                    1 => String::new(),
                    n => format!(" (on each of {n} tries)"),
                };
                self.stop(
                    Error::new(
                        ErrorKind::TaskFailed,
                        format!("task '{key}' failed: {message}{tries}"),
                    )
                    .with_key(key),
                );
                0
            }
        };
        if let (Some(cb), Some(name)) = (observed, &name) {
            let _one_at_a_time = self.callback_lock.lock().unwrap_or_else(|e| e.into_inner());
            cb.posttask(KeyRef(name), ok, worker);
        }
        let mut released = 0;
        for &q in self.plan.deps(p) {
            if count_down(&self.consumers[q as usize], 1) {
                // SAFETY: we released the last consumer count of `q`.
                drop(unsafe { self.slots.take(q) });
                released += 1;
            }
        }
        // The held count is shared by all workers: touch it only when it changes (a task that
        // stores one result and frees one — a chain link, most wavefront cells — leaves it be),
        // so it stays exact without a contended write per task.
        let delta = stored - released;
        scratch.held += delta;
        if self.measure_memory && delta != 0 {
            let now = self.held.fetch_add(delta, Ordering::Relaxed) + delta;
            if now > self.peak.load(Ordering::Relaxed) {
                self.peak.fetch_max(now, Ordering::Relaxed);
            }
        }
        ok
    }

    /// Position `p` with a result cache: its found value, or computed (and stored if it has
    /// a hash).
    #[cold]
    fn cached(
        &self,
        cache: &Attached,
        p: u32,
        id: u32,
        ptrs: &mut Vec<*const Value>,
    ) -> Result<Value, String> {
        let result = match cache.use_of(p) {
            Use::Found => return Ok(cache.take_found(p)),
            _ => self.compute(p, id, ptrs),
        };
        if let (Use::Store, Ok(v)) = (cache.use_of(p), &result) {
            cache.store(p, v);
        }
        result
    }

    /// Computes position `p`, entry `id`. A task whose arguments are exactly its dependencies
    /// is called from the plan alone — its function and its inputs' positions, read in
    /// position order — without reading the graph's node or edges (in graph order: for a
    /// grid planned column by column, a cache miss or two a task); anything else from the
    /// graph.
    fn compute(&self, p: u32, id: u32, ptrs: &mut Vec<*const Value>) -> Result<Value, String> {
        let Some(func) = self.plan.task_func(p) else {
            return match self.graph.entry(id) {
                View::Task(call) => self.invoke(id, call, ptrs),
                entry => self.eval(id, entry),
            };
        };
        ptrs.clear();
        // SAFETY: `p`'s dependencies have completed, and `p` holds a count of each.
        ptrs.extend(
            self.plan
                .deps(p)
                .iter()
                .map(|&q| unsafe { self.slots.get(q) } as *const Value),
        );
        self.call(id, func, ptrs, &[])
    }

    /// The value of a completed dependency.
    fn dep(&self, id: u32) -> &Value {
        // SAFETY: called while evaluating a consumer of `id`, whose count it still holds.
        unsafe { self.slots.get(self.plan.pos[id as usize]) }
    }

    fn eval(&self, id: u32, view: View<'_>) -> Result<Value, String> {
        match view {
            View::Lit(v) => Ok(v.clone()),
            View::Ref(d) => Ok(self.dep(d).clone()),
            View::List { items, len } => match self.graph.item_refs(items, len) {
                // A list of references (a fan-in's): made straight from the result slots.
                // Through a vector first, a sink of ten million results took 240 MB of
                // fresh memory more, and a copy.
                Some(refs) => Value::list_of(refs.iter().map(|&d| self.dep(d))),
                None => {
                    let items = self.eval_items(id, items, len)?;
                    Value::list(items)
                }
            }
            .map_err(|e| e.message),
            View::Map { items, names } => {
                let values = self.eval_items(id, items, names.len() as u32)?;
                Value::map_of(names.clone(), values).map_err(|e| e.message)
            }
            View::Task(call) => self.invoke(id, call, &mut Vec::new()),
        }
    }

    /// The values of a list's or map's `len` items. Into a vector of that size from the start:
    /// collecting through `Result` cannot size it, and a sink's list of a million results
    /// grew it twenty times over fresh memory (a fifth of the samples of a cold 1M-task
    /// `independent` run on 2 threads, perf).
    fn eval_items(&self, id: u32, items: ArgsAt, len: u32) -> Result<Vec<Value>, String> {
        let mut values = Vec::with_capacity(len as usize);
        for v in self.graph.items(items, len) {
            values.push(self.eval(id, v)?);
        }
        Ok(values)
    }

    /// Calls a task. References are passed by pointer into the result slots and literals by
    /// pointer into the graph; only nested lists and inline tasks are materialised.
    fn invoke(
        &self,
        id: u32,
        call: TaskCall,
        ptrs: &mut Vec<*const Value>,
    ) -> Result<Value, String> {
        let TaskCall {
            func,
            nargs,
            nkwargs,
            names,
            ..
        } = call;
        ptrs.clear();
        let temps;
        if let Some(refs) = self.graph.arg_refs(&call) {
            // The usual task: every argument is another entry's result.
            ptrs.extend(refs.iter().map(|&d| self.dep(d) as *const Value));
        } else {
            let mut made = Vec::new();
            for v in self.graph.args(&call) {
                if !matches!(v, View::Lit(_) | View::Ref(_)) {
                    made.push(self.eval(id, v)?);
                }
            }
            temps = made;
            let mut temp = temps.iter();
            for v in self.graph.args(&call) {
                ptrs.push(match v {
                    View::Lit(v) => v,
                    View::Ref(d) => self.dep(d),
                    _ => temp.next().expect("one temporary per nested computation"),
                });
            }
        }
        let kwnames: Vec<&[u8]> = if nkwargs == 0 {
            Vec::new()
        } else {
            self.graph.kwnames(names, nkwargs).collect()
        };
        debug_assert_eq!(nargs as usize + kwnames.len(), ptrs.len());
        self.call(id, func, ptrs, &kwnames)
    }

    /// Calls function `func` for entry `id` on `ptrs`: the positional arguments, then one
    /// value for each of `kwnames`.
    fn call(
        &self,
        id: u32,
        func: u32,
        ptrs: &[*const Value],
        kwnames: &[&[u8]],
    ) -> Result<Value, String> {
        let (args, kwargs) = ptrs.split_at(ptrs.len() - kwnames.len());
        let mut call = Call {
            key: self.graph.key_of(id),
            args,
            kwnames,
            kwargs,
            outcome: Outcome::Returned(Value::Null),
        };
        self.graph.func(func).invoke(&mut call);
        match call.outcome {
            Outcome::Returned(v) => Ok(v),
            Outcome::Failed(message) => Err(message),
        }
    }

    /// After the last worker stopped: the result in the request's shape (or the error), with
    /// every held result released exactly once.
    pub fn finish(self, keys: &Value, stats: &mut Stats) -> Result<Value, Error> {
        stats.peak_held = self.peak.load(Ordering::Relaxed).max(0) as u64;
        stats.entries_run = self.entries_run.load(Ordering::Relaxed);
        if let Some(c) = self.cache {
            stats.cache = c.finish();
        }
        if let Some(p) = self.progress {
            p.end();
        }
        let result = match self.failure.take(false) {
            Some(e) => Err(e),
            None => Ok(self.plan.shape_result(keys, &mut |id| {
                // SAFETY: every worker stopped; requested slots hold their results.
                unsafe { self.slots.get(self.plan.pos[id as usize]) }.clone()
            })),
        };
        drop(self.slots);
        result
    }

    /// A worker process running part of this plan (the processes scheduler's forked workers):
    /// sets position `p`'s result, computed elsewhere. Only on the thread running the
    /// partition, before any consumer of `p` runs.
    pub(crate) fn put(&self, p: u32, v: Value) {
        // SAFETY: single-threaded partition runs (above): nobody reads the slot meanwhile.
        unsafe { self.slots.set(p, v) }
    }

    /// Position `p`'s result, if it holds one, on the thread running the partitions.
    pub(crate) fn peek(&self, p: u32) -> Option<&Value> {
        // SAFETY: as in `put`.
        unsafe { (*self.slots.0[p as usize].get()).as_ref() }
    }

    /// Takes position `p`'s result out (a partition's output, or an input it no longer
    /// needs), on the thread running the partition.
    pub(crate) fn take(&self, p: u32) -> Option<Value> {
        // SAFETY: as in `put`.
        unsafe { self.slots.take(p) }
    }

    /// Before running the positions `range` (a partition) whose results from outside are
    /// `inputs`: their consumer counts start afresh, so a partition run (or run again) on its
    /// own releases exactly its internal results, and never an input (taken out by hand).
    pub(crate) fn rearm(&self, range: std::ops::Range<u32>, inputs: &[u32]) {
        for p in range {
            self.consumers[p as usize].store(self.plan.consumers[p as usize], Ordering::Relaxed);
        }
        for &q in inputs {
            self.consumers[q as usize].store(u32::MAX / 2, Ordering::Relaxed);
        }
    }

    /// The failure that stopped the run, if any; the run can go on afterwards.
    pub(crate) fn take_failure(&self) -> Option<Error> {
        self.failure.take(true)
    }

    /// The recorded spans as a profile (keys and function names resolved), in start order.
    pub fn take_profile(&self) -> Profile {
        let mut spans = std::mem::take(&mut *self.spans.lock().unwrap_or_else(|e| e.into_inner()));
        spans.sort_by_key(|s| (s.start, s.p));
        let tasks = spans
            .into_iter()
            .map(|s| {
                let id = self.plan.order[s.p as usize];
                let func = self.graph.entry_kind(id);
                TaskSpan {
                    key: self.graph.key_name(id).to_string(),
                    func,
                    worker: s.worker,
                    start: Duration::from_nanos(s.start),
                    end: Duration::from_nanos(s.end),
                    ok: s.ok,
                    cached: s.cached,
                }
            })
            .collect();
        Profile {
            tasks,
            phases: Vec::new(),
            workers: 0,
        }
    }
}

/// Records a finished run's profile, with its phases, into `profiler`.
pub(crate) fn record_profile(
    run: &Run<'_>,
    profiler: &Profiler,
    phases: Vec<crate::profile::PhaseSpan>,
    workers: u32,
) {
    let mut profile = run.take_profile();
    profile.phases = phases;
    profile.workers = workers;
    profiler.record(profile);
}
