//! Planning a `get`: resolve the requested keys, cull the graph to their ancestors, check it
//! (missing keys and dependencies, cycles) and fix the static priority — all in one iterative
//! depth-first pass, linear in the entries and edges it touches, before any task runs.
//!
//! Priority (in the spirit of `dask.order`): entries are numbered in depth-first post-order from
//! the requested keys, visiting an entry's dependencies that have dependencies of their own
//! before its leaf dependencies (literals, tasks without inputs), each group in argument order.
//! So a branch is finished — and its inputs freed — before the next one is opened, and a leaf is
//! produced just before the task that needs it. Post-order is a topological order: position
//! `p` only depends on positions below `p`. Positions are the run's dense indices.
//!
//! Culling first means a cycle in a part of the graph that the requested keys do not need is
//! not an error (Dask orders the whole graph, so it fails such a call).

use crate::cache::Attached;
use crate::comp::TaskId;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Graph, Node, View, NO_TASK_FUNC};
use crate::value::Value;

/// Marks an id outside the plan.
pub(crate) const UNPLANNED: u32 = u32::MAX;
const ON_STACK: u32 = u32::MAX - 1;

pub(crate) struct Plan {
    /// Graph ids in priority order.
    pub order: Vec<u32>,
    /// Graph id -> position in `order` (UNPLANNED when culled).
    pub pos: Vec<u32>,
    /// Dependencies of each position, as positions (CSR, recorded as entries are numbered, so
    /// the run reads them sequentially instead of chasing graph ids).
    pub deps_off: Vec<u32>,
    pub deps: Vec<u32>,
    /// Positions with no dependencies, ascending: ready when the run starts.
    pub initial: Vec<u32>,
    /// Each position's function if it is a task whose arguments are exactly its dependencies
    /// (`deps`, in order), else NO_TASK_FUNC: the run calls such a task from the plan alone,
    /// in position order, without reading the graph's nodes in graph order (for a wavefront
    /// planned column by column, a cache miss a task).
    pub task_funcs: Vec<u32>,
    /// Dependents of each position, as positions, in ascending order (CSR).
    pub dependents_off: Vec<u32>,
    pub dependents: Vec<u32>,
    /// How many consumers each position's result has: its dependents, plus one if requested.
    pub consumers: Vec<u32>,
    /// Requested positions, each once.
    pub requested: Vec<u32>,
    /// Requested graph ids in the order they appear in the request (with repeats), to rebuild
    /// the result in the request's shape.
    pub request_ids: Vec<u32>,
    /// With a result cache: what each position does with it (`resume`).
    pub cache: Option<Box<Attached>>,
}

impl Plan {
    pub fn new(graph: &Graph, keys: &Value) -> Result<Plan> {
        let mut request_ids = Vec::new();
        collect_keys(graph, keys, &mut request_ids)?;
        Plan::of_ids(graph, request_ids)
    }

