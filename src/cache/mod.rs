//! The result cache: task results kept on disk under a hash of what determines them, so a
//! rerun of a graph computes only what changed (or what a failed run did not finish).
//!
//! - `hash`: the key of an entry (its function's identity and its arguments' hashes).
//! - `store`: the directory: segments written whole, opened once per get and searched by
//!   their sorted indexes, checked reads, eviction, compaction.
//! - `writer`: one get's stores, gathered into segments (written every second, when large, and
//!   at the end of the get, whatever its outcome).
//! - `Cache` (here): the handle a get is given (`Options::cache`), and `Attached`, what one
//!   get's run reads of it: per position, whether its result was found (and then the value,
//!   read while planning) or is to be stored under which hash. `resume` decides which.
//!
//! docs/cache.md describes the format, the hashing rule and what two processes sharing a
//! directory can count on.

pub(crate) mod hash;
pub mod store;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use writer::Writer;

use crate::encode;
use crate::error::{Error, ErrorKind, Result};
use crate::value::Value;
pub use store::Usage;
use store::{Hash, Store};

/// A cache directory, opened. Share one between gets (and threads) as you like; other
/// processes may use the same directory at the same time.
pub struct Cache(Arc<Shared>);

pub(crate) struct Shared {
    dir: PathBuf,
    pub(crate) store: Arc<Store>,
    /// 0: no bound.
    max_bytes: AtomicU64,
    /// 0: no limit.
    max_entry_bytes: AtomicU64,
}

fn io_error(dir: &Path, what: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("cache directory '{}': {what}: {e}", dir.display()),
    )
}

impl Cache {
    /// Opens the cache in `dir`, creating it if need be.
    pub fn open(dir: impl AsRef<Path>) -> Result<Cache> {
        let dir = dir.as_ref();
        if dir.as_os_str().is_empty() {
            return Err(Error::invalid_argument("the cache directory is empty"));
        }
        let store = Store::open(dir).map_err(|e| io_error(dir, "cannot create it", e))?;
        Ok(Cache(Arc::new(Shared {
            // Absolute: partition messages name it to processes with other working folders.
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
            store: Arc::new(store),
            max_bytes: AtomicU64::new(0),
            max_entry_bytes: AtomicU64::new(0),
        })))
    }

    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// Bounds the directory's size: after a get that stored something, least recently used
    /// entries are removed until the rest fit. 0 (the default): no bound.
    pub fn set_max_bytes(&self, bytes: u64) {
        self.0.max_bytes.store(bytes, Ordering::Relaxed);
    }

    pub fn max_bytes(&self) -> u64 {
        self.0.max_bytes.load(Ordering::Relaxed)
    }

    /// Results whose encoding is larger than this are not stored. 0 (the default): no limit.
    pub fn set_max_entry_bytes(&self, bytes: u64) {
        self.0.max_entry_bytes.store(bytes, Ordering::Relaxed);
    }

    pub fn max_entry_bytes(&self) -> u64 {
        self.0.max_entry_bytes.load(Ordering::Relaxed)
    }

    /// How many entries the directory holds, and their bytes (reads every segment's header).
    pub fn usage(&self) -> Usage {
        self.0.store.usage()
    }

    /// Removes every entry; returns what was removed.
    pub fn clear(&self) -> Result<Usage> {
        self.0
            .store
            .clear()
            .map_err(|e| io_error(&self.0.dir, "cannot clear it", e))
    }

    /// Applies the size bound now (gets do it after storing); returns what was removed.
    pub fn evict(&self) -> Usage {
        match self.max_bytes() {
            0 => Usage::default(),
            max => self.0.store.evict(max),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.0
    }
}

/// What a position of a get's run does with the cache.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Computed, not stored (a literal, an alias, an entry without a hash).
    Compute,
    /// Computed, then stored under its hash.
    Store,
    /// Found: its value was read while planning, and is taken when its turn comes.
    Found,
}

/// One get's use of the cache, by position of its (resumed) plan.
pub(crate) struct Attached {
    shared: Arc<Shared>,
    uses: Vec<Use>,
    /// Per position: for one to store, its index in `hashes`; for one found, in `found`.
    slot: Vec<u32>,
    hashes: Vec<Hash>,
    found: Mutex<Vec<Option<Value>>>,
    /// Entries the request needed that neither run nor are read: everything downstream of
    /// them was found (counted as done by progress).
    pub skipped: u64,
    pub hits: u64,
    pub bytes_read: u64,
    misses: AtomicU64,
    writer: Arc<Writer>,
}

