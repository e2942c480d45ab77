//! What the graph-file reader's visitors share while they read: the graph being built, the
//! plugins and functions met so far, the entries put off, and what a computation read becomes
//! (a piece, or why it was not built).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use rustc_hash::FxHashMap;

use crate::comp::{Comp, TaskId};
use crate::error::{Error, ErrorKind, Result};
use crate::func::Func;
use crate::graph::{Arg, Graph, SimpleArgs, ValidKey};
use crate::plugin::Plugin;
use crate::value::Value;

pub(super) struct Builder<'t> {
    /// The text of the fast pass, where put-off entries are read again.
    pub(super) text: &'t str,
    pub(super) base_dir: &'t Path,
    pub(super) graph: Graph,
    /// Keys with ids below this are the keys of the file's graph (a bare string equal to one
    /// is a reference); None while they are not all known (the fast pass).
    pub(super) file_keys: Option<u32>,
    /// The file's plugins by alias; None until `plugins` is read.
    pub(super) plugins: Option<HashMap<String, Plugin>>,
    /// One function per `alias:symbol`, so a graph holds each once.
    pub(super) funcs: Vec<Func>,
    pub(super) func_ids: FxHashMap<String, u32>,
    /// The last function looked up: consecutive tasks mostly call the same one.
    pub(super) last_func: Option<(String, u32)>,
    /// The one pass: how the last task read by hand opened, from its `{` to the `[` of its
    /// arguments (`{"fn": "alias:symbol", "args": [`, spacing included), and its function. A
    /// task opening with the same bytes is read from its arguments on: in a big file most do.
    pub(super) task_opening: Option<(&'t str, u32)>,
    /// Entries put off by the fast pass: (key id, offset of the text just after the key).
    pub(super) deferred: Vec<(TaskId, usize)>,
    /// Entries the fast pass added reading bare strings it did not know as strings, though a
    /// key defined further on may be one: (key id, offset of the text just after the key, end
    /// of its strings in `unsure_strings`). Read again only if one of them was a key.
    pub(super) unsure: Vec<(TaskId, usize, usize)>,
    pub(super) unsure_strings: Vec<Cow<'t, str>>,
    /// The pass over keys: the first key defined twice or not a valid key.
    pub(super) key_problem: Option<Error>,
    /// The pass over entries: the malformed entry that stopped it.
    pub(super) failed: Option<Error>,
}

/// Why a computation was not built.
pub(super) enum Stop {
    /// (fast pass) It names something not known yet: read it again when everything is.
    Later,
    Bad(Box<Problem>),
}

/// A malformed computation: what is wrong and where, innermost step first (the steps are
/// added as the problem travels out, so the path costs nothing until something is wrong).
pub(super) struct Problem {
    pub(super) kind: ErrorKind,
    pub(super) message: String,
    pub(super) steps: Vec<Step>,
}

/// One step of the path to a place inside an entry, for error messages.
pub(super) enum Step {
    Arg(usize),
    Kwarg(String),
    Item(usize),
    Field(&'static str),
    /// An entry of a map, by name.
    Entry(String),
}

pub(super) type Built<T> = std::result::Result<T, Stop>;

pub(super) fn bad<T>(message: impl Into<String>) -> Built<T> {
    Err(Stop::Bad(Box::new(Problem {
        kind: ErrorKind::InvalidGraph,
        message: message.into(),
        steps: Vec::new(),
    })))
}

pub(super) trait At {
    /// Adds `step` outside the path of a problem.
    fn at(self, step: Step) -> Self;
}

impl<T> At for Built<T> {
    fn at(self, step: Step) -> Self {
        self.map_err(|stop| match stop {
            Stop::Bad(mut p) => {
                p.steps.push(step);
                Stop::Bad(p)
            }
            later => later,
        })
    }
}

impl Problem {
    pub(super) fn into_error(self, key: &str) -> Error {
        let mut place = String::new();
        for step in self.steps.iter().rev() {
            match step {
                Step::Item(i) => {
                    let _ = write!(place, "[{i}]");
                }
                other => {
                    if !place.is_empty() {
                        place.push('.');
                    }
                    let _ = match other {
                        Step::Arg(i) => write!(place, "args[{i}]"),
                        Step::Kwarg(n) => write!(place, "kwargs.{n}"),
                        Step::Field(f) => write!(place, "{f}"),
                        Step::Entry(n) => write!(place, "{n}"),
                        Step::Item(_) => unreachable!(),
                    };
                }
            }
        }
        let message = if place.is_empty() {
            self.message
        } else {
            format!("{place}: {}", self.message)
        };
        match self.kind {
            ErrorKind::Plugin => {
                Error::new(ErrorKind::Plugin, format!("key '{key}': {message}")).with_key(key)
            }
            _ => Error::invalid_graph(key, message),
        }
    }
}

/// A computation as read: a reference, a literal, or anything else already a `Comp`.
pub(super) enum Piece {
    /// A handle (`TaskId`'s bits).
    Ref(u64),
    Lit(Value),
    Comp(Comp),
}

impl Piece {
    pub(super) fn into_comp(self) -> Comp {
        match self {
            Piece::Ref(id) => Comp::id(TaskId(id)),
            Piece::Lit(v) => Comp::value(v),
            Piece::Comp(c) => c,
        }
    }
}

/// A task's positional arguments as read: kept as the graph's simple arguments (references
/// and literals, added without building a `Comp`) until one is anything else.
pub(super) enum Args {
    Simple(SimpleArgs),
    Comps(Vec<Comp>),
}

impl Args {
    pub(super) fn new() -> Args {
        Args::Simple(SimpleArgs::new())
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Args::Simple(a) => a.len(),
            Args::Comps(c) => c.len(),
        }
    }

