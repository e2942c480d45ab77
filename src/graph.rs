//! The graph: keys interned to dense ids, each defined entry's computation flattened into one
//! expression arena, and each entry's distinct dependencies listed once, at build time, so a
//! run never walks expressions to find edges and never hashes a key.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::comp::{Comp, CompKind, Repr, TaskId};
use crate::error::{Error, ErrorKind, Result};
use crate::func::Func;
use crate::keys::{KeyOf, Keys};
use crate::value::{Names, Value};
use std::sync::Arc;

/// A flattened computation. Children of a list or task sit contiguously in the arena. 16
/// bytes (the arena holds one per task and one per argument): the rare task with keyword
/// arguments keeps its counts and names aside. Readers see expressions through `view`.
#[derive(Debug)]
pub(crate) enum Expr {
    Lit(Value),
    Ref(u32),
    /// `len` children at `start`.
    List {
        start: u32,
        len: u32,
    },
    /// A list whose items are all distinct references: they are the `len` dependencies at
    /// `start` of the entry's edge list (as `ArgsAt::Deps` for a task), 16 bytes an item less —
    /// a sink over a million inputs, a group's list of results.
    RefList {
        start: u32,
        len: u32,
    },
    /// A map: its values are the children at `start`, as many as `map_names[names]` holds.
    Map {
        start: u32,
        names: u32,
    },
    /// `func` called on the `nargs` children at `start`.
    Task {
        func: u32,
        start: u32,
        nargs: u32,
    },
    /// `func` called with keyword arguments: `kw_calls[call]` holds its counts and names.
    KwTask {
        func: u32,
        start: u32,
        call: u32,
    },
}

/// A task's call: `nargs` positional then `nkwargs` keyword arguments at `args`; the keyword
/// names are `kwname_ids[names..names + nkwargs]`. Readers go through `Graph::args`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskCall {
    pub func: u32,
    pub args: ArgsAt,
    pub nargs: u32,
    pub nkwargs: u32,
    pub names: u32,
}

/// Where a call's arguments are.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ArgsAt {
    /// Expressions in the arena, from this index.
    Exprs(u32),
    /// References, from this index of the edge list: the arguments of a task whose arguments
    /// are all distinct handles are its dependencies, so they are stored only there (the
    /// usual task of a big graph takes no expression at all: 16 bytes a task and 16 an
    /// argument less to write, plan and run through).
    Deps(u32),
}

/// The counts and names of a `KwTask`'s arguments.
#[derive(Debug, Clone, Copy)]
struct KwCall {
    nargs: u32,
    nkwargs: u32,
    names: u32,
}

/// An expression as planning, running and encoding read it.
#[derive(Clone, Copy)]
pub(crate) enum View<'g> {
    Lit(&'g Value),
    Ref(u32),
    /// A list of `len` items at `items` (`Graph::items` reads them).
    List {
        items: ArgsAt,
        len: u32,
    },
    /// A map of `names` whose values are the items at `items` (as many as the names).
    Map {
        items: ArgsAt,
        names: &'g Arc<Names>,
    },
    Task(TaskCall),
}

const UNDEFINED: u32 = u32::MAX;
/// Marks a `Node::expr` that holds a function index instead of an expression index (so the
/// arena holds fewer than 2^31 expressions, and a graph fewer than 2^31 - 1 functions).
const DEPS_TASK: u32 = 1 << 31;
const MAX_EXPRS: usize = DEPS_TASK as usize;

/// A task's positional arguments as they are added: inline for the usual few.
pub(crate) type Args = smallvec::SmallVec<[Comp; 2]>;

/// An argument of the hot path of building (`Graph::add_task_simple`).
pub(crate) enum Arg {
    /// A handle (`TaskId`'s bits).
    Ref(u64),
    Lit(Value),
}

/// What `Graph::add_task_simple` takes: a handle (`TaskId`'s bits, `u64`), or an `Arg`.
pub(crate) trait SimpleArg {
    fn handle(&self) -> Option<u64>;
    /// The argument's expression, moved out (a literal leaves a reference in its place). A
    /// handle must have been checked (`Graph::resolve`): its low half is its entry's id.
    fn take(&mut self) -> Expr;
}

impl SimpleArg for u64 {
    fn handle(&self) -> Option<u64> {
        Some(*self)
    }
    fn take(&mut self) -> Expr {
        Expr::Ref(*self as u32)
    }
}

impl SimpleArg for Arg {
    fn handle(&self) -> Option<u64> {
        match self {
            Arg::Ref(r) => Some(*r),
            Arg::Lit(_) => None,
        }
    }
    fn take(&mut self) -> Expr {
        match std::mem::replace(self, Arg::Ref(0)) {
            Arg::Ref(r) => Expr::Ref(r as u32),
            Arg::Lit(v) => Expr::Lit(v),
        }
    }
}

pub(crate) type SimpleArgs = smallvec::SmallVec<[Arg; 4]>;

#[derive(Clone, Copy)]
pub(crate) struct Node {
    /// Root expression; or `DEPS_TASK | func` for a task whose arguments are its
    /// dependencies (see `ArgsAt::Deps`); or UNDEFINED for a key that is only referred to.
    pub expr: u32,
    pub deps_start: u32,
    pub deps_len: u32,
}

