//! Key interning: every key is copied once into one byte arena and named from then on by a
//! dense `u32` id. Only building a graph and resolving requested keys hash a string; a run
//! never does.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

pub struct Keys {
    /// Every key's bytes followed by a NUL, so a key can be handed to C as a C string.
    arena: Vec<u8>,
    /// `starts[i]..starts[i+1]-1` is key i (the extra entry at the end closes the last key).
    starts: Vec<u64>,
    /// Open addressing with linear probing: a slot is 0 (empty) or `tag << 32 | (id + 1)`,
    /// where `tag` is the high half of the key's hash, and the slot a key starts probing at
    /// comes from its tag alone. So the table is one array of 8-byte slots: finding a key's
    /// slot and writing a new one touch the same cache line (at a million keys, the one
    /// cache miss of adding an entry); growing it never reads the arena; and most mismatches
    /// are rejected by the tag before any key bytes are compared. At most half full.
    slots: Vec<u64>,
    hasher: FxBuildHasher,
}

/// The first slot to probe for `tag`, in a table of `1 << bits` slots (Fibonacci hashing:
/// the multiply spreads the tag's bits into the top ones).
#[inline]
fn home(tag: u64, bits: u32) -> usize {
    ((tag | tag << 32).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

const MIN_SLOTS: usize = 16;

impl Default for Keys {
    fn default() -> Keys {
        Keys {
            arena: Vec::new(),
            starts: vec![0],
            slots: vec![0; MIN_SLOTS],
            hasher: FxBuildHasher,
        }
    }
}

/// Where a key's probe ended: at its slot, or at the empty slot it would take.
enum Probe {
    Found(u32),
    Vacant(usize),
}

impl Keys {
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// The key with this id. Panics on an id this table did not hand out.
    pub fn name(&self, id: u32) -> &str {
        let bytes = self.c_name(id);
        // SAFETY: `intern` only stores `&str`s, and `c_name` ends just before the NUL.
        unsafe { std::str::from_utf8_unchecked(&bytes[..bytes.len() - 1]) }
    }

    /// The key's bytes followed by its NUL.
    pub fn c_name(&self, id: u32) -> &[u8] {
        let i = id as usize;
        &self.arena[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    fn tag(&self, key: &str) -> u64 {
        self.hasher.hash_one(key.as_bytes()) >> 32
    }

    fn probe(&self, key: &str, tag: u64) -> Probe {
        let mask = self.slots.len() - 1;
        let mut i = home(tag, self.slots.len().trailing_zeros());
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return Probe::Vacant(i);
            }
            let id = (slot as u32).wrapping_sub(1);
            if slot >> 32 == tag {
                let (a, b) = (self.starts[id as usize], self.starts[id as usize + 1]);
                if &self.arena[a as usize..b as usize - 1] == key.as_bytes() {
                    return Probe::Found(id);
                }
            }
            i = (i + 1) & mask;
        }
    }

    pub fn get(&self, key: &str) -> Option<u32> {
        match self.probe(key, self.tag(key)) {
            Probe::Found(id) => Some(id),
            Probe::Vacant(_) => None,
        }
    }

    /// The id of `key`, adding it if it is new. `None` when ids would overflow `u32`.
    pub fn intern(&mut self, key: &str) -> Option<u32> {
        self.intern_tagged(key, self.tag(key))
    }

    /// `intern` for a key whose tag is `tag`.
    fn intern_tagged(&mut self, key: &str, tag: u64) -> Option<u32> {
        let at = match self.probe(key, tag) {
            Probe::Found(id) => return Some(id),
            Probe::Vacant(at) => at,
        };
        let id = u32::try_from(self.len())
            .ok()
            .filter(|&id| id < u32::MAX - 2)?;
        self.arena.extend_from_slice(key.as_bytes());
        self.arena.push(0);
        self.starts.push(self.arena.len() as u64);
        self.slots[at] = tag << 32 | (u64::from(id) + 1);
        if self.len() * 2 > self.slots.len() {
            self.grow();
        }
        Some(id)
    }

    /// Doubles the table, placing every slot again by its tag (no key bytes are read).
    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let (mask, bits) = (self.slots.len() - 1, self.slots.len().trailing_zeros());
        for slot in old.into_iter().filter(|&s| s != 0) {
            let mut i = home(slot >> 32, bits);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }

    /// Bytes held, for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.starts.capacity() * 8 + self.slots.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_dense() {
        let mut k = Keys::default();
        assert_eq!(k.intern("a"), Some(0));
        assert_eq!(k.intern("bb"), Some(1));
        assert_eq!(k.intern("a"), Some(0));
        assert_eq!(k.get("bb"), Some(1));
        assert_eq!(k.get("c"), None);
        assert_eq!(k.name(1), "bb");
        assert_eq!(k.c_name(1), b"bb\0");
        for i in 0..10_000 {
            let id = k.intern(&format!("x-{i}")).unwrap();
            assert_eq!(k.name(id), format!("x-{i}"));
        }
        assert_eq!(k.len(), 10_002);
        assert_eq!(k.get("x-9999"), Some(10_001));
        assert!(k.slots.len() >= 2 * k.len());
    }

    #[test]
    fn keys_with_the_same_tag_stay_apart() {
        // Force every key onto one tag: lookups then fall back to comparing bytes.
        let mut k = Keys::default();
        let ids: Vec<u32> = (0..100)
            .map(|i| k.intern(&format!("k{i}")).unwrap())
            .collect();
        let tag = 7;
        let mut same = Keys::default();
        for i in 0..100 {
            assert_eq!(same.intern_tagged(&format!("k{i}"), tag), Some(i)); // each one new
        }
        for i in 0..100 {
            assert!(matches!(same.probe(&format!("k{i}"), tag), Probe::Found(id) if id == i));
            assert_eq!(k.get(&format!("k{i}")), Some(ids[i as usize]));
        }
        assert!(matches!(same.probe("k100", tag), Probe::Vacant(_)));
    }
}
