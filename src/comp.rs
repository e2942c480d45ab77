//! Computations as a caller builds them: a literal, a reference (by key or by task handle), a
//! list or a map of computations, or an inline task. A graph flattens them into its own arena when they
//! are added (see `graph`).
//!
//! A `Comp` is two words: a reference by handle — the hot path of building a big graph — is
//! held inline; everything else sits in one box. So argument lists are cheap to move around.

use crate::abi::daskr_comp_t;
use crate::error::Error;
use crate::func::Func;
use std::sync::Arc;

use crate::value::{Names, Value, MAX_NESTING};

/// A handle to a graph entry, as returned when it was added. Valid only for the graph that
/// made it: it carries that graph's serial number (high 32 bits) as well as the key's dense
/// id in it (low 32 bits), so a graph refuses another graph's handles (`invalid_argument`)
/// instead of reading them as its own entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    /// The key's dense id in its graph (0, 1, 2, ... in the order keys became known).
    pub fn index(self) -> u32 {
        self.0 as u32
    }
}

/// A computation. Nesting depth is tracked as it is built and capped at [`MAX_NESTING`], so
/// every later walk over it is bounded.
#[derive(Debug)]
pub struct Comp(pub(crate) Repr);

#[derive(Debug)]
pub(crate) enum Repr {
    /// A reference to the entry behind a handle (`TaskId`'s bits: checked when added).
    Id(u64),
    Node(Box<CompNode>),
}

/// A computation other than a reference by handle, in its box: what it is, and how deeply it
/// nests.
#[derive(Debug)]
pub(crate) struct CompNode {
    pub kind: CompKind,
    pub depth: u32,
}

#[derive(Debug)]
pub(crate) enum CompKind {
    Value(Value),
    /// A reference to the entry named so.
    Key(String),
    List(Vec<Comp>),
    /// A map whose values are computations: `values[i]` is named `names.name(i)`.
    Map {
        names: Arc<Names>,
        values: Vec<Comp>,
    },
    Task {
        func: Func,
        args: Vec<Comp>,
        kwargs: Vec<(String, Comp)>,
    },
    /// A computation that could not be built (too deep, bad input at an API boundary); adding
    /// it reports this error, named with the key it was added under.
    Invalid(Error),
}

impl Comp {
    fn node(kind: CompKind, depth: u32) -> Comp {
        Comp(Repr::Node(Box::new(CompNode { kind, depth })))
    }

    pub fn value(v: impl Into<Value>) -> Comp {
        let v = v.into();
        let depth = v.depth();
        Comp::node(CompKind::Value(v), depth)
    }

    /// A reference to the entry named `key`.
    pub fn key(key: impl Into<String>) -> Comp {
        Comp::node(CompKind::Key(key.into()), 0)
    }

    /// A reference to the entry behind a handle (no allocation, no string hashing).
    pub fn id(task: TaskId) -> Comp {
        Comp(Repr::Id(task.0))
    }

    pub fn list(items: Vec<Comp>) -> Comp {
        match Comp::children_problem(items.iter()) {
            Some(e) => Comp::invalid(e),
            None => {
                let depth = 1 + items.iter().map(Comp::depth).max().unwrap_or(0);
                Comp::node(CompKind::List(items), depth)
            }
        }
    }

    /// A map computation: evaluates to the map of its names to their computations' values.
    /// A name given twice makes it invalid (reported, naming the name, when it is added).
    pub fn map<S: AsRef<str>>(entries: Vec<(S, Comp)>) -> Comp {
        match Names::new(entries.iter().map(|(n, _)| n.as_ref())) {
            Ok(names) => Comp::map_of(names, entries.into_iter().map(|(_, c)| c).collect()),
            Err(e) => Comp::invalid(e),
        }
    }

    /// A map computation of checked `names` and their computations (as many, in order).
    pub fn map_of(names: Names, values: Vec<Comp>) -> Comp {
        if names.len() != values.len() {
            return Comp::invalid(Error::invalid_argument(format!(
                "a map of {} names given {} values",
                names.len(),
                values.len()
            )));
        }
        match Comp::children_problem(values.iter()) {
            Some(e) => Comp::invalid(e),
            None => {
                let depth = 1 + values.iter().map(Comp::depth).max().unwrap_or(0);
                let names = Arc::new(names);
                Comp::node(CompKind::Map { names, values }, depth)
            }
        }
    }

