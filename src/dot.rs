//! Pictures of graphs: Graphviz DOT for the part of a graph that some keys need — tasks as
//! boxes labelled with key and function, data as edges (input -> consumer), requested keys
//! drawn with a double border — optionally coloured by how long each entry ran (from a
//! profile) and with a failed entry in red.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Graph, View};
use crate::plan::Plan;
use crate::profile::Profile;
use crate::value::Value;

/// What to draw besides the graph itself.
#[derive(Default, Clone, Copy)]
pub struct DotStyle<'a> {
    /// Colour entries by their run time in this profile (hotter = longer).
    pub profile: Option<&'a Profile>,
    /// Draw this entry as failed.
    pub failed_key: Option<&'a str>,
}

/// The DOT text for the entries `keys` need (culled as a get would cull them).
pub fn to_dot(graph: &Graph, keys: &Value, style: DotStyle<'_>) -> Result<String> {
    let plan = Plan::new(graph, keys)?;
    let durations: Option<rustc_hash::FxHashMap<&str, f64>> = style.profile.map(|p| {
        p.tasks
            .iter()
            .map(|t| (t.key.as_str(), t.end.saturating_sub(t.start).as_secs_f64()))
            .collect()
    });
    let longest = durations
        .as_ref()
        .map_or(0.0, |d| d.values().cloned().fold(0.0, f64::max));
    let mut out = String::from("digraph daskr {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [color=\"#555555\"];\n");
    for (p, &id) in plan.order.iter().enumerate() {
        let name = graph.key_name(id);
        let key: &str = &name;
        let (shape, what) = match graph.entry(id) {
            View::Task(call) => ("box", graph.func(call.func).name().to_string()),
            View::Ref(target) => ("box", format!("alias of {}", graph.key_name(target))),
            View::List { len, .. } => ("box", format!("list of {len}")),
            View::Map { names, .. } => ("box", format!("map of {}", names.len())),
            View::Lit(v) => ("ellipse", preview(v)),
        };
        let mut attrs = format!("label={}, shape={shape}", quote(&format!("{key}\n{what}")));
        if plan.is_requested(p as u32) {
            attrs.push_str(", peripheries=2, penwidth=1.5");
        }
        if style.failed_key == Some(key) {
            attrs.push_str(", style=filled, fillcolor=\"#ff6b6b\"");
        } else if let Some(d) = durations.as_ref().and_then(|d| d.get(key)) {
            let heat = if longest > 0.0 { d / longest } else { 0.0 };
            let _ = write!(
                attrs,
                ", style=filled, fillcolor=\"{}\", tooltip={}",
                heat_colour(heat),
                quote(&format!("{:.3} ms", d * 1e3))
            );
        }
        let _ = writeln!(out, "  n{p} [{attrs}];");
    }
    for (p, &id) in plan.order.iter().enumerate() {
        for &d in graph.deps(id) {
            let _ = writeln!(out, "  n{} -> n{p};", plan.pos[d as usize]);
        }
    }
    out.push_str("}\n");
    Ok(out)
}

/// Writes DOT text to `path`; a path ending in `.svg` is rendered with Graphviz's `dot`.
pub fn write(path: &Path, dot: &str) -> Result<()> {
    let io = |e: std::io::Error| Error::io("cannot write", path, &e);
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .arg("-o")
            .arg(path)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("cannot render '{}': Graphviz's `dot` is not available ({e}); install graphviz, or write a .dot file", path.display()),
                )
            })?;
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(dot.as_bytes())
            .map_err(io)?;
        let output = child.wait_with_output().map_err(io)?;
        if !output.status.success() {
            return Err(Error::invalid_argument(format!(
                "dot failed rendering '{}': {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    } else {
        std::fs::write(path, dot).map_err(io)
    }
}

/// A short rendering of a literal for a label.
fn preview(v: &Value) -> String {
    let s = match v {
        Value::Str(_) => format!("{:?}", v.as_str().unwrap_or_default()),
        Value::Bytes(_) => format!("{} bytes", v.as_bytes().map_or(0, <[u8]>::len)),
        Value::List(_) => format!("list of {}", v.as_list().map_or(0, <[Value]>::len)),
        Value::Map(_) => format!("map of {}", v.as_map().map_or(0, |m| m.len())),
        other => format!("{other:?}"),
    };
    if s.chars().count() > 24 {
        s.chars().take(21).collect::<String>() + "..."
    } else {
        s
    }
}

/// Light yellow (short) to red (longest).
fn heat_colour(heat: f64) -> String {
    let h = heat.clamp(0.0, 1.0);
    let (r, g, b) = (255.0, 245.0 - 170.0 * h, 200.0 - 170.0 * h);
    format!("#{:02x}{:02x}{:02x}", r as u8, g as u8, b as u8)
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
