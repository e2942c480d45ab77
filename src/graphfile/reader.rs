//! Reading a graph file straight into a [`Graph`]: each entry is added to the graph as it is
//! read, so no JSON tree of the document is built.
//!
//! One thing the format needs the whole document for: a bare string is a reference only if it
//! is a key of the graph, and that key may be defined later in the file. So reading goes:
//!
//! 1. **One pass, optimistic** (`fast`): it reads the text itself — the document, `graph`'s
//!    entries, and tasks whose arguments are plain strings, small integers and lists of them —
//!    and hands any other entry (and `plugins`, `keys`) to serde_json, on its own text. An
//!    entry is added at once, a bare string that is no key read so far taken as a string and
//!    noted (most are strings: "mean", a path); if one turns out to be a key defined further
//!    on, the entry is read again at the end. An entry that names something not known yet
//!    that cannot be taken as data — a `{"ref"}` to a key not read yet, a `fn` whose alias the
//!    file declares after `graph` — has its key interned (so ids stay in file order) and its
//!    place in the text noted (16 bytes), and is read again from there once every key is
//!    known. Files written in dependency order (what `write` and most producers give) are read
//!    in one pass. Any error, or anything outside what it reads exactly as serde_json does,
//!    stops this pass.
//! 2. **On any error, two exact passes** (`Pass::Keys`, then `Pass::Entries`), serde_json's
//!    deserializer driving visitors, that report what the reader has always reported, in the
//!    same order: a syntax error anywhere first (pass 1 checks the whole text, interning every
//!    key of `graph`), then `plugins`, then a key defined twice, then the first malformed entry
//!    in file order, then `keys`.
//!
//! The depth limit is serde_json's recursion limit, checked in every pass and on values read
//! through without being kept (`shape::Skip`), so deep input is an error, never a stack
//! overflow; the one pass measures a value's nesting before serde_json reads it on its own,
//! and counts it from the document's top.

mod builder;
mod computations;
mod data;
mod fast;
mod shape;
mod top;

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value as Json;

use builder::{Builder, Stop};
use computations::EntryShape;
use shape::{Any, Check, StrSeed};
use top::{json_kind, load_plugins, PluginsSeed, Top, MAX_FILE_DEPTH};

use crate::comp::TaskId;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Graph, ValidKey};
use crate::value::Value;

/// A parsed graph file: the graph and the file's default `keys`, if it has them.
pub struct GraphFile {
    pub graph: Graph,
    pub keys: Option<Value>,
}

/// Parses a graph file's text; relative plugin paths are relative to `base_dir`.
pub(super) fn parse(text: &[u8], base_dir: &Path) -> Result<GraphFile> {
    if let Some(file) = one_pass(text, Builder::new("", base_dir, None)) {
        return Ok(file);
    }
    exact(text, Builder::new("", base_dir, None))
}

/// The optimistic pass (and re-reading the entries it put off); None on any error.
fn one_pass<'t>(text: &'t [u8], mut b: Builder<'t>) -> Option<GraphFile> {
    // Checked as UTF-8 once, the text needs no check per string (serde_json's `from_str`);
    // text that is not UTF-8 is an error the exact passes report.
    b.text = std::str::from_utf8(text).ok()?;
    let top = fast::document(&mut fast::Cursor::new(b.text, 0), &mut b)?;
    if b.plugins.is_none() {
        b.plugins = Some(HashMap::new());
    }
    // Every key interned so far is a key of the file's graph.
    b.file_keys = Some(b.graph.id_count() as u32);
    // An entry that read a string as a string while it was not known to be a key is read
    // again if it is one (defined further on in the file). Before any entry is read again,
    // every key known is one of the file's.
    let strings = std::mem::take(&mut b.unsure_strings);
    let mut from = 0;
    for (id, at, to) in std::mem::take(&mut b.unsure) {
        let mut met = strings[from..to].iter();
        from = to;
        if met.any(|s| b.graph.id_of(s).is_some()) {
            b.graph.forget_definition(id);
            read_again(&mut b, id, at)?;
        }
    }
    for (id, at) in std::mem::take(&mut b.deferred) {
        read_again(&mut b, id, at)?;
    }
    let keys = read_file_keys(top.keys).ok()?;
    Some(GraphFile {
        graph: b.graph,
        keys,
    })
}

