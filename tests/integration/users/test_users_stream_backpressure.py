"""Streams under clients that read slowly or not at all, over real HTTP to the granian-served service.

Stalled readers are raw sockets that send the request and never read. They must cost the service a
few pages each, not the rows they have not read; the streams in progress are capped
(`CQLSTAR_MAX_STREAMS`), beyond which the answer is 503 with Retry-After; a stalled reader that
starts reading gets every row; and a stream cut short after its status line is logged with its
cause and trace id, and ends without the chunked body's last chunk.

Memory is checked as bounded growth only, against a generous bound (pages per stream times the
cap), never a duration: the waits below poll a condition with a bound on how long they may take.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from process_memory import process_tree, resident_bytes
from served import ServedApp, serve_app, stop_app

pytestmark = pytest.mark.integration

MAX_STREAMS = 4
FETCH_SIZE = 5000
STREAM_PATH = f"/users/stream?limit=1000000&fetch_size={FETCH_SIZE}"
# A stalled client's receive buffer: small, so that what is held is the server's doing.
CLIENT_RCVBUF = 64 * 1024
# What a stalled stream may hold, in pages of NDJSON: the prefetched page's rows (about twice their
# NDJSON size), the encoded page being handed over, a few pieces queued in granian. Measured: about
# two to three and a half. A server that reads ahead of its socket holds every page it read.
PAGES_PER_STALLED_STREAM = 8


def settled_rss(root: int, *, within_s: float = 30.0) -> int:
    """The RSS once it stops moving (two samples a second apart within 1%), or the last sample."""
    previous = resident_bytes(process_tree(root))
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        time.sleep(1.0)
        current = resident_bytes(process_tree(root))
        if abs(current - previous) < previous / 100:
            return current
        previous = current
    return previous


class StalledReader:
    """A raw connection that asks for the stream and then reads nothing, until told to."""

    def __init__(self, base_url: str, path: str, headers: dict[str, str] | None = None) -> None:
        url = httpx.URL(base_url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
        self.sock.connect((url.host, url.port or 80))
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: application/x-ndjson\r\n{extra}\r\n".encode()
        )
        self._buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(256 * 1024)
        self._buffer += data
        return bool(data)

    def head(self) -> tuple[int, dict[str, str]]:
        self.sock.settimeout(30)
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                raise AssertionError(f"connection closed before the head: {self._buffer[:200]!r}")
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines)}
        return int(status_line.split()[1]), headers

    def chunks(self) -> Iterator[bytes]:
        """The chunked body's chunks; ends at the last chunk, or raises EOFError when the
        connection closes before it (a body cut short)."""
        while True:
            while b"\r\n" not in self._buffer:
                if not self._fill():
                    raise EOFError
            size_line, self._buffer = self._buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(self._buffer) < size + 2:
                if not self._fill():
                    raise EOFError
            chunk, self._buffer = self._buffer[:size], self._buffer[size + 2 :]
            if size == 0:
                return
            yield chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def capped_app(
    app_env: dict[str, str], bulk_users: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The service with room for MAX_STREAMS streams, over the run's 100k bulk users."""
    served = serve_app(
        {**app_env, "CQLSTAR_MAX_STREAMS": str(MAX_STREAMS)},
        tmp_path_factory.mktemp("capped") / "server.log",
    )
    yield served
    stop_app(served)


def ndjson_page_bytes(base_url: str) -> int:
    """The NDJSON size of one FETCH_SIZE page of the bulk users, from a sample of them."""
    lines = httpx.get(
        f"{base_url}/users/stream",
        params={"limit": 1000, "fetch_size": 1000},
        headers={"Accept": "application/x-ndjson"},
        timeout=30,
    ).content
    return len(lines) * FETCH_SIZE // 1000


