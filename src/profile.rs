//! Profiling a get: when a `Profiler` is attached, each entry's run is timed on the worker
//! that ran it (recorded in per-worker buffers, merged once at the end: no lock per task),
//! along with the scheduler's own phases. Written out as a Chrome trace / Perfetto JSON.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// One entry's run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpan {
    pub key: String,
    /// The task's function name; "alias", "list" or "literal" for other entries.
    pub func: String,
    /// The thread that ran it (0 is the caller's).
    pub worker: u32,
    /// Since the start of the get.
    pub start: Duration,
    pub end: Duration,
    pub ok: bool,
    /// Read from the result cache instead of computed.
    pub cached: bool,
}

/// A phase of the scheduler itself ("plan", "run").
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSpan {
    pub name: String,
    pub start: Duration,
    pub end: Duration,
}

/// What one get recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// In the order the entries started.
    pub tasks: Vec<TaskSpan>,
    pub phases: Vec<PhaseSpan>,
    pub workers: u32,
}

/// Attach to a get (in `Options`) to record its profile; it holds the profile of the last get
/// it was attached to. Thread-safe.
#[derive(Default)]
pub struct Profiler {
    last: Mutex<(u64, Profile)>,
}

impl Profiler {
    pub fn new() -> Profiler {
        Profiler::default()
    }

    /// A copy of the last recorded profile.
    pub fn profile(&self) -> Profile {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Runs `f` on the last recorded profile and its generation (how many gets recorded into
    /// this profiler so far), without copying it.
    pub fn with<R>(&self, f: impl FnOnce(u64, &Profile) -> R) -> R {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        f(last.0, &last.1)
    }

    pub(crate) fn record(&self, profile: Profile) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = (last.0 + 1, profile);
    }
}

impl Profile {
    /// Chrome trace event JSON (loads in chrome://tracing and ui.perfetto.dev): one complete
    /// ("X") slice per entry on its worker's track, and the phases on a "scheduler" track.
    pub fn chrome_trace_json(&self) -> String {
        let mut out = String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
        let mut first = true;
        let mut event = |out: &mut String,
                         name: &str,
                         cat: &str,
                         tid: u32,
                         start: Duration,
                         end: Duration,
                         args: &str| {
            if !first {
                out.push_str(",\n");
            }
            first = false;
            let _ = write!(
                out,
                "{{\"name\":{},\"cat\":\"{cat}\",\"ph\":\"X\",\"pid\":1,\"tid\":{tid},\"ts\":{:.3},\"dur\":{:.3},\"args\":{{{args}}}}}",
                json_string(name),
                start.as_nanos() as f64 / 1000.0,
                end.saturating_sub(start).as_nanos() as f64 / 1000.0,
            );
        };
        for p in &self.phases {
            event(&mut out, &p.name, "scheduler", 0, p.start, p.end, "");
        }
        for t in &self.tasks {
            let args = format!(
                "\"key\":{},\"func\":{},\"ok\":{},\"cached\":{}",
                json_string(&t.key),
                json_string(&t.func),
                t.ok,
                t.cached
            );
            event(
                &mut out,
                &t.key,
                if t.cached { "cached" } else { "task" },
                t.worker + 1,
                t.start,
                t.end,
                &args,
            );
        }
        out.push_str("\n],\"metadata\":{\"tool\":\"daskr\"}}\n");
        out
    }
}

/// A JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
