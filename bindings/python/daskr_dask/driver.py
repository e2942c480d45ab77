"""The Dask driver: runs daskr jobs on a Dask cluster through `distributed.Client`.

Two ways in:
- `run_job(client, job)`: from Python, with a Client of your own (this package's `run_file`
  uses it);
- `python -m daskr_dask.driver ADDRESS`: the process daskr's `distributed` scheduler starts.
  It speaks frames on stdin/stdout (docs/wire-format.md, "The driver protocol"): hello (the
  cluster's size) once connected and on each query; for each job, a `D` frame per partition
  run, then the requested outputs (`R`) or an error (`E`). A cancel frame during a job cancels
  it. It exits when stdin closes.

Each job is one Dask graph: a Dask task per partition, keyed `daskr-<uuid>-<i>` (a namespace
per job: Dask keys are cluster-wide identities), calling `daskr_dask.worker.run_partition`
with the upstream partitions' outputs; Dask moves them between workers, and retries a task
whose worker died (the scheduler's `distributed.scheduler.allowed-failures`). Only the
partitions holding requested outputs are gathered, through a small `pick` task when they also
hold outputs the caller does not need.
"""

import logging
import os
import sys
import threading
import uuid

from . import _wire, worker
from ._lib import DaskrError

PROTOCOL_VERSION = 2


def cluster_size(client):
    """(worker threads in all, workers)."""
    info = client.scheduler_info(n_workers=-1)
    workers = info.get("workers", {})
    return sum(int(w.get("nthreads", 1)) for w in workers.values()), len(workers)


class Job:
    """One job in progress; `cancel()` may be called from another thread."""

    def __init__(self, client):
        self.client = client
        self.lock = threading.Lock()
        self.pending = {}
        self.cancelled = False

    def cancel(self):
        with self.lock:
            self.cancelled = True
            futures = list(self.pending.values())
        if futures:
            self.client.cancel(futures)


def run_job(client, job, on_done=None, state=None, retries=0):
    """Runs a job (bytes from `daskr_graph_encode_job`) on `client`'s cluster. Calls
    `on_done(i)` as partition i finishes; a partition that fails runs again up to `retries`
    more times (Dask's own `retries=`). Returns the requested outputs, encoded values in
    request order; raises DaskrError."""
    from distributed import as_completed

    try:
        from distributed import KilledWorker
    except ImportError:  # pragma: no cover
        from distributed.scheduler import KilledWorker

    parts, wanted = _wire.parse_job(job)
    state = state or Job(client)
    if not wanted:
        return []
    ns = f"daskr-{uuid.uuid4().hex}"
    keys = [f"{ns}-{i}" for i in range(len(parts))]
    dsk = {}
    for i, p in enumerate(parts):
        dsk[keys[i]] = (worker.run_partition, p.record, [keys[d] for d in p.deps])
    # What to gather: a partition whose outputs are all wanted as is; the wanted outputs of
    # the others through a pick task.
    by_part = {}
    for j, k in wanted:
        by_part.setdefault(j, set()).add(k)
    fetch = {}  # partition -> (dask key, sorted outputs or None for all)
    for j, ks in by_part.items():
        if len(ks) == parts[j].noutputs:
            fetch[j] = (keys[j], None)
        else:
            outs = sorted(ks)
            blob = bytearray()
            _wire.put_varint(blob, len(outs))
            for k in outs:
                _wire.put_varint(blob, k)
            pk = f"{ns}-pick-{j}"
            dsk[pk] = (worker.pick, keys[j], bytes(blob))
            fetch[j] = (pk, outs)
    index = {k: i for i, k in enumerate(keys)}
    fetch_keys = {fk for fk, _ in fetch.values()}
    asked = keys + [fk for fk, _ in fetch.values() if fk not in index]
    futures = client.get(dsk, asked, sync=False, retries=retries or None)
    with state.lock:
        state.pending = {f.key: f for f in futures}
        cancelled = state.cancelled
    if cancelled:
        state.cancel()
    kept = {}
    error = None
    seq = as_completed(futures, loop=client.loop)
    del futures
    for fut in seq:
        key = fut.key
        with state.lock:
            state.pending.pop(key, None)
        i = index.get(key)
        if fut.status != "finished":
            error = _error_of(fut, parts, i if i is not None else _pick_part(key), state, KilledWorker)
            break
        if i is not None and on_done is not None:
            on_done(i)
        if key in fetch_keys:
            kept[key] = fut
        else:
            fut.release()
        del fut
    if error is not None:
        with state.lock:
            rest = list(state.pending.values())
            state.pending = {}
        # Released, not cancelled: the cluster forgets them and stops their tasks all the
        # same, but `Client.cancel` also makes the scheduler broadcast `cancelled-keys` to every
        # client of the cluster, and a client connecting at that moment fails its handshake
        # (distributed asserts that its first message is `stream-start` alone).
        for f in rest:
            f.release()
        for f in kept.values():
            f.release()
        raise error
    data = dict(zip(kept.keys(), client.gather(list(kept.values()))))
    for f in kept.values():
        f.release()
    tables = {fk: _wire.split_outputs(data[fk]) for fk in data}
    out = []
    for j, k in wanted:
        fk, outs = fetch[j]
        at = k if outs is None else outs.index(k)
        off, ln = tables[fk][at]
        out.append(data[fk][off:off + ln])
    return out


