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
    Invalid(Error),
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
            kind: CompKind::Invalid(error),
            depth: 0,
        }
    }

    fn nest(kind: CompKind) -> Comp {
        let children: Box<dyn Iterator<Item = &Comp>> = match &kind {
            CompKind::List(items) => Box::new(items.iter()),
            CompKind::Task(t) => Box::new(t.args.iter().chain(t.kwargs.iter().map(|(_, c)| c))),
            _ => Box::new(std::iter::empty()),
        };
        let mut depth = 0;
        let mut invalid = None;
        for c in children {
            depth = depth.max(c.depth);
            if let CompKind::Invalid(e) = &c.kind {
                invalid.get_or_insert_with(|| e.clone());
            }
        }
        if let Some(e) = invalid {
            return Comp::invalid(e);
        }
        let depth = depth + 1;
        if depth > MAX_NESTING {
            return Comp::invalid(Error::invalid_argument(format!(
                "computation nests more than {MAX_NESTING} levels deep"
            )));
        }
        Comp { kind, depth }
    }
}

impl From<Value> for Comp {
    fn from(v: Value) -> Comp {
        Comp::value(v)
    }
}
