//! What a cached result is keyed by: a BLAKE3 hash of everything that determines it — its
//! function's identity and its arguments — where an argument that is another entry's result
//! contributes that entry's hash (a Merkle tree, as Bazel keys its actions). Changing one
//! input changes the hash of exactly the entries downstream of it.
//!
//! The hashed bytes are a prefix-free serialisation (a tag byte, then counts before lists),
//! so two different computations never feed the hasher the same bytes; they are hashed in
//! BLAKE3's keyed mode, the key derived from the context "daskr result cache v2 entry" (so no
//! other use of BLAKE3 collides with an entry's hash, at no cost per entry):
//!
//! ```text
//! entry     = expr
//! expr      = 'L' u64(len) encoded-value      a literal (the binary value encoding)
//!           | 'R' hash                        another entry's result: that entry's hash
//!           | 'I' expr                        another entry's result, when that entry's own
//!                                             bytes are at most 64: those bytes
//!           | 'A' u32(n) expr*                a list
//!           | 'M' u32(n) (u32(len) name expr)*   a map
//!           | 'T' function u32(nargs) expr* u32(nkwargs) (u32(len) name expr)*   a call
//! function  = 'P' str(plugin) str(symbol) str(version)    a plugin task
//!           | 'F' str(name) str(version)                  a function made with a version
//! str       = u32(len) utf8
//! ```
//!
//! A literal is hashed through its encoding (not by walking the value), so a value kind added
//! to the encoding is covered with no change here. An entry has no hash — so neither it nor
//! anything downstream is cached — when it calls a function with no cache version (impure, or
//! made without one) or holds a literal that cannot be encoded (a pointer).
//!
//! Cost: an entry's bytes are laid out in one buffer (a function's identity serialised once
//! per get, not per task) and hashed with one call. A small entry (at most 64 bytes — a
//! cheap task on a literal) is not hashed on its own at all unless it is looked up or
//! stored: its consumers take its bytes in place of its hash ('I'), so a consumer of a
//! million small tasks hashes one long input, which BLAKE3 does many blocks at a time, and
//! an unchanged rerun that looks up only that consumer computes one hash, not a million.
//! Whether an entry is inlined depends only on its own bytes, so the rule stays a function
//! of the computation: the same computation always has the same hash.

use std::sync::OnceLock;

use super::store::Hash;
use crate::encode;
use crate::func::Func;
use crate::graph::{Graph, View};

/// The key entries are hashed with (BLAKE3's key derivation from a context string).
fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| blake3::derive_key("daskr result cache v2 entry", b""))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A function's identity bytes; None if its results may not be cached.
fn function(f: &Func) -> Option<Vec<u8>> {
    let version = f.cache_version()?;
    let mut out = Vec::new();
    match f.origin() {
        // The plugin's declared name, not the alias a graph file gave it, nor its path: the
        // same plugin loaded from another place computes the same thing.
        Some(o) => {
            out.push(b'P');
            put_str(&mut out, &o.plugin);
            put_str(&mut out, &o.symbol);
        }
        None => {
            out.push(b'F');
            put_str(&mut out, f.name());
        }
    }
    put_str(&mut out, version);
    Some(out)
}

/// Entries whose bytes are at most this long are inlined in their consumers' bytes.
const INLINE_MAX: usize = 64;

/// How an entry takes part in its consumers' bytes.
#[derive(Clone, Copy)]
enum Rep {
    /// Not cached: nor is anything that depends on it.
    None,
    /// Its hash, at this index of `Hashes::hashed`.
    Hash(usize),
    /// Its bytes, at `start` in the arena.
    Inline { start: usize, len: usize },
}

/// A `Rep` in 8 bytes (a million entries' reps are 8 MB, not 40).
#[derive(Clone, Copy)]
struct Packed(u64);

const NONE: u64 = u64::MAX;
const HASH_BIT: u64 = 1 << 62;

