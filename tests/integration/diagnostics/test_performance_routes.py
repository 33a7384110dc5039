"""`/performance/async` and `/performance/sync` over real HTTP: real reads, counted and timed."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration

ROUTES = ("/performance/async", "/performance/sync")


def _assert_consistent(body: dict[str, object], requests: int, mode: str) -> None:
    assert body["requests"] == requests
    assert body["successful_requests"] == requests
    assert body["mode"] == mode
    total = body["total_time"]
    assert isinstance(total, float)
    assert total > 0
    assert body["avg_time_per_request"] == pytest.approx(total / requests)
    assert body["requests_per_second"] == pytest.approx(requests / total)


async def test_async_mode_defaults_to_100_concurrent_reads(http: httpx.AsyncClient) -> None:
    response = await http.get("/performance/async")
    assert response.status_code == 200
    _assert_consistent(response.json(), 100, "async")


async def test_async_mode_accepts_the_upper_bound(http: httpx.AsyncClient) -> None:
    response = await http.get("/performance/async", params={"requests": 1000})
    assert response.status_code == 200
    _assert_consistent(response.json(), 1000, "async")


async def test_sync_mode_runs_the_reads_one_by_one(http: httpx.AsyncClient) -> None:
    response = await http.get("/performance/sync", params={"requests": 20})
    assert response.status_code == 200
    _assert_consistent(response.json(), 20, "sync")


async def test_a_single_read_is_allowed(http: httpx.AsyncClient) -> None:
    response = await http.get("/performance/sync", params={"requests": 1})
    assert response.status_code == 200
    _assert_consistent(response.json(), 1, "sync")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("requests", ["0", "1001", "-5", "many"])
async def test_requests_outside_1_to_1000_answer_422(
    http: httpx.AsyncClient, route: str, requests: str
) -> None:
    response = await http.get(route, params={"requests": requests})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail[0]["loc"] == ["query", "requests"]
