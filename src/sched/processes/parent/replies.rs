//! The workers' answers: reading frames, and what DONE, FAILED and VALUES change.

use std::cmp::Reverse;
use std::os::fd::AsRawFd;

use super::{slot_of, Expect, PState, Sched, NONE};
use crate::error::{Error, ErrorKind, Result};
use crate::run::KeyRef;
use crate::sched::processes::protocol::*;
use crate::sched::wire::{self, Reader};

impl Sched<'_> {
    // ---- replies ----

    /// Reads what worker `w` sent and handles every complete frame; a closed connection
    /// means it died.
    pub(super) fn receive(&mut self, w: usize) {
        let Some(proc) = &self.workers[w].proc else {
            return;
        };
        let fd = proc.fd.as_raw_fd();
        let mut buf = std::mem::take(&mut self.workers[w].inbuf);
        let mut closed = false;
        loop {
            if buf.capacity() - buf.len() < 64 << 10 {
                buf.reserve(64 << 10);
            }
            let spare = buf.capacity() - buf.len();
            // SAFETY: reads into the spare capacity, then extends the length by what was read.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().add(buf.len()).cast(), spare) };
            if n > 0 {
                // SAFETY: `n` bytes were written.
                unsafe { buf.set_len(buf.len() + n as usize) };
                continue;
            }
            if n == 0 {
                closed = true;
                break;
            }
            match std::io::Error::last_os_error().kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => break,
                _ => {
                    closed = true;
                    break;
                }
            }
        }
        let mut at = 0;
        while buf.len() - at >= 8 {
            let len = u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
            if len == 0 || len > MAX_FRAME {
                self.protocol_error(w, "a frame of impossible length");
                return;
            }
            let end = at + 8 + len as usize;
            if buf.len() < end {
                break;
            }
            if let Err(e) = self.frame(w, &buf[at + 8..end]) {
                self.protocol_error(w, &e.message);
                return;
            }
            at = end;
            if self.workers[w].proc.is_none() {
                return;
            }
        }
        buf.drain(..at);
        if closed {
            self.died(w);
        } else {
            self.workers[w].inbuf = buf;
        }
    }

    /// A worker said something that makes no sense: stop the get and that worker.
    pub(super) fn protocol_error(&mut self, w: usize, what: &str) {
        self.fail(Error::new(
            ErrorKind::Internal,
            format!("a worker process sent a malformed reply: {what}"),
        ));
        if let Some(p) = self.workers[w].proc.as_ref() {
            // SAFETY: our own child.
            unsafe { libc::kill(p.pid, libc::SIGKILL) };
        }
        self.workers[w].killed_for_timeout = false;
        self.died(w);
    }

    pub(super) fn frame(&mut self, w: usize, frame: &[u8]) -> Result<()> {
        let mut r = Reader::new(&frame[1..]);
        let expected = self.workers[w]
            .expect
            .pop_front()
            .ok_or_else(|| r.error("a reply nobody asked for".into()))?;
        match (frame[0], expected) {
            (DONE, Expect::Run { part, seq }) => self.done_frame(w, part as usize, seq, &mut r),
            (FAILED, Expect::Run { part, seq }) => self.failed_frame(w, part as usize, seq, &mut r),
            (
                VALUES,
                Expect::Fetch {
                    part,
                    gen,
                    positions,
                },
            ) => self.values_frame(part as usize, gen, &positions, &mut r),
            (tag, _) => Err(r.error(format!("unexpected reply {tag:#04x}"))),
        }
    }

    pub(super) fn read_trace(&mut self, w: usize, c: usize, r: &mut Reader<'_>) -> Result<()> {
        let n = r.count()?;
        let times = self.options.profiler.is_some();
        let ninputs = self.parts.inputs(c).len() as u32;
        let range = self.parts.range(c);
        for _ in 0..n {
            let index = r.varint()? as u32;
            let ok = r.byte()? != 0;
            let (start, end) = if times {
                (r.varint()?, r.varint()?)
            } else {
                (0, 0)
            };
            let Some(p) = index
                .checked_sub(ninputs)
                .map(|i| range.start + i)
                .filter(|p| range.contains(p))
            else {
                return Err(r.error(format!("trace names key {index}")));
            };
            self.report(p, w, ok);
            if times {
                self.spans.push((p, w as u32, start, end, ok));
            }
        }
        Ok(())
    }

    /// Replays one task's run to the callbacks (entries that compute something).
    pub(super) fn report(&self, p: u32, w: usize, ok: bool) {
        let Some(cb) = self.options.callbacks else {
            return;
        };
        let id = self.plan.order[p as usize];
        // Literals, and results read from the cache, did not run (`Plan::computed`).
        if self.graph.is_literal(id) || self.plan.is_found(p) {
            return;
        }
        let name = self.graph.key_c(id);
        let key = KeyRef::from_c(&name);
        cb.pretask(key, w);
        cb.posttask(key, ok, w);
    }

    /// A DONE or FAILED reply must be for run `seq` of partition `c`, running on worker `w`.
    fn check_reply(&self, w: usize, c: usize, seq: u32, r: &mut Reader<'_>) -> Result<()> {
        let running = PState::Running {
            worker: w as u32,
            seq,
        };
        if r.varint()? as u32 != seq || self.state[c] != running {
            return Err(r.error("a reply for another run".into()));
        }
        Ok(())
    }

    pub(super) fn done_frame(
        &mut self,
        w: usize,
        c: usize,
        seq: u32,
        r: &mut Reader<'_>,
    ) -> Result<()> {
        self.check_reply(w, c, seq, r)?;
        let ran = r.varint()?;
        let peak = r.varint()?;
        self.read_trace(w, c, r)?;
        let nret = r.count()?;
        let mut returned = Vec::with_capacity(nret);
        for _ in 0..nret {
            let len = r.varint()?;
            returned.push(r.take(len)?.to_vec());
        }
        self.workers[w].task = None;
        self.state[c] = PState::Done;
        self.pinned[c] = NONE;
        self.done += 1;
        self.entries_run += ran;
        if let Some(p) = self.options.progress {
            p.add_done(ran);
        }
        // The partition's own peak counts its inputs, which `held` counts already.
        let inputs = u64::from(self.parts.inputs_off[c + 1] - self.parts.inputs_off[c]);
        self.peak = self.peak.max(self.held + peak.saturating_sub(inputs));
        let mut returned = returned.into_iter();
        for s in self.parts.outputs_off[c]..self.parts.outputs_off[c + 1] {
            let s = s as usize;
            let mode = self.output_mode(s);
            let was = self.available(s as u32);
            if mode & OUTPUT_HOLD != 0 {
                let old = self.holder[s];
                if old != NONE && old != w as u32 {
                    self.workers[old as usize]
                        .releases
                        .push(self.parts.outputs[s]);
                }
                self.holder[s] = w as u32;
            }
            if mode & OUTPUT_RETURN != 0 {
                let v = returned
                    .next()
                    .ok_or_else(|| r.error("fewer returned outputs than asked for".into()))?;
                self.copy[s] = Some(v);
            }
            if !was {
                self.held += 1;
                for k in self.readers_off[s]..self.readers_off[s + 1] {
                    let k = self.readers[k as usize] as usize;
                    if self.state[k] == PState::Waiting {
                        self.missing[k] -= 1;
                        if self.missing[k] == 0 {
                            self.state[k] = PState::Ready;
                            self.ready.push(Reverse(k as u32));
                        }
                    }
                }
            }
            if self.consumers[s] == 0 {
                self.release(s); // made again for a lost partition, but not needed any more
            }
        }
        let (a, b) = (
            self.parts.inputs_off[c] as usize,
            self.parts.inputs_off[c + 1] as usize,
        );
        for i in a..b {
            let s = self.in_slots[i] as usize;
            self.consumers[s] -= 1;
            if self.consumers[s] == 0 {
                self.release(s);
            }
        }
        Ok(())
    }

    /// Output `s` is needed no more: drop it here and in its holder.
    pub(super) fn release(&mut self, s: usize) {
        if self.available(s as u32) {
            self.held -= 1;
        }
        self.copy[s] = None;
        let h = self.holder[s];
        if h != NONE {
            self.holder[s] = NONE;
            if self.workers[h as usize].proc.is_some() {
                self.workers[h as usize]
                    .releases
                    .push(self.parts.outputs[s]);
            }
        }
    }

    pub(super) fn failed_frame(
        &mut self,
        w: usize,
        c: usize,
        seq: u32,
        r: &mut Reader<'_>,
    ) -> Result<()> {
        self.check_reply(w, c, seq, r)?;
        let error = wire::read_error(r)?;
        let ran = r.varint()?;
        self.read_trace(w, c, r)?;
        self.workers[w].task = None;
        self.state[c] = PState::Failed;
        self.entries_run += ran;
        if let Some(p) = self.options.progress {
            p.add_done(ran);
        }
        self.fail(error);
        Ok(())
    }

    pub(super) fn values_frame(
        &mut self,
        c: usize,
        gen: u32,
        positions: &[u32],
        r: &mut Reader<'_>,
    ) -> Result<()> {
        let n = r.count()?;
        if n != positions.len() {
            return Err(r.error("a fetch answered with another count".into()));
        }
        for &p in positions {
            if r.byte()? == 0 {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!(
                        "a worker process no longer held the result of '{}'",
                        self.graph.key_name(self.plan.order[p as usize])
                    ),
                ));
            }
            let len = r.varint()?;
            let bytes = r.take(len)?;
            let s = slot_of(&self.parts, p) as usize;
            if self.consumers[s] > 0 && self.copy[s].is_none() {
                self.copy[s] = Some(bytes.to_vec());
            }
        }
        if let PState::Fetching {
            worker,
            gen: g,
            left,
        } = self.state[c]
        {
            if g == gen {
                if left > 1 {
                    self.state[c] = PState::Fetching {
                        worker,
                        gen,
                        left: left - 1,
                    };
                } else if self.failure.is_none() && self.all_available(c) {
                    self.send_run(c, worker as usize);
                } else {
                    self.workers[worker as usize].task = None;
                    self.state[c] = PState::Waiting;
                    self.recount();
                }
            }
        }
        Ok(())
    }

    pub(super) fn all_available(&self, c: usize) -> bool {
        self.inputs_of(c).iter().all(|&s| self.available(s))
    }
}
