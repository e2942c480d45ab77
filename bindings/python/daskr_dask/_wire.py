"""daskr's wire formats in Python: varints, the value encoding (docs/value-encoding.md), jobs and
partition records, partition outputs and error records (docs/wire-format.md), and the driver's
frames. Pure Python: the driver needs no libdaskr."""

import struct

# ---- varints and strings -------------------------------------------------------------------


def read_varint(buf, at):
    """Reads an unsigned LEB128 varint at `at`; returns (value, next position)."""
    x = 0
    shift = 0
    while True:
        b = buf[at]
        at += 1
        x |= (b & 0x7F) << shift
        if b < 0x80:
            return x, at
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def put_varint(out, x):
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)


def read_bytes(buf, at):
    n, at = read_varint(buf, at)
    if at + n > len(buf):
        raise ValueError(f"length {n} runs past the end at byte {at}")
    return buf[at:at + n], at + n


def read_str(buf, at):
    b, at = read_bytes(buf, at)
    return bytes(b).decode("utf-8"), at


def put_bytes(out, b):
    put_varint(out, len(b))
    out += b


def put_str(out, s):
    put_bytes(out, s.encode("utf-8"))


# ---- the value encoding (version 1) --------------------------------------------------------

ENCODING_VERSION = 1


def decode_value(buf):
    """An encoded value (with its version byte) as Python: None, bool, int, float, str, bytes,
    list, dict (a map, in its order)."""
    if not buf or buf[0] != ENCODING_VERSION:
        raise ValueError(f"not a daskr value of encoding version {ENCODING_VERSION}")
    v, at = _decode(buf, 1, 0)
    if at != len(buf):
        raise ValueError(f"{len(buf) - at} bytes after the value")
    return v


def _decode(buf, at, depth):
    if depth > 256:
        raise ValueError("value nests deeper than 256")
    tag = buf[at]
    at += 1
    if tag == 0x00:
        return None, at
    if tag == 0x01:
        return False, at
    if tag == 0x02:
        return True, at
    if tag == 0x03:
        z, at = read_varint(buf, at)
        return (z >> 1) ^ -(z & 1), at
    if tag == 0x04:
        return struct.unpack_from("<d", buf, at)[0], at + 8
    if tag == 0x05:
        return read_str(buf, at)
    if tag == 0x06:
        b, at = read_bytes(buf, at)
        return bytes(b), at
    if tag == 0x07:
        n, at = read_varint(buf, at)
        items = []
        for _ in range(n):
            v, at = _decode(buf, at, depth + 1)
            items.append(v)
        return items, at
    if tag == 0x08:
        n, at = read_varint(buf, at)
        entries = {}
        for _ in range(n):
            name, at = read_str(buf, at)
            if name in entries:
                raise ValueError(f"map name {name!r} is given twice (at byte {at})")
            entries[name], at = _decode(buf, at, depth + 1)
        return entries, at
    raise ValueError(f"unknown value tag {tag:#04x} at byte {at - 1}")


def encode_value(v):
    """A Python value (None, bool, int, float, str, bytes, list/tuple, dict with str keys) in
    daskr's encoding."""
    out = bytearray([ENCODING_VERSION])
    _encode(v, out)
    return bytes(out)


def _encode(v, out):
    if v is None:
        out.append(0x00)
    elif v is False:
        out.append(0x01)
    elif v is True:
        out.append(0x02)
    elif isinstance(v, int):
        if not -(1 << 63) <= v < (1 << 63):
            raise ValueError(f"{v} does not fit in int64")
        out.append(0x03)
        put_varint(out, ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF)
    elif isinstance(v, float):
        out.append(0x04)
        out += struct.pack("<d", v)
    elif isinstance(v, str):
        out.append(0x05)
        put_str(out, v)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        out.append(0x06)
        put_bytes(out, bytes(v))
    elif isinstance(v, (list, tuple)):
        out.append(0x07)
        put_varint(out, len(v))
        for item in v:
            _encode(item, out)
    elif isinstance(v, dict):
        out.append(0x08)
        put_varint(out, len(v))
        for name, item in v.items():
            if not isinstance(name, str):
                raise TypeError(
                    f"a daskr map's names are strings; this dict has the key {name!r} "
                    f"({type(name).__name__})"
                )
            put_str(out, name)
            _encode(item, out)
    else:
        raise TypeError(f"cannot encode a {type(v).__name__} as a daskr value")


