//! A worker process's side: read a request, do it, answer, until the scheduler closes the
//! connection. The same loop runs in a fork of the caller and in `daskr worker`.
//!
//! A worker keeps the results of the partitions it ran that later partitions read (encoded),
//! by plan position, until the scheduler releases them, fetches them for another worker or
//! the caller, or the get ends. It runs one partition at a time on its one thread, noting the
//! task it is in on its attribution page.
//!
//! A worker forked for a get holds that get's graph, plan and partitions (copied by the
//! fork), so it is sent partitions by number (RUN_FORKED) and runs their positions straight
//! from the graph: no message to encode or decode, no graph to rebuild. Other workers get
//! partition messages (RUN, plugin functions only) and build a small graph of each.

use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rustc_hash::{FxHashMap, FxHashSet};

use super::page::{now_ns, Page};
use super::protocol::*;
use crate::encode;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::Graph;
use crate::plan::Plan;
use crate::run::{Run, Scratch, Stats, Watch};
use crate::sched::partition::Partitions;
use crate::sched::reentry;
use crate::sched::wire::{self, put_bytes, put_varint, Observer, PartitionMessage, Reader};
use crate::value::Value;

/// What a worker forked for a get holds of it (valid in the child: the fork copied them).
#[derive(Clone, Copy)]
pub(crate) struct Forked<'g> {
    pub graph: &'g Graph,
    pub plan: &'g Plan,
    pub parts: &'g Partitions,
    pub get: u64,
}

/// Buffers larger than this are freed after use rather than kept for the next message.
const KEEP_BUFFER: usize = 8 << 20;

/// Results this worker holds, by plan position, for the get `get`.
struct Held {
    get: u64,
    /// Encoded (workers running partition messages).
    values: FxHashMap<u32, Vec<u8>>,
    /// Kept as values in the forked get's run, in their result slots (encoded only if
    /// another worker or the caller asks for them).
    in_run: FxHashSet<u32>,
}

impl Held {
    fn clear(&mut self) {
        self.values = FxHashMap::default();
        self.in_run = FxHashSet::default();
    }
}

/// Runs the worker loop of a `daskr worker` process: frames come in on `input` and go out on
/// `output` (the same socket, or stdin and stdout); `page_fd` is the attribution page the
/// scheduler shares (None: a private one, when run by hand). Plugin tasks only: a worker
/// started this way shares no code with its scheduler. Returns the exit status: 0 when the
/// scheduler closed the connection, non-zero on a broken connection or message.
pub fn serve_worker(input: RawFd, output: RawFd, page_fd: Option<RawFd>) -> i32 {
    let page = match page_fd {
        Some(fd) => {
            let page = Page::map(fd);
            // SAFETY: the descriptor was handed to this process for the page; mapped now.
            unsafe { libc::close(fd) };
            page
        }
        None => Page::new().map(|(page, _fd)| page),
    };
    let Ok(page) = page else {
        return 5;
    };
    let conn = Conn { input, output };
    let mut hello = Vec::new();
    let at = begin_frame(&mut hello, HELLO);
    put_varint(&mut hello, PROTOCOL_VERSION);
    put_varint(&mut hello, u64::from(std::process::id()));
    end_frame(&mut hello, at);
    if conn.write_all(&hello).is_err() {
        return 3;
    }
    serve(&conn, &page, None)
}

