#!/usr/bin/env python3
"""The benchmark harness: every system on the same shapes, in one run.

    python3 bench/compare.py [--quick] [--rounds R] [--procs P] [--systems a,b] [--shapes a,b]
                             [--no-setup] [--no-spin] [--no-scaling] [--no-graphfile]
                             [--processes-n N] [--no-distributed] [--report JSON]

Builds what it needs (libdaskr with cargo, the C/C++ runners with the system compilers, the Go
runner with go, a venv with Dask from PyPI under target/bench/venv), runs every system on the
shapes independent, chain, tree, wavefront and pipeline with 1 thread and with all cores, writes
every row to target/bench/compare.json and prints tables of ns per task, ratios, memory,
peak_held and the parallel speedup, with each of the project's targets marked met or missed.

Systems (a runner that is missing, or cannot be built, is skipped with a note):
  daskr-c        bench/daskr_c.c            daskr through the C ABI
  daskr-c-anon   bench/daskr_c.c --anonymous  the same with anonymous tasks (NULL keys, reached by
                 handle: no key formatted, hashed or stored, as Taskflow's tasks have none)
  daskr-cpp      bench/daskr_cpp.cpp        daskr through include/daskr.hpp
  daskr-go       bench/go/                  daskr through the Go package bindings/go
  tbb-flow       bench/tbb_flow.cpp         oneTBB flow_graph, continue_nodes (libtbb-dev)
  taskflow       bench/taskflow.cpp         Taskflow v4.1, compiled against the headers in
                 DASKR_TASKFLOW_DIR (default ../shared/anchors/taskflow beside the checkout;
                 never part of the repository: skipped with a note where absent)
  dask-threaded  bench/dask_bench.py        dask.threaded.get (Python, from PyPI)
  daskr-distributed, dask-client-get  bench/distributed_bench.py: on one local Dask cluster
                 (a scheduler and 2 one-thread workers on 127.0.0.1), daskr's distributed
                 scheduler (bench/daskr_distributed.c, plugin tasks from bench/plugin_noop.c)
                 against Dask's own Client.get with Python task bodies, and a check that a few
                 large tasks spread over both workers. N = 100,000 for daskr, 10,000 for Dask
                 (--quick: 5,000 and 500); threads = the cluster's worker threads.
  daskr-c-processes     bench/daskr_c.c --scheduler processes: daskr's processes scheduler
  dask-multiprocessing  bench/dask_bench.py --scheduler processes: dask.multiprocessing.get

The processes comparison runs the same shapes with N = 100,000 for daskr (--quick: 10,000) and
2,000 for Dask, with 1 and all worker processes, plus move-1k / move-1m: N results of 1 KiB
(N <= 10,000; Dask 2,000) or 64 results of 1 MiB (--quick: 16) gathered by one sink, which under
the processes scheduler cross from the worker that made them to the sink's; daskr-c (threads)
runs them too, so the difference is what moving costs. Dask's multiprocessing scheduler fails
on long chains (it fuses a chain into one nested task and pickles it recursively): that is
recorded as a note, and its chain is measured again at N = 100.

Sizes: N = 1,000,000 tasks for the native systems and 20,000 for Dask (reported per task);
--quick: 10,000 and 2,000. daskr-c also runs at Dask's N, so that peak_held is compared on the
same graph. The speedup: daskr-c on 10,000 independent tasks spinning ~1 ms of CPU each
(--quick: 1,000), 1 thread vs all cores, with oneTBB on the same tasks as a control for what
the machine allows.

Cold and warm: every native system (daskr-c, daskr-cpp, daskr-go, tbb-flow, taskflow) runs
each (shape, threads) in P fresh processes (default 3, --quick 2) of R rounds (default 5),
interleaved process by process so that the machine's drift falls on all alike. cold = the
median over the processes of their first round (a program's first graph: fresh memory);
warm = the median of the later rounds. Every timing target is judged on both. The scaling
row runs independent and wavefront at N = 10^5, 10^6, 10^7 (--quick: 10^4..10^6), cold, all
cores, daskr-c and Taskflow. The graph-file rows come from bench/graphfile_bench.py --json
[--quick] where that script exists (system daskr-file).

Each row: {"system", "shape", "threads", "tasks", "build_s", "run_s", "ns_per_task",
"peak_held", ...} plus bytes_per_task (RSS growth per task), free_s, rounds and n; see
bench/bench_common.h and bench/dask_bench.py for how each is measured.

Exit status: non-zero if a runner that should have run failed (targets missed do not fail it:
the machine may be shared and noisy; the table says so).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench")
VENV = os.path.join(OUT, "venv")
DASK_VERSION = os.environ.get("DASK_VERSION", "2026.8.0")
SHAPES = ["independent", "chain", "tree", "wavefront", "pipeline"]
# Run together on one local Dask cluster by bench/distributed_bench.py.
DIST_SYSTEMS = ["daskr-distributed", "dask-client-get"]
SYSTEMS = ["daskr-c", "daskr-c-anon", "daskr-cpp", "daskr-go", "tbb-flow", "taskflow", "dask-threaded", "daskr-c-processes",
           "dask-multiprocessing"]
PROCESSES = ["daskr-c-processes", "dask-multiprocessing"]
MOVE_SHAPES = ["move-1k", "move-1m"]
NATIVE = ["daskr-c", "daskr-c-anon", "daskr-cpp", "daskr-go", "tbb-flow", "taskflow"]
SCALING_SHAPES = ["independent", "wavefront"]

CC = os.environ.get("CC", "cc")
CXX = os.environ.get("CXX", "g++")
LIBDIR = os.path.join(ROOT, "target", "release")
LINK_DASKR = ["-L" + LIBDIR, "-ldaskr", "-Wl,-rpath," + LIBDIR]

notes = []  # printed at the end: skipped systems, failures


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, cwd=ROOT, env=None, capture=False):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, cwd=cwd, env=env, check=True, text=True,
                          stdout=subprocess.PIPE if capture else None)


def p(*parts):
    return os.path.join(ROOT, *parts)


# ---------------------------------------------------------------------------------------------
# Setup: one function per system; each returns the runner's argv prefix, or None (skipped, with
# a note). To add a system: write its runner (same command line and JSON rows as
# bench/bench_common.h describes), add a setup function here and list it in SETUP.
# ---------------------------------------------------------------------------------------------

def setup_daskr_c():
    exe = os.path.join(OUT, "daskr_c")
    run([CC, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I" + p("include"), "-I" + p("bench"),
         p("bench", "daskr_c.c"), *LINK_DASKR, "-lm", "-o", exe])
    return [exe]


def setup_daskr_cpp():
    src = p("bench", "daskr_cpp.cpp")
    if not os.path.exists(p("include", "daskr.hpp")) or not os.path.exists(src):
        notes.append("daskr-cpp skipped: needs include/daskr.hpp and bench/daskr_cpp.cpp")
        return None
    exe = os.path.join(OUT, "daskr_cpp")
    run([CXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-I" + p("include"), "-I" + p("bench"), src,
         *LINK_DASKR, "-o", exe])
    return [exe]


def setup_daskr_go():
    if not os.path.exists(p("bench", "go", "main.go")) or not os.path.exists(p("bindings", "go", "go.mod")):
        notes.append("daskr-go skipped: needs bindings/go and bench/go/main.go")
        return None
    go = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not os.path.exists(go) and not shutil.which(go):
        notes.append("daskr-go skipped: no go toolchain (set GO or put go on PATH)")
        return None
    exe = os.path.join(OUT, "daskr_go")
    # The Go package finds libdaskr by pkg-config: this build's daskr-uninstalled.pc.
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.pathsep.join(
        x for x in [p("target", "release", "pkgconfig"), env.get("PKG_CONFIG_PATH")] if x)
    run([go, "build", "-o", exe, "."], cwd=p("bench", "go"), env=env)
    return [exe]


def setup_tbb_flow():
    if not os.path.exists("/usr/include/oneapi/tbb/flow_graph.h") and not os.path.exists("/usr/include/tbb/flow_graph.h"):
        notes.append("tbb-flow skipped: oneTBB headers not found (apt-get install libtbb-dev)")
        return None
    exe = os.path.join(OUT, "tbb_flow")
    run([CXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-I" + p("bench"), p("bench", "tbb_flow.cpp"),
         "-ltbb", "-o", exe])
    return [exe]


def taskflow_dir():
    """Where the Taskflow headers are: DASKR_TASKFLOW_DIR, else ../shared/anchors/taskflow next
    to the checkout. Taskflow is never copied into the repository (a fresh clone has no such
    folder, and the row is skipped)."""
    return os.environ.get("DASKR_TASKFLOW_DIR") or os.path.join(os.path.dirname(ROOT), "shared", "anchors", "taskflow")


def setup_taskflow():
    inc = taskflow_dir()
    if not os.path.exists(os.path.join(inc, "taskflow", "taskflow.hpp")):
        notes.append(f"taskflow skipped: no Taskflow headers at {inc} (set DASKR_TASKFLOW_DIR to a folder "
                     "holding taskflow/taskflow.hpp, Taskflow v4.1)")
        return None
    exe = os.path.join(OUT, "taskflow")
    run([CXX, "-std=c++20", "-O2", "-pthread", "-Wall", "-Wextra", "-I" + p("bench"), "-I" + inc,
         p("bench", "taskflow.cpp"), "-o", exe])
    return [exe]


def setup_dask():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        run([sys.executable, "-m", "venv", VENV])
    try:
        have = run([py, "-c", "import dask; print(dask.__version__)"], capture=True).stdout.strip()
    except subprocess.CalledProcessError:
        have = None
    if have != DASK_VERSION:
        run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"dask=={DASK_VERSION}"])
    return [py, p("bench", "dask_bench.py")]


def setup_distributed():
    """distributed (same version as dask) and bindings/python in the venv; the C runner and
    the no-op plugin."""
    py = setup_dask()[0]
    probe = "import distributed, daskr_dask; print(distributed.__version__)"
    try:
        have = run([py, "-c", probe], capture=True).stdout.strip()
    except subprocess.CalledProcessError:
        have = None
    if have != DASK_VERSION:
        run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"dask=={DASK_VERSION}",
             f"distributed=={DASK_VERSION}"])
        run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", p("bindings", "python")])
    run([CC, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I" + p("include"),
         "-I" + p("bench"), p("bench", "plugin_noop.c"), "-o", os.path.join(OUT, "libbench_noop.so")])
    run([CC, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I" + p("include"), "-I" + p("bench"),
         p("bench", "daskr_distributed.c"), *LINK_DASKR, "-lm", "-o", os.path.join(OUT, "daskr_distributed")])
    return [py, p("bench", "distributed_bench.py")]
def setup_daskr_c_processes():
    exe = os.path.join(OUT, "daskr_c")
    if not os.path.exists(exe):
        setup_daskr_c()
    return [exe, "--scheduler", "processes"]


def setup_daskr_c_anon():
    exe = os.path.join(OUT, "daskr_c")
    if not os.path.exists(exe):
        setup_daskr_c()
    return [exe, "--anonymous"]


def setup_dask_multiprocessing():
    return [*setup_dask(), "--scheduler", "processes"]


SETUP = {
    "daskr-c": setup_daskr_c,
    "daskr-cpp": setup_daskr_cpp,
    "daskr-go": setup_daskr_go,
    "tbb-flow": setup_tbb_flow,
    "taskflow": setup_taskflow,
    "dask-threaded": setup_dask,
    "daskr-c-processes": setup_daskr_c_processes,
    "daskr-c-anon": setup_daskr_c_anon,
    "dask-multiprocessing": setup_dask_multiprocessing,
}


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

failures = []


def measure(system, argv, n, threads, shape, rounds, extra=()):
    """Runs one (system, shape, threads) in a fresh process; returns its row or None."""
    cmd = [*argv, "--json", "--rounds", str(rounds), *extra, str(n), str(threads), shape]
    log("$ " + " ".join(cmd))
    t0 = time.time()
    load1 = float(uptime().split()[0]) if uptime() != "?" else None
    r = subprocess.run(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        failures.append(f"{system} {shape} threads={threads} n={n}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
        log(f"  FAILED ({r.returncode}): {r.stderr.strip()[-500:]}")
        return None
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    if len(rows) != 1:
        failures.append(f"{system} {shape} threads={threads}: expected one JSON row, got {len(rows)}")
        return None
    row = rows[0]
    row["system"] = system
    row["load1"] = load1  # the 1-minute load average when the measurement started
    if "error" in row:  # the system could not run this graph (Dask multiprocessing, long chains)
        notes.append(f"{system} {shape} threads={threads} n={n:,} failed: {row['error']}")
        log(f"  failed: {row['error']}")
        return None
    log(f"  {row['ns_per_task']:.0f} ns/task ({time.time() - t0:.1f} s)")
    return row


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else 0.5 * (xs[m - 1] + xs[m])


def cold_warm(runs):
    """One row from the fresh processes of one (system, shape, threads, N).

    cold = the median over the processes of their first round (the first graph of a process:
    fresh memory, threads started); warm = the median over the processes of the median of their
    later rounds (which reuse what the first round freed). ns_per_task is warm (cold with one
    round); build_s / run_s are warm, cold_build_s / cold_run_s cold. bytes_per_task (RSS growth
    of round 0) is the median over the processes, peak_held the maximum. `runs` keeps every
    process's per-round figures.
    """
    first = runs[0]
    tasks = first["tasks"]
    row = {k: v for k, v in first.items() if k not in ("build_rounds_s", "run_rounds_s", "load1")}
    per = [(r["build_rounds_s"], r["run_rounds_s"]) for r in runs if r.get("build_rounds_s")]
    if per:
        cold_b = median(b[0] for b, _ in per)
        cold_r = median(r[0] for _, r in per)
        cold = median(b[0] + r[0] for b, r in per) * 1e9 / tasks
        warm_runs = [(median(b[1:]), median(r[1:]), median(x + y for x, y in zip(b[1:], r[1:])))
                     for b, r in per if len(b) > 1]
        warm = median(w[2] for w in warm_runs) * 1e9 / tasks if warm_runs else None
        row.update(cold_ns_per_task=cold, warm_ns_per_task=warm, cold_build_s=cold_b, cold_run_s=cold_r)
        if warm_runs:
            row.update(build_s=median(w[0] for w in warm_runs), run_s=median(w[1] for w in warm_runs))
        else:
            row.update(build_s=cold_b, run_s=cold_r)
        row["ns_per_task"] = warm if warm is not None else cold
    else:  # a runner without per-round figures: its medians stand for warm
        row.update(cold_ns_per_task=None, warm_ns_per_task=first["ns_per_task"])
    row["bytes_per_task"] = median(r.get("bytes_per_task") for r in runs)
    held = [r["peak_held"] for r in runs if r.get("peak_held") is not None]
    row["peak_held"] = max(held) if held else None
    row["processes"] = len(runs)
    row["load1"] = [r.get("load1") for r in runs]
    row["runs"] = [{"build_rounds_s": r.get("build_rounds_s"), "run_rounds_s": r.get("run_rounds_s"),
                    "bytes_per_task": r.get("bytes_per_task"), "load1": r.get("load1")} for r in runs]
    return row


def measure_interleaved(runners, systems, n_of, threads, shape, rounds, procs, extra=()):
    """Each system in `procs` fresh processes, interleaved run by run (system A, B, C, then A,
    B, C again, the order rotated each time) so that the machine's drift over minutes falls on
    every system alike; returns one cold_warm row per system that ran."""
    runs = {s: [] for s in systems}
    for k in range(procs):
        order = systems[k % len(systems):] + systems[:k % len(systems)] if systems else []
        for s in order:
            row = measure(s, runners[s], n_of(s), threads, shape, rounds, extra)
            if row:
                runs[s].append(row)
    return [cold_warm(rs) for rs in runs.values() if rs]


def run_graphfile(cfg):
    """The graph-file rows: bench/graphfile_bench.py --json [--quick] prints them (system
    daskr-file: read_ns_per_task, total_ns_per_task, peak_bytes_per_task, graph_bytes_per_task).
    Skipped with a note where that script is absent."""
    script = p("bench", "graphfile_bench.py")
    if not os.path.exists(script):
        notes.append("daskr-file (graph files) skipped: bench/graphfile_bench.py not found")
        return []
    cmd = [sys.executable, script, "--json"] + (["--quick"] if cfg["quick"] else [])
    log("$ " + " ".join(cmd))
    load1 = float(uptime().split()[0]) if uptime() != "?" else None
    r = subprocess.run(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        failures.append(f"graphfile: {' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
        return []
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        row.setdefault("system", "daskr-file")
        row["load1"] = load1
    if not rows:
        failures.append(f"graphfile: {' '.join(cmd)} printed no rows")
    return rows


def run_distributed(args, cfg, shapes):
    """The distributed rows: bench/distributed_bench.py on a local cluster it starts and stops."""
    try:
        if args.no_setup:
            argv = [os.path.join(VENV, "bin", "python"), p("bench", "distributed_bench.py")]
        else:
            argv = setup_distributed()
    except (subprocess.CalledProcessError, OSError) as e:
        failures.append(f"distributed: setup failed: {e}")
        return []
    cmd = [*argv, "--rounds", str(cfg["rounds"]), "--shapes", ",".join(shapes)]
    if cfg["quick"]:
        cmd.append("--quick")
    log("$ " + " ".join(cmd))
    load1 = float(uptime().split()[0]) if uptime() != "?" else None
    r = subprocess.run(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE)
    if r.returncode != 0:
        failures.append(f"distributed: {' '.join(cmd)}: exit {r.returncode}")
        return []
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        row["load1"] = load1
    return rows


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def uptime():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

def find(rows, system, shape, threads, n=None, series=None):
    """The row of (system, shape, threads[, n]); rows of a series (the scaling row) only when
    that series is asked for."""
    for r in rows:
        if (r["system"] == system and r["shape"] == shape and r["threads"] == threads and (n is None or r["n"] == n)
                and r.get("series") == series):
            return r
    return None


def fmt_ns(x):
    if x is None:
        return "-"
    if x >= 100000:
        return f"{x / 1000:.0f}us"
    if x >= 10000:
        return f"{x / 1000:.1f}us"
    return f"{x:.0f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_x(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}x"


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    print()


MODES = ("cold", "warm")


def ns_of(row, mode):
    """A row's ns per task, cold or warm (rows without the split, such as Dask's: ns_per_task)."""
    if row is None:
        return None
    if "cold_ns_per_task" not in row:  # no split: one figure for both
        return row["ns_per_task"]
    v = row.get(f"{mode}_ns_per_task")
    return row["ns_per_task"] if v is None and mode == "warm" else v


def cw(a, b, f=fmt_ns):
    return f"{f(a)} | {f(b)}"


def verdict(ok):
    return "n/a" if ok is None else ("MET" if ok else "MISSED")


def report(rows, cfg, systems, load_before, load_after):
    nat, nd, T = cfg["n_native"], cfg["n_dask"], cfg["threads"]
    allc = T[-1]
    native = [s for s in NATIVE if s in systems]
    print()
    print(f"daskr benchmark ({'quick' if cfg['quick'] else 'full'}): N = {nat:,} tasks native, {nd:,} Dask; "
          f"threads {' and '.join(map(str, T))}; native systems in {cfg['procs']} fresh processes each, "
          f"{cfg['rounds']} rounds a process, interleaved; load average before {load_before}, after {load_after}")
    print("cold = the first round of a fresh process (median over the processes); warm = the median of the later "
          "rounds")
    print()

    print("ns per task, build+run, cold | warm")
    hdr = ["shape", "thr"] + native + (["dask-threaded"] if "dask-threaded" in systems else [])
    out = []
    for shape in cfg["shapes"]:
        for t in T:
            line = [shape, t]
            for s in native:
                r = find(rows, s, shape, t, nat)
                line.append(cw(ns_of(r, "cold"), ns_of(r, "warm")) if r else "-")
            if "dask-threaded" in systems:
                d = find(rows, "dask-threaded", shape, t, nd)
                line.append(fmt_ns(d["ns_per_task"]) if d else "-")
            out.append(line)
    table(hdr, out)

    print("build / run ns per task, cold | warm")
    out = []
    for shape in cfg["shapes"]:
        for t in T:
            line = [shape, t]
            for s in native:
                r = find(rows, s, shape, t, nat)
                if not r or r.get("cold_build_s") is None:
                    line.append("-")
                    continue
                k = 1e9 / r["tasks"]
                line.append(f"{r['cold_build_s'] * k:.0f}/{r['cold_run_s'] * k:.0f} | "
                            f"{r['build_s'] * k:.0f}/{r['run_s'] * k:.0f}")
            out.append(line)
    table(["shape", "thr"] + native, out)

    others = [s for s in native if s != "daskr-c"] + (["dask-threaded"] if "dask-threaded" in systems else [])
    print("ratios per task, other / daskr-c, cold | warm (above 1: daskr-c is faster)")
    out = []
    for shape in cfg["shapes"]:
        for t in T:
            c = find(rows, "daskr-c", shape, t, nat)
            line = [shape, t]
            for s in others:
                r = find(rows, s, shape, t, nd if s == "dask-threaded" else nat)
                digits = 0 if s == "dask-threaded" else 2
                line.append(cw(ratio(ns_of(r, "cold"), ns_of(c, "cold")), ratio(ns_of(r, "warm"), ns_of(c, "warm")),
                               lambda x: fmt_x(x, digits)))
            out.append(line)
    table(["shape", "thr"] + [f"{s}/c" for s in others], out)

    scaling = scaling_series(rows, cfg)
    if scaling:
        print(f"scaling: ns per task against N, cold (one round per fresh process, median of {cfg['procs']}), "
              f"threads={allc}; spread = each N against the median of the N's")
        out = []
        for (shape, s), vals in scaling.items():
            out.append([shape, s] + [fmt_ns(v) for v in vals.values()] + [spread_txt(vals)])
        table(["shape", "system"] + [f"N={n:,}" for n in cfg["scaling_n"]] + ["spread"], out)

    print(f"memory: RSS growth per task (bytes) in a process's first round (cold), graph alive, after the run; "
          f"threads={allc}")
    main_systems = [s for s in systems if s not in PROCESSES]
    out = []
    for shape in cfg["shapes"]:
        line = [shape]
        for s in main_systems:
            r = find(rows, s, shape, allc, nd if s == "dask-threaded" else nat)
            line.append("-" if not r or r.get("bytes_per_task") is None else f"{r['bytes_per_task']:.0f}")
        out.append(line)
    table(["shape"] + main_systems, out)

    print(f"peak_held: most results alive at once, on the same graph (N = {nd:,}); daskr-c at N = {nat:,} too")
    hdr = ["shape", "thr", "daskr-c", "dask", "dask (incl. transient)", f"daskr-c @{nat:,}"]
    out = []
    for shape in cfg["shapes"]:
        for t in T:
            c = find(rows, "daskr-c", shape, t, nd)
            d = find(rows, "dask-threaded", shape, t, nd)
            big = find(rows, "daskr-c", shape, t, nat)
            out.append([shape, t, c["peak_held"] if c else "-", d["peak_held"] if d else "-",
                        d.get("peak_held_transient", "-") if d else "-", big["peak_held"] if big else "-"])
    table(hdr, out)

    speedup = {}
    for system in ["daskr-c", "tbb-flow"]:
        sp1, spn = find(rows, system, "spin", 1), find(rows, system, "spin", allc)
        if not (sp1 and spn and allc > 1):
            continue
        x = sp1["run_s"] / spn["run_s"]
        first = (sp1.get("run_rounds_s") or [None])[0], (spn.get("run_rounds_s") or [None])[0]
        x_cold = first[0] / first[1] if first[0] and first[1] else None
        if system == "daskr-c":
            speedup = {"cold": x_cold, "warm": x}
        print(f"parallel speedup, {system}{' (control: same machine, same tasks)' if system != 'daskr-c' else ''}: "
              f"{sp1['tasks'] - 1:,} independent tasks of ~1 ms CPU ({sp1.get('spin_iters')} spin iterations): "
              f"1 thread {sp1['run_s']:.2f} s, {allc} threads {spn['run_s']:.2f} s -> {x:.2f}x warm"
              f"{f', {x_cold:.2f}x cold' if x_cold else ''} "
              f"(load average {sp1.get('load1')} / {spn.get('load1')} at the start)")
    print()

    mp_ratios = report_processes(rows, cfg, systems)
    gf = graphfile_report(rows)

    # Targets: each timing target judged on cold and on warm figures.
    print("targets" + (" (quick mode: measured at N = %s; the targets are defined at N = 1,000,000)" % f"{nat:,}"
                       if cfg["quick"] else ""))
    res = []

    def per_mode(name, items, ok, describe):
        """items(mode) -> list of measurements; ok(item) -> bool; describe(cold_items, warm_items) -> str."""
        got = {m: items(m) for m in MODES}
        res.append([name] + [verdict(all(ok(x) for x in got[m]) if got[m] else None) for m in MODES]
                   + [describe(got["cold"], got["warm"])])

    def cells(system, n, shapes, threads, mode):
        out = []
        for s in shapes:
            for t in threads:
                v = ns_of(find(rows, system, s, t, n), mode)
                if v is not None:
                    out.append((s, t, v))
        return out

    def pairs(a, na, b, nb, shapes, threads, mode):
        """(shape, thr, a's ns, b's ns) where both ran."""
        out = []
        for s in shapes:
            for t in threads:
                x, y = ns_of(find(rows, a, s, t, na), mode), ns_of(find(rows, b, s, t, nb), mode)
                if x is not None and y is not None:
                    out.append((s, t, x, y))
        return out

    def worst(items, key, fmt):
        if not items:
            return "-"
        w = max(items, key=key)
        return f"{fmt(w)} ({w[0]}/{w[1]})"

    def cold_warm_txt(c, w, f):
        return f"cold {f(c)}; warm {f(w)}"

    def worst_ratio(label):
        """Describes pairs (shape, thr, a, b) by their largest a/b."""
        return lambda xs: f"{label} worst " + worst(xs, lambda x: x[2] / x[3], lambda x: f"{x[2] / x[3]:.2f}x")

    sh = cfg["shapes"]
    per_mode(f"daskr-c <= Taskflow ns/task, every shape, 1 and {allc} threads",
             lambda m: pairs("daskr-c", nat, "taskflow", nat, sh, T, m), lambda x: x[2] <= x[3],
             lambda c, w: "no Taskflow rows" if not c else cold_warm_txt(
                 c, w, worst_ratio("daskr-c/taskflow")))
    per_mode(f"daskr-c-anon (no keys) <= Taskflow ns/task, every shape, 1 and {allc} threads",
             lambda m: pairs("daskr-c-anon", nat, "taskflow", nat, sh, T, m), lambda x: x[2] <= x[3],
             lambda c, w: "no Taskflow or daskr-c-anon rows" if not c else cold_warm_txt(
                 c, w, worst_ratio("daskr-c-anon/taskflow")))
    for system in ["daskr-c", "daskr-c-anon"] if scaling else []:
        flat = {k: v for k, v in scaling.items() if k[1] == system}
        if not flat:
            continue
        oks = [all(0.8 <= x / median(list(v.values())) <= 1.2 for x in v.values()) for v in flat.values()]
        res.append([f"{system} cost per task flat within +-20%, N = {cfg['scaling_n'][0]:,}..{cfg['scaling_n'][-1]:,}",
                    verdict(all(oks) if oks else None), "n/a (cold)",
                    "; ".join(f"{k[0]} {spread_txt(v)}" for k, v in flat.items())])
    vals = [(s, find(rows, "daskr-c", s, allc, nat)) for s in sh]
    vals = [(s, r["bytes_per_task"]) for s, r in vals if r and r.get("bytes_per_task") is not None]
    res.append(["daskr-c <= 150 bytes/task (RSS growth, first round)",
                verdict(all(v <= 150 for _, v in vals) if vals else None),
                "n/a (cold)", ", ".join(f"{s} {v:.0f}" for s, v in vals)])
    per_mode(f"daskr-c <= 250 ns/task, all cores ({allc} threads)", lambda m: cells("daskr-c", nat, sh, [allc], m),
             lambda x: x[2] <= 250,
             lambda c, w: cold_warm_txt(c, w, lambda xs: ", ".join(f"{s} {v:.0f}" for s, _, v in xs)))
    per_mode(">= 300x faster per task than Dask threaded",
             lambda m: [(s, t, d, c) for s, t, c, d in pairs("daskr-c", nat, "dask-threaded", nd, sh, T, m)],
             lambda x: x[2] / x[3] >= 300,
             lambda c, w: "no Dask rows" if not c else cold_warm_txt(
                 c, w, lambda xs: "dask/c min " + worst(xs, lambda x: -x[2] / x[3], lambda x: f"{x[2] / x[3]:.0f}x")))
    per_mode("daskr-cpp <= 1.1x daskr-c ns/task", lambda m: pairs("daskr-cpp", nat, "daskr-c", nat, sh, T, m),
             lambda x: x[2] <= 1.1 * x[3],
             lambda c, w: "no C++ rows" if not c else cold_warm_txt(
                 c, w, worst_ratio("cpp/c")))
    per_mode("daskr-go <= 1 us/task", lambda m: cells("daskr-go", nat, sh, T, m), lambda x: x[2] <= 1000,
             lambda c, w: "no Go rows" if not c else cold_warm_txt(
                 c, w, lambda xs: "worst " + worst(xs, lambda x: x[2], lambda x: f"{x[2]:.0f} ns")))
    per_mode("daskr-c <= oneTBB flow_graph on independent, tree, wavefront",
             lambda m: pairs("daskr-c", nat, "tbb-flow", nat, ["independent", "tree", "wavefront"], T, m),
             lambda x: x[2] <= x[3],
             lambda c, w: "no TBB rows" if not c else cold_warm_txt(
                 c, w, worst_ratio("daskr-c/tbb")))
    rs = []
    for s in sh:
        for t in T:
            c, d = find(rows, "daskr-c", s, t, nd), find(rows, "dask-threaded", s, t, nd)
            if c and d:
                rs.append((s, t, c["peak_held"], d["peak_held"]))
    bad = [f"{s}/{t}: {c} > {d}" for s, t, c, d in rs if c > d]
    res.append(["peak_held <= Dask's on every shape (same graph)",
                verdict(all(c <= d for _, _, c, d in rs) if rs else None),
                "-", ("; ".join(bad) if bad else "all shapes") if rs else "no Dask rows"])
    res.append([f">= 1.8x speedup on {allc} cores, ~1 ms tasks"]
               + [verdict(None if speedup.get(m) is None else speedup[m] >= 1.8) for m in MODES]
               + [cold_warm_txt(speedup.get("cold"), speedup.get("warm"), lambda x: "-" if x is None else f"{x:.2f}x")
                  if speedup else ("needs 2+ cores" if allc < 2 else "not measured")])
    per_mode(">= 50x lower per-task cost than Dask multiprocessing", lambda m: mp_ratios.get(m, []),
             lambda x: x[2] >= 50,
             lambda c, w: "no processes rows" if not c else cold_warm_txt(
                 c, w, lambda xs: "min " + worst(xs, lambda x: -x[2], lambda x: f"{x[2]:.0f}x")))
    res += distributed_report(rows, cfg, verdict)
    res += gf
    table(["target", "cold", "warm", "measured"], res)


def scaling_series(rows, cfg):
    """{(shape, system): {N: cold ns per task}} of the scaling rows."""
    out = {}
    for r in rows:
        if r.get("series") == "scaling":
            out.setdefault((r["shape"], r["system"]), {n: None for n in cfg["scaling_n"]})[r["n"]] = ns_of(r, "cold")
    for vals in out.values():
        for n in [n for n, v in vals.items() if v is None]:
            del vals[n]
    return out


def spread_txt(vals):
    m = median(list(vals.values()))
    if not m:
        return "-"
    return f"{min(vals.values()) / m - 1:+.0%}..{max(vals.values()) / m - 1:+.0%}"


def graphfile_report(rows):
    """The graph-file table (bench/graphfile_bench.py); returns its target rows."""
    g = [r for r in rows if r["system"] == "daskr-file"]
    if not g:
        return []

    def beyond(r):  # peak memory beyond the graph itself
        if r.get("peak_beyond_graph_bytes_per_task") is not None:
            return r["peak_beyond_graph_bytes_per_task"]
        if r.get("peak_bytes_per_task") is None or r.get("graph_bytes_per_task") is None:
            return None
        return r["peak_bytes_per_task"] - r["graph_bytes_per_task"]

    print("graph files (bench/graphfile_bench.py): reading a graph file into a graph, per task")

    def num(x, f="{:.0f}"):
        return "-" if x is None else f.format(x)

    table(["shape", "N", "read ns", "total ns", "peak B", "graph B", "peak beyond graph B"],
          [[r.get("shape"), f"{r['n']:,}" if r.get("n") else "-", num(r.get("read_ns_per_task")),
            num(r.get("total_ns_per_task")), num(r.get("peak_bytes_per_task")), num(r.get("graph_bytes_per_task")),
            num(beyond(r))] for r in g])
    reads = [(r.get("shape"), r.get("read_ns_per_task")) for r in g if r.get("read_ns_per_task") is not None]
    mems = [(r.get("shape"), beyond(r)) for r in g if beyond(r) is not None]
    return [["graph files read at <= 300 ns/task", verdict(all(v <= 300 for _, v in reads) if reads else None),
             "n/a (cold)", ", ".join(f"{s} {v:.0f}" for s, v in reads) or "no rows"],
            ["graph files: <= 300 B/task peak beyond the graph",
             verdict(all(v <= 300 for _, v in mems) if mems else None),
             "n/a (cold)", ", ".join(f"{s} {v:.0f}" for s, v in mems) or "no rows"]]


def distributed_report(rows, cfg, verdict):
    """Prints the distributed table; returns its target rows."""
    drows = [r for r in rows if r["system"] in DIST_SYSTEMS]
    if not drows:
        return []

    def get(system, shape):
        return next((r for r in drows if r["system"] == system and r["shape"] == shape), None)

    some = drows[0]
    print(f"distributed: a local Dask cluster of {some['threads']} one-thread workers on 127.0.0.1; "
          "us per task, build+run; daskr's Dask driver reused after the first round (first round: cold)")
    out, ratios = [], []
    for shape in cfg["shapes"]:
        d, k = get("daskr-distributed", shape), get("dask-client-get", shape)
        x = ratio(k["ns_per_task"] if k else None, d["ns_per_task"] if d else None)
        if x is not None:
            ratios.append((shape, x))
        out.append([shape, f"{d['tasks']:,}" if d else "-", f"{d['ns_per_task'] / 1000:.1f}" if d else "-",
                    f"{d['first_s']:.2f} s" if d else "-", f"{k['tasks']:,}" if k else "-",
                    f"{k['ns_per_task'] / 1000:.0f}" if k else "-", fmt_x(x, 0)])
    table(["shape", "daskr N", "daskr-distributed us", "daskr first round", "Dask N", "dask-client-get us",
           "dask/daskr"], out)
    res = []
    ok = all(x >= 20 for _, x in ratios) if ratios else None
    # warm only: a first get also starts the Dask driver (first_s in the table), a cost of its own
    res.append([">= 20x lower per-task cost than Dask's Client.get (distributed)", "n/a (driver start)", verdict(ok),
                ", ".join(f"{s} {x:.0f}x" for s, x in ratios) or "no rows"])
    sp = get("daskr-distributed", "spread")
    for name, what in [("spread", "sleeping"), ("spread-cpu", "CPU-bound")]:
        r = get("daskr-distributed", name)
        if r:
            print(f"{name}: {r['tasks'] - 1} {what} tasks of {r['serial_s'] / (r['tasks'] - 1) * 1000:.0f} ms on "
                  f"{r['threads']} workers: {r['run_s']:.2f} s (serial {r['serial_s']:.2f} s) -> {r['speedup']:.2f}x")
    print()
    res.append([f"a few large tasks spread over the workers (>= 1.6x on {sp['threads'] if sp else '?'})", "-",
                verdict(None if not sp else sp["speedup"] >= 1.6), f"{sp['speedup']:.2f}x" if sp else "no row"])
    return res


def report_processes(rows, cfg, systems):
    """The processes tables; returns {"cold"|"warm": [(shape, workers, dask-mp ns / daskr-c-processes ns)]}
    (Dask's one figure against daskr's first round and against its later rounds)."""
    if not any(s in systems for s in PROCESSES):
        return {}
    np_, nd, T = cfg["n_processes"], cfg["n_dask_mp"], cfg["threads"]
    print(f"processes: ns per task, build+run (daskr-c-processes N = {np_:,}, dask-multiprocessing "
          f"N = {nd:,} on a warmed-up pool); workers = thr")
    out, ratios = [], {"cold": [], "warm": []}
    for shape in cfg["shapes"]:
        for t in T:
            c = find(rows, "daskr-c-processes", shape, t, np_)
            d = find(rows, "dask-multiprocessing", shape, t, nd) or find(rows, "dask-multiprocessing", shape, t)
            x = ratio(d["ns_per_task"] if d else None, c["ns_per_task"] if c else None)
            if x is not None and d["n"] == nd:
                for m in MODES:
                    y = ratio(d["ns_per_task"], ns_of(c, m))
                    if y is not None:
                        ratios[m].append((shape, t, y))
            dn = "" if not d or d["n"] == nd else f" (N={d['n']})"
            out.append([shape, t, cw(ns_of(c, "cold"), ns_of(c, "warm")) if c else "-",
                        f"{c['build_s'] * 1e9 / c['tasks']:.0f}/{c['run_s'] * 1e9 / c['tasks']:.0f}" if c else "-",
                        (fmt_ns(d["ns_per_task"]) + dn) if d else "-", fmt_x(x, 0)])
    table(["shape", "thr", "daskr-c-processes cold | warm", "build/run (median of rounds)", "dask-multiprocessing",
           "dask/daskr"], out)

    print("moving results between processes: ns per result (N results of 1 KiB or 1 MiB gathered by one sink); "
          "moving = processes - threads")
    out = []
    for shape in MOVE_SHAPES:
        n = cfg["move_n"][shape]
        for t in T:
            th = find(rows, "daskr-c", shape, t, n)
            c = find(rows, "daskr-c-processes", shape, t, n)
            d = find(rows, "dask-multiprocessing", shape, t, cfg["move_n_dask"][shape])
            move = c["ns_per_task"] - th["ns_per_task"] if c and th else None
            out.append([shape, t, n, fmt_ns(th["ns_per_task"]) if th else "-", fmt_ns(c["ns_per_task"]) if c else "-",
                        fmt_ns(move), fmt_ns(d["ns_per_task"]) if d else "-"])
    table(["shape", "thr", "N", "daskr-c threads", "daskr-c-processes", "moving", "dask-multiprocessing"], out)
    return ratios


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 10,000 native / 2,000 Dask (for CI)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per measurement (median; default 5)")
    ap.add_argument("--systems", default=",".join(SYSTEMS + DIST_SYSTEMS),
                    help="comma-separated subset of " + ",".join(SYSTEMS + DIST_SYSTEMS))
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset of " + ",".join(SHAPES))
    ap.add_argument("--no-spin", action="store_true", help="skip the ~1 ms task speedup measurement")
    ap.add_argument("--no-setup", action="store_true", help="use the runners already built in target/bench")
    ap.add_argument("--no-distributed", action="store_true",
                    help="skip the distributed rows (daskr-distributed, dask-client-get)")
    ap.add_argument("--procs", type=int, default=None,
                    help="fresh processes per native measurement (cold = median of their first rounds; "
                         "default 3, --quick 2)")
    ap.add_argument("--no-scaling", action="store_true",
                    help="skip the cold cost-per-task scaling row (independent, wavefront at 10^5..10^7)")
    ap.add_argument("--no-graphfile", action="store_true", help="skip the graph-file rows (bench/graphfile_bench.py)")
    ap.add_argument("--processes-n", type=int, default=None,
                    help="N for daskr-c-processes (default 100,000; --quick 10,000)")
    ap.add_argument("--out", default=os.path.join(OUT, "compare.json"))
    ap.add_argument("--report", metavar="JSON",
                    help="run nothing: print the tables of rows written before (pass the same --quick)")
    args = ap.parse_args()

    wanted = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in wanted:
        if s not in SYSTEMS + DIST_SYSTEMS:
            ap.error(f"unknown system {s}")
    want_dist = not args.no_distributed and any(s in DIST_SYSTEMS for s in wanted)
    wanted = [s for s in wanted if s in SYSTEMS]
    if "daskr-c" not in wanted:
        wanted.insert(0, "daskr-c")  # the reference every ratio is taken against
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for s in shapes:
        if s not in SHAPES:
            ap.error(f"unknown shape {s}")

    cfg = {
        "quick": args.quick,
        "n_native": 10_000 if args.quick else 1_000_000,
        "n_dask": 2_000 if args.quick else 20_000,
        "n_spin": 1_000 if args.quick else 10_000,
        "n_processes": args.processes_n or (10_000 if args.quick else 100_000),
        "n_dask_mp": 2_000,
        "rounds": max(args.rounds, 2),  # round 0 is cold; warm needs at least one more
        "procs": max(args.procs or (2 if args.quick else 3), 1),
        "scaling_n": [10_000, 100_000, 1_000_000] if args.quick else [100_000, 1_000_000, 10_000_000],
        "shapes": shapes,
    }
    ncores = cores()
    cfg["threads"] = sorted({1, ncores})
    cfg["move_n"] = {"move-1k": min(cfg["n_processes"], 10_000), "move-1m": 16 if args.quick else 64}
    cfg["move_n_dask"] = {"move-1k": cfg["n_dask_mp"], "move-1m": cfg["move_n"]["move-1m"]}

    if args.report:
        with open(args.report) as f:
            rows = json.load(f)
        present = {r["system"] for r in rows}
        cfg["procs"] = max((r.get("processes", 1) for r in rows if r["system"] in NATIVE), default=cfg["procs"])
        cfg["scaling_n"] = sorted({r["n"] for r in rows if r.get("series") == "scaling"}) or cfg["scaling_n"]
        report(rows, cfg, [s for s in SYSTEMS if s in present], "?", "?")
        return 0

    os.makedirs(OUT, exist_ok=True)
    load_before = uptime()
    runners = {}
    if not args.no_setup:
        run(["cargo", "build", "--release", "--lib"])
    for s in wanted:
        if args.no_setup:
            exe = {"daskr-c": "daskr_c", "daskr-cpp": "daskr_cpp", "daskr-go": "daskr_go", "tbb-flow": "tbb_flow",
                   "taskflow": "taskflow", "daskr-c-processes": "daskr_c", "daskr-c-anon": "daskr_c"}.get(s)
            extra = ["--scheduler", "processes"] if s in PROCESSES else ["--anonymous"] if s == "daskr-c-anon" else []
            if exe and os.path.exists(os.path.join(OUT, exe)):
                runners[s] = [os.path.join(OUT, exe), *extra]
            elif s.startswith("dask-") and os.path.exists(os.path.join(VENV, "bin", "python")):
                runners[s] = [os.path.join(VENV, "bin", "python"), p("bench", "dask_bench.py"), *extra]
            else:
                notes.append(f"{s} skipped: not built (run without --no-setup)")
            continue
        try:
            argv = SETUP[s]()
        except (subprocess.CalledProcessError, OSError) as e:
            failures.append(f"{s}: setup failed: {e}")
            argv = None
        if argv:
            runners[s] = argv
    systems = [s for s in SYSTEMS if s in runners]

    rows = []
    R = cfg["rounds"]
    native = [s for s in systems if s in NATIVE]
    for shape in shapes:
        for t in cfg["threads"]:
            # every native system in cfg["procs"] fresh processes, interleaved: cold and warm
            rows += measure_interleaved(runners, native, lambda s: cfg["n_native"], t, shape, R, cfg["procs"])
            if "dask-threaded" in systems:
                row = measure("dask-threaded", runners["dask-threaded"], cfg["n_dask"], t, shape, R)
                if row:
                    rows.append(row)
            # daskr on Dask's graph: peak_held compared on the same graph
            if "dask-threaded" in systems and "daskr-c" in systems and cfg["n_dask"] != cfg["n_native"]:
                row = measure("daskr-c", runners["daskr-c"], cfg["n_dask"], t, shape, R)
                if row:
                    rows.append(row)
    # The processes schedulers: the same shapes, then results that must cross processes.
    for shape in shapes + MOVE_SHAPES:
        for t in cfg["threads"]:
            for s in [s for s in PROCESSES if s in systems]:
                if shape in MOVE_SHAPES:
                    n = cfg["move_n" if s == "daskr-c-processes" else "move_n_dask"][shape]
                else:
                    n = cfg["n_processes" if s == "daskr-c-processes" else "n_dask_mp"]
                row = measure(s, runners[s], n, t, shape, R)
                if row:
                    rows.append(row)
                elif s == "dask-multiprocessing" and shape == "chain":
                    row = measure(s, runners[s], 100, t, shape, R)  # what Dask can run
                    if row:
                        rows.append(row)
            if shape in MOVE_SHAPES and "daskr-c" in systems and any(s in systems for s in PROCESSES):
                row = measure("daskr-c", runners["daskr-c"], cfg["move_n"][shape], t, shape, R)
                if row:
                    rows.append(row)
    if not args.no_scaling and "daskr-c" in systems:
        # cost per task against N, cold: one round per fresh process (Taskflow beside daskr-c)
        scaled = [s for s in ["daskr-c", "daskr-c-anon", "taskflow"] if s in systems]
        for shape in [s for s in SCALING_SHAPES if s in shapes]:
            for n in cfg["scaling_n"]:
                for row in measure_interleaved(runners, scaled, lambda s: n, cfg["threads"][-1], shape, 1,
                                               cfg["procs"]):
                    row["series"] = "scaling"
                    rows.append(row)
    if not args.no_spin and "daskr-c" in systems:
        # the same work for every system: the C runner's calibration (thread CPU time)
        iters = run([*runners["daskr-c"], "--calibrate"], capture=True).stdout.strip()
        # interleaved (daskr 1, TBB 1, daskr all, TBB all) so that load from elsewhere hits both
        for t in cfg["threads"]:
            for s in [s for s in ["daskr-c", "tbb-flow"] if s in systems]:
                row = measure(s, runners[s], cfg["n_spin"], t, "spin", R, ["--spin-iters", iters])
                if row:
                    rows.append(row)

    if want_dist:
        rows += run_distributed(args, cfg, shapes)
    if not args.no_graphfile:
        rows += run_graphfile(cfg)

    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    load_after = uptime()
    report(rows, cfg, systems, load_before, load_after)
    print(f"rows: {os.path.relpath(args.out, ROOT)} ({len(rows)} rows)")
    for n in notes:
        print("note: " + n)
    for fl in failures:
        print("FAILED: " + fl)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