impl Node {
    pub(crate) fn is_defined(self) -> bool {
        self.expr != UNDEFINED
    }
    /// The function of a task whose arguments are exactly its dependencies, in order (see
    /// `ArgsAt::Deps`); NO_TASK_FUNC for any other entry.
    pub(crate) fn task_func(self) -> u32 {
        if self.expr & DEPS_TASK != 0 && self.expr != UNDEFINED {
            self.expr & !DEPS_TASK
        } else {
            NO_TASK_FUNC
        }
    }
}

/// `Node::task_func` of an entry that is not a task over its dependencies.
pub(crate) const NO_TASK_FUNC: u32 = u32::MAX;

pub struct Graph {
    /// This graph's handles are `handle_base | id`: the graph's serial number in the high
    /// half (see `TaskId`), so checking a handle is one subtraction and one compare.
    handle_base: u64,
    keys: Keys,
    nodes: Vec<Node>,
    exprs: Vec<Expr>,
    deps: Vec<u32>,
    funcs: Vec<Func>,
    func_ids: FxHashMap<usize, u32>,
    last_func: Option<(usize, u32)>,
    kwnames: Vec<Box<[u8]>>,
    kwname_index: FxHashMap<Box<str>, u32>,
    kwname_ids: Vec<u32>,
    kw_calls: Vec<KwCall>,
    /// The names of the graph's map computations (`Expr::Map`).
    map_names: Vec<Arc<Names>>,
    defined: usize,
}

/// The serial number of the next graph: 31 bits (a C handle shifted left by one must fit a
/// pointer, see `daskr_comp_ref_task`), never 0 (so a zeroed handle belongs to no graph).
/// Graphs 2^31 apart share a serial: their handles would pass each other's check.
static NEXT_SERIAL: AtomicU32 = AtomicU32::new(1);

impl Default for Graph {
    fn default() -> Graph {
        let serial = loop {
            let s = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff;
            if s != 0 {
                break s;
            }
        };
        Graph {
            handle_base: u64::from(serial) << 32,
            keys: Keys::default(),
            nodes: Vec::new(),
            exprs: Vec::new(),
            deps: Vec::new(),
            funcs: Vec::new(),
            func_ids: FxHashMap::default(),
            last_func: None,
            kwnames: Vec::new(),
            kwname_index: FxHashMap::default(),
            kwname_ids: Vec::new(),
            kw_calls: Vec::new(),
            map_names: Vec::new(),
            defined: 0,
        }
    }
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// The handle of entry `id` of this graph.
    pub(crate) fn task_id(&self, id: u32) -> TaskId {
        TaskId(self.handle_base | u64::from(id))
    }

    /// The entry id behind handle `h`, if this graph handed it out.
    #[inline]
    pub(crate) fn resolve(&self, h: u64) -> Option<u32> {
        let id = h.wrapping_sub(self.handle_base);
        (id < self.nodes.len() as u64).then_some(id as u32)
    }

    /// The error for a handle this graph did not hand out, used by the entry `key`.
    fn foreign_handle(key: &str, h: u64) -> Error {
        Error::invalid_argument(format!(
            "key '{key}': task handle {h:#x} does not belong to this graph (a handle from \
             another graph, or not a handle)"
        ))
        .with_key(key)
    }

    /// Number of defined entries.
    pub fn len(&self) -> usize {
        self.defined
    }

    pub fn is_empty(&self) -> bool {
        self.defined == 0
    }

    /// Adds an entry computing `comp` under `key`.
    pub fn add(&mut self, key: &str, comp: Comp) -> Result<TaskId> {
        self.add_root(Some(key), Root::Comp(comp))
    }

    /// Adds an anonymous entry computing `comp`: it has no key, only the handle returned
    /// (see `Keys::anonymous`). Errors and anything else that must name it use `key_name`.
    pub fn add_anonymous(&mut self, comp: Comp) -> Result<TaskId> {
        self.add_root(None, Root::Comp(comp))
    }

    /// Adds a task entry: `func(*args, **kwargs)`. (The same as `add` with `Comp::task`,
    /// without building the intermediate computation: this is the hot path of building.)
    pub fn add_task(
        &mut self,
        key: &str,
        func: &Func,
        args: Vec<Comp>,
        kwargs: Vec<(String, Comp)>,
    ) -> Result<TaskId> {
        self.add_task_args(Some(key), func, Args::from_vec(args), kwargs)
    }

    /// Adds an anonymous task entry (see `add_anonymous`): `func(*args, **kwargs)`.
    pub fn add_anonymous_task(
        &mut self,
        func: &Func,
        args: Vec<Comp>,
        kwargs: Vec<(String, Comp)>,
    ) -> Result<TaskId> {
        self.add_task_args(None, func, Args::from_vec(args), kwargs)
    }

    /// `add_task` with the arguments in an `Args` (no allocation for a few of them).
    pub(crate) fn add_task_args(
        &mut self,
        key: Option<&str>,
        func: &Func,
        args: Args,
        kwargs: Vec<(String, Comp)>,
    ) -> Result<TaskId> {
        self.add_root(key, Root::Task { func, args, kwargs })
    }

