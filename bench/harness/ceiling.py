"""What the two read ceilings (`raw_driver`, `layer_reads`) share: their command line, the id pool,
the accounting of their measured window, and the one JSON line each prints for the harness.

Each runs as a child process of `just bench`, which reads that line back as a `CeilingResult`:

    python -m bench.harness.raw_driver --keyspace cqlstar_bench --ids ids.txt --concurrency 64 --seconds 30
    python -m bench.harness.layer_reads --keyspace cqlstar_bench --ids ids.txt --concurrency 64 --seconds 30
"""

from __future__ import annotations

import argparse
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import msgspec

from bench.harness.procs import CpuMeter, own_cpu_seconds
from bench.harness.stats import latency_summary


class CeilingResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One ceiling at one concurrency: reads in the measured window, their latency and CPU."""

    concurrency: int
    reads: int
    errors: int
    duration_s: float
    reads_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    # "client" (the ceiling's own process) and "cassandra" (the local node, when it is measured).
    cpu_seconds: dict[str, float]
    client_cpu_us_per_read: float | None
    first_error: str | None = None
    # The raw driver's connection, for a reader who wonders which event loop it ran on.
    connection_class: str | None = None
    protocol_version: int | None = None


@dataclass
class Reads:
    """What one measured window saw: each completed read's latency, and the failures."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None


def ceiling_arguments(description: str | None) -> argparse.ArgumentParser:
    """The command line both read ceilings take."""
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


def read_ids(path: Path) -> list[uuid.UUID]:
    ids = [uuid.UUID(line) for line in path.read_text().split()]
    # A fixed shuffle: the same spread over the partitions in every run, unlike token order.
    random.Random(7).shuffle(ids)
    return ids


class CpuWindow:
    """The CPU seconds this process ("client") and Cassandra spend inside a `with` block."""

    def __init__(self, cassandra_pid: int | None) -> None:
        self._meter = CpuMeter({"cassandra": cassandra_pid})
        self._client_before = 0.0
        self.cpu_seconds: dict[str, float] = {}

    def __enter__(self) -> CpuWindow:
        self._client_before = own_cpu_seconds()
        self._meter.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        client = round(own_cpu_seconds() - self._client_before, 3)
        self.cpu_seconds = {"client": client, **self._meter.stop()}


def ceiling_result(
    reads: Reads,
    concurrency: int,
    cpu_seconds: dict[str, float],
    *,
    connection_class: str | None = None,
    protocol_version: int | None = None,
) -> CeilingResult:
    count = len(reads.latencies)
    latency = latency_summary(reads.latencies)
    return CeilingResult(
        concurrency=concurrency,
        reads=count,
        errors=reads.errors,
        duration_s=round(reads.seconds, 3),
        reads_per_second=round(count / reads.seconds, 1),
        p50_ms=latency.p50_ms,
        p90_ms=latency.p90_ms,
        p99_ms=latency.p99_ms,
        max_ms=latency.max_ms,
        cpu_seconds=cpu_seconds,
        client_cpu_us_per_read=round(1e6 * cpu_seconds["client"] / count, 1) if count else None,
        first_error=reads.first_error,
        connection_class=connection_class,
        protocol_version=protocol_version,
    )


def emit(result: CeilingResult) -> None:
    """The line the harness reads: the last one this process prints."""
    print(msgspec.json.encode(result).decode(), flush=True)
