//! The cache directory on disk: packs of entries. A get that stores results writes them into
//! segment files — each written whole to a temporary name and renamed into place, so a reader
//! (this process or another) sees a segment complete or not at all — and a get that reads
//! opens every segment once and searches its index (on disk for a few lookups, then in
//! memory), so finding a task's result is not a file-system call per task.
//!
//! ```text
//! DIR/daskr-cache-v2/seg/<get>-<pid>-<n>.pack   one segment (immutable once renamed here)
//! DIR/daskr-cache-v2/tmp/…                       segments being written
//!
//! segment = magic "DASKRP\0\x02" (8 bytes) | count u64 LE
//!           index: count × (key 16 | offset u32 | length u32 | checksum 16), sorted by key
//!           data:  the payloads (the binary value encoding, docs/value-encoding.md)
//! key      = the first 16 bytes of the task's hash
//! checksum = the first 16 bytes of BLAKE3(the task's whole hash, then the payload)
//! ```
//!
//! No lock anywhere: no file is ever modified once it has its name (only renamed into place
//! or removed whole); readers keep the segments they indexed open, so a segment removed
//! meanwhile (eviction, compaction, `clear` by another process) is still read whole; and a
//! damaged entry — a disk error, a crash before the data reached the disk, an index pointing
//! wrong — fails its checksum, which binds the payload to the whole hash, and counts as absent.
//! Least-recently-used order is by segment: the segments' modification times, set to now when
//! a get reads from one.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::encode;
use crate::value::Value;

/// A task's content hash.
pub type Hash = [u8; 32];

const MAGIC: &[u8; 8] = b"DASKRP\0\x02";
const HEADER: usize = 16;
const INDEX_ENTRY: usize = 40;
/// The folder under the cache directory that this format owns (a new format takes a new one).
pub const LAYOUT: &str = "daskr-cache-v2";
/// Folders of earlier formats: ignored, and removed by `clear`.
pub const OLD_LAYOUTS: &[&str] = &["daskr-cache-v1"];
const SEGMENTS: &str = "seg";
const SUFFIX: &str = ".pack";
/// More segments than this are compacted (`Store::compact`).
const COMPACT_ABOVE: usize = 64;
/// A compaction merges at most this many bytes.
const COMPACT_BYTES: u64 = 256 << 20;
/// A temporary file this old belongs to a writer that died: eviction removes it.
const STALE_TMP: Duration = Duration::from_secs(3600);
/// A segment's data is addressed by u32 offsets: a writer starts a new segment before this.
pub(crate) const MAX_SEGMENT_DATA: usize = u32::MAX as usize;

/// What a cache directory holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Entries stored (an entry stored twice, by two processes at once, counts twice).
    pub entries: u64,
    /// Bytes of the segment files.
    pub bytes: u64,
}

pub(crate) struct Store {
    root: PathBuf,
}

/// One entry a writer has ready: its hash, and its payload's place in the writer's data.
pub(crate) struct Pending {
    pub hash: Hash,
    pub offset: u32,
    pub len: u32,
    pub check: [u8; 16],
}

/// The checksum of an entry: binds the payload to the whole hash (the index keeps 16 bytes).
pub(crate) fn checksum(h: &Hash, payload: &[u8]) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(h);
    hasher.update(payload);
    let mut out = [0; 16];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    out
}

pub(crate) fn key_of(h: &Hash) -> u128 {
    u128::from_be_bytes(h[..16].try_into().expect("16 bytes"))
}

impl Store {
    /// Opens (creating if need be) the cache under `dir`.
    pub fn open(dir: &Path) -> io::Result<Store> {
        let root = dir.join(LAYOUT);
        fs::create_dir_all(root.join("tmp"))?;
        fs::create_dir_all(root.join(SEGMENTS))?;
        Ok(Store { root })
    }

