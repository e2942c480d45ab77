"""daskr's distributed scheduler against Dask's own Client.get, on one local cluster, side by side.

    python bench/distributed_bench.py [--quick] [--rounds R] [--shapes a,b] [--n N] [--n-dask N]

Run with the venv bench/compare.py sets up (Dask and distributed from PyPI, bindings/python
installed editable). Starts a Dask scheduler and 2 one-thread workers on 127.0.0.1 (separate
processes, stopped by PID at the end: daskr_dask.local), then for each shape:

- daskr-distributed: the shape as a graph file of plugin no-op tasks (bench/plugin_noop.c: the
  bodies of bench/daskr_c.c), run by bench/daskr_distributed.c through the C ABI with
  DASKR_SCHEDULER_DISTRIBUTED: build = reading the file, run = the get (the Dask driver is
  started by the first round and reused, as in a long-running program; first_s is that
  round), N tasks;
- dask-client-get: the same shape with Python no-op bodies (bench/dask_bench.py's graphs), run
  by distributed.Client.get on the same cluster: build = making the dict, run = the get,
  a smaller N (Dask costs milliseconds per task);

and spread checks: 8 tasks of 200 ms each and a sink, which must finish in about half the
serial time on the 2 workers: `spread` sleeps (plugin sleep_ms: placement alone, whatever else
runs on a shared machine), `spread-cpu` spins the CPU (plugin spin_ms: needs 2 idle cores). Prints one JSON row per measurement (the
schema of target/bench/compare.json, threads = the cluster's worker threads).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "target", "bench")
sys.path.insert(0, HERE)

import dask_bench  # noqa: E402  (the shapes, with the same keys and sizes)
from daskr_dask.local import LocalProcesses  # noqa: E402

SHAPES = ["independent", "chain", "tree", "wavefront", "pipeline"]
SPREAD_TASKS, SPREAD_MS = 8, 200


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def graph_file(shape, n, plugin, path):
    """bench/dask_bench.py's graph for (shape, n) as a daskr graph file of plugin tasks."""
    dsk, key, tasks = dask_bench.build(shape, n)
    names = {dask_bench.noop: "b:noop", dask_bench.sink: "b:sink",
             dask_bench.analyze: "b:analyze", dask_bench.store: "b:store"}

    def comp(v):
        if isinstance(v, tuple):
            if v[0] is dask_bench.apply:
                _, f, args, kwargs = v
                return {"fn": names[f], "args": [comp(a) for a in args],
                        "kwargs": {k: comp(x) for k, x in kwargs.items()}}
            return {"fn": names[v[0]], "args": [comp(a) for a in v[1:]]}
        if isinstance(v, list):
            return [comp(x) for x in v]
        return v

    doc = {"plugins": {"b": plugin}, "graph": {k: comp(v) for k, v in dsk.items()}, "keys": key}
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    return tasks


def daskr_row(runner, address, path, shape, tasks, n, rounds):
    cmd = [runner, "--rounds", str(rounds), "--address", address, path, shape, str(tasks), str(n)]
    log("$ " + " ".join(cmd))
    r = subprocess.run(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-800:]}")
    row = json.loads(r.stdout.strip().splitlines()[-1])
    log(f"  {row['ns_per_task'] / 1000:.1f} us/task (first round {row['first_s']:.2f} s)")
    return row


def dask_row(client, shape, n, rounds, threads):
    builds, runs, totals = [], [], []
    tasks = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        dsk, key, tasks = dask_bench.build(shape, n)
        t1 = time.perf_counter()
        client.get(dsk, key)
        t2 = time.perf_counter()
        builds.append(t1 - t0)
        runs.append(t2 - t1)
        totals.append(t2 - t0)
    row = {"system": "dask-client-get", "shape": shape, "threads": threads, "tasks": tasks,
           "build_s": statistics.median(builds), "run_s": statistics.median(runs),
           "ns_per_task": statistics.median(totals) * 1e9 / tasks, "peak_held": None,
           "bytes_per_task": None, "free_s": 0.0, "rounds": rounds, "n": n}
    log(f"  dask-client-get {shape}: {row['ns_per_task'] / 1000:.1f} us/task")
    return row


def spread_row(runner, address, plugin, threads, fn="sleep_ms", shape="spread"):
    path = os.path.join(OUT, "graphs", f"{shape}.json")
    graph = {f"big-{i}": {"fn": f"b:{fn}", "args": [SPREAD_MS]} for i in range(SPREAD_TASKS)}
    graph["all"] = {"fn": "b:sink", "args": [[f"big-{i}" for i in range(SPREAD_TASKS)]]}
    with open(path, "w") as f:
        json.dump({"plugins": {"b": plugin}, "graph": graph, "keys": "all"}, f)
    row = daskr_row(runner, address, path, shape, SPREAD_TASKS + 1, SPREAD_TASKS, 3)
    serial = SPREAD_TASKS * SPREAD_MS / 1000
    row["serial_s"] = serial
    row["speedup"] = serial / row["run_s"]
    log(f"  {shape}: {SPREAD_TASKS} x {SPREAD_MS} ms ({fn}) in {row['run_s']:.2f} s on {threads} worker threads "
        f"(serial {serial:.2f} s): {row['speedup']:.2f}x")
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--n", type=int, help="daskr's tasks per shape (default 100,000; quick 5,000)")
    ap.add_argument("--n-dask", type=int, help="Dask's tasks per shape (default 10,000; quick 500)")
    ap.add_argument("--runner", default=os.path.join(OUT, "daskr_distributed"))
    ap.add_argument("--plugin", default=os.path.join(OUT, "libbench_noop.so"))
    ap.add_argument("--lib", default=os.path.join(ROOT, "target", "release", "libdaskr.so"))
    args = ap.parse_args()
    n = args.n or (5_000 if args.quick else 100_000)
    n_dask = args.n_dask or (500 if args.quick else 10_000)
    rounds = max(args.rounds, 1)
    # Dask's rounds take seconds each at its N: fewer of them
    dask_rounds = min(rounds, 3 if args.quick else 2)
    shapes = [s for s in args.shapes.split(",") if s]
    os.makedirs(os.path.join(OUT, "graphs"), exist_ok=True)
    from distributed import Client

    env = {"DASKR_LIB": args.lib}
    os.environ.update(env)
    # the cluster unpickles dask_bench's task functions by module name
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("DASKR_PYTHON", sys.executable)
    rows = []
    with LocalProcesses(workers=2, threads=1, env=env, log_dir=os.path.join(OUT, "cluster")) as cluster:
        log(f"cluster: {cluster.address}, 2 workers x 1 thread")
        with Client(cluster.address, set_as_default=False) as client:
            threads = sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
            for shape in shapes:
                path = os.path.join(OUT, "graphs", f"{shape}-{n}.json")
                tasks = graph_file(shape, n, args.plugin, path)
                rows.append(daskr_row(args.runner, cluster.address, path, shape, tasks, n, rounds))
                rows.append(dask_row(client, shape, n_dask, dask_rounds, threads))
            rows.append(spread_row(args.runner, cluster.address, args.plugin, threads))
            rows.append(spread_row(args.runner, cluster.address, args.plugin, threads, "spin_ms", "spread-cpu"))
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