impl Packed {
    fn new(r: Rep) -> Packed {
        Packed(match r {
            Rep::None => NONE,
            Rep::Hash(i) => HASH_BIT | i as u64,
            Rep::Inline { start, len } => (start as u64) << 7 | len as u64,
        })
    }

    #[inline]
    fn get(self) -> Rep {
        match self.0 {
            NONE => Rep::None,
            x if x & HASH_BIT != 0 => Rep::Hash((x & !HASH_BIT) as usize),
            x => Rep::Inline {
                start: (x >> 7) as usize,
                len: (x & 127) as usize,
            },
        }
    }
}

/// Every position's part in its consumers' hashes, for one plan, inputs first.
pub(crate) struct Hashes {
    reps: Vec<Packed>,
    hashed: Vec<Hash>,
    arena: Vec<u8>,
}

impl Hashes {
    /// Hashes the entries `order` lists (a topological order; `pos`: an entry's position).
    pub fn of_plan(graph: &Graph, order: &[u32], pos: &[u32]) -> Hashes {
        let mut hashing = Hashing::new(graph);
        let mut reps: Vec<Packed> = Vec::with_capacity(order.len());
        let mut hashed: Vec<Hash> = Vec::new();
        let mut arena = Vec::new();
        for &id in order {
            let dep = |d: u32| match reps[pos[d as usize] as usize].get() {
                Rep::None => Dep::None,
                Rep::Hash(i) => Dep::Hash(&hashed[i]),
                Rep::Inline { start, len } => Dep::Inline(&arena[start..start + len]),
            };
            let rep = match graph.entry(id) {
                // An alias is its target: no bytes of its own.
                View::Ref(d) => reps[pos[d as usize] as usize].get(),
                view => match hashing.bytes(view, &dep) {
                    None => Rep::None,
                    Some(Laid::Hashed(h)) => {
                        hashed.push(h);
                        Rep::Hash(hashed.len() - 1)
                    }
                    Some(Laid::Bytes(b)) if b.len() <= INLINE_MAX => {
                        let start = arena.len();
                        arena.extend_from_slice(b);
                        Rep::Inline {
                            start,
                            len: b.len(),
                        }
                    }
                    Some(Laid::Bytes(b)) => {
                        hashed.push(hash_bytes(b));
                        Rep::Hash(hashed.len() - 1)
                    }
                },
            };
            reps.push(Packed::new(rep));
        }
        Hashes {
            reps,
            hashed,
            arena,
        }
    }

    /// Whether position `p` has a hash (may be cached).
    #[inline]
    pub fn has(&self, p: usize) -> bool {
        !matches!(self.reps[p].get(), Rep::None)
    }

    /// Position `p`'s hash (computed now for an inlined entry).
    pub fn hash(&self, p: usize) -> Option<Hash> {
        match self.reps[p].get() {
            Rep::None => None,
            Rep::Hash(i) => Some(self.hashed[i]),
            Rep::Inline { start, len } => Some(hash_bytes(&self.arena[start..start + len])),
        }
    }
}

fn hash_bytes(b: &[u8]) -> Hash {
    *blake3::keyed_hash(key(), b).as_bytes()
}

/// An input as its consumer's bytes take it.
enum Dep<'a> {
    None,
    Hash(&'a Hash),
    Inline(&'a [u8]),
}

/// An entry's bytes, or their hash when they were long enough to be hashed as they were
/// laid out.
enum Laid<'a> {
    Bytes(&'a [u8]),
    Hashed(Hash),
}

/// A buffer this long is fed to the hasher (at an argument's end) rather than grown: a
/// consumer of a million entries does not lay out tens of megabytes.
const SPILL_AT: usize = 1 << 16;

/// Lays out entries' bytes, reusing its buffer.
struct Hashing<'g> {
    graph: &'g Graph,
    buf: Vec<u8>,
    /// The hasher the current entry's bytes were spilled to, if they were.
    spilled: Option<blake3::Hasher>,
    /// Each function's identity bytes, serialised at its first use (outer None: not yet).
    funcs: Vec<Option<Option<Box<[u8]>>>>,
}

