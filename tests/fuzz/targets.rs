//! The fuzz targets: what each feeds its reader, and what must hold of the outcome.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use std::ffi::{c_char, c_void, CStr};

use daskr::encode::{put_varint, Reader};
use daskr::{encode, graphfile, ErrorKind, Options, Scheduler, Value};

/// A partition message starts with these (docs/wire-format.md).
const MAGIC: &[u8] = b"DKP";
const WIRE_VERSION: u8 = 1;

use super::{common, fuzz, target_dir, Target};

/// target/<profile>/test-plugins/fuzz: the example plugin, so fuzzed graph files run tasks.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join("test-plugins/fuzz");
        std::fs::create_dir_all(&dir).unwrap();
        common::build_plugin(
            &common::root().join("examples/plugins/example.c"),
            &dir.join("libexample.so"),
        );
        dir
    })
}

fn opts(scheduler: Scheduler, workers: usize) -> Options<'static> {
    Options {
        scheduler,
        num_workers: workers,
        ..Options::default()
    }
}

/// An error's message names the key it is about.
fn check_names_key(e: &daskr::Error) {
    if let Some(k) = &e.key {
        assert!(
            e.message.contains(&format!("'{k}'")),
            "error names key {k:?} but its message does not: {}",
            e.message
        );
    }
    assert!(!e.message.is_empty(), "an error without a message");
}

// ---- graph files ----

const GRAPHS: &[&str] = &[
    r#"{"plugins": {"ex": "libexample.so"}, "graph": {
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
    }, "keys": ["z", ["w", "l"], "s", "n", "r", "q", "b"]}"#,
    r#"{"graph": {"a": [1, [2, [3, [4, [5]]]]], "b": "a", "c": {"lit": {"k": [1e308, -0.0]}}}, "keys": "b"}"#,
    r#"{"plugins": {"ex": "libexample.so"}, "graph": {
        "a": {"fn": "ex:sum", "args": [[1, 2, 3]]},
        "b": {"fn": "ex:concat", "args": ["x\u00e9", "\ud83d\ude00"]},
        "c": {"fn": "ex:fail", "args": ["boom"]},
        "d": {"fn": "ex:identity", "args": ["c"]}
    }, "keys": ["a", "b", "d"]}"#,
    r#"{"graph": {}, "keys": []}"#,
    r#"{"graph": {"a": 9223372036854775807, "b": -9223372036854775808, "c": 18446744073709551616}}"#,
];

const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"9223372036854775808",
    b"\"fn\"",
    b"\"args\"",
    b"\"kwargs\"",
    b"\"lit\"",
    b"\"ref\"",
    b"\"bytes\"",
    b"\"graph\"",
    b"\"keys\"",
    b"\"plugins\"",
    b"\"ex:inc\"",
    b"\"ex:add\"",
    b"\"ex:sum\"",
    b"\"ex:identity\"",
    b"\"ex:fail\"",
    b"\"x\"",
    b"\"y\"",
    b"[[[[[[[[",
    b"]]]]]]]]",
    b"{\"fn\": \"ex:inc\", \"args\": [",
    b"\xff",
    b"\xc3\xa9",
];

