"""What runs on the Dask workers: one daskr partition per Dask task, through libdaskr's
`daskr_partition_run` (ctypes). The partition's inputs are picked out of the upstream
partitions' output buffers (encoded values, moved here by Dask); its outputs go back to Dask
as one bytes buffer, which stays on this worker until a dependent or the caller needs it.
Plugins are loaded once per worker process (libdaskr caches them by path and symbol)."""

import ctypes
import os

from . import _lib, _wire
from ._lib import DaskrError


def _worker_address():
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:
        return "(not a Dask worker)"


def _partition_threads():
    """Threads for one partition: 1 unless DASKR_PARTITION_THREADS says otherwise. The job
    has several partitions per Dask worker thread, so Dask's own threads already keep every
    core busy; more threads per partition would oversubscribe the worker."""
    try:
        return max(int(os.environ.get("DASKR_PARTITION_THREADS", "1")), 1)
    except ValueError:
        return 1


def run_partition(record, deps):
    """Runs one partition record (docs/wire-format.md, "Jobs") given the output buffers of the
    partitions it depends on, in the record's order; returns its own output buffer."""
    try:
        lib = _lib.load()
    except DaskrError as e:
        raise DaskrError(e.kind, e.key, e.keys, f"on Dask worker {_worker_address()}: {e.message}") from None
    record = bytes(record)
    deps = [d if isinstance(d, bytes) else bytes(d) for d in deps]
    first, _last, _computed, _noutputs, dep_ids, at = _wire.parse_part_head(record)
    if len(dep_ids) != len(deps):
        raise DaskrError("internal", first, [], f"partition given {len(deps)} inputs for {len(dep_ids)} dependencies")
    inputs, at = _wire.parse_part_inputs(record, at)
    tables = [_wire.split_outputs(d) for d in deps]
    bases = [_lib.address_of(d) for d in deps]
    n = len(inputs)
    ptrs = (ctypes.c_void_p * n)()
    lens = (ctypes.c_size_t * n)()
    for i, (d, k) in enumerate(inputs):
        off, ln = tables[d][k]
        ptrs[i] = bases[d] + off
        lens[i] = ln
    message = _lib.address_of(record) + at
    out = ctypes.c_void_p()
    err = lib.daskr_partition_run(message, len(record) - at, ptrs, lens, n, _partition_threads(), ctypes.byref(out))
    if err:
        e = _lib.take_error(lib, err)
        if e.kind in ("plugin", "invalid_argument"):
            e = DaskrError(e.kind, e.key, e.keys, f"on Dask worker {_worker_address()}: {e.message}")
        raise e
    return _lib.take_bytes(lib, out)


def pick(buffer, outputs):
    """The outputs at the indices encoded in `outputs` (varint count, varints) of a partition's
    output buffer, as an output buffer of their own: only what the caller needs travels."""
    table = _wire.split_outputs(buffer)
    n, at = _wire.read_varint(outputs, 0)
    pieces = []
    for _ in range(n):
        k, at = _wire.read_varint(outputs, at)
        off, ln = table[k]
        pieces.append(buffer[off:off + ln])
    return _wire.join_outputs(pieces)
