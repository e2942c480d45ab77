"""A local Dask cluster of separate processes — a scheduler and workers on 127.0.0.1, each its
own `dask scheduler` / `dask worker` process, started and stopped by PID — for trying daskr's
distributed scheduler, its tests and its benchmark.

    python -m daskr_dask local [--workers 2] [--threads 1] [--port P]  # prints the address;
                                                                        # Ctrl-C or SIGTERM stops

From Python: `with LocalProcesses(workers=2) as cluster: ... cluster.address ...`.
Every process is stopped by its PID when the block ends (also on errors); as a safety net the
scheduler exits after 10 idle minutes and workers exit 60 s after losing their scheduler.
"""

import os
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalProcesses:
    def __init__(self, workers=2, threads=1, env=None, scheduler_env=None, log_dir=None,
                 nanny=True, python=None, port=None):
        self.nworkers = workers
        self.threads = threads
        self.env = dict(os.environ, **(env or {}))
        self.scheduler_env = dict(self.env, **(scheduler_env or {}))
        self.log_dir = log_dir
        self.nanny = nanny
        self.python = python or sys.executable
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler = None
        self.workers = []
        self._logs = []

    def _log(self, name):
        if not self.log_dir:
            return subprocess.DEVNULL
        os.makedirs(self.log_dir, exist_ok=True)
        f = open(os.path.join(self.log_dir, name + ".log"), "ab")
        self._logs.append(f)
        return f

    def start(self, timeout=120):
        try:
            self.scheduler = subprocess.Popen(
                [self.python, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                 "--port", str(self.port), "--no-dashboard", "--idle-timeout", "600"],
                env=self.scheduler_env, stdin=subprocess.DEVNULL, stdout=self._log("scheduler"),
                stderr=subprocess.STDOUT)
            for i in range(self.nworkers):
                self.add_worker(f"worker-{i}")
            self.wait(self.nworkers, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(self, name):
        p = subprocess.Popen(
            [self.python, "-m", "distributed.cli.dask_worker", self.address, "--nthreads",
             str(self.threads), "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60",
             "--name", name, "--nanny" if self.nanny else "--no-nanny"],
            env=self.env, stdin=subprocess.DEVNULL, stdout=self._log(name), stderr=subprocess.STDOUT)
        self.workers.append(p)
        return p

    def wait(self, n, timeout=120):
        """Waits until n workers are connected and running.

        It asks the scheduler's `identity` over a plain RPC, not through a `Client`: a Client's
        handshake (distributed's `Client._ensure_connected`) asserts that the first batch the
        scheduler sends it is `stream-start` alone, and messages the scheduler broadcasts to
        every client at that moment — `cancelled-keys` when some other client cancels futures,
        as a get that failed just did — land in the same batch and fail it with an
        AssertionError."""
        import asyncio

        from distributed.core import rpc

        async def running():
            r = rpc(self.address, timeout=5)
            try:
                info = await r.identity()
            finally:
                await r.close_rpc()
            return sum(1 for w in info["workers"].values() if w.get("status", "running") == "running")

        deadline = time.time() + timeout
        while True:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"the Dask scheduler exited with status {self.scheduler.returncode}")
            try:
                have = asyncio.run(running())
            except (OSError, asyncio.TimeoutError):
                have = None  # the scheduler is not listening yet
            if have is not None and have >= n:
                return
            if time.time() > deadline:
                raise TimeoutError(f"{have or 0} of {n} Dask workers running after {timeout} s")
            time.sleep(0.1)

    def worker_processes(self):
        """The PIDs of the processes that run tasks: with nannies, each nanny's worker child."""
        if not self.nanny:
            return [w.pid for w in self.workers if w.poll() is None]
        pids = []
        for w in self.workers:
            for c in _children(w.pid):
                try:
                    with open(f"/proc/{c}/cmdline", "rb") as f:
                        if b"spawn_main" in f.read():
                            pids.append(c)
                except OSError:
                    pass
        return pids

    def stop(self):
        procs = [w for w in self.workers] + ([self.scheduler] if self.scheduler else [])
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for p in procs:
            try:
                p.wait(timeout=max(deadline - time.time(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        # whatever is left, and nannies' worker children orphaned by a kill, by PID
        for p in procs:
            if p.poll() is None:
                _kill_tree(p.pid)
                p.wait()
        for f in self._logs:
            f.close()
        self._logs = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _children(pid):
    """The child processes of `pid` (started by any of its threads)."""
    out = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in threads:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _kill_tree(pid):
    for c in _children(pid):
        _kill_tree(c)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _interrupt(*_):
    raise KeyboardInterrupt


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(prog="python -m daskr_dask local")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--port", type=int, help="the scheduler's port [default: a free one]")
    args = ap.parse_args(argv)
    # SIGTERM stops it as Ctrl-C does: the workers and the scheduler are stopped first
    signal.signal(signal.SIGTERM, _interrupt)
    with LocalProcesses(args.workers, args.threads, port=args.port) as c:
        print(f"Dask scheduler at {c.address} with {args.workers} workers of {args.threads} "
              f"thread(s); try:\n  daskr run GRAPH.json --scheduler distributed --address {c.address}\n"
              "Ctrl-C stops it.", flush=True)
        try:
            while c.scheduler.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0
