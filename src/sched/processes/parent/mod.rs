//! The scheduler's side of a `processes` get, on the calling thread: it tracks the partition
//! DAG, hands ready partitions to idle workers, moves results between workers only when one
//! needs another's, notices workers that die, and replays what they did to the callbacks.
//!
//! Where a partition's output is: held by the worker that made it (`holder`), and/or copied
//! here (`copy`: fetched for another worker, or returned because the caller asked for it). It
//! is released — dropped here and in its holder — once every partition that reads it has
//! finished (`consumers` counts them, plus one for the caller if requested).
//!
//! A worker that dies loses what it held. If the get goes on (a retry, or a death outside any
//! task), the partitions whose lost outputs are still needed run again, and, in turn, those
//! whose released outputs they read: Dask's recompute-from-lineage, on partitions.
//!
//! Here: the get, the loop, dispatch. `replies`: the workers' answers. `deaths`: a worker
//! that died, retries, recomputing what it held.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

mod deaths;
mod replies;

use super::page::now_ns;
use super::protocol::*;
use super::spawn::{self, WorkerProc};
use super::worker::Forked;
use crate::encode;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::Graph;
use crate::options::{default_workers, Options};
use crate::plan::Plan;
use crate::profile::{PhaseSpan, Profile, TaskSpan};
use crate::run::Stats;
use crate::sched::partition::Partitions;
use crate::sched::wire::{self, put_bytes, put_varint, Funcs};
use crate::value::Value;

/// The most positions in one partition: large enough that a partition's message, round trip
/// and graph building cost well under a microsecond per task, small enough that a long chain
/// streams through a worker in pieces.
const MAX_PARTITION: usize = 4096;

const NONE: u32 = u32::MAX;

/// Ids of gets, so a worker knows when a new one starts (and a forked one, which get's
/// graph it holds).
static NEXT_GET: AtomicU64 = AtomicU64::new(1);

/// Run numbers, unique across gets: a worker's page may still ask an earlier run to stop.
static NEXT_SEQ: AtomicU32 = AtomicU32::new(1);

pub(crate) fn get(
    graph: &Graph,
    plan: &Plan,
    keys: &Value,
    options: &Options<'_>,
    stats: &mut Stats,
) -> Result<Value> {
    let get_started = now_ns().saturating_sub(stats.plan_time.as_nanos() as u64);
    let local = plan.first_local_function(graph);
    let may_fork = spawn::may_fork();
    if let Some((id, func)) = local {
        if !may_fork {
            return Err(cannot_fork(graph, id, func));
        }
    }
    // A result cache's decisions (found values, the hashes to store under) are in the plan,
    // which workers forked for this get hold, and travel in the partition messages the
    // others are sent.
    let local = local.is_some();
    if let Some(cb) = options.callbacks {
        cb.start(plan.computed(graph));
    }
    if let Some(p) = options.progress {
        // Entries the cache spared, and those it found (workers count what they ran), are
        // done from the start.
        let cache = plan.cache.as_deref();
        let (spared, found) = cache.map_or((0, 0), |c| (c.skipped, c.hits));
        p.begin(plan.len() as u64 + spared);
        p.add_done(spared + found);
    }
    let running = Instant::now();
    let want = match options.num_workers {
        0 => default_workers(),
        n => n,
    };
    let result = if plan.len() == 0 {
        stats.workers = 0;
        Ok(plan.shape_result(keys, &mut |_| Value::Null))
    } else {
        let parts = Partitions::cut(plan, want, MAX_PARTITION);
        let n = want.min(parts.len()).max(1);
        let mut sched = Sched::new(graph, plan, parts, options, local, may_fork);
        let result = sched.start(n).and_then(|()| sched.run(keys));
        // The pool keeps up to a worker per core, or as many as this get used if more.
        sched.close(n.max(default_workers()));
        stats.workers = n as u32;
        stats.entries_run = sched.entries_run;
        stats.peak_held = if options.measure_memory {
            sched.peak
        } else {
            0
        };
        if let Some(profiler) = options.profiler {
            let mut profile = sched.profile(get_started);
            let plan_end = stats.plan_time;
            profile.phases = vec![
                PhaseSpan {
                    name: "plan".into(),
                    start: Duration::ZERO,
                    end: plan_end,
                },
                PhaseSpan {
                    name: "run".into(),
                    start: plan_end,
                    end: plan_end + running.elapsed(),
                },
            ];
            profile.workers = n as u32;
            profiler.record(profile);
        }
        result
    };
    stats.run_time = running.elapsed();
    if let Some(p) = options.progress {
        p.end();
    }
    if let Some(cb) = options.callbacks {
        cb.finish(result.is_err());
    }
    result
}

