"""python -m daskr_dask run GRAPH.json [--keys KEY ...] [--address tcp://HOST:PORT]
python -m daskr_dask local [--workers 2] [--threads 1]

Runs a daskr graph file on a Dask cluster from Python (the package's `run_file`) and prints the
results as JSON (bytes as {"bytes": "<base64>"}), like `daskr run`: exit status 1 and
{"error": {...}} on stdout when the run fails."""

import argparse
import base64
import json
import sys

from . import DaskrError, run_file


def _json(v):
    if isinstance(v, bytes):
        return {"bytes": base64.b64encode(v).decode()}
    if isinstance(v, list):
        return [_json(x) for x in v]
    if isinstance(v, float) and v != v:
        return None
    return v


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["local"]:
        from . import local

        return local.main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m daskr_dask")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a graph file on a Dask cluster")
    r.add_argument("graph")
    r.add_argument("--keys", action="append")
    r.add_argument("--address", help="the Dask scheduler [default: $DASKR_ADDRESS]")
    sub.add_parser("local", help="start a local cluster (scheduler and workers on 127.0.0.1)")
    args = ap.parse_args(argv)
    keys = None if not args.keys else (args.keys[0] if len(args.keys) == 1 else args.keys)
    try:
        result = run_file(args.graph, keys, address=args.address)
    except DaskrError as e:
        print(json.dumps({"error": {"kind": e.kind, "key": e.key, "keys": e.keys, "message": e.message}}))
        print(f"daskr_dask: {e.message} ({e.kind})", file=sys.stderr)
        return 1
    print(json.dumps(_json(result), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
