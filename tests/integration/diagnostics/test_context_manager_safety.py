"""`/context_manager_safety/*` over real HTTP: each report's figures, and that the diagnostics leave
no scratch rows behind and never touch the users other clients see."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from cassandra.cluster import Cluster, Session

pytestmark = pytest.mark.integration

MISSING_TABLE = "diagnostics_table_that_does_not_exist"


@pytest.fixture(scope="module")
def cql(cassandra: Any, keyspace: str) -> Iterator[Session]:
    """A plain driver session on this run's keyspace, to look at the tables from outside."""
    cluster = Cluster(list(cassandra.hosts), port=cassandra.port)
    try:
        yield cluster.connect(keyspace)
    finally:
        cluster.shutdown()


def _scratch_rows(cql: Session) -> list[object]:
    return list(cql.execute("SELECT run_id, age, seq FROM diagnostics_scratch"))


def _user_ids(cql: Session) -> set[uuid.UUID]:
    return {row.id for row in cql.execute("SELECT id FROM users")}


@pytest.fixture(autouse=True)
async def leaves_no_trace(http: httpx.AsyncClient, cql: Session) -> AsyncIterator[None]:
    """Every test here must leave the scratch table empty and the users exactly as they were."""
    await http.get("/health")  # the service (and so its scratch table) is up before we look
    users_before = _user_ids(cql)
    yield
    assert _scratch_rows(cql) == []
    assert _user_ids(cql) == users_before


async def test_query_error_reports_the_missing_table_and_a_working_session(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/context_manager_safety/query_error")
    assert response.status_code == 200
    body = response.json()
    health = (await http.get("/health")).json()
    assert body["test"] == "query_error_session_safety"
    assert MISSING_TABLE in body["error_caught"]
    assert body["session_still_works"] is True
    assert body["session_open"] is True
    assert body["cassandra_version"] == health["cassandra_version"]


async def test_streaming_error_is_contained_and_the_session_still_streams(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/context_manager_safety/streaming_error")
    assert response.status_code == 200
    assert response.json() == {
        "test": "streaming_error_session_safety",
        "streaming_error_caught": True,
        "error_message": response.json()["error_message"],
        "session_still_streams": True,
        "rows_after_error": 10,
        "session_open": True,
    }
    assert MISSING_TABLE in response.json()["error_message"]


async def test_concurrent_streams_each_return_their_own_filter(http: httpx.AsyncClient) -> None:
    response = await http.post("/context_manager_safety/concurrent_streams")
    assert response.status_code == 200
    assert response.json() == {
        "test": "concurrent_streams",
        "streams_completed": 3,
        "all_streams_independent": True,
        # 40 scratch rows, one per age 20..59
        "results": [{"age": 30, "count": 30}, {"age": 40, "count": 20}, {"age": 50, "count": 10}],
        "session_still_open": True,
    }


async def test_nested_contexts_close_innermost_first(http: httpx.AsyncClient) -> None:
    status_before = (await http.get("/context_manager_safety/status")).json()
    response = await http.post("/context_manager_safety/nested_contexts")
    assert response.status_code == 200
    assert response.json() == {
        "test": "nested_context_managers",
        "events": [
            "cluster_opened",
            "session_opened",
            "stream_opened",
            "stream_closed",
            "session_closed",
            "cluster_closed",
        ],
        "correct_order": True,
        "row_count": 5,
        "main_session_unaffected": True,
    }
    # Its own cluster came and went; the service's session and cluster are the same ones.
    assert (await http.get("/context_manager_safety/status")).json() == status_before


async def test_cancelled_stream_is_released_and_the_session_carries_on(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/context_manager_safety/cancellation")
    assert response.status_code == 200
    assert response.json() == {
        "test": "streaming_cancellation",
        "was_cancelled": True,
        "rows_processed_before_cancel": 10,
        "session_still_works": True,
        "new_stream_worked": True,
        "session_open": True,
    }


async def test_status_reports_open_resources_with_stable_ids(
    http: httpx.AsyncClient, keyspace: str
) -> None:
    first = await http.get("/context_manager_safety/status")
    await http.post("/context_manager_safety/query_error")
    second = await http.get("/context_manager_safety/status")
    assert first.status_code == second.status_code == 200
    body = first.json()
    assert body["session_open"] is True
    assert body["cluster_open"] is True
    assert body["keyspace"] == keyspace
    uuid.UUID(body["session_id"])
    uuid.UUID(body["cluster_id"])
    assert body["session_id"] != body["cluster_id"]
    assert second.json() == body


async def test_diagnostics_cut_short_by_their_budget_still_remove_their_rows(
    http: httpx.AsyncClient, cql: Session
) -> None:
    # A whole nested_contexts call takes tens of milliseconds on a local node, so these budgets
    # end it at different points: before, during and after its scratch rows exist.
    statuses = []
    for budget in ("0.002", "0.005", "0.01", "0.02", "0.04", "0.08"):
        response = await http.post(
            "/context_manager_safety/nested_contexts", headers={"X-Request-Timeout": budget}
        )
        statuses.append(response.status_code)
        if response.status_code == 504:
            assert response.json() == {"detail": "Gateway Timeout"}
        else:
            assert response.status_code == 200
            assert response.json()["correct_order"] is True
        # The budget cancels the handler once; its cleanup runs during that cancellation, before
        # the 504 goes out, so the rows are gone by the time the client hears back.
        assert _scratch_rows(cql) == []
    assert 504 in statuses
    status = (await http.get("/context_manager_safety/status")).json()
    assert status["session_open"] is True