fn cannot_fork(graph: &Graph, id: u32, func: u32) -> Error {
    let key = graph.key_name(id);
    let why = if spawn::caller_is_go() {
        "this is a Go program, which cannot be forked safely (the Go runtime's threads do not \
         survive a fork), so its worker processes are fresh `daskr worker` processes that run \
         plugin tasks only"
    } else {
        "DASKR_PROCESSES_START=exec asks for fresh `daskr worker` processes, which run plugin \
         tasks only"
    };
    Error::invalid_argument(format!(
        "key '{key}': its function '{}' lives in this process (a function pointer, closure or \
         Go function), which only a worker forked from this process could run, and {why}; use \
         plugin tasks, or the threads scheduler",
        graph.func(func).name()
    ))
    .with_key(key)
}

/// A partition's state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PState {
    /// Some inputs are not available yet.
    Waiting,
    Ready,
    /// Assigned to `worker`, waiting for inputs fetched from other workers (`gen` tells this
    /// assignment's replies from a cancelled one's).
    Fetching {
        worker: u32,
        gen: u32,
        left: u32,
    },
    Running {
        worker: u32,
        seq: u32,
    },
    Done,
    Failed,
}

/// A reply a worker owes.
enum Expect {
    Run {
        part: u32,
        seq: u32,
    },
    Fetch {
        part: u32,
        gen: u32,
        positions: Vec<u32>,
    },
}

/// One worker as this get sees it.
struct Slot {
    proc: Option<WorkerProc>,
    /// Bytes to send (from `out_at`).
    out: Vec<u8>,
    out_at: usize,
    /// Bytes received, not yet parsed.
    inbuf: Vec<u8>,
    expect: VecDeque<Expect>,
    /// The partition it is fetching inputs for or running.
    task: Option<u32>,
    /// Held results to drop, sent with the next message.
    releases: Vec<u32>,
    killed_for_timeout: bool,
}

impl Slot {
    fn new(proc: WorkerProc) -> Slot {
        Slot {
            proc: Some(proc),
            out: Vec::new(),
            out_at: 0,
            inbuf: Vec::new(),
            expect: VecDeque::new(),
            task: None,
            releases: Vec::new(),
            killed_for_timeout: false,
        }
    }
}

/// A task run reported by a worker: position, worker, start and end (monotonic ns), ok.
type Span = (u32, u32, u64, u64, bool);

struct Sched<'a> {
    graph: &'a Graph,
    plan: &'a Plan,
    parts: Partitions,
    options: &'a Options<'a>,
    /// Whether the plan calls functions of this process (workers are forked for this get).
    local: bool,
    may_fork: bool,
    get: u64,
    workers: Vec<Slot>,

    state: Vec<PState>,
    /// Inputs not available, per partition (meaningful while Waiting or Ready).
    missing: Vec<u32>,
    /// A retried partition runs on the worker that replaced the one it killed.
    pinned: Vec<u32>,
    ready: BinaryHeap<Reverse<u32>>,
    done: usize,

    /// Per output (index into `parts.outputs`): holder worker, copy here, consumers left.
    holder: Vec<u32>,
    copy: Vec<Option<Vec<u8>>>,
    consumers: Vec<u32>,
    /// Partitions reading each output (CSR).
    readers_off: Vec<u32>,
    readers: Vec<u32>,
    /// The output index of each partition input (parallel to `parts.inputs`).
    in_slots: Vec<u32>,

    attempts: FxHashMap<u32, u32>,
    gen: u32,
    failure: Option<Error>,
    /// Deaths outside any task (killed while idle, say).
    idle_deaths: u32,
    entries_run: u64,
    held: u64,
    peak: u64,
    spans: Vec<Span>,
}

