//! The result cache (docs/cache.md): a rerun runs only what changed or did not finish, on
//! every scheduler that takes a cache; damaged entries are recomputed, never returned; what
//! may not be cached is not; two processes share a directory; the size bound holds.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use daskr::{graphfile, Cache, Comp, Func, Graph, Options, Profiler, Progress, Scheduler, Value};

/// An empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = common::target_dir("cache-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn example_plugin() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = scratch("plugin");
        common::build_plugin(
            &common::root().join("examples/plugins/example.c"),
            &dir.join("libexample.so"),
        )
    })
}

/// The text of examples/pipeline.json with its plugin found here, and `replace` applied.
fn pipeline_text(replace: (&str, &str)) -> String {
    let text = std::fs::read_to_string(common::root().join("examples/pipeline.json")).unwrap();
    text.replace(
        "../target/plugins/libexample.so",
        &example_plugin().to_string_lossy(),
    )
    .replace(replace.0, replace.1)
}

/// examples/pipeline.json with its plugin found here, and `replace` applied.
fn pipeline(replace: (&str, &str)) -> graphfile::GraphFile {
    graphfile::parse(pipeline_text(replace).as_bytes(), common::root()).unwrap()
}

fn with_cache<'a>(scheduler: Scheduler, cache: &'a Cache) -> Options<'a> {
    Options {
        scheduler,
        cache: Some(cache),
        num_workers: 2,
        ..Options::default()
    }
}

/// The keys a profile shows computed (not read from the cache).
fn computed(profiler: &Profiler) -> BTreeSet<String> {
    profiler
        .profile()
        .tasks
        .iter()
        .filter(|t| !t.cached)
        .map(|t| t.key.clone())
        .collect()
}

fn keys(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn pipeline_rerun_runs_only_what_changed() {
    for scheduler in [Scheduler::Sync, Scheduler::Threads, Scheduler::Processes] {
        let dir = scratch(&format!("pipeline-{}", scheduler.name()));
        let cache = Cache::open(&dir).unwrap();
        let profiler = Profiler::new();
        let run = |file: &graphfile::GraphFile| {
            let options = Options {
                profiler: Some(&profiler),
                ..with_cache(scheduler, &cache)
            };
            let keys = file.keys.clone().unwrap();
            let (result, stats) = file.graph.get_with_stats(&keys, &options);
            let uncached = file.graph.get(&keys, &Options::default()).unwrap();
            assert_eq!(result.unwrap(), uncached, "{scheduler:?}");
            stats
        };
        let first = pipeline(("", ""));
        let s = run(&first);
        assert_eq!((s.entries, s.entries_run), (8, 8), "{scheduler:?}");
        assert_eq!((s.cache.hits, s.cache.misses), (0, 8), "{scheduler:?}");
        // What was written is on disk, whichever process wrote it (worker processes write
        // segments named after the get, which the parent counts).
        assert!(s.cache.bytes_written > 0, "{scheduler:?}");
        assert_eq!(s.cache.bytes_written, cache.usage().bytes, "{scheduler:?}");
        assert_eq!(cache.usage().entries, 8, "{scheduler:?}");

        // Nothing changed: no task runs; only the two requested results are read.
        let s = run(&first);
        assert_eq!(s.entries_run, 0, "{scheduler:?}");
        assert_eq!((s.cache.hits, s.cache.skipped), (2, 6), "{scheduler:?}");
        assert!(s.cache.bytes_read > 0);

        // One input file renamed: its load -> clean branch and what follows run; the other
        // cleaned files are read, and their loads are not needed.
        let changed = pipeline(("myfile.a.data", "myfile.z.data"));
        let s = run(&changed);
        assert_eq!(s.entries_run, 4, "{scheduler:?}");
        assert_eq!(
            (s.cache.hits, s.cache.misses, s.cache.skipped),
            (2, 4, 2),
            "{scheduler:?}"
        );
        if scheduler != Scheduler::Processes {
            assert_eq!(
                computed(&profiler),
                keys(&["load-1", "clean-1", "analyze", "store"])
            );
        }
        let s = run(&changed);
        assert_eq!(s.entries_run, 0, "{scheduler:?}");
        // And back: the first version's results are all still there.
        let s = run(&first);
        assert_eq!((s.entries_run, s.cache.hits), (0, 2), "{scheduler:?}");
    }
}

/// `add(x, 1)`, counting its calls, keyed by `version`.
fn counting_add(version: Option<&str>, calls: Arc<AtomicUsize>) -> Func {
    let f = move |call: &mut daskr::Call<'_>| {
        calls.fetch_add(1, Ordering::Relaxed);
        let x = call.arg(0).and_then(Value::as_int).unwrap();
        call.ret(Value::Int(x + call.arg(1).and_then(Value::as_int).unwrap()));
    };
    match version {
        Some(v) => Func::new_versioned("add", v, f),
        None => Func::new("add", f),
    }
}