    /// A name no other writer uses: `tag` (the get's), this process, a counter. The process
    /// is its id and a random number drawn once: Dask workers on several machines write into
    /// one shared directory for one get, and their process ids may be equal (a fork keeps
    /// the number but has an id of its own). The counter is the process's, not the handle's:
    /// a worker opens the directory once per partition it runs, all under the same tag.
    pub fn segment_name(&self, tag: &str) -> String {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        static NONCE: OnceLock<u32> = OnceLock::new();
        let nonce = NONCE.get_or_init(|| {
            // std seeds each RandomState from the system's randomness.
            use std::hash::{BuildHasher, Hasher};
            let h = std::collections::hash_map::RandomState::new().build_hasher();
            h.finish() as u32
        });
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        format!("{tag}-{}.{nonce:08x}-{n}{SUFFIX}", std::process::id())
    }

    /// Writes one segment holding `entries` (payloads in `data`) under `name`; returns its
    /// size. Entries are sorted by key here, and a hash given twice is kept once.
    pub fn write_segment(
        &self,
        name: &str,
        entries: &mut Vec<Pending>,
        data: &[u8],
    ) -> io::Result<u64> {
        entries.sort_unstable_by_key(|e| e.hash);
        entries.dedup_by(|a, b| a.hash == b.hash);
        let mut head = Vec::with_capacity(HEADER + entries.len() * INDEX_ENTRY);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for e in entries.iter() {
            head.extend_from_slice(&e.hash[..16]);
            head.extend_from_slice(&e.offset.to_le_bytes());
            head.extend_from_slice(&e.len.to_le_bytes());
            head.extend_from_slice(&e.check);
        }
        let tmp = self.root.join("tmp").join(name);
        let written = (|| {
            let mut f = File::create_new(&tmp)?;
            f.write_all(&head)?;
            f.write_all(data)?;
            drop(f);
            fs::rename(&tmp, self.root.join(SEGMENTS).join(name))
        })();
        if written.is_err() {
            // `clear` may have removed tmp/ meanwhile: the segment is simply not kept.
            let _ = fs::remove_file(&tmp);
        }
        written.map(|()| (head.len() + data.len()) as u64)
    }

    /// Every segment's path, size and modification time.
    fn segments(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut out = Vec::new();
        let Ok(files) = fs::read_dir(self.root.join(SEGMENTS)) else {
            return out;
        };
        for f in files.flatten() {
            if !f.file_name().to_string_lossy().ends_with(SUFFIX) {
                continue;
            }
            if let Ok(m) = f.metadata() {
                let t = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((f.path(), m.len(), t));
            }
        }
        out
    }

    /// The bytes of the segments whose names start with `tag` (a get's own segments, written
    /// by its worker processes).
    pub fn bytes_tagged(&self, tag: &str) -> u64 {
        self.segments()
            .iter()
            .filter(|s| {
                s.0.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{tag}-")))
            })
            .map(|s| s.1)
            .sum()
    }

    /// Merges the segments whose names start with `tag` if there are more than `above`.
    pub fn merge_tagged(&self, tag: &str, above: usize) {
        let prefix = format!("{tag}-");
        let names: Vec<String> = self
            .segments()
            .iter()
            .filter_map(|s| s.0.file_name()?.to_str().map(str::to_owned))
            .filter(|n| n.starts_with(&prefix))
            .collect();
        if names.len() > above {
            self.merge(&names, &self.segment_name(tag));
        }
    }

    /// Opens every segment, most recently used first: what one get looks its tasks up in.
    pub fn index(&self) -> Index {
        let mut segs = Vec::new();
        let mut all = self.segments();
        all.sort_by_key(|s| std::cmp::Reverse(s.2));
        for (path, _, _) in all {
            if let Some(s) = Segment::open(path) {
                segs.push(s);
            }
        }
        Index { segs }
    }

