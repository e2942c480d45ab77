"""The distributed scheduler's integration tests: one local Dask cluster for the session (a
scheduler and two one-thread workers on 127.0.0.1, separate processes started here and
stopped by PID at the end, also when a test fails), daskr's command, C programs and the
Python package run against it.

Run with `make test-distributed` (builds libdaskr, the daskr command and the example plugin,
and sets up target/bench/venv with distributed, pytest and bindings/python)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.path.join(ROOT, "target")
WORK = os.path.join(TARGET, "distributed-tests")
LIB = os.path.join(TARGET, "release", "libdaskr.so")
DASKR = os.path.join(TARGET, "release", "daskr")
EXAMPLE = os.path.join(TARGET, "plugins", "libexample.so")
# Workers look here for plugins missing at their path (DASKR_PLUGIN_PATH).
PLUGIN_DIR = os.path.join(WORK, "worker-plugins")

sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
from daskr_dask.local import LocalProcesses  # noqa: E402


@pytest.fixture(scope="session")
def built():
    for path in (LIB, DASKR, EXAMPLE):
        assert os.path.exists(path), f"{path} is missing: run `make test-distributed`"
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(PLUGIN_DIR, exist_ok=True)
    # daskr starts its Dask driver with this Python (the one running the tests)
    os.environ["DASKR_PYTHON"] = sys.executable
    os.environ["DASKR_LIB"] = LIB
    os.environ.pop("DASKR_ADDRESS", None)
    return True


@pytest.fixture(scope="session")
def cluster(built):
    c = LocalProcesses(
        workers=2, threads=1,
        env={"DASKR_LIB": LIB, "DASKR_PLUGIN_PATH": PLUGIN_DIR},
        # a task is retried once after its worker died; a second death fails it (KilledWorker)
        scheduler_env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"},
        log_dir=os.path.join(WORK, "logs"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


def compile_c(source, out, shared=False):
    cmd = [os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror", "-g",
           "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "tests", "c")]
    if shared:
        cmd += ["-shared", "-fPIC", source, "-o", out]
    else:
        cmd += [source, "-L" + os.path.dirname(LIB), "-ldaskr", "-Wl,-rpath," + os.path.dirname(LIB),
                "-lpthread", "-o", out]
    subprocess.run(cmd, check=True)
    return out