    /// `add_task` for a task whose arguments are references by handle and literal values
    /// (`args`: `u32` handles, or `Arg`s), with no keyword arguments: the usual task of a big
    /// graph, added without building or flattening computations. On success the literals
    /// move into the graph; on failure `args` keeps them, for the caller to drop once the
    /// graph's lock is released (a pointer value's destructor may call back into daskr).
    pub(crate) fn add_task_simple<A: SimpleArg>(
        &mut self,
        key: Option<ValidKey<'_>>,
        func: &Func,
        args: &mut [A],
    ) -> Result<TaskId> {
        let key = key.map(ValidKey::as_str);
        if let Some(bad) = args
            .iter()
            .filter_map(A::handle)
            .find(|&r| self.resolve(r).is_none())
        {
            return Err(Graph::foreign_handle(&self.label(key), bad));
        }
        let id = self.begin_entry(key)?;
        let func = self.func_id(func);
        let at = self.exprs.len();
        if at + 1 + args.len() > MAX_EXPRS {
            return Err(Error::invalid_argument(
                "graph too large: more than 2^31 expressions",
            ));
        }
        let deps_start = self.deps.len();
        if args.len() <= 16 {
            // The usual few: a scan finds repeats cheaper than a set.
            for (i, r) in args
                .iter()
                .enumerate()
                .filter_map(|(i, a)| Some((i, a.handle()?)))
            {
                if !args[..i].iter().any(|a| a.handle() == Some(r)) {
                    self.deps.push(r as u32); // checked above: the low half is the id
                }
            }
        } else {
            let mut seen = DepSet {
                start: deps_start,
                big: None,
            };
            for r in args.iter().filter_map(|a| Some(a.handle()? as u32)) {
                if seen.insert(r, &self.deps, self.nodes.len()) {
                    self.deps.push(r);
                }
            }
        }
        let distinct_handles = self.deps.len() - deps_start == args.len();
        if distinct_handles && func < DEPS_TASK - 1 {
            let id = self.finish_entry(id, at as u32, deps_start);
            self.nodes[id.index() as usize].expr = DEPS_TASK | func;
            return Ok(id);
        }
        self.exprs.reserve(1 + args.len());
        self.exprs.push(Expr::Task {
            func,
            start: at as u32 + 1,
            nargs: args.len() as u32,
        });
        self.exprs.extend(args.iter_mut().map(A::take));
        Ok(self.finish_entry(id, at as u32, deps_start))
    }

    /// Interns the (checked) key of an entry being added, which must not be defined yet; or,
    /// for an anonymous entry (no key), takes a new id.
    fn begin_entry(&mut self, key: Option<&str>) -> Result<u32> {
        let Some(key) = key else {
            let id = self.keys.anonymous().ok_or_else(too_many_keys)?;
            self.nodes.push(Node {
                expr: UNDEFINED,
                deps_start: 0,
                deps_len: 0,
            });
            return Ok(id);
        };
        let id = self.intern_checked(key)?;
        if self.nodes[id as usize].expr != UNDEFINED {
            return Err(Error::invalid_graph(key, "the key is already in the graph"));
        }
        Ok(id)
    }

    /// Makes entry `id` undefined again, so it can be added anew: for the graph-file reader,
    /// which reads an entry again when it learns a string in it was a key. What the first
    /// definition wrote to the arenas stays there unused.
    pub(crate) fn forget_definition(&mut self, id: TaskId) {
        let node = &mut self.nodes[id.index() as usize];
        if node.expr == UNDEFINED {
            return;
        }
        let expr = std::mem::replace(&mut node.expr, UNDEFINED);
        self.defined -= 1;
        if expr & DEPS_TASK == 0 {
            // Its literals (strings, mostly) are freed now rather than with the graph.
            self.drop_literals(expr);
        }
    }

    /// Replaces every literal under expression `at` with null.
    fn drop_literals(&mut self, at: u32) {
        let (start, len) = match self.exprs[at as usize] {
            Expr::Lit(_) => {
                self.exprs[at as usize] = Expr::Lit(Value::Null);
                return;
            }
            Expr::Ref(_) | Expr::RefList { .. } => return,
            Expr::List { start, len } => (start, len),
            Expr::Map { start, names } => (start, self.map_names[names as usize].len() as u32),
            Expr::Task { start, nargs, .. } => (start, nargs),
            Expr::KwTask { start, call, .. } => {
                let k = self.kw_calls[call as usize];
                (start, k.nargs + k.nkwargs)
            }
        };
        for child in start..start + len {
            self.drop_literals(child);
        }
    }

