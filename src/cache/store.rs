//! The cache directory on disk: one file per entry, named by the task's hash, written whole
//! to a temporary file and renamed into place — so a reader (this process or another) sees
//! an entry complete or not at all — and checked on every read.
//!
//! ```text
//! DIR/daskr-cache-v1/ab/abcdef…(64 hex digits)   one entry
//! DIR/daskr-cache-v1/tmp/…                         entries being written
//!
//! entry = magic "DASKRC\0\x01" (8 bytes)
//!         key       the task's hash (32 bytes): a file copied under another name is refused
//!         length    u64 LE, the payload's size
//!         checksum  BLAKE3 of the payload (32 bytes)
//!         payload   the result in the binary value encoding (docs/value-encoding.md)
//! ```
//!
//! No lock anywhere: writers never modify a file in place (rename replaces it whole, and two
//! writers of one key write the same bytes), readers hold what they opened even if it is
//! renamed over or removed meanwhile, and a damaged entry (a disk error, a crash before the
//! data reached the disk) fails its checksum and counts as absent. Least-recently-used order
//! is the files' modification times: a read sets it to now.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::encode;
use crate::value::Value;

/// A task's content hash.
pub type Hash = [u8; 32];

const MAGIC: &[u8; 8] = b"DASKRC\0\x01";
const HEADER: usize = 8 + 32 + 8 + 32;
/// The folder under the cache directory that this format owns (a new format takes a new one).
pub const LAYOUT: &str = "daskr-cache-v1";
/// A temporary file this old belongs to a writer that died: eviction removes it.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// What a cache directory holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub entries: u64,
    pub bytes: u64,
}

pub(crate) struct Store {
    root: PathBuf,
    tmp_serial: AtomicU64,
}

