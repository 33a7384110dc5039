"""`bench/gcprobe`: a process started with it publishes its garbage collector's totals."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.probes.gc_totals import gc_probe_env, gc_summary, read_gc_totals

# Two forced full collections, a fork whose child forces one more, then long enough for each
# process's publisher to write its totals at least once.
_CHILD = """
import gc, os, time
gc.collect(); gc.collect()
pid = os.fork()
if pid == 0:
    gc.collect()
    time.sleep(1.2)
    os._exit(0)
time.sleep(1.2)
os.waitpid(pid, 0)
print(os.getpid(), pid)
"""


def test_a_probed_process_and_its_forked_child_publish_their_collections(tmp_path: Path) -> None:
    directory = tmp_path / "gc"
    env = {**os.environ, **gc_probe_env(directory)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    parent_pid, child_pid = (int(pid) for pid in done.stdout.split())
    parent = read_gc_totals(directory, parent_pid)
    child = read_gc_totals(directory, child_pid)
    assert parent is not None
    assert child is not None
    assert parent["collections"][2] >= 2
    # The child inherits the totals at the fork and adds its own full collection.
    assert child["collections"][2] >= 3
    assert 0 < parent["seconds"] < time.monotonic() - started
    assert 0 < child["seconds"] < time.monotonic() - started


def test_nothing_is_published_without_the_directory(tmp_path: Path) -> None:
    env = {**os.environ, **gc_probe_env(tmp_path / "gc")}
    del env["CQLSTAR_GC_PROBE_DIR"]
    code = "import gc, time; gc.collect(); time.sleep(0.7)"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert list((tmp_path / "gc").iterdir()) == []


def test_the_summary_reports_the_difference_between_two_readings() -> None:
    before = {"seconds": 1.0, "collections": [10, 2, 1]}
    after = {"seconds": 1.25, "collections": [60, 7, 2]}
    assert gc_summary(before, after, 5.0) == (
        "Garbage collector during the sample: 0.250 s in 50/5/1 collections "
        "(generations 0/1/2), 5.0% of the worker's CPU."
    )
    assert "not measured" in gc_summary(None, after, 5.0)
