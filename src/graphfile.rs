//! Graph files: the JSON encoding of a graph of plugin tasks (docs/graph-format.md),
//! read into a `Graph` and written back.
//!
//! - A bare JSON string is a reference if it equals a key of the file's graph, else a string
//!   literal (Dask's rule); `{"ref": k}`, `{"lit": v}` and `{"bytes": b64}` say it explicitly.
//! - A task is `{"fn": "alias:symbol", "args": [...], "kwargs": {...}}`; aliases come from the
//!   file's `plugins` (relative paths are relative to the file's folder).
//! - Depth: a graph file nests at most [`MAX_FILE_DEPTH`] (127) JSON levels, the document's
//!   own object and the `graph` object included — serde_json's recursion limit, so too-deep
//!   input is an error found while parsing, never a stack overflow. A computation therefore
//!   nests at most 125 levels (an inline task takes two: its object and its `args` array),
//!   well inside the engine's [`MAX_NESTING`](crate::MAX_NESTING).
//! - Every malformed input is an `invalid_graph` error naming the key and the place in it
//!   (`key 'z': args[1].kwargs.scale: ...`), or a `plugin` error for a plugin that cannot be
//!   loaded or an unknown alias or symbol.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::comp::Comp;
use crate::error::{Error, ErrorKind, Result};
use crate::func::Func;
use crate::graph::{Graph, TaskCall, View};
use crate::plugin::Plugin;
use crate::value::Value;

/// How deeply a graph file may nest, in JSON levels (arrays and objects), the document's own
/// object included (serde_json's recursion limit).
pub const MAX_FILE_DEPTH: usize = crate::abi::DASKR_GRAPH_FILE_MAX_DEPTH as usize;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A parsed graph file: the graph and the file's default `keys`, if it has them.
pub struct GraphFile {
    pub graph: Graph,
    pub keys: Option<Value>,
}

/// Reads the graph file at `path`; relative plugin paths are relative to its folder.
pub fn read(path: impl AsRef<Path>) -> Result<GraphFile> {
    let path = path.as_ref();
    let text = std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::InvalidGraph,
            format!("cannot read graph file '{}': {e}", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parse(&text, &dir)
}

/// Parses a graph file's text; relative plugin paths are relative to `base_dir`.
pub fn parse(json: &[u8], base_dir: &Path) -> Result<GraphFile> {
    let doc: Document = serde_json::from_slice(json).map_err(|e| syntax_error(json, &e))?;
    let mut plugins: HashMap<String, Plugin> = HashMap::new();
    for (alias, path) in &doc.plugins {
        let at = format!("plugins.{alias}");
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
        let full = base_dir.join(path);
        let plugin = Plugin::open(&full).map_err(|e| Error {
            message: format!("{at}: {}", e.message),
            ..e
        })?;
        plugins.insert(alias.clone(), plugin);
    }

    let mut names: HashSet<&str> = HashSet::with_capacity(doc.graph.0.len());
    let mut graph = Graph::new();
    for (key, _) in &doc.graph.0 {
        if !names.insert(key.as_str()) {
            return Err(Error::invalid_graph(
                key,
                "the key is defined twice in \"graph\"",
            ));
        }
        // Interning in file order keeps the file's order of entries in the graph.
        graph
            .intern(key)
            .map_err(|e| Error::invalid_graph(key, e.message))?;
    }
    let mut reader = Reader {
        names: &names,
        plugins: &plugins,
        funcs: HashMap::new(),
        key: "",
        path: Vec::new(),
    };
    for (key, json) in &doc.graph.0 {
        reader.key = key;
        let comp = reader.comp(json)?;
        graph.add(key, comp).map_err(|e| match e.kind {
            ErrorKind::InvalidArgument => Error::invalid_graph(key, e.message),
            _ => e,
        })?;
    }
    let keys = match &doc.keys {
        None | Some(Json::Null) => None,
        Some(k) => Some(read_keys(k, &mut String::from("keys"))?),
    };
    Ok(GraphFile { graph, keys })
}

/// The top-level object. Unknown fields are refused (a typo such as "key" would otherwise be
/// silently ignored).
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a graph file: an object with \"graph\" and optional \"plugins\" and \"keys\""
)]
struct Document {
    #[serde(default)]
    plugins: Map<String, Json>,
    graph: Entries,
    #[serde(default)]
    keys: Option<Json>,
}