pub fn graph_file() {
    let dir = plugin_dir();
    let mut seeds: Vec<Vec<u8>> = GRAPHS.iter().map(|g| g.as_bytes().to_vec()).collect();
    // Nesting just under and over the limit, and a chain.
    let depth = graphfile::MAX_FILE_DEPTH;
    for d in [depth - 4, depth + 2] {
        seeds.push(
            format!(
                r#"{{"graph": {{"a": {}1{}}}, "keys": "a"}}"#,
                "[".repeat(d),
                "]".repeat(d)
            )
            .into_bytes(),
        );
    }
    let chain: Vec<String> = (0..200)
        .map(|i| {
            if i == 0 {
                r#""k0": 0"#.to_string()
            } else {
                format!(r#""k{i}": {{"fn": "ex:inc", "args": ["k{}"]}}"#, i - 1)
            }
        })
        .collect();
    seeds.push(
        format!(
            r#"{{"plugins": {{"ex": "libexample.so"}}, "graph": {{{}}}, "keys": "k199"}}"#,
            chain.join(",")
        )
        .into_bytes(),
    );
    let check = |bytes: &[u8]| -> String {
        match graphfile::parse(bytes, dir) {
            Ok(f) => {
                // What parses writes back to a file that parses to the same text.
                if let Ok(text) = graphfile::write(&f.graph, f.keys.as_ref(), Some(dir)) {
                    let again = graphfile::parse(text.as_bytes(), dir)
                        .unwrap_or_else(|e| panic!("a written graph does not parse: {e}\n{text}"));
                    let text2 = graphfile::write(&again.graph, again.keys.as_ref(), Some(dir))
                        .expect("a graph read back writes");
                    assert_eq!(text, text2, "writing is not stable");
                }
                let Some(keys) = &f.keys else {
                    return "ok, no keys".into();
                };
                // It runs, and the same under threads as under sync.
                let sync = f.graph.get(keys, &opts(Scheduler::Sync, 1));
                let threads = f.graph.get(keys, &opts(Scheduler::Threads, 2));
                match (&sync, &threads) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a, b, "threads and sync disagree");
                        "ok".into()
                    }
                    (Err(a), Err(b)) => {
                        check_names_key(a);
                        assert_eq!(a.kind, b.kind, "sync: {a}, threads: {b}");
                        assert!(a.kind != ErrorKind::Internal, "internal error: {a}");
                        format!("run error: {a}")
                    }
                    _ => panic!("sync gave {sync:?}, threads {threads:?}"),
                }
            }
            Err(e) => {
                assert!(
                    matches!(e.kind, ErrorKind::InvalidGraph | ErrorKind::Plugin),
                    "a bad file must be invalid_graph or plugin, not {:?}: {e}",
                    e.kind
                );
                check_names_key(&e);
                format!("error: {e}")
            }
        }
    };
    fuzz(Target {
        name: "graph_file",
        seeds,
        dict: JSON_TOKENS,
        check: &check,
    });
}

// ---- the binary value encoding ----

fn sample_values() -> Vec<Value> {
    let l = |v: Vec<Value>| Value::list(v).unwrap();
    let mut deep = Value::Int(1);
    for _ in 0..20 {
        deep = l(vec![deep]);
    }
    vec![
        Value::Null,
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(0),
        Value::Int(-1),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::Float(f64::NAN),
        Value::Float(-0.0),
        Value::Float(1e308),
        Value::str(""),
        Value::str("h\u{e9}llo \u{1f600}"),
        Value::bytes(&[0, 1, 2, 255]),
        l(vec![]),
        l(vec![
            Value::Int(1),
            Value::str("a"),
            l(vec![Value::Null, Value::bytes(b"x")]),
        ]),
        deep,
    ]
}

const VALUE_TOKENS: &[&[u8]] = &[
    &[0x01],
    &[0x00],
    &[0x02],
    &[0x03],
    &[0x04],
    &[0x05],
    &[0x06],
    &[0x07],
    &[0x07, 0x01],
    &[0x07, 0x07, 0x07, 0x07],
    &[0x05, 0x02, 0xc3, 0x28],
    &[0x05, 0x03, 0xed, 0xa0, 0x80],
];

pub fn value_decoder() {
    let seeds = sample_values()
        .iter()
        .map(|v| encode::encode(v).unwrap())
        .collect();
    let check = |bytes: &[u8]| -> String {
        let _ = encode::decode_prefix(bytes);
        match encode::decode(bytes) {
            Ok(v) => {
                // What decodes encodes, and the encoding decodes to the same value and is a
                // fixed point (the input itself may use non-minimal varints).
                let again = encode::encode(&v).expect("a decoded value encodes");
                let back = encode::decode(&again).expect("an encoded value decodes");
                assert!(
                    back == v || has_nan(&v),
                    "decode(encode(v)) != v: {v:?} vs {back:?}"
                );
                assert_eq!(encode::encode(&back).unwrap(), again);
                assert!(v.depth() <= daskr::MAX_NESTING);
                format!("ok {:?}", v.kind())
            }
            Err(e) => {
                assert!(e.kind != ErrorKind::Internal, "internal error: {e}");
                format!("error: {e}")
            }
        }
    };
    fuzz(Target {
        name: "value_decoder",
        seeds,
        dict: VALUE_TOKENS,
        check: &check,
    });
}

fn has_nan(v: &Value) -> bool {
    match v.as_float() {
        Some(x) => x.is_nan(),
        None => v.as_list().is_some_and(|l| l.iter().any(has_nan)),
    }
}

// ---- partition messages (daskr_partition_run, the distributed scheduler's Dask workers) ----

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

const LIT: u8 = 0x10;
const REF: u8 = 0x11;
const LIST: u8 = 0x12;
const TASK: u8 = 0x13;
const FUNC_PLUGIN: u8 = 0x01;
const FUNC_LOCAL: u8 = 0x02;