fn hex(h: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in h {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

impl Store {
    /// Opens (creating if need be) the cache under `dir`.
    pub fn open(dir: &Path) -> io::Result<Store> {
        let root = dir.join(LAYOUT);
        fs::create_dir_all(root.join("tmp"))?;
        Ok(Store {
            root,
            tmp_serial: AtomicU64::new(0),
        })
    }

    fn path(&self, h: &Hash) -> PathBuf {
        let name = hex(h);
        self.root.join(&name[..2]).join(name)
    }

    /// The entry for `h`, checked, and its size on disk; None if absent or damaged (a damaged
    /// entry is left for the recomputed result to replace). A hit becomes the most recently
    /// used entry.
    pub fn read(&self, h: &Hash) -> Option<(Value, u64)> {
        let mut file = File::open(self.path(h)).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        let value = check(h, &bytes)?;
        // Best effort: a read-only cache still serves hits.
        let _ = file.set_modified(SystemTime::now());
        Some((value, bytes.len() as u64))
    }

    /// Stores `payload` (an encoded value) under `h`; returns the bytes written.
    pub fn write(&self, h: &Hash, payload: &[u8]) -> io::Result<u64> {
        let mut entry = Vec::with_capacity(HEADER + payload.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(h);
        entry.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        entry.extend_from_slice(blake3::hash(payload).as_bytes());
        entry.extend_from_slice(payload);
        // Unique among this process's writers (serial) and other processes (pid).
        let tmp = self.root.join("tmp").join(format!(
            "{}.{}.{}",
            &hex(h)[..16],
            std::process::id(),
            self.tmp_serial.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = File::create_new(&tmp)?;
            f.write_all(&entry)?;
            drop(f);
            let dest = self.path(h);
            match fs::rename(&tmp, &dest) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // The first entry of its folder (or `clear` ran meanwhile).
                    fs::create_dir_all(dest.parent().expect("an entry has a folder"))?;
                    fs::rename(&tmp, &dest)
                }
                other => other,
            }
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map(|()| entry.len() as u64)
    }

    /// Every entry's modification time, size and path.
    fn entries(&self) -> Vec<(SystemTime, u64, PathBuf)> {
        let mut out = Vec::new();
        let Ok(dirs) = fs::read_dir(&self.root) else {
            return out;
        };
        for d in dirs.flatten() {
            let name = d.file_name();
            if name == "tmp" || name.len() != 2 {
                continue;
            }
            let Ok(files) = fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Ok(m) = f.metadata() {
                    if m.is_file() {
                        let t = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        out.push((t, m.len(), f.path()));
                    }
                }
            }
        }
        out
    }

    pub fn usage(&self) -> Usage {
        let all = self.entries();
        Usage {
            entries: all.len() as u64,
            bytes: all.iter().map(|e| e.1).sum(),
        }
    }

    /// Removes least recently used entries until the rest hold at most `max_bytes`, and
    /// temporary files left by writers that died. Returns what was removed.
    pub fn evict(&self, max_bytes: u64) -> Usage {
        self.remove_stale_tmp();
        let mut all = self.entries();
        let mut total: u64 = all.iter().map(|e| e.1).sum();
        let mut removed = Usage::default();
        if total <= max_bytes {
            return removed;
        }
        all.sort_by_key(|e| e.0);
        for (_, size, path) in all {
            if total <= max_bytes {
                break;
            }
            // Another process may have removed (or replaced) it meanwhile: either way its
            // bytes are gone from our count.
            if fs::remove_file(&path).is_ok() {
                removed.entries += 1;
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

    /// Removes every entry (and the temporary files: a writer still running just fails to
    /// rename its entry into place, and does without it).
    pub fn clear(&self) -> io::Result<Usage> {
        let usage = self.usage();
        match fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::create_dir_all(self.root.join("tmp"))?;
        Ok(usage)
    }
}

/// The value an entry's bytes hold, if they are a whole, undamaged entry for `h`.
fn check(h: &Hash, bytes: &[u8]) -> Option<Value> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC || &bytes[8..40] != h {
        return None;
    }
    let len = u64::from_le_bytes(bytes[40..48].try_into().ok()?);
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len || blake3::hash(payload).as_bytes() != &bytes[48..80] {
        return None;
    }
    encode::decode(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("daskr-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn damaged_entries_read_as_absent() {
        let dir = temp_dir("damaged");
        let store = Store::open(&dir).unwrap();
        let h = [7u8; 32];
        let payload = encode::encode(&Value::str("hello")).unwrap();
        store.write(&h, &payload).unwrap();
        assert_eq!(store.read(&h).unwrap().0.as_str(), Some("hello"));
        let path = store.path(&h);
        let good = fs::read(&path).unwrap();
        // Truncated, a flipped payload bit, a flipped checksum bit, another key's file.
        let mut cases = vec![good[..good.len() - 1].to_vec(), good[..10].to_vec()];
        for at in [good.len() - 1, 50, 20, 3] {
            let mut b = good.clone();
            b[at] ^= 1;
            cases.push(b);
        }
        for bad in cases {
            fs::write(&path, &bad).unwrap();
            assert!(store.read(&h).is_none());
        }
        fs::write(&path, &good).unwrap();
        let other = store.path(&[8u8; 32]);
        fs::create_dir_all(other.parent().unwrap()).unwrap();
        fs::copy(&path, &other).unwrap();
        assert!(store.read(&[8u8; 32]).is_none());
        assert_eq!(store.usage().entries, 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn eviction_removes_least_recently_used_first() {
        let dir = temp_dir("evict");
        let store = Store::open(&dir).unwrap();
        let payload = encode::encode(&Value::Int(1)).unwrap();
        let size = store.write(&[1; 32], &payload).unwrap();
        store.write(&[2; 32], &payload).unwrap();
        store.write(&[3; 32], &payload).unwrap();
        let old = SystemTime::now() - Duration::from_secs(100);
        for (i, k) in [[1u8; 32], [2; 32], [3; 32]].iter().enumerate() {
            let f = File::options().write(true).open(store.path(k)).unwrap();
            f.set_modified(old + Duration::from_secs(i as u64)).unwrap();
        }
        // Reading 1 makes it the most recent: 2 goes first, then 3.
        assert!(store.read(&[1; 32]).is_some());
        assert_eq!(store.evict(2 * size).entries, 1);
        assert!(store.read(&[2; 32]).is_none());
        assert!(store.read(&[3; 32]).is_some());
        assert!(store.read(&[1; 32]).is_some());
        assert_eq!(store.clear().unwrap().entries, 2);
        assert_eq!(store.usage(), Usage::default());
        fs::remove_dir_all(&dir).unwrap();
    }
}
