#!/usr/bin/env python3
"""The benchmark harness: every system on the same shapes, in one run.

    python3 bench/compare.py [--quick] [--rounds R] [--systems a,b] [--shapes a,b] [--no-setup]
                             [--no-spin] [--processes-n N] [--no-distributed]

Builds what it needs (libdaskr with cargo, the C/C++ runners with the system compilers, the Go
runner with go, a venv with Dask from PyPI under target/bench/venv), runs every system on the
shapes independent, chain, tree, wavefront and pipeline with 1 thread and with all cores, writes
every row to target/bench/compare.json and prints tables of ns per task, ratios, memory,
peak_held and the parallel speedup, with each of the project's targets marked met or missed.

Systems (a runner that is missing, or cannot be built, is skipped with a note):
  daskr-c        bench/daskr_c.c            daskr through the C ABI
  daskr-cpp      bench/daskr_cpp.cpp        daskr through include/daskr.hpp
  daskr-go       bench/go/                  daskr through the Go package bindings/go
  tbb-flow       bench/tbb_flow.cpp         oneTBB flow_graph, continue_nodes (libtbb-dev)
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
the machine allows. Every native row is the median of R rounds (default 5)
in a fresh process per (system, shape, threads).

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
SYSTEMS = ["daskr-c", "daskr-cpp", "daskr-go", "tbb-flow", "dask-threaded", "daskr-c-processes",
           "dask-multiprocessing"]
PROCESSES = ["daskr-c-processes", "dask-multiprocessing"]
MOVE_SHAPES = ["move-1k", "move-1m"]
NATIVE = ["daskr-c", "daskr-cpp", "daskr-go", "tbb-flow"]

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
    run([go, "build", "-o", exe, "."], cwd=p("bench", "go"))
    return [exe]


def setup_tbb_flow():
    if not os.path.exists("/usr/include/oneapi/tbb/flow_graph.h") and not os.path.exists("/usr/include/tbb/flow_graph.h"):
        notes.append("tbb-flow skipped: oneTBB headers not found (apt-get install libtbb-dev)")
        return None
    exe = os.path.join(OUT, "tbb_flow")
    run([CXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-I" + p("bench"), p("bench", "tbb_flow.cpp"),
         "-ltbb", "-o", exe])
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


def setup_dask_multiprocessing():
    return [*setup_dask(), "--scheduler", "processes"]


SETUP = {
    "daskr-c": setup_daskr_c,
    "daskr-cpp": setup_daskr_cpp,
    "daskr-go": setup_daskr_go,
    "tbb-flow": setup_tbb_flow,
    "dask-threaded": setup_dask,
    "daskr-c-processes": setup_daskr_c_processes,
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

def find(rows, system, shape, threads, n=None):
    for r in rows:
        if r["system"] == system and r["shape"] == shape and r["threads"] == threads and (n is None or r["n"] == n):
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


def report(rows, cfg, systems, load_before, load_after):
    nat, nd, T = cfg["n_native"], cfg["n_dask"], cfg["threads"]
    allc = T[-1]
    print()
    print(f"daskr benchmark ({'quick' if cfg['quick'] else 'full'}): N = {nat:,} tasks native, {nd:,} Dask; "
          f"threads {' and '.join(map(str, T))}; median of {cfg['rounds']} rounds; "
          f"load average before {load_before}, after {load_after}")
    print()

    print("ns per task, build+run (daskr-c: build/run split)  -- ratios are per task, other/daskr-c")
    hdr = ["shape", "thr", "daskr-c", "build/run"]
    present = [s for s in systems if s != "daskr-c" and s not in PROCESSES]
    hdr += present
    hdr += [f"{s}/c" for s in present]
    out = []
    for shape in cfg["shapes"]:
        for t in T:
            c = find(rows, "daskr-c", shape, t, nat)
            cns = c["ns_per_task"] if c else None
            line = [shape, t, fmt_ns(cns),
                    f"{c['build_s'] * 1e9 / c['tasks']:.0f}/{c['run_s'] * 1e9 / c['tasks']:.0f}" if c else "-"]
            others = []
            for s in present:
                r = find(rows, s, shape, t, nd if s == "dask-threaded" else nat)
                others.append(r["ns_per_task"] if r else None)
            line += [fmt_ns(x) for x in others]
            line += [fmt_x(ratio(x, cns), 0 if s == "dask-threaded" else 2) for s, x in zip(present, others)]
            out.append(line)
    table(hdr, out)

    print(f"memory: RSS growth per task (bytes), graph alive, after the run; threads={allc}")
    main_systems = [s for s in systems if s not in PROCESSES]
    hdr = ["shape"] + main_systems
    out = []
    for shape in cfg["shapes"]:
        line = [shape]
        for s in main_systems:
            r = find(rows, s, shape, allc, nd if s == "dask-threaded" else nat)
            line.append("-" if not r or r.get("bytes_per_task") is None else f"{r['bytes_per_task']:.0f}")
        out.append(line)
    table(hdr, out)

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

    speedup = None
    for system in ["daskr-c", "tbb-flow"]:
        sp1, spn = find(rows, system, "spin", 1), find(rows, system, "spin", allc)
        if not (sp1 and spn and allc > 1):
            continue
        x = sp1["run_s"] / spn["run_s"]
        if system == "daskr-c":
            speedup = x
        print(f"parallel speedup, {system}{' (control: same machine, same tasks)' if system != 'daskr-c' else ''}: "
              f"{sp1['tasks'] - 1:,} independent tasks of ~1 ms CPU ({sp1.get('spin_iters')} spin iterations): "
              f"1 thread {sp1['run_s']:.2f} s, {allc} threads {spn['run_s']:.2f} s -> {x:.2f}x "
              f"(load average {sp1.get('load1')} / {spn.get('load1')} at the start)")
    print()

    mp_ratios = report_processes(rows, cfg, systems)

    # Targets
    print("targets" + (" (quick mode: measured at N = %s; the targets are defined at N = 1,000,000)" % f"{nat:,}"
                       if cfg["quick"] else ""))
    res = []

    def verdict(ok):
        return "n/a" if ok is None else ("MET" if ok else "MISSED")

    vals = [(s, find(rows, "daskr-c", s, allc, nat)) for s in cfg["shapes"]]
    vals = [(s, r["ns_per_task"]) for s, r in vals if r]
    ok = all(v <= 250 for _, v in vals) if vals else None
    res.append(["daskr-c <= 250 ns/task build+run, all cores", verdict(ok),
                ", ".join(f"{s} {v:.0f}" for s, v in vals)])

    rs = []
    for s in cfg["shapes"]:
        for t in T:
            c, d = find(rows, "daskr-c", s, t, nat), find(rows, "dask-threaded", s, t, nd)
            if c and d:
                rs.append((s, t, d["ns_per_task"] / c["ns_per_task"]))
    ok = all(x >= 200 for _, _, x in rs) if rs else None
    worst = min(rs, key=lambda x: x[2]) if rs else None
    res.append([">= 200x faster per task than Dask threaded", verdict(ok),
                f"min {worst[2]:.0f}x ({worst[0]}, {worst[1]} thr)" if worst else "no Dask rows"])

    rs = []
    for s in ["independent", "tree", "wavefront"]:
        for t in T:
            c, b = find(rows, "daskr-c", s, t, nat), find(rows, "tbb-flow", s, t, nat)
            if c and b:
                rs.append((s, t, c["ns_per_task"], b["ns_per_task"]))
    ok = all(c <= b for _, _, c, b in rs) if rs else None
    res.append(["<= oneTBB flow_graph ns/task on independent, tree, wavefront", verdict(ok),
                "; ".join(f"{s}/{t}: {c:.0f} vs {b:.0f}" for s, t, c, b in rs) or "no TBB rows"])

    vals = [(s, find(rows, "daskr-c", s, allc, nat)) for s in cfg["shapes"]]
    vals = [(s, r["bytes_per_task"]) for s, r in vals if r and r.get("bytes_per_task") is not None]
    ok = all(v <= 200 for _, v in vals) if vals else None
    res.append(["<= 200 bytes/task (RSS growth)", verdict(ok), ", ".join(f"{s} {v:.0f}" for s, v in vals)])

    rs = []
    for s in cfg["shapes"]:
        for t in T:
            c, d = find(rows, "daskr-c", s, t, nd), find(rows, "dask-threaded", s, t, nd)
            if c and d:
                rs.append((s, t, c["peak_held"], d["peak_held"]))
    ok = all(c <= d for _, _, c, d in rs) if rs else None
    bad = [f"{s}/{t}: {c} > {d}" for s, t, c, d in rs if c > d]
    res.append(["peak_held <= Dask's on every shape (same graph)", verdict(ok),
                ("; ".join(bad) if bad else "all shapes") if rs else "no Dask rows"])

    res.append([f">= 1.8x speedup on {allc} cores, ~1 ms tasks", verdict(None if speedup is None else speedup >= 1.8),
                f"{speedup:.2f}x" if speedup is not None else "needs 2+ cores"])
    ok = all(x >= 50 for _, _, x in mp_ratios) if mp_ratios else None
    worst = min(mp_ratios, key=lambda x: x[2]) if mp_ratios else None
    res.append([">= 50x lower per-task cost than Dask multiprocessing", verdict(ok),
                f"min {worst[2]:.0f}x ({worst[0]}, {worst[1]} workers)" if worst else "no processes rows"])
    res += distributed_report(rows, cfg, verdict)
    table(["target", "status", "measured"], res)


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
    res.append([">= 20x lower per-task cost than Dask's Client.get (distributed)", verdict(ok),
                ", ".join(f"{s} {x:.0f}x" for s, x in ratios) or "no rows"])
    sp = get("daskr-distributed", "spread")
    for name, what in [("spread", "sleeping"), ("spread-cpu", "CPU-bound")]:
        r = get("daskr-distributed", name)
        if r:
            print(f"{name}: {r['tasks'] - 1} {what} tasks of {r['serial_s'] / (r['tasks'] - 1) * 1000:.0f} ms on "
                  f"{r['threads']} workers: {r['run_s']:.2f} s (serial {r['serial_s']:.2f} s) -> {r['speedup']:.2f}x")
    print()
    res.append([f"a few large tasks spread over the workers (>= 1.6x on {sp['threads'] if sp else '?'})",
                verdict(None if not sp else sp["speedup"] >= 1.6), f"{sp['speedup']:.2f}x" if sp else "no row"])
    return res


def report_processes(rows, cfg, systems):
    """The processes tables; returns [(shape, workers, dask-mp ns / daskr-c-processes ns)]."""
    if not any(s in systems for s in PROCESSES):
        return []
    np_, nd, T = cfg["n_processes"], cfg["n_dask_mp"], cfg["threads"]
    print(f"processes: ns per task, build+run (daskr-c-processes N = {np_:,}, dask-multiprocessing "
          f"N = {nd:,} on a warmed-up pool); workers = thr")
    out, ratios = [], []
    for shape in cfg["shapes"]:
        for t in T:
            c = find(rows, "daskr-c-processes", shape, t, np_)
            d = find(rows, "dask-multiprocessing", shape, t, nd) or find(rows, "dask-multiprocessing", shape, t)
            x = ratio(d["ns_per_task"] if d else None, c["ns_per_task"] if c else None)
            if x is not None and d["n"] == nd:
                ratios.append((shape, t, x))
            dn = "" if not d or d["n"] == nd else f" (N={d['n']})"
            out.append([shape, t, fmt_ns(c["ns_per_task"]) if c else "-",
                        f"{c['build_s'] * 1e9 / c['tasks']:.0f}/{c['run_s'] * 1e9 / c['tasks']:.0f}" if c else "-",
                        (fmt_ns(d["ns_per_task"]) + dn) if d else "-", fmt_x(x, 0)])
    table(["shape", "thr", "daskr-c-processes", "build/run", "dask-multiprocessing", "dask/daskr"], out)

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
    ap.add_argument("--processes-n", type=int, default=None,
                    help="N for daskr-c-processes (default 100,000; --quick 10,000)")
    ap.add_argument("--out", default=os.path.join(OUT, "compare.json"))
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
        "rounds": max(args.rounds, 1),
        "shapes": shapes,
    }
    ncores = cores()
    cfg["threads"] = sorted({1, ncores})
    cfg["move_n"] = {"move-1k": min(cfg["n_processes"], 10_000), "move-1m": 16 if args.quick else 64}
    cfg["move_n_dask"] = {"move-1k": cfg["n_dask_mp"], "move-1m": cfg["move_n"]["move-1m"]}

    os.makedirs(OUT, exist_ok=True)
    load_before = uptime()
    runners = {}
    if not args.no_setup:
        run(["cargo", "build", "--release", "--lib"])
    for s in wanted:
        if args.no_setup:
            exe = {"daskr-c": "daskr_c", "daskr-cpp": "daskr_cpp", "daskr-go": "daskr_go", "tbb-flow": "tbb_flow",
                   "daskr-c-processes": "daskr_c"}.get(s)
            extra = ["--scheduler", "processes"] if s in PROCESSES else []
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
    for shape in shapes:
        for t in cfg["threads"]:
            for s in [s for s in systems if s not in PROCESSES]:
                n = cfg["n_dask"] if s == "dask-threaded" else cfg["n_native"]
                row = measure(s, runners[s], n, t, shape, R)
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
