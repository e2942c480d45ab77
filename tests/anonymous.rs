//! Anonymous entries: added with no key (`Graph::add_anonymous*`, a NULL key in C), reached by
//! handle (`Graph::get_tasks`), named `#<index>` only where something needs a name — an error,
//! a callback, another process, a graph file — and those names never collide with a key.

mod common;

use std::sync::Mutex;

use daskr::{Callbacks, Comp, ErrorKind, Func, Graph, KeyRef, Options, Scheduler, Value};

fn add() -> Func {
    Func::new("add", |call| {
        let total = (0..call.nargs())
            .map(|i| call.arg(i).and_then(Value::as_int).unwrap())
            .sum();
        call.ret(Value::Int(total));
    })
}

/// A binary tree of anonymous additions over `leaves` anonymous literals 1..=leaves, plus a keyed
/// entry `total` over the root: returns the graph, the root's handle, and every leaf's handle.
fn tree(leaves: i64) -> (Graph, daskr::TaskId, Vec<daskr::TaskId>) {
    let f = add();
    let mut g = Graph::new();
    let firsts: Vec<_> = (1..=leaves)
        .map(|i| g.add_anonymous(Comp::value(Value::Int(i))).unwrap())
        .collect();
    let mut level = firsts.clone();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                let args = pair.iter().map(|&t| Comp::id(t)).collect();
                g.add_anonymous_task(&f, args, vec![]).unwrap()
            })
            .collect();
    }
    g.add_task("total", &f, vec![Comp::id(level[0])], vec![])
        .unwrap();
    (g, level[0], firsts)
}

const SCHEDULERS: [Scheduler; 3] = [Scheduler::Sync, Scheduler::Threads, Scheduler::Processes];

#[test]
fn anonymous_entries_compute_on_every_local_scheduler() {
    let (g, root, leaves) = tree(100);
    for s in SCHEDULERS {
        let o = common::opts(s);
        let got = g.get_tasks(&[root, leaves[6], root], &o).unwrap();
        assert_eq!(
            got,
            vec![Value::Int(5050), Value::Int(7), Value::Int(5050)],
            "{s:?}"
        );
        // A keyed entry over anonymous ones is asked for by key as always.
        assert_eq!(g.get_key("total", &o).unwrap(), Value::Int(5050), "{s:?}");
        // And by handle too.
        let total = g.id_of("total").unwrap();
        assert_eq!(g.get_tasks(&[total], &o).unwrap(), vec![Value::Int(5050)]);
    }
}

#[test]
fn an_anonymous_entry_has_no_key() {
    let (g, root, _) = tree(8);
    assert_eq!(g.key(root), None);
    assert!(g.key(g.id_of("total").unwrap()).is_some());
    assert_eq!(g.len(), 8 + 7 + 1);
}

#[test]
fn a_failing_anonymous_task_is_named_by_its_index_on_every_scheduler() {
    let boom = Func::new("boom", |call| call.fail("no luck"));
    let mut g = Graph::new();
    g.add_value("first", Value::Int(1)).unwrap();
    let t = g
        .add_anonymous_task(&boom, vec![Comp::key("first")], vec![])
        .unwrap();
    let name = format!("#{}", t.index());
    for s in SCHEDULERS {
        let e = g.get_tasks(&[t], &common::opts(s)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TaskFailed, "{s:?}");
        assert_eq!(e.key.as_deref(), Some(name.as_str()), "{s:?}: {e}");
        assert!(e.message.contains("no luck"), "{s:?}: {e}");
    }
}

#[test]
fn names_of_anonymous_entries_differ_from_every_key() {
    // A key that looks like an anonymous entry's name: that entry's name moves aside.
    let boom = Func::new("boom", |call| call.fail("no luck"));
    let mut g = Graph::new();
    g.add_value("a", Value::Int(1)).unwrap(); // index 0
    let t = g.add_anonymous_task(&boom, vec![], vec![]).unwrap(); // index 1
    assert_eq!(t.index(), 1);
    // Keys taking the anonymous entry's name, and the next one after it.
    g.add_value("#1", Value::Int(3)).unwrap();
    g.add_value("#1'", Value::Int(3)).unwrap();
    let e = g
        .get_tasks(&[t], &common::opts(Scheduler::Sync))
        .unwrap_err();
    assert_eq!(e.key.as_deref(), Some("#1''"));
}