/// The loop. `forked`: the get a forked worker was forked for, whose partitions it is sent by
/// number.
pub(crate) fn serve(conn: &Conn, page: &Page, forked: Option<Forked<'_>>) -> i32 {
    let mut held = Held {
        get: u64::MAX,
        values: FxHashMap::default(),
        in_run: FxHashSet::default(),
    };
    // The forked get's run (result slots for its whole plan), made at its first partition.
    let mut run_state: Option<Run<'_>> = None;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        match conn.read_frame(&mut buf) {
            Ok(true) => {}
            Ok(false) => return 0,
            Err(_) => return 3,
        }
        out.clear();
        let body = &buf[1..];
        let handled = match buf[0] {
            RUN => run(body, &mut held, page, &mut out),
            RUN_FORKED => run_forked(body, &mut held, page, forked, &mut run_state, &mut out),
            FETCH => fetch(body, &held, run_state.as_ref(), &mut out),
            RELEASE => release(body, &mut held, run_state.as_ref()),
            CLEAR => {
                held.clear();
                run_state = None;
                Ok(())
            }
            _ => return 4,
        };
        if handled.is_err() {
            return 4; // a malformed request: nothing sensible to answer
        }
        if matches!(buf[0], RUN | RUN_FORKED) {
            // What tasks printed through C stdio is written out now: a worker is killed, not
            // exited, when it is no longer needed, and its buffers would be lost with it.
            // SAFETY: flushes every C stream.
            unsafe { libc::fflush(std::ptr::null_mut()) };
        }
        if !out.is_empty() && conn.write_all(&out).is_err() {
            return 3;
        }
        // A worker may wait idle in the pool for long: it does not keep a large buffer.
        for b in [&mut buf, &mut out] {
            if b.capacity() > KEEP_BUFFER {
                *b = Vec::new();
            }
        }
    }
}

/// Notes each task on the page, stops when asked, and records the trace when wanted.
struct PageObserver<'p> {
    page: &'p Page,
    seq: u32,
    timed: bool,
    times: bool,
    trace: Option<Vec<(u32, bool, u64, u64)>>,
    started: u64,
}

impl Observer for PageObserver<'_> {
    #[inline]
    fn before(&mut self, index: u32) -> bool {
        if self.page.stop_requested(self.seq) {
            return false;
        }
        let now = if self.timed || self.times {
            now_ns()
        } else {
            0
        };
        self.page
            .enter(self.seq, index, if self.timed { now } else { 0 });
        self.started = now;
        true
    }

    #[inline]
    fn after(&mut self, index: u32, ok: bool) {
        if let Some(trace) = &mut self.trace {
            let end = if self.times { now_ns() } else { 0 };
            trace.push((index, ok, self.started, end));
        }
    }
}

fn put_trace(out: &mut Vec<u8>, trace: &[(u32, bool, u64, u64)], times: bool) {
    put_varint(out, trace.len() as u64);
    for &(index, ok, start, end) in trace {
        put_varint(out, u64::from(index));
        out.push(ok as u8);
        if times {
            put_varint(out, start);
            put_varint(out, end);
        }
    }
}

/// RUN: decode the partition, gather its inputs, run it, keep and return its outputs.
fn run(body: &[u8], held: &mut Held, page: &Page, out: &mut Vec<u8>) -> Result<()> {
    let mut r = Reader::new(body);
    let get = r.varint()?;
    let seq = r.varint()? as u32;
    let flags = r.byte()?;
    let retries = r.varint()? as u32;
    if get != held.get {
        held.clear();
        held.get = get;
    }
    let (inputs, outputs) = inputs_outputs(&mut r)?;
    let len = r.varint()?;
    let message = r.take(len)?;
    if r.position() != body.len() {
        return Err(r.error("bytes after the run request".into()));
    }

    let times = flags & FLAG_TIMES != 0;
    let mut observer = PageObserver {
        page,
        seq,
        timed: flags & FLAG_TIMED != 0,
        times,
        trace: (flags & FLAG_TRACE != 0).then(Vec::new),
        started: 0,
    };
    let ran = catch_unwind(AssertUnwindSafe(|| {
        run_partition(
            message,
            body,
            &inputs,
            &outputs,
            held,
            &mut observer,
            flags & FLAG_MEMORY != 0,
            retries,
        )
    }))
    .unwrap_or_else(|panic| {
        (
            Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "a worker process panicked: {}",
                    crate::func::panic_message(&*panic)
                ),
            )),
            Stats::default(),
        )
    });
    page.leave(seq);
    answer(
        out,
        seq,
        ran,
        &outputs,
        Some(held),
        observer.trace.take(),
        times,
    );
    Ok(())
}

