//! Deaths: a worker's connection closed. Reap it, pin the death on its task, retry or fail,
//! and make again what it held that is still needed.

use std::cmp::Reverse;

use super::{seconds, Expect, PState, Sched, NONE};
use crate::error::{Error, ErrorKind};
use crate::sched::processes::spawn::describe_status;

impl Sched<'_> {
    // ---- deaths ----

    /// Worker `w`'s connection closed: it died (or was killed). Reap it, pin the death on the
    /// task it was running, retry or fail, and recover what it held.
    pub(super) fn died(&mut self, w: usize) {
        let slot = &mut self.workers[w];
        let Some(proc) = slot.proc.take() else {
            return;
        };
        let timed_out = std::mem::take(&mut slot.killed_for_timeout);
        let expects = std::mem::take(&mut slot.expect);
        let reserved = slot.task.take();
        slot.out.clear();
        slot.out_at = 0;
        slot.inbuf.clear();
        slot.releases.clear();
        // Its connection closed or its process ended, so it is dead or dying; the kill makes
        // sure (a process that is already exiting keeps its own status), so reaping never
        // waits on a live one.
        // SAFETY: our own child, not yet reaped (so its pid cannot have been reused).
        unsafe { libc::kill(proc.pid, libc::SIGKILL) };
        let status = proc.reap();
        let pid = proc.pid;

        let mut crashed = None;
        for e in expects {
            match e {
                Expect::Run { part, seq } => crashed = Some((part as usize, seq)),
                Expect::Fetch { part, gen, .. } => {
                    // Another worker was waiting for these: it will be given work anew.
                    if let PState::Fetching { worker, gen: g, .. } = self.state[part as usize] {
                        if g == gen {
                            self.workers[worker as usize].task = None;
                            self.state[part as usize] = PState::Waiting;
                        }
                    }
                }
            }
        }
        if let Some(c) = reserved {
            if matches!(self.state[c as usize], PState::Fetching { worker, .. } if worker == w as u32)
            {
                self.state[c as usize] = PState::Waiting;
            }
        }
        // What it held is gone (copies here survive).
        for s in 0..self.holder.len() {
            if self.holder[s] == w as u32 {
                self.holder[s] = NONE;
                if self.copy[s].is_none() {
                    self.held -= 1;
                }
            }
        }
        let how = describe_status(status);
        match crashed {
            Some((c, seq)) => {
                let (p, in_task) = match proc.page.running(seq) {
                    Some((index, _)) => {
                        let ninputs = self.parts.inputs(c).len() as u32;
                        let range = self.parts.range(c);
                        match index.checked_sub(ninputs).map(|i| range.start + i) {
                            Some(p) if range.contains(&p) => (p, true),
                            _ => (range.start, false),
                        }
                    }
                    None => (self.parts.range(c).start, false),
                };
                drop(proc);
                if in_task {
                    self.report(p, w, false);
                }
                let attempts = self.attempts.entry(p).or_insert(0);
                *attempts += 1;
                let attempts = *attempts;
                if attempts > self.options.retries {
                    self.state[c] = PState::Failed;
                    let e = self.death_error(p, in_task, pid, &how, timed_out, attempts);
                    self.fail(e);
                } else {
                    self.state[c] = PState::Waiting;
                    self.pinned[c] = w as u32;
                }
            }
            None => {
                drop(proc);
                self.idle_deaths += 1;
                if self.idle_deaths > 2 * self.workers.len() as u32 + self.options.retries {
                    self.fail(Error::new(
                        ErrorKind::WorkerDied,
                        format!(
                            "worker processes keep dying outside any task (the last, pid {pid}, \
                             {how})"
                        ),
                    ));
                }
            }
        }
        if self.failure.is_some() {
            return;
        }
        match self.spawn() {
            Ok(p) => {
                let slot = &mut self.workers[w];
                slot.proc = Some(p);
            }
            Err(e) => {
                self.fail(e);
                return;
            }
        }
        self.recover();
    }

    pub(super) fn death_error(
        &self,
        p: u32,
        in_task: bool,
        pid: libc::pid_t,
        how: &str,
        timed_out: bool,
        attempts: u32,
    ) -> Error {
        let key = self.graph.key_name(self.plan.order[p as usize]);
        let what = match (timed_out, self.options.task_timeout) {
            (true, Some(t)) => format!(
                "task '{key}' ran longer than its timeout of {}: its worker process (pid {pid}) \
                 was killed",
                seconds(t)
            ),
            _ if in_task => {
                format!("task '{key}' crashed its worker process: the worker (pid {pid}) {how}")
            }
            _ => format!(
                "the worker process (pid {pid}) running the tasks around '{key}' {how} between \
                 tasks"
            ),
        };
        let tries = match attempts {
            1 => String::new(),
            n => format!(" (on each of {n} tries)"),
        };
        Error::new(ErrorKind::WorkerDied, format!("{what}{tries}")).with_key(key)
    }

    /// After a death: partitions whose outputs are still needed but were lost run again (and
    /// those whose released outputs they need, in turn); then readiness is counted afresh.
    pub(super) fn recover(&mut self) {
        let mut work: Vec<usize> = Vec::new();
        for s in 0..self.holder.len() {
            if self.consumers[s] > 0 && !self.available(s as u32) {
                let c = self.parts.of(self.parts.outputs[s]);
                if self.state[c] == PState::Done {
                    work.push(c);
                }
            }
        }
        while let Some(c) = work.pop() {
            if self.state[c] != PState::Done {
                continue;
            }
            self.state[c] = PState::Waiting;
            self.done -= 1;
            let (a, b) = (
                self.parts.inputs_off[c] as usize,
                self.parts.inputs_off[c + 1] as usize,
            );
            for i in a..b {
                let s = self.in_slots[i] as usize;
                // It read these once already, and reads them again.
                self.consumers[s] += 1;
                if !self.available(s as u32) {
                    let d = self.parts.of(self.parts.inputs[i]);
                    if self.state[d] == PState::Done {
                        work.push(d);
                    }
                }
            }
        }
        self.recount();
    }

    /// Recounts every waiting partition's missing inputs and rebuilds the ready queue.
    pub(super) fn recount(&mut self) {
        self.ready.clear();
        for c in 0..self.parts.len() {
            if matches!(self.state[c], PState::Waiting | PState::Ready) {
                let m = self
                    .inputs_of(c)
                    .iter()
                    .filter(|&&s| !self.available(s))
                    .count() as u32;
                self.missing[c] = m;
                if m == 0 {
                    self.state[c] = PState::Ready;
                    self.ready.push(Reverse(c as u32));
                } else {
                    self.state[c] = PState::Waiting;
                }
            }
        }
    }
}