/// A partition message (docs/wire-format.md) with `keys` (the first `inputs` of them read
/// from outside), functions, one body per task, and outputs.
fn message(
    keys: &[&str],
    inputs: usize,
    funcs: &[u8],
    bodies: &[Vec<u8>],
    outputs: &[u64],
) -> Vec<u8> {
    let mut m = MAGIC.to_vec();
    m.push(WIRE_VERSION);
    put_varint(&mut m, keys.len() as u64);
    for k in keys {
        put_str(&mut m, k);
    }
    put_varint(&mut m, inputs as u64);
    m.extend_from_slice(funcs);
    for b in bodies {
        m.extend_from_slice(b);
    }
    put_varint(&mut m, outputs.len() as u64);
    for &o in outputs {
        put_varint(&mut m, o);
    }
    m
}

fn lit(v: &Value) -> Vec<u8> {
    let mut b = vec![LIT];
    encode::encode_into(v, &mut b).unwrap();
    b
}

fn messages() -> Vec<Vec<u8>> {
    let no_funcs = [0u8];
    let mut list = vec![LIST, 3, REF, 0];
    list.extend(lit(&Value::str("s")));
    list.extend([LIST, 1, REF, 1]);
    let plugin_funcs = {
        let mut f = vec![1, FUNC_PLUGIN];
        put_str(&mut f, "/nonexistent/libnope.so");
        put_str(&mut f, "inc");
        f
    };
    let task = {
        let mut t = vec![TASK, 0, 1, REF, 0, 1];
        put_str(&mut t, "scale");
        t.extend(lit(&Value::Int(2)));
        t
    };
    vec![
        message(
            &["a", "b"],
            0,
            &no_funcs,
            &[lit(&Value::Int(1)), vec![REF, 0]],
            &[1],
        ),
        message(
            &["in", "x", "y"],
            1,
            &no_funcs,
            &[lit(&Value::Float(2.5)), list],
            &[1, 2],
        ),
        message(&["in", "t"], 1, &plugin_funcs, &[task], &[1]),
        message(&["a"], 0, &[1, FUNC_LOCAL, 0], &[vec![TASK, 0, 0, 0]], &[0]),
        message(&[], 0, &no_funcs, &[], &[]),
    ]
}

const WIRE_TOKENS: &[&[u8]] = &[
    b"DKP\x01",
    &[LIT],
    &[REF],
    &[LIST],
    &[TASK],
    &[FUNC_PLUGIN],
    &[FUNC_LOCAL],
    &[REF, 0],
    &[REF, 0x7f],
    &[LIST, 0x40],
    &[LIT, 0x01, 0x07, 0x00],
];

/// The inputs a message's check runs it with: one small value each, some not encodings.
fn inputs_for(bytes: &[u8]) -> Vec<Vec<u8>> {
    let n = bytes.get(9).copied().unwrap_or(0) as usize % 4;
    (0..n)
        .map(|i| match i {
            0 => encode::encode(&Value::Int(3)).unwrap(),
            1 => encode::encode(&Value::str("in")).unwrap(),
            2 => vec![0x01, 0x07, 0x05],
            _ => vec![],
        })
        .collect()
}

// Partition messages are run the way a Dask worker runs them: through the C ABI (declared
// here, resolved against the library this test links), which keeps the test on the stable
// surface whatever module the decoder lives in. (c_abi_symbols.rs declares the same symbols
// without signatures, only to keep them linked: hence the allow.)
#[allow(clashing_extern_declarations)]
extern "C" {
    fn daskr_partition_run(
        message: *const u8,
        len: usize,
        inputs: *const *const u8,
        input_lens: *const usize,
        n_inputs: usize,
        num_workers: u32,
        out: *mut *mut c_void,
    ) -> *mut c_void;
    fn daskr_error_kind(e: *const c_void) -> u32;
    fn daskr_error_key(e: *const c_void) -> *const c_char;
    fn daskr_error_message(e: *const c_void) -> *const c_char;
    fn daskr_error_free(e: *mut c_void);
    fn daskr_value_get_bytes(v: *const c_void, data: *mut *const u8, len: *mut usize) -> bool;
    fn daskr_value_free(v: *mut c_void);
}

const ERROR_INTERNAL: u32 = 12;

