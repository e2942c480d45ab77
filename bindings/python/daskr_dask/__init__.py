"""daskr on Dask: run daskr task graphs (graph files of plugin tasks) on a Dask cluster.

- `run_file(path, keys=None, address=None, client=None)`: runs a graph file on a cluster from
  Python and returns the results as Python values (None, bool, int, float, str, bytes, lists)
  in the shape of `keys` (default: the file's "keys"). Errors raise `DaskrError` with the
  kind, key, related keys and message daskr reports everywhere else.
- `daskr_dask.worker`: what runs on the Dask workers (one daskr partition per Dask task,
  through libdaskr.so and ctypes).
- `daskr_dask.driver`: the process daskr's `distributed` scheduler starts
  (`python -m daskr_dask.driver tcp://host:port`), and `run_job` for a job of your own.

Workers need this package, libdaskr.so (found through DASKR_LIB, next to the package, or in
the checkout's target/release for an editable install) and the plugins the graphs name (at
the same path, or by file name in a folder of DASKR_PLUGIN_PATH).
"""

import ctypes
import os

from . import _lib, _wire
from ._lib import DaskrError
from .driver import cluster_size, run_job

__all__ = ["DaskrError", "run_file", "encode_job", "run_job", "cluster_size"]
__version__ = "0.1.0"


def encode_job(path, keys=None, threads=1):
    """Reads the graph file at `path` and encodes the job that computes `keys` (a key or a
    nested list of keys; None: the file's "keys") on a cluster of `threads` worker threads.
    Returns (job bytes, the request as a nested list of keys)."""
    lib = _lib.load()
    graph = ctypes.c_void_p()
    file_keys = ctypes.c_void_p()
    err = lib.daskr_graph_from_file(os.fsencode(path), ctypes.byref(graph), ctypes.byref(file_keys))
    if err:
        raise _lib.take_error(lib, err)
    request_value = ctypes.c_void_p()
    try:
        if keys is None:
            if not file_keys.value:
                raise DaskrError("missing_key", None, [],
                                 f"no keys to compute: '{path}' has no \"keys\"; pass keys=")
            enc = ctypes.c_void_p()
            err = lib.daskr_value_encode(file_keys, ctypes.byref(enc))
            if err:
                raise _lib.take_error(lib, err)
            request = _wire.decode_value(_lib.take_bytes(lib, enc))
            request_value, file_keys = file_keys, ctypes.c_void_p()
        else:
            request = keys
            b = _wire.encode_value(_check_keys(keys))
            err = lib.daskr_value_decode(b, len(b), ctypes.byref(request_value))
            if err:
                raise _lib.take_error(lib, err)
        out = ctypes.c_void_p()
        err = lib.daskr_graph_encode_job(graph, request_value, max(int(threads), 1), ctypes.byref(out))
        if err:
            raise _lib.take_error(lib, err)
        return _lib.take_bytes(lib, out), request
    finally:
        for v in (request_value, file_keys):
            if v.value:
                lib.daskr_value_free(v)
        lib.daskr_graph_free(graph)


def _check_keys(keys):
    if isinstance(keys, str):
        return keys
    if isinstance(keys, (list, tuple)):
        return [_check_keys(k) for k in keys]
    raise TypeError(f"keys must be a key (str) or a nested list of keys, not {type(keys).__name__}")


def run_file(path, keys=None, address=None, client=None):
    """Runs the graph file at `path` on a Dask cluster: `client` (a distributed.Client), else
    a Client connected to `address` (else $DASKR_ADDRESS) for this call. Returns the results in
    the shape of `keys` (None: the file's "keys"). Raises DaskrError."""
    own = None
    if client is None:
        from distributed import Client

        address = address or os.environ.get("DASKR_ADDRESS")
        if not address:
            raise DaskrError("invalid_argument", None, [],
                             "no Dask scheduler: pass address= or client=, or set DASKR_ADDRESS")
        own = client = Client(address, set_as_default=False)
    try:
        threads, _ = cluster_size(client)
        job, request = encode_job(path, keys, threads)
        outputs = run_job(client, job)
    finally:
        if own is not None:
            own.close()
    values = iter([_wire.decode_value(o) for o in outputs])
    return _shape(request, values)


def _shape(request, values):
    if isinstance(request, (list, tuple)):
        return [_shape(r, values) for r in request]
    return next(values)
