//! Where graph building time goes, engine-level (no FFI, keys pre-formatted).
use std::time::Instant;

use daskr::{Comp, Func, Graph, Options, Value};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |s| s.parse().unwrap());
    let f = Func::new("noop", |call| call.ret(Value::Int(1)));
    let keys: Vec<String> = (0..n).map(|i| format!("chain-{i}")).collect();
    for round in 0..3 {
        let t0 = Instant::now();
        let mut g = Graph::new();
        let mut prev = g.add_task(&keys[0], &f, vec![], vec![]).unwrap();
        for k in &keys[1..] {
            prev = g.add_task(k, &f, vec![Comp::id(prev)], vec![]).unwrap();
        }
        let t1 = Instant::now();
        let bytes = g.heap_bytes() as f64 / n as f64;
        let r = g.get_key(&keys[n - 1], &Options::default()).unwrap();
        let t2 = Instant::now();
        drop(g);
        let t3 = Instant::now();
        let per = |d: std::time::Duration| d.as_nanos() as f64 / n as f64;
        println!(
            "round {round}: build {:.0} ns/task, get {:.0}, free {:.0}, graph {:.0} B/task ({r:?})",
            per(t1 - t0),
            per(t2 - t1),
            per(t3 - t2),
            bytes
        );
    }
}
