"""Ceiling 1: what cassandra-driver alone does, in a plain Python process (no HTTP, no asyncio).

The service's read by key, prepared once and issued with `execute_async` +
`ResponseFuture.add_callbacks`: each completion issues the next request from the driver's I/O thread,
so exactly `concurrency` requests stay in flight for the whole measurement. Rows come back as plain
tuples (`tuple_factory`), the driver's cheapest row form, so this is the strictest ceiling.

A child process of `just bench` (see `bench.harness.ceiling` for its command line and output).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement, tuple_factory

from bench.harness import ceiling
from bench.harness.statements import READ_USER


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
        self._reads = ceiling.Reads(0.0)
        self._outstanding = 0
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def run(self, seconds: float) -> ceiling.Reads:
        self._reads = ceiling.Reads(seconds)
        self._outstanding = self._concurrency
        self._finished.clear()
        started = time.perf_counter()
        self._deadline = started + seconds
        for _ in range(self._concurrency):
            self._issue()
        if not self._finished.wait(seconds + 60):
            raise TimeoutError("reads still in flight a minute after the deadline")
        return self._reads

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
            self._reads.latencies.append(now - started)
            self._issue()
        else:
            self._retire()

    def _on_error(self, exc: BaseException, started: float) -> None:
        if time.perf_counter() <= self._deadline:
            self._reads.errors += 1
            self._issue()
        else:
            self._retire()

    def _retire(self) -> None:
        with self._lock:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._finished.set()


def connect(hosts: list[str], port: int, keyspace: str) -> tuple[Cluster, Session]:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        row_factory=tuple_factory,
        request_timeout=30,
    )
    cluster = Cluster(hosts, port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    return cluster, cluster.connect(keyspace)


def main(argv: list[str] | None = None) -> None:
    args = ceiling.ceiling_arguments(__doc__).parse_args(argv)

    cluster, session = connect(args.hosts.split(","), args.port, args.keyspace)
    try:
        statement = session.prepare(READ_USER)
        reader = CallbackReader(session, statement, ceiling.read_ids(args.ids), args.concurrency)
        if args.warmup > 0:
            reader.run(args.warmup)
        with ceiling.CpuWindow(args.cassandra_pid) as window:
            reads = reader.run(args.seconds)
        result = ceiling.ceiling_result(
            reads,
            args.concurrency,
            window.cpu_seconds,
            connection_class=cluster.connection_class.__name__,
            protocol_version=cluster.protocol_version,
        )
    finally:
        cluster.shutdown()
    ceiling.emit(result)


if __name__ == "__main__":
    main()
