//! What a cached result is keyed by: a BLAKE3 hash of everything that determines it — its
//! function's identity and its arguments — where an argument that is another entry's result
//! contributes that entry's hash (a Merkle tree, as Bazel keys its actions). Changing one
//! input changes the hash of exactly the entries downstream of it.
//!
//! The hashed bytes are a prefix-free serialisation (a tag byte, then counts before lists),
//! so two different computations never feed the hasher the same bytes:
//!
//! ```text
//! entry     = "daskr-cache-v1" expr
//! expr      = 'L' u64(len) encoded-value      a literal (the binary value encoding)
//!           | 'R' hash                        another entry's result: that entry's hash
//!           | 'A' u32(n) expr*                a list
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

use blake3::Hasher;

use super::store::Hash;
use crate::encode;
use crate::func::Func;
use crate::graph::{Graph, View};

const DOMAIN: &[u8] = b"daskr-cache-v1";

fn put_str(h: &mut Hasher, s: &str) {
    h.update(&(s.len() as u32).to_le_bytes());
    h.update(s.as_bytes());
}

/// Feeds a function's identity; false if its results may not be cached.
fn function(h: &mut Hasher, f: &Func) -> bool {
    let Some(version) = f.cache_version() else {
        return false;
    };
    match f.origin() {
        // The plugin's declared name, not the alias a graph file gave it, nor its path: the
        // same plugin loaded from another place computes the same thing.
        Some(o) => {
            h.update(b"P");
            put_str(h, &o.plugin);
            put_str(h, &o.symbol);
        }
        None => {
            h.update(b"F");
            put_str(h, f.name());
        }
    }
    put_str(h, version);
    true
}

/// Hashes entries of one graph, reusing its buffer.
pub(crate) struct Hashing<'g> {
    graph: &'g Graph,
    buf: Vec<u8>,
}

impl<'g> Hashing<'g> {
    pub fn new(graph: &'g Graph) -> Hashing<'g> {
        Hashing {
            graph,
            buf: Vec::new(),
        }
    }

    /// The hash of entry `id`, given the hashes of the entries it refers to (`dep`: None for
    /// one that has none); None if it has none itself.
    pub fn entry(&mut self, id: u32, dep: &dyn Fn(u32) -> Option<Hash>) -> Option<Hash> {
        let view = self.graph.entry(id);
        // An alias is its target: no bytes of its own.
        if let View::Ref(d) = view {
            return dep(d);
        }
        let mut h = Hasher::new();
        h.update(DOMAIN);
        self.expr(&mut h, view, dep)
            .then(|| *h.finalize().as_bytes())
    }

    fn expr(&mut self, h: &mut Hasher, view: View<'_>, dep: &dyn Fn(u32) -> Option<Hash>) -> bool {
        let graph = self.graph;
        match view {
            View::Lit(v) => {
                self.buf.clear();
                if encode::encode_into(v, &mut self.buf).is_err() {
                    return false;
                }
                h.update(b"L");
                h.update(&(self.buf.len() as u64).to_le_bytes());
                h.update(&self.buf);
                true
            }
            View::Ref(d) => match dep(d) {
                Some(d) => {
                    h.update(b"R");
                    h.update(&d);
                    true
                }
                None => false,
            },
            View::List { items, len } => {
                h.update(b"A");
                h.update(&len.to_le_bytes());
                graph.items(items, len).all(|v| self.expr(h, v, dep))
            }
            View::Map { items, names } => {
                // Names in order (as a map keeps them), each length-prefixed, then its value.
                h.update(b"M");
                h.update(&(names.len() as u32).to_le_bytes());
                let values = graph.items(items, names.len() as u32);
                for (i, v) in values.enumerate() {
                    let name = names.name(i);
                    h.update(&(name.len() as u32).to_le_bytes());
                    h.update(name.as_bytes());
                    if !self.expr(h, v, dep) {
                        return false;
                    }
                }
                true
            }
            View::Task(call) => {
                h.update(b"T");
                if !function(h, graph.func(call.func)) {
                    return false;
                }
                h.update(&call.nargs.to_le_bytes());
                let mut args = graph.args(&call);
                if !args
                    .by_ref()
                    .take(call.nargs as usize)
                    .all(|v| self.expr(h, v, dep))
                {
                    return false;
                }
                h.update(&call.nkwargs.to_le_bytes());
                let names: Vec<&[u8]> = graph.kwnames(call.names, call.nkwargs).collect();
                for (name, v) in names.into_iter().zip(args) {
                    // Names carry their NUL: strip it, as every string here is length-prefixed.
                    let name = &name[..name.len() - 1];
                    h.update(&(name.len() as u32).to_le_bytes());
                    h.update(name);
                    if !self.expr(h, v, dep) {
                        return false;
                    }
                }
                true
            }
        }
    }
}