/// The exact passes: the first error, as the reader has always reported it.
fn exact(text: &[u8], mut b: Builder<'_>) -> Result<GraphFile> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let top = DocSeed {
        b: &mut b,
        pass: Pass::Keys,
    }
    .deserialize(&mut de)
    .and_then(|top| de.end().map(|()| top))
    .map_err(|e| syntax_error(text, &e))?;
    b.plugins = Some(load_plugins(&top.plugins.unwrap_or_default(), b.base_dir)?);
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

// ---- the builder: what the visitors share ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Check the whole text; intern every key of `graph` in file order.
    Keys,
    /// With every key known: build each entry, stopping at the first malformed one.
    Entries,
}

/// Reads a put-off entry again, from just after its key (`at`); None on any error.
fn read_again(b: &mut Builder<'_>, id: TaskId, at: usize) -> Option<()> {
    let mut c = fast::Cursor::new(b.text, at);
    c.expect(b':')?;
    let key = b.graph.key(id)?.to_string();
    // Interned, so checked.
    let key = ValidKey::nul_free(&key).ok()?;
    fast::add_entry(&mut c, b, key)?.ok().map(drop)
}

// ---- the document ----

struct DocSeed<'b, 't> {
    b: &'b mut Builder<'t>,
    pass: Pass,
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
                ("plugins", _) => top.plugins = Some(map.next_value_seed(PluginsSeed)?),
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
            }
        }
        Ok(())
    }
}

