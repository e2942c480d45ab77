//! Reading a graph file straight into a [`Graph`]: serde_json's deserializer drives visitors
//! that add each entry to the graph as it arrives, so no JSON tree of the document is built.
//!
//! One thing the format needs the whole document for: a bare string is a reference only if it
//! is a key of the graph, and that key may be defined later in the file. So reading goes:
//!
//! 1. **One pass, optimistic** (`Pass::Fast`). An entry whose strings are all keys already
//!    read (or plain data) is added at once; an entry that names something not known yet — a
//!    string that is no key read so far, a `{"ref"}` to one, a `fn` whose alias the file
//!    declares after `graph` — has its key interned (so ids stay in file order) and its place
//!    in the text noted (16 bytes), and is read again from there once every key is known.
//!    Files written in dependency order (what `write` and most producers give) are read in one
//!    pass. Any error stops this pass.
//! 2. **On any error, two exact passes** (`Pass::Keys`, then `Pass::Entries`) that report what
//!    the reader has always reported, in the same order: a syntax error anywhere first (pass 1
//!    checks the whole text, interning every key of `graph`), then `plugins`, then a key
//!    defined twice, then the first malformed entry in file order, then `keys`.
//!
//! The depth limit is serde_json's recursion limit, checked in every pass and on values read
//! through without being kept (`shape::Skip`), so deep input is an error, never a stack
//! overflow, and an entry read again on its own was already held to the document's limit.

mod computations;
mod shape;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::Path;

use rustc_hash::FxHashMap;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value as Json;

use computations::EntryShape;
use shape::{Any, Check, StrSeed};

use super::{json_kind, read_keys, syntax_error, GraphFile};
use crate::comp::{Comp, TaskId};
use crate::error::{Error, ErrorKind, Result};
use crate::func::Func;
use crate::graph::{Arg, Graph, SimpleArgs};
use crate::plugin::Plugin;
use crate::value::Value;

/// Parses a graph file's text; relative plugin paths are relative to `base_dir`.
pub(super) fn parse(text: &[u8], base_dir: &Path) -> Result<GraphFile> {
    if let Some(file) = one_pass(text, base_dir) {
        return Ok(file);
    }
    exact(text, base_dir)
}

