//! A job: everything the Dask driver needs to run one `get` on the cluster — each partition's
//! message with what it reads from which partition, and which outputs the caller wants back.
//! The format is specified in docs/wire-format.md ("Jobs"); keep the two in step.

use crate::error::{Error, Result};
use crate::graph::{Expr, Graph};
use crate::partition::Partitions;
use crate::plan::Plan;
use crate::wire::{self, put_bytes, put_str, put_varint, Funcs};

/// The first bytes of a job.
pub(crate) const JOB_MAGIC: &[u8; 3] = b"DKJ";
/// The job format's version, written after the magic.
pub(crate) const JOB_VERSION: u8 = 1;

/// Where the partitions of a job run, for the error naming a task that cannot go there.
pub(crate) const ON_DASK: &str = "on a Dask cluster";

/// Fails, naming the key, if an entry of the plan calls a function that is not a plugin
/// symbol (a function pointer or closure cannot leave this process). Cheap when the graph has
/// no such function at all.
pub(crate) fn check_plugins_only(graph: &Graph, plan: &Plan) -> Result<()> {
    let all_plugins = (0..graph.func_count() as u32).all(|f| graph.func(f).origin().is_some());
    if all_plugins {
        return Ok(());
    }
    let mut stack: Vec<&Expr> = Vec::new();
    for &id in &plan.order {
        stack.push(graph.root(id));
        while let Some(e) = stack.pop() {
            match *e {
                Expr::Lit(_) | Expr::Ref(_) => {}
                Expr::List { start, len } => stack.extend(graph.exprs(start, len)),
                Expr::Task {
                    func,
                    start,
                    nargs,
                    nkwargs,
                    ..
                } => {
                    let f = graph.func(func);
                    if f.origin().is_none() {
                        let key = graph.key_name(id);
                        return Err(Error::invalid_argument(format!(
                            "key '{key}': its function '{}' lives in this process (a function \
                             pointer, not a plugin symbol), so it cannot run {ON_DASK}; use \
                             plugin tasks, or the threads or processes scheduler",
                            f.name()
                        ))
                        .with_key(key));
                    }
                    stack.extend(graph.exprs(start, nargs + nkwargs));
                }
            }
        }
    }
    Ok(())
}

/// Encodes the job that runs `plan`, cut into `parts`, with the requested keys' outputs wanted
/// back in request order (repeats included).
pub(crate) fn encode(graph: &Graph, plan: &Plan, parts: &Partitions) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    out.extend_from_slice(JOB_MAGIC);
    out.push(JOB_VERSION);
    put_varint(&mut out, parts.len() as u64);
    let mut part = Vec::new();
    for i in 0..parts.len() {
        part.clear();
        let range = parts.range(i);
        put_str(&mut part, graph.key_name(plan.order[range.start as usize]));
        put_str(
            &mut part,
            graph.key_name(plan.order[range.end as usize - 1]),
        );
        let computed = range
            .clone()
            .filter(|&p| !matches!(graph.root(plan.order[p as usize]), Expr::Lit(_)))
            .count();
        put_varint(&mut part, computed as u64);
        put_varint(&mut part, parts.outputs(i).len() as u64);
        let deps = parts.deps(i);
        put_varint(&mut part, deps.len() as u64);
        for &d in deps {
            put_varint(&mut part, u64::from(d));
        }
        let inputs = parts.inputs(i);
        put_varint(&mut part, inputs.len() as u64);
        for &p in inputs {
            let (from, output) = locate(parts, p);
            let dep = deps
                .binary_search(&(from as u32))
                .expect("an input's partition is one of the partition's deps");
            put_varint(&mut part, dep as u64);
            put_varint(&mut part, output as u64);
        }
        part.extend_from_slice(&wire::encode_partition(
            graph,
            plan,
            parts,
            i,
            Funcs::PluginsOnly(ON_DASK),
        )?);
        put_bytes(&mut out, &part);
    }
    put_varint(&mut out, plan.request_ids.len() as u64);
    for &id in &plan.request_ids {
        let (from, output) = locate(parts, plan.pos[id as usize]);
        put_varint(&mut out, from as u64);
        put_varint(&mut out, output as u64);
    }
    Ok(out)
}

/// Plans `keys` of `graph`, checks that every task can leave this process, cuts the plan for
/// a cluster of `threads` worker threads and encodes the job.
pub(crate) fn encode_for(
    graph: &Graph,
    keys: &crate::value::Value,
    threads: u32,
) -> Result<Vec<u8>> {
    let plan = Plan::new(graph, keys)?;
    check_plugins_only(graph, &plan)?;
    let parts = Partitions::cut(&plan, threads.max(1) as usize, super::MAX_PARTITION);
    encode(graph, &plan, &parts)
}

/// The partition holding position `p`, and `p`'s index among that partition's outputs.
fn locate(parts: &Partitions, p: u32) -> (usize, usize) {
    let from = parts.of(p);
    let output = parts
        .outputs(from)
        .binary_search(&p)
        .expect("a position read outside its partition, or requested, is an output");
    (from, output)
}
