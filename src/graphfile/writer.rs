//! Writing a graph as a graph file: the graph's expressions serialized straight to JSON text
//! (serde_json's pretty printer), with no JSON tree of the document in between.
//!
//! `plugins` comes first in the file but is known only once every task has been seen, so a
//! first walk names the plugins, in the order their functions are first used; the second walk
//! writes. Every problem (a function from no plugin, a pointer, a NaN, too deep) is found in
//! the second walk, in entry order, and reported naming the entry's key.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::ser::{Error as _, Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::func::Func;
use crate::graph::{ArgViews, Graph, TaskCall, View};
use crate::graphfile::forms::{wrapped, MAP_TAG};
use crate::value::{Names, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// How deeply a graph file may nest (`graphfile::MAX_FILE_DEPTH`).
const MAX_FILE_DEPTH: usize = crate::abi::DASKR_GRAPH_FILE_MAX_DEPTH as usize;

/// Writes `graph` (and default `keys`, if given) as a graph file; see `graphfile::write`.
pub(super) fn write(
    graph: &Graph,
    keys: Option<&Value>,
    base_dir: Option<&Path>,
) -> Result<String> {
    let base_dir = base_dir.map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()));
    let mut w = Writer {
        graph,
        aliases: HashMap::new(),
        plugins: Map::new(),
        base_dir,
        entry: Cell::new(None),
        error: RefCell::new(None),
    };
    for id in 0..graph.id_count() as u32 {
        if graph.is_defined(id) {
            w.name_plugins(graph.entry(id), 2);
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::pretty(&mut out);
    match (Doc { w: &w, keys }).serialize(&mut ser) {
        Ok(()) => {
            out.push(b'\n');
            Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
        }
        Err(e) => Err(w
            .error
            .take()
            .unwrap_or_else(|| Error::invalid_argument(format!("cannot write the graph: {e}")))),
    }
}

struct Writer<'g> {
    graph: &'g Graph,
    /// Plugin path -> alias given to it in this file.
    aliases: HashMap<PathBuf, String>,
    plugins: Map<String, Json>,
    base_dir: Option<PathBuf>,
    /// The entry being written, for errors.
    entry: Cell<Option<u32>>,
    /// The problem that stopped the writing (serde's error carries only text).
    error: RefCell<Option<Error>>,
}

impl<'g> Writer<'g> {
    /// Stops the writing with `message`, an error naming the entry.
    fn fail<E: serde::ser::Error>(&self, message: impl Into<String>) -> E {
        let name = self.entry.get().map(|id| self.graph.key_name(id));
        let e = Error::invalid_graph(name.as_deref().unwrap_or(""), message);
        let text = e.message.clone();
        self.error.borrow_mut().get_or_insert(e);
        E::custom(text)
    }

    fn deeper<E: serde::ser::Error>(&self, depth: usize) -> std::result::Result<usize, E> {
        if depth >= MAX_FILE_DEPTH {
            return Err(self.fail(format!(
                "nests too deeply to be written as a graph file (the limit is {MAX_FILE_DEPTH} \
                 JSON levels)"
            )));
        }
        Ok(depth + 1)
    }

    /// The first walk: gives each plugin whose functions `expr` calls an alias (no errors:
    /// the second walk finds them, in order).
    fn name_plugins(&mut self, view: View<'g>, depth: usize) {
        if depth >= MAX_FILE_DEPTH {
            return;
        }
        let graph = self.graph;
        match view {
            View::Lit(_) | View::Ref(_) => {}
            View::List { items, len } => {
                for item in graph.items(items, len) {
                    self.name_plugins(item, depth + 1);
                }
            }
            View::Map { items, names } => {
                for item in graph.items(items, names.len() as u32) {
                    self.name_plugins(item, depth + 2);
                }
            }
            View::Task(call) => {
                self.name_plugin(graph.func(call.func));
                for arg in graph.args(&call) {
                    self.name_plugins(arg, depth + 2);
                }
            }
        }
    }

    fn name_plugin(&mut self, func: &Func) {
        let Some(origin) = func.origin() else {
            return;
        };
        let path = origin.path.to_path_buf();
        if self.aliases.contains_key(&path) {
            return;
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
        self.aliases.insert(path, alias);
    }

    fn func_name<E: serde::ser::Error>(&self, func: &Func) -> std::result::Result<String, E> {
        let alias = func
            .origin()
            .and_then(|o| Some((self.aliases.get(&*o.path)?, &o.symbol)));
        match alias {
            Some((alias, symbol)) => Ok(format!("{alias}:{symbol}")),
            None => Err(self.fail(format!(
                "the function '{}' does not come from a plugin, so it cannot be written to a \
                 graph file",
                func.name()
            ))),
        }
    }
}

struct Doc<'a, 'g> {
    w: &'a Writer<'g>,
    keys: Option<&'a Value>,
}

impl Serialize for Doc<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let w = self.w;
        let mut m = s.serialize_map(None)?;
        if !w.plugins.is_empty() {
            m.serialize_entry("plugins", &w.plugins)?;
        }
        m.serialize_entry("graph", &Entries(w))?;
        if let Some(keys) = self.keys {
            m.serialize_entry("keys", &Keys { w, keys })?;
        }
        m.end()
    }
}