/// The `graph` object's entries in file order, duplicates kept (so they can be reported).
struct Entries(Vec<(String, Json)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Entries, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object mapping keys to computations")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Json>()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON syntax or shape error, with the graph key it happened in when one can be found.
fn syntax_error(text: &[u8], e: &serde_json::Error) -> Error {
    let mut message = e.to_string();
    if message.starts_with("recursion limit exceeded") {
        message = format!(
            "nests deeper than {MAX_FILE_DEPTH} JSON levels, the limit for a graph file (at \
             line {} column {})",
            e.line(),
            e.column()
        );
    }
    match graph_key_at(text, e.line(), e.column()) {
        Some(key) if e.line() > 0 => Error::invalid_graph(&key, message),
        _ => Error::new(
            ErrorKind::InvalidGraph,
            format!("invalid graph file: {message}"),
        ),
    }
}

/// The key of the `graph` entry whose text holds the position (1-based line, column), found
/// by a forgiving scan of the text (it may be malformed): None outside `graph`'s entries.
fn graph_key_at(text: &[u8], line: usize, column: usize) -> Option<String> {
    let mut offset = 0;
    for _ in 1..line {
        offset += text[offset..].iter().position(|&b| b == b'\n')? + 1;
    }
    let end = (offset + column).min(text.len());
    let (mut depth, mut i) = (0usize, 0usize);
    let mut top_key: Option<String> = None;
    let mut entry: Option<String> = None;
    let mut last_string: Option<(usize, String)> = None;
    while i < end {
        match text[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                let raw = &text[start..(i + 1).min(text.len())];
                let s = serde_json::from_slice::<String>(raw)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&raw[1..]).into_owned());
                last_string = Some((depth, s));
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth < 2 {
                    entry = None;
                }
                if depth < 1 {
                    top_key = None;
                }
            }
            b':' => match last_string.take() {
                Some((1, s)) => {
                    top_key = Some(s);
                    entry = None;
                }
                Some((2, s)) if top_key.as_deref() == Some("graph") => entry = Some(s),
                _ => {}
            },
            _ => {}
        }
        i += 1;
    }
    entry.filter(|_| depth >= 2)
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// One step of the path to a place inside an entry, for error messages.
enum Step<'j> {
    Arg(usize),
    Kwarg(&'j str),
    Item(usize),
    Field(&'static str),
}

struct Reader<'a, 'j> {
    names: &'a HashSet<&'j str>,
    plugins: &'a HashMap<String, Plugin>,
    /// One function per `alias:symbol`, so a graph holds each once.
    funcs: HashMap<&'j str, Func>,
    key: &'j str,
    path: Vec<Step<'j>>,
}

impl<'a, 'j> Reader<'a, 'j> {
    fn place(&self) -> String {
        let mut s = String::new();
        for step in &self.path {
            match step {
                Step::Item(i) => {
                    let _ = write!(s, "[{i}]");
                }
                other => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    let _ = match other {
                        Step::Arg(i) => write!(s, "args[{i}]"),
                        Step::Kwarg(n) => write!(s, "kwargs.{n}"),
                        Step::Field(f) => write!(s, "{f}"),
                        Step::Item(_) => unreachable!(),
                    };
                }
            }
        }
        s
    }

    fn fail(&self, message: impl std::fmt::Display) -> Error {
        let place = self.place();
        if place.is_empty() {
            Error::invalid_graph(self.key, message.to_string())
        } else {
            Error::invalid_graph(self.key, format!("{place}: {message}"))
        }
    }

    fn within<T>(&mut self, step: Step<'j>, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.path.push(step);
        let r = f(self);
        self.path.pop();
        r
    }

    fn comp(&mut self, json: &'j Json) -> Result<Comp> {
        Ok(match json {
            Json::String(s) if self.names.contains(s.as_str()) => Comp::key(s.as_str()),
            Json::Array(items) => {
                let mut comps = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    comps.push(self.within(Step::Item(i), |r| r.comp(item))?);
                }
                Comp::list(comps)
            }
            Json::Object(obj) => self.object(obj)?,
            scalar => Comp::value(self.scalar(scalar)?),
        })
    }

    fn scalar(&self, json: &Json) -> Result<Value> {
        Ok(match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Value::str(s),
            other => return Err(self.fail(format!("unexpected {}", json_kind(other)))),
        })
    }

    fn only_field(&self, obj: &Map<String, Json>, field: &str) -> Result<()> {
        if obj.len() == 1 {
            return Ok(());
        }
        let others: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| *k != field)
            .collect();
        Err(self.fail(format!(
            "{{\"{field}\": ...}} must have no other field (found: {})",
            others.join(", ")
        )))
    }

    fn object(&mut self, obj: &'j Map<String, Json>) -> Result<Comp> {
        if obj.contains_key("fn") {
            return self.task(obj);
        }
        if let Some(target) = obj.get("ref") {
            self.only_field(obj, "ref")?;
            return self.within(Step::Field("ref"), |r| match target {
                Json::String(k) if !k.is_empty() && !k.contains('\0') => Ok(Comp::key(k.as_str())),
                Json::String(_) => Err(r.fail("a key must be non-empty and hold no NUL")),
                other => Err(r.fail(format!(
                    "expected the key referred to (a string), got {}",
                    json_kind(other)
                ))),
            });
        }
        if let Some(v) = obj.get("lit") {
            self.only_field(obj, "lit")?;
            return self.within(Step::Field("lit"), |r| Ok(Comp::value(r.data(v)?)));
        }
        if let Some(v) = obj.get("bytes") {
            self.only_field(obj, "bytes")?;
            return self.within(Step::Field("bytes"), |r| Ok(Comp::value(r.bytes(v)?)));
        }
        let fields: Vec<&str> = obj.keys().map(String::as_str).collect();
        Err(self.fail(format!(
            "an object must be a task {{\"fn\": \"alias:symbol\", ...}}, {{\"ref\": key}}, \
             {{\"lit\": value}} or {{\"bytes\": base64}}; this one has {}",
            if fields.is_empty() {
                "no field".to_string()
            } else {
                format!("the fields: {}", fields.join(", "))
            }
        )))
    }

    fn bytes(&self, v: &Json) -> Result<Value> {
        match v {
            Json::String(s) => B64
                .decode(s)
                .map(|b| Value::bytes(&b))
                .map_err(|e| self.fail(format!("not valid base64: {e}"))),
            other => Err(self.fail(format!(
                "expected base64 text (a string), got {}",
                json_kind(other)
            ))),
        }
    }

    /// A JSON value taken as data (inside `lit`): arrays are lists, strings are strings,
    /// `{"bytes": b64}` is bytes.
    fn data(&mut self, v: &'j Json) -> Result<Value> {
        match v {
            Json::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    values.push(self.within(Step::Item(i), |r| r.data(item))?);
                }
                Value::list(values).map_err(|e| self.fail(e.message))
            }
            Json::Object(obj) => match obj.get("bytes") {
                Some(b) if obj.len() == 1 => self.within(Step::Field("bytes"), |r| r.bytes(b)),
                _ => Err(self.fail(
                    "an object inside \"lit\" must be {\"bytes\": base64}: values have no maps",
                )),
            },
            scalar => self.scalar(scalar),
        }
    }

    fn task(&mut self, obj: &'j Map<String, Json>) -> Result<Comp> {
        if let Some(other) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "fn" | "args" | "kwargs"))
        {
            return Err(self.fail(format!(
                "a task has the unknown field '{other}' (expected fn, args, kwargs)"
            )));
        }
        let func = self.within(Step::Field("fn"), |r| r.func(&obj["fn"]))?;
        let args = match obj.get("args") {
            None => Vec::new(),
            Some(Json::Array(items)) => {
                let mut args = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    args.push(self.within(Step::Arg(i), |r| r.comp(item))?);
                }
                args
            }
            Some(other) => {
                return self.within(Step::Field("args"), |r| {
                    Err(r.fail(format!("expected an array, got {}", json_kind(other))))
                })
            }
        };
        let kwargs = match obj.get("kwargs") {
            None => Vec::new(),
            Some(Json::Object(kw)) => {
                let mut kwargs = Vec::with_capacity(kw.len());
                for (name, v) in kw {
                    let comp = self.within(Step::Kwarg(name), |r| {
                        if name.is_empty() || name.contains('\0') {
                            return Err(r.fail("a keyword name must be non-empty and hold no NUL"));
                        }
                        r.comp(v)
                    })?;
                    kwargs.push((name.clone(), comp));
                }
                kwargs
            }
            Some(other) => {
                return self.within(Step::Field("kwargs"), |r| {
                    Err(r.fail(format!(
                        "expected an object of keyword arguments, got {}",
                        json_kind(other)
                    )))
                })
            }
        };
        Ok(Comp::task(&func, args, kwargs))
    }

    fn func(&mut self, json: &'j Json) -> Result<Func> {
        let Json::String(name) = json else {
            return Err(self.fail(format!(
                "expected \"alias:symbol\" (a string), got {}",
                json_kind(json)
            )));
        };
        if let Some(f) = self.funcs.get(name.as_str()) {
            return Ok(f.clone());
        }
        let Some((alias, symbol)) = name
            .split_once(':')
            .filter(|(a, s)| !a.is_empty() && !s.is_empty())
        else {
            return Err(self.fail(format!(
                "'{name}' does not name a plugin task: expected \"alias:symbol\""
            )));
        };
        let plugin_error = |message: String| {
            let place = self.place();
            Error::new(
                ErrorKind::Plugin,
                format!("key '{}': {place}: {message}", self.key),
            )
            .with_key(self.key)
        };
        let Some(plugin) = self.plugins.get(alias) else {
            let mut known: Vec<&str> = self.plugins.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(plugin_error(format!(
                "'{name}': no plugin has the alias '{alias}' (\"plugins\" has: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        let f = plugin
            .func_as(symbol, alias)
            .map_err(|e| plugin_error(format!("'{name}': {}", e.message)))?;
        self.funcs.insert(name, f.clone());
        Ok(f)
    }
}

/// `keys`: a key or a nested list of keys.
fn read_keys(json: &Json, place: &mut String) -> Result<Value> {
    match json {
        Json::String(k) if !k.is_empty() => Ok(Value::str(k)),
        Json::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = place.len();
                let _ = write!(place, "[{i}]");
                values.push(read_keys(item, place)?);
                place.truncate(len);
            }
            Value::list(values).map_err(|e| Error::new(ErrorKind::InvalidGraph, e.message))
        }
        other => Err(Error::new(
            ErrorKind::InvalidGraph,
            format!(
                "{place}: expected a key (a non-empty string) or a list of keys, got {}",
                match other {
                    Json::String(_) => "an empty string",
                    o => json_kind(o),
                }
            ),
        )),
    }
}

// ---- writing ----

/// Writes `graph` (and default `keys`, if given) as a graph file. Every task function must
/// come from a plugin. Plugin paths are written relative to `base_dir` when they lie inside
/// it, else absolute. Parsing the text again gives the same graph.
pub fn write(graph: &Graph, keys: Option<&Value>, base_dir: Option<&Path>) -> Result<String> {
    let doc = to_json(graph, keys, base_dir)?;
    Ok(serde_json::to_string_pretty(&doc).expect("a JSON value always serializes") + "\n")
}

/// `write`, as a JSON value.
pub fn to_json(graph: &Graph, keys: Option<&Value>, base_dir: Option<&Path>) -> Result<Json> {
    let base_dir = base_dir.map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()));
    let mut w = Writer {
        graph,
        aliases: HashMap::new(),
        plugins: Map::new(),
        base_dir,
        key: "",
    };
    let mut entries = Map::new();
    for id in 0..graph.id_count() as u32 {
        if !graph.is_defined(id) {
            continue;
        }
        w.key = graph.key_name(id);
        let json = w.expr(graph.entry(id), 2)?;
        entries.insert(w.key.to_string(), json);
    }
    let mut doc = Map::new();
    if !w.plugins.is_empty() {
        doc.insert(
            "plugins".into(),
            Json::Object(std::mem::take(&mut w.plugins)),
        );
    }
    doc.insert("graph".into(), Json::Object(entries));
    if let Some(keys) = keys {
        doc.insert("keys".into(), keys_json(keys)?);
    }
    Ok(Json::Object(doc))
}

