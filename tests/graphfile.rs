//! Graph files (docs/graph-format.md): parsing with Dask's string rule, every kind of
//! malformed input giving an error that names the key and the place, writing back (round
//! trip), the depth limit, a property test that feeds random and mutated JSON, and the JSON
//! Schema (docs/graph-format.schema.json) agreeing with the reader on all of it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use daskr::graphfile::{self, MAX_FILE_DEPTH};
use daskr::{Comp, ErrorKind, Func, Graph, Options, Scheduler, Value};
use proptest::prelude::*;

include!(concat!(env!("OUT_DIR"), "/c_abi_symbols.rs"));

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>/test-plugins/graphfile: the example plugin, built once per run.
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::target_dir("test-plugins/graphfile");
        common::build_plugin(
            &root().join("examples/plugins/example.c"),
            &dir.join("libexample.so"),
        );
        dir
    })
}

/// A graph file using the example plugin as `ex` (by a path relative to `dir()`).
fn file(graph: &str, keys: &str) -> String {
    format!(r#"{{"plugins": {{"ex": "libexample.so"}}, "graph": {graph}, "keys": {keys}}}"#)
}

fn parse(text: &str) -> daskr::Result<graphfile::GraphFile> {
    graphfile::parse(text.as_bytes(), dir())
}

fn opts(scheduler: Scheduler, workers: usize) -> Options<'static> {
    Options {
        scheduler,
        num_workers: workers,
        ..Options::default()
    }
}

fn run(text: &str, scheduler: Scheduler, workers: usize) -> daskr::Result<Value> {
    let f = parse(text)?;
    f.graph.get(
        f.keys.as_ref().expect("the file has keys"),
        &opts(scheduler, workers),
    )
}

// ---- the JSON Schema ----

/// docs/graph-format.schema.json, compiled once (and checked against the draft 2020-12
/// meta-schema: a schema that is itself malformed fails here, not silently).
fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("docs/graph-format.schema.json")).unwrap();
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        jsonschema::draft202012::meta::validate(&schema).expect("a valid draft 2020-12 schema");
        jsonschema::draft202012::new(&schema).expect("the schema compiles")
    })
}

/// Why the schema refuses `text` (None: it accepts it). `text` must be JSON.
fn schema_errors(text: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(text).expect("JSON");
    let errors: Vec<String> = schema()
        .iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

fn assert_schema_accepts(text: &str, what: &str) {
    if let Some(e) = schema_errors(text) {
        panic!("the schema refuses {what}: {e}\n{text}");
    }
}

/// The schema and the reader agree on `text`: what the reader takes, the schema accepts; a
/// malformed file (`invalid_graph`) the schema refuses — unless it is malformed only in ways a
/// schema cannot see: a member given twice (JSON Schema sees the parsed object, where the
/// last one won) or nesting past the depth limit. A `plugin` error (a library that does not
/// load, an alias or symbol it does not declare) is outside the schema's reach either way.
fn assert_schema_agrees(text: &str, reader: &daskr::Result<graphfile::GraphFile>) {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return; // Not JSON (or deeper than serde_json's limit): no schema judges it.
    };
    match reader {
        Ok(_) => assert_schema_accepts(text, "a file the reader takes"),
        Err(e) if e.kind == ErrorKind::InvalidGraph => {
            // Read again as the schema sees it: duplicates resolved, as serde_json does.
            let seen = json.to_string();
            let again = graphfile::parse(seen.as_bytes(), dir());
            let hidden = match &again {
                Ok(_) => true,
                Err(e) => e.kind != ErrorKind::InvalidGraph || e.message.contains("nest"),
            };
            if !hidden {
                assert!(
                    schema_errors(&seen).is_some(),
                    "the schema accepts a file the reader refuses ({}):\n{seen}",
                    e.message
                );
            }
        }
        Err(_) => {}
    }
}