/// The optimistic pass (and re-reading the entries it put off); None on any error.
fn one_pass(text: &[u8], base_dir: &Path) -> Option<GraphFile> {
    // Checked as UTF-8 once, the text needs no check per string (serde_json's `from_str`);
    // text that is not UTF-8 is an error the exact passes report.
    let text = std::str::from_utf8(text).ok()?;
    let mut b = Builder::new(text, base_dir, None);
    let mut de = serde_json::Deserializer::from_str(text);
    let top = DocSeed {
        b: &mut b,
        pass: Pass::Fast,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    if b.plugins.is_none() {
        b.plugins = Some(HashMap::new());
    }
    // Every key interned so far is a key of the file's graph.
    b.file_keys = Some(b.graph.id_count() as u32);
    for (id, at) in std::mem::take(&mut b.deferred) {
        b.read_again(id, at)?;
    }
    let keys = read_file_keys(top.keys).ok()?;
    Some(GraphFile {
        graph: b.graph,
        keys,
    })
}

/// The exact passes: the first error, as the reader has always reported it.
fn exact(text: &[u8], base_dir: &Path) -> Result<GraphFile> {
    let mut b = Builder::new("", base_dir, None);
    let mut de = serde_json::Deserializer::from_slice(text);
    let top = DocSeed {
        b: &mut b,
        pass: Pass::Keys,
    }
    .deserialize(&mut de)
    .and_then(|top| de.end().map(|()| top))
    .map_err(|e| syntax_error(text, &e))?;
    b.plugins = Some(load_plugins(&top.plugins.unwrap_or_default(), base_dir)?);
    if let Some(e) = b.key_problem.take() {
        return Err(e);
    }
    b.file_keys = Some(b.graph.id_count() as u32);
    let mut de = serde_json::Deserializer::from_slice(text);
    let read = DocSeed {
        b: &mut b,
        pass: Pass::Entries,
    }
    .deserialize(&mut de);
    if let Some(e) = b.failed.take() {
        return Err(e);
    }
    read.map_err(|e| syntax_error(text, &e))?;
    let keys = read_file_keys(top.keys)?;
    Ok(GraphFile {
        graph: b.graph,
        keys,
    })
}

fn read_file_keys(keys: Option<Json>) -> Result<Option<Value>> {
    match keys {
        None | Some(Json::Null) => Ok(None),
        Some(k) => Ok(Some(read_keys(&k, &mut String::from("keys"))?)),
    }
}

/// Opens the file's plugins, in file order.
fn load_plugins(entries: &[(String, Json)], base_dir: &Path) -> Result<HashMap<String, Plugin>> {
    let mut plugins: HashMap<String, Plugin> = HashMap::with_capacity(entries.len());
    for (alias, path) in entries {
        let at = format!("plugins.{alias}");
        if plugins.contains_key(alias) {
            // Two paths for one alias: which one a task runs would depend on the reader.
            return Err(Error::new(
                ErrorKind::InvalidGraph,
                format!("{at}: the alias is declared twice"),
            ));
        }
        if alias.is_empty() || alias.contains(':') {
            return Err(Error::new(
                ErrorKind::InvalidGraph,
                format!("{at}: an alias must be non-empty and hold no ':'"),
            ));
        }
        let Json::String(path) = path else {
            return Err(Error::new(
                ErrorKind::InvalidGraph,
                format!(
                    "{at}: expected the path of a plugin library (a string), got {}",
                    json_kind(path)
                ),
            ));
        };
        let plugin = Plugin::open(base_dir.join(path)).map_err(|e| Error {
            message: format!("{at}: {}", e.message),
            ..e
        })?;
        plugins.insert(alias.clone(), plugin);
    }
    Ok(plugins)
}

// ---- the builder: what the visitors share ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Build the graph in one pass, putting off entries that name what is not known yet.
    Fast,
    /// Check the whole text; intern every key of `graph` in file order.
    Keys,
    /// With every key known: build each entry, stopping at the first malformed one.
    Entries,
}

struct Builder<'t> {
    /// The text of the fast pass, where put-off entries are read again.
    text: &'t str,
    base_dir: &'t Path,
    graph: Graph,
    /// Keys with ids below this are the keys of the file's graph (a bare string equal to one
    /// is a reference); None while they are not all known (the fast pass).
    file_keys: Option<u32>,
    /// The file's plugins by alias; None until `plugins` is read.
    plugins: Option<HashMap<String, Plugin>>,
    /// One function per `alias:symbol`, so a graph holds each once.
    funcs: Vec<Func>,
    func_ids: FxHashMap<String, u32>,
    /// The last function looked up: consecutive tasks mostly call the same one.
    last_func: Option<(String, u32)>,
    /// Entries put off by the fast pass: (key id, offset of the text just after the key).
    deferred: Vec<(u32, usize)>,
    /// The pass over keys: the first key defined twice or not a valid key.
    key_problem: Option<Error>,
    /// The pass over entries: the malformed entry that stopped it.
    failed: Option<Error>,
}

/// Why a computation was not built.
enum Stop {
    /// (fast pass) It names something not known yet: read it again when everything is.
    Later,
    Bad(Box<Problem>),
}

/// A malformed computation: what is wrong and where, innermost step first (the steps are
/// added as the problem travels out, so the path costs nothing until something is wrong).
struct Problem {
    kind: ErrorKind,
    message: String,
    steps: Vec<Step>,
}

