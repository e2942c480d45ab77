//! Hostile-input fuzzing that runs on the stable toolchain, inside `cargo test`: a seeded
//! mutation fuzzer (tests/fuzz/mutate.rs) over daskr's four readers of untrusted bytes —
//! graph files, the binary value encoding, partition messages, and the worker protocol as
//! `daskr worker` reads it. Each target replays its corpus (tests/fuzz/corpus/<target>/, kept
//! in the repository: minimized crashers and hand-picked inputs), adds seeds made by the
//! current encoders (so they follow format changes), then mutates for a bounded number of
//! iterations and checks the target's invariants: never a panic, never an abort, every error
//! a clean one of the right kind, and what decodes re-encodes to the same thing.
//!
//! Knobs (environment):
//! - `DASKR_FUZZ_ITERS`: mutated inputs per target (default 5000; `make fuzz` runs many more);
//! - `DASKR_FUZZ_SEED`: the RNG seed (default fixed, so `cargo test` is reproducible;
//!   `random` picks one and prints it);
//! - `DASKR_FUZZ_TRACE=1`: writes each input to target/fuzz-failures/<target>/last-input
//!   before running it, to recover the input that aborted the process (a stack overflow or
//!   an allocation failure cannot be caught);
//! - `DASKR_FUZZ_SAVE=1`: adds inputs with a new outcome to the corpus directory.
//!
//! A panic is caught, its input written to target/fuzz-failures/<target>/<hash>.bin and the
//! test fails at the end naming the files; such an input belongs in the corpus (and, with a
//! name saying what it found, stays there as a regression test).
//!
//! This is a mutation fuzzer without coverage feedback: it cannot replace libFuzzer (see
//! RELIABILITY.md); it keeps the readers honest on every `cargo test`, on stable.

include!(concat!(env!("OUT_DIR"), "/c_abi_symbols.rs"));

#[path = "../common/mod.rs"]
mod common;
mod mutate;
mod targets;

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The default seed: any fixed number; CI's `make fuzz` varies it.
const DEFAULT_SEED: u64 = 0x00da_5c4f_0022;
/// Inputs kept as parents in one run (the corpus plus inputs with new outcomes).
const MAX_POOL: usize = 2000;
/// Mutated inputs larger than this are cut (keeps an iteration cheap).
const MAX_INPUT: usize = 64 << 10;

pub fn target_dir() -> PathBuf {
    // target/<profile>/deps/fuzz-<hash> -> target/<profile>
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn seed() -> u64 {
    match std::env::var("DASKR_FUZZ_SEED").ok().as_deref() {
        Some("random") => {
            let s = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            eprintln!("fuzz: DASKR_FUZZ_SEED={s}");
            s
        }
        Some(s) => s.parse().expect("DASKR_FUZZ_SEED is a number or 'random'"),
        None => DEFAULT_SEED,
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// One fuzz target: its name (the corpus folder), seeds, format tokens, and the check, which
/// panics on a broken invariant and otherwise returns a short description of the outcome.
pub struct Target<'a> {
    pub name: &'static str,
    pub seeds: Vec<Vec<u8>>,
    pub dict: &'a [&'a [u8]],
    pub check: &'a dyn Fn(&[u8]) -> String,
}

/// Figures of one fuzz run, printed (`cargo test -- --nocapture`) for RELIABILITY.md.
pub struct Report {
    pub inputs: usize,
    pub outcomes: usize,
}

pub fn fuzz(t: Target<'_>) -> Report {
    let corpus_dir = common::root().join("tests/fuzz/corpus").join(t.name);
    let fail_dir = target_dir().join("fuzz-failures").join(t.name);
    let trace = std::env::var_os("DASKR_FUZZ_TRACE").is_some();
    let save = std::env::var_os("DASKR_FUZZ_SAVE").is_some();
    let iters = env_u64("DASKR_FUZZ_ITERS").unwrap_or(5000) as usize;
    let seed = seed() ^ fnv(t.name.as_bytes());
    let mut rng = SmallRng::seed_from_u64(seed);

    let mut pool: Vec<Vec<u8>> = Vec::new();
    if let Ok(dir) = std::fs::read_dir(&corpus_dir) {
        let mut files: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            pool.push(std::fs::read(&f).unwrap());
        }
    }
    let from_disk = pool.len();
    pool.extend(t.seeds);
    assert!(!pool.is_empty(), "{}: no seeds", t.name);

    let mut seen: HashSet<String> = HashSet::new();
    let mut failures: Vec<String> = Vec::new();
    let run_one = |input: &[u8], failures: &mut Vec<String>| -> Option<String> {
        if trace {
            std::fs::create_dir_all(&fail_dir).unwrap();
            std::fs::write(fail_dir.join("last-input"), input).unwrap();
        }
        match catch_unwind(AssertUnwindSafe(|| (t.check)(input))) {
            Ok(outcome) => Some(mutate::signature(&outcome)),
            Err(panic) => {
                std::fs::create_dir_all(&fail_dir).unwrap();
                let path = fail_dir.join(format!("{:016x}.bin", fnv(input)));
                std::fs::write(&path, input).unwrap();
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {msg}", path.display()));
                None
            }
        }
    };

    // Every corpus entry and seed first: the regression tests.
    for input in pool.clone() {
        if let Some(sig) = run_one(&input, &mut failures) {
            seen.insert(sig);
        }
    }
    let replayed = pool.len();
    for _ in 0..iters {
        let parent = rng.random_range(0..pool.len());
        let other = rng.random_range(0..pool.len());
        let mut input = mutate::mutate(&mut rng, &pool[parent], &pool[other], t.dict);
        input.truncate(MAX_INPUT);
        if let Some(sig) = run_one(&input, &mut failures) {
            if seen.insert(sig) {
                if save {
                    std::fs::create_dir_all(&corpus_dir).unwrap();
                    std::fs::write(corpus_dir.join(format!("{:016x}", fnv(&input))), &input)
                        .unwrap();
                }
                if pool.len() < MAX_POOL {
                    pool.push(input);
                } else {
                    let i = rng.random_range(from_disk..pool.len());
                    pool[i] = input;
                }
            }
        }
    }
    eprintln!(
        "fuzz {}: {} corpus + seeds, {iters} mutated, {} distinct outcomes",
        t.name,
        replayed,
        seen.len()
    );
    assert!(
        failures.is_empty(),
        "fuzz {}: {} failing inputs (seed {seed:#x}):\n{}",
        t.name,
        failures.len(),
        failures.join("\n")
    );
    Report {
        inputs: replayed + iters,
        outcomes: seen.len(),
    }
}