    /// What errors about the entry being added call it: its key, or for an anonymous entry
    /// the name it will have (`key_name` of the next id).
    pub(crate) fn label<'k>(&self, key: Option<&'k str>) -> Cow<'k, str> {
        match key {
            Some(key) => Cow::Borrowed(key),
            None => Cow::Owned(anonymous_name(self.keys.len() as u32)),
        }
    }

    /// Defines entry `id` as the expression at `at`, whose dependencies were pushed from
    /// `deps_start` on.
    fn finish_entry(&mut self, id: u32, at: u32, deps_start: usize) -> TaskId {
        self.nodes[id as usize] = Node {
            expr: at,
            deps_start: deps_start as u32,
            deps_len: (self.deps.len() - deps_start) as u32,
        };
        self.defined += 1;
        self.task_id(id)
    }

    fn add_root(&mut self, name: Option<&str>, root: Root<'_>) -> Result<TaskId> {
        if let Some(key) = name {
            check_key(key)?;
        }
        let label = self.label(name);
        let key = &*label;
        let invalid = match &root {
            Root::Comp(comp) => comp.problem().cloned(),
            Root::Task { args, kwargs, .. } => {
                let children = args.iter().chain(kwargs.iter().map(|(_, c)| c));
                Comp::children_problem(children)
            }
        };
        if let Some(e) = invalid {
            // Whatever made the computation unbuildable, what the caller learns is that the
            // entry `key` is malformed.
            return Err(Error::invalid_graph(key, e.message));
        }
        let id = self.begin_entry(name)?;
        let (exprs_len, deps_start) = (self.exprs.len(), self.deps.len());
        let (kwnames_len, kw_calls_len) = (self.kwname_ids.len(), self.kw_calls.len());
        let map_names_len = self.map_names.len();
        let mut seen = DepSet {
            start: deps_start,
            big: None,
        };
        let at = self.push_slot();
        let flattened = match root {
            Root::Comp(comp) => self.flatten(at, comp, key, &mut seen),
            Root::Task { func, args, kwargs } => {
                self.flatten_task(at, func, args, kwargs, key, &mut seen)
            }
        };
        match flattened {
            Ok(()) => Ok(self.finish_entry(id, at, deps_start)),
            Err(e) => {
                self.exprs.truncate(exprs_len);
                self.deps.truncate(deps_start);
                self.kwname_ids.truncate(kwnames_len);
                self.kw_calls.truncate(kw_calls_len);
                self.map_names.truncate(map_names_len);
                Err(e)
            }
        }
    }

    /// Adds a literal entry.
    pub fn add_value(&mut self, key: &str, value: Value) -> Result<TaskId> {
        self.add(key, Comp::value(value))
    }

    /// Adds an alias: `key` takes the value of `target`.
    pub fn add_alias(&mut self, key: &str, target: &str) -> Result<TaskId> {
        check_key(target)
            .map_err(|e| Error::invalid_graph(key, format!("alias target: {}", e.message)))?;
        self.add(key, Comp::key(target))
    }

    /// The handle of `key`, interning it if it is not yet known (so an entry can be referred
    /// to by handle before it is defined).
    pub fn intern(&mut self, key: &str) -> Result<TaskId> {
        check_key(key)?;
        let id = self.intern_checked(key)?;
        Ok(self.task_id(id))
    }

    /// `intern` for a key already checked.
    fn intern_checked(&mut self, key: &str) -> Result<u32> {
        let id = self.keys.intern(key).ok_or_else(too_many_keys)?;
        if id as usize == self.nodes.len() {
            self.nodes.push(Node {
                expr: UNDEFINED,
                deps_start: 0,
                deps_len: 0,
            });
        }
        Ok(id)
    }

    /// The handle of a defined or referred-to key.
    pub fn id_of(&self, key: &str) -> Option<TaskId> {
        self.keys.get(key).map(|id| self.task_id(id))
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.get(key).is_some_and(|id| self.is_defined(id))
    }

    /// Every defined key, in the order the keys became known (keys only referred to, and
    /// anonymous entries, are left out).
    pub fn defined_keys(&self) -> impl Iterator<Item = &str> {
        (0..self.keys.len() as u32)
            .filter(|&id| self.is_defined(id) && !self.keys.is_anonymous(id))
            .map(|id| self.keys.name(id))
    }

    /// The key behind a handle (None for a handle of another graph, or of an anonymous entry).
    pub fn key(&self, task: TaskId) -> Option<&str> {
        self.resolve(task.0)
            .filter(|&id| !self.keys.is_anonymous(id))
            .map(|id| self.keys.name(id))
    }

    /// Approximate heap bytes held by the graph (for memory reports).
    pub fn heap_bytes(&self) -> usize {
        self.keys.heap_bytes()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.exprs.capacity() * std::mem::size_of::<Expr>()
            + self.deps.capacity() * 4
            + self.kw_calls.capacity() * std::mem::size_of::<KwCall>()
            + self.map_names.capacity() * std::mem::size_of::<Arc<Names>>()
    }

    // ---- read access for planning and running ----

    pub(crate) fn id_count(&self) -> usize {
        self.nodes.len()
    }
    pub(crate) fn is_defined(&self, id: u32) -> bool {
        self.nodes[id as usize].expr != UNDEFINED
    }
    pub(crate) fn deps(&self, id: u32) -> &[u32] {
        let n = self.nodes[id as usize];
        &self.deps[n.deps_start as usize..(n.deps_start + n.deps_len) as usize]
    }
    /// Every entry's node and the dependency lists they index: the plan's walk reads them
    /// directly (one load of a node tells both whether it is defined and whether it has inputs).
    pub(crate) fn dep_lists(&self) -> (&[Node], &[u32]) {
        (&self.nodes, &self.deps)
    }
    pub(crate) fn node(&self, id: u32) -> Node {
        self.nodes[id as usize]
    }
    /// What defined entry `id` computes.
    #[inline]
    pub(crate) fn entry(&self, id: u32) -> View<'_> {
        let node = self.nodes[id as usize];
        if node.expr & DEPS_TASK != 0 {
            debug_assert!(node.expr != UNDEFINED, "entry {id} is not defined");
            return View::Task(TaskCall {
                func: node.expr & !DEPS_TASK,
                args: ArgsAt::Deps(node.deps_start),
                nargs: node.deps_len,
                nkwargs: 0,
                names: 0,
            });
        }
        self.view(&self.exprs[node.expr as usize])
    }
    /// Whether defined entry `id` is a literal.
    pub(crate) fn is_literal(&self, id: u32) -> bool {
        matches!(self.entry(id), View::Lit(_))
    }
    /// What entry `id` computes, for profiles: its function's name, or alias, list, literal.
    pub(crate) fn entry_kind(&self, id: u32) -> String {
        match self.entry(id) {
            View::Task(call) => self.func(call.func).name().to_string(),
            View::Ref(_) => "alias".to_string(),
            View::List { .. } => "list".to_string(),
            View::Map { .. } => "map".to_string(),
            View::Lit(_) => "literal".to_string(),
        }
    }

    /// `expr` as readers see it.
    #[inline]
    pub(crate) fn view<'g>(&'g self, expr: &'g Expr) -> View<'g> {
        match *expr {
            Expr::Lit(ref v) => View::Lit(v),
            Expr::Ref(id) => View::Ref(id),
            Expr::List { start, len } => View::List {
                items: ArgsAt::Exprs(start),
                len,
            },
            Expr::RefList { start, len } => View::List {
                items: ArgsAt::Deps(start),
                len,
            },
            Expr::Map { start, names } => View::Map {
                items: ArgsAt::Exprs(start),
                names: &self.map_names[names as usize],
            },
            Expr::Task { func, start, nargs } => View::Task(TaskCall {
                func,
                args: ArgsAt::Exprs(start),
                nargs,
                nkwargs: 0,
                names: 0,
            }),
            Expr::KwTask { func, start, call } => {
                let k = self.kw_calls[call as usize];
                View::Task(TaskCall {
                    func,
                    args: ArgsAt::Exprs(start),
                    nargs: k.nargs,
                    nkwargs: k.nkwargs,
                    names: k.names,
                })
            }
        }
    }
    pub(crate) fn exprs(&self, start: u32, len: u32) -> &[Expr] {
        &self.exprs[start as usize..(start + len) as usize]
    }
    /// A call's arguments, positional then keyword, as readers see them.
    pub(crate) fn args(&self, call: &TaskCall) -> ArgViews<'_> {
        self.items(call.args, call.nargs + call.nkwargs)
    }
    /// The `n` items (a list's, a call's arguments) at `at`, as readers see them.
    pub(crate) fn items(&self, at: ArgsAt, n: u32) -> ArgViews<'_> {
        match at {
            ArgsAt::Exprs(start) => ArgViews::Exprs(self, self.exprs(start, n).iter()),
            ArgsAt::Deps(start) => {
                ArgViews::Deps(self.deps[start as usize..(start + n) as usize].iter())
            }
        }
    }
    /// The references a call's arguments are, when they are all references (`ArgsAt::Deps`).
    #[inline]
    pub(crate) fn arg_refs(&self, call: &TaskCall) -> Option<&[u32]> {
        self.item_refs(call.args, call.nargs)
    }
    /// The references `n` items at `at` are, when they are all references.
    #[inline]
    pub(crate) fn item_refs(&self, at: ArgsAt, n: u32) -> Option<&[u32]> {
        match at {
            ArgsAt::Deps(start) => Some(&self.deps[start as usize..(start + n) as usize]),
            ArgsAt::Exprs(_) => None,
        }
    }
    pub(crate) fn func_count(&self) -> usize {
        self.funcs.len()
    }
    pub(crate) fn func(&self, i: u32) -> &Func {
        &self.funcs[i as usize]
    }
    pub(crate) fn kwnames(&self, names: u32, n: u32) -> impl Iterator<Item = &[u8]> {
        self.kwname_ids[names as usize..(names + n) as usize]
            .iter()
            .map(|&k| &*self.kwnames[k as usize])
    }
    /// The name of entry `id`: its key, or for an anonymous entry `#<id>` (its handle's index)
    /// — with a `'` appended as often as needed to differ from every key of the graph, so
    /// names stay unique wherever entries travel by name (another process, a Dask cluster, a
    /// graph file).
    pub(crate) fn key_name(&self, id: u32) -> Cow<'_, str> {
        if !self.keys.is_anonymous(id) {
            return Cow::Borrowed(self.keys.name(id));
        }
        let mut name = anonymous_name(id);
        while self.keys.get(&name).is_some() {
            name.push('\'');
        }
        Cow::Owned(name)
    }

    /// `key_name` followed by a NUL, for C.
    pub(crate) fn key_c(&self, id: u32) -> Cow<'_, [u8]> {
        if !self.keys.is_anonymous(id) {
            return Cow::Borrowed(self.keys.c_name(id));
        }
        let mut name = self.key_name(id).into_owned().into_bytes();
        name.push(0);
        Cow::Owned(name)
    }

    /// The key of entry `id`, to be looked up only if needed (see `KeyOf`).
    pub(crate) fn key_of(&self, id: u32) -> KeyOf<'_> {
        KeyOf {
            keys: &self.keys,
            id,
        }
    }

    // ---- building ----

    fn push_slot(&mut self) -> u32 {
        self.exprs.push(Expr::Ref(UNDEFINED));
        (self.exprs.len() - 1) as u32
    }

    fn push_slots(&mut self, n: usize) -> Result<u32> {
        let start = self.exprs.len();
        if start + n > MAX_EXPRS {
            return Err(Error::invalid_argument(
                "graph too large: more than 2^31 expressions",
            ));
        }
        self.exprs.resize_with(start + n, || Expr::Ref(UNDEFINED));
        Ok(start as u32)
    }

    /// Writes `comp` into the reserved slot `at`, recording its references as dependencies of
    /// the entry `key`. Recursion depth is bounded by `Comp`'s nesting cap.
    fn flatten(&mut self, at: u32, comp: Comp, key: &str, seen: &mut DepSet) -> Result<()> {
        let node = match comp.0 {
            Repr::Id(h) => {
                let id = self
                    .resolve(h)
                    .ok_or_else(|| Graph::foreign_handle(key, h))?;
                self.exprs[at as usize] = self.reference(id, seen);
                return Ok(());
            }
            Repr::Node(node) => node,
        };
        let expr = match node.kind {
            CompKind::Value(v) => Expr::Lit(v),
            CompKind::Key(k) => {
                let id = self
                    .intern(&k)
                    .map_err(|e| Error::invalid_graph(key, format!("reference: {}", e.message)))?
                    .index();
                self.reference(id, seen)
            }
            CompKind::List(items) if items.iter().all(Comp::is_handle) => {
                return self.flatten_ref_list(at, &items, key, seen);
            }
            CompKind::List(items) => {
                let len = items.len() as u32;
                let start = self.push_slots(items.len())?;
                for (i, item) in items.into_iter().enumerate() {
                    self.flatten(start + i as u32, item, key, seen)?;
                }
                Expr::List { start, len }
            }
            CompKind::Map { names, values } => {
                let start = self.push_slots(values.len())?;
                for (i, value) in values.into_iter().enumerate() {
                    self.flatten(start + i as u32, value, key, seen)?;
                }
                self.map_names.push(names);
                let names = (self.map_names.len() - 1) as u32;
                Expr::Map { start, names }
            }
            CompKind::Task { func, args, kwargs } => {
                return self.flatten_task(at, &func, Args::from_vec(args), kwargs, key, seen);
            }
            CompKind::Invalid(e) => return Err(Error::invalid_graph(key, &e.message)),
        };
        self.exprs[at as usize] = expr;
        Ok(())
    }

    /// Writes a list of references by handle into the reserved slot `at`: as a `RefList` when
    /// its items are distinct and new to the entry (they are then exactly the dependencies this
    /// records), else as a list of `Ref`s.
    fn flatten_ref_list(
        &mut self,
        at: u32,
        items: &[Comp],
        key: &str,
        seen: &mut DepSet,
    ) -> Result<()> {
        let handles = || {
            items.iter().map(|c| match c.0 {
                Repr::Id(h) => h,
                Repr::Node(_) => unreachable!("only handles reach flatten_ref_list"),
            })
        };
        if let Some(bad) = handles().find(|&h| self.resolve(h).is_none()) {
            return Err(Graph::foreign_handle(key, bad));
        }
        // Checked above: each handle's low half is its entry's id.
        let ids = || handles().map(|h| h as u32);
        let before = self.deps.len();
        for id in ids() {
            self.reference(id, seen);
        }
        let len = items.len() as u32;
        self.exprs[at as usize] = if self.deps.len() - before == items.len() {
            Expr::RefList {
                start: before as u32,
                len,
            }
        } else {
            let start = self.push_slots(items.len())?;
            for (i, id) in ids().enumerate() {
                self.exprs[start as usize + i] = Expr::Ref(id);
            }
            Expr::List { start, len }
        };
        Ok(())
    }

    /// A reference to entry `id`, recorded as a dependency of the entry being added.
    fn reference(&mut self, id: u32, seen: &mut DepSet) -> Expr {
        if seen.insert(id, &self.deps, self.nodes.len()) {
            self.deps.push(id);
        }
        Expr::Ref(id)
    }

    /// Writes a task with its arguments into the reserved slot `at`.
    fn flatten_task(
        &mut self,
        at: u32,
        func: &Func,
        args: Args,
        kwargs: Vec<(String, Comp)>,
        key: &str,
        seen: &mut DepSet,
    ) -> Result<()> {
        let func = self.func_id(func);
        let (nargs, nkwargs) = (args.len() as u32, kwargs.len() as u32);
        let start = self.push_slots(args.len() + kwargs.len())?;
        let names = self.kwname_ids.len() as u32;
        for (i, (name, _)) in kwargs.iter().enumerate() {
            // Keyword arguments are a mapping (Dask's kwargs dict): a name given twice would
            // leave the second value unreachable by name.
            if kwargs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(Error::invalid_graph(
                    key,
                    format!("keyword argument '{name}' is given twice"),
                ));
            }
            let kid = self.kwname(name, key)?;
            self.kwname_ids.push(kid);
        }
        for (i, arg) in args.into_iter().enumerate() {
            self.flatten(start + i as u32, arg, key, seen)?;
        }
        for (i, (_, kw)) in kwargs.into_iter().enumerate() {
            self.flatten(start + nargs + i as u32, kw, key, seen)?;
        }
        self.exprs[at as usize] = if nkwargs == 0 {
            Expr::Task { func, start, nargs }
        } else {
            self.kw_calls.push(KwCall {
                nargs,
                nkwargs,
                names,
            });
            let call = (self.kw_calls.len() - 1) as u32;
            Expr::KwTask { func, start, call }
        };
        Ok(())
    }

    fn func_id(&mut self, func: &Func) -> u32 {
        // Graphs are mostly built from a few functions, one after another: remember the last.
        if let Some(&(last, id)) = self.last_func.as_ref() {
            if last == func.identity() {
                return id;
            }
        }
        let id = self.func_id_slow(func);
        self.last_func = Some((func.identity(), id));
        id
    }

    fn func_id_slow(&mut self, func: &Func) -> u32 {
        // The graph keeps a clone of every Func it uses, so an address is never reused for
        // another function while this map holds it.
        let addr = func.identity();
        if let Some(&id) = self.func_ids.get(&addr) {
            return id;
        }
        let id = self.funcs.len() as u32;
        self.funcs.push(func.clone());
        self.func_ids.insert(addr, id);
        id
    }

    fn kwname(&mut self, name: &str, key: &str) -> Result<u32> {
        if name.is_empty() || name.as_bytes().contains(&0) {
            return Err(Error::invalid_graph(
                key,
                format!("keyword name {name:?} is empty or holds a NUL"),
            ));
        }
        if let Some(&id) = self.kwname_index.get(name) {
            return Ok(id);
        }
        let id = self.kwnames.len() as u32;
        let mut c = Vec::with_capacity(name.len() + 1);
        c.extend_from_slice(name.as_bytes());
        c.push(0);
        self.kwnames.push(c.into_boxed_slice());
        self.kwname_index.insert(name.into(), id);
        Ok(id)
    }
}

