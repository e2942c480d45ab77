//! Partitions on the wire: how a piece of a plan travels to another process or machine and
//! runs there (the `processes` and `distributed` schedulers). The format is specified in
//! docs/wire-format.md; keep the two in step.
//!
//! A partition message holds its tasks' keys and computations, with every reference turned
//! into an index into the message's own key table; the results it reads from outside are its
//! inputs, supplied next to the message as encoded values (`encode`), so one message can be
//! sent once and run wherever its inputs end up. Running one builds an ordinary graph of the
//! inputs (as literals) and the tasks, and gets the outputs from it with the local schedulers:
//! errors name the original keys, and memory is released as in any run.
//!
//! Functions travel as plugin path + symbol. A function of the caller's own address space (a
//! C function pointer, a Rust closure) travels as its index in the caller's graph, which only
//! a fork of the caller, holding that graph, can resolve.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use rustc_hash::FxHashMap;

use crate::cache::store::Hash;
use crate::cache::{Attached, Cache, Use};
use crate::comp::Comp;
use crate::encode;
pub use crate::encode::{put_varint, Reader};
use crate::error::{Error, ErrorKind, Result};
use crate::func::Func;
use crate::graph::{Graph, TaskCall, View};
use crate::options::{Options, Scheduler};
use crate::plan::Plan;
use crate::plugin::Plugin;
use crate::run::{Run, Scratch, Stats, Watch};
use crate::sched::partition::Partitions;
use crate::value::{Names, Value, MAX_NESTING};

/// The first bytes of a partition message.
pub const MAGIC: &[u8; 3] = b"DKP";
/// The partition message version, written after the magic.
pub const WIRE_VERSION: u8 = 2;

const FUNC_PLUGIN: u8 = 0x01;
const FUNC_LOCAL: u8 = 0x02;
const LIT: u8 = 0x10;
const REF: u8 = 0x11;
const LIST: u8 = 0x12;
const TASK: u8 = 0x13;
const MAP: u8 = 0x14;
/// A task's result read from the result cache: a literal, but not a computation that ran.
const FOUND: u8 = 0x15;

/// Which functions a message may carry.
#[derive(Clone, Copy)]
pub(crate) enum Funcs<'a> {
    /// Any: functions not from a plugin travel by index, for a fork of this process. The
    /// schedulers send plugin functions only today; the format keeps local functions
    /// (docs/wire-format.md), and the tests encode them.
    #[cfg_attr(not(test), allow(dead_code))]
    Local,
    /// Plugin functions only; the text says where the partition runs, for the error naming a
    /// task whose function cannot go there ("on a Dask cluster").
    PluginsOnly(&'a str),
}

/// Encodes partition `i` of `plan` as a message.
pub(crate) fn encode_partition(
    graph: &Graph,
    plan: &Plan,
    parts: &Partitions,
    i: usize,
    funcs: Funcs<'_>,
) -> Result<Vec<u8>> {
    let range = parts.range(i);
    let inputs = parts.inputs(i);
    let mut local: FxHashMap<u32, u32> = FxHashMap::default();
    let mut out = Vec::with_capacity(64 + 32 * range.len());
    out.extend_from_slice(MAGIC);
    out.push(WIRE_VERSION);
    let nkeys = inputs.len() + range.len();
    put_varint(&mut out, nkeys as u64);
    for (at, p) in inputs.iter().copied().chain(range.clone()).enumerate() {
        local.insert(plan.order[p as usize], at as u32);
        put_str(&mut out, &graph.key_name(plan.order[p as usize]));
    }
    put_varint(&mut out, inputs.len() as u64);
    // Functions are listed after the tasks are encoded (the table grows as they are met), so
    // the tasks go to a second buffer first.
    let mut enc = Encoder {
        graph,
        local: &local,
        funcs,
        func_index: FxHashMap::default(),
        func_table: Vec::new(),
        body: Vec::with_capacity(32 * range.len()),
        key: "".into(),
    };
    let cache = plan.cache.as_deref();
    for p in range.clone() {
        let id = plan.order[p as usize];
        enc.key = graph.key_name(id);
        // A result found in the cache travels as the literal it is (`resume` gave it no
        // inputs).
        match cache.and_then(|c| c.found_copy(p)) {
            Some(v) => enc.literal(FOUND, &v)?,
            None => enc.expr(graph.entry(id))?,
        }
    }
    put_varint(&mut out, enc.func_index.len() as u64);
    out.extend_from_slice(&enc.func_table);
    out.extend_from_slice(&enc.body);
    let outputs = parts.outputs(i);
    put_varint(&mut out, outputs.len() as u64);
    for &p in outputs {
        put_varint(&mut out, local[&plan.order[p as usize]] as u64);
    }
    let stores: Vec<(u32, &Hash)> = match cache {
        None => Vec::new(),
        Some(c) => range
            .filter_map(|p| Some((local[&plan.order[p as usize]], c.hash_to_store(p)?)))
            .collect(),
    };
    put_varint(&mut out, stores.len() as u64);
    if let (Some(c), false) = (cache, stores.is_empty()) {
        let (dir, tag, max_entry_bytes) = c.elsewhere();
        put_bytes(&mut out, dir.as_os_str().as_bytes());
        put_str(&mut out, tag);
        put_varint(&mut out, max_entry_bytes);
        for (index, hash) in stores {
            put_varint(&mut out, u64::from(index));
            out.extend_from_slice(hash);
        }
    }
    Ok(out)
}

