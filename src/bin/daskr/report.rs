//! What `daskr run` reports besides the results: a progress bar, a Chrome trace, a picture of
//! the graph and run statistics (all on stderr or into files, so stdout stays the results).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use daskr::{Error, ErrorKind, Profile, Progress, Stats};

/// Runs `f` while a thread draws the progress of `progress` on stderr: a bar redrawn in place
/// on a terminal, otherwise a plain line about once a second (and one at the end). The run
/// itself only bumps a counter every 256 tasks.
pub fn with_progress<R>(enabled: bool, progress: &Progress, f: impl FnOnce() -> R) -> R {
    if !enabled {
        return f();
    }
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let drawer = scope.spawn(|| draw(progress, &finished));
        let result = f();
        finished.store(true, Ordering::Release);
        drawer.thread().unpark();
        let _ = drawer.join();
        result
    })
}

fn draw(progress: &Progress, finished: &AtomicBool) {
    let start = Instant::now();
    let over = || finished.load(Ordering::Acquire);
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(progress.total());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} tasks  {per_sec}  ETA {eta}",
            )
            .expect("a valid template"),
        );
        loop {
            bar.set_length(progress.total());
            bar.set_position(progress.done());
            if over() {
                break;
            }
            std::thread::park_timeout(Duration::from_millis(100));
        }
        bar.finish();
    } else {
        let mut last = Instant::now();
        while !over() {
            std::thread::park_timeout(Duration::from_millis(200));
            if last.elapsed() >= Duration::from_secs(1) && !over() {
                eprintln!("{}", line(progress, start.elapsed()));
                last = Instant::now();
            }
        }
        eprintln!("{}", line(progress, start.elapsed()));
    }
}

/// `daskr: 500000/1000000 tasks (50%), 1.2M tasks/s, elapsed 0.4s, ETA 0.4s`
pub fn line(progress: &Progress, elapsed: Duration) -> String {
    let (done, total) = (progress.done(), progress.total().max(1));
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let eta = if done >= total || rate <= 0.0 {
        "0.0s".to_string()
    } else {
        format!("{:.1}s", (total - done) as f64 / rate)
    };
    format!(
        "daskr: {done}/{total} tasks ({}%), {} tasks/s, elapsed {:.1}s, ETA {eta}",
        done * 100 / total,
        si(rate),
        elapsed.as_secs_f64()
    )
}

fn si(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// The profile of the whole command: the engine's (relative to the start of the get) shifted
/// after a "build" phase (reading the graph file) that starts at 0.
pub fn with_build_phase(mut profile: Profile, build: Duration) -> Profile {
    for t in &mut profile.tasks {
        t.start += build;
        t.end += build;
    }
    for p in &mut profile.phases {
        p.start += build;
        p.end += build;
    }
    profile.phases.insert(
        0,
        daskr::profile::PhaseSpan {
            name: "build".into(),
            start: Duration::ZERO,
            end: build,
        },
    );
    profile
}

/// The figures `--stats` prints and `--stats-json` writes.
pub struct Report<'a> {
    pub stats: &'a Stats,
    pub profile: &'a Profile,
    /// Reading the graph file (the graph is built as the file is read).
    pub build: Duration,
    /// The graph's own heap bytes (`Graph::heap_bytes`), for memory reports.
    pub graph_bytes: usize,
    pub error: Option<&'a Error>,
}

impl Report<'_> {
    /// Each worker's busy share of the run phase (time inside entries / run time).
    fn busy(&self) -> Vec<f64> {
        let run = self.stats.run_time.as_secs_f64().max(1e-12);
        let mut busy = vec![0.0; self.stats.workers.max(1) as usize];
        for t in &self.profile.tasks {
            if let Some(b) = busy.get_mut(t.worker as usize) {
                *b += t.end.saturating_sub(t.start).as_secs_f64();
            }
        }
        busy.iter().map(|b| (b / run).min(1.0)).collect()
    }

    fn failed_key(&self) -> Option<&str> {
        self.error
            .filter(|e| e.kind == ErrorKind::TaskFailed)
            .and_then(|e| e.key.as_deref())
    }

    fn wall(&self) -> Duration {
        self.build + self.stats.plan_time + self.stats.run_time
    }

    pub fn text(&self) -> String {
        let s = self.stats;
        let per_task = self.stats.run_time.as_secs_f64() / s.entries_run.max(1) as f64;
        let mut out = format!(
            "daskr stats: {} of {} entries ran on {} worker(s); wall {:.3} ms (build {:.3}, plan {:.3}, run {:.3}); {} per entry\n",
            s.entries_run,
            s.entries,
            s.workers,
            ms(self.wall()),
            ms(self.build),
            ms(s.plan_time),
            ms(s.run_time),
            duration_text(per_task),
        );
        let busy: Vec<String> = self
            .busy()
            .iter()
            .enumerate()
            .map(|(w, b)| format!("worker {w} {:.0}%", b * 100.0))
            .collect();
        out.push_str(&format!("  busy: {}\n", busy.join(", ")));
        out.push_str(&format!("  peak results held at once: {}\n", s.peak_held));
        let c = &s.cache;
        if *c != daskr::CacheStats::default() {
            out.push_str(&format!(
                "  cache: {} hits, {} misses, {} not needed; {} bytes read, {} written\n",
                c.hits, c.misses, c.skipped, c.bytes_read, c.bytes_written
            ));
        }
        match (self.failed_key(), self.error) {
            (Some(k), _) => out.push_str(&format!("  failed: task '{k}'\n")),
            (None, Some(e)) => out.push_str(&format!("  failed: {}\n", e.kind.name())),
            _ => {}
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let s = self.stats;
        serde_json::json!({
            "entries": s.entries,
            "entries_run": s.entries_run,
            "workers": s.workers,
            "wall_s": self.wall().as_secs_f64(),
            "build_s": self.build.as_secs_f64(),
            "graph_bytes": self.graph_bytes,
            "plan_s": s.plan_time.as_secs_f64(),
            "run_s": s.run_time.as_secs_f64(),
            "s_per_entry": s.run_time.as_secs_f64() / s.entries_run.max(1) as f64,
            "busy_share": self.busy(),
            "peak_held": s.peak_held,
            "cache": {
                "hits": s.cache.hits,
                "misses": s.cache.misses,
                "skipped": s.cache.skipped,
                "bytes_read": s.cache.bytes_read,
                "bytes_written": s.cache.bytes_written,
            },
            "failed_key": self.failed_key(),
            "error_kind": self.error.map(|e| e.kind.name()),
            "order": self.profile.tasks.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn duration_text(s: f64) -> String {
    match s {
        s if s >= 1e-3 => format!("{:.3} ms", s * 1e3),
        s if s >= 1e-6 => format!("{:.3} µs", s * 1e6),
        s => format!("{:.0} ns", s * 1e9),
    }
}

/// Writes `text` to `path`, as an error naming the file.
pub fn write_file(path: &std::path::Path, text: &str) -> Result<(), Error> {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io("cannot write", path, &e))
}
