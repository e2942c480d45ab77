//! Key interning: every key is copied once into one byte arena and named from then on by a
//! dense `u32` id. Only building a graph and resolving requested keys hash a string; a run
//! never does.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

/// An entry's key, looked up only when asked for: a running task's (`Call::key`), which most
/// tasks never read — reading it for every task was a cache miss a task when a run goes
/// through the entries in another order than they were added.
#[derive(Clone, Copy)]
pub(crate) struct KeyOf<'a> {
    pub keys: &'a Keys,
    pub id: u32,
}

impl<'a> KeyOf<'a> {
    /// The key followed by its NUL; None if the entry is anonymous.
    pub(crate) fn c_name(self) -> Option<&'a [u8]> {
        self.keys.c_name_if_named(self.id)
    }
}

pub struct Keys {
    /// Every key's bytes followed by a NUL, so a key can be handed to C as a C string.
    arena: Vec<u8>,
    /// `starts[i]..starts[i+1]-1` is key i (the extra entry at the end closes the last key).
    starts: Vec<u64>,
    /// The settled keys (ids below `settled`): open addressing with linear probing, a slot is
    /// 0 (empty) or `tag << 32 | (id + 1)`, where `tag` is the high half of the key's hash and
    /// the slot a key starts probing at comes from its tag alone. So the table is one array of
    /// 8-byte slots; growing it never reads the arena; most mismatches are rejected by the tag
    /// before any key bytes are compared. At most half full.
    slots: Vec<u64>,
    /// The keys added since the last settle (ids from `settled` on), in a table of the same
    /// layout small enough to stay in cache; moved into `slots` in one pass when it fills.
    recent: Vec<u64>,
    /// A blocked Bloom filter over the settled keys: one 64-bit word per key, three bits set.
    /// A new key is almost always absent from `slots`, and this says so from cache.
    filter: Vec<u64>,
    /// Ids below this were settled (or are anonymous).
    settled: u32,
    /// How many keys `recent` holds.
    recent_keys: usize,
    /// How many ids have a key (the others are anonymous entries: see `anonymous`).
    named: usize,
    hasher: FxBuildHasher,
}

// Why two tables and a filter: at a million keys the table is 16 MiB, and probing it for a
// new key was one cache (and often TLB) miss per added entry — measured as a third of the
// cost of building a chain. Now an add probes `recent` (in cache) and reads one word of the
// filter (1 byte per key); `slots` is read only on a filter hit (a key defined or referred
// to long ago, or a false positive, ~1–3%). Settling writes a whole batch into `slots` with
// its misses overlapped (prefetched ahead), instead of one dependent miss per add.