    /// The distinct entries (two processes storing one result at once each keep a copy) and
    /// the segments' bytes. Reads every index.
    pub fn usage(&self) -> Usage {
        let mut keys = Vec::new();
        let mut bytes = 0;
        for (path, size, _) in self.segments() {
            bytes += size;
            if let Some(seg) = Segment::load(path) {
                keys.extend((0..seg.count).map(|i| seg.key(i)));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        Usage {
            entries: keys.len() as u64,
            bytes,
        }
    }

    /// Removes least recently used segments until the rest hold at most `max_bytes`, and
    /// temporary files left by writers that died. Returns what was removed.
    pub fn evict(&self, max_bytes: u64) -> Usage {
        self.remove_stale_tmp();
        let mut all = self.segments();
        let mut total: u64 = all.iter().map(|e| e.1).sum();
        let mut removed = Usage::default();
        if total <= max_bytes {
            return removed;
        }
        all.sort_by_key(|e| e.2);
        for (path, size, _) in all {
            if total <= max_bytes {
                break;
            }
            let entries = Segment::load(path.clone()).map_or(0, |s| s.count as u64);
            // Another process may have removed it meanwhile: either way its bytes are gone.
            if fs::remove_file(&path).is_ok() {
                removed.entries += entries;
                removed.bytes += size;
            }
            total -= size;
        }
        removed
    }

    fn remove_stale_tmp(&self) {
        let Ok(files) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        let now = SystemTime::now();
        for f in files.flatten() {
            let old = f
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_TMP);
            if old {
                let _ = fs::remove_file(f.path());
            }
        }
    }

    /// Removes every entry, and the folders of earlier formats (a writer still running just
    /// fails to rename its segment into place, and does without it).
    pub fn clear(&self) -> io::Result<Usage> {
        let usage = self.usage();
        let dir = self.root.parent().expect("the layout folder has a parent");
        for layout in OLD_LAYOUTS.iter().chain([&LAYOUT]) {
            match fs::remove_dir_all(dir.join(layout)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::create_dir_all(self.root.join("tmp"))?;
        fs::create_dir_all(self.root.join(SEGMENTS))?;
        Ok(usage)
    }

    /// Keeps the number of segments bounded (every lookup that misses visits each one): when
    /// there are more than `COMPACT_ABOVE`, merges the smaller half (up to `COMPACT_BYTES`)
    /// into one, which keeps the most recent modification time of those it replaces (their
    /// place in least-recently-used order). Two processes compacting at once may each merge
    /// the same segments: the entries are then kept twice, never lost; readers keep the
    /// segments they opened.
    pub fn compact(&self) {
        let mut all = self.segments();
        if all.len() <= COMPACT_ABOVE {
            return;
        }
        all.sort_by_key(|s| s.1);
        let mut names = Vec::new();
        let (mut bytes, mut newest) = (0, SystemTime::UNIX_EPOCH);
        for (path, size, time) in &all[..all.len() / 2] {
            if bytes + size > COMPACT_BYTES {
                break;
            }
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            names.push(name.to_owned());
            bytes += size;
            newest = newest.max(*time);
        }
        let into = self.segment_name("merged");
        if self.merge(&names, &into).is_some() {
            if let Ok(f) = File::options()
                .write(true)
                .open(self.root.join(SEGMENTS).join(&into))
            {
                let _ = f.set_modified(newest);
            }
        }
    }

    /// Merges the segments named `names` into one, then removes them: a get leaves one
    /// segment however often it flushed, and `compact` bounds their number. Best effort: on any failure the
    /// segments stay as they are. Returns the merged segment's size.
    pub fn merge(&self, names: &[String], into: &str) -> Option<u64> {
        if names.len() < 2 {
            return None;
        }
        let dir = self.root.join(SEGMENTS);
        let mut entries = Vec::new();
        let mut data = Vec::new();
        for name in names {
            let seg = Segment::load(dir.join(name))?;
            let bytes = seg.read_range(0, seg.data_len)?;
            if data.len() + bytes.len() > MAX_SEGMENT_DATA {
                return None;
            }
            let base = data.len() as u32;
            for i in 0..seg.count {
                let e = seg.entry(i);
                let mut hash = [0u8; 32];
                hash[..16].copy_from_slice(&seg.index[e..e + 16]);
                entries.push(Pending {
                    hash,
                    offset: base + u32_at(&seg.index, e + 16),
                    len: u32_at(&seg.index, e + 20),
                    check: seg.index[e + 24..e + 40].try_into().expect("16 bytes"),
                });
            }
            data.extend_from_slice(&bytes);
        }
        let size = self.write_segment(into, &mut entries, &data).ok()?;
        for name in names {
            let _ = fs::remove_file(dir.join(name));
        }
        Some(size)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Where an entry is: its segment (in an `Index`), place and checksum.
#[derive(Clone, Copy)]
pub(crate) struct Loc {
    seg: u32,
    offset: u32,
    len: u32,
    check: [u8; 16],
}

/// One segment, opened; its index read into memory once it is looked up often.
struct Segment {
    /// Kept open: the segment is read whole even if it is removed meanwhile.
    file: File,
    count: usize,
    /// Empty until loaded (`load_index`).
    index: Vec<u8>,
    data_start: u64,
    data_len: u64,
    /// For many lookups: the first index position of each value of the keys' top `bits`
    /// (built after a few lookups; before, a binary search).
    dir: Vec<u32>,
    bits: u32,
    lookups: u32,
    /// The index could not be read: the segment holds nothing.
    broken: bool,
    touched: bool,
}

/// The first lookups in a segment search its index on disk, a read per step (a rerun that
/// changed nothing looks up only the requested results: it does not read a million index
/// entries to find one); after that many, the index is read whole.
const SPARSE_LOOKUPS: u32 = 16;

impl Segment {
    /// Opens a segment and reads its header.
    fn open(path: PathBuf) -> Option<Segment> {
        let mut file = File::open(&path).ok()?;
        let size = file.metadata().ok()?.len();
        let mut head = [0u8; HEADER];
        file.read_exact(&mut head).ok()?;
        if &head[..8] != MAGIC {
            return None;
        }
        let count = u64::from_le_bytes(head[8..16].try_into().ok()?);
        let index_len = count.checked_mul(INDEX_ENTRY as u64)?;
        let data_start = (HEADER as u64).checked_add(index_len)?;
        if data_start > size {
            return None;
        }
        Some(Segment {
            file,
            count: count as usize,
            index: Vec::new(),
            data_start,
            data_len: size - data_start,
            dir: Vec::new(),
            bits: 0,
            lookups: 0,
            broken: false,
            touched: false,
        })
    }

    /// Opens a segment and reads its whole index.
    fn load(path: PathBuf) -> Option<Segment> {
        let mut seg = Segment::open(path)?;
        seg.load_index().then_some(seg)
    }

    fn load_index(&mut self) -> bool {
        if !self.index.is_empty() || self.count == 0 {
            return true;
        }
        let mut index = vec![0; self.count * INDEX_ENTRY];
        if self.file.read_exact_at(&mut index, HEADER as u64).is_err() {
            self.broken = true;
            return false;
        }
        self.index = index;
        true
    }

    #[inline]
    fn entry(&self, i: usize) -> usize {
        i * INDEX_ENTRY
    }

    #[inline]
    fn key(&self, i: usize) -> u128 {
        let e = self.entry(i);
        u128::from_be_bytes(self.index[e..e + 16].try_into().expect("16 bytes"))
    }

    fn build_dir(&mut self) {
        let bits = (usize::BITS - self.count.leading_zeros()).min(24);
        let mut dir = vec![0u32; (1usize << bits) + 1];
        let mut i = 0usize;
        for (b, slot) in dir.iter_mut().enumerate() {
            while i < self.count && ((self.key(i) >> (128 - bits)) as usize) < b {
                i += 1;
            }
            *slot = i as u32;
        }
        self.dir = dir;
        self.bits = bits;
    }

    /// The index entry with `key`, if any.
    fn find(&mut self, key: u128) -> Option<[u8; INDEX_ENTRY]> {
        if self.broken || self.count == 0 {
            return None;
        }
        self.lookups += 1;
        if self.index.is_empty() {
            if self.lookups <= SPARSE_LOOKUPS {
                return self.find_on_disk(key);
            }
            if !self.load_index() {
                return None;
            }
        }
        if self.dir.is_empty() && self.lookups > 64 && self.count > 256 {
            self.build_dir();
        }
        let (mut lo, mut hi) = if self.dir.is_empty() || self.bits == 0 {
            (0, self.count)
        } else {
            let b = (key >> (128 - self.bits)) as usize;
            (self.dir[b] as usize, self.dir[b + 1] as usize)
        };
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let e = self.entry(mid);
                    return self.index[e..e + INDEX_ENTRY].try_into().ok();
                }
            }
        }
        None
    }

    /// `find` by reading the index entries a binary search visits.
    fn find_on_disk(&mut self, key: u128) -> Option<[u8; INDEX_ENTRY]> {
        let (mut lo, mut hi) = (0, self.count);
        let mut e = [0u8; INDEX_ENTRY];
        while lo < hi {
            let mid = (lo + hi) / 2;
            let at = HEADER as u64 + (mid * INDEX_ENTRY) as u64;
            if self.file.read_exact_at(&mut e, at).is_err() {
                self.broken = true;
                return None;
            }
            match u128::from_be_bytes(e[..16].try_into().expect("16 bytes")).cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(e),
            }
        }
        None
    }

    fn read_range(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        if offset.checked_add(len)? > self.data_len {
            return None;
        }
        let mut buf = vec![0; len as usize];
        self.file
            .read_exact_at(&mut buf, self.data_start + offset)
            .ok()?;
        Some(buf)
    }
}

/// The segments one get looks its tasks up in (opened once; an index is read on disk for the
/// first few lookups, then whole).
pub(crate) struct Index {
    segs: Vec<Segment>,
}

/// Requests whose byte ranges are this close are read with one call.
const COALESCE_GAP: u64 = 64 * 1024;

impl Index {
    /// Where the entry for `h` is, if some segment holds it: the most recently used one that
    /// does, after `after`'s segment if given (a copy of the entry there was found damaged).
    pub fn find(&mut self, h: &Hash, after: Option<Loc>) -> Option<Loc> {
        let key = key_of(h);
        let from = after.map_or(0, |l| l.seg as usize + 1);
        for (s, seg) in self.segs.iter_mut().enumerate().skip(from) {
            if let Some(e) = seg.find(key) {
                return Some(Loc {
                    seg: s as u32,
                    offset: u32_at(&e, 16),
                    len: u32_at(&e, 20),
                    check: e[24..40].try_into().expect("16 bytes"),
                });
            }
        }
        None
    }

