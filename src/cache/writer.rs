//! One get's stores, gathered into segments: a stored result is appended to a buffer in
//! memory, and the buffer is written as one segment file (`store::write_segment`) when its
//! oldest entry is `FLUSH_AFTER` old, when it is large, and when the get ends — succeeded,
//! failed or cancelled. A run killed outright loses at most its last second of results; any
//! other end keeps everything that finished, so the rerun resumes from there.
//!
//! The time is kept by a thread of the get's (started at its first store, stopped at its
//! end), so a result is written within a second even when the next one takes an hour. A
//! worker process forked for the get has no such thread: it writes when a store finds the
//! buffer due, and after each partition it ran (`Attached::flush`).

use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::store::{checksum, Hash, Pending, Store, MAX_SEGMENT_DATA};

/// How long a stored result may wait in memory before it is written.
const FLUSH_AFTER: Duration = Duration::from_secs(1);
/// A buffer this large is written at once.
const FLUSH_BYTES: usize = 64 << 20;
/// A get that wrote more segments than this merges them into one at its end.
pub(crate) const MERGE_ABOVE: usize = 4;

#[derive(Default)]
struct Buffer {
    entries: Vec<Pending>,
    data: Vec<u8>,
    /// When the oldest entry was added (None: empty).
    since: Option<Instant>,
    closing: bool,
}

pub(crate) struct Writer {
    store: Arc<Store>,
    /// This get's name: its segments' names start with it.
    tag: String,
    /// The process that made the writer (a forked worker process is another).
    creator: u32,
    buffer: Mutex<Buffer>,
    wake: Condvar,
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// Segments this process wrote for the get.
    written: Mutex<Vec<String>>,
    bytes: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writer {
    /// A writer for a new get (its tag made here).
    pub fn new(store: Arc<Store>) -> Writer {
        static GETS: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tag = format!(
            "{nanos:x}.{}.{}",
            std::process::id(),
            GETS.fetch_add(1, Ordering::Relaxed)
        );
        Writer::with_tag(store, tag)
    }

    /// A writer for part of a get made elsewhere (a partition on a Dask worker), writing
    /// under that get's `tag`.
    pub fn with_tag(store: Arc<Store>, tag: String) -> Writer {
        Writer {
            store,
            tag,
            creator: std::process::id(),
            buffer: Mutex::new(Buffer::default()),
            wake: Condvar::new(),
            flusher: Mutex::new(None),
            written: Mutex::new(Vec::new()),
            bytes: AtomicU64::new(0),
        }
    }

    /// The prefix of this get's segment names (with the separator that ends it).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Adds one entry (`payload`: an encoded value).
    pub fn add(this: &Arc<Writer>, h: &Hash, payload: &[u8]) {
        let Ok(len) = u32::try_from(payload.len()) else {
            return; // larger than a segment addresses: not kept
        };
        let check = checksum(h, payload);
        let here = std::process::id() == this.creator;
        let mut b = lock(&this.buffer);
        if b.closing {
            return;
        }
        if b.data.len() + payload.len() > MAX_SEGMENT_DATA {
            let full = mem::take(&mut *b);
            b.closing = full.closing;
            drop(b);
            this.write(full);
            b = lock(&this.buffer);
        }
        let offset = b.data.len() as u32;
        b.entries.push(Pending {
            hash: *h,
            offset,
            len,
            check,
        });
        b.data.extend_from_slice(payload);
        let first = b.since.is_none();
        if first {
            b.since = Some(Instant::now());
        }
        let due = b.data.len() >= FLUSH_BYTES
            || (!here && b.since.is_some_and(|t| t.elapsed() >= FLUSH_AFTER));
        if due {
            let full = mem::take(&mut *b);
            b.closing = full.closing;
            drop(b);
            this.write(full);
            return;
        }
        drop(b);
        if first && here {
            this.wake.notify_all();
            Writer::start_flusher(this);
        }
    }

    fn start_flusher(this: &Arc<Writer>) {
        let mut f = lock(&this.flusher);
        if f.is_some() {
            return;
        }
        let w = this.clone();
        // Without a thread (the system refuses one), results are written at the get's end.
        *f = std::thread::Builder::new()
            .name("daskr-cache".into())
            .spawn(move || w.flush_loop())
            .ok();
    }

    /// The flusher thread: writes the buffer once its oldest entry is `FLUSH_AFTER` old.
    fn flush_loop(&self) {
        let mut b = lock(&self.buffer);
        loop {
            if b.closing {
                return;
            }
            match b.since {
                None => b = self.wake.wait(b).unwrap_or_else(|e| e.into_inner()),
                Some(t) if t.elapsed() < FLUSH_AFTER => {
                    let left = FLUSH_AFTER - t.elapsed();
                    b = self
                        .wake
                        .wait_timeout(b, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                Some(_) => {
                    let full = mem::take(&mut *b);
                    drop(b);
                    self.write(full);
                    b = lock(&self.buffer);
                }
            }
        }
    }

    /// Writes the buffer if it is due (or if `always`, and it holds anything).
    pub fn flush_due(&self, always: bool) {
        let mut b = lock(&self.buffer);
        let due = b
            .since
            .is_some_and(|t| always || t.elapsed() >= FLUSH_AFTER);
        if due {
            let full = mem::take(&mut *b);
            b.closing = full.closing;
            drop(b);
            self.write(full);
        }
    }

    fn write(&self, mut full: Buffer) {
        if full.entries.is_empty() {
            return;
        }
        let store = &self.store;
        let name = store.segment_name(&self.tag);
        if let Ok(n) = store.write_segment(&name, &mut full.entries, &full.data) {
            self.bytes.fetch_add(n, Ordering::Relaxed);
            lock(&self.written).push(name);
        }
    }

    /// Ends the get's writing: stops the flusher, writes what is left, merges this process's
    /// segments if there are many. Returns the bytes written. Idempotent.
    pub fn close(&self) -> u64 {
        let rest = {
            let mut b = lock(&self.buffer);
            if b.closing {
                return self.bytes.load(Ordering::Relaxed);
            }
            b.closing = true;
            let rest = mem::take(&mut b.entries);
            (rest, mem::take(&mut b.data))
        };
        self.wake.notify_all();
        if std::process::id() == self.creator {
            if let Some(t) = lock(&self.flusher).take() {
                let _ = t.join();
            }
        }
        self.write(Buffer {
            entries: rest.0,
            data: rest.1,
            ..Buffer::default()
        });
        let names = mem::take(&mut *lock(&self.written));
        if names.len() > MERGE_ABOVE {
            let store = &self.store;
            let into = store.segment_name(&self.tag);
            if let Some(size) = store.merge(&names, &into) {
                // The merged segment replaces the ones counted.
                self.bytes.store(size, Ordering::Relaxed);
            }
        }
        self.bytes.load(Ordering::Relaxed)
    }
}