# ---- partition outputs: varint n, n x (varint length, encoded value) -----------------------


def split_outputs(buf):
    """The (offset, length) of each encoded output in a partition's output buffer."""
    n, at = read_varint(buf, 0)
    table = []
    append = table.append
    end = len(buf)
    for _ in range(n):
        # inline varint: lengths are almost always below 128
        b = buf[at]
        if b < 0x80:
            ln = b
            at += 1
        else:
            ln, at = read_varint(buf, at)
        append((at, ln))
        at += ln
    if at != end:
        raise ValueError(f"{end - at} bytes after the outputs")
    return table


def join_outputs(pieces):
    out = bytearray()
    put_varint(out, len(pieces))
    for p in pieces:
        put_bytes(out, p)
    return bytes(out)


# ---- jobs ----------------------------------------------------------------------------------

JOB_MAGIC = b"DKJ"
JOB_VERSION = 1


class Part:
    """A job's partition record, as the driver reads it (the worker reads the rest)."""

    __slots__ = ("record", "first_key", "last_key", "computed", "noutputs", "deps")


def parse_job(job):
    """Returns (parts, wanted): the partition records and the wanted (partition, output) pairs."""
    job = memoryview(job)
    if bytes(job[:3]) != JOB_MAGIC:
        raise ValueError("not a daskr job")
    if job[3] != JOB_VERSION:
        raise ValueError(f"job version {job[3]}, this package reads {JOB_VERSION}")
    n, at = read_varint(job, 4)
    parts = []
    for _ in range(n):
        record, at = read_bytes(job, at)
        p = Part()
        p.record = bytes(record)
        p.first_key, p.last_key, p.computed, p.noutputs, p.deps, _ = parse_part_head(p.record)
        parts.append(p)
    nw, at = read_varint(job, at)
    wanted = []
    for _ in range(nw):
        j, at = read_varint(job, at)
        k, at = read_varint(job, at)
        wanted.append((j, k))
    if at != len(job):
        raise ValueError(f"{len(job) - at} bytes after the job")
    return parts, wanted


def parse_part_head(record):
    """first key, last key, computed entries, outputs, deps, and where the inputs start."""
    first, at = read_str(record, 0)
    last, at = read_str(record, at)
    computed, at = read_varint(record, at)
    noutputs, at = read_varint(record, at)
    nd, at = read_varint(record, at)
    deps = []
    for _ in range(nd):
        d, at = read_varint(record, at)
        deps.append(d)
    return first, last, computed, noutputs, deps, at


def parse_part_inputs(record, at):
    """The inputs (dep index, output index) and where the partition message starts."""
    n, at = read_varint(record, at)
    inputs = []
    append = inputs.append
    for _ in range(n):
        d, at = read_varint(record, at)
        k, at = read_varint(record, at)
        append((d, k))
    return inputs, at


# ---- error records: kind, key ("" for none), related keys, message -------------------------


def put_error(out, kind, key, keys, message):
    put_str(out, kind)
    put_str(out, key or "")
    put_varint(out, len(keys))
    for k in keys:
        put_str(out, k)
    put_str(out, message)


# ---- driver frames: tag byte, u64 little-endian length, payload ----------------------------


def read_frame(stream):
    head = _read_exact(stream, 9)
    if head is None:
        return None
    (n,) = struct.unpack_from("<Q", head, 1)
    payload = _read_exact(stream, n) if n else b""
    if payload is None:
        return None
    return head[0:1], payload


def _read_exact(stream, n):
    chunks = []
    while n:
        b = stream.read(n)
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def frame(tag, payload=b""):
    return tag + struct.pack("<Q", len(payload)) + payload