    /// `find` for many keys at once, sorted (with a position each): each found one's place
    /// goes to `out[position]`. Reads every segment's index whole and walks it beside the
    /// keys — for a million lookups, sequential reads instead of random ones.
    pub fn find_sorted(&mut self, keys: &[(u128, u32)], out: &mut [Option<Loc>]) {
        for (s, seg) in self.segs.iter_mut().enumerate() {
            if seg.broken || seg.count == 0 || !seg.load_index() {
                continue;
            }
            let mut i = 0;
            for &(key, q) in keys {
                if out[q as usize].is_some() {
                    continue;
                }
                while i < seg.count && seg.key(i) < key {
                    i += 1;
                }
                if i == seg.count {
                    break;
                }
                if seg.key(i) == key {
                    let e = &seg.index[seg.entry(i)..seg.entry(i) + INDEX_ENTRY];
                    out[q as usize] = Some(Loc {
                        seg: s as u32,
                        offset: u32_at(e, 16),
                        len: u32_at(e, 20),
                        check: e[24..40].try_into().expect("16 bytes"),
                    });
                }
            }
        }
    }

    /// Reads and checks the entries at `locs` (with their hashes): each one's value and its
    /// size, or None if it is damaged. Reads nearby entries of a segment with one call, and
    /// marks the segments read from as recently used.
    pub fn read(&mut self, locs: &[(Hash, Loc)]) -> Vec<Option<(Value, u64)>> {
        let mut out: Vec<Option<(Value, u64)>> = (0..locs.len()).map(|_| None).collect();
        let mut order: Vec<usize> = (0..locs.len()).collect();
        order.sort_unstable_by_key(|&i| (locs[i].1.seg, locs[i].1.offset));
        let mut i = 0;
        while i < order.len() {
            // A run of requests of one segment close enough to read at once.
            let first = locs[order[i]].1;
            let start = u64::from(first.offset);
            let mut end = start + u64::from(first.len);
            let mut j = i + 1;
            while j < order.len() {
                let l = locs[order[j]].1;
                if l.seg != first.seg || u64::from(l.offset) > end + COALESCE_GAP {
                    break;
                }
                end = end.max(u64::from(l.offset) + u64::from(l.len));
                j += 1;
            }
            let seg = &mut self.segs[first.seg as usize];
            let check = |k: usize, payload: &[u8]| {
                let (h, l) = &locs[k];
                (checksum(h, payload) == l.check)
                    .then(|| encode::decode(payload).ok())
                    .flatten()
                    .map(|v| (v, u64::from(l.len) + INDEX_ENTRY as u64))
            };
            if let Some(bytes) = seg.read_range(start, end - start) {
                for &k in &order[i..j] {
                    let at = (u64::from(locs[k].1.offset) - start) as usize;
                    out[k] = check(k, &bytes[at..at + locs[k].1.len as usize]);
                }
            } else {
                // A damaged index entry (a length or offset past the end) fails the range:
                // the others are read one by one.
                for &k in &order[i..j] {
                    let l = locs[k].1;
                    if let Some(bytes) = seg.read_range(l.offset.into(), l.len.into()) {
                        out[k] = check(k, &bytes);
                    }
                }
            }
            seg.touched |= order[i..j].iter().any(|&k| out[k].is_some());
            i = j;
        }
        for seg in &self.segs {
            if seg.touched {
                // Best effort: a read-only cache still serves hits.
                let _ = seg.file.set_modified(SystemTime::now());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("daskr-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    /// Writes one segment of `(hash, value)` entries; returns its name.
    fn write(store: &Store, tag: &str, values: &[(Hash, Value)]) -> String {
        let mut entries = Vec::new();
        let mut data = Vec::new();
        for (h, v) in values {
            let payload = encode::encode(v).unwrap();
            entries.push(Pending {
                hash: *h,
                offset: data.len() as u32,
                len: payload.len() as u32,
                check: checksum(h, &payload),
            });
            data.extend_from_slice(&payload);
        }
        let name = store.segment_name(tag);
        store.write_segment(&name, &mut entries, &data).unwrap();
        name
    }

    fn read(store: &Store, h: &Hash) -> Option<Value> {
        let mut index = store.index();
        let loc = index.find(h, None)?;
        index.read(&[(*h, loc)]).pop().unwrap().map(|r| r.0)
    }

    #[test]
    fn damaged_entries_read_as_absent() {
        let dir = temp_dir("damaged");
        let store = Store::open(&dir).unwrap();
        let h = [7u8; 32];
        let name = write(&store, "t", &[(h, Value::str("hello"))]);
        assert_eq!(read(&store, &h).unwrap().as_str(), Some("hello"));
        let path = store.root.join(SEGMENTS).join(name);
        let good = fs::read(&path).unwrap();
        // Truncated, a flipped payload bit, a flipped checksum bit, offset or length bit.
        let mut cases = vec![good[..good.len() - 1].to_vec(), good[..10].to_vec()];
        for at in [good.len() - 1, HEADER + 39, HEADER + 17, HEADER + 21, 3] {
            let mut b = good.clone();
            b[at] ^= 1;
            cases.push(b);
        }
        for bad in cases {
            fs::write(&path, &bad).unwrap();
            assert!(read(&store, &h).is_none());
        }
        // Another hash with the same first 16 bytes (the index's key) is refused by the
        // checksum, which covers the whole hash.
        fs::write(&path, &good).unwrap();
        let mut other = h;
        other[31] ^= 1;
        assert!(read(&store, &other).is_none());
        assert!(read(&store, &h).is_some());
        assert_eq!(store.usage().entries, 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn many_entries_are_found_with_and_without_the_directory() {
        let dir = temp_dir("many");
        let store = Store::open(&dir).unwrap();
        let values: Vec<(Hash, Value)> = (0..5000i64)
            .map(|i| (*blake3::hash(&i.to_le_bytes()).as_bytes(), Value::Int(i)))
            .collect();
        write(&store, "a", &values[..10]);
        write(&store, "b", &values[10..]);
        let mut index = store.index();
        let locs: Vec<(Hash, Loc)> = values
            .iter()
            .map(|(h, _)| (*h, index.find(h, None).expect("stored")))
            .collect();
        let read = index.read(&locs);
        for (i, r) in read.into_iter().enumerate() {
            assert_eq!(r.unwrap().0.as_int(), Some(i as i64));
        }
        assert!(index.find(&[0u8; 32], None).is_none());
        assert_eq!(store.usage().entries, 5000);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn merging_keeps_every_entry_in_one_segment() {
        let dir = temp_dir("merge");
        let store = Store::open(&dir).unwrap();
        let a = write(
            &store,
            "g",
            &[([1; 32], Value::Int(1)), ([2; 32], Value::Int(2))],
        );
        let b = write(&store, "g", &[([3; 32], Value::str("three"))]);
        store.merge(&[a, b], &store.segment_name("g"));
        assert_eq!(store.segments().len(), 1);
        assert_eq!(read(&store, &[1; 32]).unwrap().as_int(), Some(1));
        assert_eq!(read(&store, &[3; 32]).unwrap().as_str(), Some("three"));
        assert_eq!(store.usage().entries, 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn compaction_bounds_the_number_of_segments() {
        let dir = temp_dir("compact");
        let store = Store::open(&dir).unwrap();
        for k in 0..70u8 {
            write(&store, "c", &[([k; 32], Value::Int(k.into()))]);
        }
        store.compact();
        assert_eq!(store.segments().len(), 70 - 35 + 1);
        assert_eq!(store.usage().entries, 70);
        for k in 0..70u8 {
            assert_eq!(read(&store, &[k; 32]).unwrap().as_int(), Some(k.into()));
        }
        store.compact();
        assert_eq!(store.segments().len(), 36);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn eviction_removes_least_recently_used_segments_first() {
        let dir = temp_dir("evict");
        let store = Store::open(&dir).unwrap();
        let names: Vec<String> = (1..=3u8)
            .map(|k| write(&store, "e", &[([k; 32], Value::Int(k.into()))]))
            .collect();
        let size = store.segments()[0].1;
        let old = SystemTime::now() - Duration::from_secs(100);
        for (i, n) in names.iter().enumerate() {
            let f = File::options()
                .write(true)
                .open(store.root.join(SEGMENTS).join(n))
                .unwrap();
            f.set_modified(old + Duration::from_secs(i as u64)).unwrap();
        }
        // Reading 1 makes its segment the most recent: 2 goes first, then 3.
        assert!(read(&store, &[1; 32]).is_some());
        assert_eq!(store.evict(2 * size).entries, 1);
        assert!(read(&store, &[2; 32]).is_none());
        assert!(read(&store, &[3; 32]).is_some());
        assert!(read(&store, &[1; 32]).is_some());
        fs::create_dir_all(dir.join(OLD_LAYOUTS[0]).join("ab")).unwrap();
        assert_eq!(store.clear().unwrap().entries, 2);
        assert_eq!(store.usage(), Usage::default());
        assert!(!dir.join(OLD_LAYOUTS[0]).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
