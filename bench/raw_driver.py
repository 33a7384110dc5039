"""Ceiling 1: what cassandra-driver alone does, in a plain Python process (no HTTP, no asyncio).

The service's read by key, prepared once and issued with `execute_async` +
`ResponseFuture.add_callbacks`: each completion issues the next request from the driver's I/O thread,
so exactly `concurrency` requests stay in flight for the whole measurement. Rows come back as plain
tuples (`tuple_factory`), the driver's cheapest row form, so this is the strictest ceiling.

Run by the harness as a child process and prints one JSON object:

    python -m bench.raw_driver --keyspace cqlstar_bench --ids ids.txt --concurrency 64 --seconds 30
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement, tuple_factory

from bench.procs import CpuMeter
from bench.statements import READ_USER
from bench.stats import latency_summary


class CallbackReader:
    """Keeps `concurrency` reads in flight until the deadline, counting the completions inside it."""

    def __init__(
        self,
        session: Session,
        statement: PreparedStatement,
        ids: Sequence[uuid.UUID],
        concurrency: int,
    ) -> None:
        self._session = session
        self._statement = statement
        self._ids = ids
        self._concurrency = concurrency
        # next() on itertools.count is atomic under the GIL: the main thread and the I/O thread
        # both draw from it while the first requests are being issued.
        self._sequence = itertools.count()
        self._deadline = 0.0
        self._latencies: list[float] = []
        self._errors = 0
        self._outstanding = 0
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def run(self, seconds: float) -> dict[str, Any]:
        self._latencies, self._errors = [], 0
        self._outstanding = self._concurrency
        self._finished.clear()
        started = time.perf_counter()
        self._deadline = started + seconds
        for _ in range(self._concurrency):
            self._issue()
        if not self._finished.wait(seconds + 60):
            raise TimeoutError("reads still in flight a minute after the deadline")
        completed = len(self._latencies)
        return {
            "reads": completed,
            "errors": self._errors,
            "duration_s": round(seconds, 3),
            "reads_per_second": round(completed / seconds, 1),
            **latency_summary(self._latencies),
        }

    def _issue(self) -> None:
        key = self._ids[next(self._sequence) % len(self._ids)]
        started = time.perf_counter()
        future = self._session.execute_async(self._statement, (key,))
        future.add_callbacks(
            self._on_rows, self._on_error, callback_args=(started,), errback_args=(started,)
        )

    def _on_rows(self, rows: list[tuple[Any, ...]], started: float) -> None:
        now = time.perf_counter()
        if now <= self._deadline:
            self._latencies.append(now - started)
            self._issue()
        else:
            self._retire()

    def _on_error(self, exc: BaseException, started: float) -> None:
        if time.perf_counter() <= self._deadline:
            self._errors += 1
            self._issue()
        else:
            self._retire()

    def _retire(self) -> None:
        with self._lock:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._finished.set()


def read_ids(path: Path) -> list[uuid.UUID]:
    ids = [uuid.UUID(line) for line in path.read_text().split()]
    # A fixed shuffle: the same spread over the partitions in every run, unlike token order.
    random.Random(7).shuffle(ids)
    return ids


def connect(hosts: list[str], port: int, keyspace: str) -> tuple[Cluster, Session]:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        row_factory=tuple_factory,
        request_timeout=30,
    )
    cluster = Cluster(hosts, port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    return cluster, cluster.connect(keyspace)


def ceiling_arguments(description: str | None) -> argparse.ArgumentParser:
    """The command line both read ceilings (this one and `bench.layer_reads`) take."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--hosts", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9042)
    parser.add_argument("--keyspace", required=True)
    parser.add_argument("--ids", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=float, default=1.0)
    # Cassandra's CPU is read here, around the measured window only (not the connect or warm-up).
    parser.add_argument("--cassandra-pid", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = ceiling_arguments(__doc__).parse_args(argv)

    cluster, session = connect(args.hosts.split(","), args.port, args.keyspace)
    try:
        statement = session.prepare(READ_USER)
        reader = CallbackReader(session, statement, read_ids(args.ids), args.concurrency)
        if args.warmup > 0:
            reader.run(args.warmup)
        meter = CpuMeter({"cassandra": args.cassandra_pid})
        cpu_before = _own_cpu_seconds()
        meter.start()
        result = reader.run(args.seconds)
        result["cpu_seconds"] = {
            "client": round(_own_cpu_seconds() - cpu_before, 3),
            **meter.stop(),
        }
        result["connection_class"] = cluster.connection_class.__name__
        result["protocol_version"] = cluster.protocol_version
        result["concurrency"] = args.concurrency
    finally:
        cluster.shutdown()
    print(json.dumps(result), flush=True)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
