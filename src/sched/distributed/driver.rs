//! The Dask driver: a Python process (`python3 -m daskr_dask.driver ADDRESS`, from
//! bindings/python) that holds a `distributed.Client` connected to the cluster and runs jobs
//! for this process. daskr does not embed Python: it talks to the driver over its stdin and
//! stdout in frames (docs/wire-format.md, "The driver protocol"). A driver is kept for reuse
//! by later gets on the same address (connecting a Client costs ~0.1-0.5 s); it exits when
//! its stdin closes, so when this process exits.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::sched::wire::{self, Reader};

/// Frame tags, driver -> daskr.
pub(crate) const HELLO: u8 = b'H';
pub(crate) const DONE: u8 = b'D';
pub(crate) const RESULTS: u8 = b'R';
pub(crate) const ERROR: u8 = b'E';
/// Frame tags, daskr -> driver.
pub(crate) const JOB: u8 = b'J';
pub(crate) const QUERY: u8 = b'Q';
pub(crate) const CANCEL: u8 = b'C';

/// The protocol version the driver must speak (its hello says which it speaks).
const PROTOCOL_VERSION: u64 = 2;
/// How long to wait for a new driver's hello: starting Python, importing distributed and
/// connecting the Client (whose own timeout, `DASKR_CONNECT_TIMEOUT`, comes first).
const HELLO_TIMEOUT: Duration = Duration::from_secs(180);
/// The end of the driver's stderr kept for error messages.
const STDERR_TAIL: usize = 4096;

type Frame = (u8, Vec<u8>);

pub(crate) struct Driver {
    address: String,
    child: Child,
    /// Our end of the driver's stdin: a socket, so that writing to a driver that died is an
    /// error (`MSG_NOSIGNAL`), not a SIGPIPE that would kill a C program using daskr.
    stdin: UnixStream,
    frames: Receiver<Frame>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    /// Worker threads in the cluster, from the last hello.
    pub threads: usize,
    pub workers: usize,
}

/// Drivers not in use, for reuse by address.
static IDLE: Mutex<Vec<Driver>> = Mutex::new(Vec::new());