    /// The plan of a request by handle (`Graph::get_tasks`): `tasks`, in order, each the handle
    /// of a defined entry of `graph`.
    pub fn of_tasks(graph: &Graph, tasks: &[TaskId]) -> Result<Plan> {
        let mut request_ids = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            match graph.resolve(task.0) {
                Some(id) if graph.is_defined(id) => request_ids.push(id),
                Some(id) => {
                    let key = graph.key_name(id);
                    return Err(Error::new(
                        ErrorKind::MissingKey,
                        format!("requested task {i} ('{key}') is referred to but not defined"),
                    )
                    .with_key(key.clone())
                    .with_keys(vec![key.into_owned()]));
                }
                None => {
                    return Err(Error::invalid_argument(format!(
                        "requested task {i}: handle {:#x} does not belong to this graph",
                        task.0
                    )))
                }
            }
        }
        Plan::of_ids(graph, request_ids)
    }

    /// The plan computing the entries `request_ids` (defined ones, in request order).
    fn of_ids(graph: &Graph, request_ids: Vec<u32>) -> Result<Plan> {
        let (nodes, all_deps) = graph.dep_lists();
        let deps_of =
            |n: Node| &all_deps[n.deps_start as usize..(n.deps_start + n.deps_len) as usize];
        let mut pos = vec![UNPLANNED; nodes.len()];
        let mut num = Numbering::new(nodes.len(), all_deps.len());
        let mut stack: Vec<Frame> = Vec::new();
        for &root in &request_ids {
            if pos[root as usize] != UNPLANNED {
                continue;
            }
            pos[root as usize] = ON_STACK;
            stack.push(Frame {
                id: root,
                next: 0,
                leaves: false,
            });
            'frames: while let Some(top) = stack.last_mut() {
                let id = top.id;
                let node = nodes[id as usize];
                let deps = deps_of(node);
                // First the dependencies with inputs of their own, each opened as it comes...
                while (top.next as usize) < deps.len() {
                    let d = deps[top.next as usize];
                    top.next += 1;
                    let node = nodes[d as usize];
                    if !node.is_defined() {
                        return Err(missing_dependency(graph, id, d));
                    }
                    if node.deps_len == 0 {
                        top.leaves = true;
                        continue;
                    }
                    match pos[d as usize] {
                        UNPLANNED => {
                            pos[d as usize] = ON_STACK;
                            stack.push(Frame {
                                id: d,
                                next: 0,
                                leaves: false,
                            });
                            continue 'frames;
                        }
                        ON_STACK => return Err(cycle(graph, &stack, d)),
                        _ => {}
                    }
                }
                // ...then the leaves, numbered where they stand (they open nothing), just
                // before the entry that needs them.
                if top.leaves {
                    for &d in deps {
                        let leaf = nodes[d as usize];
                        if leaf.deps_len == 0 && pos[d as usize] == UNPLANNED {
                            num.number(&mut pos, d, leaf.task_func(), &[]);
                        }
                    }
                }
                // Numbered now, while the entry is hot: every dependency already is.
                stack.pop();
                num.number(&mut pos, id, node.task_func(), deps);
            }
        }
        let Numbering {
            order,
            task_funcs,
            deps_off,
            deps_pos,
            dependents_count,
            initial,
        } = num;
        Ok(Plan::finish(
            order,
            task_funcs,
            pos,
            deps_off,
            deps_pos,
            initial,
            dependents_count,
            request_ids,
            None,
        ))
    }

    /// A plan of the given positions (in priority order, with their dependencies as
    /// positions) for the request `request_ids`; `cache` says what each does with a cache.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        graph: &Graph,
        order: Vec<u32>,
        pos: Vec<u32>,
        deps_off: Vec<u32>,
        deps: Vec<u32>,
        initial: Vec<u32>,
        request_ids: &[u32],
        cache: Option<Box<Attached>>,
    ) -> Plan {
        let mut dependents_count = vec![0u32; order.len() + 1];
        for &q in &deps {
            dependents_count[q as usize] += 1;
        }
        let task_funcs = order.iter().map(|&id| graph.node(id).task_func()).collect();
        Plan::finish(
            order,
            task_funcs,
            pos,
            deps_off,
            deps,
            initial,
            dependents_count,
            request_ids.to_vec(),
            cache,
        )
    }

    /// The dependents (from each position's count of them, one slot more than positions),
    /// consumers and requested positions.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        order: Vec<u32>,
        task_funcs: Vec<u32>,
        pos: Vec<u32>,
        deps_off: Vec<u32>,
        deps_pos: Vec<u32>,
        initial: Vec<u32>,
        dependents_count: Vec<u32>,
        request_ids: Vec<u32>,
        cache: Option<Box<Attached>>,
    ) -> Plan {
        // Dependents in CSR without a second pass of counts: the counts become inclusive
        // prefix sums (the end of each position's range), and filling from the last position
        // down moves each end back to its start — leaving every range ascending.
        let n = order.len();
        let mut dependents_off = dependents_count;
        dependents_off.resize(n + 1, 0);
        let mut total = 0u32;
        for off in &mut dependents_off {
            total += *off;
            *off = total;
        }
        let mut dependents = vec![0u32; total as usize];
        for p in (0..n).rev() {
            for &q in &deps_pos[deps_off[p] as usize..deps_off[p + 1] as usize] {
                let end = &mut dependents_off[q as usize];
                *end -= 1;
                dependents[*end as usize] = p as u32;
            }
        }
        let mut consumers: Vec<u32> = (0..n)
            .map(|p| dependents_off[p + 1] - dependents_off[p])
            .collect();
        let mut requested = Vec::new();
        for &id in &request_ids {
            let p = pos[id as usize] as usize;
            if consumers[p] & REQUESTED_BIT == 0 {
                consumers[p] |= REQUESTED_BIT;
                requested.push(p as u32);
            }
        }
        for c in &mut consumers {
            if *c & REQUESTED_BIT != 0 {
                *c = (*c & !REQUESTED_BIT) + 1;
            }
        }
        Plan {
            order,
            task_funcs,
            pos,
            deps_off,
            deps: deps_pos,
            initial,
            dependents_off,
            dependents,
            consumers,
            requested,
            request_ids,
            cache,
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Entries that compute something (everything but literals): what callbacks report. Only
    /// callbacks need it, so it is counted on demand (it reads every entry's expression).
    pub fn computed(&self, graph: &Graph) -> usize {
        self.order
            .iter()
            .enumerate()
            .filter(|&(p, &id)| !graph.is_literal(id) && !self.is_found(p as u32))
            .count()
    }

    /// Whether position `p`'s result was found in the result cache (it is read, not run).
    #[inline]
    pub fn is_found(&self, p: u32) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|c| c.use_of(p) == crate::cache::Use::Found)
    }

    /// Whether position `p` was requested (it holds one consumer more than its dependents).
    #[inline]
    pub fn is_requested(&self, p: u32) -> bool {
        let i = p as usize;
        self.consumers[i] > self.dependents_off[i + 1] - self.dependents_off[i]
    }

    /// The first planned entry (graph id) whose computation calls a function of this process
    /// — a C function pointer, a closure, a Go function: not a plugin symbol — and that
    /// function's index. Such an entry cannot run in another process unless it is a fork of
    /// this one. Cheap when the graph has no such function at all.
    pub fn first_local_function(&self, graph: &Graph) -> Option<(u32, u32)> {
        if (0..graph.func_count() as u32).all(|f| graph.func(f).origin().is_some()) {
            return None;
        }
        self.first_call(graph, |f| graph.func(f).origin().is_none())
    }

    /// Whether any planned entry calls a function (one found in the result cache does not:
    /// its result is read).
    pub fn calls_anything(&self, graph: &Graph) -> bool {
        self.first_call(graph, |_| true).is_some()
    }

    /// The first planned entry (graph id), not found in the result cache, whose computation
    /// calls a function `wanted` picks, and that function's index.
    fn first_call(&self, graph: &Graph, wanted: impl Fn(u32) -> bool) -> Option<(u32, u32)> {
        let mut stack: Vec<View<'_>> = Vec::new();
        for (p, &id) in self.order.iter().enumerate() {
            if self.is_found(p as u32) {
                continue;
            }
            stack.push(graph.entry(id));
            while let Some(v) = stack.pop() {
                match v {
                    View::Task(call) => {
                        if wanted(call.func) {
                            return Some((id, call.func));
                        }
                        stack.extend(graph.args(&call));
                    }
                    View::List { items, len } => stack.extend(graph.items(items, len)),
                    View::Map { items, names } => {
                        stack.extend(graph.items(items, names.len() as u32))
                    }
                    View::Lit(_) | View::Ref(_) => {}
                }
            }
        }
        None
    }

    /// The positions position `p` depends on.
    /// The function of position `p` if it is a task whose arguments are exactly its
    /// dependencies (`deps(p)`, in order).
    pub fn task_func(&self, p: u32) -> Option<u32> {
        let f = self.task_funcs[p as usize];
        (f != NO_TASK_FUNC).then_some(f)
    }

    pub fn deps(&self, p: u32) -> &[u32] {
        let p = p as usize;
        &self.deps[self.deps_off[p] as usize..self.deps_off[p + 1] as usize]
    }

    pub fn dependents(&self, p: u32) -> &[u32] {
        let p = p as usize;
        &self.dependents[self.dependents_off[p] as usize..self.dependents_off[p + 1] as usize]
    }

    /// Rebuilds the request's shape, taking each requested key's value from `value_of`, which
    /// is given graph ids (`pos` maps them to positions).
    pub fn shape_result(&self, keys: &Value, value_of: &mut dyn FnMut(u32) -> Value) -> Value {
        let mut next = self.request_ids.iter();
        shape(keys, &mut || {
            value_of(*next.next().expect("request walked twice the same way"))
        })
    }
}

