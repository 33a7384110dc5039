"""`GET /metrics` on the granian-served service: the figures move with the traffic sent."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

FIELDS = {
    "total_queries",
    "errors_count",
    "queries_per_second",
    "average_query_time_ms",
    "active_connections",
    "total_requests",
    "query_performance",
    "cassandra_connections",
    "websocket",
}


async def read_metrics(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/metrics")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_metrics_report_every_field(http: httpx.AsyncClient) -> None:
    body = await read_metrics(http)
    assert set(body) == FIELDS
    assert set(body["query_performance"]) == {
        "avg_response_time_ms",
        "p95_response_time_ms",
        "p99_response_time_ms",
    }
    assert set(body["cassandra_connections"]) == {"active", "total"}
    # The service is connected (live_app waited for /health), so the driver holds connections.
    assert body["cassandra_connections"]["total"] >= 1
    assert 0 <= body["cassandra_connections"]["active"] <= body["cassandra_connections"]["total"]
    # This very request is being served while the figures are read.
    assert body["active_connections"] >= 1


async def test_figures_move_with_traffic(http: httpx.AsyncClient) -> None:
    before = await read_metrics(http)

    created = []
    for n in range(5):
        body = {"name": f"Metric {n}", "email": f"metric-{uuid.uuid4().hex}@example.com", "age": 30}
        response = await http.post("/users", json=body)
        assert response.status_code == 201
        created.append(response.json()["id"])
    for user_id in created:
        assert (await http.get(f"/users/{user_id}")).status_code == 200
    # This diagnostic runs a query against a table that does not exist: one failed query span.
    failing = await http.post("/context_manager_safety/query_error")
    assert failing.status_code == 200

    after = await read_metrics(http)
    # 5 creates + 5 reads + the diagnostic + the first /metrics call, all finished.
    assert after["total_requests"] >= before["total_requests"] + 12
    assert after["total_queries"] >= before["total_queries"] + 10
    assert after["errors_count"] >= before["errors_count"] + 1
    assert after["queries_per_second"] > 0
    assert after["average_query_time_ms"] > 0
    performance = after["query_performance"]
    assert 0 < performance["p95_response_time_ms"] <= performance["p99_response_time_ms"]
    assert performance["avg_response_time_ms"] > 0


async def test_counters_never_go_back(http: httpx.AsyncClient) -> None:
    readings = [await read_metrics(http) for _ in range(3)]
    for earlier, later in itertools.pairwise(readings):
        for counter in ("total_requests", "total_queries", "errors_count"):
            assert later[counter] >= earlier[counter]
        assert later["total_requests"] > earlier["total_requests"]