/// Writes DONE or FAILED. With `held`, `ran` has every output encoded, and those to hold are
/// kept there; without, it has the returned outputs only (the held ones stay in the run).
fn answer(
    out: &mut Vec<u8>,
    seq: u32,
    ran: (Result<Vec<Vec<u8>>>, Stats),
    outputs: &[(u32, u8)],
    held: Option<&mut Held>,
    trace: Option<Vec<(u32, bool, u64, u64)>>,
    times: bool,
) {
    let trace = trace.unwrap_or_default();
    let at = match ran {
        (Ok(encoded), stats) => {
            let at = begin_frame(out, DONE);
            put_varint(out, u64::from(seq));
            put_varint(out, stats.entries_run);
            put_varint(out, stats.peak_held);
            put_trace(out, &trace, times);
            let returned = outputs.iter().filter(|o| o.1 & OUTPUT_RETURN != 0).count();
            put_varint(out, returned as u64);
            match held {
                Some(held) => {
                    for (bytes, &(p, mode)) in encoded.into_iter().zip(outputs) {
                        if mode & OUTPUT_RETURN != 0 {
                            put_bytes(out, &bytes);
                        }
                        if mode & OUTPUT_HOLD != 0 {
                            held.values.insert(p, bytes);
                        }
                    }
                }
                None => {
                    for bytes in &encoded {
                        put_bytes(out, bytes);
                    }
                }
            }
            at
        }
        (Err(e), stats) => {
            let at = begin_frame(out, FAILED);
            put_varint(out, u64::from(seq));
            wire::put_error(out, &e);
            put_varint(out, stats.entries_run);
            put_trace(out, &trace, times);
            at
        }
    };
    end_frame(out, at);
}

/// Parses a RUN's inputs and outputs (shared by RUN and RUN_FORKED): inputs as (kind,
/// offset into the body or position, length), outputs as (position, mode).
#[allow(clippy::type_complexity)]
fn inputs_outputs(r: &mut Reader<'_>) -> Result<(Vec<(u8, u64, u64)>, Vec<(u32, u8)>)> {
    let ninputs = r.count()?;
    let mut inputs: Vec<(u8, u64, u64)> = Vec::with_capacity(ninputs);
    for _ in 0..ninputs {
        match r.byte()? {
            INPUT_INLINE => {
                let len = r.varint()?;
                let at = r.position() as u64;
                r.take(len)?;
                inputs.push((INPUT_INLINE, at, len));
            }
            INPUT_HELD => inputs.push((INPUT_HELD, r.varint()?, 0)),
            tag => return Err(r.error(format!("unknown input tag {tag}"))),
        }
    }
    let noutputs = r.count()?;
    let mut outputs = Vec::with_capacity(noutputs);
    for _ in 0..noutputs {
        let p = r.varint()? as u32;
        outputs.push((p, r.byte()?));
    }
    Ok((inputs, outputs))
}

/// The encoded value of each input: a slice of the request, or a result held here.
fn input_bytes<'a>(
    body: &'a [u8],
    inputs: &[(u8, u64, u64)],
    held: &'a Held,
) -> Result<Vec<&'a [u8]>> {
    let mut values: Vec<&[u8]> = Vec::with_capacity(inputs.len());
    for &(kind, a, b) in inputs {
        if kind == INPUT_INLINE {
            values.push(&body[a as usize..(a + b) as usize]);
        } else {
            match held.values.get(&(a as u32)) {
                Some(v) => values.push(v),
                None => {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!(
                            "a worker process was asked for a result it does not hold \
                             (position {a})"
                        ),
                    ))
                }
            }
        }
    }
    Ok(values)
}

