//! Cutting a plan into partitions: runs of consecutive positions that leave one process as a
//! single unit of work (the `processes` and `distributed` schedulers), so a message, a round
//! trip or a Dask task is paid per partition, not per task.
//!
//! A partition is a range of positions in priority order. Priority order is depth-first
//! post-order, so a range holds whole chains and subtrees (what Dask's fusion would group),
//! and because it is a topological order every edge between partitions goes from a lower
//! partition to a higher one: the partitions form a DAG with no further checking.
//!
//! Sizes: at most `max_size` positions, and small enough that there are several partitions
//! per worker (so a graph of a few large tasks still spreads over every worker).

use crate::plan::Plan;

/// How many partitions per worker, at least, when the plan is small enough to want them.
const PER_WORKER: usize = 4;

pub(crate) struct Partitions {
    /// Partition `i` holds positions `bounds[i]..bounds[i + 1]`.
    pub bounds: Vec<u32>,
    /// Positions outside each partition that its tasks read, ascending (CSR by partition).
    pub inputs_off: Vec<u32>,
    pub inputs: Vec<u32>,
    /// Positions inside each partition whose results leave it — read by a later partition,
    /// or requested — ascending (CSR by partition).
    pub outputs_off: Vec<u32>,
    pub outputs: Vec<u32>,
    /// The partitions each partition reads from, ascending, each once (CSR by partition).
    pub deps_off: Vec<u32>,
    pub deps: Vec<u32>,
}

impl Partitions {
    /// Cuts `plan` for `workers` workers into partitions of at most `max_size` positions.
    pub fn cut(plan: &Plan, workers: usize, max_size: usize) -> Partitions {
        let n = plan.len();
        let want = workers.max(1) * PER_WORKER;
        let size = n.div_ceil(want).clamp(1, max_size.max(1));
        let mut bounds: Vec<u32> = (0..n).step_by(size).map(|p| p as u32).collect();
        bounds.push(n as u32);
        let part_of = |p: u32| (p as usize / size) as u32;

        let count = bounds.len() - 1;
        let mut parts = Partitions {
            bounds,
            inputs_off: Vec::with_capacity(count + 1),
            inputs: Vec::new(),
            outputs_off: Vec::with_capacity(count + 1),
            outputs: Vec::new(),
            deps_off: Vec::with_capacity(count + 1),
            deps: Vec::new(),
        };
        parts.inputs_off.push(0);
        parts.outputs_off.push(0);
        parts.deps_off.push(0);
        // `seen[p] == i + 1` marks position p as already listed as an input of partition i
        // (and likewise for partitions), so each is listed once without a set per partition.
        let mut seen = vec![0u32; n];
        let mut seen_part = vec![0u32; count];
        for i in 0..count {
            let (start, end) = (parts.bounds[i], parts.bounds[i + 1]);
            let mark = i as u32 + 1;
            let first_input = parts.inputs.len();
            let first_dep = parts.deps.len();
            for p in start..end {
                for &d in plan.deps(p) {
                    if d < start && seen[d as usize] != mark {
                        seen[d as usize] = mark;
                        parts.inputs.push(d);
                        let dp = part_of(d);
                        if seen_part[dp as usize] != mark {
                            seen_part[dp as usize] = mark;
                            parts.deps.push(dp);
                        }
                    }
                }
                let leaves =
                    plan.is_requested(p) || plan.dependents(p).last().is_some_and(|&c| c >= end);
                if leaves {
                    parts.outputs.push(p);
                }
            }
            parts.inputs[first_input..].sort_unstable();
            parts.deps[first_dep..].sort_unstable();
            parts.inputs_off.push(parts.inputs.len() as u32);
            parts.outputs_off.push(parts.outputs.len() as u32);
            parts.deps_off.push(parts.deps.len() as u32);
        }
        parts
    }

    pub fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    pub fn range(&self, i: usize) -> std::ops::Range<u32> {
        self.bounds[i]..self.bounds[i + 1]
    }

    pub fn inputs(&self, i: usize) -> &[u32] {
        &self.inputs[self.inputs_off[i] as usize..self.inputs_off[i + 1] as usize]
    }

    pub fn outputs(&self, i: usize) -> &[u32] {
        &self.outputs[self.outputs_off[i] as usize..self.outputs_off[i + 1] as usize]
    }

    pub fn deps(&self, i: usize) -> &[u32] {
        &self.deps[self.deps_off[i] as usize..self.deps_off[i + 1] as usize]
    }

    /// The partition holding position `p`.
    pub fn of(&self, p: u32) -> usize {
        self.bounds.partition_point(|&b| b <= p) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comp::Comp;
    use crate::func::Func;
    use crate::graph::Graph;
    use crate::value::Value;

    fn chain_and_fan(n: usize) -> (Graph, Value) {
        let f = Func::new("f", |_| {});
        let mut g = Graph::new();
        g.add_value("x", Value::Int(1)).unwrap();
        for i in 0..n {
            let prev = if i == 0 {
                "x".to_string()
            } else {
                format!("c{}", i - 1)
            };
            g.add_task(&format!("c{i}"), &f, vec![Comp::key(prev)], vec![])
                .unwrap();
        }
        let leaves: Vec<Comp> = (0..n).map(|i| Comp::key(format!("c{i}"))).collect();
        g.add_task("sink", &f, leaves, vec![]).unwrap();
        (
            g,
            Value::list(vec![Value::str("sink"), Value::str("c0")]).unwrap(),
        )
    }

    #[test]
    fn partitions_cover_the_plan_and_list_every_crossing_edge() {
        let (g, keys) = chain_and_fan(50);
        let plan = Plan::new(&g, &keys).unwrap();
        for (workers, max) in [(1, 1000), (2, 7), (4, 1), (3, 13)] {
            let parts = Partitions::cut(&plan, workers, max);
            assert_eq!(parts.bounds[0], 0);
            assert_eq!(*parts.bounds.last().unwrap() as usize, plan.len());
            for i in 0..parts.len() {
                let r = parts.range(i);
                assert!(!r.is_empty() && r.len() <= max);
                for p in r.clone() {
                    assert_eq!(parts.of(p), i);
                    for &d in plan.deps(p) {
                        if d < r.start {
                            assert!(parts.inputs(i).contains(&d));
                            assert!(parts.outputs(parts.of(d)).contains(&d));
                            assert!(parts.deps(i).contains(&(parts.of(d) as u32)));
                        }
                    }
                }
                for &o in parts.outputs(i) {
                    assert!(r.contains(&o));
                    let leaves = plan.dependents(o).iter().any(|&c| c >= r.end);
                    assert!(leaves || plan.is_requested(o));
                }
                assert!(parts.deps(i).iter().all(|&d| (d as usize) < i));
            }
        }
    }

    #[test]
    fn a_small_plan_still_spreads_over_the_workers() {
        let (g, keys) = chain_and_fan(7);
        let plan = Plan::new(&g, &keys).unwrap();
        // 9 positions, 2 workers: at least 2 x 4 partitions would want size 2.
        let parts = Partitions::cut(&plan, 2, 4096);
        assert_eq!(parts.len(), 5);
    }
}
