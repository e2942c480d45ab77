//! What the scheduler and its worker processes say to each other over a socket pair: length-
//! framed binary messages (docs/wire-format.md, "Worker protocol"). A frame is an 8-byte
//! little-endian length, then that many bytes: a tag byte and the payload. Numbers inside are
//! varints, byte strings a varint length and the bytes (`wire::put_*`, `wire::Reader`).
//!
//! Every request but RELEASE and CLEAR gets exactly one reply, in order, so the scheduler
//! matches replies to requests by keeping a queue per worker.

use std::io;
use std::os::fd::RawFd;

/// Bumped whenever a message changes meaning; a worker executable says its version first.
pub(crate) const PROTOCOL_VERSION: u64 = 2;

// Scheduler -> worker.
/// Run a partition: get id, run number, flags, retries, inputs (inline or held), outputs (position
/// and what to do with it), the partition message.
pub(crate) const RUN: u8 = 0x01;
/// Send these held results (positions) back.
pub(crate) const FETCH: u8 = 0x02;
/// Drop these held results. No reply.
pub(crate) const RELEASE: u8 = 0x03;
/// The get is over: drop every held result. No reply.
pub(crate) const CLEAR: u8 = 0x04;
/// Run a partition of the get this worker was forked for, by number: get id, run number,
/// flags, retries, partition, inputs, outputs (as RUN, without a message).
pub(crate) const RUN_FORKED: u8 = 0x05;

// Worker -> scheduler.
/// A worker started with exec is ready: protocol version, pid.
pub(crate) const HELLO: u8 = 0x80;
/// A run finished: run number, entries run, peak held, trace, the returned outputs.
pub(crate) const DONE: u8 = 0x81;
/// A run failed: run number, the error, entries run, trace.
pub(crate) const FAILED: u8 = 0x82;
/// The results a FETCH asked for, in its order (each: 1 + bytes, or 0 if not held).
pub(crate) const VALUES: u8 = 0x83;

// RUN flags.
/// Report each task run (key-table index, ok), for callbacks.
pub(crate) const FLAG_TRACE: u8 = 1;
/// With the trace, each task's start and end (CLOCK_MONOTONIC ns), for a profile.
pub(crate) const FLAG_TIMES: u8 = 2;
/// Note each task's start time in the page (a task timeout is set).
pub(crate) const FLAG_TIMED: u8 = 4;
/// Count the most results held at once.
pub(crate) const FLAG_MEMORY: u8 = 8;

// RUN inputs.
pub(crate) const INPUT_INLINE: u8 = 0;
pub(crate) const INPUT_HELD: u8 = 1;

// RUN outputs: what to do with each (bits).
/// Keep it, for later partitions on this worker or a FETCH.
pub(crate) const OUTPUT_HOLD: u8 = 1;
/// Send it back with DONE (the caller asked for it).
pub(crate) const OUTPUT_RETURN: u8 = 2;

/// Appends a frame header for a body of `len` bytes (tag included).
pub(crate) fn put_header(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u64).to_le_bytes());
}

/// Starts a frame with `tag` in `out`; returns where it starts, for `end_frame`.
pub(crate) fn begin_frame(out: &mut Vec<u8>, tag: u8) -> usize {
    let at = out.len();
    put_header(out, 0);
    out.push(tag);
    at
}

/// Writes the length of the frame begun at `at`.
pub(crate) fn end_frame(out: &mut [u8], at: usize) {
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

/// The largest frame either side accepts (a guard against a corrupt length, not a limit
/// anyone should meet: 64 GiB).
pub(crate) const MAX_FRAME: u64 = 64 << 30;

/// Blocking frame I/O, for the worker side: frames come in on `input` and go out on
/// `output` (one socket for both, or a worker's stdin and stdout).
pub(crate) struct Conn {
    pub input: RawFd,
    pub output: RawFd,
}

impl Conn {
    /// Reads one frame into `buf` (tag then payload); Ok(false) on a clean end of stream.
    pub fn read_frame(&self, buf: &mut Vec<u8>) -> io::Result<bool> {
        let mut header = [0u8; 8];
        // SAFETY: the header array is 8 writable bytes.
        if !unsafe { self.read_into(header.as_mut_ptr(), 8, true)? } {
            return Ok(false);
        }
        let len = u64::from_le_bytes(header);
        if len == 0 || len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad frame length {len}"),
            ));
        }
        // Read into the spare capacity: no need to zero what is about to be overwritten.
        // A length no allocation can hold (a corrupt or hostile header) is an error, not an
        // abort of the process.
        buf.clear();
        buf.try_reserve(len as usize).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("frame length {len}: no memory for it"),
            )
        })?;
        // SAFETY: `len` bytes of capacity were reserved; the length is set only once all of
        // them were written.
        unsafe {
            self.read_into(buf.as_mut_ptr(), len as usize, false)?;
            buf.set_len(len as usize);
        }
        Ok(true)
    }

    /// Fills `len` bytes at `to`; Ok(false) if the stream ended before the first byte and
    /// `eof_ok`. Safety: `to` must be valid for `len` bytes of writes.
    unsafe fn read_into(&self, to: *mut u8, len: usize, eof_ok: bool) -> io::Result<bool> {
        let mut at = 0;
        while at < len {
            let n = libc::read(self.input, to.add(at).cast(), len - at);
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                if at == 0 && eof_ok {
                    return Ok(false);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            at += n as usize;
        }
        Ok(true)
    }

    /// Writes all of `bytes` (whole frames).
    pub fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = send(self.output, bytes);
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            bytes = &bytes[n as usize..];
        }
        Ok(())
    }
}

/// `send` without SIGPIPE: a peer that went away is an EPIPE error, never a signal that would
/// kill this process.
pub(crate) fn send(fd: RawFd, bytes: &[u8]) -> isize {
    // SAFETY: reads `bytes`.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
    if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOTSOCK) {
        // Not a socket (`daskr worker` on a pipe, for instance): a plain write.
        // SAFETY: as above.
        return unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    }
    n
}