/// The segment files of a cache directory (docs/cache.md: "An entry on disk").
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("daskr-cache-v2/seg"))
        .unwrap()
        .flatten()
        .map(|f| f.path())
        .collect();
    out.sort();
    out
}

/// A segment's entries: (offset in the file, length) of each payload, in index order.
fn payloads(bytes: &[u8]) -> Vec<(usize, usize)> {
    let count = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let data = 16 + count * 40;
    (0..count)
        .map(|i| {
            let e = 16 + i * 40;
            let at = |k: usize| u32::from_le_bytes(bytes[e + k..e + k + 4].try_into().unwrap());
            (data + at(16) as usize, at(20) as usize)
        })
        .collect()
}

#[test]
fn damaged_entries_are_recomputed_not_returned() {
    let dir = scratch("damaged");
    let cache = Cache::open(&dir).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let g = common::counting_chain(&counting_add(Some("1"), calls.clone()), 20);
    let opts = with_cache(Scheduler::Threads, &cache);
    assert_eq!(g.get_key("c-20", &opts).unwrap(), Value::Int(20));
    assert_eq!(calls.load(Ordering::Relaxed), 20);
    let files = segment_files(&dir);
    assert_eq!(files.len(), 1);
    // Every entry damaged a different way: a payload bit, a checksum bit, a length, an
    // offset pointing past the end.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let entries = payloads(&bytes);
    assert_eq!(entries.len(), 20);
    for (i, &(at, len)) in entries.iter().enumerate() {
        let e = 16 + i * 40;
        match i % 4 {
            0 => bytes[at + len - 1] ^= 0x40,
            1 => bytes[e + 30] ^= 1,
            2 => bytes[e + 20] ^= 1,
            _ => bytes[e + 19] = 0xff,
        }
    }
    std::fs::write(&files[0], bytes).unwrap();
    let (result, stats) = g.get_with_stats(&Value::str("c-20"), &opts);
    assert_eq!(result.unwrap(), Value::Int(20));
    assert_eq!((stats.cache.hits, stats.entries_run), (0, 21));
    assert_eq!(calls.load(Ordering::Relaxed), 40);
    // The recomputed results are found first now.
    let (result, stats) = g.get_with_stats(&Value::str("c-20"), &opts);
    assert_eq!(result.unwrap(), Value::Int(20));
    assert_eq!((stats.cache.hits, stats.entries_run), (1, 0));
    // A truncated segment: the entries past its end are recomputed, the others read.
    for f in segment_files(&dir) {
        std::fs::remove_file(f).unwrap();
    }
    let g = common::counting_chain(&counting_add(Some("1"), calls.clone()), 20);
    g.get_key("c-20", &opts).unwrap();
    let files = segment_files(&dir);
    let bytes = std::fs::read(&files[0]).unwrap();
    let mut ends: Vec<usize> = payloads(&bytes).iter().map(|&(a, l)| a + l).collect();
    ends.sort();
    // Cut inside the last payload.
    std::fs::write(&files[0], &bytes[..ends[19] - 1]).unwrap();
    let before = calls.load(Ordering::Relaxed);
    let (result, stats) = g.get_with_stats(&Value::str("c-20"), &opts);
    assert_eq!(result.unwrap(), Value::Int(20));
    let ran = calls.load(Ordering::Relaxed) - before;
    assert!((1..=20).contains(&ran), "{ran}");
    assert_eq!(stats.cache.misses, ran as u64);
}