    pub(super) fn push(&mut self, piece: Piece) {
        match (&mut *self, piece) {
            (Args::Simple(a), Piece::Ref(id)) => a.push(Arg::Ref(id)),
            (Args::Simple(a), Piece::Lit(v)) => a.push(Arg::Lit(v)),
            (Args::Comps(c), p) => c.push(p.into_comp()),
            (Args::Simple(_), Piece::Comp(comp)) => {
                let mut comps = std::mem::replace(self, Args::Comps(Vec::new())).into_comps();
                comps.push(comp);
                *self = Args::Comps(comps);
            }
        }
    }

    pub(super) fn into_comps(self) -> Vec<Comp> {
        match self {
            Args::Simple(a) => a
                .into_iter()
                .map(|a| match a {
                    Arg::Ref(id) => Comp::id(TaskId(id)),
                    Arg::Lit(v) => Comp::value(v),
                })
                .collect(),
            Args::Comps(c) => c,
        }
    }
}

pub(super) type Kwargs = Vec<(String, Comp)>;

/// An entry's computation: a task stays in pieces, so a task of references and literals (the
/// usual one) is added without building a `Comp` for it.
pub(super) enum Entry {
    Piece(Piece),
    Task {
        func: u32,
        args: Args,
        kwargs: Kwargs,
    },
}