/// A flag bit while counting (a key can be requested several times but holds one extra
/// consumer); no entry has 2^31 dependents.
const REQUESTED_BIT: u32 = 1 << 31;

fn shape(keys: &Value, next: &mut dyn FnMut() -> Value) -> Value {
    match keys.as_list() {
        Some(items) => {
            let out: Vec<Value> = items.iter().map(|k| shape(k, next)).collect();
            Value::list(out).expect("a result nests exactly as deep as its request")
        }
        None => next(),
    }
}

/// Resolves a request — a key (string) or a list of requests — to graph ids, in order.
/// An entry on the planning walk's stack: the next dependency to look at, and whether a
/// leaf was passed over (the leaves are numbered after the dependencies with inputs).
struct Frame {
    id: u32,
    next: u32,
    leaves: bool,
}

/// The arrays the walk fills as it numbers entries, sized for the whole graph up front (the
/// usual get plans nearly all of it): growing them copied each about twice over.
struct Numbering {
    order: Vec<u32>,
    task_funcs: Vec<u32>,
    deps_off: Vec<u32>,
    deps_pos: Vec<u32>,
    /// Dependents of each position so far (one slot more than positions: `finish` turns it
    /// into the dependents' offsets).
    dependents_count: Vec<u32>,
    initial: Vec<u32>,
}

