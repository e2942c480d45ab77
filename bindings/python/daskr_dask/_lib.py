"""libdaskr.so through ctypes, loaded once per process.

Where it is looked for: the environment variable DASKR_LIB (a path to libdaskr.so), else next
to this package (daskr_dask/libdaskr.so), else target/release/libdaskr.so of the checkout this
package sits in (bindings/python/daskr_dask -> ../../..: an editable install,
`pip install -e bindings/python`). It is loaded with RTLD_GLOBAL, because plugins are built
without linking libdaskr and take the daskr_* functions from the process.
"""

import ctypes
import os
import threading

_lock = threading.Lock()
_lib = None


class DaskrError(Exception):
    """A daskr error: kind (docs/graph-format.md's names: task_failed, plugin, worker_died, ...),
    the key at fault (or None), the related keys and the message. Raised by tasks run on Dask
    workers (Dask carries it back to the driver) and by this package's API."""

    def __init__(self, kind, key, keys, message):
        super().__init__(kind, key, list(keys), message)
        self.kind = kind
        self.key = key or None
        self.keys = list(keys)
        self.message = message

    def __reduce__(self):
        return (type(self), (self.kind, self.key, self.keys, self.message))

    def __str__(self):
        return f"{self.message} ({self.kind})"


def candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    env = os.environ.get("DASKR_LIB")
    if env:
        return [env]
    out.append(os.path.join(here, "libdaskr.so"))
    out.append(os.path.normpath(os.path.join(here, "..", "..", "..", "target", "release", "libdaskr.so")))
    return out


def load():
    """The loaded library, with prototypes set. Raises DaskrError (invalid_argument) saying
    where it looked when it cannot be found or loaded."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path in candidates():
            if not os.path.exists(path):
                tried.append(f"{path} (missing)")
                continue
            try:
                lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError as e:
                tried.append(f"{path} ({e})")
                continue
            _prototypes(lib)
            _lib = lib
            return lib
        raise DaskrError(
            "invalid_argument", None, [],
            "cannot load libdaskr.so: tried " + "; ".join(tried)
            + ". Build it (cargo build --release) and set DASKR_LIB to its path, or install "
            "this package editable from daskr's checkout (pip install -e bindings/python)")


def _prototypes(lib):
    c = ctypes
    P, S, U8P = c.c_void_p, c.c_size_t, c.POINTER(c.c_uint8)
    protos = {
        "daskr_partition_run": (P, [P, S, c.POINTER(c.c_void_p), c.POINTER(S), S, c.c_uint32, c.POINTER(P)]),
        "daskr_graph_encode_job": (P, [P, P, c.c_uint32, c.POINTER(P)]),
        "daskr_graph_from_file": (P, [c.c_char_p, c.POINTER(P), c.POINTER(P)]),
        "daskr_graph_free": (None, [P]),
        "daskr_value_get_bytes": (c.c_bool, [P, c.POINTER(U8P), c.POINTER(S)]),
        "daskr_value_encode": (P, [P, c.POINTER(P)]),
        "daskr_value_decode": (P, [c.c_char_p, S, c.POINTER(P)]),
        "daskr_value_free": (None, [P]),
        "daskr_error_kind": (c.c_uint32, [P]),
        "daskr_error_kind_name": (c.c_char_p, [c.c_uint32]),
        "daskr_error_key": (c.c_char_p, [P]),
        "daskr_error_keys_len": (S, [P]),
        "daskr_error_keys_at": (c.c_char_p, [P, S]),
        "daskr_error_message": (c.c_char_p, [P]),
        "daskr_error_free": (None, [P]),
    }
    for name, (res, args) in protos.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


def take_error(lib, err):
    """A daskr_error_t * as a DaskrError (and frees it)."""
    try:
        kind = lib.daskr_error_kind_name(lib.daskr_error_kind(err)).decode()
        key = lib.daskr_error_key(err)
        keys = [lib.daskr_error_keys_at(err, i).decode() for i in range(lib.daskr_error_keys_len(err))]
        message = lib.daskr_error_message(err).decode()
        return DaskrError(kind, key.decode() if key else None, keys, message)
    finally:
        lib.daskr_error_free(err)


def take_bytes(lib, value):
    """A daskr bytes value's contents (and frees the value)."""
    try:
        data = ctypes.POINTER(ctypes.c_uint8)()
        n = ctypes.c_size_t()
        if not lib.daskr_value_get_bytes(value, ctypes.byref(data), ctypes.byref(n)):
            raise DaskrError("internal", None, [], "expected a bytes value from libdaskr")
        return ctypes.string_at(data, n.value)
    finally:
        lib.daskr_value_free(value)


def address_of(b):
    """The address of a bytes object's contents (valid while `b` lives)."""
    return ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p).value