/// The name an anonymous entry `id` starts from (see `Graph::key_name`).
fn anonymous_name(id: u32) -> String {
    format!("#{id}")
}

fn too_many_keys() -> Error {
    Error::invalid_argument("too many entries for one graph (2^32)")
}

/// Keys are non-empty UTF-8 without NUL bytes (so they can be handed to C as C strings).
/// A key known to be one a graph accepts (not empty, no NUL byte): checked once, where it
/// enters, so the hot path of building does not scan it again.
#[derive(Clone, Copy)]
pub(crate) struct ValidKey<'a>(&'a str);

impl<'a> ValidKey<'a> {
    pub(crate) fn new(key: &'a str) -> Result<ValidKey<'a>> {
        check_key(key).map(|()| ValidKey(key))
    }
    /// A key its reader already scanned and found no NUL byte in — a C string
    /// (`ffi::arg_str`, which ends at its first NUL), a string the graph-file reader found no
    /// control character in: only emptiness is left to check (the NUL scan was a tenth of a
    /// keyed add's instructions).
    pub(crate) fn nul_free(key: &'a str) -> Result<ValidKey<'a>> {
        if key.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a key must not be empty",
            ));
        }
        Ok(ValidKey(key))
    }
    pub(crate) fn as_str(self) -> &'a str {
        self.0
    }
}

pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "a key must not be empty",
        ));
    }
    // A plain loop: keys are short, and `contains` calls out to memchr (~60 instructions a
    // key, measured with callgrind).
    if key.bytes().any(|b| b == 0) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("key {key:?} holds a NUL byte"),
        ));
    }
    Ok(())
}

/// The arguments of a call as `View`s (see `Graph::args`).
#[derive(Clone)]
pub(crate) enum ArgViews<'g> {
    Exprs(&'g Graph, std::slice::Iter<'g, Expr>),
    Deps(std::slice::Iter<'g, u32>),
}

impl<'g> Iterator for ArgViews<'g> {
    type Item = View<'g>;
    fn next(&mut self) -> Option<View<'g>> {
        match self {
            ArgViews::Exprs(graph, it) => it.next().map(|e| graph.view(e)),
            ArgViews::Deps(it) => it.next().map(|&d| View::Ref(d)),
        }
    }
}

/// What `add_root` adds: any computation, or a task given by its parts.
enum Root<'f> {
    Comp(Comp),
    Task {
        func: &'f Func,
        args: Args,
        kwargs: Vec<(String, Comp)>,
    },
}

/// The distinct dependencies of the entry being added: a scan of the few seen so far; a hash
/// set once there are many; and a bit per graph id once there are so many (a sink over a
/// million inputs) that the bits take less room than the set — 1 bit an id instead of ~16
/// bytes a dependency, tested and set in cache instead of hashed and probed.
struct DepSet {
    /// Where this entry's edges begin in the graph's edge list.
    start: usize,
    big: Option<Seen>,
}

