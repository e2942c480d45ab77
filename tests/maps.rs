//! Map values end to end: map computations and literal maps in graph files, run by the example
//! plugin's record tasks under every local scheduler (and across processes, where values
//! travel encoded); printing a result and reading it back gives the same value for every kind,
//! a map that looks like another form included; bad maps are errors naming the key and name.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use daskr::graphfile::{self, value_to_json};
use daskr::{Comp, ErrorKind, Graph, Options, Scheduler, Value};

include!(concat!(env!("OUT_DIR"), "/c_abi_symbols.rs"));

/// target/<profile>/test-plugins/maps: the example plugin, built once per run.
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::target_dir("test-plugins/maps");
        common::build_plugin(
            &common::root().join("examples/plugins/example.c"),
            &dir.join("libexample.so"),
        );
        dir
    })
}

fn parse(text: &str) -> daskr::Result<graphfile::GraphFile> {
    graphfile::parse(text.as_bytes(), dir())
}

fn file(graph: &str) -> String {
    format!(r#"{{"plugins": {{"ex": "libexample.so"}}, "graph": {graph}}}"#)
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::map(entries).unwrap()
}

fn list(items: Vec<Value>) -> Value {
    Value::list(items).unwrap()
}

fn get(text: &str, key: &str, s: Scheduler, workers: usize) -> daskr::Result<Value> {
    let f = parse(text)?;
    f.graph.get(
        &Value::str(key),
        &Options {
            scheduler: s,
            num_workers: workers,
            ..Options::default()
        },
    )
}

/// A pipeline that returns a record per file, a map computation of references and inline
/// tasks, a literal map (never traversed) and a map argument read by name.
const PIPELINE: &str = r#"{
    "raw-a": {"fn": "ex:load", "args": ["a.csv"]},
    "clean-a": {"fn": "ex:clean", "args": ["raw-a"]},
    "rec-a": {"fn": "ex:record", "args": ["a.csv", "clean-a"]},
    "raw-b": {"fn": "ex:load", "args": ["b.csv"]},
    "clean-b": {"fn": "ex:clean", "args": ["raw-b"]},
    "rec-b": {"fn": "ex:record", "args": ["b.csv", "clean-b"]},
    "means": {"fn": "ex:means", "args": [["rec-a", "rec-b"]]},
    "mean-a": {"fn": "ex:field", "args": ["rec-a", "mean"]},
    "summary": {"map": {
        "files": 2,
        "first": "rec-a",
        "means": "means",
        "next": {"fn": "ex:inc", "args": [{"fn": "ex:field", "args": [{"map": {"n": 41}}, "n"]}]},
        "nested": {"map": {"b": "mean-a", "text": "not a key"}}
    }},
    "literal": {"lit": {"rec-a": "rec-a", "list": ["mean-a", 1], "bytes": 5}},
    "empty": {"map": {}}
}"#;

fn mean(readings: &Value) -> Value {
    let xs = readings.as_list().unwrap();
    Value::Float(xs.iter().map(|v| v.as_float().unwrap()).sum::<f64>() / xs.len() as f64)
}

#[test]
fn records_and_map_computations_run_the_same_under_every_scheduler() {
    let text = file(PIPELINE);
    let clean_a = get(&text, "clean-a", Scheduler::Sync, 1).unwrap();
    let clean_b = get(&text, "clean-b", Scheduler::Sync, 1).unwrap();
    let rec_a = map(vec![
        ("file", Value::str("a.csv")),
        ("readings", clean_a.clone()),
        ("mean", mean(&clean_a)),
    ]);
    let means = map(vec![("a.csv", mean(&clean_a)), ("b.csv", mean(&clean_b))]);
    let summary = map(vec![
        ("files", Value::Int(2)),
        ("first", rec_a.clone()),
        ("means", means.clone()),
        ("next", Value::Int(42)),
        (
            "nested",
            map(vec![
                ("b", mean(&clean_a)),
                ("text", Value::str("not a key")),
            ]),
        ),
    ]);
    let literal = map(vec![
        ("rec-a", Value::str("rec-a")),
        ("list", list(vec![Value::str("mean-a"), Value::Int(1)])),
        ("bytes", Value::Int(5)),
    ]);
    for (s, w) in [
        (Scheduler::Sync, 1),
        (Scheduler::Threads, 4),
        (Scheduler::Processes, 2),
    ] {
        let at = |key| get(&text, key, s, w).unwrap();
        assert_eq!(at("rec-a"), rec_a, "{s:?}");
        assert_eq!(at("means"), means, "{s:?}");
        assert_eq!(at("mean-a"), mean(&clean_a), "{s:?}");
        let got = at("summary");
        assert_eq!(got, summary, "{s:?}");
        // Insertion order is kept, through the encoding too.
        let names: Vec<&str> = got.as_map().unwrap().iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["files", "first", "means", "next", "nested"],
            "{s:?}"
        );
        assert_eq!(at("literal"), literal, "{s:?}");
        assert_eq!(at("empty"), map(vec![]), "{s:?}");
    }
}

