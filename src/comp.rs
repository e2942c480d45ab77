//! Computations as a caller builds them: a literal, a reference (by key or by task handle), a
//! list of computations, or an inline task. A graph flattens them into its own arena when they
//! are added (see `graph`).

use crate::error::Error;
use crate::func::Func;
use crate::value::{Value, MAX_NESTING};

/// A handle to a graph entry, as returned when it was added: the key's dense id. Valid only
/// for the graph that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub u32);

/// A reference to another graph entry.
#[derive(Debug, Clone)]
pub enum Ref {
    Key(String),
    Id(TaskId),
}

#[derive(Debug)]
pub(crate) enum CompKind {
    Value(Value),
    Ref(Ref),
    List(Vec<Comp>),
    Task(Box<TaskComp>),
    /// A computation that could not be built (too deep, bad input at an API boundary); adding
    /// it reports this error, named with the key it was added under.
    Invalid(Box<Error>),
}

#[derive(Debug)]
pub(crate) struct TaskComp {
    pub func: Func,
    pub args: Vec<Comp>,
    pub kwargs: Vec<(String, Comp)>,
}

/// A computation. Nesting depth is tracked as it is built and capped at [`MAX_NESTING`], so
/// every later walk over it is bounded.
#[derive(Debug)]
pub struct Comp {
    pub(crate) kind: CompKind,
    pub(crate) depth: u32,
}

impl Comp {
    pub fn value(v: impl Into<Value>) -> Comp {
        let v = v.into();
        let depth = v.depth();
        Comp {
            kind: CompKind::Value(v),
            depth,
        }
    }

    /// A reference to the entry named `key`.
    pub fn key(key: impl Into<String>) -> Comp {
        Comp {
            kind: CompKind::Ref(Ref::Key(key.into())),
            depth: 0,
        }
    }

    /// A reference to the entry behind a handle (no string hashing when the graph is built).
    pub fn id(task: TaskId) -> Comp {
        Comp {
            kind: CompKind::Ref(Ref::Id(task)),
            depth: 0,
        }
    }

    pub fn list(items: Vec<Comp>) -> Comp {
        Comp::nest(CompKind::List(items))
    }

    /// An inline task: evaluated as part of the entry that contains it, not scheduled alone.
    pub fn task(func: &Func, args: Vec<Comp>, kwargs: Vec<(String, Comp)>) -> Comp {
        Comp::nest(CompKind::Task(Box::new(TaskComp {
            func: func.clone(),
            args,
            kwargs,
        })))
    }

    pub fn invalid(error: Error) -> Comp {
        Comp {
            kind: CompKind::Invalid(Box::new(error)),
            depth: 0,
        }
    }

    fn nest(kind: CompKind) -> Comp {
        let problem = match &kind {
            CompKind::List(items) => Comp::children_problem(items.iter()),
            CompKind::Task(t) => {
                Comp::children_problem(t.args.iter().chain(t.kwargs.iter().map(|(_, c)| c)))
            }
            _ => None,
        };
        if let Some(e) = problem {
            return Comp::invalid(e);
        }
        let depth = 1 + match &kind {
            CompKind::List(items) => items.iter().map(|c| c.depth).max().unwrap_or(0),
            CompKind::Task(t) => {
                let kw = t.kwargs.iter().map(|(_, c)| c.depth).max().unwrap_or(0);
                t.args.iter().map(|c| c.depth).max().unwrap_or(0).max(kw)
            }
            _ => 0,
        };
        Comp { kind, depth }
    }

    /// The error this computation stands for, if it could not be built.
    pub(crate) fn problem(&self) -> Option<&Error> {
        match &self.kind {
            CompKind::Invalid(e) => Some(e),
            _ => None,
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
            depth = depth.max(c.depth);
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
    fn comp_stays_small() {
        // Argument vectors are built per task: keep a computation to a few words.
        assert!(
            std::mem::size_of::<super::Comp>() <= 40,
            "{}",
            std::mem::size_of::<super::Comp>()
        );
    }
}
