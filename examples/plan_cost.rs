//! Plan and run cost per task of a 1M-cell wavefront (engine-level; median of 5).
use daskr::{Comp, Func, Graph, Options, Value};

fn main() {
    let side: usize = std::env::args().nth(1).map_or(1000, |s| s.parse().unwrap());
    let f = Func::new("noop", |call| call.ret(Value::Int(1)));
    let mut g = Graph::new();
    let mut row: Vec<daskr::TaskId> = Vec::new();
    for i in 0..side {
        for j in 0..side {
            let mut a = vec![];
            if j > 0 {
                a.push(Comp::id(row[j - 1]));
            }
            if i > 0 {
                a.push(Comp::id(row[j]));
            }
            let t = g.add_task(&format!("w-{i}-{j}"), &f, a, vec![]).unwrap();
            if i == 0 {
                row.push(t)
            } else {
                row[j] = t
            }
        }
    }
    let key = Value::str(&format!("w-{}-{}", side - 1, side - 1));
    let n = (side * side) as f64;
    for workers in [1, 2] {
        let mut plans = vec![];
        let mut runs = vec![];
        for _ in 0..5 {
            let (_, st) = g.get_with_stats(
                &key,
                &Options {
                    num_workers: workers,
                    ..Options::default()
                },
            );
            plans.push(st.plan_time.as_nanos() as f64 / n);
            runs.push(st.run_time.as_nanos() as f64 / n);
        }
        plans.sort_by(f64::total_cmp);
        runs.sort_by(f64::total_cmp);
        println!(
            "workers={workers}: plan {:.1} ns/task, run {:.1} ns/task",
            plans[2], runs[2]
        );
    }
}
