//! A job: everything the Dask driver needs to run one `get` on the cluster — each partition's
//! message with what it reads from which partition, and which outputs the caller wants back.
//! The format is specified in docs/wire-format.md ("Jobs"); keep the two in step.

use crate::error::Result;
use crate::graph::Graph;
use crate::plan::Plan;
use crate::sched::partition::Partitions;
use crate::sched::wire::{self, put_bytes, put_str, put_varint, Funcs};

/// The most tasks in one partition: a Dask task costs milliseconds, so partitions are large,
/// yet `Partitions::cut` makes at least a few per worker thread so that work spreads. (Measured
/// on 2 worker threads: 8 partitions of a 100,000-task chain ran in 0.10 s, 128 in 0.76 s.)
pub(crate) const MAX_PARTITION: usize = 50_000;

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
    match plan.first_local_function(graph) {
        None => Ok(()),
        Some((id, func)) => Err(crate::sched::wire::local_function_error(
            &graph.key_name(id),
            graph.func(func).name(),
            ON_DASK,
        )),
    }
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
        put_str(&mut part, &graph.key_name(plan.order[range.start as usize]));
        put_str(
            &mut part,
            &graph.key_name(plan.order[range.end as usize - 1]),
        );
        // Results found in the result cache travel as literals: they do not run.
        let computed = range
            .clone()
            .filter(|&p| !graph.is_literal(plan.order[p as usize]) && !plan.is_found(p))
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
    let parts = Partitions::cut(&plan, threads.max(1) as usize, MAX_PARTITION);
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::abi::daskr_call_t;
    use crate::comp::Comp;
    use crate::error::ErrorKind;
    use crate::func::{Func, Origin};
    use crate::sched::wire::Reader;
    use crate::value::Value;

    unsafe extern "C" fn nothing(_call: *mut daskr_call_t, _user_data: *mut std::ffi::c_void) {}

    /// A function that looks like a plugin's (it is never called: jobs are only encoded here).
    fn plugin_func(symbol: &str) -> Func {
        Func::from_plugin(
            &format!("fake:{symbol}"),
            nothing,
            Origin {
                path: Arc::from(Path::new("/nowhere/libfake.so")),
                plugin: Arc::from("fake"),
                symbol: symbol.into(),
                alias: None,
                library: Arc::new(()),
            },
            None,
        )
    }

    /// A chain, a fan-in over it, an alias, a list with a literal, an inline task.
    fn sample(f: &Func) -> (Graph, Value) {
        let mut g = Graph::new();
        g.add_value("x", Value::Int(1)).unwrap();
        for i in 0..60 {
            let prev = if i == 0 {
                "x".into()
            } else {
                format!("c{}", i - 1)
            };
            let inline = Comp::task(f, vec![Comp::key(prev.clone())], vec![]);
            let arg = if i % 7 == 3 { inline } else { Comp::key(prev) };
            g.add_task(&format!("c{i}"), f, vec![arg], vec![]).unwrap();
        }
        let all = (0..60).map(|i| Comp::key(format!("c{i}"))).collect();
        g.add_task(
            "sink",
            f,
            vec![Comp::list(all)],
            vec![("k".into(), Comp::value(2))],
        )
        .unwrap();
        g.add_alias("a", "c10").unwrap();
        g.add(
            "l",
            Comp::list(vec![Comp::key("a"), Comp::value(Value::str("s"))]),
        )
        .unwrap();
        let keys = Value::list(vec![
            Value::str("sink"),
            Value::list(vec![Value::str("l"), Value::str("c3")]).unwrap(),
            Value::str("sink"),
        ])
        .unwrap();
        (g, keys)
    }

    /// The first `n` keys of a partition message's key table.
    fn message_keys(message: &[u8], n: usize) -> Vec<String> {
        let mut r = Reader::new(message);
        assert_eq!(r.take(3).unwrap(), wire::MAGIC);
        r.byte().unwrap();
        let nkeys = r.varint().unwrap() as usize;
        (0..n.min(nkeys))
            .map(|_| r.string().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_job_points_every_input_and_wanted_key_at_the_right_output() {
        let f = plugin_func("f");
        let (g, keys) = sample(&f);
        let plan = Plan::new(&g, &keys).unwrap();
        for (threads, max) in [(1, 1000), (2, 7), (3, 1), (8, 100)] {
            let parts = Partitions::cut(&plan, threads, max);
            let job = encode(&g, &plan, &parts).unwrap();
            let key_of = |i: usize, k: u64| {
                let p = parts.outputs(i)[k as usize];
                g.key_name(plan.order[p as usize]).to_string()
            };
            let mut r = Reader::new(&job);
            assert_eq!(r.take(3).unwrap(), JOB_MAGIC);
            assert_eq!(r.byte().unwrap(), JOB_VERSION);
            assert_eq!(r.varint().unwrap() as usize, parts.len());
            for i in 0..parts.len() {
                let len = r.varint().unwrap();
                let mut p = Reader::new(r.take(len).unwrap());
                let range = parts.range(i);
                assert_eq!(
                    p.string().unwrap(),
                    g.key_name(plan.order[range.start as usize])
                );
                assert_eq!(
                    p.string().unwrap(),
                    g.key_name(plan.order[range.end as usize - 1])
                );
                assert!(p.varint().unwrap() as usize <= range.len());
                assert_eq!(p.varint().unwrap() as usize, parts.outputs(i).len());
                let deps: Vec<u64> = (0..p.varint().unwrap())
                    .map(|_| p.varint().unwrap())
                    .collect();
                assert!(deps.windows(2).all(|w| w[0] < w[1]));
                assert!(deps.iter().all(|&d| (d as usize) < i));
                let n = p.varint().unwrap() as usize;
                let inputs: Vec<String> = (0..n)
                    .map(|_| {
                        let (d, k) = (p.varint().unwrap(), p.varint().unwrap());
                        key_of(deps[d as usize] as usize, k)
                    })
                    .collect();
                let rest = &len_rest(&mut p);
                assert_eq!(message_keys(rest, n), inputs, "partition {i}");
            }
            let wanted: Vec<String> = (0..r.varint().unwrap())
                .map(|_| {
                    let (i, k) = (r.varint().unwrap(), r.varint().unwrap());
                    key_of(i as usize, k)
                })
                .collect();
            assert_eq!(wanted, ["sink", "l", "c3", "sink"]);
            assert_eq!(r.position(), job.len());
        }
    }

    /// What is left of a reader's bytes.
    fn len_rest(r: &mut Reader<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        while let Ok(b) = r.byte() {
            out.push(b);
        }
        out
    }

    #[test]
    fn a_function_pointer_is_refused_naming_its_key() {
        let f = plugin_func("f");
        let (mut g, _) = sample(&f);
        let local = Func::new("local_fn", |c| c.ret(Value::Null));
        let inline = Comp::task(&local, vec![], vec![]);
        g.add_task("uses-local", &f, vec![Comp::list(vec![inline])], vec![])
            .unwrap();
        let keys = Value::list(vec![Value::str("sink"), Value::str("uses-local")]).unwrap();
        let plan = Plan::new(&g, &keys).unwrap();
        let e = check_plugins_only(&g, &plan).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert_eq!(e.key.as_deref(), Some("uses-local"));
        assert!(
            e.message.contains("local_fn") && e.message.contains(ON_DASK),
            "{e}"
        );
        // a request that does not need it is fine
        let plan = Plan::new(&g, &Value::str("sink")).unwrap();
        check_plugins_only(&g, &plan).unwrap();
        assert!(encode_for(&g, &Value::str("sink"), 2).is_ok());
        assert!(encode_for(&g, &Value::str("uses-local"), 2).is_err());
    }
}