/// One step of the path to a place inside an entry, for error messages.
enum Step {
    Arg(usize),
    Kwarg(String),
    Item(usize),
    Field(&'static str),
}

type Built<T> = std::result::Result<T, Stop>;

fn bad<T>(message: impl Into<String>) -> Built<T> {
    Err(Stop::Bad(Box::new(Problem {
        kind: ErrorKind::InvalidGraph,
        message: message.into(),
        steps: Vec::new(),
    })))
}

trait At {
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
    fn into_error(self, key: &str) -> Error {
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
enum Piece {
    Ref(u32),
    Lit(Value),
    Comp(Comp),
}

impl Piece {
    fn into_comp(self) -> Comp {
        match self {
            Piece::Ref(id) => Comp::id(TaskId(id)),
            Piece::Lit(v) => Comp::value(v),
            Piece::Comp(c) => c,
        }
    }
}

/// A task's positional arguments as read: kept as the graph's simple arguments (references
/// and literals, added without building a `Comp`) until one is anything else.
enum Args {
    Simple(SimpleArgs),
    Comps(Vec<Comp>),
}

impl Args {
    fn new() -> Args {
        Args::Simple(SimpleArgs::new())
    }

    fn len(&self) -> usize {
        match self {
            Args::Simple(a) => a.len(),
            Args::Comps(c) => c.len(),
        }
    }

    fn push(&mut self, piece: Piece) {
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

    fn into_comps(self) -> Vec<Comp> {
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

type Kwargs = Vec<(String, Comp)>;

/// An entry's computation: a task stays in pieces, so a task of references and literals (the
/// usual one) is added without building a `Comp` for it.
enum Entry {
    Piece(Piece),
    Task {
        func: u32,
        args: Args,
        kwargs: Kwargs,
    },
}

impl<'t> Builder<'t> {
    fn new(text: &'t str, base_dir: &'t Path, file_keys: Option<u32>) -> Builder<'t> {
        Builder {
            text,
            base_dir,
            graph: Graph::new(),
            file_keys,
            plugins: None,
            funcs: Vec::new(),
            func_ids: FxHashMap::default(),
            last_func: None,
            deferred: Vec::new(),
            key_problem: None,
            failed: None,
        }
    }

    /// A bare string: a reference if it is a key of the file's graph, else a string.
    fn string(&mut self, s: &str) -> Built<Piece> {
        match (self.graph.id_of(s), self.file_keys) {
            (Some(id), Some(n)) if id.0 < n => Ok(Piece::Ref(id.0)),
            (_, Some(_)) => Ok(Piece::Lit(Value::str(s))),
            // The fast pass interns only keys of the file's graph, as it reads them.
            (Some(id), None) => Ok(Piece::Ref(id.0)),
            (None, None) => Err(Stop::Later),
        }
    }

    /// `{"ref": s}`.
    fn reference(&mut self, s: &str) -> Built<Piece> {
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
            Ok(id) => Ok(Piece::Ref(id)),
            Err(e) => bad(e.message),
        }
    }

    /// The function a task's `fn` names, as an index into `funcs`.
    fn func(&mut self, name: &str) -> Built<u32> {
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

    fn task(&self, func: u32, args: Args, kwargs: Kwargs) -> Comp {
        Comp::task(&self.funcs[func as usize], args.into_comps(), kwargs)
    }

    /// Adds an entry read whole.
    fn add(&mut self, key: &str, entry: Entry) -> Result<TaskId> {
        let added = match entry {
            Entry::Task {
                func,
                args: Args::Simple(mut args),
                kwargs,
            } if kwargs.is_empty() => {
                let func = &self.funcs[func as usize];
                self.graph.add_task_simple(key, func, &mut args)
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
    fn note_key(&mut self, key: &str) {
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

    /// Reads a put-off entry again, from just after its key (`at`); None on any error.
    fn read_again(&mut self, id: u32, at: usize) -> Option<()> {
        let text = self.text;
        let rest = &text[at..];
        let colon = rest.find(|c: char| !c.is_ascii_whitespace())?;
        if rest.as_bytes()[colon] != b':' {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(&rest[colon + 1..]);
        let entry = Any(EntryShape { b: self })
            .deserialize(&mut de)
            .ok()?
            .ok()?;
        let key = self.graph.key(TaskId(id))?.to_string();
        self.add(&key, entry).ok().map(drop)
    }
}

// ---- the document ----

struct DocSeed<'b, 't> {
    b: &'b mut Builder<'t>,
    pass: Pass,
}

/// What the document holds besides the graph (small: read as JSON).
#[derive(Default)]
struct Top {
    plugins: Option<Vec<(String, Json)>>,
    keys: Option<Json>,
}

const FIELDS: &[&str] = &["plugins", "graph", "keys"];

impl<'de> DeserializeSeed<'de> for DocSeed<'_, '_> {
    type Value = Top;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Top, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_, '_> {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a graph file: an object with \"graph\" and optional \"plugins\" and \"keys\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Top, A::Error> {
        let (b, pass) = (self.b, self.pass);
        let mut top = Top::default();
        let (mut seen_plugins, mut seen_graph, mut seen_keys) = (false, false, false);
        while let Some(field) = map.next_key_seed(StrSeed)? {
            let seen = match &*field {
                "plugins" => &mut seen_plugins,
                "graph" => &mut seen_graph,
                "keys" => &mut seen_keys,
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            };
            if std::mem::replace(seen, true) {
                let name = FIELDS.iter().find(|f| **f == field).expect("a known field");
                return Err(de::Error::duplicate_field(name));
            }
            match (&*field, pass) {
                ("plugins", Pass::Entries) | ("keys", Pass::Entries) => {
                    map.next_value::<IgnoredAny>()?;
                }
                ("plugins", _) => {
                    let plugins = map.next_value_seed(PluginsSeed)?;
                    if pass == Pass::Fast {
                        // Loaded now, so the entries after it find their functions.
                        let loaded = load_plugins(&plugins, b.base_dir)
                            .map_err(|_| de::Error::custom("read again exactly"))?;
                        b.plugins = Some(loaded);
                    }
                    top.plugins = Some(plugins);
                }
                ("keys", _) => top.keys = map.next_value::<Option<Json>>()?,
                _ => map.next_value_seed(EntriesSeed { b: &mut *b, pass })?,
            }
        }
        if !seen_graph {
            return Err(de::Error::missing_field("graph"));
        }
        Ok(top)
    }
}

/// `plugins`: alias -> path, in file order, a repeated alias kept (to be refused).
struct PluginsSeed;

impl<'de> DeserializeSeed<'de> for PluginsSeed {
    type Value = Vec<(String, Json)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PluginsSeed {
    type Value = Vec<(String, Json)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Json>()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// `graph`: its entries, handled as the pass says.
struct EntriesSeed<'b, 't> {
    b: &'b mut Builder<'t>,
    pass: Pass,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object mapping keys to computations")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let b = self.b;
        let again = || de::Error::custom("read again exactly");
        while let Some(key) = map.next_key_seed(StrSeed)? {
            match self.pass {
                Pass::Keys => {
                    b.note_key(&key);
                    map.next_value_seed(Any(Check))?.ok();
                }
                Pass::Entries => {
                    let added = match map.next_value_seed(Any(EntryShape { b: &mut *b }))? {
                        Ok(entry) => b.add(&key, entry).map(drop),
                        Err(Stop::Bad(p)) => Err(p.into_error(&key)),
                        // Every key and plugin is known in this pass: nothing is put off.
                        Err(Stop::Later) => Err(Error::invalid_graph(
                            &key,
                            "could not be read (an internal error of the graph-file reader)",
                        )),
                    };
                    if let Err(e) = added {
                        b.failed = Some(e);
                        return Err(de::Error::custom("a malformed entry"));
                    }
                }
                Pass::Fast => {
                    let before = b.graph.id_count();
                    match map.next_value_seed(Any(EntryShape { b: &mut *b }))? {
                        // An id interned before is a key put off earlier: defined twice.
                        Ok(entry) => match b.add(&key, entry) {
                            Ok(id) if id.0 as usize == before => {}
                            _ => return Err(again()),
                        },
                        Err(Stop::Later) => {
                            // Only a key with no escapes lies in the text as it is.
                            let Cow::Borrowed(k) = key else {
                                return Err(again());
                            };
                            if b.graph.id_of(k).is_some() {
                                return Err(again());
                            }
                            let id = b.graph.intern(k).map_err(|_| again())?;
                            let after =
                                k.as_ptr() as usize - b.text.as_ptr() as usize + k.len() + 1;
                            b.deferred.push((id, after));
                        }
                        Err(Stop::Bad(_)) => return Err(again()),
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Computations over a few keys (some never defined), with the forms whose meaning
    /// depends on which keys the file defines.
    fn comp() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(vec![
            r#""a""#,
            r#""b""#,
            r#""c""#,
            r#""nope""#,
            r#""\u0061""#,
            r#"{"ref": "b"}"#,
            r#"{"ref": "nope"}"#,
            r#"{"lit": "a"}"#,
            r#"{"lit": ["b", {"bytes": "AA=="}]}"#,
            r#"{"bytes": "aGk="}"#,
            "1",
            "-2.5",
            "null",
            "true",
        ])
        .prop_map(str::to_string);
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop::collection::vec(inner, 0..3).prop_map(|items| format!("[{}]", items.join(", ")))
        })
    }

    /// What the one pass reads itself (so big files are not read three times): files in
    /// dependency order, references ahead (put off), string literals, escapes; not errors.
    #[test]
    fn the_one_pass_reads_every_valid_file_whose_keys_have_no_escapes() {
        let dir = Path::new(".");
        for text in [
            r#"{"graph": {"a": 1, "b": ["a", "text"], "c": {"ref": "b"}}, "keys": "c"}"#,
            r#"{"keys": "c", "graph": {"c": ["b", {"ref": "a"}], "b": ["a"], "a": "b\u0062"}}"#,
            r#"{"graph": {"a": {"ref": "nowhere"}, "b": {"lit": ["a", {"bytes": "AA=="}]}}}"#,
        ] {
            let f = one_pass(text.as_bytes(), dir).unwrap_or_else(|| panic!("{text}"));
            let exact = exact(text.as_bytes(), dir).unwrap();
            assert_eq!(written(&f), written(&exact), "{text}");
        }
        for text in [
            r#"{"graph": {"a": 1, "a": 2}}"#,
            r#"{"graph": {"a": ["b"], "a": 2, "b": 1}}"#,
            r#"{"graph": {"a": {"lit": 1, "lit": 2}}}"#,
            r#"{"graph": {"a": [1, 2}}"#,
            r#"{"graph": {}, "keys": 3}"#,
        ] {
            assert!(one_pass(text.as_bytes(), dir).is_none(), "{text}");
            assert!(exact(text.as_bytes(), dir).is_err(), "{text}");
        }
    }

    fn written(f: &GraphFile) -> String {
        super::super::write(&f.graph, f.keys.as_ref(), None).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

        /// The one pass (putting off what it cannot tell yet) builds the same graph, in the
        /// same order, as the exact passes.
        #[test]
        fn one_pass_and_exact_passes_agree(
            entries in prop::collection::vec((prop::sample::select(vec!["a", "b", "c", "d", "\\u0064"]), comp()), 0..6),
            keys_first in any::<bool>(),
        ) {
            let graph: Vec<String> = entries.iter().map(|(k, v)| format!(r#""{k}": {v}"#)).collect();
            let graph = format!("{{{}}}", graph.join(", "));
            let text = if keys_first {
                format!(r#"{{"keys": ["a", "b"], "graph": {graph}}}"#)
            } else {
                format!(r#"{{"graph": {graph}, "keys": ["a", "b"]}}"#)
            };
            let dir = Path::new(".");
            let exact = exact(text.as_bytes(), dir);
            if let Some(fast) = one_pass(text.as_bytes(), dir) {
                match exact {
                    Ok(exact) => prop_assert_eq!(written(&fast), written(&exact), "{}", text),
                    Err(e) => prop_assert!(false, "{text}: one pass read it, exactly: {}", e.message),
                }
            }
        }
    }
}