def _pick_part(key):
    return int(key.rsplit("-", 1)[1])


def _error_of(fut, parts, i, state, KilledWorker):
    p = parts[i]
    where = f"'{p.first_key}'" if p.first_key == p.last_key else f"'{p.first_key}' .. '{p.last_key}'"
    if fut.status == "cancelled" or state.cancelled:
        if state.cancelled:
            return DaskrError("cancelled", None, [], "the get was cancelled")
        return DaskrError("worker_died", p.first_key, [p.first_key, p.last_key],
                          f"the Dask cluster cancelled the partition of keys {where}")
    exc = fut.exception()
    if isinstance(exc, DaskrError):
        return exc
    if isinstance(exc, KilledWorker):
        return DaskrError(
            "worker_died", p.first_key, [p.first_key, p.last_key],
            f"Dask workers kept dying while running the partition of keys {where} "
            f"({p.computed} tasks), so Dask gave up on it: {exc}")
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ImportError) or "deserializ" in text:
        return DaskrError(
            "invalid_argument", p.first_key, [p.first_key, p.last_key],
            f"the Dask cluster cannot run daskr's partitions ({text}): every worker (and the "
            "scheduler) needs the daskr_dask package (pip install -e bindings/python from "
            "daskr's checkout) in the Python it runs")
    return DaskrError("task_failed", p.first_key, [p.first_key, p.last_key],
                      f"the partition of keys {where} failed on the Dask cluster: "
                      f"{type(exc).__name__}: {exc}")


# ---- the driver process ----------------------------------------------------------------------


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m daskr_dask.driver tcp://HOST:PORT", file=sys.stderr)
        return 2
    address = argv[0]
    # Frames go to the real stdout; anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    write_lock = threading.Lock()

    def send(tag, payload=b""):
        with write_lock:
            out.write(_wire.frame(tag, payload))

    def send_error(kind, key, keys, message):
        b = bytearray()
        _wire.put_error(b, kind, key, keys, message)
        send(b"E", bytes(b))

    logging.getLogger("distributed").setLevel(logging.ERROR)
    try:
        from distributed import Client
    except ImportError as e:
        send_error("invalid_argument", None, [],
                   f"the Dask driver's Python ({sys.executable}) cannot import distributed ({e}): "
                   "pip install distributed")
        return 1
    timeout = os.environ.get("DASKR_CONNECT_TIMEOUT", "30s")
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as e:
        send_error("invalid_argument", None, [],
                   f"cannot connect to the Dask scheduler at {address}: {type(e).__name__}: {e}")
        return 1

    def hello():
        threads, workers = cluster_size(client)
        b = bytearray()
        _wire.put_varint(b, PROTOCOL_VERSION)
        _wire.put_varint(b, threads)
        _wire.put_varint(b, workers)
        send(b"H", bytes(b))

    def run(payload, state):
        retries, at = _wire.read_varint(payload, 0)
        job_bytes = payload[at:]

        def done(i):
            b = bytearray()
            _wire.put_varint(b, i)
            send(b"D", bytes(b))

        try:
            outputs = run_job(client, job_bytes, done, state, retries)
        except DaskrError as e:
            send_error(e.kind, e.key, e.keys, e.message)
            return
        except Exception as e:
            send_error("internal", None, [], f"the Dask driver failed: {type(e).__name__}: {e}")
            return
        b = bytearray()
        _wire.put_varint(b, len(outputs))
        for o in outputs:
            _wire.put_bytes(b, o)
        send(b"R", bytes(b))

    try:
        hello()
        state = None
        thread = None
        while True:
            f = _wire.read_frame(inp)
            if f is None:
                break
            tag, payload = f
            if tag == b"Q":
                hello()
            elif tag == b"J":
                state = Job(client)
                thread = threading.Thread(target=run, args=(payload, state), daemon=True)
                thread.start()
            elif tag == b"C":
                if state is not None:
                    state.cancel()
            else:
                send_error("internal", None, [], f"the Dask driver got an unknown frame {tag!r}")
                break
        if state is not None:
            state.cancel()
    finally:
        try:
            client.close(timeout=5)
        except Exception:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