fn keys_json(keys: &Value) -> Result<Json> {
    match keys {
        // The reader refuses an empty key: so does the writer, or its file would not read back.
        Value::Str(_) if keys.as_str().is_some_and(str::is_empty) => Err(Error::invalid_argument(
            "keys: a key must be a non-empty string, not \"\"",
        )),
        Value::Str(_) => Ok(Json::String(keys.as_str().unwrap_or_default().into())),
        Value::List(_) => Ok(Json::Array(
            keys.as_list()
                .unwrap_or_default()
                .iter()
                .map(keys_json)
                .collect::<Result<_>>()?,
        )),
        other => Err(Error::invalid_argument(format!(
            "keys must be a key (string) or a list of keys, not a {}",
            other.kind().name()
        ))),
    }
}

struct Writer<'g> {
    graph: &'g Graph,
    /// Plugin path -> alias given to it in this file.
    aliases: HashMap<PathBuf, String>,
    plugins: Map<String, Json>,
    base_dir: Option<PathBuf>,
    key: &'g str,
}

impl Writer<'_> {
    fn fail(&self, message: impl Into<String>) -> Error {
        Error::invalid_graph(self.key, message)
    }

    fn deeper(&self, depth: usize) -> Result<usize> {
        if depth >= MAX_FILE_DEPTH {
            return Err(self.fail(format!(
                "nests too deeply to be written as a graph file (the limit is {MAX_FILE_DEPTH} \
                 JSON levels)"
            )));
        }
        Ok(depth + 1)
    }

    /// `depth`: JSON levels already open around this expression.
    fn expr(&mut self, view: View<'_>, depth: usize) -> Result<Json> {
        let graph = self.graph;
        Ok(match view {
            View::Lit(v) => self.literal(v, depth)?,
            View::Ref(id) => {
                let name = self.graph.key_name(id);
                if self.graph.is_defined(id) {
                    Json::String(name.into())
                } else {
                    let mut o = Map::new();
                    o.insert("ref".into(), Json::String(name.into()));
                    self.deeper(depth)?;
                    Json::Object(o)
                }
            }
            View::List { items: at, len } => {
                let inner = self.deeper(depth)?;
                let mut items = Vec::with_capacity(len as usize);
                for e in graph.items(at, len) {
                    items.push(self.expr(e, inner)?);
                }
                Json::Array(items)
            }
            View::Task(call) => {
                let TaskCall {
                    func,
                    nargs,
                    nkwargs,
                    names,
                    ..
                } = call;
                let obj_depth = self.deeper(depth)?;
                let inner = self.deeper(obj_depth)?;
                let mut o = Map::new();
                o.insert(
                    "fn".into(),
                    Json::String(self.func_name(self.graph.func(func))?),
                );
                let mut children = graph.args(&call);
                let mut args = Vec::with_capacity(nargs as usize);
                for e in children.by_ref().take(nargs as usize) {
                    args.push(self.expr(e, inner)?);
                }
                o.insert("args".into(), Json::Array(args));
                if nkwargs > 0 {
                    let mut kw = Map::new();
                    let graph = self.graph;
                    for (name, e) in graph.kwnames(names, nkwargs).zip(children) {
                        let name = name.strip_suffix(&[0]).unwrap_or(name);
                        kw.insert(
                            String::from_utf8_lossy(name).into_owned(),
                            self.expr(e, inner)?,
                        );
                    }
                    o.insert("kwargs".into(), Json::Object(kw));
                }
                Json::Object(o)
            }
        })
    }

    /// A literal as a computation: a string equal to a key, and any list, need `lit`.
    fn literal(&mut self, v: &Value, depth: usize) -> Result<Json> {
        match v {
            Value::Str(_) => {
                let s = v.as_str().unwrap_or_default();
                if self.graph.contains(s) {
                    self.deeper(depth)?;
                    Ok(single("lit", Json::String(s.into())))
                } else {
                    Ok(Json::String(s.into()))
                }
            }
            Value::List(_) => {
                let inner = self.deeper(depth)?;
                Ok(single("lit", self.data(v, inner)?))
            }
            _ => self.data(v, depth),
        }
    }

    /// A value as data (inside `lit`).
    fn data(&self, v: &Value, depth: usize) -> Result<Json> {
        Ok(match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(x) => match serde_json::Number::from_f64(*x) {
                Some(n) => Json::Number(n),
                None => return Err(self.fail(format!("the float {x} cannot be written as JSON"))),
            },
            Value::Str(_) => Json::String(v.as_str().unwrap_or_default().into()),
            Value::Bytes(_) => {
                self.deeper(depth)?;
                single(
                    "bytes",
                    Json::String(B64.encode(v.as_bytes().unwrap_or_default())),
                )
            }
            Value::List(_) => {
                let inner = self.deeper(depth)?;
                Json::Array(
                    v.as_list()
                        .unwrap_or_default()
                        .iter()
                        .map(|item| self.data(item, inner))
                        .collect::<Result<_>>()?,
                )
            }
            Value::Pointer(p) => {
                return Err(self.fail(format!(
                    "a pointer value ('{}') cannot be written to a graph file",
                    p.tag()
                )))
            }
        })
    }

    fn func_name(&mut self, func: &Func) -> Result<String> {
        let Some(origin) = func.origin() else {
            return Err(self.fail(format!(
                "the function '{}' does not come from a plugin, so it cannot be written to a \
                 graph file",
                func.name()
            )));
        };
        let path = origin.path.to_path_buf();
        if let Some(alias) = self.aliases.get(&path) {
            return Ok(format!("{alias}:{}", origin.symbol));
        }
        let wanted: String = origin
            .alias
            .as_deref()
            .unwrap_or(&origin.plugin)
            .replace(':', "_");
        let mut alias = wanted.clone();
        let mut n = 2;
        while self.plugins.contains_key(&alias) {
            alias = format!("{wanted}-{n}");
            n += 1;
        }
        let shown = match &self.base_dir {
            Some(base) => path.strip_prefix(base).unwrap_or(&path),
            None => &path,
        };
        self.plugins.insert(
            alias.clone(),
            Json::String(shown.to_string_lossy().into_owned()),
        );
        self.aliases.insert(path, alias.clone());
        Ok(format!("{alias}:{}", origin.symbol))
    }
}

