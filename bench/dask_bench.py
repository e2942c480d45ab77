"""Dask's threaded scheduler (dask.threaded.get) on the benchmark shapes, or its multiprocessing
scheduler (dask.multiprocessing.get) with --scheduler processes.

    python bench/dask_bench.py [--json] [--rounds R] [--scheduler threads|processes] [N] [threads] [shape...]

The same shapes, keys and sizes as bench/daskr_c.c, as real Dask graphs: a dict of task tuples
with no-op functions that read their args and return a small int. Run it with the venv that
bench/compare.py sets up (target/bench/venv, Dask from PyPI).

What a row holds (the schema of target/bench/compare.json): build_s = building the dict (keys
and all), run_s = dask.threaded.get(dsk, key, num_workers=threads), both medians over the
rounds; ns_per_task = median of (build+run)/tasks; bytes_per_task = RSS growth from before
building to after the get in round 0 (a fresh process); peak_held = the most results alive at
once in the scheduler's cache, measured by a dask.callbacks.Callback in PEAK_RUNS extra,
untimed runs (so the callback's cost is not in the timings), the maximum of them (daskr's rows
keep the maximum over their rounds too) -- see PeakHeld for the exact definition.

--scheduler processes (rows "dask-multiprocessing"): dask.multiprocessing.get with `threads`
worker processes, on a process pool made (with Dask's multiprocessing context) and warmed up
before the timed rounds and reused by all of them, so the rows measure Dask's per-task cost and
not the start of Python interpreters. peak_held is not measured there (null). A shape that
fails -- Dask's multiprocessing scheduler fuses a chain into one nested task and pickles it
recursively, which overflows Python's recursion limit on long chains -- prints a row with an
"error" field instead of timings. Shapes move-1k and move-1m: N tasks returning 1 KiB / 1 MiB
of bytes and a sink taking them all (what crossing between processes costs).
"""

import json
import math
import os
import sys
import time

import dask
from dask.callbacks import Callback
from dask.threaded import get as threaded_get
from dask.utils import apply

GROUP = 100  # pipeline: analyze runs over groups of this many files
PEAK_RUNS = 3  # untimed runs with the PeakHeld callback; the row keeps their maximum


def noop(*args):
    t = 1
    for a in args:
        if type(a) is int:
            t += a & 1
    return t & 7


def sink(xs):
    return len(xs) & 7


def analyze(xs, method="mean"):
    return (sum(xs) + len(method)) & 7


def store(x, to="stdout"):
    return (x + len(to)) & 7


def blob(size):
    return bytes(size)