#[test]
fn a_failed_run_keeps_what_finished() {
    for scheduler in [Scheduler::Sync, Scheduler::Threads] {
        let dir = scratch(&format!("resume-{}", scheduler.name()));
        let cache = Cache::open(&dir).unwrap();
        let broken = Arc::new(AtomicBool::new(true));
        let b = broken.clone();
        let f = Func::new_versioned("step", "1", move |call| {
            let x = call.arg(0).and_then(Value::as_int).unwrap();
            if x == 6 && b.load(Ordering::Relaxed) {
                call.fail("disk full");
                return;
            }
            call.ret(Value::Int(x + 1));
        });
        let g = common::counting_chain(&f, 10);
        let opts = with_cache(scheduler, &cache);
        let (result, _) = g.get_with_stats(&Value::str("c-10"), &opts);
        assert_eq!(result.unwrap_err().key.as_deref(), Some("c-7"));
        broken.store(false, Ordering::Relaxed);
        let (result, stats) = g.get_with_stats(&Value::str("c-10"), &opts);
        assert_eq!(result.unwrap(), Value::Int(10));
        // c-1..c-6 finished before: c-6 is read, c-7..c-10 run.
        assert_eq!(stats.entries_run, 4, "{scheduler:?}");
        assert_eq!(
            (stats.cache.hits, stats.cache.misses),
            (1, 4),
            "{scheduler:?}"
        );
    }
}

