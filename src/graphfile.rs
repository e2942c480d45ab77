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

mod forms;
mod reader;
mod writer;

pub use reader::GraphFile;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::value::Value;
use forms::{wrapped, B64, MAP_TAG};

/// How deeply a graph file may nest, in JSON levels (arrays and objects), the document's own
/// object included (serde_json's recursion limit).
pub const MAX_FILE_DEPTH: usize = crate::abi::DASKR_GRAPH_FILE_MAX_DEPTH as usize;

/// Reads the graph file at `path`; relative plugin paths are relative to its folder.
pub fn read(path: impl AsRef<Path>) -> Result<GraphFile> {
    let path = path.as_ref();
    // An unreadable file is `io` (fix the path), not `invalid_graph` (fix the file).
    let text = std::fs::read(path).map_err(|e| Error::io("cannot read graph file", path, &e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parse(&text, &dir)
}

/// Parses a graph file's text; relative plugin paths are relative to `base_dir`.
pub fn parse(json: &[u8], base_dir: &Path) -> Result<GraphFile> {
    reader::parse(json, base_dir)
}

// ---- writing ----

/// Writes `graph` (and default `keys`, if given) as a graph file. Every task function must
/// come from a plugin. Plugin paths are written relative to `base_dir` when they lie inside
/// it, else absolute. Parsing the text again gives the same graph.
pub fn write(graph: &Graph, keys: Option<&Value>, base_dir: Option<&Path>) -> Result<String> {
    writer::write(graph, keys, base_dir)
}

fn single(field: &str, v: Json) -> Json {
    let mut o = Map::new();
    o.insert(field.into(), v);
    Json::Object(o)
}

// ---- results and errors as JSON (the `daskr` command's output) ----

/// A result as JSON: bytes as `{"bytes": base64}`, a pointer as `{"pointer": tag}`, a float
/// that JSON cannot hold (NaN, infinities) as null, a map as an object (wrapped in
/// `{"map": ...}` when it could be read as another form, see `wrapped`).
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
        Value::Map(_) => {
            let map = v.as_map().expect("a map");
            let object = Json::Object(
                map.iter()
                    .map(|(name, v)| (name.to_string(), value_to_json(v)))
                    .collect(),
            );
            if wrapped(&map) {
                single(MAP_TAG, object)
            } else {
                object
            }
        }
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