struct Entries<'a, 'g>(&'a Writer<'g>);

impl Serialize for Entries<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let w = self.0;
        let graph = w.graph;
        let mut m = s.serialize_map(Some(graph.len()))?;
        for id in 0..graph.id_count() as u32 {
            if !graph.is_defined(id) {
                continue;
            }
            let name = graph.key_name(id);
            w.entry.set(Some(id));
            m.serialize_entry(
                &*name,
                &ExprOut {
                    w,
                    view: graph.entry(id),
                    depth: 2,
                },
            )?;
        }
        m.end()
    }
}

/// `keys`: a key or a nested list of keys.
struct Keys<'a, 'g> {
    w: &'a Writer<'g>,
    keys: &'a Value,
}

impl Serialize for Keys<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let fail = |e: Error| {
            let text = e.message.clone();
            self.w.error.borrow_mut().get_or_insert(e);
            S::Error::custom(text)
        };
        match self.keys {
            // The reader refuses an empty key: so does the writer, or its file would not read
            // back.
            Value::Str(_) if self.keys.as_str().is_some_and(str::is_empty) => Err(fail(
                Error::invalid_argument("keys: a key must be a non-empty string, not \"\""),
            )),
            Value::Str(_) => s.serialize_str(self.keys.as_str().unwrap_or_default()),
            Value::List(_) => {
                let items = self.keys.as_list().unwrap_or_default();
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for keys in items {
                    seq.serialize_element(&Keys { w: self.w, keys })?;
                }
                seq.end()
            }
            other => Err(fail(Error::invalid_argument(format!(
                "keys must be a key (string) or a list of keys, not a {}",
                other.kind().name()
            )))),
        }
    }
}

/// An expression; `depth`: JSON levels already open around it.
struct ExprOut<'a, 'g> {
    w: &'a Writer<'g>,
    view: View<'g>,
    depth: usize,
}

/// `{field: value}`.
struct Single<'a, T: ?Sized>(&'static str, &'a T);

impl<T: Serialize + ?Sized> Serialize for Single<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, self.1)?;
        m.end()
    }
}

impl Serialize for ExprOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (w, depth) = (self.w, self.depth);
        let graph = w.graph;
        match self.view {
            View::Lit(v) => Lit { w, v, depth }.serialize(s),
            View::Ref(id) => {
                let name = graph.key_name(id);
                if graph.is_defined(id) {
                    s.serialize_str(&name)
                } else {
                    w.deeper::<S::Error>(depth)?;
                    Single("ref", &*name).serialize(s)
                }
            }
            View::List { items, len } => {
                let inner = w.deeper::<S::Error>(depth)?;
                let mut seq = s.serialize_seq(Some(len as usize))?;
                for view in graph.items(items, len) {
                    seq.serialize_element(&ExprOut {
                        w,
                        view,
                        depth: inner,
                    })?;
                }
                seq.end()
            }
            View::Map { items, names } => {
                let obj_depth = w.deeper::<S::Error>(depth)?;
                let inner = w.deeper::<S::Error>(obj_depth)?;
                let entries = MapOut {
                    w,
                    names,
                    items: graph.items(items, names.len() as u32),
                    depth: inner,
                };
                Single(MAP_TAG, &entries).serialize(s)
            }
            View::Task(call) => {
                let obj_depth = w.deeper::<S::Error>(depth)?;
                let inner = w.deeper::<S::Error>(obj_depth)?;
                let fname = w.func_name::<S::Error>(graph.func(call.func))?;
                let out = CallOut {
                    w,
                    call,
                    depth: inner,
                };
                let mut m = s.serialize_map(Some(if call.nkwargs > 0 { 3 } else { 2 }))?;
                m.serialize_entry("fn", &fname)?;
                m.serialize_entry("args", &Args(&out))?;
                if call.nkwargs > 0 {
                    m.serialize_entry("kwargs", &Kwargs(&out))?;
                }
                m.end()
            }
        }
    }
}