#[test]
fn a_task_failing_on_a_map_is_named() {
    let text = file(
        r#"{"r": {"lit": {"file": "x.csv"}}, "m": {"fn": "ex:field", "args": ["r", "mean"]},
            "twice": {"fn": "ex:means", "args": [[{"lit": {"file": "a", "mean": 1}}, {"lit": {"file": "a", "mean": 2}}]]}}"#,
    );
    for s in [Scheduler::Sync, Scheduler::Processes] {
        let e = get(&text, "m", s, 2).unwrap_err();
        assert_eq!(
            (e.kind, e.key.as_deref()),
            (ErrorKind::TaskFailed, Some("m"))
        );
        assert!(e.message.contains("no such name"), "{}", e.message);
        let e = get(&text, "twice", s, 2).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("twice"));
        assert!(e.message.contains("\"a\" is given twice"), "{}", e.message);
    }
}

/// A value of every kind that JSON can hold, with maps that look like the format's other
/// forms.
fn every_kind() -> Vec<Value> {
    let mut values = vec![
        Value::Null,
        Value::Bool(true),
        Value::Int(-7),
        Value::Float(2.5),
        Value::str("text"),
        Value::str(""),
        Value::bytes(b"\x00\xffhi"),
        list(vec![Value::Int(1), list(vec![])]),
        map(vec![]),
        map(vec![
            ("a", Value::Int(1)),
            ("b", list(vec![Value::str("x")])),
        ]),
        map(vec![
            ("", Value::str("empty name")),
            ("é\u{0}", Value::Null),
        ]),
        // Two entries: read as a map whatever the names.
        map(vec![("bytes", Value::str("AA==")), ("x", Value::Int(1))]),
        map(vec![
            ("map", map(vec![("bytes", Value::str("AA=="))])),
            ("x", Value::Null),
        ]),
    ];
    // One entry, named as a tagged form, holding each kind of value.
    for tag in [
        "bytes", "pointer", "map", "lit", "ref", "fn", "args", "kwargs", "error",
    ] {
        for inner in [
            Value::str("AA=="),
            Value::Int(1),
            map(vec![]),
            map(vec![("bytes", Value::str("AA=="))]),
            map(vec![("map", map(vec![("a", Value::Int(1))]))]),
        ] {
            values.push(map(vec![(tag, inner)]));
        }
    }
    values.push(list(values.clone()));
    values
}