enum Seen {
    Hashed(FxHashSet<u32>),
    Bits(Vec<u64>),
}

impl Seen {
    fn bits_from(ids: impl Iterator<Item = u32>) -> Seen {
        let mut seen = Seen::Bits(Vec::new());
        for id in ids {
            seen.insert(id);
        }
        seen
    }

    fn insert(&mut self, id: u32) -> bool {
        match self {
            Seen::Hashed(set) => set.insert(id),
            Seen::Bits(bits) => {
                let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
                if word >= bits.len() {
                    bits.resize((word + 1).next_power_of_two(), 0);
                }
                let new = bits[word] & bit == 0;
                bits[word] |= bit;
                new
            }
        }
    }
}

impl DepSet {
    /// True if `id` is new for this entry; `deps` is the graph's edge list; `ids` how many ids
    /// the graph has (what a bit set would span).
    fn insert(&mut self, id: u32, deps: &[u32], ids: usize) -> bool {
        let mine = &deps[self.start..];
        match &mut self.big {
            Some(Seen::Hashed(set)) if set.len() * 128 >= ids => {
                let bits = Seen::bits_from(set.iter().copied());
                self.big = Some(bits);
            }
            Some(_) => {}
            None => {
                if mine.contains(&id) {
                    return false;
                }
                if mine.len() >= 16 {
                    let mut set: FxHashSet<u32> = mine.iter().copied().collect();
                    set.insert(id);
                    self.big = Some(Seen::Hashed(set));
                }
                return true;
            }
        }
        self.big.as_mut().is_some_and(|seen| seen.insert(id))
    }
}