def total(xs):
    return sum(len(x) + x[len(x) // 2] for x in xs)


def wave_side(n):
    s = math.isqrt(n)
    return max(s, 1)


def build(shape, n):
    """Returns (dsk, key to request, number of tasks)."""
    if shape == "chain":
        dsk = {"chain-0": (noop,)}
        for i in range(1, n):
            dsk[f"chain-{i}"] = (noop, f"chain-{i - 1}")
        return dsk, f"chain-{n - 1}", n
    if shape == "independent":
        keys = [f"ind-{i}" for i in range(n)]
        dsk = {k: (noop,) for k in keys}
        dsk["sink"] = (sink, keys)
        return dsk, "sink", n + 1
    if shape.startswith("move-"):
        size = 1 << 20 if shape == "move-1m" else 1 << 10
        keys = [f"blob-{i}" for i in range(n)]
        dsk = {k: (blob, size) for k in keys}
        dsk["total"] = (total, keys)
        return dsk, "total", n + 1
    if shape == "tree":
        level = [f"leaf-{i}" for i in range(n)]
        dsk = {k: (noop,) for k in level}
        depth = 0
        while len(level) > 1:
            depth += 1
            nxt = []
            for i in range(0, len(level) - 1, 2):
                k = f"sum-{depth}-{i // 2}"
                dsk[k] = (noop, level[i], level[i + 1])
                nxt.append(k)
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return dsk, level[0], len(dsk)
    if shape == "wavefront":
        side = wave_side(n)
        dsk = {}
        for i in range(side):
            for j in range(side):
                args = []
                if j > 0:
                    args.append(f"wave-{i}-{j - 1}")
                if i > 0:
                    args.append(f"wave-{i - 1}-{j}")
                dsk[f"wave-{i}-{j}"] = (noop, *args)
        return dsk, f"wave-{side - 1}-{side - 1}", side * side
    if shape == "pipeline":
        files = max(n // 3, 1)
        groups = (files + GROUP - 1) // GROUP
        dsk = {}
        stores = []
        for g in range(groups):
            cleaned = []
            for i in range(g * GROUP, min(files, (g + 1) * GROUP)):
                dsk[f"load-{i}"] = (noop, i)
                dsk[f"clean-{i}"] = (noop, f"load-{i}")
                cleaned.append(f"clean-{i}")
            dsk[f"analyze-{g}"] = (apply, analyze, [cleaned], {"method": "mean"})
            dsk[f"store-{g}"] = (apply, store, [f"analyze-{g}"], {"to": "results"})
            stores.append(f"store-{g}")
        dsk["pipeline"] = (sink, stores)
        return dsk, "pipeline", 2 * files + 2 * groups + 1
    raise SystemExit(f"unknown shape {shape}")


class PeakHeld(Callback):
    """The most results in the scheduler's cache (state["cache"]) at once.

    peak: the cache's size in posttask, i.e. after the finished task's result was stored and
    the inputs it was the last consumer of were released -- the same definition as daskr's
    peak_held (daskr adds the result and subtracts the released inputs in one step).
    peak_transient: also counts, for that instant, the inputs this completion released (an
    input missing from the cache in posttask was released just now: its last consumer was
    this task), i.e. the cache's size between Dask storing the result and releasing them."""

    def __init__(self):
        super().__init__()
        self.peak = 0
        self.peak_transient = 0

    def _start_state(self, dsk, state):
        self.peak = max(self.peak, len(state["cache"]))
        self.peak_transient = max(self.peak_transient, self.peak)

    def _posttask(self, key, result, dsk, state, worker_id):
        cache = state["cache"]
        held = len(cache)
        if held > self.peak:
            self.peak = held
        released_now = sum(1 for d in state["dependencies"][key] if d not in cache)
        if held + released_now > self.peak_transient:
            self.peak_transient = held + released_now


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else 0.5 * (xs[m - 1] + xs[m])


def process_pool(workers):
    """A process pool like the one dask.multiprocessing.get makes, warmed up."""
    import concurrent.futures

    from dask.multiprocessing import get_context

    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=get_context())
    list(pool.map(abs, range(4 * workers)))
    return pool


def main(argv):
    as_json = False
    rounds = int(os.environ.get("ROUNDS", "5"))
    scheduler = "threads"
    pos = []
    it = iter(argv)
    for a in it:
        if a == "--json":
            as_json = True
        elif a == "--rounds":
            rounds = int(next(it))
        elif a == "--scheduler":
            scheduler = next(it)
            if scheduler not in ("threads", "processes"):
                raise SystemExit(f"unknown scheduler {scheduler}")
        elif a.startswith("-"):
            raise SystemExit(__doc__)
        else:
            pos.append(a)
    n = int(pos[0]) if pos else 20000
    threads = int(pos[1]) if len(pos) > 1 else 0
    threads = threads if threads > 0 else len(os.sched_getaffinity(0))
    shapes = pos[2:] or ["independent", "chain", "tree", "wavefront", "pipeline"]
    rounds = max(rounds, 1)
    system = "dask-threaded"
    pool = None
    get = lambda dsk, key: threaded_get(dsk, key, num_workers=threads)  # noqa: E731
    if scheduler == "processes":
        import dask.multiprocessing

        system = "dask-multiprocessing"
        pool = process_pool(threads)
        get = lambda dsk, key: dask.multiprocessing.get(dsk, key, num_workers=threads, pool=pool)  # noqa: E731
    for shape in shapes:
        try:
            measure(shape, n, threads, rounds, system, get, as_json)
        except Exception as e:  # noqa: BLE001 -- reported as a row, the harness decides
            row = {"system": system, "shape": shape, "threads": threads, "n": n,
                   "error": f"{type(e).__name__}: {str(e)[:200]}", "dask_version": dask.__version__}
            if as_json:
                print(json.dumps(row), flush=True)
            else:
                print(f"{system:<9} {shape:<12} FAILED: {row['error']}", flush=True)
    if pool is not None:
        pool.shutdown(wait=True)


def measure(shape, n, threads, rounds, system, get, as_json):
    """Times `rounds` builds and gets of one shape and prints its row."""
    build_s, run_s, total_s, free_s = [], [], [], []
    rss0 = rss1 = None
    tasks = 0
    for r in range(rounds):
        before = rss()
        t0 = time.perf_counter()
        dsk, key, tasks = build(shape, n)
        t1 = time.perf_counter()
        out = get(dsk, key)
        t2 = time.perf_counter()
        after = rss()
        t3 = time.perf_counter()
        del dsk, out
        t4 = time.perf_counter()
        if r == 0:
            rss0, rss1 = before, after
        build_s.append(t1 - t0)
        run_s.append(t2 - t1)
        total_s.append(t2 - t0)
        free_s.append(t4 - t3)
    cb = PeakHeld()  # keeps the maximum over PEAK_RUNS untimed runs
    for _ in range(PEAK_RUNS if system == "dask-threaded" else 0):
        dsk, key, _ = build(shape, n)
        with cb:
            threaded_get(dsk, key, num_workers=threads)
        del dsk
    measured = system == "dask-threaded"
    row = {
        "system": system,
        "shape": shape,
        "threads": threads,
        "tasks": tasks,
        "build_s": median(build_s),
        "run_s": median(run_s),
        "ns_per_task": median(total_s) * 1e9 / tasks,
        "peak_held": cb.peak if measured else None,
        "peak_held_transient": cb.peak_transient if measured else None,
        "peak_runs": PEAK_RUNS if measured else 0,
        "bytes_per_task": round((rss1 - rss0) / tasks, 1),
        "free_s": median(free_s),
        "rounds": rounds,
        "n": n,
        "dask_version": dask.__version__,
    }
    if as_json:
        print(json.dumps(row), flush=True)
    else:
        print(
            f"{system:<9} {shape:<12} tasks={tasks} threads={threads} "
            f"build+run={row['ns_per_task']:.0f} ns/task (build {row['build_s'] * 1e9 / tasks:.0f}, "
            f"run {row['run_s'] * 1e9 / tasks:.0f}) peak_held={cb.peak} "
            f"rss={row['bytes_per_task']:.0f} B/task",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
