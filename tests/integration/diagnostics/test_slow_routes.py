"""`/slow_query` and `/long_running_query`: request budgets, and a slow request blocking nobody."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from served import ServedApp

pytestmark = pytest.mark.integration


async def test_slow_query_answers_504_when_the_budget_runs_out(http: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await http.get("/slow_query", headers={"X-Request-Timeout": "1"})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json() == {"detail": "Gateway Timeout"}
    # Not a performance bound: the answer must come when the 1 s budget ends, not after the
    # route's full 5 s wait.
    assert elapsed < 4.5


async def test_slow_query_completes_within_a_long_enough_budget(http: httpx.AsyncClient) -> None:
    response = await http.get("/slow_query", headers={"X-Request-Timeout": "15"})
    assert response.status_code == 200
    assert response.json() == {"message": "Slow query completed"}


@pytest.mark.parametrize("value", ["soon", "0", "-1", "61", "nan", "inf"])
async def test_a_malformed_budget_answers_400(http: httpx.AsyncClient, value: str) -> None:
    response = await http.get("/slow_query", headers={"X-Request-Timeout": value})
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid X-Request-Timeout header"}


async def _raw_get(base_url: str, path: str, sent: asyncio.Event) -> tuple[int, bytes]:
    """GET over a plain connection, setting `sent` once the whole request is on the wire: unlike
    an HTTP client call, that tells the test when the server has the request to work on."""
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {url.host}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        sent.set()
        raw = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_other_requests_are_served_while_a_long_query_runs(
    http: httpx.AsyncClient, live_app: ServedApp
) -> None:
    sent = asyncio.Event()
    long_query = asyncio.create_task(_raw_get(live_app.base_url, "/long_running_query", sent))
    try:
        await sent.wait()
        health = await http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "healthy"
        reads = await http.get("/performance/async", params={"requests": 10})
        assert reads.status_code == 200
        assert not long_query.done(), "the long query answered before the others were served"
        status, body = await long_query
    finally:
        long_query.cancel()
    assert status == 200
    assert json.loads(body) == {"message": "Long query completed"}