impl Numbering {
    fn new(ids: usize, edges: usize) -> Numbering {
        let mut deps_off = Vec::with_capacity(ids + 1);
        deps_off.push(0);
        Numbering {
            order: Vec::with_capacity(ids),
            task_funcs: Vec::with_capacity(ids),
            deps_off,
            deps_pos: Vec::with_capacity(edges),
            dependents_count: Vec::with_capacity(ids + 1),
            initial: Vec::new(),
        }
    }

    /// Gives `id` (`Node::task_func`: `task_func`), whose dependencies `deps` are all
    /// numbered, the next position.
    #[inline(always)]
    fn number(&mut self, pos: &mut [u32], id: u32, task_func: u32, deps: &[u32]) {
        let p = self.order.len() as u32;
        pos[id as usize] = p;
        self.order.push(id);
        self.task_funcs.push(task_func);
        for &d in deps {
            let q = pos[d as usize];
            self.deps_pos.push(q);
            self.dependents_count[q as usize] += 1;
        }
        self.deps_off.push(self.deps_pos.len() as u32);
        self.dependents_count.push(0);
        if deps.is_empty() {
            self.initial.push(p);
        }
    }
}

fn collect_keys(graph: &Graph, keys: &Value, out: &mut Vec<u32>) -> Result<()> {
    if let Some(items) = keys.as_list() {
        for k in items {
            collect_keys(graph, k, out)?;
        }
        return Ok(());
    }
    let Some(key) = keys.as_str() else {
        return Err(Error::invalid_argument(format!(
            "requested keys must be strings or lists of them, not {}",
            keys.kind().name()
        )));
    };
    match graph.id_of(key) {
        Some(id) if graph.is_defined(id.index()) => {
            out.push(id.index());
            Ok(())
        }
        _ => Err(Error::new(
            ErrorKind::MissingKey,
            format!("requested key '{key}' is not in the graph"),
        )
        .with_key(key)
        .with_keys(vec![key.to_string()])),
    }
}

fn missing_dependency(graph: &Graph, id: u32, missing: u32) -> Error {
    let (key, dep) = (graph.key_name(id), graph.key_name(missing));
    Error::new(
        ErrorKind::MissingDependency,
        format!("key '{key}' depends on '{dep}', which is not in the graph"),
    )
    .with_key(key)
    .with_keys(vec![dep.to_string()])
}

/// `stack` runs from a requested key down to the entry being visited; `back` is on it and is
/// a dependency of the top, so the cycle is `back` .. top.
fn cycle(graph: &Graph, stack: &[Frame], back: u32) -> Error {
    let from = stack.iter().position(|f| f.id == back).unwrap_or(0);
    let keys: Vec<String> = stack[from..]
        .iter()
        .map(|f| graph.key_name(f.id).to_string())
        .collect();
    let mut path = keys
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(" depends on ");
    path.push_str(&format!(" depends on '{}'", keys[0]));
    Error::new(ErrorKind::Cycle, format!("cycle in the graph: {path}"))
        .with_key(keys[0].clone())
        .with_keys(keys)
}