struct Encoder<'a> {
    graph: &'a Graph,
    local: &'a FxHashMap<u32, u32>,
    funcs: Funcs<'a>,
    /// Graph function index -> message function index.
    func_index: FxHashMap<u32, u32>,
    func_table: Vec<u8>,
    body: Vec<u8>,
    /// The entry being encoded, for errors.
    key: std::borrow::Cow<'a, str>,
}

impl Encoder<'_> {
    fn expr(&mut self, view: View<'_>) -> Result<()> {
        let graph = self.graph;
        match view {
            View::Lit(v) => self.literal(LIT, v)?,
            View::Ref(id) => {
                self.body.push(REF);
                put_varint(&mut self.body, u64::from(self.local[&id]));
            }
            View::List { items, len } => {
                self.body.push(LIST);
                put_varint(&mut self.body, u64::from(len));
                for child in graph.items(items, len) {
                    self.expr(child)?;
                }
            }
            View::Map { items, names } => {
                self.body.push(MAP);
                put_varint(&mut self.body, names.len() as u64);
                for (name, child) in names.iter().zip(graph.items(items, names.len() as u32)) {
                    put_str(&mut self.body, name);
                    self.expr(child)?;
                }
            }
            View::Task(call) => {
                let TaskCall {
                    func,
                    nargs,
                    nkwargs,
                    names,
                    ..
                } = call;
                self.body.push(TASK);
                let f = self.func(func)?;
                put_varint(&mut self.body, u64::from(f));
                put_varint(&mut self.body, u64::from(nargs));
                let mut children = graph.args(&call);
                for child in children.by_ref().take(nargs as usize) {
                    self.expr(child)?;
                }
                put_varint(&mut self.body, u64::from(nkwargs));
                for (name, child) in graph.kwnames(names, nkwargs).zip(children) {
                    // Names are stored NUL-terminated, for C.
                    put_bytes(&mut self.body, &name[..name.len() - 1]);
                    self.expr(child)?;
                }
            }
        }
        Ok(())
    }

    /// A literal value, tagged `tag` (LIT or FOUND).
    fn literal(&mut self, tag: u8, v: &Value) -> Result<()> {
        self.body.push(tag);
        encode::encode_into(v, &mut self.body).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "key '{}': its computation holds a value that cannot leave this process \
                     ({}); use the threads scheduler",
                    self.key, e.message
                ),
            )
            .with_key(&*self.key)
        })
    }

    fn func(&mut self, i: u32) -> Result<u32> {
        if let Some(&f) = self.func_index.get(&i) {
            return Ok(f);
        }
        let func = self.graph.func(i);
        match (func.origin(), self.funcs) {
            (Some(origin), _) => {
                self.func_table.push(FUNC_PLUGIN);
                put_str(&mut self.func_table, &origin.path.to_string_lossy());
                put_str(&mut self.func_table, &origin.symbol);
            }
            (None, Funcs::Local) => {
                self.func_table.push(FUNC_LOCAL);
                put_varint(&mut self.func_table, u64::from(i));
            }
            (None, Funcs::PluginsOnly(place)) => {
                return Err(local_function_error(&self.key, func.name(), place));
            }
        }
        let f = self.func_index.len() as u32;
        self.func_index.insert(i, f);
        Ok(f)
    }
}

/// The error for the entry `key`, whose function `func` is a function of this process (a
/// function pointer or closure, not a plugin symbol), so that it cannot run `place`.
pub(crate) fn local_function_error(key: &str, func: &str, place: &str) -> Error {
    Error::invalid_argument(format!(
        "key '{key}': its function '{func}' lives in this process (a function pointer, not a \
         plugin symbol), so it cannot run {place}; use plugin tasks, or the threads or \
         processes scheduler"
    ))
    .with_key(key)
}

