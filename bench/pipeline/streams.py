"""The `stream_users` phase: NDJSON rows per second and the server's peak memory.

One client reads `GET /users/stream?limit=N&fetch_size=F` with `Accept: application/x-ndjson`, counting
lines as they arrive (no JSON parsing beyond the first line, so the client stays cheap), again and
again for the measurement's duration (at least once). Meanwhile a sampler thread records the
service's resident memory; streaming at two row counts shows whether memory grows with the row count.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.harness.console import say
from bench.harness.procs import CpuMeter, RssSampler, tree_rss_bytes
from bench.harness.server import Server
from bench.harness.stats import Latency, latency_summary
from bench.pipeline.context import RunContext
from bench.pipeline.report import StreamFigures

_READ_CHUNK = 256 * 1024


class StreamError(RuntimeError):
    """The stream answered an error status, an unexpected first line, or too few rows."""


@dataclass(frozen=True)
class StreamResult:
    rows: int
    streams: int
    rows_per_second: float
    streams_per_second: float
    duration_s: float
    first_row_ms: float
    latency: Latency
    errors: int
    baseline_rss_mb: float
    peak_rss_mb: float
    # Right after the first and after the last stream: apart by what the streams in between kept.
    rss_after_first_mb: float
    rss_after_last_mb: float


def stream_once(base_url: str, limit: int, fetch_size: int) -> tuple[int, float, float]:
    """Read one whole stream; returns (rows, seconds to the first row, seconds in total)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    started = time.perf_counter()
    try:
        connection.request(
            "GET",
            f"/users/stream?limit={limit}&fetch_size={fetch_size}",
            headers={"Accept": "application/x-ndjson"},
        )
        response = connection.getresponse()
        if response.status != 200:
            raise StreamError(
                f"/users/stream answered {response.status}: {response.read()[:500]!r}"
            )
        rows = 0
        first_row_s = 0.0
        head = b""
        while chunk := response.read1(_READ_CHUNK):
            if not rows and not first_row_s:
                first_row_s = time.perf_counter() - started
            if len(head) < 4096:
                head += chunk[:4096]
            rows += chunk.count(b"\n")
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    _check_first_line(head)
    return rows, first_row_s, elapsed


def _check_first_line(head: bytes) -> None:
    first = head.split(b"\n", 1)[0]
    try:
        user = json.loads(first)
    except ValueError:
        raise StreamError(f"the first NDJSON line is not JSON: {first[:200]!r}") from None
    if not isinstance(user, dict) or "id" not in user:
        raise StreamError(f"the first NDJSON line is not a user: {first[:200]!r}")


def measure_stream(
    base_url: str, server_pid: int, limit: int, fetch_size: int, seconds: float
) -> StreamResult:
    durations: list[float] = []
    first_rows: list[float] = []
    rows_total = 0
    errors = 0
    after_streams: list[int] = []
    with RssSampler(server_pid) as rss:
        started = time.perf_counter()
        while not durations or time.perf_counter() - started < seconds:
            rows, first_row_s, elapsed = stream_once(base_url, limit, fetch_size)
            if rows != limit:
                errors += 1  # a stream cut short is a failure, whatever its status said
            rows_total += rows
            durations.append(elapsed)
            first_rows.append(first_row_s)
            after_streams.append(tree_rss_bytes(server_pid))
        wall = time.perf_counter() - started
    return StreamResult(
        rows=rows_total,
        streams=len(durations),
        rows_per_second=round(rows_total / wall, 1),
        streams_per_second=round(len(durations) / wall, 3),
        duration_s=round(wall, 3),
        first_row_ms=round(1000 * sorted(first_rows)[len(first_rows) // 2], 3),
        latency=latency_summary(durations),
        errors=errors,
        baseline_rss_mb=round(rss.baseline_bytes / 2**20, 1),
        peak_rss_mb=round(rss.peak_bytes / 2**20, 1),
        rss_after_first_mb=round(after_streams[0] / 2**20, 1),
        rss_after_last_mb=round(after_streams[-1] / 2**20, 1),
    )


def measure_streams(ctx: RunContext, server: Server) -> StreamFigures:
    """One short stream, then long ones back to back for the measurement's duration."""
    config = ctx.config
    baseline_mb = tree_rss_bytes(server.pid) / 2**20
    # One short stream first: its peak against the long one's shows whether memory follows rows.
    small_rows = max(1, config.stream_rows // 10)
    small = measure_stream(server.base_url, server.pid, small_rows, config.stream_fetch_size, 0)
    meter = CpuMeter({"service": server.pid, "cassandra": ctx.dataset.cassandra_pid})
    meter.start()
    client_before = time.thread_time()
    full = measure_stream(
        server.base_url, server.pid, config.stream_rows, config.stream_fetch_size, config.seconds
    )
    cpu = {**meter.stop(), "load_generator": round(time.thread_time() - client_before, 3)}
    say(
        f"stream_users: {full.rows_per_second:,.0f} rows/s over {full.streams} stream(s) of "
        f"{config.stream_rows} rows; service RSS {baseline_mb:.0f} MiB before, peak "
        f"{small.peak_rss_mb:.0f} MiB at {small_rows} rows, {full.peak_rss_mb:.0f} MiB at "
        f"{config.stream_rows} rows; {full.errors} errors"
    )
    return StreamFigures(
        rows_per_second=full.rows_per_second,
        streams_per_second=full.streams_per_second,
        rows_per_stream=config.stream_rows,
        fetch_size=config.stream_fetch_size,
        streams=full.streams,
        p50_ms=full.latency.p50_ms,
        p90_ms=full.latency.p90_ms,
        p99_ms=full.latency.p99_ms,
        max_ms=full.latency.max_ms,
        first_row_ms=full.first_row_ms,
        errors=full.errors,
        duration_s=full.duration_s,
        baseline_rss_mb=round(baseline_mb, 1),
        peak_rss_mb=full.peak_rss_mb,
        rss_growth_mb_by_rows={
            str(small_rows): round(small.peak_rss_mb - baseline_mb, 1),
            str(config.stream_rows): round(full.peak_rss_mb - baseline_mb, 1),
        },
        rss_after_first_stream_mb=full.rss_after_first_mb,
        rss_after_last_stream_mb=full.rss_after_last_mb,
        streams_after_first=full.streams - 1,
        cpu_seconds=cpu,
    )