/// RUN_FORKED: run partition `c` of the get this worker was forked for, straight from its
/// graph and plan.
fn run_forked<'g>(
    body: &[u8],
    held: &mut Held,
    page: &Page,
    forked: Option<Forked<'g>>,
    run_state: &mut Option<Run<'g>>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let mut r = Reader::new(body);
    let get = r.varint()?;
    let seq = r.varint()? as u32;
    let flags = r.byte()?;
    let retries = r.varint()? as u32;
    let c = r.varint()? as usize;
    let (inputs, outputs) = inputs_outputs(&mut r)?;
    if r.position() != body.len() {
        return Err(r.error("bytes after the run request".into()));
    }
    if get != held.get {
        held.clear();
        held.get = get;
        *run_state = None;
    }
    let times = flags & FLAG_TIMES != 0;
    let mut observer = PageObserver {
        page,
        seq,
        timed: flags & FLAG_TIMED != 0,
        times,
        trace: (flags & FLAG_TRACE != 0).then(Vec::new),
        started: 0,
    };
    let ran = match forked.filter(|f| f.get == get) {
        Some(f)
            if c < f.parts.len()
                && f.parts.inputs(c).len() == inputs.len()
                && f.parts.outputs(c).len() == outputs.len() =>
        {
            let run = run_state.get_or_insert_with(|| {
                // One run per get: every partition of a get is sent the same retries.
                let watch = Watch {
                    retries,
                    ..Watch::default()
                };
                Run::new(f.graph, f.plan, watch, None)
            });
            catch_unwind(AssertUnwindSafe(|| {
                run_positions(f, run, c, body, &inputs, &outputs, held, &mut observer)
            }))
            .unwrap_or_else(|panic| {
                (
                    Err(Error::new(
                        ErrorKind::Internal,
                        format!(
                            "a worker process panicked: {}",
                            crate::func::panic_message(&*panic)
                        ),
                    )),
                    Stats::default(),
                )
            })
        }
        _ => (
            Err(Error::new(
                ErrorKind::Internal,
                "a worker process was sent a partition of a get it was not forked for",
            )),
            Stats::default(),
        ),
    };
    page.leave(seq);
    answer(out, seq, ran, &outputs, None, observer.trace.take(), times);
    Ok(())
}

/// Runs partition `c`'s positions in `run`: puts its inputs (those held here are in the run
/// already), runs each position in priority order, keeps the outputs to hold in their slots
/// and encodes those to return, and drops the inputs it was sent.
#[allow(clippy::too_many_arguments)]
fn run_positions(
    f: Forked<'_>,
    run: &Run<'_>,
    c: usize,
    body: &[u8],
    inputs: &[(u8, u64, u64)],
    outputs: &[(u32, u8)],
    held: &mut Held,
    observer: &mut PageObserver<'_>,
) -> (Result<Vec<Vec<u8>>>, Stats) {
    let mut stats = Stats::default();
    let positions = f.parts.inputs(c);
    // Inputs put here for this partition only (sent, or held encoded): dropped at the end.
    let mut sent: Vec<u32> = Vec::with_capacity(inputs.len());
    let result = (|| -> Result<Vec<Vec<u8>>> {
        for (&q, &(kind, a, b)) in positions.iter().zip(inputs) {
            let bytes = if kind == INPUT_INLINE {
                &body[a as usize..(a + b) as usize]
            } else if held.in_run.contains(&q) && run.peek(q).is_some() {
                continue;
            } else if let Some(v) = held.values.get(&q) {
                v
            } else {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!(
                        "a worker process was asked for a result it does not hold (position {q})"
                    ),
                ));
            };
            let v = encode::decode(bytes).map_err(|e| {
                let key = f.graph.key_name(f.plan.order[q as usize]);
                Error::invalid_argument(format!("input '{key}': {}", e.message)).with_key(key)
            })?;
            run.put(q, v);
            sent.push(q);
        }
        let range = f.parts.range(c);
        run.rearm(range.clone(), positions);
        let ninputs = positions.len() as u32;
        let mut scratch = Scratch::default();
        // A worker process's get has no cancel switch: the parent stops it through `observer`.
        reentry::with_frame(f.graph, f.plan, None, |frame| {
            for p in range.clone() {
                let index = ninputs + (p - range.start);
                if !observer.before(index) {
                    run.stop(Error::cancelled());
                    break;
                }
                frame.executing(p);
                let ok = run.execute(p, 0, &mut scratch);
                // A result found in the cache was taken, not run (`resume`).
                stats.entries_run += u64::from(!f.plan.is_found(p));
                observer.after(index, ok);
                if !ok {
                    break;
                }
            }
        });
        run.retire(scratch);
        // What this partition stored is written before the reply: the parent may kill this
        // process as soon as it has every reply.
        if let Some(cache) = f.plan.cache.as_deref() {
            cache.flush();
        }
        if let Some(e) = run.take_failure() {
            return Err(e);
        }
        let mut returned = Vec::new();
        for &(p, mode) in outputs {
            let key = f.graph.key_name(f.plan.order[p as usize]);
            let v = run.peek(p).ok_or_else(|| {
                Error::new(
                    ErrorKind::Internal,
                    format!("the result of '{key}' is missing after its partition ran"),
                )
            })?;
            if mode & OUTPUT_RETURN != 0 {
                returned.push(wire::encode_outputs(&[&key], std::slice::from_ref(v))?.remove(0));
            } else if !encodable(v) {
                // Whether it may cross is decided now, not when another worker asks for it:
                // the same error wherever the partitions reading it run.
                wire::encode_outputs(&[&key], std::slice::from_ref(v))?;
            }
            if mode & OUTPUT_HOLD != 0 {
                held.in_run.insert(p);
            } else {
                drop(run.take(p));
            }
        }
        Ok(returned)
    })();
    for q in sent {
        if !held.in_run.contains(&q) {
            drop(run.take(q));
        }
    }
    if result.is_err() {
        for p in f.parts.range(c) {
            if !held.in_run.contains(&p) {
                drop(run.take(p));
            }
        }
    }
    (result, stats)
}

