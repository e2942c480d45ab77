//! Computations as a caller builds them: a literal, a reference (by key or by task handle), a
//! list of computations, or an inline task. A graph flattens them into its own arena when they
//! are added (see `graph`).
//!
//! A `Comp` is two words: a reference by handle — the hot path of building a big graph — is
//! held inline; everything else sits in one box. So argument lists are cheap to move around.

use crate::error::Error;
use crate::func::Func;
use crate::value::{Value, MAX_NESTING};

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
    Node(Box<Node>),
}

#[derive(Debug)]
pub(crate) struct Node {
    pub kind: CompKind,
    pub depth: u32,
}

#[derive(Debug)]
pub(crate) enum CompKind {
    Value(Value),
    /// A reference to the entry named so.
    Key(String),
    List(Vec<Comp>),
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
        Comp(Repr::Node(Box::new(Node { kind, depth })))
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

    /// How deeply lists and inline tasks nest inside (0 for a literal scalar or reference).
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