fn single(field: &str, v: Json) -> Json {
    let mut o = Map::new();
    o.insert(field.into(), v);
    Json::Object(o)
}

// ---- results and errors as JSON (the `daskr` command's output) ----

/// A result as JSON: bytes as `{"bytes": base64}`, a pointer as `{"pointer": tag}`, a float
/// that JSON cannot hold (NaN, infinities) as null.
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
        Value::Str(_) => Json::String(v.as_str().unwrap_or_default().into()),
        Value::Bytes(_) => single(
            "bytes",
            Json::String(B64.encode(v.as_bytes().unwrap_or_default())),
        ),
        Value::List(_) => Json::Array(
            v.as_list()
                .unwrap_or_default()
                .iter()
                .map(value_to_json)
                .collect(),
        ),
        Value::Pointer(p) => single("pointer", Json::String(p.tag().into())),
    }
}

/// An error as graph-format.md's `{"error": {"kind", "key", "keys", "message"}}`.
pub fn error_to_json(e: &Error) -> Json {
    let mut inner = Map::new();
    inner.insert("kind".into(), Json::String(e.kind.name().into()));
    inner.insert(
        "key".into(),
        e.key
            .as_ref()
            .map_or(Json::Null, |k| Json::String(k.clone())),
    );
    inner.insert(
        "keys".into(),
        Json::Array(e.keys.iter().map(|k| Json::String(k.clone())).collect()),
    );
    inner.insert("message".into(), Json::String(e.message.clone()));
    single("error", Json::Object(inner))
}
