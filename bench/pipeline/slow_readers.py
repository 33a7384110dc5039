"""The `slow_readers` phase: the service's memory while stream clients read slowly or not at all.

    BENCH_SCENARIOS=slow_readers just bench

Clients open `GET /users/stream?limit=1000000&fetch_size=F` (NDJSON) over raw sockets, at once:
`STALLED` of them send the request and never read a byte, `SLOW` read `SLOW_READ_BYTES` every
`SLOW_READ_INTERVAL_S` (about 160 KiB/s each). They are held for the measurement's duration while
a sampler records the service's resident memory (granian's process tree), and `/health` is asked
now and then to show whether the worker still answers; "held" is the RSS once it has stopped
moving after that. Then every client hangs up, and the RSS is read again once the streams are gone
(it stays near its high-water mark: freed pages go back to Python's allocator, not to the system).

What the figures mean: with streams that slow down for their readers, the RSS while held grows by a
few pages per stream, however many rows the query has; a service that reads Cassandra ahead of the
socket grows with every page the clients have not read. `page_kib` (the NDJSON size of one page,
from what the slow readers received) puts the growth per stream in pages. Streams beyond the
service's cap (`CQLSTAR_MAX_STREAMS`) are refused with 503: `statuses` counts what each client got.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from urllib.parse import urlsplit

from bench.harness.console import say
from bench.harness.procs import RssSampler, tree_rss_bytes
from bench.harness.server import Server, request
from bench.pipeline.context import RunContext
from bench.pipeline.report import SlowReaderFigures

STALLED = 20
SLOW = 4
SLOW_READ_BYTES = 16 * 1024
SLOW_READ_INTERVAL_S = 0.1
# A stalled client's receive buffer, kept small so the figures are about what the server holds,
# not about how much a loopback socket can absorb before the sender has to wait.
CLIENT_RCVBUF = 64 * 1024
HEALTH_EVERY_S = 0.5
# After the clients hang up: time for the worker to notice and let the streams go.
SETTLE_S = 2.0
# The most the measurement waits, after the hold, for the held RSS to stop moving.
SETTLE_LIMIT_S = 30.0


class _Client:
    """One raw connection asking for the stream; reads nothing, or a little at a time."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
        self.sock.connect((host, port))
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/x-ndjson\r\n\r\n".encode()
        )
        self.received = b""
        self.received_bytes = 0
        self.lines = 0

    def read_some(self, limit: int) -> None:
        try:
            data = self.sock.recv(limit, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        if len(self.received) < 512:
            self.received += data[:512]
        self.received_bytes += len(data)
        self.lines += data.count(b"\n")

    def status(self) -> str:
        """The status code, read with the first bytes (a stalled client reads them only now)."""
        if len(self.received) < 12:
            self.sock.settimeout(5)
            with contextlib.suppress(OSError):
                self.received += self.sock.recv(12 - len(self.received))
        head = self.received[:12]
        return head[9:12].decode() if head.startswith(b"HTTP/1.1 ") else "none"

    def close(self) -> None:
        self.sock.close()


def measure_slow_readers(
    base_url: str, server_pid: int, fetch_size: int, hold_s: float
) -> SlowReaderFigures:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = f"/users/stream?limit=1000000&fetch_size={fetch_size}"
    baseline = tree_rss_bytes(server_pid)
    with RssSampler(server_pid) as rss:
        stalled = [_Client(host, port, path) for _ in range(STALLED)]
        slow = [_Client(host, port, path) for _ in range(SLOW)]
        stop = threading.Event()

        def read_slowly() -> None:
            while not stop.wait(SLOW_READ_INTERVAL_S):
                for client in slow:
                    client.read_some(SLOW_READ_BYTES)

        reader = threading.Thread(target=read_slowly, name="slow-readers", daemon=True)
        reader.start()
        started = time.monotonic()
        health, health_failures = _ask_health(base_url, hold_s)
        held = _settled_rss(server_pid)
        stop.set()
        reader.join()
        slow_seconds = time.monotonic() - started
        statuses: dict[str, int] = {}
        for client in (*stalled, *slow):
            code = client.status()
            statuses[code] = statuses.get(code, 0) + 1
        for client in (*stalled, *slow):
            client.close()
    time.sleep(SETTLE_S)
    after = tree_rss_bytes(server_pid)

    open_streams = statuses.get("200", 0)
    received = sum(client.received_bytes for client in slow)
    lines = sum(client.lines for client in slow)
    page_bytes = received / lines * fetch_size if lines else None
    growth = (held - baseline) / open_streams if open_streams else None
    return SlowReaderFigures(
        stalled=STALLED,
        slow=SLOW,
        fetch_size=fetch_size,
        hold_s=round(hold_s, 1),
        statuses=statuses,
        baseline_rss_mb=_mb(baseline),
        held_rss_mb=_mb(held),
        peak_rss_mb=_mb(rss.peak_bytes),
        after_close_rss_mb=_mb(after),
        growth_per_open_stream_mb=None if growth is None else _mb(growth),
        page_kib=None if page_bytes is None else round(page_bytes / 1024, 1),
        growth_per_open_stream_pages=(
            None if growth is None or not page_bytes else round(growth / page_bytes, 1)
        ),
        slow_reader_kib_per_s=round(received / 1024 / max(slow_seconds, 1e-9) / SLOW, 1),
        health_p50_ms=round(1000 * statistics.median(health), 1) if health else None,
        health_max_ms=round(1000 * max(health), 1) if health else None,
        health_failures=health_failures,
    )


def _ask_health(base_url: str, hold_s: float) -> tuple[list[float], int]:
    """`/health` now and then for `hold_s`: the latencies of its 200s, and how many were not."""
    latencies: list[float] = []
    failures = 0
    started = time.monotonic()
    while time.monotonic() - started < hold_s:
        asked = time.perf_counter()
        try:
            status, _ = request(base_url + "/health", timeout_s=10)
        except OSError:
            status = 0
        if status == 200:
            latencies.append(time.perf_counter() - asked)
        else:
            failures += 1
        time.sleep(HEALTH_EVERY_S)
    return latencies, failures


def summary(result: SlowReaderFigures) -> str:
    return (
        f"slow_readers: {result.stalled} stalled + {result.slow} slow clients, "
        f"fetch_size {result.fetch_size}, answers {result.statuses}; service RSS "
        f"{result.baseline_rss_mb:.0f} MiB before, {result.held_rss_mb:.0f} MiB held "
        f"(peak {result.peak_rss_mb:.0f}), {result.after_close_rss_mb:.0f} MiB after they left; "
        f"{result.growth_per_open_stream_mb} MiB per open stream "
        f"({result.growth_per_open_stream_pages} pages of {result.page_kib} KiB); "
        f"/health p50 {result.health_p50_ms} ms, max {result.health_max_ms} ms"
    )


def _settled_rss(root: int) -> int:
    """The RSS once it stops moving: on a busy machine the streams' last pages can still be on
    their way when the hold ends, and "held" means what the stalled streams settle at."""
    previous = tree_rss_bytes(root)
    deadline = time.monotonic() + SETTLE_LIMIT_S
    while time.monotonic() < deadline:
        time.sleep(1.0)
        current = tree_rss_bytes(root)
        if abs(current - previous) < previous / 200:
            return current
        previous = current
    return previous


def _mb(value: float) -> float:
    return round(value / 2**20, 1)


def slow_readers_phase(ctx: RunContext, server: Server) -> SlowReaderFigures:
    config = ctx.config
    result = measure_slow_readers(
        server.base_url, server.pid, config.stream_fetch_size, config.seconds
    )
    say(summary(result))
    return result