/// A decoded partition message, ready to run.
pub(crate) struct PartitionMessage {
    /// The graph its tasks will be added to: made first, for the tasks' handles to it.
    graph: Graph,
    keys: Vec<String>,
    inputs: usize,
    funcs: Vec<Func>,
    /// Each task's computation (tasks are keys `inputs..`).
    comps: Vec<Comp>,
    outputs: Vec<u32>,
    /// With a result cache: where the tasks' results are to be stored, and under what.
    stores: Option<Stores>,
    /// How many of the tasks' results were found in the cache (sent as literals).
    found: u32,
}

/// The results a partition stores in its get's result cache.
struct Stores {
    dir: PathBuf,
    /// The get's tag (`cache::Attached::elsewhere`).
    tag: String,
    max_entry_bytes: u64,
    /// Key-table index → hash, for each task to store.
    entries: Vec<(u32, Hash)>,
}

impl Stores {
    /// The plan of a partition's graph for `request`, storing `stores` if any.
    fn plan(graph: &Graph, request: &Value, stores: Option<Stores>) -> Result<Plan> {
        let mut plan = Plan::new(graph, request)?;
        if let Some(stores) = stores {
            stores.attach(&mut plan)?;
        }
        Ok(plan)
    }

    /// Gives `plan` (of the partition's graph, whose ids are key-table indices) the cache's
    /// part: the tasks to store, under their hashes.
    fn attach(self, plan: &mut Plan) -> Result<()> {
        let cache = Cache::open(&self.dir).map_err(|e| {
            Error::invalid_argument(format!(
                "{}; with the distributed scheduler the result cache must be a directory \
                 every worker reaches at the same path (a shared filesystem)",
                e.message
            ))
        })?;
        cache.set_max_entry_bytes(self.max_entry_bytes);
        let mut at: Vec<(u32, Hash)> = self
            .entries
            .into_iter()
            .map(|(index, h)| (plan.pos[index as usize], h))
            .filter(|&(p, _)| p != crate::plan::UNPLANNED)
            .collect();
        at.sort_unstable_by_key(|&(p, _)| p);
        let mut uses = vec![Use::Compute; plan.len()];
        for &(p, _) in &at {
            uses[p as usize] = Use::Store;
        }
        let hashes = at.into_iter().map(|(_, h)| h).collect();
        plan.cache = Some(Box::new(Attached::for_partition(
            &cache, self.tag, uses, hashes,
        )));
        Ok(())
    }
}