def test_stalled_readers_hold_a_few_pages_each_and_the_cap_refuses_the_rest(
    capped_app: ServedApp, bulk_users: int
) -> None:
    page_bytes = ndjson_page_bytes(capped_app.base_url)
    root = capped_app.process.pid
    baseline = settled_rss(root)
    stalled = [StalledReader(capped_app.base_url, STREAM_PATH) for _ in range(MAX_STREAMS)]
    try:
        # Each has its status line (the first page is read before it): the streams are under way.
        for reader in stalled:
            status, _ = reader.head()
            assert status == 200
        held = settled_rss(root)

        over = httpx.get(
            capped_app.base_url + STREAM_PATH,
            headers={"Accept": "application/x-ndjson"},
            timeout=30,
        )
        assert over.status_code == 503
        assert over.headers["retry-after"] == "2"
        assert over.json() == {"detail": "Too many streams in progress"}
        # The worker still serves everything else.
        assert httpx.get(capped_app.base_url + "/health", timeout=30).status_code == 200

        growth = held - baseline
        bound = MAX_STREAMS * PAGES_PER_STALLED_STREAM * page_bytes
        print(
            f"\n[streams] {MAX_STREAMS} stalled readers, pages of {page_bytes / 2**20:.2f} MiB: "
            f"server RSS {baseline / 2**20:.0f} -> {held / 2**20:.0f} MiB "
            f"({growth / MAX_STREAMS / page_bytes:.1f} pages per stream)"
        )
        # A stream that read ahead of its socket could hold several times the bound: every page.
        assert bulk_users / FETCH_SIZE > 2 * PAGES_PER_STALLED_STREAM
        assert growth < bound, (growth, bound)

        # A stalled reader that starts reading gets every row, and the body's last chunk.
        first = stalled.pop()
        lines = sum(chunk.count(b"\n") for chunk in first.chunks())
        assert lines >= bulk_users
        first.close()
    finally:
        for reader in stalled:
            reader.close()

    # The slots come back when the clients leave: as many streams as the cap, once more.
    def all_open() -> bool:
        readers = [StalledReader(capped_app.base_url, STREAM_PATH) for _ in range(MAX_STREAMS)]
        try:
            return all(reader.head()[0] == 200 for reader in readers)
        finally:
            for reader in readers:
                reader.close()

    deadline = time.monotonic() + 30
    while not all_open():
        assert time.monotonic() < deadline, "the slots of closed streams did not come back"
        time.sleep(0.5)


async def test_a_stream_cut_short_by_its_budget_is_logged_with_cause_and_trace(
    capped_app: ServedApp, bulk_users: int
) -> None:
    """X-Request-Timeout ends a stream whose client reads too slowly to finish in time: after the
    status line, so the client sees the body cut short, and the log says why, under the trace."""
    log_before = len(capped_app.log_text())
    reader = StalledReader(
        capped_app.base_url,
        "/users/stream?limit=1000000&fetch_size=100",
        headers={"X-Request-Timeout": "1", "traceparent": TRACEPARENT},
    )
    try:
        status, _ = await asyncio.to_thread(reader.head)
        assert status == 200
        await asyncio.sleep(2)  # the budget runs out while the reader has read nothing more
        with pytest.raises(EOFError):
            for _chunk in reader.chunks():
                pass
    finally:
        reader.close()

    def early_end() -> dict[str, Any] | None:
        for line in capped_app.log_text()[log_before:].splitlines():
            if '"stream ended early"' in line:
                record: dict[str, Any] = json.loads(line)
                return record
        return None

    deadline = time.monotonic() + 10
    while (record := early_end()) is None:
        assert time.monotonic() < deadline, capped_app.log_text()[log_before:][-3000:]
        await asyncio.sleep(0.2)
    assert record["trace_id"] == TRACE_ID
    # The budget is the cause, whichever saw it first: the driver timing out the page fetch it
    # had been given the time left for, or the next fetch finding no time left.
    assert record["error_type"] in {
        "cassandra.OperationTimedOut",
        "cqlstar.aiocassandra.budget.BudgetExceeded",
    }
    assert record["cause"]
    assert record["path"] == "/users/stream"


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