/// Whether a value can be encoded (holds no pointer value), without encoding it.
fn encodable(v: &Value) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        if v.as_pointer().is_some() {
            return false;
        }
        if let Some(items) = v.as_list() {
            stack.extend(items);
        }
    }
    true
}

/// Decodes and runs one partition; its outputs come back encoded, in the message's order.
#[allow(clippy::too_many_arguments)]
fn run_partition(
    message: &[u8],
    body: &[u8],
    inputs: &[(u8, u64, u64)],
    outputs: &[(u32, u8)],
    held: &Held,
    observer: &mut PageObserver<'_>,
    measure_memory: bool,
    retries: u32,
) -> (Result<Vec<Vec<u8>>>, Stats) {
    // Only plugin functions come this way: a worker not forked for this get shares no code.
    let part = match PartitionMessage::decode(message, None) {
        Ok(part) => part,
        Err(e) => return (Err(e), Stats::default()),
    };
    let values = match input_bytes(body, inputs, held) {
        Ok(v) => v,
        Err(e) => return (Err(e), Stats::default()),
    };
    let keys: Vec<String> = part.output_keys().map(str::to_string).collect();
    if keys.len() != outputs.len() {
        return (
            Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "the run request lists {} outputs, its partition {}",
                    outputs.len(),
                    keys.len()
                ),
            )),
            Stats::default(),
        );
    }
    let (result, stats) = part.run_observed(&values, observer, measure_memory, retries);
    let encoded = result.and_then(|values| {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        wire::encode_outputs(&keys, &values)
    });
    (encoded, stats)
}

/// FETCH: the held results asked for, in order (encoded now if kept in the run).
fn fetch(body: &[u8], held: &Held, run: Option<&Run<'_>>, out: &mut Vec<u8>) -> Result<()> {
    let mut r = Reader::new(body);
    let n = r.count()?;
    let at = begin_frame(out, VALUES);
    put_varint(out, n as u64);
    let mut scratch = Vec::new();
    for _ in 0..n {
        let p = r.varint()? as u32;
        if let Some(v) = held.values.get(&p) {
            out.push(1);
            put_bytes(out, v);
            continue;
        }
        let value = run
            .filter(|_| held.in_run.contains(&p))
            .and_then(|run| run.peek(p));
        scratch.clear();
        match value.map(|v| encode::encode_into(v, &mut scratch)) {
            Some(Ok(())) => {
                out.push(1);
                put_varint(out, scratch.len() as u64 + 1);
                out.push(encode::ENCODING_VERSION);
                out.extend_from_slice(&scratch);
            }
            _ => out.push(0),
        }
    }
    end_frame(out, at);
    Ok(())
}

/// RELEASE: drop these held results.
fn release(body: &[u8], held: &mut Held, run: Option<&Run<'_>>) -> Result<()> {
    let mut r = Reader::new(body);
    let n = r.count()?;
    for _ in 0..n {
        let p = r.varint()? as u32;
        held.values.remove(&p);
        if held.in_run.remove(&p) {
            if let Some(run) = run {
                drop(run.take(p));
            }
        }
    }
    Ok(())
}
