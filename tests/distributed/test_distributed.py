"""daskr's distributed scheduler on a live local Dask cluster (see conftest.py): the same
results as the threads scheduler through `daskr run`, the C ABI and the Python package;
errors (a failing task, a function-pointer task, a plugin missing on the workers, a task that
keeps killing workers); a worker killed mid-run, one killed mid-partition and one killed while
sending a result, with another get beside it; plugins found through DASKR_PLUGIN_PATH."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import DASKR, EXAMPLE, PLUGIN_DIR, ROOT, WORK, compile_c

import daskr_dask
from daskr_dask import DaskrError


def daskr_run(path, *args, timeout=300):
    r = subprocess.run([DASKR, "run", path, *args], cwd=ROOT, text=True, capture_output=True,
                       timeout=timeout)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr


def on_cluster(cluster, path, *args):
    return daskr_run(path, "--scheduler", "distributed", "--address", cluster.address, *args)


def write_graph(name, graph, keys, plugins=None):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        json.dump({"plugins": plugins or {"ex": EXAMPLE}, "graph": graph, "keys": keys}, f)
    return path


def random_graph(seed, n):
    """A random DAG of the example plugin's tasks: literals (ints, floats, strings, null,
    bytes), aliases, lists, inline tasks, kwargs, chains and fan-ins. Values are simulated
    while generating, so that no sum grows past int64."""
    rng = random.Random(seed)
    graph, value, ints, lists, strs = {}, {}, [], [], []

    def pick(pool, window=40):
        return pool[-window:][rng.randrange(min(len(pool), window))] if rng.random() < 0.8 else rng.choice(pool)

    for i in range(n):
        k = f"k{i}" if rng.random() < 0.9 else f"('k', {i})"
        r = rng.random()
        if len(ints) < 3 or r < 0.08:
            v = rng.randrange(-50, 50)
            graph[k], value[k] = v, v
            ints.append(k)
        elif r < 0.12:
            t = pick(ints)
            graph[k], value[k] = {"ref": t}, value[t]
            ints.append(k)
        elif r < 0.17:
            items = [pick(ints) for _ in range(rng.randrange(1, 5))]
            graph[k] = items + [2.5] if rng.random() < 0.3 else items
            value[k] = [value[x] for x in items] + ([2.5] if len(graph[k]) > len(items) else [])
            lists.append(k)
        elif r < 0.2:
            s = f"w{i}" if rng.random() < 0.5 else None
            graph[k] = {"lit": f"text-{i}"} if s else {"fn": "ex:concat", "args": [pick(strs) if strs else "x-", "-y"]}
            value[k] = f"text-{i}" if s else (value[graph[k]["args"][0]] if strs else "x-") + "-y"
            strs.append(k)
        elif r < 0.45:
            a = pick(ints)
            graph[k], value[k] = {"fn": "ex:inc", "args": [a]}, value[a] + 1
            ints.append(k)
        elif r < 0.55 and lists:
            lk = pick(lists)
            graph[k], value[k] = {"fn": "ex:sum", "args": [lk]}, sum(value[lk])
            if isinstance(value[k], int):  # a float sum is only read by the request
                ints.append(k)
        elif r < 0.6:
            a = pick(ints)
            graph[k], value[k] = {"fn": "ex:identity", "args": [a]}, value[a]
            ints.append(k)
        else:
            args = [pick(ints) for _ in range(rng.randrange(1, 4))]
            total = sum(value[a] for a in args)
            comp_args = list(args)
            if rng.random() < 0.3:
                inner = pick(ints)
                comp_args.append({"fn": "ex:inc", "args": [inner]})
                total += value[inner] + 1
            scale = 1 if abs(total) < 1e9 and rng.random() < 0.7 else 0
            graph[k] = {"fn": "ex:add", "args": comp_args, "kwargs": {"scale": scale}}
            value[k] = total * scale
            ints.append(k)
    graph["extras"] = [None, True, {"bytes": "aGVsbG8="}, {"lit": "k0"}, "plain text"]
    names = list(graph)
    keys = [names[-2], [rng.choice(names) for _ in range(3)], "extras", names[len(names) // 2]]
    return graph, keys


# ---- same results as threads ------------------------------------------------------------------


def test_pipeline_same_as_threads(cluster):
    path = os.path.join(ROOT, "examples", "pipeline.json")
    want = daskr_run(path, "--scheduler", "threads")
    got = on_cluster(cluster, path)
    assert got[0] == 0, got[2]
    assert got[1] == want[1] == ["19 readings from 3 files, mean 87.31", 56]
    got = on_cluster(cluster, path, "--keys", "clean-2", "--keys", "analyze", "--keys", "clean-2")
    assert got[1] == daskr_run(path, "--keys", "clean-2", "--keys", "analyze", "--keys", "clean-2")[1]


def test_a_result_cache_on_a_shared_directory_reruns_only_what_changed(cluster):
    # The workers run on this machine: the directory is shared as a network filesystem
    # would share it, at the same path everywhere.
    cache = os.path.join(WORK, "cache")
    shutil.rmtree(cache, ignore_errors=True)
    with open(os.path.join(ROOT, "examples", "pipeline.json")) as f:
        text = f.read().replace("../target/plugins/libexample.so", EXAMPLE)

    def run(rename):
        path = os.path.join(WORK, "pipeline-cached.json")
        with open(path, "w") as f:
            f.write(text.replace("myfile.a.data", rename))
        stats = os.path.join(WORK, "cache-stats.json")
        code, out, err = on_cluster(cluster, path, "--cache", cache, "--stats-json", stats)
        assert code == 0, err
        assert out == daskr_run(path, "--scheduler", "threads")[1]
        with open(stats) as f:
            s = json.load(f)
        return s["entries_run"], s["cache"]

    def entries():
        r = subprocess.run([DASKR, "cache", "stats", "--json", cache], capture_output=True, text=True)
        return json.loads(r.stdout)

    ran, c = run("myfile.a.data")
    assert (ran, c["hits"], c["misses"]) == (8, 0, 8)
    # The workers wrote every result, under the get's name, where the caller counts them.
    assert entries()["entries"] == 8 and c["bytes_written"] == entries()["bytes"] > 0
    ran, c = run("myfile.a.data")
    assert (ran, c["hits"], c["skipped"]) == (0, 2, 6)
    # One input renamed: its load and clean, then analyze and store run on the cluster; the
    # two other cleaned files are read here and sent to the workers.
    ran, c = run("myfile.z.data")
    assert (ran, c["hits"], c["misses"], c["skipped"]) == (4, 2, 4, 2)
    assert entries()["entries"] == 12


@pytest.mark.parametrize("seed,n", [(1, 200), (2, 3000), (3, 12000)])
def test_random_graphs_same_as_threads(cluster, seed, n):
    graph, keys = random_graph(seed, n)
    path = write_graph(f"random-{seed}.json", graph, keys)
    want = daskr_run(path, "--scheduler", "threads")
    assert want[0] == 0, want[2]
    got = on_cluster(cluster, path, "--progress", "--stats")
    assert got[0] == 0, got[2]
    assert got[1] == want[1]


def test_c_abi(cluster):
    exe = compile_c(os.path.join(ROOT, "tests", "distributed", "distributed_abi.c"),
                    os.path.join(WORK, "distributed_abi"))
    r = subprocess.run([exe, cluster.address, EXAMPLE, os.path.join(ROOT, "examples", "pipeline.json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "distributed_abi: ok" in r.stdout


def test_python_package_runs_a_graph_file(cluster):
    path = os.path.join(ROOT, "examples", "pipeline.json")
    assert daskr_dask.run_file(path, address=cluster.address) == ["19 readings from 3 files, mean 87.31", 56]
    from distributed import Client

    graph, keys = random_graph(7, 2000)
    gpath = write_graph("random-python.json", graph, keys)
    want = daskr_run(gpath)[1]
    with Client(cluster.address, set_as_default=False) as client:
        got = daskr_dask.run_file(gpath, client=client)
        # bytes come back as bytes in Python, as {"bytes": ...} from daskr run
        assert got[2][2] == b"hello"
        got[2][2] = {"bytes": "aGVsbG8="}
        assert got == want
        k = list(graph)[5]
        one = daskr_run(gpath, "--keys", k)[1]
        assert daskr_dask.run_file(gpath, keys=[k, [k]], client=client) == [one, [one]]
        assert daskr_dask.run_file(gpath, keys=k, client=client) == one
    # the command-line form
    r = subprocess.run([sys.executable, "-m", "daskr_dask", "run", path, "--address", cluster.address,
                        "--keys", "analyze"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == "19 readings from 3 files, mean 87.31"


def test_maps_cross_the_cluster_and_come_back_as_dicts(cluster):
    graph = {
        "clean-a": {"fn": "ex:clean", "args": [{"fn": "ex:load", "args": ["a.csv"]}]},
        "rec-a": {"fn": "ex:record", "args": ["a.csv", "clean-a"]},
        "rec-b": {"fn": "ex:record", "args": ["b.csv", {"fn": "ex:load", "args": ["b.csv"]}]},
        "means": {"fn": "ex:means", "args": [["rec-a", "rec-b"]]},
        "summary": {"map": {"z": "means", "a": "rec-a", "lit": {"lit": {"map": {"bytes": 1}}},
                            "wrapped": {"lit": {"map": {"ref": "rec-a"}}}}},
    }
    path = write_graph("maps.json", graph, ["summary", "rec-b"])
    want = daskr_run(path, "--scheduler", "threads")
    assert want[0] == 0, want[2]
    got = on_cluster(cluster, path)
    assert got[0] == 0, got[2]
    assert got[1] == want[1]
    # Printed in the map's order, wrapped where a map could be read as another form.
    assert list(got[1][0]) == ["z", "a", "lit", "wrapped"]
    assert got[1][0]["wrapped"] == {"map": {"ref": "rec-a"}}
    assert got[1][0]["lit"] == {"map": {"bytes": 1}}
    # Through the Python package a map is a dict, in its order.
    summary, rec_b = daskr_dask.run_file(path, address=cluster.address)
    assert list(summary) == ["z", "a", "lit", "wrapped"]
    assert summary["wrapped"] == {"ref": "rec-a"} and summary["lit"] == {"bytes": 1}
    assert summary["a"]["file"] == "a.csv" and summary["z"]["b.csv"] == rec_b["mean"]
    assert daskr_dask._wire.decode_value(daskr_dask._wire.encode_value(summary)) == summary
    with pytest.raises(TypeError, match="names are strings"):
        daskr_dask._wire.encode_value({1: "x"})


def test_concurrent_gets_have_their_own_keys(cluster):
    graph, keys = random_graph(11, 3000)
    path = write_graph("concurrent.json", graph, keys)
    want = daskr_run(path)[1]
    cmd = [DASKR, "run", path, "--scheduler", "distributed", "--address", cluster.address]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert json.loads(out) == want


# ---- errors -----------------------------------------------------------------------------------


def test_failing_task_is_task_failed_with_its_key(cluster):
    graph = {"x": 1, "y": {"fn": "ex:inc", "args": ["x"]},
             "bad": {"fn": "ex:fail", "args": ["the disk is full"]},
             "z": {"fn": "ex:add", "args": ["y", "bad"]}}
    path = write_graph("fail.json", graph, ["z", "y"])
    want = daskr_run(path)
    code, out, err = on_cluster(cluster, path)
    assert code == 1 and out == want[1]
    assert out["error"]["kind"] == "task_failed" and out["error"]["key"] == "bad"
    assert "the disk is full" in out["error"]["message"]
    with pytest.raises(DaskrError) as e:
        daskr_dask.run_file(path, address=cluster.address)
    assert (e.value.kind, e.value.key) == ("task_failed", "bad")


def test_retries_rerun_a_failing_task_through_dask(cluster):
    # --retries is Dask's own retries=: the failed task's partition runs again.
    crashy = compile_c(os.path.join(ROOT, "tests", "plugins", "crashy.c"),
                       os.path.join(WORK, "libcrashy.so"), shared=True)
    count = os.path.join(WORK, "fail-times-count")
    path = write_graph("retries.json", {"r": {"fn": "c:fail_times", "args": [count, 2, 5]}}, "r",
                       {"c": crashy})
    for retries, want in [("2", 5), ("1", None)]:
        if os.path.exists(count):
            os.remove(count)
        code, out, err = on_cluster(cluster, path, "--retries", retries)
        if want is not None:
            assert code == 0 and out == want, err
            assert os.path.getsize(count) == 3  # two failures, then the answer
        else:
            assert code == 1, err
            assert (out["error"]["kind"], out["error"]["key"]) == ("task_failed", "r")
            assert "failure 2" in out["error"]["message"]
    # A task timeout is not daskr's to enforce on a Dask worker: refused, never ignored.
    code, _, err = on_cluster(cluster, path, "--timeout", "5")
    assert code == 2 and "--timeout" in err and "distributed" in err


def test_errors_found_before_the_cluster(cluster):
    path = write_graph("cycle.json", {"a": {"fn": "ex:inc", "args": ["b"]}, "b": {"fn": "ex:inc", "args": ["a"]}}, "a")
    code, out, _ = on_cluster(cluster, path)
    assert code == 1 and out["error"]["kind"] == "cycle"
    code, out, _ = on_cluster(cluster, path, "--keys", "nope")
    assert code == 1 and out["error"]["kind"] == "missing_key"
    pipeline = os.path.join(ROOT, "examples", "pipeline.json")
    code, out, _ = daskr_run(pipeline, "--scheduler", "distributed")  # no --address, no DASKR_ADDRESS
    assert code == 1 and out["error"]["kind"] == "invalid_argument"
    assert "DASKR_ADDRESS" in out["error"]["message"]


def test_plugin_missing_on_the_workers_names_worker_and_path(cluster):
    gone = os.path.join(WORK, "gone", "libexample_gone.so")
    os.makedirs(os.path.dirname(gone), exist_ok=True)
    shutil.copy(EXAMPLE, gone)
    path = write_graph("gone.json", {"x": 1, "y": {"fn": "g:inc", "args": ["x"]}}, "y", {"g": gone})
    job, _ = daskr_dask.encode_job(path, threads=2)  # loads the plugin here, then it goes away
    os.remove(gone)
    from distributed import Client

    with Client(cluster.address, set_as_default=False) as client:
        with pytest.raises(DaskrError) as e:
            daskr_dask.run_job(client, job)
    assert e.value.kind == "plugin"
    assert "on Dask worker tcp://127.0.0.1:" in e.value.message
    assert gone in e.value.message


def test_plugins_found_on_workers_through_the_plugin_path(cluster):
    elsewhere = os.path.join(WORK, "elsewhere", "libexample_pp.so")
    os.makedirs(os.path.dirname(elsewhere), exist_ok=True)
    shutil.copy(EXAMPLE, elsewhere)
    shutil.copy(EXAMPLE, os.path.join(PLUGIN_DIR, "libexample_pp.so"))
    path = write_graph("pp.json", {"x": 1, "y": {"fn": "p:inc", "args": ["x"]}}, "y", {"p": elsewhere})
    job, _ = daskr_dask.encode_job(path, threads=2)
    os.remove(elsewhere)
    from distributed import Client

    with Client(cluster.address, set_as_default=False) as client:
        out = daskr_dask.run_job(client, job)
    assert [daskr_dask._wire.decode_value(o) for o in out] == [2]


# ---- workers dying ----------------------------------------------------------------------------


def test_a_worker_killed_mid_run_is_recovered(cluster):
    n = 16
    graph = {f"nap-{i}": {"fn": "ex:sleep_ms", "args": [400], "kwargs": {"value": i}} for i in range(n)}
    graph["total"] = {"fn": "ex:sum", "args": [[f"nap-{i}" for i in range(n)]]}
    path = write_graph("kill.json", graph, "total")
    before = cluster.worker_processes()
    assert len(before) == 2
    run = subprocess.Popen([DASKR, "run", path, "--scheduler", "distributed", "--address", cluster.address],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        assert run.poll() is None, "the run ended before a worker could be killed"
        os.kill(before[0], signal.SIGKILL)
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, err
    assert json.loads(out) == sum(range(n))
    cluster.wait(2)  # the nanny restarts the worker


def start_naps_beside(cluster, name):
    """Starts, in another process, a get of 8 naps of 100 ms and their sum on `cluster`: work
    beside a test's own get, whose result (sum(range(8))) must come through whatever that
    test does to the cluster's workers."""
    naps = {f"nap-{i}": {"fn": "ex:sleep_ms", "args": [100], "kwargs": {"value": i}} for i in range(8)}
    naps["total"] = {"fn": "ex:sum", "args": [[f"nap-{i}" for i in range(8)]]}
    path = write_graph(name, naps, "total")
    return subprocess.Popen([DASKR, "run", path, "--scheduler", "distributed", "--address", cluster.address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def end_beside(other):
    """Kills the get beside if it is still running (a test that failed before it ended)."""
    if other.poll() is None:
        other.kill()
        other.wait()


def test_a_worker_killed_mid_partition_runs_it_again_and_other_gets_go_on(cluster):
    # A chain of 49 entries cut for 2 worker threads is 7 partitions of 7 (src/sched/partition.rs):
    # c24 is the fourth task of the partition c21..c27, so its worker dies with three of that
    # partition's tasks done and their results not sent anywhere. The kill is the task's own
    # (the first run only, a marker file), so it lands at the same point every time.
    crash = compile_c(os.path.join(ROOT, "tests", "distributed", "crash.c"),
                      os.path.join(WORK, "libcrash.so"), shared=True)
    marker = os.path.join(WORK, "crash-once.marker")
    if os.path.exists(marker):
        os.remove(marker)
    graph = {"c0": 0}
    for i in range(1, 49):
        graph[f"c{i}"] = {"fn": "ex:inc", "args": [f"c{i - 1}"]}
    graph["c24"] = {"fn": "c:crash_once", "args": ["c23", marker]}
    path = write_graph("crash-once.json", graph, "c48", {"ex": EXAMPLE, "c": crash})
    # Another get on the same cluster at the same time, from another process: its results
    # come through whichever worker dies.
    other = start_naps_beside(cluster, "beside-crash-once.json")
    try:
        code, out, err = on_cluster(cluster, path)
        other_out, other_err = other.communicate(timeout=300)
    finally:
        end_beside(other)
        cluster.wait(2, timeout=180)  # the nanny restarts the killed worker
    assert os.path.exists(marker), "crash_once never ran"
    # Dask ran the partition again from its start (allowed-failures is 1 here): the exact result.
    assert code == 0, err
    assert out == 48
    assert other.returncode == 0, other_err
    assert json.loads(other_out) == sum(range(8))


def test_a_worker_killed_while_sending_a_result_has_it_made_again(cluster):
    # `big` returns 16 MB; the first time, a thread of the worker that ran it SIGKILLs that
    # worker once one of its sockets carried 4 MB more (crash.c, die_sending): in the
    # middle of sending the result to the driver gathering it. Dask finds the result lost
    # with its worker and runs `big` again on a live one (the marker file: no kill this time).
    # The caller gets every result right; another get beside it is untouched; nothing hangs
    # (each run has a timeout, which fails the test).
    crash = compile_c(os.path.join(ROOT, "tests", "distributed", "crash.c"),
                      os.path.join(WORK, "libcrash.so"), shared=True)
    marker = os.path.join(WORK, "die-sending.marker")
    if os.path.exists(marker):
        os.remove(marker)
    n = 16 << 20
    graph = {"big": {"fn": "c:die_sending", "args": [n, marker]},
             "x": 41, "small": {"fn": "ex:inc", "args": ["x"]}}
    path = write_graph("die-sending.json", graph, ["big", "small"], {"ex": EXAMPLE, "c": crash})
    other = start_naps_beside(cluster, "beside-die-sending.json")
    try:
        code, out, err = daskr_run(path, "--scheduler", "distributed", "--address", cluster.address,
                                   timeout=240)
        other_out, other_err = other.communicate(timeout=240)
    finally:
        end_beside(other)
        cluster.wait(2, timeout=180)  # the nanny restarts the killed worker
    with open(marker) as f:
        note = f.read()
    assert note.startswith("killed after sending"), f"the worker was not killed sending: {note!r}"
    assert code == 0, err
    assert out[1] == 42
    assert len(out[0]) == n and out[0] == "x" * n
    assert other.returncode == 0, other_err
    assert json.loads(other_out) == sum(range(8))


def test_a_task_that_keeps_killing_workers_is_worker_died(cluster):
    crash = compile_c(os.path.join(ROOT, "tests", "distributed", "crash.c"),
                      os.path.join(WORK, "libcrash.so"), shared=True)
    graph = {"x": 1, "ok": {"fn": "ex:inc", "args": ["x"]}, "boom": {"fn": "c:crash"},
             "after": {"fn": "ex:add", "args": ["ok", "boom"]}}
    path = write_graph("crash.json", graph, "after", {"ex": EXAMPLE, "c": crash})
    try:
        code, out, err = on_cluster(cluster, path)
        assert code == 1, err
        assert out["error"]["kind"] == "worker_died"
        assert out["error"]["key"] in ("x", "ok", "boom")
        assert "kept dying" in out["error"]["message"]
    finally:
        cluster.wait(2, timeout=180)
    # the cluster (and this process's driver) still work afterwards
    code, out, _ = on_cluster(cluster, os.path.join(ROOT, "examples", "pipeline.json"))
    assert code == 0 and out[1] == 56


def test_waiting_for_workers_survives_other_clients_cancelling(cluster):
    # The cause of the flaky cleanup above: another client's Client.cancel makes the scheduler
    # broadcast `cancelled-keys` to every client, and a Client connecting at that moment fails
    # its handshake with an AssertionError (distributed's Client._ensure_connected). The wait
    # connects no Client; a failed daskr get no longer cancels (it releases).
    import threading

    from distributed import Client

    stop = threading.Event()
    errors = []

    def cancel_repeatedly(n):
        try:
            with Client(cluster.address, set_as_default=False) as c:
                i = 0
                while not stop.is_set():
                    c.cancel([c.submit(time.sleep, 0.01, key=f"cancelled-{n}-{i}-{j}") for j in range(5)])
                    i += 1
        except Exception as e:  # reported below: the test is about the waits
            errors.append(e)

    threads = [threading.Thread(target=cancel_repeatedly, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(60):
            cluster.wait(2, timeout=60)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