impl PartitionMessage {
    /// Decodes a message. Functions that travel by index are looked up in `local`, the graph
    /// this process was forked holding (None: refused).
    pub fn decode(bytes: &[u8], local: Option<&Graph>) -> Result<PartitionMessage> {
        let mut r = Reader::labelled(bytes, "message");
        if r.take(3)? != MAGIC {
            return Err(r.error("not a daskr partition message".into()));
        }
        let version = r.byte()?;
        if version != WIRE_VERSION {
            return Err(r.error(format!(
                "unsupported partition message version {version} (this library reads \
                 version {WIRE_VERSION})"
            )));
        }
        let nkeys = r.count()?;
        let mut keys = Vec::with_capacity(nkeys);
        for _ in 0..nkeys {
            keys.push(r.string()?.to_string());
        }
        let inputs = r.count()?;
        if inputs > nkeys {
            return Err(r.error(format!("{inputs} inputs but only {nkeys} keys")));
        }
        let nfuncs = r.count()?;
        let mut funcs = Vec::with_capacity(nfuncs);
        for _ in 0..nfuncs {
            funcs.push(match r.byte()? {
                FUNC_PLUGIN => {
                    let path = r.string()?;
                    let symbol = r.string()?;
                    plugin_func(path, symbol)?
                }
                FUNC_LOCAL => {
                    let i = r.varint()?;
                    match local {
                        Some(g) if i < g.func_count() as u64 => g.func(i as u32).clone(),
                        Some(_) => return Err(r.error(format!("no local function {i}"))),
                        None => {
                            return Err(Error::invalid_argument(
                                "the partition calls functions of the process that sent it \
                                 (function pointers), which only a fork of that process can run",
                            ))
                        }
                    }
                }
                tag => return Err(r.error(format!("unknown function tag {tag:#04x}"))),
            });
        }
        let graph = Graph::new();
        let mut d = Decoder {
            r,
            nkeys: nkeys as u32,
            funcs: &funcs,
            graph: &graph,
        };
        let mut comps = Vec::with_capacity(nkeys - inputs);
        let mut found = 0;
        for _ in inputs..nkeys {
            if d.r.peek() == Some(FOUND) {
                d.r.byte()?;
                comps.push(Comp::value(d.r.value(0)?));
                found += 1;
            } else {
                comps.push(d.expr(0)?);
            }
        }
        let mut r = d.r;
        let noutputs = r.count()?;
        let mut outputs = Vec::with_capacity(noutputs);
        for _ in 0..noutputs {
            let o = r.varint()?;
            if o >= nkeys as u64 || (o as usize) < inputs {
                return Err(r.error(format!("output {o} is not one of the partition's tasks")));
            }
            outputs.push(o as u32);
        }
        let nstores = r.count()?;
        let stores = if nstores == 0 {
            None
        } else {
            let len = r.varint()?;
            let dir = PathBuf::from(std::ffi::OsStr::from_bytes(r.take(len)?));
            let tag = r.string()?.to_string();
            let max_entry_bytes = r.varint()?;
            let mut entries = Vec::with_capacity(nstores);
            for _ in 0..nstores {
                let index = r.varint()?;
                if index >= nkeys as u64 || (index as usize) < inputs {
                    return Err(r.error(format!(
                        "stored {index} is not one of the partition's tasks"
                    )));
                }
                let hash: Hash = r.take(32)?.try_into().expect("32 bytes");
                entries.push((index as u32, hash));
            }
            Some(Stores {
                dir,
                tag,
                max_entry_bytes,
                entries,
            })
        };
        if r.at != bytes.len() {
            return Err(r.error(format!("{} bytes after the message", bytes.len() - r.at)));
        }
        Ok(PartitionMessage {
            graph,
            keys,
            inputs,
            funcs,
            comps,
            outputs,
            stores,
            found,
        })
    }

    /// The keys of the outputs, in the order `run` returns them.
    pub fn output_keys(&self) -> impl Iterator<Item = &str> {
        self.outputs.iter().map(|&o| self.keys[o as usize].as_str())
    }

    /// Runs the partition on `workers` threads of this process, given its inputs (encoded
    /// values, in the message's order), and returns its outputs as values.
    pub fn run(mut self, inputs: &[&[u8]], workers: usize) -> Result<Vec<Value>> {
        let stores = self.stores.take();
        let (graph, request) = self.into_graph(inputs)?;
        let options = Options {
            scheduler: if workers > 1 {
                Scheduler::Threads
            } else {
                Scheduler::Sync
            },
            num_workers: workers,
            ..Options::default()
        };
        let plan = |g: &Graph| Stores::plan(g, &request, stores);
        let result = graph.run_request(plan, &request, &options).0?;
        Ok(match result.as_list() {
            Some(items) => items.to_vec(),
            None => Vec::new(),
        })
    }

    /// Runs the partition on the calling thread alone, in priority order, telling `observer`
    /// about each task (by key-table index) before and after it runs — how a worker process
    /// records which task it is in without a system call. Inputs are not reported. Returns
    /// the outputs and figures about the run.
    pub fn run_observed(
        mut self,
        inputs: &[&[u8]],
        observer: &mut dyn Observer,
        measure_memory: bool,
        retries: u32,
    ) -> (Result<Vec<Value>>, Stats) {
        let mut stats = Stats::default();
        let (ninputs, found) = (self.inputs as u32, self.found);
        let stores = self.stores.take();
        let (graph, request) = match self.into_graph(inputs) {
            Ok(built) => built,
            Err(e) => return (Err(e), stats),
        };
        let plan = match Stores::plan(&graph, &request, stores) {
            Ok(plan) => plan,
            Err(e) => return (Err(e), stats),
        };
        let watch = Watch {
            measure_memory,
            retries,
            ..Watch::default()
        };
        let run = Run::new(&graph, &plan, watch, None);
        let mut scratch = Scratch::default();
        // Post-order is topological: each position's inputs are done when its turn comes.
        for p in 0..plan.len() as u32 {
            if run.stopped() {
                break;
            }
            // Keys were interned in key-table order: a graph id is a key-table index.
            let index = plan.order[p as usize];
            if index < ninputs {
                run.execute(p, 0, &mut scratch);
                continue;
            }
            if !observer.before(index) {
                run.stop(Error::cancelled());
                break;
            }
            let ok = run.execute(p, 0, &mut scratch);
            observer.after(index, ok);
        }
        run.retire(scratch);
        let result = run.finish(&request, &mut stats);
        let outputs = result.map(|r| match r.as_list() {
            Some(items) => items.to_vec(),
            None => Vec::new(),
        });
        // Inputs, and results found in the cache, "ran" as literals: count only the
        // partition's own computations.
        stats.entries_run = stats
            .entries_run
            .saturating_sub(u64::from(ninputs + found).min(plan.len() as u64));
        (outputs, stats)
    }