/// Runs a partition message on `workers` threads: the outputs buffer, or (kind, key, message).
fn partition_run(
    message: &[u8],
    inputs: &[&[u8]],
    workers: u32,
) -> Result<Vec<u8>, (u32, Option<String>, String)> {
    let ptrs: Vec<*const u8> = inputs.iter().map(|i| i.as_ptr()).collect();
    let lens: Vec<usize> = inputs.iter().map(|i| i.len()).collect();
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: every pointer is valid for its length; the out value and error are freed here.
    unsafe {
        let e = daskr_partition_run(
            message.as_ptr(),
            message.len(),
            ptrs.as_ptr(),
            lens.as_ptr(),
            inputs.len(),
            workers,
            &mut out,
        );
        if !e.is_null() {
            let text = |p: *const c_char| {
                (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
            };
            let r = (
                daskr_error_kind(e),
                text(daskr_error_key(e)),
                text(daskr_error_message(e)).unwrap_or_default(),
            );
            daskr_error_free(e);
            return Err(r);
        }
        let (mut data, mut len) = (std::ptr::null(), 0usize);
        assert!(
            daskr_value_get_bytes(out, &mut data, &mut len),
            "the outputs are bytes"
        );
        let bytes = std::slice::from_raw_parts(data, len).to_vec();
        daskr_value_free(out);
        Ok(bytes)
    }
}

/// The outputs buffer: a count, then each output as a length and an encoded value.
fn split_outputs(bytes: &[u8]) -> daskr::Result<Vec<Vec<u8>>> {
    let mut r = Reader::new(bytes);
    let n = r.count()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.varint()?;
        out.push(r.take(len)?.to_vec());
    }
    assert_eq!(r.position(), bytes.len(), "bytes after the outputs");
    Ok(out)
}

pub fn partition_messages() {
    let check = |bytes: &[u8]| -> String {
        let inputs = inputs_for(bytes);
        let inputs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        match partition_run(bytes, &inputs, 1) {
            Ok(out) => {
                let outputs = split_outputs(&out).expect("outputs split");
                for o in &outputs {
                    encode::decode(o).expect("outputs decode");
                }
                // Two workers give the same outputs.
                let two = partition_run(bytes, &inputs, 2).expect("runs on 2 threads");
                assert_eq!(out, two, "1 and 2 threads disagree");
                format!("ok {} outputs", outputs.len())
            }
            Err((kind, key, message)) => {
                assert!(kind != ERROR_INTERNAL, "internal error: {message}");
                assert!(!message.is_empty(), "an error without a message");
                if let Some(k) = &key {
                    assert!(
                        message.contains(&format!("'{k}'")),
                        "key {k:?} not in: {message}"
                    );
                }
                format!("error: {message}")
            }
        }
    };
    fuzz(Target {
        name: "partition_messages",
        seeds: messages(),
        dict: WIRE_TOKENS,
        check: &check,
    });
}

// ---- the worker protocol (`daskr worker`) ----

const RUN: u8 = 0x01;
const FETCH: u8 = 0x02;
const RELEASE: u8 = 0x03;
const CLEAR: u8 = 0x04;
const RUN_FORKED: u8 = 0x05;
const HELLO: u8 = 0x80;
const DONE: u8 = 0x81;
const FAILED: u8 = 0x82;
const VALUES: u8 = 0x83;

fn frame(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u64 + 1).to_le_bytes());
    out.push(tag);
    out.extend_from_slice(body);
}

/// A RUN request: get, run number, flags, retries (1 when the flags ask for a trace, else 0:
/// both are valid), inputs (inline values or held positions), outputs
/// (position, hold/return bits), the partition message.
fn run_request(
    get: u64,
    seq: u64,
    flags: u8,
    inputs: &[Result<Vec<u8>, u64>],
    outputs: &[(u64, u8)],
    msg: &[u8],
) -> Vec<u8> {
    let mut b = Vec::new();
    put_varint(&mut b, get);
    put_varint(&mut b, seq);
    b.push(flags);
    put_varint(&mut b, u64::from(flags & 1));
    put_varint(&mut b, inputs.len() as u64);
    for i in inputs {
        match i {
            Ok(bytes) => {
                b.push(0);
                put_varint(&mut b, bytes.len() as u64);
                b.extend_from_slice(bytes);
            }
            Err(p) => {
                b.push(1);
                put_varint(&mut b, *p);
            }
        }
    }
    put_varint(&mut b, outputs.len() as u64);
    for &(p, mode) in outputs {
        put_varint(&mut b, p);
        b.push(mode);
    }
    put_varint(&mut b, msg.len() as u64);
    b.extend_from_slice(msg);
    b
}