#[test]
fn fuzz_graph_file_reader() {
    targets::graph_file();
}

#[test]
fn fuzz_value_decoder() {
    targets::value_decoder();
}

#[test]
fn fuzz_partition_messages() {
    targets::partition_messages();
}

#[test]
fn fuzz_worker_protocol() {
    targets::worker_protocol();
}

/// Found by `fuzz_worker_protocol`: a frame header claiming 30 GB made a worker abort the
/// whole process on the allocation (SIGABRT: "memory allocation of 30081614851 bytes
/// failed"). A length no allocation can hold is now a broken connection: exit status 3.
#[test]
fn a_frame_longer_than_memory_is_a_broken_connection_not_an_abort() {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;
    let dir = target_dir().join("fuzz-worker");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("huge-frame-{}", std::process::id()));
    let mut input = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let bytes =
        std::fs::read(common::root().join("tests/fuzz/corpus/worker_protocol/frame-length-30gb"))
            .unwrap();
    input.write_all(&bytes).unwrap();
    input.seek(SeekFrom::Start(0)).unwrap();
    let null = std::fs::File::options()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let status = daskr::sched::processes::serve_worker(input.as_raw_fd(), null.as_raw_fd(), None);
    assert_eq!(status, 3);
    std::fs::remove_file(path).unwrap();
}

/// Found by tests/c/fuzz_api.c: `daskr_graph_to_json` wrote an empty key in `keys`, which the
/// reader refuses, so the file it wrote did not read back. The writer now refuses it too.
#[test]
fn an_empty_key_is_refused_when_writing_as_when_reading() {
    let mut g = daskr::Graph::new();
    g.add_value("a", daskr::Value::Int(1)).unwrap();
    let keys = daskr::Value::list(vec![daskr::Value::str("a"), daskr::Value::str("")]).unwrap();
    let e = daskr::graphfile::write(&g, Some(&keys), None).unwrap_err();
    assert_eq!(e.kind, daskr::ErrorKind::InvalidArgument);
    let e = daskr::graphfile::write(&g, Some(&daskr::Value::str("")), None).unwrap_err();
    assert_eq!(e.kind, daskr::ErrorKind::InvalidArgument);
    assert!(daskr::graphfile::write(&g, Some(&daskr::Value::str("a")), None).is_ok());
}

/// Found by `fuzz_graph_file_reader` (`make fuzz`): a float in a graph file came back one ulp
/// off (-9.223372036884467e29 read as -9.223372036884469e29), so a file written and read
/// back held another number: serde_json parses floats best-effort unless `float_roundtrip`.
#[test]
fn a_float_in_a_graph_file_reads_back_exactly() {
    let dir = std::env::temp_dir();
    for text in [
        "-9.223372036884467e+29",
        "0.1",
        "1.7976931348623157e308",
        "5e-324",
    ] {
        let f =
            daskr::graphfile::parse(format!(r#"{{"graph": {{"x": {text}}}}}"#).as_bytes(), &dir)
                .unwrap();
        let v = f.graph.get_key("x", &daskr::Options::default()).unwrap();
        assert_eq!(v.as_float(), Some(text.parse::<f64>().unwrap()), "{text}");
    }
}