/// The first slot to probe for `tag`, in a table of `1 << bits` slots (Fibonacci hashing:
/// the multiply spreads the tag's bits into the top ones).
#[inline]
fn home(tag: u64, bits: u32) -> usize {
    ((tag | tag << 32).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

/// The filter word for `tag` in front of a table of `1 << bits` slots, and the three bits it
/// sets there. The word is the key's home slot scaled down (one word per `1 <<
/// SLOTS_PER_WORD_SHIFT` slots), so a walk of the table in slot order marks the filter front to
/// back; the bits come from another mix of the tag.
#[inline]
fn filter_bits(tag: u64, bits: u32) -> (usize, u64) {
    let word = home(tag, bits) >> SLOTS_PER_WORD_SHIFT;
    let h = (tag ^ tag << 29).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let mask = 1u64 << (h & 63) | 1u64 << (h >> 6 & 63) | 1u64 << (h >> 12 & 63);
    (word, mask)
}

const MIN_SLOTS: usize = 16;
/// `recent` holds at most half this many keys before they are settled (256 KiB of slots).
const RECENT_SLOTS: usize = 1 << 15;
/// Table slots per filter word, as a shift: one 64-bit word per 16 slots, so (the table being
/// a quarter to half full) 8 to 16 bits per settled key: ~1 MiB at a million keys.
const SLOTS_PER_WORD_SHIFT: u32 = 4;

impl Default for Keys {
    fn default() -> Keys {
        Keys {
            arena: Vec::new(),
            starts: vec![0],
            slots: Vec::new(),
            recent: vec![0; MIN_SLOTS],
            filter: Vec::new(),
            settled: 0,
            recent_keys: 0,
            named: 0,
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

    /// A new id with no key: an anonymous entry, reached by its handle only. It costs one
    /// word here (its empty range in `starts`: a key's range always holds at least its NUL),
    /// no bytes, no hashing, no table slot.
    pub fn anonymous(&mut self) -> Option<u32> {
        let id = u32::try_from(self.len())
            .ok()
            .filter(|&id| id < u32::MAX - 2)?;
        self.starts.push(self.arena.len() as u64);
        Some(id)
    }

    /// Whether `id` was handed out by `anonymous`.
    pub fn is_anonymous(&self, id: u32) -> bool {
        let i = id as usize;
        // Without a key at all, nothing to read (a run asks for every task it calls).
        self.named == 0 || self.starts[i] == self.starts[i + 1]
    }

    /// The key of `id` followed by its NUL, None if `id` is anonymous.
    pub fn c_name_if_named(&self, id: u32) -> Option<&[u8]> {
        (!self.is_anonymous(id)).then(|| self.c_name(id))
    }

    /// The key with this id (empty for an anonymous id). Panics on an id this table did not
    /// hand out.
    pub fn name(&self, id: u32) -> &str {
        let bytes = self.c_name(id);
        // SAFETY: `intern` only stores `&str`s, and `c_name` ends just before the NUL.
        unsafe { std::str::from_utf8_unchecked(&bytes[..bytes.len().saturating_sub(1)]) }
    }

    /// The key's bytes followed by its NUL (empty for an anonymous id).
    pub fn c_name(&self, id: u32) -> &[u8] {
        let i = id as usize;
        &self.arena[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    fn tag(&self, key: &str) -> u64 {
        self.hasher.hash_one(key.as_bytes()) >> 32
    }

    fn is(&self, id: u32, key: &str) -> bool {
        let (a, b) = (self.starts[id as usize], self.starts[id as usize + 1]);
        &self.arena[a as usize..b as usize - 1] == key.as_bytes()
    }

    /// Probes `table` (one of the two) for `key`.
    fn probe_in(&self, table: &[u64], key: &str, tag: u64) -> Probe {
        let mask = table.len() - 1;
        let mut i = home(tag, table.len().trailing_zeros());
        loop {
            let slot = table[i];
            if slot == 0 {
                return Probe::Vacant(i);
            }
            let id = (slot as u32).wrapping_sub(1);
            if slot >> 32 == tag && self.is(id, key) {
                return Probe::Found(id);
            }
            i = (i + 1) & mask;
        }
    }

    /// `key`'s id if it is settled: the filter first, the table only if the filter may hold it.
    fn settled_id(&self, key: &str, tag: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let (word, mask) = filter_bits(tag, self.slots.len().trailing_zeros());
        if self.filter[word] & mask != mask {
            return None;
        }
        match self.probe_in(&self.slots, key, tag) {
            Probe::Found(id) => Some(id),
            Probe::Vacant(_) => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<u32> {
        let tag = self.tag(key);
        match self.probe_in(&self.recent, key, tag) {
            Probe::Found(id) => Some(id),
            Probe::Vacant(_) => self.settled_id(key, tag),
        }
    }

    /// The id of `key`, adding it if it is new. `None` when ids would overflow `u32`.
    pub fn intern(&mut self, key: &str) -> Option<u32> {
        self.intern_tagged(key, self.tag(key))
    }

    /// `intern` for a key whose tag is `tag`.
    fn intern_tagged(&mut self, key: &str, tag: u64) -> Option<u32> {
        let at = match self.probe_in(&self.recent, key, tag) {
            Probe::Found(id) => return Some(id),
            Probe::Vacant(at) => at,
        };
        if let Some(id) = self.settled_id(key, tag) {
            return Some(id);
        }
        let id = u32::try_from(self.len())
            .ok()
            .filter(|&id| id < u32::MAX - 2)?;
        self.arena.extend_from_slice(key.as_bytes());
        self.arena.push(0);
        self.starts.push(self.arena.len() as u64);
        self.recent[at] = tag << 32 | (u64::from(id) + 1);
        self.recent_keys += 1;
        self.named += 1;
        if self.recent_keys * 2 > self.recent.len() {
            if self.recent.len() < RECENT_SLOTS {
                let doubled = vec![0; self.recent.len() * 2];
                let old = std::mem::replace(&mut self.recent, doubled);
                place_in_order(&mut self.recent, &old, None);
            } else {
                self.settle();
            }
        }
        Some(id)
    }

    /// Moves every recent key into the main table and the filter, growing both first.
    fn settle(&mut self) {
        let total = self.named;
        if total * 2 > self.slots.len() {
            let mut len = self.slots.len().max(MIN_SLOTS);
            while total * 2 > len {
                len *= 2;
            }
            let old = std::mem::replace(&mut self.slots, vec![0; len]);
            self.filter = vec![0; len >> SLOTS_PER_WORD_SHIFT];
            place_in_order(&mut self.slots, &old, Some(&mut self.filter));
        }
        place_all(&mut self.slots, &self.recent, &mut self.filter);
        self.recent.fill(0);
        self.recent_keys = 0;
        self.settled = self.len() as u32;
    }

    /// Bytes held, for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.starts.capacity() * 8
            + (self.slots.capacity() + self.recent.capacity() + self.filter.capacity()) * 8
    }
}

/// Places every occupied slot of `from` into `table` (which has room), by its tag alone (no
/// key bytes are read), and marks each in `filter` (the filter of `table`). For settling: the
/// recent keys land far apart in a table larger than the cache, so each slot's home is
/// prefetched a few slots ahead and the misses overlap instead of queueing one after another.
fn place_all(table: &mut [u64], from: &[u64], filter: &mut [u64]) {
    const AHEAD: usize = 8;
    let (mask, bits) = (table.len() - 1, table.len().trailing_zeros());
    // (slot, its home): placed AHEAD slots after its home was prefetched.
    let mut ring = [(0u64, 0usize); AHEAD];
    let mut n = 0usize;
    let mut place = |table: &mut [u64], (slot, mut i): (u64, usize)| {
        while table[i] != 0 {
            i = (i + 1) & mask;
        }
        table[i] = slot;
        let (word, marks) = filter_bits(slot >> 32, bits);
        filter[word] |= marks;
    };
    for &slot in from.iter().filter(|&&s| s != 0) {
        let at = home(slot >> 32, bits);
        prefetch(&table[at]);
        let k = n % AHEAD;
        if n >= AHEAD {
            place(table, ring[k]);
        }
        ring[k] = (slot, at);
        n += 1;
    }
    for j in n.saturating_sub(AHEAD)..n {
        place(table, ring[j % AHEAD]);
    }
}

/// Places every occupied slot of `from`, a table of the same layout and at most the size of
/// `table`, by its tag, and marks each in `filter` if given (the filter of `table`). A slot's home in
/// the larger table is its home in the smaller one scaled up (both are the top bits of one
/// product), and its filter word is that home scaled down: walking `from` in order writes
/// `table` and `filter` front to back, so nothing needs prefetching and no key is read.
fn place_in_order(table: &mut [u64], from: &[u64], mut filter: Option<&mut [u64]>) {
    let (mask, bits) = (table.len() - 1, table.len().trailing_zeros());
    for &slot in from.iter().filter(|&&s| s != 0) {
        let tag = slot >> 32;
        let mut i = home(tag, bits);
        if let Some(filter) = filter.as_deref_mut() {
            let (word, marks) = filter_bits(tag, bits);
            filter[word] |= marks;
        }
        while table[i] != 0 {
            i = (i + 1) & mask;
        }
        table[i] = slot;
    }
}

#[inline(always)]
fn prefetch(p: &u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch(
            p as *const u64 as *const i8,
            std::arch::x86_64::_MM_HINT_T0,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
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
        // Enough keys to settle several times: every key keeps its id and is found again,
        // whichever table holds it.
        let n = 3 * RECENT_SLOTS + 123;
        for i in 0..n {
            let id = k.intern(&format!("x-{i}")).unwrap();
            assert_eq!(id as usize, i + 2);
            assert_eq!(k.name(id), format!("x-{i}"));
        }
        assert_eq!(k.len(), n + 2);
        assert!(k.settled > 0 && (k.settled as usize) < k.len());
        assert!(k.slots.len() >= 2 * k.settled as usize);
        for i in (0..n).step_by(7) {
            assert_eq!(k.get(&format!("x-{i}")), Some(i as u32 + 2));
            assert_eq!(k.intern(&format!("x-{i}")), Some(i as u32 + 2));
        }
        assert_eq!(k.get("a"), Some(0));
        assert_eq!(k.get("x-nope"), None);
        assert_eq!(k.len(), n + 2);
    }

    #[test]
    fn anonymous_ids_take_no_key_and_no_slot() {
        let mut k = Keys::default();
        let n = 3 * RECENT_SLOTS;
        // Keys and anonymous ids interleaved, across several settles.
        for i in 0..n {
            if i % 3 == 0 {
                assert_eq!(k.anonymous(), Some(i as u32));
            } else {
                assert_eq!(k.intern(&format!("k{i}")), Some(i as u32));
            }
        }
        assert_eq!(k.named, n - n / 3);
        for i in 0..n {
            assert_eq!(k.is_anonymous(i as u32), i % 3 == 0);
            if i % 3 != 0 {
                assert_eq!(k.get(&format!("k{i}")), Some(i as u32));
            }
        }
        assert_eq!(k.name(0), "");
        assert_eq!(k.c_name(0), b"");
        // The tables are sized by the keys alone.
        assert!(k.slots.len() < 4 * k.named);
    }

    #[test]
    fn keys_with_the_same_tag_stay_apart() {
        // Force every key onto one tag: lookups then fall back to comparing bytes, in the
        // recent table and, once settled, in the main one (the filter always says "maybe").
        let tag = 7;
        let mut same = Keys::default();
        for i in 0..100 {
            assert_eq!(same.intern_tagged(&format!("k{i}"), tag), Some(i)); // each one new
        }
        for i in 0..100 {
            let found = same.probe_in(&same.recent, &format!("k{i}"), tag);
            assert!(matches!(found, Probe::Found(id) if id == i));
        }
        assert!(matches!(
            same.probe_in(&same.recent, "k100", tag),
            Probe::Vacant(_)
        ));
        same.settle();
        for i in 0..100 {
            assert_eq!(same.settled_id(&format!("k{i}"), tag), Some(i));
            assert_eq!(same.intern_tagged(&format!("k{i}"), tag), Some(i));
        }
        assert_eq!(same.settled_id("k100", tag), None);
        assert_eq!(same.intern_tagged("k100", tag), Some(100));
    }

    #[test]
    fn the_filter_never_hides_a_settled_key() {
        // Enough keys to settle ten times, the table and filter growing (widening) on the way.
        let mut k = Keys::default();
        for i in 0..5 * RECENT_SLOTS {
            k.intern(&format!("key number {i}")).unwrap();
        }
        assert!(k.settled as usize >= 4 * RECENT_SLOTS);
        for i in 0..k.settled as usize {
            let key = format!("key number {i}");
            assert_eq!(k.settled_id(&key, k.tag(&key)), Some(i as u32));
        }
    }
}
