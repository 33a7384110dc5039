"""`GET /users/stream`: the streamed JSON document, NDJSON, bounds, and bounded server memory."""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from process_memory import process_tree, resident_bytes

if TYPE_CHECKING:
    from integration.users.conftest import SeedUsers


pytestmark = pytest.mark.integration

NDJSON = "application/x-ndjson"
# The stream tests own ages 120..147 (see conftest): their filters read only these few rows.
STREAM_AGE = 140
UserBody = dict[str, Any]


async def test_stream_document_lists_matching_users_then_metadata(
    http: httpx.AsyncClient, seed_users: SeedUsers
) -> None:
    mine = await seed_users(25, STREAM_AGE)

    response = await http.get(
        "/users/stream", params={"age_filter": STREAM_AGE, "fetch_size": 10, "limit": 1_000_000}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "content-length" not in response.headers  # sent as it was read, not built first
    document = json.loads(response.content)
    assert list(document) == ["users", "metadata"]  # the metadata comes after the array
    users, metadata = document["users"], document["metadata"]
    ids = Counter(user["id"] for user in users)
    assert all(ids[user_id] == 1 for user_id in mine)
    assert max(ids.values()) == 1
    assert all(user["age"] >= STREAM_AGE for user in users)
    assert metadata == {
        "total_returned": len(users),
        "pages_fetched": metadata["pages_fetched"],
        "fetch_size": 10,
        "streaming_enabled": True,
    }
    assert metadata["pages_fetched"] >= math.ceil(len(users) / 10)


async def test_stream_without_matches_is_an_empty_document(http: httpx.AsyncClient) -> None:
    # No test stores age 150 except the invalid batch (which stores nothing).
    response = await http.get("/users/stream", params={"age_filter": 150})
    assert response.status_code == 200
    document = response.json()
    assert document["users"] == []
    assert document["metadata"]["total_returned"] == 0
    assert document["metadata"]["fetch_size"] == 100


async def test_stream_ndjson_is_one_user_per_line(
    http: httpx.AsyncClient, seed_users: SeedUsers
) -> None:
    mine = await seed_users(15, STREAM_AGE + 1)

    response = await http.get(
        "/users/stream",
        params={"age_filter": STREAM_AGE + 1, "fetch_size": 10},
        headers={"Accept": NDJSON},
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(NDJSON)
    assert response.text.endswith("\n")
    users = [json.loads(line) for line in response.text.splitlines()]
    assert all(
        set(user) == {"id", "name", "email", "age", "created_at", "updated_at"} for user in users
    )
    ids = Counter(user["id"] for user in users)
    assert all(ids[user_id] == 1 for user_id in mine)
    assert max(ids.values()) == 1


async def test_streamed_users_equal_what_get_returns(
    http: httpx.AsyncClient, user_body: Callable[..., UserBody]
) -> None:
    response = await http.post("/users", json=user_body(age=STREAM_AGE + 2))
    created = response.json()
    streamed = (await http.get("/users/stream", params={"age_filter": STREAM_AGE + 2})).json()
    assert created in streamed["users"]


async def test_stream_stops_at_limit(http: httpx.AsyncClient, seed_users: SeedUsers) -> None:
    await seed_users(12, STREAM_AGE + 3)
    params = {"age_filter": STREAM_AGE + 3, "limit": 5, "fetch_size": 10}

    document = (await http.get("/users/stream", params=params)).json()
    lines = (await http.get("/users/stream", params=params, headers={"Accept": NDJSON})).text

    assert len(document["users"]) == document["metadata"]["total_returned"] == 5
    assert len(lines.splitlines()) == 5


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 1_000_001}, ["query", "limit"]),
        ({"fetch_size": 9}, ["query", "fetch_size"]),
        ({"fetch_size": 5001}, ["query", "fetch_size"]),
        ({"age_filter": -1}, ["query", "age_filter"]),
        ({"age_filter": 151}, ["query", "age_filter"]),
        ({"age_filter": "old"}, ["query", "age_filter"]),
    ],
)
async def test_stream_parameters_out_of_range_are_422(
    http: httpx.AsyncClient, params: dict[str, Any], loc: list[str]
) -> None:
    response = await http.get("/users/stream", params=params)
    assert response.status_code == 422
    assert [issue["loc"] for issue in response.json()["detail"]] == [loc]


async def test_streaming_100k_users_keeps_server_memory_bounded(
    http: httpx.AsyncClient, live_app: Any, bulk_users: int
) -> None:
    pids = process_tree(live_app.process.pid)
    assert len(pids) >= 2, "expected granian's main process and its worker"
    baseline = peak = resident_bytes(pids)
    received_bytes = lines = 0

    async with http.stream(
        "GET",
        "/users/stream",
        params={"limit": 1_000_000, "fetch_size": 500},
        headers={"Accept": NDJSON},
        timeout=120,
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            received_bytes += len(line) + 1
            lines += 1
            if lines % 2000 == 0:
                peak = max(peak, resident_bytes(pids))
    peak = max(peak, resident_bytes(pids))

    assert lines >= bulk_users
    growth = peak - baseline
    print(
        f"\n[users] streamed {lines} users ({received_bytes / 2**20:.1f} MiB); "
        f"server RSS {baseline / 2**20:.0f} MiB -> peak {peak / 2**20:.0f} MiB"
    )
    # Holding the rows would take several times the body's size (a server that buffers them grows
    # by ~85 MiB here), and holding the encoded body at least its size; a bounded stream holds a
    # few 500-row pages, well under a megabyte.
    assert received_bytes > 12 * 2**20
    assert growth < min(60 * 2**20, received_bytes), growth


async def total_queries(http: httpx.AsyncClient) -> int:
    count: int = (await http.get("/metrics")).json()["total_queries"]
    return count


async def test_a_client_that_disconnects_stops_the_read(
    http: httpx.AsyncClient, live_app: Any, bulk_users: int
) -> None:
    """A stream is one traced query, counted by /metrics when it ends: it must end when the client
    goes away, long before its 100k rows could have been read."""
    before = await total_queries(http)
    url = httpx.URL(live_app.base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        b"GET /users/stream?limit=1000000&fetch_size=100 HTTP/1.1\r\nHost: test\r\n"
        b"Accept: application/x-ndjson\r\n\r\n"
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    first_chunk = await reader.read(4096)
    assert first_chunk
    # Still streaming: the server is held back by the unread connection, the query still open.
    assert await total_queries(http) == before

    writer.close()

    async def query_ended() -> None:
        while await total_queries(http) == before:  # noqa: ASYNC110 (state of another process)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(query_ended(), timeout=10)
    assert await total_queries(http) == before + 1