// ---- syntax errors and `keys` ----

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
            r#"{"fn": "t:f", "args": ["a", 1, "nope"]}"#,
            r#"{"args": ["d"], "fn": "t:f"}"#,
            r#"{"fn": "t:f", "args": ["b"], "kwargs": {"k": "c"}}"#,
            r#"{"fn": "t:f", "args": [], "args": []}"#,
            r#"{"fn": "t:f", "ref": "a"}"#,
            "1",
            "-0",
            "12345678901234567890",
            "-2.5",
            "1e-320",
            "null",
            "true",
        ])
        .prop_map(str::to_string);
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                // A task over them: read by hand when they are plain strings and integers.
                prop::collection::vec(inner, 0..3).prop_map(|items| format!(
                    r#"{{"fn": "t:f", "args": [{}]}}"#,
                    items.join(", ")
                )),
            ]
        })
    }

    /// A builder that knows the function `t:f`: a plugin's function in name only (no library
    /// is loaded), so tasks can be read, compared and written back without building a plugin.
    fn builder(dir: &Path) -> Builder<'_> {
        unsafe extern "C" fn f(_: *mut crate::abi::daskr_call_t, _: *mut std::ffi::c_void) {}
        let origin = crate::func::Origin {
            path: Path::new("/t/libt.so").into(),
            plugin: "t".into(),
            symbol: "f".into(),
            alias: Some("t".into()),
            library: std::sync::Arc::new(()),
        };
        let mut b = Builder::new("", dir, None);
        b.funcs
            .push(crate::func::Func::from_plugin("t:f", f, origin, None));
        b.func_ids.insert("t:f".to_string(), 0);
        b
    }

    fn fast(text: &str) -> Option<GraphFile> {
        one_pass(text.as_bytes(), builder(Path::new(".")))
    }

    fn exactly(text: &str) -> Result<GraphFile> {
        exact(text.as_bytes(), builder(Path::new(".")))
    }

    /// What the one pass reads itself (so big files are not read three times): files in
    /// dependency order, references ahead (read again), string literals, escapes; not errors.
    #[test]
    fn the_one_pass_reads_every_valid_file_whose_keys_have_no_escapes() {
        for text in [
            r#"{"graph": {"a": 1, "b": ["a", "text"], "c": {"ref": "b"}}, "keys": "c"}"#,
            r#"{"keys": "c", "graph": {"c": ["b", {"ref": "a"}], "b": ["a"], "a": "b\u0062"}}"#,
            r#"{"graph": {"a": {"ref": "nowhere"}, "b": {"lit": ["a", {"bytes": "AA=="}]}}}"#,
            r#"{"graph": {"a": {"fn": "t:f", "args": [1, "b", "c"]}, "b": {"args": ["a"], "fn": "t:f"}, "c": 2}}"#,
            r#"{"graph": {"a": {"fn": "t:f", "args": [1.5, [2]], "kwargs": {"k": "a"}}, "b": {"fn": "t:f"}}}"#,
            r#"{"graph": {"a": 1, "b": {"kwargs": {"k": "a", "m": ["c", "x", []]}, "fn": "t:f", "args": [["a", 2, ["c"]], []]}, "c": {"fn": "t:f", "args": [[[[[["a"]]]]]]}}}"#,
            r#"{"graph": {"b": {"fn": "t:f", "args": [["a"]], "kwargs": {"k": "a"}}, "a": {"fn": "t:f", "kwargs": {"k": ["b"]}}}}"#,
            // Strings that are no key (read as strings once), beside one that is a key further
            // on (its entry read again), in the usual task and in one read by serde_json.
            r#"{"graph": {"a": {"fn": "t:f", "args": ["x", "b"], "kwargs": {"k": "y"}}, "c": {"fn": "t:f", "args": ["x"], "kwargs": {"k": "y"}}, "d": {"fn": "t:f", "args": [{"lit": 1}, "z", "b"]}, "e": [1.5, "b\u0062", "b"], "b": 2}}"#,
        ] {
            let f = fast(text).unwrap_or_else(|| panic!("{text}"));
            let e = exactly(text).unwrap();
            assert_eq!(written(&f), written(&e), "{text}");
            // An entry read again (a string in it was a key further on) counts once.
            assert_eq!(f.graph.len(), e.graph.len(), "{text}");
        }
        for text in [
            r#"{"graph": {"a": 1, "a": 2}}"#,
            r#"{"graph": {"a": ["b"], "a": 2, "b": 1}}"#,
            r#"{"graph": {"a": {"lit": 1, "lit": 2}}}"#,
            r#"{"graph": {"a": {"fn": "t:f", "fn": "t:f"}}}"#,
            r#"{"graph": {"a": {"fn": "t:f", "args": [1], "args": [2]}}}"#,
            r#"{"graph": {"a": {"fn": "t:f", "args": [1,]}}}"#,
            r#"{"graph": {"a": {"fn": "t:f", "kwargs": {"k": 1, "k": 2}}}}"#,
            r#"{"graph": {"a": {"fn": "t:f", "kwargs": {"": 1}}}}"#,
            r#"{"graph": {"a": {"fn": "t:f", "kwargs": {"k": 1}, "kwargs": {}}}}"#,
            r#"{"graph": {"a": {"fn": "t:f", "args": [[1,]]}}}"#,
            r#"{"graph": {"a": {"fn": "u:f", "args": [1]}}}"#,
            r#"{"graph": {"a": [1, 2}}"#,
            r#"{"graph": {}, "keys": 3}"#,
            r#"{"graph": {}, "keys": null, "keys": null}"#,
            r#"{"graph": {}, "graph": {}}"#,
            r#"{"graph": {}, "other": 1}"#,
            r#"{"graph": {}} x"#,
            r#"{"graph": {},}"#,
        ] {
            assert!(fast(text).is_none(), "{text}");
            assert!(exactly(text).is_err(), "{text}");
        }
    }

    /// Texts where JSON's rules are narrow: the one pass reads what the exact passes read,
    /// as they read it, and whatever they refuse, it refuses (hands over).
    #[test]
    fn the_one_pass_reads_numbers_strings_and_nesting_as_the_exact_passes_do() {
        let mut values: Vec<String> = [
            // Integers: the edges of i64 and u64, beyond them (floats), -0 (a float),
            // leading zeros and other malformed numbers.
            "0",
            "-0",
            "1",
            "-1",
            "00",
            "01",
            "-01",
            "-",
            "+1",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "100000000000000000000000",
            // Floats: exact parsing of long mantissas, subnormals, the largest, overflow.
            "1.0",
            "-0.0",
            "0.1",
            "1e5",
            "1E+5",
            "1e-5",
            "1.",
            ".5",
            "1.e5",
            "1e",
            "2.5e-3x",
            "0.30000000000000004",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "4.9406564584124654e-324",
            "5e-324",
            "2e-324",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1e309",
            "-1e400",
            "1e-400",
            "9007199254740993",
            "9007199254740992.5",
            "0.1000000000000000055511151231257827",
            "3.141592653589793238462643383279502884197169399375105820974944592307816406286",
            // Literals, and what is not one.
            "true",
            "false",
            "null",
            "nul",
            "True",
            "NaN",
            "Infinity",
            // Strings: escapes, surrogates (paired, lone, reversed), raw control characters,
            // non-ASCII, and text that is not a string.
            r#""a""#,
            r#""""#,
            r#""\u0061""#,
            r#""\n\t\"\\\/""#,
            r#""\ud83d\ude00""#,
            r#""\ud83d""#,
            r#""\ude00\ud83d""#,
            r#""\x""#,
            "\"a\u{1}b\"",
            "\"tab\there\"",
            r#""é😀""#,
            r#""a"#,
            r#"'a'"#,
            // Whitespace JSON has, and some it has not.
            "[ 1 ,\n2\t,\r3 ]",
            "[1,\u{c}2]",
            "[1,\u{a0}2]",
            "\u{feff}1",
            // Lists and objects.
            "[]",
            "[1,]",
            "[,1]",
            "[[]]",
            "{}",
            r#"{"lit": {}}"#,
            r#"{"lit": {"a": 1, "a": 2}}"#,
            r#"{"lit": [1, {"bytes": "aGk="}]}"#,
            r#"{"bytes": "!"}"#,
            r#"{"ref": "a"}"#,
            r#"{"map": {"x": "a", "y": 1}}"#,
            r#"{1: 2}"#,
            r#"{"fn": "t:f", "args": [1 2]}"#,
        ]
        .iter()
        .map(|v| v.to_string())
        .collect();
        // Nesting at the limit and one past it (an entry is two levels down), in a literal
        // and in a task's arguments.
        let depth = MAX_FILE_DEPTH;
        for levels in [depth - 3, depth - 2, depth - 1] {
            values.push(format!(
                "{{\"lit\": {}1{}}}",
                "[".repeat(levels),
                "]".repeat(levels)
            ));
            values.push(format!(
                "{{\"fn\": \"t:f\", \"args\": {}1{}}}",
                "[".repeat(levels),
                "]".repeat(levels)
            ));
        }
        for v in &values {
            for text in [
                format!(r#"{{"graph": {{"a": 1, "b": {v}}}, "keys": "b"}}"#),
                // As a task's argument, read by hand or not.
                format!(r#"{{"graph": {{"a": 1, "b": {{"fn": "t:f", "args": ["a", {v}]}}}}}}"#),
                // In an entry put off (it names "c", defined after it), read again on its own.
                format!(r#"{{"graph": {{"b": ["c", {v}], "c": 1}}}}"#),
                format!(r#"{{"graph": {{"a": 1}}, "keys": {v}}}"#),
            ] {
                match (fast(&text), exactly(&text)) {
                    (Some(f), Ok(e)) => assert_eq!(written(&f), written(&e), "{text}"),
                    (Some(_), Err(e)) => panic!("{text}: read in one pass, exactly: {}", e.message),
                    // Its keys have no escapes: a file read exactly is read in one pass.
                    (None, Ok(_)) => panic!("{text}: read exactly, not in one pass"),
                    (None, Err(_)) => {}
                }
            }
        }
        // Nesting: 127 levels are read in one pass, 128 are refused.
        let nested = |levels: usize| {
            format!(
                r#"{{"graph": {{"a": {{"lit": {}1{}}}}}}}"#,
                "[".repeat(levels - 3),
                "]".repeat(levels - 3)
            )
        };
        assert!(fast(&nested(depth)).is_some());
        assert!(exactly(&nested(depth)).is_ok());
        assert!(fast(&nested(depth + 1)).is_none());
        let e = exactly(&nested(depth + 1)).err().expect("too deep");
        assert!(e.message.contains("nests deeper than"), "{}", e.message);
        // Numbers the one pass reads by hand are ints, as serde_json reads them.
        let f = fast(r#"{"graph": {"a": {"fn": "t:f", "args": [0, -7, 123456789012345678]}}}"#)
            .unwrap();
        let back: Json = serde_json::from_str(&written(&f)).unwrap();
        let ints = serde_json::json!([0, -7, 123456789012345678i64]);
        assert_eq!(back["graph"]["a"]["args"], ints);
    }

    /// Random byte edits of small files (the fuzzer's way, seeded): whatever the one pass
    /// reads, the exact passes read the same.
    #[test]
    fn the_one_pass_agrees_with_the_exact_passes_on_mutated_files() {
        use rand::{Rng, SeedableRng};
        let seeds = [
            r#"{"plugins": {}, "graph": {"a": {"fn": "t:f", "args": [1, -2]}, "b": {"fn": "t:f", "args": ["a", "x"]}, "c": ["b", 2.5, {"lit": {"k": [null]}}]}, "keys": ["c"]}"#,
            r#"{"graph": {"d": {"args": ["e"], "fn": "t:f"}, "e": {"fn": "t:f", "args": [[0]], "kwargs": {"n": "d"}}, "f": {"ref": "e"}}, "keys": "d"}"#,
            r#"{"graph": {"a": {"fn": "t:f", "args": [7]}, "b": {"fn": "t:f", "args": ["a", ["a", 1]], "kwargs": {"k": ["b2"]}}, "b2": {"fn": "t:f", "args": ["a"]}}}"#,
        ];
        let bytes: &[u8] = b"{}[],:\" 0-19e.\\u\n\tab";
        let mut rng = rand::rngs::SmallRng::seed_from_u64(13);
        let mut read = 0;
        for round in 0..30_000 {
            let mut text = seeds[round % seeds.len()].as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..text.len());
                match rng.random_range(0..3) {
                    0 => text[i] = bytes[rng.random_range(0..bytes.len())],
                    1 => text.insert(i, bytes[rng.random_range(0..bytes.len())]),
                    _ => drop(text.remove(i)),
                }
            }
            let Ok(text) = String::from_utf8(text) else {
                continue;
            };
            if let Some(f) = fast(&text) {
                read += 1;
                match exactly(&text) {
                    Ok(e) => assert_eq!(written(&f), written(&e), "{text}"),
                    Err(e) => panic!("{text}: read in one pass, exactly: {}", e.message),
                }
            }
        }
        // Enough of them are still files for the comparison to mean something.
        assert!(read > 1500, "{read}");
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
            let exact = exactly(&text);
            if let Some(fast) = fast(&text) {
                match exact {
                    Ok(exact) => prop_assert_eq!(written(&fast), written(&exact), "{}", text),
                    Err(e) => prop_assert!(false, "{text}: one pass read it, exactly: {}", e.message),
                }
            }
        }
    }
}