#[cfg(test)]
mod tests {
    /// An entry read again (the graph-file reader) frees what its first definition held at
    /// once, however deep, and only that: the redefined entry and the rest keep theirs.
    #[test]
    fn a_forgotten_definition_frees_its_literals_once() {
        use super::*;
        use std::sync::atomic::AtomicUsize;
        static FREED: AtomicUsize = AtomicUsize::new(0);
        unsafe extern "C" fn count(_: *mut std::ffi::c_void) {
            FREED.fetch_add(1, Ordering::SeqCst);
        }
        let pointer = || Comp::value(Value::pointer(std::ptr::null_mut(), "t", Some(count)));
        let mut g = Graph::new();
        let kept = g.add("kept", pointer()).unwrap();
        let other = g.add_value("other", Value::Int(1)).unwrap();
        let nested = Comp::list(vec![
            Comp::value(Value::str("s")),
            Comp::list(vec![pointer(), Comp::id(other)]),
            pointer(),
        ]);
        let x = g.add("x", nested).unwrap();
        assert_eq!(g.len(), 3);
        g.forget_definition(x);
        assert_eq!(FREED.load(Ordering::SeqCst), 2);
        assert_eq!(g.len(), 2);
        g.forget_definition(x); // already forgotten: nothing more
        assert_eq!(g.len(), 2);
        assert_eq!(g.add("x", pointer()).unwrap(), x);
        assert_eq!(g.len(), 3);
        assert_eq!(FREED.load(Ordering::SeqCst), 2);
        assert!(g.contains("kept") && kept != x);
        drop(g);
        assert_eq!(FREED.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn an_expression_is_16_bytes() {
        // The arena holds one per task and one per argument: at a million tasks, every 8
        // bytes here is 8-24 MB and as many bytes streamed through the cache to build and run.
        assert_eq!(std::mem::size_of::<super::Expr>(), 16);
    }

    #[test]
    fn many_references_are_listed_once_each_in_first_seen_order() {
        use super::*;
        let mut g = Graph::new();
        let handles: Vec<TaskId> = (0..5000)
            .map(|i| g.add_value(&format!("v{i}"), Value::Int(i)).unwrap())
            .collect();
        let ids: Vec<u32> = handles.iter().map(|t| t.index()).collect();
        // Every id twice, the second round backwards: the set goes from a scan to a hash set
        // to bits on the way, and must keep each first one and drop each repeat.
        let refs = handles
            .iter()
            .chain(handles.iter().rev())
            .map(|&t| Comp::id(t));
        let all = g.add("all", Comp::list(refs.collect())).unwrap();
        assert_eq!(g.deps(all.index()), &ids[..]);
    }

    #[test]
    fn a_list_of_distinct_handles_keeps_its_items_in_the_dependencies() {
        use super::*;
        use crate::options::Options;
        let mut g = Graph::new();
        let ids: Vec<TaskId> = (0..3)
            .map(|i| g.add_value(&format!("v{i}"), Value::Int(i)).unwrap())
            .collect();
        let exprs = g.exprs.len();
        let list = |ids: &[TaskId]| Comp::list(ids.iter().map(|&t| Comp::id(t)).collect());
        g.add("all", list(&ids)).unwrap();
        assert_eq!(g.exprs.len(), exprs + 1, "one RefList, no item expressions");
        g.add("again", list(&[ids[0], ids[1], ids[0]])).unwrap();
        assert_eq!(
            g.exprs.len(),
            exprs + 1 + 4,
            "a repeat keeps the item expressions"
        );
        g.add("none", list(&[])).unwrap();
        let opts = Options::default();
        let ints = |v: &[i64]| Value::list(v.iter().map(|&i| Value::Int(i)).collect()).unwrap();
        assert_eq!(g.get_key("all", &opts).unwrap(), ints(&[0, 1, 2]));
        assert_eq!(g.get_key("again", &opts).unwrap(), ints(&[0, 1, 0]));
        assert_eq!(g.get_key("none", &opts).unwrap(), ints(&[]));
    }

    #[test]
    fn a_task_of_distinct_handles_keeps_its_arguments_in_its_dependencies() {
        use super::*;
        use crate::options::Options;
        let add = Func::new("add", |call| {
            let sum = (0..call.nargs())
                .map(|i| call.arg(i).and_then(Value::as_int).unwrap())
                .sum();
            call.ret(Value::Int(sum))
        });
        let mut g = Graph::new();
        let a = g.add_value("a", Value::Int(1)).unwrap().0;
        let b = g.add_value("b", Value::Int(10)).unwrap().0;
        let exprs = g.exprs.len();
        g.add_task_simple(Some(ValidKey::new("ab").unwrap()), &add, &mut [a, b])
            .unwrap();
        assert_eq!(
            g.exprs.len(),
            exprs,
            "no expression for a task of distinct handles"
        );
        g.add_task_simple(Some(ValidKey::new("aab").unwrap()), &add, &mut [a, a, b])
            .unwrap();
        assert_eq!(
            g.exprs.len(),
            exprs + 4,
            "a repeated handle keeps the expression form"
        );
        let mut lit = [Arg::Ref(b), Arg::Lit(Value::Int(100))];
        g.add_task_simple(Some(ValidKey::new("b100").unwrap()), &add, &mut lit)
            .unwrap();
        let opts = Options::default();
        assert_eq!(g.get_key("ab", &opts).unwrap(), Value::Int(11));
        assert_eq!(g.get_key("aab", &opts).unwrap(), Value::Int(12));
        assert_eq!(g.get_key("b100", &opts).unwrap(), Value::Int(110));
        assert!(
            matches!(g.entry(g.id_of("ab").unwrap().index()), View::Task(c) if g.arg_refs(&c) == Some(&[a as u32, b as u32][..]))
        );
    }
}