/// What a get did with the cache (in `Stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Tasks whose result was read from the cache instead of computed.
    pub hits: u64,
    /// Tasks that could be cached, were not found, and ran.
    pub misses: u64,
    /// Needed tasks that neither ran nor were read: all their consumers were found.
    pub skipped: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl Attached {
    /// `uses`: what each position does; `hashes`, the hashes of the positions to store, and
    /// `found`, the found positions' values, both in the order of their positions.
    pub(crate) fn new(
        shared: Arc<Shared>,
        uses: Vec<Use>,
        hashes: Vec<Hash>,
        found: Vec<Value>,
        skipped: u64,
        bytes_read: u64,
    ) -> Attached {
        let writer = Writer::new(shared.store.clone());
        Attached::with_writer(shared, writer, uses, hashes, found, skipped, bytes_read)
    }

    /// The part of a get made elsewhere that one partition stores (on a Dask worker): `uses`
    /// of the partition's own plan, Store or Compute only, written under the get's `tag`.
    pub(crate) fn for_partition(
        cache: &Cache,
        tag: String,
        uses: Vec<Use>,
        hashes: Vec<Hash>,
    ) -> Attached {
        let shared = cache.shared().clone();
        let writer = Writer::with_tag(shared.store.clone(), tag);
        Attached::with_writer(shared, writer, uses, hashes, Vec::new(), 0, 0)
    }

    fn with_writer(
        shared: Arc<Shared>,
        writer: Writer,
        uses: Vec<Use>,
        hashes: Vec<Hash>,
        found: Vec<Value>,
        skipped: u64,
        bytes_read: u64,
    ) -> Attached {
        let hits = uses.iter().filter(|&&u| u == Use::Found).count() as u64;
        let mut counts = [0u32; 2];
        let slot = uses
            .iter()
            .map(|u| {
                let k = match u {
                    Use::Store => 0,
                    Use::Found => 1,
                    Use::Compute => return u32::MAX,
                };
                counts[k] += 1;
                counts[k] - 1
            })
            .collect();
        let (stores, founds) = (counts[0], counts[1]);
        debug_assert_eq!(
            (stores as usize, founds as usize),
            (hashes.len(), found.len())
        );
        Attached {
            slot,
            writer: Arc::new(writer),
            shared,
            uses,
            hashes,
            found: Mutex::new(found.into_iter().map(Some).collect()),
            skipped,
            hits,
            bytes_read,
            misses: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn use_of(&self, p: u32) -> Use {
        self.uses[p as usize]
    }

    /// Position `p`'s value, found while planning (once: it is handed over).
    pub fn take_found(&self, p: u32) -> Value {
        self.found.lock().unwrap_or_else(|e| e.into_inner())[self.slot[p as usize] as usize]
            .take()
            .expect("a found result is taken once")
    }

    /// A copy of position `p`'s found value, for a partition message (which may be sent
    /// more than once: a worker that died has its partition sent again).
    pub fn found_copy(&self, p: u32) -> Option<Value> {
        if self.uses[p as usize] != Use::Found {
            return None;
        }
        let found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found[self.slot[p as usize] as usize].clone()
    }

    /// The hash position `p` is to be stored under, if it is to be stored.
    pub fn hash_to_store(&self, p: u32) -> Option<&Hash> {
        (self.uses[p as usize] == Use::Store).then(|| &self.hashes[self.slot[p as usize] as usize])
    }

    /// What a partition message carries for its stores to be made where it runs: the cache
    /// directory, this get's tag (the segments' names) and the entry size limit.
    pub fn elsewhere(&self) -> (&Path, &str, u64) {
        (
            &self.shared.dir,
            self.writer.tag(),
            self.shared.max_entry_bytes.load(Ordering::Relaxed),
        )
    }

    /// Stores position `p`'s freshly computed result — unless it is a pointer (which cannot
    /// leave the process) or larger than the limit. A failure to write is not the get's
    /// failure: the result is simply not kept.
    pub fn store(&self, p: u32, v: &Value) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        let Ok(payload) = encode::encode(v) else {
            return;
        };
        let limit = self.shared.max_entry_bytes.load(Ordering::Relaxed);
        if limit != 0 && payload.len() as u64 > limit {
            return;
        }
        let h = &self.hashes[self.slot[p as usize] as usize];
        Writer::add(&self.writer, h, &payload);
    }

    /// Writes what this process stored so far (a worker process, after a partition ran: the
    /// process may end without dropping its plan).
    pub fn flush(&self) {
        self.writer.flush_due(true);
    }

    /// `finish` for a run whose positions ran in other processes: the positions to store
    /// count as misses if the run succeeded; the bytes written are the sizes of the segments
    /// the workers wrote under this get's name.
    pub fn finish_elsewhere(&self, succeeded: bool) -> CacheStats {
        let stores = self.uses.iter().filter(|&&u| u == Use::Store).count() as u64;
        let written = if stores > 0 {
            // Each worker wrote a segment per partition: one is enough.
            let store = &self.shared.store;
            store.merge_tagged(self.writer.tag(), writer::MERGE_ABOVE);
            store.bytes_tagged(self.writer.tag())
        } else {
            0
        };
        self.evict_if(written);
        CacheStats {
            hits: self.hits,
            misses: if succeeded { stores } else { 0 },
            skipped: self.skipped,
            bytes_read: self.bytes_read,
            bytes_written: written,
        }
    }

    /// The figures, once everything stored is written, and the size bound applied if
    /// anything was.
    pub fn finish(&self) -> CacheStats {
        let written = self.writer.close();
        self.evict_if(written);
        CacheStats {
            hits: self.hits,
            misses: self.misses.load(Ordering::Relaxed),
            skipped: self.skipped,
            bytes_read: self.bytes_read,
            bytes_written: written,
        }
    }

    /// After a get that wrote: the size bound, and the number of segments kept bounded.
    fn evict_if(&self, written: u64) {
        if written == 0 {
            return;
        }
        let max = self.shared.max_bytes.load(Ordering::Relaxed);
        if max > 0 {
            self.shared.store.evict(max);
        }
        self.shared.store.compact();
    }
}

impl Drop for Attached {
    /// A get that ends without `finish` (a scheduler's error path) still writes what ran.
    fn drop(&mut self) {
        self.writer.close();
    }
}