/// The ```json blocks of a Markdown file that are graph files (have a "graph" member).
fn json_blocks(markdown: &str) -> Vec<String> {
    markdown
        .split("```json\n")
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .filter(|block| {
            serde_json::from_str::<serde_json::Value>(block).is_ok_and(|j| j.get("graph").is_some())
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_schema_accepts_every_example_and_test_graph() {
    let mut checked = 0;
    // The examples, and the fuzz corpus's graph files that the reader takes.
    for folder in ["examples", "tests/fuzz/corpus/graph_file"] {
        for entry in std::fs::read_dir(root().join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let read = graphfile::parse(text.as_bytes(), dir());
                assert_schema_agrees(&text, &read);
                checked += 1;
            }
        }
    }
    // The graph files the docs show (the format's own example among them).
    for doc in ["docs/graph-format.md", "README.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        for block in json_blocks(&text) {
            assert_schema_accepts(&block, doc);
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} graph files found");
    // This file's example, and what the writer makes of it.
    let text = file(EXAMPLE, r#"["z", ["w", "l"], "s", "n", "r", "q", "b"]"#);
    assert_schema_accepts(&text, "EXAMPLE");
    assert_schema_accepts(&write(&parse(&text).unwrap()), "EXAMPLE as written");
}

#[test]
fn the_schema_refuses_what_the_reader_refuses() {
    for (text, kind, _, _) in bad_inputs() {
        assert_schema_agrees(&text, &Err(daskr::Error::new(kind, "")));
    }
    // Wrong types and shapes, each refused by both (so the schema is not vacuous).
    for bad in [
        r#"{}"#,
        r#"{"graph": []}"#,
        r#"{"graph": {}, "other": 1}"#,
        r#"{"graph": {}, "keys": 3}"#,
        r#"{"graph": {}, "keys": [""]}"#,
        r#"{"graph": {}, "plugins": {"ex": 1}}"#,
        r#"{"graph": {}, "plugins": {"a:b": "x.so"}}"#,
        r#"{"graph": {"": 1}}"#,
        r#"{"graph": {"z": {"fn": 3}}}"#,
        r#"{"graph": {"z": {"fn": "inc"}}}"#,
        r#"{"graph": {"z": {"fn": "ex:"}}}"#,
        r#"{"graph": {"z": {"fn": "ex:inc", "args": 5}}}"#,
        r#"{"graph": {"z": {"fn": "ex:inc", "kwargs": [1]}}}"#,
        r#"{"graph": {"z": {"fn": "ex:inc", "kwargs": {"": 1}}}}"#,
        r#"{"graph": {"z": {"fn": "ex:inc", "argz": []}}}"#,
        r#"{"graph": {"z": {"args": []}}}"#,
        r#"{"graph": {"z": {}}}"#,
        r#"{"graph": {"z": {"ref": 1}}}"#,
        r#"{"graph": {"z": {"ref": "a", "lit": 1}}}"#,
        r#"{"graph": {"z": {"lit": {"pointer": "t"}}}}"#,
        r#"{"graph": {"z": {"lit": {"map": 1}}}}"#,
        r#"{"graph": {"z": {"map": {"a": {"x": 1}}}}}"#,
        r#"{"graph": {"z": {"lit": [1, {"bytes": "!!"}]}}}"#,
        r#"{"graph": {"z": {"bytes": 1}}}"#,
        r#"{"graph": {"z": {"bytes": "aGk"}}}"#,
        r#"{"graph": {"z": {"bytes": "AB=="}}}"#,
        r#"{"graph": {"z": [1, {"x": 1}]}}"#,
    ] {
        // The example plugin where a task names it, so what is wrong is the shape alone.
        let bad = &bad.replace(
            r#"{"graph": {"z": {"fn": "ex:"#,
            r#"{"plugins": {"ex": "libexample.so"}, "graph": {"z": {"fn": "ex:"#,
        );
        let read = parse(bad);
        assert!(
            matches!(&read, Err(e) if e.kind == ErrorKind::InvalidGraph),
            "the reader does not refuse {bad} as invalid_graph: {:?}",
            read.err()
        );
        assert!(schema_errors(bad).is_some(), "the schema accepts {bad}");
    }
}

fn list(items: Vec<Value>) -> Value {
    Value::list(items).unwrap()
}

const EXAMPLE: &str = r#"{
    "x": 1,
    "y": {"fn": "ex:inc", "args": ["x"]},
    "z": {"fn": "ex:add", "args": ["y", 10], "kwargs": {"scale": 2}},
    "w": "z",
    "s": "hello",
    "l": ["x", "y", [1, 2.5, null, true]],
    "n": {"fn": "ex:add", "args": [{"fn": "ex:inc", "args": ["x"]}, 1]},
    "r": {"ref": "x"},
    "q": {"lit": "x"},
    "b": {"bytes": "aGVsbG8="}
}"#;

#[test]
fn the_format_example_computes_under_every_scheduler() {
    let text = file(EXAMPLE, r#"["z", ["w", "l"], "s", "n", "r", "q", "b"]"#);
    let want = list(vec![
        Value::Int(24),
        list(vec![
            Value::Int(24),
            list(vec![
                Value::Int(1),
                Value::Int(2),
                list(vec![
                    Value::Int(1),
                    Value::Float(2.5),
                    Value::Null,
                    Value::Bool(true),
                ]),
            ]),
        ]),
        Value::str("hello"),
        Value::Int(3),
        Value::Int(1),
        Value::str("x"),
        Value::bytes(b"hello"),
    ]);
    for (s, w) in [
        (Scheduler::Sync, 1),
        (Scheduler::Threads, 1),
        (Scheduler::Threads, 2),
        (Scheduler::Threads, 4),
    ] {
        assert_eq!(run(&text, s, w).unwrap(), want, "{s:?} {w}");
    }
}

#[test]
fn a_string_is_a_reference_only_if_it_is_a_key_of_the_graph() {
    // Dask: (clean, 'load-1') refers to load-1; (load, 'myfile.a.data') is a string.
    let text = file(
        r#"{
            "load-1": "myfile.a.data",
            "a": {"fn": "ex:identity", "args": ["load-1"]},
            "b": {"fn": "ex:identity", "args": ["load-2"]},
            "c": {"fn": "ex:identity", "args": [{"lit": "load-1"}]},
            "d": {"fn": "ex:concat", "args": ["load-1", "-", {"ref": "load-1"}]},
            "e": ["load-1", "x", {"lit": ["load-1", {"bytes": "AA=="}]}]
        }"#,
        r#"["a", "b", "c", "d", "e"]"#,
    );
    let got = run(&text, Scheduler::Sync, 1).unwrap();
    assert_eq!(
        got,
        list(vec![
            Value::str("myfile.a.data"),
            Value::str("load-2"),
            Value::str("load-1"),
            Value::str("myfile.a.data-myfile.a.data"),
            list(vec![
                Value::str("myfile.a.data"),
                Value::str("x"),
                list(vec![Value::str("load-1"), Value::bytes(&[0])]),
            ]),
        ])
    );
}

#[test]
fn entries_may_come_in_any_order_and_refer_ahead() {
    // Every entry refers to one defined after it (bare strings, {"ref"}, inside lists and
    // inline tasks); "plugins" comes after "graph", "keys" first; a key with an escape.
    let text = r#"{
        "keys": ["z", "w", "e\u0078"],
        "graph": {
            "z": {"fn": "ex:add", "args": ["y", {"ref": "x"}], "kwargs": {"scale": "two"}},
            "w": ["y", {"fn": "ex:inc", "args": ["x"]}, "not-a-key"],
            "y": {"fn": "ex:inc", "args": ["x"]},
            "ex": {"fn": "ex:inc", "args": ["two"]},
            "two": 2,
            "x": 1
        },
        "plugins": {"ex": "libexample.so"}
    }"#;
    let f = parse(text).unwrap();
    assert_eq!(
        f.graph
            .get(f.keys.as_ref().unwrap(), &opts(Scheduler::Sync, 1))
            .unwrap(),
        list(vec![
            Value::Int(6),
            list(vec![Value::Int(2), Value::Int(2), Value::str("not-a-key")]),
            Value::Int(3),
        ])
    );
    // The graph keeps the file's order of entries (written back in it).
    let written: serde_json::Value = serde_json::from_str(&write(&f)).unwrap();
    let order: Vec<&str> = written["graph"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(order, ["z", "w", "y", "ex", "two", "x"]);
}

#[test]
fn a_key_defined_twice_is_refused_even_when_its_first_definition_was_put_off() {
    // The first "a" names a key not read yet, so it is read after the second.
    for graph in [
        r#"{"a": ["b"], "b": 1, "a": 2}"#,
        r#"{"a": 2, "b": 1, "a": ["b"]}"#,
        r#"{"a": {"ref": "b"}, "a": 2, "b": 1}"#,
    ] {
        let e = parse(&file(graph, "null")).err().expect(graph);
        assert_eq!(e.kind, ErrorKind::InvalidGraph, "{graph}");
        assert_eq!(e.key.as_deref(), Some("a"), "{graph}");
        assert!(e.message.contains("defined twice"), "{}", e.message);
    }
}

#[test]
fn numbers_that_fit_are_ints_others_floats() {
    let text = file(
        r#"{"a": [1, -9223372036854775808, 9223372036854775808, 1.0, 2.5e3, 1e400]}"#,
        r#""a""#,
    );
    let err = parse(&text);
    // 1e400 is out of range for JSON numbers as serde_json reads them.
    let e = err.err().expect("1e400 is refused");
    assert_eq!(e.kind, ErrorKind::InvalidGraph);
    assert_eq!(e.key.as_deref(), Some("a"), "{}", e.message);
    let text = file(
        r#"{"a": [1, -9223372036854775808, 9223372036854775808, 1.0, 2.5e3]}"#,
        r#""a""#,
    );
    assert_eq!(
        run(&text, Scheduler::Sync, 1).unwrap(),
        list(vec![
            Value::Int(1),
            Value::Int(i64::MIN),
            Value::Float(9223372036854775808.0),
            Value::Float(1.0),
            Value::Float(2500.0),
        ])
    );
}

#[test]
fn default_keys_are_optional_and_any_shape() {
    let f = parse(r#"{"graph": {"a": 1}}"#).unwrap();
    assert!(f.keys.is_none());
    let f = parse(r#"{"graph": {"a": 1}, "keys": null}"#).unwrap();
    assert!(f.keys.is_none());
    let f = parse(r#"{"graph": {"a": 1}, "keys": [["a"], [], "a"]}"#).unwrap();
    assert_eq!(
        f.graph
            .get(f.keys.as_ref().unwrap(), &Options::default())
            .unwrap(),
        list(vec![list(vec![Value::Int(1)]), list(vec![]), Value::Int(1)])
    );
}

/// (graph file text, kind, key at fault, text the message must hold)
fn bad_inputs() -> Vec<(String, ErrorKind, Option<&'static str>, &'static str)> {
    use ErrorKind::{InvalidGraph as G, Plugin as P};
    let g = |graph: &str| file(graph, "null");
    vec![
        (
            g(
                r#"{"z": {"fn": "ex:add", "args": ["y", {"fn": "ex:inc", "kwargs": {"scale": {"x": 1}}}]}, "y": 1}"#,
            ),
            G,
            Some("z"),
            "key 'z': args[1].kwargs.scale: an object must be a task",
        ),
        (
            g(r#"{"z": {"fn": "ex:add", "args": 5}}"#),
            G,
            Some("z"),
            "key 'z': args: expected an array, got a number",
        ),
        (
            g(r#"{"z": {"fn": "ex:add", "kwargs": [1]}}"#),
            G,
            Some("z"),
            "key 'z': kwargs: expected an object",
        ),
        (
            g(r#"{"z": {"fn": "ex:add", "kwargs": {"": 1}}}"#),
            G,
            Some("z"),
            "kwargs.: a keyword name must be non-empty",
        ),
        (
            g(r#"{"z": {"fn": "ex:add", "argz": []}}"#),
            G,
            Some("z"),
            "unknown field 'argz'",
        ),
        (
            g(r#"{"z": {"fn": 3}}"#),
            G,
            Some("z"),
            "key 'z': fn: expected \"alias:symbol\"",
        ),
        (
            g(r#"{"z": {"fn": "inc"}}"#),
            G,
            Some("z"),
            "'inc' does not name a plugin task",
        ),
        (
            g(r#"{"z": [1, {"fn": "zz:inc"}]}"#),
            P,
            Some("z"),
            "key 'z': [1].fn: 'zz:inc': no plugin has the alias 'zz'",
        ),
        (
            g(r#"{"z": {"fn": "ex:nope"}}"#),
            P,
            Some("z"),
            "no task 'nope'",
        ),
        (
            g(r#"{"z": {"fn": "ex:snprintf"}}"#),
            P,
            Some("z"),
            "exported but not declared",
        ),
        (
            g(r#"{"z": {"ref": 1}}"#),
            G,
            Some("z"),
            "key 'z': ref: expected the key referred to",
        ),
        (
            g(r#"{"z": {"ref": ""}}"#),
            G,
            Some("z"),
            "ref: a key must be non-empty",
        ),
        (
            g(r#"{"z": {"ref": "a", "lit": 1}}"#),
            G,
            Some("z"),
            "must have no other field",
        ),
        (
            // An object inside "lit" is a map, whose names are distinct.
            g(r#"{"z": {"lit": [1, {"a": 1, "a": 2}]}}"#),
            G,
            Some("z"),
            "key 'z': lit[1]: map name \"a\" is given twice",
        ),
        (
            g(r#"{"z": {"bytes": "!!"}}"#),
            G,
            Some("z"),
            "key 'z': bytes: not valid base64",
        ),
        (
            g(r#"{"z": {"bytes": 1}}"#),
            G,
            Some("z"),
            "bytes: expected base64 text",
        ),
        (g(r#"{"z": {}}"#), G, Some("z"), "this one has no field"),
        // A repeated field would let the last one win unseen (issue 18).
        (
            g(r#"{"z": {"fn": "ex:inc", "args": [1], "fn": "ex:add"}}"#),
            G,
            Some("z"),
            "key 'z': the field \"fn\" is given twice",
        ),
        (
            g(r#"{"z": {"fn": "ex:inc", "args": [1], "args": [2]}}"#),
            G,
            Some("z"),
            "key 'z': the field \"args\" is given twice",
        ),
        (
            g(r#"{"z": {"fn": "ex:add", "kwargs": {"scale": 2}, "args": [1, 2], "kwargs": {}}}"#),
            G,
            Some("z"),
            "key 'z': the field \"kwargs\" is given twice",
        ),
        (
            g(r#"{"y": 1, "z": {"fn": "ex:inc", "args": [{"ref": "y", "ref": "z"}]}}"#),
            G,
            Some("z"),
            "key 'z': args[0]: the field \"ref\" is given twice",
        ),
        (
            g(r#"{"z": [0, {"lit": 1, "lit": 2}]}"#),
            G,
            Some("z"),
            "key 'z': [1]: the field \"lit\" is given twice",
        ),
        (
            g(r#"{"z": {"bytes": "AA==", "bytes": "AQ=="}}"#),
            G,
            Some("z"),
            "key 'z': the field \"bytes\" is given twice",
        ),
        (
            g(r#"{"z": {"lit": [{"bytes": "AA==", "bytes": "AQ=="}]}}"#),
            G,
            Some("z"),
            "key 'z': lit[0]: map name \"bytes\" is given twice",
        ),
        (
            g(r#"{"z": {"fn": "ex:add", "args": [1, 2], "kwargs": {"scale": 2, "scale": 3}}}"#),
            G,
            Some("z"),
            "key 'z': kwargs.scale: the keyword argument is given twice",
        ),
        (
            r#"{"plugins": {"ex": "libexample.so", "ex": "nope.so"}, "graph": {}}"#.into(),
            G,
            None,
            "plugins.ex: the alias is declared twice",
        ),
        (g(r#"{"z": 1, "z": 2}"#), G, Some("z"), "defined twice"),
        (g(r#"{"": 1}"#), G, Some(""), "must not be empty"),
        (g(r#"{"a": 1, "b": [1, 2,"#), G, Some("b"), "key 'b': "),
        (
            g(r#"{"a": 1, "b": [1, 2 3]}"#),
            G,
            Some("b"),
            "key 'b': expected",
        ),
        (
            r#"{"plugins": {"ex": "nope.so"}, "graph": {}}"#.into(),
            P,
            None,
            "plugins.ex: plugin '",
        ),
        (
            r#"{"plugins": {"ex": 1}, "graph": {}}"#.into(),
            G,
            None,
            "plugins.ex: expected the path",
        ),
        (
            r#"{"plugins": {"a:b": "x.so"}, "graph": {}}"#.into(),
            G,
            None,
            "plugins.a:b: an alias",
        ),
        (
            r#"{"graph": {}, "keys": [1]}"#.into(),
            G,
            None,
            "keys[0]: expected a key",
        ),
        (
            r#"{"graph": {}, "keys": ""}"#.into(),
            G,
            None,
            "keys: expected a key (a non-empty string)",
        ),
        (
            r#"{"graph": [], "keys": []}"#.into(),
            G,
            None,
            "expected an object mapping keys to computations",
        ),
        (r#"{"grph": {}}"#.into(), G, None, "unknown field `grph`"),
        (r#"{}"#.into(), G, None, "missing field `graph`"),
        ("[1]".into(), G, None, "invalid graph file"),
        ("".into(), G, None, "invalid graph file"),
        (
            "{\"graph\": {\"a\": \"\u{0}\"}}".into(),
            G,
            Some("a"),
            "key 'a': control character",
        ),
    ]
}

#[test]
fn malformed_input_is_an_error_naming_the_key_and_place() {
    for (text, kind, key, needle) in bad_inputs() {
        let e = match parse(&text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e,
        };
        assert_eq!(e.kind, kind, "{text}\n{}", e.message);
        assert_eq!(e.key.as_deref(), key, "{text}\n{}", e.message);
        assert!(
            e.message.contains(needle),
            "{text}\nmessage: {}\nwanted: {needle}",
            e.message
        );
    }
}

#[test]
fn references_to_missing_keys_fail_at_get_naming_both() {
    let f = parse(r#"{"graph": {"a": {"ref": "b"}}}"#).unwrap();
    let e = f.graph.get_key("a", &Options::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingDependency);
    assert_eq!(e.key.as_deref(), Some("a"));
    assert_eq!(e.keys, ["b"]);
}

/// `depth` nested lists around 1, inside the entry "a".
fn nested(depth: usize) -> String {
    format!(
        r#"{{"graph": {{"a": {}1{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[test]
fn nesting_is_limited_with_a_clear_error() {
    // The document and "graph" take two levels.
    let f = parse(&nested(MAX_FILE_DEPTH - 2)).unwrap();
    let v = f.graph.get_key("a", &Options::default()).unwrap();
    assert_eq!(v.depth() as usize, MAX_FILE_DEPTH - 2);
    for depth in [MAX_FILE_DEPTH - 1, 1000, 100_000] {
        let e = parse(&nested(depth)).err().expect("too deep");
        assert_eq!(e.kind, ErrorKind::InvalidGraph);
        assert_eq!(e.key.as_deref(), Some("a"), "{}", e.message);
        assert!(
            e.message.contains("nests deeper than 127 JSON levels"),
            "{}",
            e.message
        );
    }
    // Inline tasks take two levels each: {"fn", "args": [ ... ]}.
    let mut task = "1".to_string();
    for _ in 0..70 {
        task = format!(r#"{{"fn": "ex:inc", "args": [{task}]}}"#);
    }
    let e = parse(&file(&format!(r#"{{"deep": {task}}}"#), "null"))
        .err()
        .unwrap();
    assert_eq!(e.key.as_deref(), Some("deep"), "{}", e.message);
    // Outside the graph: no key to name, still an error.
    let e = parse(&format!(
        r#"{{"graph": {{}}, "keys": {}"a"{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    ))
    .err()
    .unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidGraph);
    assert!(e.key.is_none());
}

#[test]
fn nesting_is_limited_the_same_in_an_entry_read_after_the_keys_it_names() {
    // "a" names "x", defined after it, so "a" is read again on its own once "x" is known:
    // still the document's limit (its object, "graph", the entry's list and `n` more lists).
    let file_of = |n: usize| {
        format!(
            r#"{{"graph": {{"a": ["x", {}1{}], "x": 1}}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    let most = MAX_FILE_DEPTH - 3;
    let f = parse(&file_of(most)).unwrap();
    assert_eq!(f.graph.len(), 2);
    for n in [most + 1, most + 2, most + 3] {
        let e = parse(&file_of(n)).err().expect("too deep");
        assert_eq!(e.key.as_deref(), Some("a"), "{}", e.message);
        assert!(
            e.message.contains("nests deeper than 127 JSON levels"),
            "{}",
            e.message
        );
    }
}

#[test]
fn a_long_chain_parses_and_runs() {
    let mut graph = String::from(r#"{"k0": 0"#);
    for i in 1..20_000 {
        graph.push_str(&format!(
            r#", "k{i}": {{"fn": "ex:inc", "args": ["k{}"]}}"#,
            i - 1
        ));
    }
    graph.push('}');
    let text = file(&graph, r#""k19999""#);
    assert_eq!(
        run(&text, Scheduler::Threads, 2).unwrap(),
        Value::Int(19_999)
    );
}

// ---- writing ----

fn write(f: &graphfile::GraphFile) -> String {
    graphfile::write(&f.graph, f.keys.as_ref(), Some(dir())).unwrap()
}

#[test]
fn writing_and_reading_back_gives_the_same_graph() {
    let text = file(
        EXAMPLE,
        r#"["z", ["w", "l"], "s", "n", "r", "q", "b"]"#,
    )
    .replace(r#""x": 1,"#, r#""x": 1, "m": {"ref": "missing"}, "k": {"lit": [[1, "x"], {"bytes": ""}, -0.5, 1e300]}, "t": {"fn": "ex:identity", "args": [{"lit": "y"}], "kwargs": {"a": "x", "b": [true]}},"#);
    let first = parse(&text).unwrap();
    let written = write(&first);
    assert_schema_accepts(&written, "a written graph");
    let second = parse(&written).unwrap();
    let rewritten = write(&second);
    assert_eq!(written, rewritten);
    // The plugin path is written relative to the base folder, and entries keep their order.
    assert!(written.contains(r#""ex": "libexample.so""#), "{written}");
    let json: serde_json::Value = serde_json::from_str(&written).unwrap();
    // Written straight from the graph, the text is what serde_json's pretty printer gives.
    assert_eq!(written, serde_json::to_string_pretty(&json).unwrap() + "\n");
    let order: Vec<&str> = json["graph"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(&order[..4], ["x", "m", "k", "t"]);
    assert_eq!(json["graph"]["q"], serde_json::json!({"lit": "x"}));
    assert_eq!(json["graph"]["m"], serde_json::json!({"ref": "missing"}));
    assert_eq!(json["graph"]["w"], serde_json::json!("z"));
    // Same results.
    let keys = first.keys.clone().unwrap();
    for g in [&first.graph, &second.graph] {
        assert_eq!(
            g.get(&keys, &Options::default()).unwrap(),
            first.graph.get(&keys, &opts(Scheduler::Sync, 1)).unwrap()
        );
    }
    let kt = Value::str("t");
    assert_eq!(
        second.graph.get(&kt, &Options::default()).unwrap(),
        Value::str("y")
    );
    // Without a base folder the path is absolute.
    let absolute = graphfile::write(&second.graph, None, None).unwrap();
    let abs_path = dir().join("libexample.so").canonicalize().unwrap();
    assert!(
        absolute.contains(&*abs_path.to_string_lossy()),
        "{absolute}"
    );
    assert!(!absolute.contains("\"keys\""));
}

#[test]
fn plugins_get_distinct_aliases_when_written() {
    let p = daskr::Plugin::open(dir().join("libexample.so")).unwrap();
    let mut g = Graph::new();
    g.add_task(
        "a",
        &p.func("inc").unwrap(),
        vec![Comp::value(Value::Int(1))],
        vec![],
    )
    .unwrap();
    let text = graphfile::write(&g, Some(&Value::str("a")), Some(dir())).unwrap();
    // A function taken without an alias is written under the plugin's own name.
    assert!(text.contains(r#""fn": "example:inc""#), "{text}");
    let back = parse(&text).unwrap();
    assert_eq!(
        back.graph.get_key("a", &Options::default()).unwrap(),
        Value::Int(2)
    );
}

#[test]
fn what_json_cannot_hold_is_refused_when_writing() {
    let rust = Func::new("rust_fn", |c| c.ret(Value::Null));
    let cases: Vec<(Graph, &str)> = vec![
        {
            let mut g = Graph::new();
            g.add_task("k", &rust, vec![], vec![]).unwrap();
            (g, "function 'rust_fn' does not come from a plugin")
        },
        {
            let mut g = Graph::new();
            g.add_value("k", Value::Float(f64::NAN)).unwrap();
            (g, "cannot be written as JSON")
        },
        {
            let mut g = Graph::new();
            g.add_value("k", Value::pointer(std::ptr::null_mut(), "thing", None))
                .unwrap();
            (g, "pointer value ('thing')")
        },
        {
            let mut g = Graph::new();
            let mut c = Comp::value(Value::Int(1));
            for _ in 0..200 {
                c = Comp::list(vec![c]);
            }
            g.add("k", c).unwrap();
            (g, "nests too deeply")
        },
    ];
    for (g, needle) in cases {
        let e = graphfile::write(&g, None, None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidGraph);
        assert_eq!(e.key.as_deref(), Some("k"));
        assert!(e.message.contains(needle), "{}", e.message);
    }
}

#[test]
fn results_print_as_json() {
    let v = list(vec![
        Value::Null,
        Value::Bool(true),
        Value::Int(-3),
        Value::Float(0.5),
        Value::Float(f64::INFINITY),
        Value::str("s"),
        Value::bytes(b"hi"),
        Value::pointer(std::ptr::null_mut(), "img", None),
    ]);
    assert_eq!(
        graphfile::value_to_json(&v).to_string(),
        r#"[null,true,-3,0.5,null,"s",{"bytes":"aGk="},{"pointer":"img"}]"#
    );
}

// ---- fuzzing ----

/// Random computations over a few keys, the example plugin's symbols, and near misses.
fn comp_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value as J};
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-1e6f64..1e6).prop_map(|x| json!(x)),
        prop::sample::select(vec!["a", "b", "c", "zz", "", "ex:inc"]).prop_map(|s| json!(s)),
        prop::sample::select(vec![
            json!({"ref": "a"}),
            json!({"ref": "nope"}),
            json!({"ref": 3}),
            json!({"lit": "a"}),
            json!({"lit": [1, {"bytes": "AA=="}]}),
            json!({"lit": {"x": 1}}),
            json!({"lit": {"map": {"bytes": 1}}}),
            json!({"lit": {"bytes": 1}}),
            json!({"map": {"k": "a", "n": [1, {"ref": "b"}]}}),
            json!({"map": {"k": {"x": 1}}}),
            json!({"bytes": "aGk="}),
            json!({"bytes": "%%"}),
            json!({}),
            json!({"other": 1}),
        ]),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        let fname = prop::sample::select(vec![
            "ex:inc",
            "ex:add",
            "ex:sum",
            "ex:identity",
            "ex:nope",
            "zz:inc",
            "inc",
            "ex:",
            ":x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            (
                fname,
                prop::option::of(prop::collection::vec(inner.clone(), 0..3)),
                prop::option::of(prop::collection::vec(
                    (
                        prop::sample::select(vec!["scale", "value", ""]),
                        inner.clone()
                    ),
                    0..2
                )),
                any::<bool>(),
            )
                .prop_map(|(f, args, kwargs, extra)| {
                    let mut o = serde_json::Map::new();
                    o.insert("fn".into(), json!(f));
                    if let Some(a) = args {
                        o.insert("args".into(), J::Array(a));
                    }
                    if let Some(kw) = kwargs {
                        o.insert(
                            "kwargs".into(),
                            J::Object(kw.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
                        );
                    }
                    if extra {
                        o.insert("extra".into(), json!(1));
                    }
                    J::Object(o)
                }),
        ]
    })
}

fn check_error(e: &daskr::Error) {
    if let Some(k) = &e.key {
        assert!(
            e.message.starts_with(&format!("key '{k}'")),
            "{}",
            e.message
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every error inside a graph entry names that entry; nothing panics; what parses runs.
    #[test]
    fn random_graphs_never_panic_and_errors_name_the_key(
        entries in prop::collection::vec((prop::sample::select(vec!["a", "b", "c", "d"]), comp_json()), 0..5)
    ) {
        let graph: serde_json::Map<String, serde_json::Value> =
            entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let text = file(&serde_json::Value::Object(graph.clone()).to_string(), r#"["a", "b"]"#);
        let read = parse(&text);
        // The schema agrees with the reader on every random graph, and on what the writer makes.
        assert_schema_agrees(&text, &read);
        match read {
            Ok(f) => {
                // A graph that parses can be written back and read again to the same text.
                if let Ok(written) = graphfile::write(&f.graph, f.keys.as_ref(), Some(dir())) {
                    assert_schema_accepts(&written, "a written graph");
                    let again = parse(&written).expect("a written graph parses");
                    prop_assert_eq!(write(&again), written);
                }
                // And run: any failure is a clean error (tasks get bad arguments often).
                if let Err(e) = f.graph.get(f.keys.as_ref().unwrap(), &opts(Scheduler::Sync, 1)) {
                    prop_assert!(!e.message.is_empty());
                }
            }
            Err(e) => {
                prop_assert!(matches!(e.kind, ErrorKind::InvalidGraph | ErrorKind::Plugin), "{}", e);
                prop_assert!(e.key.is_some(), "no key named: {}", e.message);
                prop_assert!(graph.contains_key(e.key.as_deref().unwrap()));
                check_error(&e);
            }
        }
    }

    /// Mutated graph files (bytes replaced, cut short, spliced): never a panic, and any key an
    /// error names is in its message.
    #[test]
    fn mutated_files_never_panic(
        cut in 0usize..400,
        edits in prop::collection::vec((0usize..400, prop::sample::select(vec![b'{', b'}', b'[', b']', b'"', b':', b',', b'\\', b'x', b'0', 0xff])), 0..6)
    ) {
        let mut text = file(EXAMPLE, r#"["z", ["w", "l"]]"#).into_bytes();
        for (at, byte) in edits {
            let at = at % text.len();
            text[at] = byte;
        }
        text.truncate(text.len().saturating_sub(cut % 40));
        if let Err(e) = graphfile::parse(&text, dir()) {
            prop_assert!(matches!(e.kind, ErrorKind::InvalidGraph | ErrorKind::Plugin), "{}", e);
            check_error(&e);
        }
    }
}