#[test]
fn a_printed_result_reads_back_as_the_same_value_for_every_kind() {
    for v in every_kind() {
        let printed = value_to_json(&v).to_string();
        let text = format!(r#"{{"graph": {{"v": {{"lit": {printed}}}}}}}"#);
        let back = get(&text, "v", Scheduler::Sync, 1)
            .unwrap_or_else(|e| panic!("{printed}: {}", e.message));
        assert_eq!(back, v, "{printed}");
        // The same order, too.
        assert_eq!(format!("{back:?}"), format!("{v:?}"), "{printed}");
    }
    // The wrapped form: only where a map could be read as another form.
    let wrapped = |v: &Value| value_to_json(v).to_string();
    assert_eq!(wrapped(&map(vec![("a", Value::Int(1))])), r#"{"a":1}"#);
    assert_eq!(
        wrapped(&map(vec![("bytes", Value::str("AA=="))])),
        r#"{"map":{"bytes":"AA=="}}"#
    );
    assert_eq!(
        wrapped(&map(vec![("error", Value::Int(1))])),
        r#"{"map":{"error":1}}"#
    );
    assert_eq!(
        wrapped(&map(vec![("bytes", Value::Int(1)), ("b", Value::Int(2))])),
        r#"{"bytes":1,"b":2}"#
    );
}

#[test]
fn a_written_graph_of_maps_reads_back_as_the_same_graph() {
    let mut text = String::from(r#"{"x": 1"#);
    for (i, v) in every_kind().iter().enumerate() {
        text += &format!(r#", "v{i}": {{"lit": {}}}"#, value_to_json(v));
    }
    text += r#", "m": {"map": {"x": "x", "lit": {"lit": "x"}, "t": {"fn": "ex:inc", "args": ["x"]}, "deep": {"map": {"map": {"map": {}}}}}}}"#;
    let text = file(&text);
    let first = parse(&text).unwrap();
    let written = graphfile::write(&first.graph, None, Some(dir())).unwrap();
    let second = parse(&written).unwrap();
    assert_eq!(
        graphfile::write(&second.graph, None, Some(dir())).unwrap(),
        written
    );
    let json: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(
        json["graph"]["m"]["map"]["lit"],
        serde_json::json!({"lit": "x"})
    );
    for (i, v) in every_kind().iter().enumerate() {
        let key = format!("v{i}");
        for g in [&first.graph, &second.graph] {
            assert_eq!(
                &g.get(&Value::str(&key), &Options::default()).unwrap(),
                v,
                "{key}"
            );
        }
    }
    let m = map(vec![
        ("x", Value::Int(1)),
        ("lit", Value::str("x")),
        ("t", Value::Int(2)),
        // In a computation `{"map": X}` is always the map computation X.
        ("deep", map(vec![("map", map(vec![]))])),
    ]);
    for g in [&first.graph, &second.graph] {
        assert_eq!(g.get(&Value::str("m"), &Options::default()).unwrap(), m);
    }
}

#[test]
fn a_graph_built_in_rust_with_map_computations_writes_and_reads_back() {
    let plugin = daskr::Plugin::open(dir().join("libexample.so")).unwrap();
    let inc = plugin.func("inc").unwrap();
    let mut g = Graph::new();
    let x = g.add_value("x", Value::Int(1)).unwrap();
    g.add(
        "m",
        Comp::map(vec![
            ("by-handle", Comp::id(x)),
            ("by-key", Comp::key("x")),
            ("task", Comp::task(&inc, vec![Comp::id(x)], vec![])),
            ("text", Comp::value(Value::str("x"))),
        ]),
    )
    .unwrap();
    let text = graphfile::write(&g, None, Some(dir())).unwrap();
    let back = parse(&text).unwrap();
    let want = map(vec![
        ("by-handle", Value::Int(1)),
        ("by-key", Value::Int(1)),
        ("task", Value::Int(2)),
        ("text", Value::str("x")),
    ]);
    for g in [&g, &back.graph] {
        assert_eq!(g.get(&Value::str("m"), &Options::default()).unwrap(), want);
    }
    // A name given twice is refused when the computation is added, naming the entry.
    let e = g
        .add(
            "twice",
            Comp::map(vec![("a", Comp::value(1)), ("a", Comp::value(2))]),
        )
        .unwrap_err();
    assert_eq!(e.key.as_deref(), Some("twice"));
    assert!(e.message.contains("\"a\" is given twice"), "{}", e.message);
}

#[test]
fn bad_maps_are_errors_naming_the_key_and_the_name() {
    let deep = |levels: usize, form: &str| {
        let (open, close) = match form {
            "map" => (r#"{"map": {"a": "#, "}}"),
            _ => (r#"{"a": "#, "}"),
        };
        let inner = format!("{}1{}", open.repeat(levels), close.repeat(levels));
        if form == "map" {
            file(&format!(r#"{{"k": {inner}}}"#))
        } else {
            file(&format!(r#"{{"k": {{"lit": {inner}}}}}"#))
        }
    };
    let cases = [
        (
            file(r#"{"k": {"map": {"a": 1, "b": 2, "a": 3}}}"#),
            "key 'k': map: map name \"a\" is given twice",
        ),
        (
            file(r#"{"k": {"lit": {"x": {"a": 1, "a": 2}}}}"#),
            "key 'k': lit.x: map name \"a\" is given twice",
        ),
        (
            file(r#"{"k": {"map": 5}}"#),
            "key 'k': map: expected an object of names to computations, got a number",
        ),
        (
            file(r#"{"k": {"map": {"a": 1}, "lit": 2}}"#),
            "must have no other field",
        ),
        (
            file(r#"{"k": {"map": {"a": {"fn": "ex:nope"}}}}"#),
            "key 'k': map.a.fn:",
        ),
        (
            file(r#"{"k": {"lit": {"map": 1}}}"#),
            "key 'k': lit: expected an object after \"map\"",
        ),
        (
            file(r#"{"k": {"lit": {"pointer": "matrix"}}}"#),
            "cannot be read back",
        ),
        (deep(70, "map"), "key 'k': nests deeper than"),
        (deep(130, "lit"), "key 'k': nests deeper than"),
    ];
    for (text, needle) in cases {
        let e = match parse(&text) {
            Err(e) => e,
            Ok(_) => panic!("{text}: read"),
        };
        assert!(
            matches!(e.kind, ErrorKind::InvalidGraph | ErrorKind::Plugin),
            "{text}: {:?}",
            e.kind
        );
        assert_eq!(e.key.as_deref(), Some("k"), "{text}: {}", e.message);
        assert!(e.message.contains(needle), "{text}: {}", e.message);
    }
}