fn sessions() -> Vec<Vec<u8>> {
    let msgs = messages();
    let three = encode::encode(&Value::Int(3)).unwrap();
    let mut a = Vec::new();
    frame(&mut a, RUN, &run_request(1, 0, 0, &[], &[(1, 3)], &msgs[0]));
    frame(
        &mut a,
        RUN,
        &run_request(1, 1, 15, &[Err(1)], &[(1, 1), (2, 2)], &msgs[1]),
    );
    frame(&mut a, FETCH, &[2, 1, 9]);
    frame(&mut a, RELEASE, &[1, 1]);
    frame(&mut a, FETCH, &[1, 1]);
    frame(&mut a, CLEAR, &[]);
    let mut b = Vec::new();
    frame(
        &mut b,
        RUN,
        &run_request(7, 0, 1, &[Ok(three.clone())], &[(1, 2)], &msgs[2]),
    );
    frame(&mut b, RUN_FORKED, &[7, 1, 0, 0, 0, 0, 0]);
    let mut c = Vec::new();
    frame(
        &mut c,
        RUN,
        &run_request(2, 0, 8, &[Ok(three)], &[(1, 3), (2, 3)], &msgs[1]),
    );
    frame(&mut c, FETCH, &[2, 1, 2]);
    vec![a, b, c]
}

const WORKER_TOKENS: &[&[u8]] = &[
    &[RUN],
    &[FETCH],
    &[RELEASE],
    &[CLEAR],
    &[RUN_FORKED],
    &[0, 0, 0, 0, 0, 0, 0],
    &[1, 0, 0, 0, 0, 0, 0, 0, CLEAR],
    &[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0],
    &[0, 0, 0, 0, 0x10, 0, 0, 0],
    b"DKP\x01",
];

/// Checks what a worker wrote — whole frames, HELLO first, then only replies — and describes
/// it: a letter per reply, with the error kind of each FAILED.
fn check_replies(out: &[u8]) -> String {
    let mut at = 0;
    let mut n = 0;
    let mut shape = String::new();
    while at < out.len() {
        assert!(out.len() - at >= 9, "a cut frame header");
        let len = u64::from_le_bytes(out[at..at + 8].try_into().unwrap()) as usize;
        assert!(len >= 1 && at + 8 + len <= out.len(), "a cut frame");
        let body = &out[at + 9..at + 8 + len];
        match out[at + 8] {
            HELLO if n == 0 => shape.push('H'),
            DONE if n > 0 => shape.push('D'),
            VALUES if n > 0 => shape.push('V'),
            FAILED if n > 0 => {
                // Run number, then the error: kind name first (docs/wire-format.md).
                let mut r = Reader::new(body);
                r.varint().expect("FAILED: run number");
                let kind = r.string().expect("FAILED: an error kind");
                assert!(
                    ErrorKind::from_name(kind).is_some(),
                    "unknown error kind {kind}"
                );
                shape.push_str(&format!("F({kind})"));
            }
            tag => panic!("unexpected frame {tag:#x} at reply {n}"),
        }
        at += 8 + len;
        n += 1;
    }
    shape
}

pub fn worker_protocol() {
    let dir = target_dir().join("fuzz-worker");
    std::fs::create_dir_all(&dir).unwrap();
    let path_in = dir.join(format!("in-{}", std::process::id()));
    let path_out = dir.join(format!("out-{}", std::process::id()));
    let mut fin = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path_in)
        .unwrap();
    let mut fout = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path_out)
        .unwrap();
    let files = std::sync::Mutex::new((&mut fin, &mut fout));
    let check = |bytes: &[u8]| -> String {
        let mut files = files.lock().unwrap_or_else(|p| p.into_inner());
        let (fin, fout) = &mut *files;
        // The frames come from a file (read() gives them, then end of stream), the replies go
        // to another: the worker writes with write() when its output is not a socket.
        fin.set_len(0).unwrap();
        fin.seek(SeekFrom::Start(0)).unwrap();
        fin.write_all(bytes).unwrap();
        fin.seek(SeekFrom::Start(0)).unwrap();
        fout.set_len(0).unwrap();
        fout.seek(SeekFrom::Start(0)).unwrap();
        let status = daskr::sched::processes::serve_worker(fin.as_raw_fd(), fout.as_raw_fd(), None);
        let mut out = Vec::new();
        fout.seek(SeekFrom::Start(0)).unwrap();
        fout.read_to_end(&mut out).unwrap();
        let replies = check_replies(&out);
        assert!(matches!(status, 0 | 3 | 4), "worker exit status {status}");
        format!("status {status}: {replies}")
    };
    fuzz(Target {
        name: "worker_protocol",
        seeds: sessions(),
        dict: WORKER_TOKENS,
        check: &check,
    });
    let _ = std::fs::remove_file(path_in);
    let _ = std::fs::remove_file(path_out);
}
