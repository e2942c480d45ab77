//! Key interning: every key is copied once into one byte arena and named from then on by a
//! dense `u32` id. Only building a graph and resolving requested keys hash a string; a run
//! never does.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

pub struct Keys {
    /// Every key's bytes followed by a NUL, so a key can be handed to C as a C string.
    arena: Vec<u8>,
    /// `starts[i]..starts[i+1]-1` is key i (the extra entry at the end closes the last key).
    starts: Vec<u64>,
    table: HashTable<u32>,
    hasher: FxBuildHasher,
}

impl Default for Keys {
    fn default() -> Keys {
        Keys {
            arena: Vec::new(),
            starts: vec![0],
            table: HashTable::new(),
            hasher: FxBuildHasher,
        }
    }
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

    pub fn get(&self, key: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(key.as_bytes());
        self.table
            .find(hash, |&id| self.name(id).as_bytes() == key.as_bytes())
            .copied()
    }

    /// The id of `key`, adding it if it is new. `None` when ids would overflow `u32`.
    pub fn intern(&mut self, key: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(key.as_bytes());
        let Keys {
            arena,
            starts,
            table,
            hasher,
        } = self;
        let name = |id: u32| {
            let i = id as usize;
            &arena[starts[i] as usize..starts[i + 1] as usize - 1]
        };
        if let Some(&id) = table.find(hash, |&id| name(id) == key.as_bytes()) {
            return Some(id);
        }
        let id = u32::try_from(starts.len() - 1)
            .ok()
            .filter(|&id| id < u32::MAX - 2)?;
        arena.extend_from_slice(key.as_bytes());
        arena.push(0);
        starts.push(arena.len() as u64);
        let (arena, starts) = (&*arena, &*starts);
        table.insert_unique(hash, id, |&other| {
            let i = other as usize;
            hasher.hash_one(&arena[starts[i] as usize..starts[i + 1] as usize - 1])
        });
        Some(id)
    }

    /// Bytes held, for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.starts.capacity() * 8 + self.table.capacity() * 4
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
    }
}