impl<'t> Builder<'t> {
    pub(super) fn new(text: &'t str, base_dir: &'t Path, file_keys: Option<u32>) -> Builder<'t> {
        Builder {
            text,
            base_dir,
            graph: Graph::new(),
            file_keys,
            plugins: None,
            funcs: Vec::new(),
            func_ids: FxHashMap::default(),
            last_func: None,
            task_opening: None,
            deferred: Vec::new(),
            unsure: Vec::new(),
            unsure_strings: Vec::new(),
            key_problem: None,
            failed: None,
        }
    }

    /// A bare string: a reference if it is a key of the file's graph, else a string.
    pub(super) fn string(&mut self, s: &str) -> Piece {
        match (self.graph.id_of(s), self.file_keys) {
            (Some(id), Some(n)) if id.index() < n => Piece::Ref(id.0),
            (_, Some(_)) => Piece::Lit(Value::str(s)),
            // The fast pass interns only keys of the file's graph, as it reads them.
            (Some(id), None) => Piece::Ref(id.0),
            (None, None) => {
                // Most such strings are strings ("mean", a path): read as one, and noted, so
                // the entry is read again if a key further on is this string. (Putting the
                // entry off instead read it twice, and its references the second time from
                // the big key table instead of the recent keys.) A file whose entries come
                // before the keys they name is read twice either way, and its graph keeps the
                // expressions the first reading wrote (their literals are freed): a reversed
                // 300k chain's peak RSS 157.6 MB before this, 161.0 MB with it.
                self.unsure_strings.push(self.in_text(s));
                Piece::Lit(Value::str(s))
            }
        }
    }

    /// `s` as a slice of the fast pass's text if it is one (a string with no escapes), else
    /// a copy.
    fn in_text(&self, s: &str) -> Cow<'t, str> {
        let text = self.text.as_bytes().as_ptr_range();
        let at = s.as_ptr();
        if text.contains(&at) && s.len() <= text.end as usize - at as usize {
            let from = at as usize - text.start as usize;
            Cow::Borrowed(&self.text[from..from + s.len()])
        } else {
            Cow::Owned(s.to_owned())
        }
    }

    /// `{"ref": s}`.
    pub(super) fn reference(&mut self, s: &str) -> Built<Piece> {
        if s.is_empty() || s.contains('\0') {
            return bad("a key must be non-empty and hold no NUL");
        }
        if self.file_keys.is_none() {
            // Interning a key the fast pass has not read would put it out of file order.
            return self
                .graph
                .id_of(s)
                .map(|id| Piece::Ref(id.0))
                .ok_or(Stop::Later);
        }
        match self.graph.intern(s) {
            Ok(id) => Ok(Piece::Ref(id.0)),
            Err(e) => bad(e.message),
        }
    }

    /// The function a task's `fn` names, as an index into `funcs`.
    pub(super) fn func(&mut self, name: &str) -> Built<u32> {
        if let Some((last, i)) = &self.last_func {
            if last == name {
                return Ok(*i);
            }
        }
        if let Some(&i) = self.func_ids.get(name) {
            self.last_func = Some((name.to_string(), i));
            return Ok(i);
        }
        let Some((alias, symbol)) = name
            .split_once(':')
            .filter(|(a, s)| !a.is_empty() && !s.is_empty())
        else {
            return bad(format!(
                "'{name}' does not name a plugin task: expected \"alias:symbol\""
            ));
        };
        let plugin_error = |message: String| {
            Err(Stop::Bad(Box::new(Problem {
                kind: ErrorKind::Plugin,
                message,
                steps: Vec::new(),
            })))
        };
        let Some(plugins) = &self.plugins else {
            // `plugins` comes after `graph` in this file.
            return Err(Stop::Later);
        };
        let Some(plugin) = plugins.get(alias) else {
            let mut known: Vec<&str> = plugins.keys().map(String::as_str).collect();
            known.sort_unstable();
            return plugin_error(format!(
                "'{name}': no plugin has the alias '{alias}' (\"plugins\" has: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        };
        let f = match plugin.func_as(symbol, alias) {
            Ok(f) => f,
            Err(e) => return plugin_error(format!("'{name}': {}", e.message)),
        };
        let i = self.funcs.len() as u32;
        self.funcs.push(f);
        self.func_ids.insert(name.to_string(), i);
        self.last_func = Some((name.to_string(), i));
        Ok(i)
    }

    pub(super) fn task(&self, func: u32, args: Args, kwargs: Kwargs) -> Comp {
        Comp::task(&self.funcs[func as usize], args.into_comps(), kwargs)
    }

    /// Adds an entry read whole.
    pub(super) fn add(&mut self, key: &str, entry: Entry) -> Result<TaskId> {
        let added = match entry {
            Entry::Task {
                func,
                args: Args::Simple(mut args),
                kwargs,
            } if kwargs.is_empty() => {
                let func = &self.funcs[func as usize];
                ValidKey::new(key)
                    .and_then(|key| self.graph.add_task_simple(Some(key), func, &mut args))
            }
            Entry::Task { func, args, kwargs } => {
                let func = self.funcs[func as usize].clone();
                self.graph.add_task(key, &func, args.into_comps(), kwargs)
            }
            Entry::Piece(p) => self.graph.add(key, p.into_comp()),
        };
        added.map_err(|e| match e.kind {
            ErrorKind::InvalidArgument => Error::invalid_graph(key, e.message),
            _ => e,
        })
    }

    /// The pass over keys: notes `key` of `graph` (interning it in file order).
    pub(super) fn note_key(&mut self, key: &str) {
        if self.key_problem.is_some() {
            return;
        }
        if self.graph.id_of(key).is_some() {
            self.key_problem = Some(Error::invalid_graph(
                key,
                "the key is defined twice in \"graph\"",
            ));
        } else if let Err(e) = self.graph.intern(key) {
            self.key_problem = Some(Error::invalid_graph(key, e.message));
        }
    }
}