/// The Python that runs the driver: `DASKR_PYTHON`, else `python3`.
pub(crate) fn python() -> String {
    std::env::var("DASKR_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

/// A driver connected to `address`: an idle one, or a new one. Asks it for the cluster's
/// current size.
pub(crate) fn checkout(address: &str) -> Result<Driver> {
    let idle = {
        let mut pool = IDLE.lock().unwrap_or_else(|e| e.into_inner());
        pool.iter()
            .position(|d| d.address == address)
            .map(|i| pool.swap_remove(i))
    };
    if let Some(mut d) = idle {
        // A driver whose cluster went away answers with an error, or not at all: start anew.
        if d.send(QUERY, &[]).is_ok() && d.read_hello(Duration::from_secs(30)).is_ok() {
            return Ok(d);
        }
    }
    let mut d = Driver::spawn(address)?;
    // A driver that cannot start is a setup problem (Python, the package, the address), not
    // a worker that died.
    d.read_hello(HELLO_TIMEOUT).map_err(|mut e| {
        if e.kind == ErrorKind::WorkerDied {
            e.kind = ErrorKind::InvalidArgument;
        }
        e
    })?;
    Ok(d)
}

/// Puts a driver that finished its job cleanly back for reuse.
pub(crate) fn checkin(driver: Driver) {
    IDLE.lock().unwrap_or_else(|e| e.into_inner()).push(driver);
}

impl Driver {
    fn spawn(address: &str) -> Result<Driver> {
        let python = python();
        let (stdin, theirs) = UnixStream::pair()
            .map_err(|e| Error::invalid_argument(format!("cannot make a socket pair: {e}")))?;
        let mut child = Command::new(&python)
            .args(["-m", "daskr_dask.driver", address])
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::invalid_argument(format!(
                    "cannot start the Dask driver with '{python}' ({e}): set DASKR_PYTHON to a \
                     Python that has distributed and daskr's package (pip install \
                     bindings/python) installed"
                ))
            })?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let (tx, frames) = mpsc::channel();
        std::thread::Builder::new()
            .name("daskr-dask-driver".into())
            .spawn(move || {
                while let Ok(frame) = read_frame(&mut stdout) {
                    if tx.send(frame).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::invalid_argument(format!("cannot start a thread: {e}")))?;
        // Drained so the driver never blocks on a full pipe; the end is kept for errors.
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let sink = Arc::clone(&tail);
        let _ = std::thread::Builder::new()
            .name("daskr-dask-stderr".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut buf) {
                    let mut t = sink.lock().unwrap_or_else(|e| e.into_inner());
                    t.extend(&buf[..n]);
                    let excess = t.len().saturating_sub(STDERR_TAIL);
                    t.drain(..excess);
                }
            });
        Ok(Driver {
            address: address.to_string(),
            child,
            stdin,
            frames,
            stderr: tail,
            threads: 0,
            workers: 0,
        })
    }

    pub(crate) fn send(&mut self, tag: u8, payload: &[u8]) -> Result<()> {
        let mut head = [0u8; 9];
        head[0] = tag;
        head[1..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        send_all(&self.stdin, &head)
            .and_then(|_| send_all(&self.stdin, payload))
            .map_err(|e| self.died(&format!("writing to it failed ({e})")))
    }

    /// The next frame, or None after `timeout`; an error if the driver exited.
    pub(crate) fn recv(&mut self, timeout: Duration) -> Result<Option<Frame>> {
        match self.frames.recv_timeout(timeout) {
            Ok(frame) => Ok(Some(frame)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(self.died("it exited")),
        }
    }

    fn read_hello(&mut self, timeout: Duration) -> Result<()> {
        let (tag, payload) = self
            .recv(timeout)?
            .ok_or_else(|| self.died(&format!("no answer in {} s", timeout.as_secs())))?;
        match tag {
            HELLO => {
                let mut r = Reader::new(&payload);
                let version = r.varint()?;
                if version != PROTOCOL_VERSION {
                    return Err(Error::invalid_argument(format!(
                        "the Dask driver speaks protocol version {version}, this library \
                         {PROTOCOL_VERSION}: install the daskr_dask package of this checkout"
                    )));
                }
                self.threads = r.varint()? as usize;
                self.workers = r.varint()? as usize;
                Ok(())
            }
            ERROR => Err(wire::read_error(&mut Reader::new(&payload))?),
            other => Err(self.died(&format!("it sent frame {other:#04x} instead of a hello"))),
        }
    }

    /// An error saying the driver failed, with the end of what it wrote on stderr. The
    /// process is killed (a driver that broke protocol is not reused).
    pub(crate) fn died(&mut self, what: &str) -> Error {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Give the stderr thread a moment to collect the last words.
        std::thread::sleep(Duration::from_millis(50));
        let tail = {
            let t = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
            String::from_utf8_lossy(&t.iter().copied().collect::<Vec<u8>>()).into_owned()
        };
        let hint = if tail.contains("No module named 'daskr_dask'")
            || tail.contains("No module named 'distributed'")
        {
            format!(
                " — the Python it runs ('{}', set by DASKR_PYTHON) needs `pip install \
                 distributed bindings/python` (from daskr's checkout)",
                python()
            )
        } else {
            String::new()
        };
        let tail = tail.trim();
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!("; its stderr ends with:\n{tail}")
        };
        Error::new(
            ErrorKind::WorkerDied,
            format!(
                "the Dask driver for {} ({} -m daskr_dask.driver) failed: {what}{hint}{tail}",
                self.address,
                python()
            ),
        )
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Closing stdin makes a healthy driver close its Client and exit; one that does not is
        // killed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes all of `bytes` to the socket without raising SIGPIPE.
fn send_all(socket: &UnixStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: a valid socket and a valid buffer of that length.
        let n = unsafe {
            libc::send(
                socket.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

fn read_frame(r: &mut impl Read) -> std::io::Result<Frame> {
    let mut head = [0u8; 9];
    r.read_exact(&mut head)?;
    let len = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
    let mut payload = Vec::new();
    r.take(len).read_to_end(&mut payload)?;
    if payload.len() as u64 != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok((head[0], payload))
}