    /// An inline task: evaluated as part of the entry that contains it, not scheduled alone.
    pub fn task(func: &Func, args: Vec<Comp>, kwargs: Vec<(String, Comp)>) -> Comp {
        let children = || args.iter().chain(kwargs.iter().map(|(_, c)| c));
        match Comp::children_problem(children()) {
            Some(e) => Comp::invalid(e),
            None => {
                let depth = 1 + children().map(Comp::depth).max().unwrap_or(0);
                Comp::node(
                    CompKind::Task {
                        func: func.clone(),
                        args,
                        kwargs,
                    },
                    depth,
                )
            }
        }
    }

    pub fn invalid(error: Error) -> Comp {
        Comp::node(CompKind::Invalid(error), 0)
    }

    /// Whether this is a reference by handle (which holds no value).
    pub(crate) fn is_handle(&self) -> bool {
        matches!(self.0, Repr::Id(_))
    }

    /// How deeply lists, maps and inline tasks nest inside (0 for a literal scalar or reference).
    pub fn depth(&self) -> u32 {
        match &self.0 {
            Repr::Id(_) => 0,
            Repr::Node(n) => n.depth,
        }
    }

    /// The error this computation stands for, if it could not be built.
    pub(crate) fn problem(&self) -> Option<&Error> {
        match &self.0 {
            Repr::Node(n) => match &n.kind {
                CompKind::Invalid(e) => Some(e),
                _ => None,
            },
            Repr::Id(_) => None,
        }
    }

    /// Why a computation holding `children` cannot be built: one of them is invalid, or it
    /// would nest deeper than [`MAX_NESTING`].
    pub(crate) fn children_problem<'c>(children: impl Iterator<Item = &'c Comp>) -> Option<Error> {
        let mut depth = 0;
        for c in children {
            if let Some(e) = c.problem() {
                return Some(e.clone());
            }
            depth = depth.max(c.depth());
        }
        (depth + 1 > MAX_NESTING).then(|| {
            Error::invalid_argument(format!(
                "computation nests more than {MAX_NESTING} levels deep"
            ))
        })
    }
}

// ---- the raw encoding: a computation as a `daskr_comp_t *` ----
//
// A reference by handle is the hot path of graph building, so it costs no allocation: its
// pointer is the handle itself, shifted left and tagged in the low bit (handles use 63 bits:
// a graph's serial number has 31, so a 64-bit pointer holds one whole). Any other computation
// is the box of its node (`Comp`'s own: no second allocation), whose address is even.

impl Comp {
    /// The computation as a raw pointer, owning what it holds until `from_raw` takes it back.
    pub(crate) fn into_raw(self) -> *mut daskr_comp_t {
        match self.0 {
            Repr::Id(id) => ((id as usize) << 1 | 1) as *mut daskr_comp_t,
            Repr::Node(node) => Box::into_raw(node).cast(),
        }
    }

    /// Takes back a computation made by `into_raw` (None for NULL).
    ///
    /// # Safety
    /// `p` is NULL or came from `into_raw` and was not taken back yet.
    pub(crate) unsafe fn from_raw(p: *mut daskr_comp_t) -> Option<Comp> {
        if p.is_null() {
            None
        } else if p as usize & 1 == 1 {
            Some(Comp(Repr::Id((p as usize >> 1) as u64)))
        } else {
            Some(Comp(Repr::Node(Box::from_raw(p.cast::<CompNode>()))))
        }
    }

    /// The handle a raw computation refers to, if it is a reference by handle (which owns
    /// nothing, so it need not be taken).
    pub(crate) fn raw_handle(p: *mut daskr_comp_t) -> Option<u64> {
        (p as usize & 1 == 1).then_some((p as usize >> 1) as u64)
    }

    /// Whether a raw computation is a reference by handle, or a literal that a task may take
    /// as an argument as it is: no deeper than a task's argument may nest (one level goes to
    /// the task around it).
    ///
    /// # Safety
    /// As for `from_raw`; `p` is only read.
    pub(crate) unsafe fn raw_is_plain(p: *mut daskr_comp_t) -> bool {
        p as usize & 1 == 1
            || p.cast::<CompNode>().as_ref().is_some_and(|node| {
                matches!(node.kind, CompKind::Value(_)) && node.depth < MAX_NESTING
            })
    }
}

// The tagged-pointer encoding above needs 64-bit pointers.
const _: () = assert!(usize::BITS == 64);

impl From<Value> for Comp {
    fn from(v: Value) -> Comp {
        Comp::value(v)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn comp_is_two_words() {
        // Argument lists are built and moved per task: keep a computation small.
        assert_eq!(std::mem::size_of::<super::Comp>(), 16);
    }
}