#[test]
fn anonymous_entries_cross_to_other_processes_next_to_keys_that_look_like_their_names() {
    let f = add();
    let mut g = Graph::new();
    let a = g.add_anonymous(Comp::value(Value::Int(40))).unwrap();
    // The key "#<a's index>" exists too, with another value: the workers must not confuse them.
    g.add_value(&format!("#{}", a.index()), Value::Int(1000))
        .unwrap();
    let b = g
        .add_anonymous_task(
            &f,
            vec![
                Comp::id(a),
                Comp::key(format!("#{}", a.index())),
                Comp::value(Value::Int(2)),
            ],
            vec![],
        )
        .unwrap();
    for s in SCHEDULERS {
        assert_eq!(
            g.get_tasks(&[b], &common::opts(s)).unwrap(),
            vec![Value::Int(1042)],
            "{s:?}"
        );
    }
}

#[test]
fn callbacks_see_the_names_of_anonymous_entries() {
    struct Seen(Mutex<Vec<String>>);
    impl Callbacks for Seen {
        fn pretask(&self, key: KeyRef<'_>, _worker: usize) {
            self.0.lock().unwrap().push(key.as_str().to_string());
        }
    }
    let (g, root, _) = tree(4);
    let seen = Seen(Mutex::new(Vec::new()));
    let o = Options {
        callbacks: Some(&seen),
        ..common::opts(Scheduler::Sync)
    };
    g.get_tasks(&[root], &o).unwrap();
    let mut names = seen.0.into_inner().unwrap();
    names.sort();
    // Four leaves (indices 0-3: literals, which callbacks do not see), two pairs (4, 5), the
    // root (6).
    let want: Vec<String> = ["#4", "#5", "#6"].map(String::from).to_vec();
    assert_eq!(names, want);
}

#[test]
fn a_graph_file_names_anonymous_entries_and_reads_back_the_same() {
    // (Only plugin functions can be written to a file: literals and lists here.)
    let mut g = Graph::new();
    let a = g.add_anonymous(Comp::value(Value::Int(1))).unwrap();
    let b = g.add_anonymous(Comp::value(Value::str("b"))).unwrap();
    g.add_value("#1", Value::Int(7)).unwrap(); // takes b's plain name: b is written as "#1'"
    g.add(
        "both",
        Comp::list(vec![Comp::id(a), Comp::id(b), Comp::key("#1")]),
    )
    .unwrap();
    let text = daskr::graphfile::write(&g, Some(&Value::str("both")), None).unwrap();
    let back = daskr::graphfile::parse(text.as_bytes(), std::path::Path::new(".")).unwrap();
    let o = common::opts(Scheduler::Sync);
    let want = Value::list(vec![Value::Int(1), Value::str("b"), Value::Int(7)]).unwrap();
    assert_eq!(back.graph.get_key("both", &o).unwrap(), want);
    assert_eq!(back.graph.get_key("#0", &o).unwrap(), Value::Int(1));
    assert_eq!(back.graph.get_key("#1'", &o).unwrap(), Value::str("b"));
    assert_eq!(back.graph.get_key("#1", &o).unwrap(), Value::Int(7));
}

#[test]
fn a_handle_of_another_graph_or_an_undefined_entry_is_refused_by_get_tasks() {
    let (g, _, _) = tree(2);
    let (other, other_root, _) = tree(2);
    drop(other);
    let e = g
        .get_tasks(&[other_root], &common::opts(Scheduler::Sync))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    let mut g = Graph::new();
    let later = g.intern("later").unwrap();
    let e = g
        .get_tasks(&[later], &common::opts(Scheduler::Sync))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingKey, "{e}");
    assert_eq!(e.key.as_deref(), Some("later"));
}