/// A map computation's entries; `depth`: JSON levels open around them.
struct MapOut<'a, 'g> {
    w: &'a Writer<'g>,
    names: &'g Names,
    items: ArgViews<'g>,
    depth: usize,
}

impl Serialize for MapOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (w, depth) = (self.w, self.depth);
        let mut m = s.serialize_map(Some(self.names.len()))?;
        for (name, view) in self.names.iter().zip(self.items.clone()) {
            m.serialize_entry(name, &ExprOut { w, view, depth })?;
        }
        m.end()
    }
}

/// A task's arguments; `depth`: JSON levels open around them.
struct CallOut<'a, 'g> {
    w: &'a Writer<'g>,
    call: TaskCall,
    depth: usize,
}

/// `args`: the positional arguments.
struct Args<'a, 'b, 'g>(&'b CallOut<'a, 'g>);

impl Serialize for Args<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let CallOut { w, call, depth } = *self.0;
        let mut seq = s.serialize_seq(Some(call.nargs as usize))?;
        for view in w.graph.args(&call).take(call.nargs as usize) {
            seq.serialize_element(&ExprOut { w, view, depth })?;
        }
        seq.end()
    }
}

/// `kwargs`: the keyword arguments, by name.
struct Kwargs<'a, 'b, 'g>(&'b CallOut<'a, 'g>);

impl Serialize for Kwargs<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let CallOut { w, call, depth } = *self.0;
        let graph = w.graph;
        let mut m = s.serialize_map(Some(call.nkwargs as usize))?;
        let views = graph.args(&call).skip(call.nargs as usize);
        for (name, view) in graph.kwnames(call.names, call.nkwargs).zip(views) {
            let name = name.strip_suffix(&[0]).unwrap_or(name);
            m.serialize_entry(&String::from_utf8_lossy(name), &ExprOut { w, view, depth })?;
        }
        m.end()
    }
}

/// A literal as a computation: a string equal to a key, and any list, need `lit`.
struct Lit<'a, 'g> {
    w: &'a Writer<'g>,
    v: &'a Value,
    depth: usize,
}

impl Serialize for Lit<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (w, v, depth) = (self.w, self.v, self.depth);
        match v {
            Value::Str(_) => {
                let text = v.as_str().unwrap_or_default();
                if w.graph.contains(text) {
                    w.deeper::<S::Error>(depth)?;
                    Single("lit", text).serialize(s)
                } else {
                    s.serialize_str(text)
                }
            }
            Value::List(_) | Value::Map(_) => {
                let inner = w.deeper::<S::Error>(depth)?;
                Single("lit", &Data { w, v, depth: inner }).serialize(s)
            }
            _ => Data { w, v, depth }.serialize(s),
        }
    }
}

/// A value as data (inside `lit`).
struct Data<'a, 'g> {
    w: &'a Writer<'g>,
    v: &'a Value,
    depth: usize,
}

impl Serialize for Data<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (w, v, depth) = (self.w, self.v, self.depth);
        match v {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) if x.is_finite() => s.serialize_f64(*x),
            Value::Float(x) => Err(w.fail(format!("the float {x} cannot be written as JSON"))),
            Value::Str(_) => s.serialize_str(v.as_str().unwrap_or_default()),
            Value::Bytes(_) => {
                w.deeper::<S::Error>(depth)?;
                Single("bytes", &B64.encode(v.as_bytes().unwrap_or_default())).serialize(s)
            }
            Value::List(_) => {
                let inner = w.deeper::<S::Error>(depth)?;
                let items = v.as_list().unwrap_or_default();
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Data { w, v, depth: inner })?;
                }
                seq.end()
            }
            Value::Map(_) => {
                let map = v.as_map().expect("a map");
                let mut inner = w.deeper::<S::Error>(depth)?;
                if wrapped(&map) {
                    inner = w.deeper::<S::Error>(inner)?;
                    let entries = DataMap { w, v, depth: inner };
                    return Single(MAP_TAG, &entries).serialize(s);
                }
                DataMap { w, v, depth: inner }.serialize(s)
            }
            Value::Pointer(p) => Err(w.fail(format!(
                "a pointer value ('{}') cannot be written to a graph file",
                p.tag()
            ))),
        }
    }
}

/// A map value's entries as data (the object, without the wrapping `wrapped` may add).
struct DataMap<'a, 'g> {
    w: &'a Writer<'g>,
    v: &'a Value,
    depth: usize,
}

impl Serialize for DataMap<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (w, depth) = (self.w, self.depth);
        let map = self.v.as_map().expect("a map");
        let mut m = s.serialize_map(Some(map.len()))?;
        for (name, v) in map.iter() {
            m.serialize_entry(name, &Data { w, v, depth })?;
        }
        m.end()
    }
}
