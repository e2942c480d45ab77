#!/usr/bin/env python3
"""Reading graph files: what `daskr run` pays per task for a big graph file.

    python3 bench/graphfile_bench.py [--json] [--quick] [--shapes chain,wavefront,pipeline]
                                     [--scheduler sync|threads] [--no-build]

Writes graph files of no-op plugin tasks (bench/plugin_noop.c, built to
target/bench/libbench_noop.so as bench/compare.py builds it) under target/bench/graphfiles/:

  chain      N tasks in a line: chain-i = noop(chain-(i-1))
  wavefront  a 1024 x 1024 grid (--quick: 316 x 316): wave-i-j = noop(wave-(i-1)-j, wave-i-(j-1))
  pipeline   bench/daskr_c.c's pipeline over F = N/3 files: load-i = noop(i), clean-i =
             noop(load-i), per group of 100 files analyze-g = analyze([clean-...],
             method="mean") and store-g = store(analyze-g, to="results"), and one sink

with N = 1,000,000 (--quick: 100,000), and runs the daskr command (target/release/daskr) on
each, every run in a fresh process:

  1. `daskr run FILE`: the whole command as a user runs it (read, plan, run, print);
     total_ns_per_task is its wall time per task, peak_bytes_per_task its peak RSS per task.
  2. `daskr run FILE --keys <the first task>`: reads the whole file but runs one task, so its
     peak is what reading costs: read_peak_bytes_per_task, and
     peak_beyond_graph_bytes_per_task that minus the graph's own bytes: the peak memory of
     reading beyond the graph itself (the file's text and whatever else reading holds; the
     graph's bytes count the capacity of its arrays, not all of it touched, so at small N this
     can come out below zero). bench/compare.py judges its target on this field.
  3. The same with `--stats-json S` (which attaches a profiler, so its memory is not used):
     read_ns_per_task is the command's own `build_s` (the time reading the file took: the graph
     is built as it is read), graph_bytes_per_task its `graph_bytes` (the graph's heap bytes).

Peak bytes are the child's ru_maxrss (os.wait4) minus a baseline: the ru_maxrss of the same
command on a one-task graph file, which is what any run costs whatever the graph (the binary,
libc, the plugin, the allocator's first arenas, the threads' stacks). Linux counts in a child's
ru_maxrss the memory of the parent it was spawned from (the high-water mark survives exec), so
the files are written by a child process and this one stays small and the same size for every
run, the baseline's included. Wall times are noisy on a shared machine; the memory figures
are not.

Prints one JSON object per line with --json:
  {"system": "daskr-file", "shape", "n", "read_ns_per_task", "total_ns_per_task",
   "peak_bytes_per_task", "graph_bytes_per_task", "read_peak_bytes_per_task",
   "peak_beyond_graph_bytes_per_task", "file_bytes_per_task", "scheduler"}
else a table. Exit status non-zero if a run failed.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench")
FILES = os.path.join(OUT, "graphfiles")
DASKR = os.path.join(ROOT, "target", "release", "daskr")
PLUGIN = os.path.join(OUT, "libbench_noop.so")
SHAPES = ["chain", "wavefront", "pipeline"]
GROUP = 100  # pipeline: analyze runs over groups of this many files (bench/bench_common.h)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build(skip):
    """The daskr command (cargo) and the no-op plugin (cc), as bench/compare.py builds them."""
    if not skip:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "daskr"], cwd=ROOT, check=True)
    src = os.path.join(ROOT, "bench", "plugin_noop.c")
    if skip and os.path.exists(PLUGIN):
        return
    if not os.path.exists(PLUGIN) or os.path.getmtime(PLUGIN) < os.path.getmtime(src):
        os.makedirs(OUT, exist_ok=True)
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                        "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "bench"), src,
                        "-o", PLUGIN], check=True)


def entries(shape, n):
    """(key, computation as JSON text) in dependency order, the task count, the first and the
    last key."""
    if shape == "one":
        return [("one", '{"fn": "noop:noop", "args": [0]}')], 1, "one", "one"
    if shape == "chain":
        out = [("chain-0", '{"fn": "noop:noop", "args": [0]}')]
        out += [(f"chain-{i}", f'{{"fn": "noop:noop", "args": ["chain-{i - 1}"]}}') for i in range(1, n)]
        return out, n, "chain-0", f"chain-{n - 1}"
    if shape == "wavefront":
        side = 1024 if n >= 1_000_000 else int(n ** 0.5)
        out = []
        for i in range(side):
            for j in range(side):
                deps = [f'"wave-{i - 1}-{j}"'] if i else []
                deps += [f'"wave-{i}-{j - 1}"'] if j else []
                out.append((f"wave-{i}-{j}", f'{{"fn": "noop:noop", "args": [{", ".join(deps) or "0"}]}}'))
        return out, side * side, "wave-0-0", f"wave-{side - 1}-{side - 1}"
    if shape == "pipeline":
        files = max(1, n // 3)
        groups = (files + GROUP - 1) // GROUP
        out = []
        for g in range(groups):
            cleaned = []
            for i in range(g * GROUP, min(files, (g + 1) * GROUP)):
                out.append((f"load-{i}", f'{{"fn": "noop:noop", "args": [{i}]}}'))
                out.append((f"clean-{i}", f'{{"fn": "noop:noop", "args": ["load-{i}"]}}'))
                cleaned.append(f'"clean-{i}"')
            out.append((f"analyze-{g}", f'{{"fn": "noop:analyze", "args": [[{", ".join(cleaned)}]], '
                                        '"kwargs": {"method": "mean"}}'))
            out.append((f"store-{g}", f'{{"fn": "noop:store", "args": ["analyze-{g}"], '
                                      '"kwargs": {"to": "results"}}'))
        stores = ", ".join(f'"store-{g}"' for g in range(groups))
        out.append(("pipeline", f'{{"fn": "noop:sink", "args": [[{stores}]]}}'))
        return out, 2 * files + 2 * groups + 1, "load-0", "pipeline"
    raise ValueError(shape)


def write_file(shape, n):
    """Writes the shape's graph file (in a child process: see the module's docstring);
    returns (path, tasks, first key, file bytes)."""
    os.makedirs(FILES, exist_ok=True)
    path = os.path.join(FILES, f"{shape}-{n}.json")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--write", shape, str(n), path],
                         check=True, capture_output=True, text=True).stdout
    tasks, first = json.loads(out)
    return path, tasks, first, os.path.getsize(path)


def write_here(shape, n, path):
    items, tasks, first, last = entries(shape, n)
    with open(path, "w") as f:
        f.write('{"plugins": {"noop": %s},\n "graph": {\n' % json.dumps(PLUGIN))
        f.write(",\n".join(f'  "{k}": {v}' for k, v in items))
        f.write('\n },\n "keys": %s\n}\n' % json.dumps(last))
    print(json.dumps([tasks, first]))


def run_measured(args):
    """Runs `daskr args` in a fresh process; (wall seconds, peak RSS bytes of that process)."""
    start = time.perf_counter()
    pid = os.posix_spawn(DASKR, [DASKR, *args], os.environ,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"daskr {' '.join(args)} exited with {code}")
    return wall, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def measure(shape, n, scheduler, stats_path):
    path, tasks, first, size = write_file(shape, n)
    sched = ["--scheduler", scheduler]
    wall, peak = run_measured(["run", path, *sched])
    _, read_peak = run_measured(["run", path, *sched, "--keys", first])
    run_measured(["run", path, *sched, "--keys", first, "--stats-json", stats_path])
    with open(stats_path) as f:
        stats = json.load(f)
    os.remove(path)
    return {
        "tasks": tasks,
        "wall": wall,
        "peak": peak,
        "read_peak": read_peak,
        "read_s": stats["build_s"],
        "graph_bytes": stats["graph_bytes"],
        "file_bytes": size,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--quick", action="store_true", help="10^5 tasks instead of 10^6")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--scheduler", default="threads", choices=["sync", "threads"])
    ap.add_argument("--no-build", action="store_true", help="use the daskr command already built")
    ap.add_argument("--write", nargs=3, metavar=("SHAPE", "N", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.write:
        write_here(a.write[0], int(a.write[1]), a.write[2])
        return 0
    n = 100_000 if a.quick else 1_000_000
    build(a.no_build)
    stats_path = os.path.join(OUT, "graphfile-bench-stats.json")
    # The fixed cost of any run (see the module's docstring).
    one = measure("one", 1, a.scheduler, stats_path)
    base, read_base = one["peak"], one["read_peak"]
    failed = False
    rows = []
    for shape in a.shapes.split(","):
        try:
            m = measure(shape, n, a.scheduler, stats_path)
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            log(f"graphfile_bench: {shape}: {e}")
            failed = True
            continue
        t = m["tasks"]
        graph = m["graph_bytes"] / t
        read_peak = max(0, m["read_peak"] - read_base) / t
        row = {
            "system": "daskr-file",
            "shape": shape,
            "n": t,
            "read_ns_per_task": round(m["read_s"] * 1e9 / t, 1),
            "total_ns_per_task": round(m["wall"] * 1e9 / t, 1),
            "peak_bytes_per_task": round(max(0, m["peak"] - base) / t, 1),
            "graph_bytes_per_task": round(graph, 1),
            "read_peak_bytes_per_task": round(read_peak, 1),
            "peak_beyond_graph_bytes_per_task": round(read_peak - graph, 1),
            "file_bytes_per_task": round(m["file_bytes"] / t, 1),
            "scheduler": a.scheduler,
        }
        rows.append(row)
        if a.json:
            print(json.dumps(row), flush=True)
    if not a.json:
        cols = ["shape", "n", "read_ns_per_task", "total_ns_per_task", "peak_bytes_per_task",
                "graph_bytes_per_task", "peak_beyond_graph_bytes_per_task", "file_bytes_per_task"]
        print("  ".join(f"{c:>14}" if i else f"{c:<10}" for i, c in enumerate(cols)))
        for r in rows:
            print("  ".join(f"{r[c]:>14}" if i else f"{r[c]:<10}" for i, c in enumerate(cols)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
