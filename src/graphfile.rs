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

mod reader;
mod writer;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value as Json};

use crate::error::{Error, ErrorKind, Result};
use crate::graph::Graph;
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
    reader::parse(json, base_dir)
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
    writer::write(graph, keys, base_dir)
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