impl<'a> Sched<'a> {
    fn new(
        graph: &'a Graph,
        plan: &'a Plan,
        parts: Partitions,
        options: &'a Options<'a>,
        local: bool,
        may_fork: bool,
    ) -> Sched<'a> {
        let nparts = parts.len();
        let nout = parts.outputs.len();
        let mut consumers = vec![0u32; nout];
        let mut in_slots = Vec::with_capacity(parts.inputs.len());
        for &p in &parts.inputs {
            in_slots.push(slot_of(&parts, p));
        }
        for &s in &in_slots {
            consumers[s as usize] += 1;
        }
        let mut readers_off = vec![0u32; nout + 1];
        for s in 0..nout {
            readers_off[s + 1] = readers_off[s] + consumers[s];
        }
        let mut fill = readers_off[..nout].to_vec();
        let mut readers = vec![0u32; in_slots.len()];
        for c in 0..nparts {
            let (a, b) = (
                parts.inputs_off[c] as usize,
                parts.inputs_off[c + 1] as usize,
            );
            for &s in &in_slots[a..b] {
                readers[fill[s as usize] as usize] = c as u32;
                fill[s as usize] += 1;
            }
        }
        for (s, &p) in parts.outputs.iter().enumerate() {
            if plan.is_requested(p) {
                consumers[s] += 1;
            }
        }
        let mut ready = BinaryHeap::new();
        let mut missing = Vec::with_capacity(nparts);
        let mut state = Vec::with_capacity(nparts);
        for c in 0..nparts {
            let m = parts.inputs(c).len() as u32;
            missing.push(m);
            state.push(if m == 0 {
                ready.push(Reverse(c as u32));
                PState::Ready
            } else {
                PState::Waiting
            });
        }
        Sched {
            graph,
            plan,
            options,
            local,
            may_fork,
            get: NEXT_GET.fetch_add(1, Ordering::Relaxed),
            workers: Vec::new(),
            state,
            missing,
            pinned: vec![NONE; nparts],
            ready,
            done: 0,
            holder: vec![NONE; nout],
            copy: vec![None; nout],
            consumers,
            readers_off,
            readers,
            in_slots,
            attempts: FxHashMap::default(),
            gen: 0,
            failure: None,
            idle_deaths: 0,
            entries_run: 0,
            held: 0,
            peak: 0,
            spans: Vec::new(),
            parts,
        }
    }

    // ---- workers ----

    fn spawn(&self) -> Result<WorkerProc> {
        // `local` implies `may_fork` (checked before the get started).
        if self.local || self.may_fork {
            spawn::fork_worker(Forked {
                graph: self.graph,
                plan: self.plan,
                parts: &self.parts,
                get: self.get,
            })
        } else {
            spawn::exec_worker()
        }
    }

    /// Gets `n` workers: idle ones from the pool when the tasks are all plugin tasks (a get
    /// calling this process's functions forks its own), new ones for the rest.
    fn start(&mut self, n: usize) -> Result<()> {
        if !self.local {
            for w in spawn::take_idle(n) {
                self.workers.push(Slot::new(w));
            }
        }
        while self.workers.len() < n {
            let w = self.spawn()?;
            self.workers.push(Slot::new(w));
        }
        Ok(())
    }

    /// After the run: workers drop what they hold; the healthy ones go back to the pool.
    fn close(&mut self, keep: usize) {
        let mut healthy = Vec::new();
        for w in 0..self.workers.len() {
            if self.workers[w].proc.is_none() {
                continue;
            }
            let slot = &mut self.workers[w];
            if !slot.expect.is_empty() || slot.task.is_some() {
                // Only on an internal error: do not reuse a worker in an unknown state.
                if let Some(p) = slot.proc.take() {
                    p.kill();
                }
                continue;
            }
            let at = begin_frame(&mut slot.out, CLEAR);
            end_frame(&mut slot.out, at);
            if self.flush_blocking(w) {
                healthy.push(self.workers[w].proc.take().expect("alive"));
            } else if let Some(p) = self.workers[w].proc.take() {
                p.kill();
            }
        }
        spawn::give_back(healthy, keep);
    }

    /// Sends what is queued for worker `w`, waiting up to a few seconds; false if it could not.
    fn flush_blocking(&mut self, w: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.flush(w) {
                Err(()) => return false,
                Ok(true) => return true,
                Ok(false) => {}
            }
            if Instant::now() > deadline {
                return false;
            }
            let fd = self.workers[w].proc.as_ref().expect("alive").fd.as_raw_fd();
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one pollfd.
            unsafe { libc::poll(&mut pfd, 1, 100) };
        }
    }

    /// Writes what it can of worker `w`'s queue without blocking: Ok(true) when all is sent,
    /// Err if the connection is broken.
    fn flush(&mut self, w: usize) -> std::result::Result<bool, ()> {
        let slot = &mut self.workers[w];
        let Some(proc) = &slot.proc else {
            return Err(());
        };
        let fd = proc.fd.as_raw_fd();
        while slot.out_at < slot.out.len() {
            let n = send(fd, &slot.out[slot.out_at..]);
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::Interrupted => continue,
                    std::io::ErrorKind::WouldBlock => return Ok(false),
                    _ => return Err(()),
                }
            }
            slot.out_at += n as usize;
        }
        slot.out.clear();
        slot.out_at = 0;
        Ok(true)
    }

    // ---- the loop ----

    fn run(&mut self, keys: &Value) -> Result<Value> {
        let mut pfds: Vec<libc::pollfd> = Vec::new();
        let mut who: Vec<(usize, libc::pid_t, bool)> = Vec::new();
        loop {
            if self.failure.is_none() {
                self.check_cancel();
            }
            self.dispatch();
            if self.send_queued() {
                // A worker was found dead: what runs and what is ready changed (a partition
                // fetching from it went back to waiting, a replacement started), so decide
                // again what to dispatch and what to wait for.
                continue;
            }
            let outstanding = self
                .workers
                .iter()
                .any(|s| s.proc.is_some() && (!s.expect.is_empty() || s.task.is_some()));
            if !outstanding {
                if self.failure.is_some() || self.done == self.parts.len() {
                    break;
                }
                if self.workers.iter().all(|s| s.proc.is_none()) || self.ready.is_empty() {
                    // Nothing runs and nothing can: a bug, never a hang.
                    self.fail(Error::new(
                        ErrorKind::Internal,
                        format!(
                            "the processes scheduler stalled with {} of {} partitions done",
                            self.done,
                            self.parts.len()
                        ),
                    ));
                    break;
                }
                continue;
            }
            pfds.clear();
            who.clear();
            for w in 0..self.workers.len() {
                // Nothing here may change the run's state: this poll must watch every
                // worker that owes a reply (`outstanding` was decided just above).
                let slot = &self.workers[w];
                let Some(proc) = &slot.proc else { continue };
                let mut events = libc::POLLIN;
                if slot.out_at < slot.out.len() {
                    events |= libc::POLLOUT;
                }
                pfds.push(libc::pollfd {
                    fd: proc.fd.as_raw_fd(),
                    events,
                    revents: 0,
                });
                who.push((w, proc.pid, false));
                if let Some(pidfd) = &proc.pidfd {
                    pfds.push(libc::pollfd {
                        fd: pidfd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    who.push((w, proc.pid, true));
                }
            }
            if pfds.is_empty() {
                continue;
            }
            let timeout = self.poll_timeout();
            // SAFETY: `pfds` is a valid array of its length.
            let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
            if r < 0 {
                continue; // EINTR
            }
            for i in 0..pfds.len() {
                let ((w, pid, exited), revents) = (who[i], pfds[i].revents);
                // (A worker handled earlier in this round may have died and been replaced.)
                if revents == 0 || self.workers[w].proc.as_ref().map(|p| p.pid) != Some(pid) {
                    continue;
                }
                if exited {
                    // The process ended: take what it sent before, then bury it (even if a
                    // process it started keeps its socket open).
                    self.receive(w);
                    // (Unless `receive` buried it already, on reading end-of-file: then the
                    // slot holds its replacement, alive and well.)
                    if self.workers[w].proc.as_ref().map(|p| p.pid) == Some(pid) {
                        self.died(w);
                    }
                    continue;
                }
                if revents & libc::POLLOUT != 0 && self.flush(w).is_err() {
                    self.died(w);
                    continue;
                }
                if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    self.receive(w);
                }
            }
            self.check_timeouts();
        }
        match self.failure.take() {
            Some(e) => Err(e),
            None => self.result(keys),
        }
    }

    /// Writes what it can of every worker's queue without blocking; a worker whose
    /// connection is broken died, and is buried here. True if one was.
    fn send_queued(&mut self) -> bool {
        let mut buried = false;
        for w in 0..self.workers.len() {
            let slot = &self.workers[w];
            if slot.proc.is_some() && slot.out_at < slot.out.len() && self.flush(w).is_err() {
                self.died(w);
                buried = true;
            }
        }
        buried
    }

    /// How long poll may sleep: forever unless a cancel switch or a timeout needs watching.
    fn poll_timeout(&self) -> libc::c_int {
        let mut ms: i64 = -1;
        if self.options.cancel.is_some() {
            ms = 20;
        }
        if let Some(t) = self.options.task_timeout {
            let step = i64::try_from(t.as_millis() / 4).unwrap_or(50).clamp(1, 50);
            ms = if ms < 0 { step } else { ms.min(step) };
        }
        ms as libc::c_int
    }

    fn check_cancel(&mut self) {
        if self.options.cancel.is_some_and(|c| c.is_cancelled()) {
            self.fail(Error::cancelled());
        }
    }

    fn check_timeouts(&mut self) {
        let Some(limit) = self.options.task_timeout else {
            return;
        };
        let now = now_ns();
        for w in 0..self.workers.len() {
            let slot = &mut self.workers[w];
            let (Some(proc), Some(c)) = (&slot.proc, slot.task) else {
                continue;
            };
            if slot.killed_for_timeout {
                continue;
            }
            let PState::Running { seq, .. } = self.state[c as usize] else {
                continue;
            };
            if let Some((_, started)) = proc.page.running(seq) {
                let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
                if started != 0 && now.saturating_sub(started) > limit {
                    // SAFETY: our own child; reaped when its connection closes.
                    unsafe { libc::kill(proc.pid, libc::SIGKILL) };
                    slot.killed_for_timeout = true;
                }
            }
        }
    }

    /// Records the first failure; running partitions are asked to start no further task.
    fn fail(&mut self, e: Error) {
        if self.failure.is_some() {
            return;
        }
        self.failure = Some(e);
        for slot in &self.workers {
            if let (Some(proc), Some(c)) = (&slot.proc, slot.task) {
                if let PState::Running { seq, .. } = self.state[c as usize] {
                    proc.page.request_stop(seq);
                }
            }
        }
    }

    // ---- dispatch ----

    fn dispatch(&mut self) {
        if self.failure.is_some() {
            return;
        }
        let mut deferred = Vec::new();
        loop {
            let idle: Vec<usize> = (0..self.workers.len())
                .filter(|&w| self.workers[w].proc.is_some() && self.workers[w].task.is_none())
                .collect();
            if idle.is_empty() {
                break;
            }
            let Some(Reverse(c)) = self.ready.pop() else {
                break;
            };
            if self.state[c as usize] != PState::Ready {
                continue; // stale entry
            }
            let pin = self.pinned[c as usize];
            let w = if pin != NONE && self.workers[pin as usize].proc.is_some() {
                if !idle.contains(&(pin as usize)) {
                    deferred.push(c);
                    continue;
                }
                pin as usize
            } else {
                self.best_worker(c as usize, &idle)
            };
            if self.failure.is_some() {
                break;
            }
            self.assign(c as usize, w);
        }
        for c in deferred {
            self.ready.push(Reverse(c));
        }
    }

    /// The idle worker holding the most of partition `c`'s inputs (the first on a tie).
    fn best_worker(&self, c: usize, idle: &[usize]) -> usize {
        if idle.len() == 1 {
            return idle[0];
        }
        let mut score = vec![0usize; self.workers.len()];
        for &s in self.inputs_of(c) {
            let h = self.holder[s as usize];
            if h != NONE {
                score[h as usize] += 1;
            }
        }
        let mut best = idle[0];
        for &w in idle {
            if score[w] > score[best] {
                best = w;
            }
        }
        best
    }

    fn inputs_of(&self, c: usize) -> &[u32] {
        let (a, b) = (
            self.parts.inputs_off[c] as usize,
            self.parts.inputs_off[c + 1] as usize,
        );
        &self.in_slots[a..b]
    }

    fn available(&self, s: u32) -> bool {
        self.holder[s as usize] != NONE || self.copy[s as usize].is_some()
    }

    /// Gives partition `c` to worker `w`: fetches the inputs held by other workers, then runs.
    fn assign(&mut self, c: usize, w: usize) {
        let mut fetch: Vec<(usize, Vec<u32>)> = Vec::new();
        let (a, b) = (
            self.parts.inputs_off[c] as usize,
            self.parts.inputs_off[c + 1] as usize,
        );
        for i in a..b {
            let s = self.in_slots[i] as usize;
            let h = self.holder[s];
            if h == w as u32 || self.copy[s].is_some() {
                continue;
            }
            debug_assert!(h != NONE, "a ready partition's input is available");
            match fetch.iter_mut().find(|f| f.0 == h as usize) {
                Some(f) => f.1.push(self.parts.inputs[i]),
                None => fetch.push((h as usize, vec![self.parts.inputs[i]])),
            }
        }
        self.workers[w].task = Some(c as u32);
        if fetch.is_empty() {
            self.send_run(c, w);
            return;
        }
        self.gen += 1;
        self.state[c] = PState::Fetching {
            worker: w as u32,
            gen: self.gen,
            left: fetch.len() as u32,
        };
        for (h, positions) in fetch {
            let slot = &mut self.workers[h];
            let at = begin_frame(&mut slot.out, FETCH);
            put_varint(&mut slot.out, positions.len() as u64);
            for &p in &positions {
                put_varint(&mut slot.out, u64::from(p));
            }
            end_frame(&mut slot.out, at);
            slot.expect.push_back(Expect::Fetch {
                part: c as u32,
                gen: self.gen,
                positions,
            });
        }
    }

    /// What worker does with output `s` of a partition: hold it (later partitions read it),
    /// return it (the caller asked for it), or both.
    fn output_mode(&self, s: usize) -> u8 {
        let mut mode = 0;
        if self.readers_off[s + 1] > self.readers_off[s] {
            mode |= OUTPUT_HOLD;
        }
        if self.plan.is_requested(self.parts.outputs[s]) {
            mode |= OUTPUT_RETURN;
        }
        mode
    }

    fn send_run(&mut self, c: usize, w: usize) {
        // A worker forked for this get is sent the partition's number (it holds the plan);
        // any other (from the pool, or exec'd), a message naming plugin functions by path.
        let forked = self.workers[w].proc.as_ref().and_then(|p| p.forked_for) == Some(self.get);
        let message = if forked {
            None
        } else {
            let funcs = Funcs::PluginsOnly("in a worker process");
            match wire::encode_partition(self.graph, self.plan, &self.parts, c, funcs) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.workers[w].task = None;
                    self.state[c] = PState::Failed;
                    self.fail(e);
                    return;
                }
            }
        };
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let o = self.options;
        let mut flags = 0;
        if o.callbacks.is_some() || o.profiler.is_some() {
            flags |= FLAG_TRACE;
        }
        if o.profiler.is_some() {
            flags |= FLAG_TIMES;
        }
        if o.task_timeout.is_some() {
            flags |= FLAG_TIMED;
        }
        if o.measure_memory {
            flags |= FLAG_MEMORY;
        }
        let outputs: Vec<(u32, u8)> = (self.parts.outputs_off[c]..self.parts.outputs_off[c + 1])
            .map(|s| (self.parts.outputs[s as usize], self.output_mode(s as usize)))
            .collect();
        let slot = &mut self.workers[w];
        let out = &mut slot.out;
        if !slot.releases.is_empty() {
            let at = begin_frame(out, RELEASE);
            put_varint(out, slot.releases.len() as u64);
            for &p in &slot.releases {
                put_varint(out, u64::from(p));
            }
            end_frame(out, at);
            slot.releases.clear();
        }
        let at = begin_frame(out, if message.is_some() { RUN } else { RUN_FORKED });
        put_varint(out, self.get);
        put_varint(out, u64::from(seq));
        out.push(flags);
        // A task that fails runs again in the worker, as under the local schedulers.
        put_varint(out, u64::from(o.retries));
        if message.is_none() {
            put_varint(out, c as u64);
        }
        let (a, b) = (
            self.parts.inputs_off[c] as usize,
            self.parts.inputs_off[c + 1] as usize,
        );
        put_varint(out, (b - a) as u64);
        for i in a..b {
            let s = self.in_slots[i] as usize;
            if self.holder[s] == w as u32 {
                out.push(INPUT_HELD);
                put_varint(out, u64::from(self.parts.inputs[i]));
            } else {
                out.push(INPUT_INLINE);
                put_bytes(out, self.copy[s].as_deref().expect("inputs are available"));
            }
        }
        put_varint(out, outputs.len() as u64);
        for &(p, mode) in &outputs {
            put_varint(out, u64::from(p));
            out.push(mode);
        }
        if let Some(message) = &message {
            put_bytes(out, message);
        }
        end_frame(out, at);
        slot.expect.push_back(Expect::Run {
            part: c as u32,
            seq,
        });
        self.state[c] = PState::Running {
            worker: w as u32,
            seq,
        };
    }

    // ---- the end ----

    /// The requested results (returned by their workers), in the request's shape.
    fn result(&mut self, keys: &Value) -> Result<Value> {
        let mut error = None;
        let value = self.plan.shape_result(keys, &mut |id| {
            let p = self.plan.pos[id as usize];
            let s = slot_of(&self.parts, p) as usize;
            match self.copy[s].as_deref().map(encode::decode) {
                Some(Ok(v)) => v,
                other => {
                    let why = match other {
                        Some(Err(e)) => e.message,
                        _ => "missing".to_string(),
                    };
                    error.get_or_insert_with(|| {
                        Error::new(
                            ErrorKind::Internal,
                            format!(
                                "the result of '{}' came back unreadable: {why}",
                                self.graph.key_name(id)
                            ),
                        )
                    });
                    Value::Null
                }
            }
        });
        match error {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }

    fn profile(&self, epoch: u64) -> Profile {
        let mut spans = self.spans.clone();
        spans.sort_by_key(|s| (s.2, s.0));
        let tasks = spans
            .into_iter()
            .map(|(p, worker, start, end, ok)| {
                let id = self.plan.order[p as usize];
                let func = self.graph.entry_kind(id);
                TaskSpan {
                    key: self.graph.key_name(id).to_string(),
                    func,
                    worker,
                    start: Duration::from_nanos(start.saturating_sub(epoch)),
                    end: Duration::from_nanos(end.saturating_sub(epoch)),
                    ok,
                    cached: self.plan.is_found(p),
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

/// The output index of position `p` (which must be some partition's output). Partitions are
/// ranges in position order and list their outputs ascending, so all outputs are ascending.
fn slot_of(parts: &Partitions, p: u32) -> u32 {
    parts
        .outputs
        .binary_search(&p)
        .expect("an input is an output of the partition before it") as u32
}

/// "2.5 s", "250 ms".
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}
