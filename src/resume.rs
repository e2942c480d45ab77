//! A get with a result cache (`Options::cache`): before anything runs, hash every planned
//! entry (`cache::hash`, in priority order: an entry's inputs are hashed before it), then
//! decide from the requested keys down which entries run, which are read from the cache, and
//! which are not needed at all:
//!
//! - a needed task found in the cache is read (and checked) now, and nothing it depends on is
//!   needed for it;
//! - any other needed entry runs, and needs its inputs;
//! - an entry no running entry needs is left alone: a rerun that changed nothing reads only
//!   the requested results, and a task whose consumers were all found is never read.
//!
//! The outcome is a smaller plan over the same graph — the entries that run, and the found
//! ones as inputs without inputs of their own — carrying the cache's part (`cache::Attached`):
//! every scheduler runs it as any plan, and `Run::execute` takes a found value where another
//! entry would compute, and stores what it computed.
//!
//! Reading found results while planning (rather than when their consumer runs) is what makes
//! a damaged entry harmless: it fails its checksum here, and its task simply runs, with its
//! inputs planned too.

use crate::cache::store::{key_of, Hash, Index, Loc};
use crate::cache::{hash::Hashes, Attached, Cache, Use};
use crate::graph::{Graph, View};
use crate::plan::{Plan, UNPLANNED};

/// The plan that computes `plan`'s request using `cache`.
pub(crate) fn resume(graph: &Graph, plan: &Plan, cache: &Cache) -> Plan {
    let n = plan.len();
    let shared = cache.shared();

    let hashes = Hashes::of_plan(graph, &plan.order, &plan.pos);
    let cacheable = |p: usize| hashes.has(p) && matches!(graph.entry(plan.order[p]), View::Task(_));
    let mut index = None;
    // Position → the copy of its entry found damaged (None: no copy left to try).
    let mut damaged: std::collections::HashMap<usize, Option<Loc>> = Default::default();
    let (needed, uses, found, bytes_read, mut to_store) = loop {
        let mut needed = vec![false; n];
        for &p in &plan.requested {
            needed[p as usize] = true;
        }
        let mut uses = vec![Use::Compute; n];
        let mut locs = Vec::new();
        let mut at = Vec::new();
        // The hashes of positions to store, last position first.
        let mut to_store: Vec<Hash> = Vec::with_capacity(n);
        let mut lookups = 0;
        // After many lookups: where every cacheable position from there down is, found at
        // once (see `find_all`).
        let mut bulk: Option<Vec<Option<Loc>>> = None;
        for p in (0..n).rev() {
            if !needed[p] {
                continue;
            }
            if cacheable(p) {
                let h = hashes.hash(p).expect("has a hash");
                let index = index.get_or_insert_with(|| shared.store.index());
                lookups += 1;
                if lookups == BULK_AFTER {
                    bulk = Some(find_all(index, &hashes, &cacheable, p));
                }
                let loc = match (damaged.get(&p), &bulk) {
                    (None, Some(bulk)) => bulk[p],
                    (None, None) => index.find(&h, None),
                    (Some(&None), _) => None,
                    (Some(&after), _) => index.find(&h, after),
                };
                if let Some(loc) = loc {
                    uses[p] = Use::Found;
                    locs.push((h, loc));
                    at.push(p);
                    continue;
                }
                uses[p] = Use::Store;
                to_store.push(h);
            }
            for &q in plan.deps(p as u32) {
                needed[q as usize] = true;
            }
        }
        let read = match index.as_mut() {
            Some(index) if !locs.is_empty() => index.read(&locs),
            _ => Vec::new(),
        };
        let mut found = Vec::with_capacity(read.len());
        let mut bytes_read = 0;
        let mut retry = false;
        for ((r, p), (_, loc)) in read.into_iter().zip(at).zip(&locs) {
            match r {
                Some((v, bytes)) => {
                    bytes_read += bytes;
                    found.push((p, v));
                }
                None => {
                    damaged.insert(p, Some(*loc));
                    retry = true;
                }
            }
        }
        if !retry {
            break (needed, uses, found, bytes_read, to_store);
        }
    };
    let skipped = needed.iter().filter(|&&x| !x).count() as u64;

    // The smaller plan: kept positions in their order (still topological), found ones
    // without inputs.
    let mut new_pos = vec![UNPLANNED; n];
    let mut order = Vec::new();
    for p in 0..n {
        if needed[p] {
            new_pos[p] = order.len() as u32;
            order.push(plan.order[p]);
        }
    }
    let m = order.len();
    let mut deps_off = Vec::with_capacity(m + 1);
    deps_off.push(0u32);
    let mut deps = Vec::new();
    let mut initial = Vec::new();
    let mut new_uses = Vec::with_capacity(m);
    for p in (0..n).filter(|&p| needed[p]) {
        if uses[p] != Use::Found {
            deps.extend(plan.deps(p as u32).iter().map(|&q| new_pos[q as usize]));
        }
        if deps.len() as u32 == *deps_off.last().expect("starts with 0") {
            initial.push(new_pos[p]);
        }
        deps_off.push(deps.len() as u32);
        new_uses.push(uses[p]);
    }
    // Both were gathered last position first.
    to_store.reverse();
    let found: Vec<_> = found.into_iter().rev().map(|(_, v)| v).collect();
    let mut pos = vec![UNPLANNED; plan.pos.len()];
    for (p, &id) in order.iter().enumerate() {
        pos[id as usize] = p as u32;
    }
    let attached = Attached::new(
        shared.clone(),
        new_uses,
        to_store,
        found,
        skipped,
        bytes_read,
    );
    Plan::from_parts(
        graph,
        order,
        pos,
        deps_off,
        deps,
        initial,
        &plan.request_ids,
        Some(Box::new(attached)),
    )
}

/// Lookups one at a time cost a random access each into an index of maybe millions of
/// entries; after this many in one pass, the rest are found at once.
const BULK_AFTER: usize = 4096;

/// Where the entries of every cacheable position up to `upto` are: their keys sorted and
/// walked beside each segment's sorted index. Costs a hash per position whether or not the
/// pass reaches it — worth it once lookups are counted in thousands.
fn find_all(
    index: &mut Index,
    hashes: &Hashes,
    cacheable: &impl Fn(usize) -> bool,
    upto: usize,
) -> Vec<Option<Loc>> {
    let mut keys: Vec<(u128, u32)> = (0..=upto)
        .filter(|&q| cacheable(q))
        .map(|q| (key_of(&hashes.hash(q).expect("has a hash")), q as u32))
        .collect();
    keys.sort_unstable_by_key(|k| k.0);
    let mut out = vec![None; upto + 1];
    index.find_sorted(&keys, &mut out);
    out
}