impl<'g> Hashing<'g> {
    fn new(graph: &'g Graph) -> Hashing<'g> {
        Hashing {
            graph,
            buf: Vec::with_capacity(256),
            spilled: None,
            funcs: vec![None; graph.func_count()],
        }
    }

    /// The bytes of an entry (not an alias), given its inputs' parts; None if it has no hash.
    fn bytes<'d>(&mut self, view: View<'_>, dep: &impl Fn(u32) -> Dep<'d>) -> Option<Laid<'_>> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.spilled = None;
        let ok = self.expr(&mut buf, view, dep);
        self.buf = buf;
        if !ok {
            return None;
        }
        Some(match self.spilled.take() {
            None => Laid::Bytes(&self.buf),
            Some(mut h) => Laid::Hashed(*h.update(&self.buf).finalize().as_bytes()),
        })
    }

    /// Feeds a long buffer to the hasher (between two parts of an entry: never inside a
    /// literal, whose length is written after it).
    #[inline]
    fn spill(&mut self, out: &mut Vec<u8>) {
        if out.len() >= SPILL_AT {
            self.spilled
                .get_or_insert_with(|| blake3::Hasher::new_keyed(key()))
                .update(out);
            out.clear();
        }
    }

    fn expr<'d>(
        &mut self,
        out: &mut Vec<u8>,
        view: View<'_>,
        dep: &impl Fn(u32) -> Dep<'d>,
    ) -> bool {
        let graph = self.graph;
        match view {
            View::Lit(v) => {
                out.push(b'L');
                let at = out.len();
                out.extend_from_slice(&[0; 8]);
                if encode::encode_into(v, out).is_err() {
                    return false;
                }
                let len = (out.len() - at - 8) as u64;
                out[at..at + 8].copy_from_slice(&len.to_le_bytes());
                true
            }
            View::Ref(d) => match dep(d) {
                Dep::Hash(h) => {
                    out.push(b'R');
                    out.extend_from_slice(h);
                    true
                }
                Dep::Inline(bytes) => {
                    out.push(b'I');
                    out.extend_from_slice(bytes);
                    true
                }
                Dep::None => false,
            },
            View::List { items, len } => {
                out.push(b'A');
                out.extend_from_slice(&len.to_le_bytes());
                graph.items(items, len).all(|v| {
                    let ok = self.expr(out, v, dep);
                    self.spill(out);
                    ok
                })
            }
            View::Map { items, names } => {
                // Names in order (as a map keeps them), each length-prefixed, then its value.
                out.push(b'M');
                out.extend_from_slice(&(names.len() as u32).to_le_bytes());
                let values = graph.items(items, names.len() as u32);
                for (i, v) in values.enumerate() {
                    let name = names.name(i);
                    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
                    out.extend_from_slice(name.as_bytes());
                    if !self.expr(out, v, dep) {
                        return false;
                    }
                    self.spill(out);
                }
                true
            }
            View::Task(call) => {
                out.push(b'T');
                let f = &mut self.funcs[call.func as usize];
                let identity =
                    f.get_or_insert_with(|| function(graph.func(call.func)).map(Into::into));
                let Some(identity) = identity else {
                    return false;
                };
                out.extend_from_slice(identity);
                out.extend_from_slice(&call.nargs.to_le_bytes());
                let mut args = graph.args(&call);
                if !args.by_ref().take(call.nargs as usize).all(|v| {
                    let ok = self.expr(out, v, dep);
                    self.spill(out);
                    ok
                }) {
                    return false;
                }
                out.extend_from_slice(&call.nkwargs.to_le_bytes());
                for (name, v) in graph.kwnames(call.names, call.nkwargs).zip(args) {
                    // Names carry their NUL: strip it, as every string here is length-prefixed.
                    let name = &name[..name.len() - 1];
                    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
                    out.extend_from_slice(name);
                    if !self.expr(out, v, dep) {
                        return false;
                    }
                }
                true
            }
        }
    }
}