    /// The graph of the inputs (as literals) and the tasks, and the request for the outputs.
    fn into_graph(self, inputs: &[&[u8]]) -> Result<(Graph, Value)> {
        if inputs.len() != self.inputs {
            return Err(Error::invalid_argument(format!(
                "the partition takes {} inputs, {} given",
                self.inputs,
                inputs.len()
            )));
        }
        let mut graph = self.graph;
        for (i, key) in self.keys.iter().enumerate() {
            // References decode to handles equal to key-table indices: keys must be distinct.
            if graph.intern(key)?.index() as usize != i {
                return Err(Error::invalid_argument(format!(
                    "malformed partition: the key '{key}' is listed twice"
                )));
            }
        }
        for (key, bytes) in self.keys.iter().zip(inputs) {
            let v = encode::decode(bytes).map_err(|e| {
                Error::invalid_argument(format!("input '{key}': {}", e.message)).with_key(key)
            })?;
            graph.add_value(key, v)?;
        }
        for (key, comp) in self.keys[self.inputs..].iter().zip(self.comps) {
            graph.add(key, comp)?;
        }
        drop(self.funcs);
        let request: Vec<Value> = self
            .outputs
            .iter()
            .map(|&o| Value::str(&self.keys[o as usize]))
            .collect();
        Ok((graph, Value::list(request)?))
    }
}

/// Told about each task of a partition run by `PartitionMessage::run_observed`, on the running
/// thread, by key-table index.
pub(crate) trait Observer {
    /// Before the task runs; returning false stops the partition (a `cancelled` error).
    fn before(&mut self, index: u32) -> bool;
    /// After it ran (`ok`: it did not fail).
    fn after(&mut self, index: u32, ok: bool);
}

/// Encodes a partition's outputs for the trip back: each value as a standalone encoded
/// message, named by its key in errors (a pointer value cannot leave the process).
pub(crate) fn encode_outputs(keys: &[&str], values: &[Value]) -> Result<Vec<Vec<u8>>> {
    keys.iter()
        .zip(values)
        .map(|(key, v)| {
            encode::encode(v).map_err(|e| {
                Error::invalid_argument(format!(
                    "key '{key}': its result cannot leave the worker process ({}); use the \
                     threads scheduler for tasks that return pointers",
                    e.message
                ))
                .with_key(*key)
            })
        })
        .collect()
}

/// Runs a partition message in this process (the `daskr_partition_run` C function, which is
/// how a Dask worker runs one): decode, run on `workers` threads, and return the outputs as
/// one buffer — their count, then each as a length and an encoded value.
pub fn run_message(message: &[u8], inputs: &[&[u8]], workers: usize) -> Result<Vec<u8>> {
    let part = PartitionMessage::decode(message, None)?;
    let keys: Vec<String> = part.output_keys().map(str::to_string).collect();
    let values = part.run(inputs, workers)?;
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let encoded = encode_outputs(&keys, &values)?;
    let mut out = Vec::with_capacity(8 + encoded.iter().map(|e| e.len() + 4).sum::<usize>());
    put_varint(&mut out, encoded.len() as u64);
    for e in &encoded {
        put_bytes(&mut out, e);
    }
    Ok(out)
}

/// Appends an error: kind name, key (empty for none), related keys, message.
pub fn put_error(out: &mut Vec<u8>, e: &Error) {
    put_str(out, e.kind.name());
    put_str(out, e.key.as_deref().unwrap_or(""));
    put_varint(out, e.keys.len() as u64);
    for k in &e.keys {
        put_str(out, k);
    }
    put_str(out, &e.message);
}

/// Reads an error written by `put_error`.
pub fn read_error(r: &mut Reader<'_>) -> Result<Error> {
    let kind_name = r.string()?;
    let kind = ErrorKind::from_name(kind_name)
        .ok_or_else(|| r.error(format!("unknown error kind '{kind_name}'")))?;
    let key = r.string()?.to_string();
    let n = r.count()?;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        keys.push(r.string()?.to_string());
    }
    let message = r.string()?.to_string();
    let mut e = Error::new(kind, message).with_keys(keys);
    if !key.is_empty() {
        e = e.with_key(key);
    }
    Ok(e)
}

