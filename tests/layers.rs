//! The layers hold: engine ← C ABI (`src/ffi`) ← command (`src/bin`) and wrappers. The engine
//! (every other file under `src`) never names `ffi` or the command, and its modules import
//! each other without loops, so each can be read (and changed) knowing only those below it.
//! The rules are checked on the source text, which is what a reviewer reads: a `crate::` or
//! `super::` path, or a child module named by its parent, counts as an import of the file
//! that defines it. Unit tests (`#[cfg(test)] mod tests`) are left out: they may reach
//! anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file as a module: its path from `src`, and its module path (`sched::processes`).
struct Module {
    file: String,
    path: Vec<String>,
    code: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every file of the library crate (the command, under `src/bin`, is a crate of its own).
fn modules() -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with("bin/") {
            continue;
        }
        let mut path: Vec<String> = rel
            .trim_end_matches(".rs")
            .split('/')
            .map(String::from)
            .collect();
        if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
            path.pop();
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests may import anything: only the code above them counts.
        let code = match text.find("#[cfg(test)]\nmod tests") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        // Comments name modules in prose ("see `ffi`"): only code counts.
        let code = code
            .lines()
            .map(|l| match l.trim_start().starts_with("//") {
                true => "",
                false => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        modules.push(Module {
            file: rel,
            path,
            code,
        });
    }
    modules
}

fn is_engine(m: &Module) -> bool {
    !(m.file == "lib.rs" || m.file.starts_with("ffi/"))
}

/// The paths a module's code names, made absolute (from the crate root).
fn named_paths(m: &Module, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let code = m.code.as_str();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let starts_word = i == 0 || !code[..i].ends_with(ident);
        let take = |prefix: &str| starts_word && rest.starts_with(prefix);
        let (mut base, skip) = if take("crate::") {
            (Vec::new(), "crate::".len())
        } else if take("super::") {
            // `super` of a file is the module holding it.
            let mut base = m.path.clone();
            let mut skip = 0;
            while code[i + skip..].starts_with("super::") {
                base.pop();
                skip += "super::".len();
            }
            (base, skip)
        } else if starts_word && children.iter().any(|c| rest.starts_with(&format!("{c}::"))) {
            (m.path.clone(), 0)
        } else {
            i += rest.chars().next().unwrap().len_utf8();
            continue;
        };
        // The segments after the prefix; a `{a, b}` group names each.
        let tail = &rest[skip..];
        let seg_end = tail
            .find(|c: char| !(ident(c) || c == ':'))
            .unwrap_or(tail.len());
        let segs: Vec<String> = tail[..seg_end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        base.extend(segs);
        if tail[seg_end..].starts_with('{') {
            let close = tail[seg_end..].find('}').unwrap_or(0);
            for item in tail[seg_end + 1..seg_end + close].split(',') {
                let mut p = base.clone();
                p.extend(item.trim().split("::").map(|s| s.trim().to_string()));
                out.push(p);
            }
        } else {
            out.push(base);
        }
        i += skip + seg_end.max(1);
    }
    out
}

/// The file a path resolves to: its longest prefix that is a module.
fn file_of<'m>(path: &[String], by_path: &BTreeMap<Vec<String>, &'m Module>) -> Option<&'m Module> {
    (0..=path.len())
        .rev()
        .find_map(|n| by_path.get(&path[..n]).copied())
}

/// Which engine files each engine file imports.
fn imports(modules: &[Module]) -> BTreeMap<String, BTreeSet<String>> {
    let by_path: BTreeMap<Vec<String>, &Module> =
        modules.iter().map(|m| (m.path.clone(), m)).collect();
    let mut edges = BTreeMap::new();
    for m in modules {
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|c| c.path.len() == m.path.len() + 1 && c.path.starts_with(&m.path))
            .map(|c| c.path.last().unwrap().clone())
            .collect();
        let mut to = BTreeSet::new();
        for p in named_paths(m, &children) {
            if let Some(target) = file_of(&p, &by_path) {
                if target.file != m.file {
                    to.insert(target.file.clone());
                }
            }
        }
        edges.insert(m.file.clone(), to);
    }
    edges
}

#[test]
fn the_engine_never_imports_the_c_layer_or_the_command() {
    let modules = modules();
    let edges = imports(&modules);
    let mut wrong = Vec::new();
    for m in modules.iter().filter(|m| is_engine(m)) {
        for to in &edges[&m.file] {
            if to.starts_with("ffi/") || to == "lib.rs" {
                wrong.push(format!("src/{} imports src/{to}", m.file));
            }
        }
        // The command is another crate: reaching it would take a path out of `src`.
        if m.code.contains("bin/daskr") || m.code.contains("#[path") {
            wrong.push(format!("src/{} reaches outside the library", m.file));
        }
    }
    assert!(
        wrong.is_empty(),
        "the engine must not depend on the C ABI (declarations it needs live in src/abi.rs, \
         which ffi re-exports):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn engine_modules_import_each_other_without_loops() {
    let modules = modules();
    let all = imports(&modules);
    let engine: BTreeSet<&String> = modules
        .iter()
        .filter(|m| is_engine(m))
        .map(|m| &m.file)
        .collect();
    let edges: BTreeMap<&String, Vec<&String>> = engine
        .iter()
        .map(|f| (*f, all[*f].iter().filter(|t| engine.contains(t)).collect()))
        .collect();
    // Depth-first search; a grey node met again closes a loop.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        White,
        Grey,
        Black,
    }
    let mut mark: BTreeMap<&String, Mark> = engine.iter().map(|f| (*f, Mark::White)).collect();
    let mut loops = Vec::new();
    fn visit<'a>(
        f: &'a String,
        edges: &BTreeMap<&'a String, Vec<&'a String>>,
        mark: &mut BTreeMap<&'a String, Mark>,
        stack: &mut Vec<&'a String>,
        loops: &mut Vec<String>,
    ) {
        mark.insert(f, Mark::Grey);
        stack.push(f);
        for &t in &edges[f] {
            match mark[t] {
                Mark::White => visit(t, edges, mark, stack, loops),
                Mark::Grey => {
                    let at = stack.iter().position(|s| *s == t).unwrap();
                    let mut cycle: Vec<&str> = stack[at..].iter().map(|s| s.as_str()).collect();
                    cycle.push(t);
                    loops.push(cycle.join(" -> "));
                }
                Mark::Black => {}
            }
        }
        stack.pop();
        mark.insert(f, Mark::Black);
    }
    for f in &engine {
        if mark[*f] == Mark::White {
            visit(f, &edges, &mut mark, &mut Vec::new(), &mut loops);
        }
    }
    assert!(
        loops.is_empty(),
        "engine modules import each other in a loop:\n{}",
        loops.join("\n")
    );
}

/// The checks see what they must: a file known to import another is seen doing so.
#[test]
fn the_import_scan_sees_known_imports() {
    let edges = imports(&modules());
    assert!(edges["graph.rs"].contains("comp.rs"));
    assert!(edges["ffi/graph.rs"].contains("graph.rs"));
    assert!(edges["ffi/mod.rs"].contains("ffi/error.rs"));
}