/// A result is on disk within about a second of finishing, while the get still runs — so a
/// process killed during a long task keeps what finished before it.
#[test]
fn results_reach_the_disk_while_a_long_task_runs() {
    let dir = scratch("flush");
    let cache = Cache::open(&dir).unwrap();
    let seg = dir.join("daskr-cache-v2/seg");
    let watched = seg.clone();
    // c-1 returns at once; c-2 waits (up to a minute, a bound far from the second it
    // takes) until a segment holding c-1 has appeared.
    let f = Func::new_versioned("step", "1", move |call| {
        let x = call.arg(0).and_then(Value::as_int).unwrap();
        if x == 1 {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while std::fs::read_dir(&watched).unwrap().count() == 0 {
                if std::time::Instant::now() > deadline {
                    call.fail("c-1 was not written while c-2 ran");
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        call.ret(Value::Int(x + 1));
    });
    let g = common::counting_chain(&f, 2);
    for scheduler in [Scheduler::Sync, Scheduler::Threads] {
        cache.clear().unwrap();
        let (r, stats) = g.get_with_stats(&Value::str("c-2"), &with_cache(scheduler, &cache));
        assert_eq!(r.unwrap(), Value::Int(2), "{scheduler:?}");
        // c-1's segment, then c-2's at the end of the get.
        assert_eq!(std::fs::read_dir(&seg).unwrap().count(), 2, "{scheduler:?}");
        assert_eq!(stats.cache.misses, 2);
    }
}

/// A `daskr run` killed outright (SIGKILL: no chance to write at its end) keeps what its
/// cache writer wrote while it ran, and the rerun starts from there.
#[test]
fn a_killed_run_resumes_from_what_reached_the_disk() {
    let dir = scratch("killed");
    // Six seconds in all: far from the second after which the first results are on disk.
    let n = 60;
    // s-0 .. s-59, each sleeping 100 ms and returning its predecessor's value plus one.
    let mut graph = serde_json::Map::new();
    for i in 0..n {
        let value = if i == 0 {
            serde_json::json!(1)
        } else {
            serde_json::json!({"fn": "ex:add", "args": [format!("s-{}", i - 1), 1]})
        };
        graph.insert(
            format!("s-{i}"),
            serde_json::json!({"fn": "ex:sleep_ms", "args": [100], "kwargs": {"value": value}}),
        );
    }
    let file = serde_json::json!({
        "plugins": {"ex": example_plugin()},
        "graph": graph,
        "keys": format!("s-{}", n - 1),
    });
    let path = dir.join("slow-chain.json");
    std::fs::write(&path, file.to_string()).unwrap();
    let cache = dir.join("cache");
    let stats = dir.join("stats.json");
    let mut child = daskr_run(&path, &cache, &stats)
        .args(["--scheduler", "sync"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first segment appears about a second after the first result: kill then.
    let seg = cache.join("daskr-cache-v2/seg");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&seg).map_or(0, |d| d.count()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no segment written within a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let kept = Cache::open(&cache).unwrap().usage().entries;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it was killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!((1..n).contains(&kept), "{kept} entries kept");

    let out = daskr_run(&path, &cache, &stats).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), n.to_string());
    let s = stats_json(&stats);
    // The deepest result kept is read; only what follows it runs.
    assert_eq!(s["cache"]["hits"], 1);
    let ran = s["entries_run"].as_u64().unwrap();
    assert!(ran <= n - kept, "{ran} ran after {kept} of {n} were kept");
}

/// Thousands of lookups in one get (found together, not one by one), with some entries
/// damaged: the found ones are read, the damaged ones recomputed.
#[test]
fn a_wide_graph_reads_thousands_of_entries() {
    let dir = scratch("wide");
    let cache = Cache::open(&dir).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let inc = Func::new_versioned("inc", "1", move |call| {
        c.fetch_add(1, Ordering::Relaxed);
        call.ret(Value::Int(call.arg(0).and_then(Value::as_int).unwrap() + 1));
    });
    let n = 10_000;
    let build = |sink_version: &str| {
        let sum = Func::new_versioned("sum", sink_version, |call| {
            let s = (0..call.nargs()).map(|i| call.arg(i).unwrap().as_int().unwrap());
            call.ret(Value::Int(s.sum()));
        });
        let mut g = Graph::new();
        let leaves: Vec<Comp> = (0..n)
            .map(|i| {
                let t = g
                    .add_task(
                        &format!("leaf-{i}"),
                        &inc,
                        vec![Comp::value(Value::Int(i))],
                        vec![],
                    )
                    .unwrap();
                Comp::id(t)
            })
            .collect();
        g.add_task("sink", &sum, leaves, vec![]).unwrap();
        g
    };
    let want = Value::Int((1..=n).sum());
    let opts = with_cache(Scheduler::Threads, &cache);
    assert_eq!(build("1").get_key("sink", &opts).unwrap(), want);
    assert_eq!(calls.load(Ordering::Relaxed), n as usize);
    // Damage the payloads of three leaves (their checksums fail).
    let files = segment_files(&dir);
    assert_eq!(files.len(), 1);
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let entries = payloads(&bytes);
    for &(at, len) in [entries[3], entries[5000], entries[9000]].iter() {
        bytes[at + len - 1] ^= 0x10;
    }
    std::fs::write(&files[0], bytes).unwrap();
    // The sink changed: every leaf is looked up; the sink and the three damaged ones run.
    let (r, stats) = build("2").get_with_stats(&Value::str("sink"), &opts);
    assert_eq!(r.unwrap(), want);
    assert_eq!(stats.entries_run, 4);
    assert_eq!(stats.cache.hits, n as u64 - 3);
    assert_eq!(calls.load(Ordering::Relaxed), n as usize + 3);
}

#[test]
fn what_may_not_be_cached_runs_every_time() {
    let dir = scratch("uncached");
    let cache = Cache::open(&dir).unwrap();
    let opts = with_cache(Scheduler::Sync, &cache);

    // A function made without a version, and everything downstream of it.
    let plain = Arc::new(AtomicUsize::new(0));
    let versioned = Arc::new(AtomicUsize::new(0));
    let mut g = Graph::new();
    let a = g
        .add_task(
            "a",
            &counting_add(None, plain.clone()),
            vec![Comp::value(Value::Int(1)), Comp::value(Value::Int(1))],
            vec![],
        )
        .unwrap();
    let v = counting_add(Some("1"), versioned.clone());
    g.add_task(
        "b",
        &v,
        vec![Comp::id(a), Comp::value(Value::Int(1))],
        vec![],
    )
    .unwrap();
    for _ in 0..2 {
        assert_eq!(g.get_key("b", &opts).unwrap(), Value::Int(3));
    }
    assert_eq!(plain.load(Ordering::Relaxed), 2);
    assert_eq!(versioned.load(Ordering::Relaxed), 2);

    // A pointer result is never stored; a literal pointer argument makes a task unkeyable.
    let made = Arc::new(AtomicUsize::new(0));
    let m = made.clone();
    let ptr = Func::new_versioned("ptr", "1", move |call| {
        m.fetch_add(1, Ordering::Relaxed);
        call.ret(Value::pointer(std::ptr::null_mut(), "thing", None));
    });
    let mut g = Graph::new();
    g.add_task("p", &ptr, vec![], vec![]).unwrap();
    g.add_task(
        "q",
        &ptr,
        vec![Comp::value(Value::pointer(
            std::ptr::null_mut(),
            "arg",
            None,
        ))],
        vec![],
    )
    .unwrap();
    for _ in 0..2 {
        let (r, stats) = g.get_with_stats(
            &Value::list(vec![Value::str("p"), Value::str("q")]).unwrap(),
            &opts,
        );
        r.unwrap();
        assert_eq!((stats.cache.hits, stats.cache.bytes_written), (0, 0));
    }
    assert_eq!(made.load(Ordering::Relaxed), 4);

    // A result larger than the limit is not stored; a smaller one is.
    let big = Func::new_versioned("big", "1", |call| {
        let n = call.arg(0).and_then(Value::as_int).unwrap() as usize;
        call.ret(Value::bytes(&vec![7u8; n]));
    });
    let mut g = Graph::new();
    g.add_task("small", &big, vec![Comp::value(Value::Int(10))], vec![])
        .unwrap();
    g.add_task("large", &big, vec![Comp::value(Value::Int(5000))], vec![])
        .unwrap();
    cache.set_max_entry_bytes(1000);
    let both = Value::list(vec![Value::str("small"), Value::str("large")]).unwrap();
    g.get(&both, &opts).unwrap();
    let (r, stats) = g.get_with_stats(&both, &opts);
    assert_eq!(
        r.unwrap().as_list().unwrap()[1].as_bytes().unwrap().len(),
        5000
    );
    assert_eq!((stats.cache.hits, stats.entries_run), (1, 1));
}

#[test]
fn an_impure_plugin_task_is_never_cached() {
    let dir = scratch("impure");
    let source = dir.join("impure.c");
    std::fs::write(
        &source,
        r#"
#include <stdint.h>
#include "daskr.h"
static int64_t counter;
void tick(daskr_call_t *call, void *ud) { (void)ud; daskr_call_return(call, daskr_value_int(++counter)); }
void twice(daskr_call_t *call, void *ud) {
    (void)ud; int64_t x = 0; daskr_value_get_int(daskr_call_arg(call, 0), &x);
    daskr_call_return(call, daskr_value_int(2 * x));
}
static const daskr_plugin_task_t TASKS[] = {{"tick", "a counter"}, {"twice", "doubles"}};
static const daskr_plugin_info_t INFO = {DASKR_ABI_VERSION, "imp", "1.0", TASKS, 2};
const daskr_plugin_info_t *daskr_plugin_info(void) { return &INFO; }
static const char *const IMPURE[] = {"tick", 0};
const char *const *daskr_plugin_impure(void) { return IMPURE; }
"#,
    )
    .unwrap();
    let lib = common::build_plugin(&source, &dir.join("libimpure.so"));
    let plugin = daskr::Plugin::open(&lib).unwrap();
    let info = plugin.info();
    assert!(info.tasks[0].impure && !info.tasks[1].impure);
    let cache = Cache::open(dir.join("cache")).unwrap();
    let opts = with_cache(Scheduler::Sync, &cache);
    let mut g = Graph::new();
    let t = g
        .add_task("t", &plugin.func("tick").unwrap(), vec![], vec![])
        .unwrap();
    g.add_task(
        "d",
        &plugin.func("twice").unwrap(),
        vec![Comp::id(t)],
        vec![],
    )
    .unwrap();
    g.add_task(
        "pure",
        &plugin.func("twice").unwrap(),
        vec![Comp::value(Value::Int(21))],
        vec![],
    )
    .unwrap();
    let want = |n: i64| Value::list(vec![Value::Int(2 * n), Value::Int(42)]).unwrap();
    let request = Value::list(vec![Value::str("d"), Value::str("pure")]).unwrap();
    assert_eq!(g.get(&request, &opts).unwrap(), want(1));
    let (r, stats) = g.get_with_stats(&request, &opts);
    // The clock-like task runs again (and so does what reads it); the pure one is read.
    assert_eq!(r.unwrap(), want(2));
    assert_eq!((stats.entries_run, stats.cache.hits), (2, 1));
}

#[test]
fn progress_counts_cached_tasks_as_done() {
    let dir = scratch("progress");
    let cache = Cache::open(&dir).unwrap();
    let f = counting_add(Some("1"), Arc::new(AtomicUsize::new(0)));
    let g = common::counting_chain(&f, 1000);
    let progress = Progress::new();
    for scheduler in [Scheduler::Threads, Scheduler::Threads, Scheduler::Processes] {
        let opts = Options {
            progress: Some(&progress),
            ..with_cache(scheduler, &cache)
        };
        g.get_key("c-1000", &opts).unwrap();
        assert_eq!((progress.done(), progress.total()), (1001, 1001));
    }
}

#[test]
fn the_size_bound_evicts_least_recently_used() {
    let dir = scratch("bound");
    let cache = Cache::open(&dir).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let f = counting_add(Some("1"), calls.clone());
    let g = common::counting_chain(&f, 100);
    let opts = with_cache(Scheduler::Sync, &cache);
    // Four gets, each storing 25 entries: four segments, oldest first (their times set
    // apart: a file system's clock may give segments written a millisecond apart one time).
    // Each get read the previous one's last result, making it recently used: the times are
    // set after all four.
    let mut written = Vec::new();
    for k in ["c-25", "c-50", "c-75", "c-100"] {
        let before = segment_files(&dir);
        g.get_key(k, &opts).unwrap();
        written.extend(
            segment_files(&dir)
                .into_iter()
                .filter(|f| !before.contains(f)),
        );
    }
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(100);
    for (i, f) in written.iter().enumerate() {
        let f = std::fs::File::options().write(true).open(f).unwrap();
        f.set_modified(old + std::time::Duration::from_secs(i as u64))
            .unwrap();
    }
    assert_eq!(calls.load(Ordering::Relaxed), 100);
    let full = cache.usage();
    assert_eq!(full.entries, 100);
    assert_eq!(segment_files(&dir).len(), 4);
    // Reading c-25 makes the oldest segment the most recently used; a get that stores
    // nothing evicts nothing.
    cache.set_max_bytes(full.bytes * 55 / 100);
    g.get_key("c-25", &opts).unwrap();
    assert_eq!(cache.usage(), full);
    cache.evict();
    let after = cache.usage();
    assert!(after.bytes <= full.bytes * 55 / 100);
    assert_eq!(after.entries, 50);
    // c-25's and c-100's segments survived; c-50 reads c-25 and runs 25 tasks.
    cache.set_max_bytes(0);
    for (k, run) in [("c-25", 0), ("c-100", 0), ("c-50", 25)] {
        let (r, stats) = g.get_with_stats(&Value::str(k), &opts);
        assert!(r.is_ok());
        assert_eq!(stats.entries_run, run, "{k}");
    }
    assert_eq!(cache.clear().unwrap().entries, 75);
    assert_eq!(cache.usage().entries, 0);
}

/// `pipeline_text(replace)` written to `dir`.
fn pipeline_file(dir: &Path, replace: (&str, &str)) -> PathBuf {
    let path = dir.join(format!("pipeline-{}.json", replace.1.replace('.', "-")));
    std::fs::write(&path, pipeline_text(replace)).unwrap();
    path
}

#[test]
fn fresh_worker_processes_store_and_read_through_their_messages() {
    // `daskr worker` processes started afresh (as a Go program's are) hold no plan: what was
    // found and the hashes to store under travel in the partition messages.
    let dir = scratch("exec-workers");
    let cache = dir.join("cache");
    let run = |file: &Path| {
        let stats = dir.join("stats.json");
        let out = daskr_run(file, &cache, &stats)
            .args(["--scheduler", "processes", "--workers", "2"])
            .env("DASKR_PROCESSES_START", "exec")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stats_json(&stats)
    };
    let first = pipeline_file(&dir, ("", ""));
    let s = run(&first);
    assert_eq!(
        (&s["entries_run"], &s["cache"]["misses"]),
        (&8.into(), &8.into())
    );
    assert_eq!(Cache::open(&cache).unwrap().usage().entries, 8);
    let s = run(&first);
    assert_eq!(
        (&s["entries_run"], &s["cache"]["hits"]),
        (&0.into(), &2.into())
    );
    let changed = pipeline_file(&dir, ("myfile.a.data", "myfile.z.data"));
    let s = run(&changed);
    assert_eq!(
        (&s["entries_run"], &s["cache"]["hits"]),
        (&4.into(), &2.into())
    );
    assert_eq!(Cache::open(&cache).unwrap().usage().entries, 12);
}

/// A graph file of `n` independent additions and their sum, using the example plugin.
fn wide_graph(dir: &Path, n: usize) -> PathBuf {
    let mut graph = serde_json::Map::new();
    let mut names = Vec::new();
    for i in 0..n {
        graph.insert(
            format!("a-{i}"),
            serde_json::json!({"fn": "ex:add", "args": [i, 1]}),
        );
        names.push(serde_json::Value::String(format!("a-{i}")));
    }
    graph.insert(
        "total".into(),
        serde_json::json!({"fn": "ex:sum", "args": [names]}),
    );
    let file = serde_json::json!({
        "plugins": {"ex": example_plugin()},
        "graph": graph,
        "keys": "total",
    });
    let path = dir.join("wide.json");
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

fn daskr_run(graph: &Path, cache: &Path, stats: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_daskr"));
    cmd.arg("run")
        .arg(graph)
        .arg("--cache")
        .arg(cache)
        .arg("--stats-json")
        .arg(stats);
    cmd
}

fn stats_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn two_processes_share_a_cache_directory() {
    let dir = scratch("shared");
    let graph = wide_graph(&dir, 300);
    let cache = dir.join("cache");
    let want = (1..=300).sum::<i64>().to_string();
    // Four commands at once on one directory, writing the same entries.
    let runs: Vec<_> = (0..4)
        .map(|i| {
            daskr_run(&graph, &cache, &dir.join(format!("s{i}.json")))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
    }
    let stats = dir.join("after.json");
    let out = daskr_run(&graph, &cache, &stats).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
    let s = stats_json(&stats);
    assert_eq!(s["entries_run"], 0);
    assert_eq!(s["cache"]["hits"], 1);
    // Every entry once, nothing left half-written.
    let out = Command::new(env!("CARGO_BIN_EXE_daskr"))
        .args(["cache", "stats", "--json"])
        .arg(&cache)
        .output()
        .unwrap();
    let usage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(usage["entries"], 301);
    let tmp = std::fs::read_dir(cache.join("daskr-cache-v2/tmp")).unwrap();
    assert_eq!(tmp.count(), 0);
    let out = Command::new(env!("CARGO_BIN_EXE_daskr"))
        .args(["cache", "clear"])
        .arg(&cache)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_daskr"))
        .args(["cache", "stats"])
        .arg(dir.join("not-a-cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