/// A plugin function by path and symbol, loaded once per process. A path that does not exist
/// here is looked for, by file name, in the folders of `DASKR_PLUGIN_PATH` (colon-separated).
fn plugin_func(path: &str, symbol: &str) -> Result<Func> {
    type Cache = Mutex<HashMap<(String, String), Func>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = (path.to_string(), symbol.to_string());
    if let Some(f) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
        return Ok(f.clone());
    }
    let plugin = Plugin::open(find_plugin(Path::new(path)))?;
    let f = plugin.func(symbol)?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, f.clone());
    Ok(f)
}

fn find_plugin(path: &Path) -> PathBuf {
    if path.exists() {
        return path.to_path_buf();
    }
    if let (Some(name), Some(dirs)) = (path.file_name(), std::env::var_os("DASKR_PLUGIN_PATH")) {
        for dir in std::env::split_paths(&dirs) {
            let candidate = dir.join(name);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    path.to_path_buf()
}

struct Decoder<'a, 'f> {
    r: Reader<'a>,
    nkeys: u32,
    funcs: &'f [Func],
    /// The graph the tasks will be added to (see `Partition::graph`).
    graph: &'f Graph,
}

impl Decoder<'_, '_> {
    fn expr(&mut self, depth: u32) -> Result<Comp> {
        if depth > MAX_NESTING {
            return Err(self
                .r
                .error(format!("computation nests deeper than {MAX_NESTING}")));
        }
        Ok(match self.r.byte()? {
            LIT => Comp::value(self.r.value(0)?),
            REF => {
                let k = self.r.varint()?;
                if k >= u64::from(self.nkeys) {
                    return Err(self
                        .r
                        .error(format!("reference to key {k} of {}", self.nkeys)));
                }
                // Keys were interned first, in table order: index = handle.
                Comp::id(self.graph.task_id(k as u32))
            }
            LIST => {
                let n = self.r.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.expr(depth + 1)?);
                }
                Comp::list(items)
            }
            MAP => {
                let n = self.r.count()?;
                let mut names = Vec::with_capacity(n);
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    names.push(self.r.string()?);
                    values.push(self.expr(depth + 1)?);
                }
                let names = Names::new(names).map_err(|e| self.r.error(e.message))?;
                Comp::map_of(names, values)
            }
            TASK => {
                let f = self.r.varint()?;
                let func = self
                    .funcs
                    .get(f as usize)
                    .ok_or_else(|| self.r.error(format!("function {f} is not in the table")))?;
                let nargs = self.r.count()?;
                let mut args = Vec::with_capacity(nargs);
                for _ in 0..nargs {
                    args.push(self.expr(depth + 1)?);
                }
                let nkw = self.r.count()?;
                let mut kwargs = Vec::with_capacity(nkw);
                for _ in 0..nkw {
                    let name = self.r.string()?.to_string();
                    kwargs.push((name, self.expr(depth + 1)?));
                }
                Comp::task(func, args, kwargs)
            }
            tag => return Err(self.r.error(format!("unknown computation tag {tag:#04x}"))),
        })
    }
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graph exercising every kind of computation: literals, aliases, lists, inline tasks,
    /// keyword arguments, a chain and a fan-in.
    fn sample() -> (Graph, Value) {
        let add = Func::new("add", |c| {
            let mut s = 0;
            for i in 0..c.nargs() {
                s += sum(c.arg(i).unwrap());
            }
            if let Some(k) = c.kwarg("scale") {
                s *= k.as_int().unwrap();
            }
            c.ret(Value::Int(s));
        });
        let mut g = Graph::new();
        g.add_value("x", Value::Int(2)).unwrap();
        g.add_value("s", Value::str("text")).unwrap();
        for i in 0..40 {
            let prev = if i == 0 {
                "x".to_string()
            } else {
                format!("c{}", i - 1)
            };
            g.add_task(
                &format!("c{i}"),
                &add,
                vec![Comp::key(prev), Comp::value(1)],
                vec![],
            )
            .unwrap();
        }
        g.add_alias("a", "c39").unwrap();
        let inline = Comp::task(&add, vec![Comp::key("c3"), Comp::value(5)], vec![]);
        g.add_task(
            "k",
            &add,
            vec![Comp::list(vec![
                Comp::key("a"),
                inline,
                Comp::value(Value::Float(0.0)),
            ])],
            vec![("scale".into(), Comp::key("x"))],
        )
        .unwrap();
        let leaves = (0..40).map(|i| Comp::key(format!("c{i}"))).collect();
        g.add_task("sum", &add, vec![Comp::list(leaves)], vec![])
            .unwrap();
        g.add(
            "l",
            Comp::list(vec![
                Comp::key("s"),
                Comp::key("k"),
                Comp::value(Value::Null),
                Comp::map(vec![
                    (
                        "inc",
                        Comp::task(&add, vec![Comp::key("c5"), Comp::value(1)], vec![]),
                    ),
                    (
                        "lit",
                        Comp::value(Value::map(vec![("a", Value::Int(1))]).unwrap()),
                    ),
                    ("ref", Comp::key("x")),
                ]),
            ]),
        )
        .unwrap();
        let keys = Value::list(vec![Value::str("sum"), Value::str("l"), Value::str("c7")]).unwrap();
        (g, keys)
    }

    fn sum(v: &Value) -> i64 {
        match v.as_list() {
            Some(items) => items.iter().map(sum).sum(),
            None => v.as_int().unwrap_or(0),
        }
    }

    /// Runs `plan` partition by partition through messages, as a remote scheduler would.
    fn run_by_messages(g: &Graph, keys: &Value, workers: usize, max: usize) -> Result<Value> {
        run_plan_by_messages(g, &Plan::new(g, keys)?, keys, workers, max)
    }

    /// Runs `plan` partition by partition, each decoded from its message and run as a worker
    /// would, the outputs carried to the readers as encoded values.
    fn run_plan_by_messages(
        g: &Graph,
        plan: &Plan,
        keys: &Value,
        workers: usize,
        max: usize,
    ) -> Result<Value> {
        let parts = Partitions::cut(plan, workers, max);
        let mut results: FxHashMap<u32, Vec<u8>> = FxHashMap::default();
        for i in 0..parts.len() {
            let message = encode_partition(g, plan, &parts, i, Funcs::Local)?;
            let inputs: Vec<&[u8]> = parts.inputs(i).iter().map(|p| &results[p][..]).collect();
            let part = PartitionMessage::decode(&message, Some(g))?;
            // Both ways a worker runs one: on threads, and alone, observed.
            let values = if i % 2 == 0 {
                part.run(&inputs, 2)?
            } else {
                part.run_observed(&inputs, &mut Unobserved, false, 0).0?
            };
            let outputs = parts.outputs(i);
            assert_eq!(values.len(), outputs.len());
            for (&p, v) in outputs.iter().zip(values) {
                results.insert(p, encode::encode(&v)?);
            }
        }
        Ok(plan.shape_result(keys, &mut |id| {
            encode::decode(&results[&plan.pos[id as usize]]).unwrap()
        }))
    }

    #[test]
    fn partitions_run_by_message_give_the_same_results() {
        let (g, keys) = sample();
        let expected = g.get(&keys, &Options::default()).unwrap();
        for (workers, max) in [(1, 1000), (2, 3), (2, 1), (4, 10)] {
            let got = run_by_messages(&g, &keys, workers, max).unwrap();
            assert_eq!(got, expected, "workers {workers}, max {max}");
        }
    }

    struct Unobserved;
    impl Observer for Unobserved {
        fn before(&mut self, _: u32) -> bool {
            true
        }
        fn after(&mut self, _: u32, _: bool) {}
    }

    #[test]
    fn partitions_store_into_and_read_from_a_result_cache() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let dir = std::env::temp_dir().join(format!("daskr-wire-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = Cache::open(&dir).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inc = Func::new_versioned("inc", "1", move |c| {
            counted.fetch_add(1, Ordering::Relaxed);
            let x = c.arg(0).unwrap().as_int().unwrap();
            c.ret(Value::Int(x + 1));
        });
        // Two chains of 20 from two inputs, and their sum.
        let graph = |a: i64| {
            let mut g = Graph::new();
            g.add_value("a", Value::Int(a)).unwrap();
            g.add_value("b", Value::Int(100)).unwrap();
            for (name, from) in [("a", "a"), ("b", "b")] {
                for i in 0..20 {
                    let prev = if i == 0 {
                        from.to_string()
                    } else {
                        format!("{name}{}", i - 1)
                    };
                    g.add_task(&format!("{name}{i}"), &inc, vec![Comp::key(prev)], vec![])
                        .unwrap();
                }
            }
            let sum = Func::new_versioned("sum", "1", |c| {
                let s = (0..c.nargs())
                    .map(|i| c.arg(i).unwrap().as_int().unwrap())
                    .sum();
                c.ret(Value::Int(s));
            });
            g.add_task(
                "sum",
                &sum,
                vec![Comp::key("a19"), Comp::key("b19")],
                vec![],
            )
            .unwrap();
            g
        };
        let keys = Value::list(vec![Value::str("sum"), Value::str("a5")]).unwrap();
        let run = |g: &Graph| {
            let plan = crate::resume::resume(g, &Plan::new(g, &keys).unwrap(), &cache);
            let got = run_plan_by_messages(g, &plan, &keys, 2, 6).unwrap();
            let stats = plan.cache.as_ref().unwrap().finish_elsewhere(true);
            (got, stats)
        };
        let expected =
            |a: i64| Value::list(vec![Value::Int(a + 20 + 120), Value::Int(a + 6)]).unwrap();

        let (got, stats) = run(&graph(0));
        assert_eq!(got, expected(0));
        assert_eq!(calls.load(Ordering::Relaxed), 40);
        // The workers wrote every result under the get's tag, which the caller counts.
        assert_eq!((stats.misses, cache.usage().entries), (41, 41));
        assert_eq!(stats.bytes_written, cache.usage().bytes);

        // A rerun runs nothing: the requested results travel as literals.
        let (got, stats) = run(&graph(0));
        assert_eq!(got, expected(0));
        assert_eq!(calls.load(Ordering::Relaxed), 40);
        assert_eq!((stats.hits, stats.misses, stats.bytes_written), (2, 0, 0));

        // A changed input reruns its chain and the sum; the other chain's end is read.
        let (got, stats) = run(&graph(7));
        assert_eq!(got, expected(7));
        assert_eq!(calls.load(Ordering::Relaxed), 60);
        assert_eq!((stats.hits, stats.misses), (1, 21));
        assert_eq!(cache.usage().entries, 62);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn local_functions_are_refused_where_they_cannot_go() {
        let (g, keys) = sample();
        let plan = Plan::new(&g, &keys).unwrap();
        let parts = Partitions::cut(&plan, 1, 1000);
        let e = encode_partition(
            &g,
            &plan,
            &parts,
            0,
            Funcs::PluginsOnly("on a Dask cluster"),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.key.is_some());
        assert!(e.message.contains("on a Dask cluster") && e.message.contains("'add'"));
        // A message calling local functions cannot run in another process.
        let m = encode_partition(&g, &plan, &parts, 0, Funcs::Local).unwrap();
        let e = run_message(&m, &[], 1).unwrap_err();
        assert!(e.message.contains("fork"), "{e}");
    }

    #[test]
    fn a_failing_task_is_named_and_pointer_results_cannot_leave() {
        let fail = Func::new("fail", |c| c.fail("boom"));
        let mut g = Graph::new();
        g.add_task("bad", &fail, vec![], vec![]).unwrap();
        let e = run_by_messages(&g, &Value::str("bad"), 1, 10).unwrap_err();
        assert_eq!(
            (e.kind, e.key.as_deref()),
            (ErrorKind::TaskFailed, Some("bad"))
        );
        let e = encode_outputs(&["p"], &[Value::pointer(1 as _, "thing", None)]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("p"));
        assert!(e.message.contains("threads scheduler"), "{e}");
    }

    #[test]
    fn malformed_messages_are_errors_not_crashes() {
        let (g, keys) = sample();
        let plan = Plan::new(&g, &keys).unwrap();
        let parts = Partitions::cut(&plan, 2, 8);
        let m = encode_partition(&g, &plan, &parts, 2, Funcs::Local).unwrap();
        for cut in 0..m.len() {
            assert!(
                PartitionMessage::decode(&m[..cut], Some(&g)).is_err(),
                "prefix {cut}"
            );
        }
        // Flip each byte in turn: decoding may succeed (a different literal) but never panics.
        for i in 0..m.len() {
            let mut bad = m.clone();
            bad[i] ^= 0x5a;
            let _ = PartitionMessage::decode(&bad, Some(&g));
        }
        let mut e = Vec::new();
        put_error(
            &mut e,
            &Error::new(ErrorKind::WorkerDied, "gone").with_key("k"),
        );
        let back = read_error(&mut Reader::new(&e)).unwrap();
        assert_eq!(
            (back.kind, back.key.as_deref()),
            (ErrorKind::WorkerDied, Some("k"))
        );
    }
}
