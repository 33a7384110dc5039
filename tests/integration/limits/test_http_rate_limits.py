"""HTTP rate limits over real HTTP, against real Redis: exact across processes, headers on every
answer of a limited route, 429 before anything runs, and failing open while Redis is away.

The service runs with `CQLSTAR_AUTH` unset or disabled here (no principal), so the window is the
client address's: every request of a test shares one window, which is what these tests count.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cassandra.cluster import Cluster

from cqlstar import localredis
from served import ServedApp, free_port, serve_app, stop_app

pytestmark = pytest.mark.integration

LIMIT = 20


def served_with(
    app_env: dict[str, str], redis: localredis.RedisInstance, log: Path, **env: str
) -> ServedApp:
    return serve_app({**app_env, "REDIS_URL": redis.url, **env}, log)


@pytest.fixture(scope="module")
def two_services(
    app_env: dict[str, str],
    private_redis: localredis.RedisInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServedApp, ServedApp]]:
    logs = tmp_path_factory.mktemp("limits")
    first = served_with(app_env, private_redis, logs / "a.log", RATE_LIMIT=f"{LIMIT}/minute")
    second = served_with(app_env, private_redis, logs / "b.log", RATE_LIMIT=f"{LIMIT}/minute")
    yield first, second
    stop_app(first)
    stop_app(second)


def flush_windows(redis: localredis.RedisInstance) -> None:
    """Empty the private Redis between tests, so each starts with a full window."""
    import redis as redis_client

    client = redis_client.Redis.from_url(redis.url)
    try:
        client.flushdb()
    finally:
        client.close()


async def test_many_concurrent_requests_from_two_processes_let_exactly_the_limit_through(
    two_services: tuple[ServedApp, ServedApp], private_redis: localredis.RedisInstance
) -> None:
    flush_windows(private_redis)
    attempts = 6 * LIMIT
    async with (
        httpx.AsyncClient(base_url=two_services[0].base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=two_services[1].base_url, timeout=30) as b,
    ):
        answers = await asyncio.gather(
            *((a if i % 2 else b).get(f"/users/{uuid.uuid4()}") for i in range(attempts))
        )
    statuses = Counter(answer.status_code for answer in answers)
    # A random id is not found: 404 is a served answer, limited like any other.
    assert statuses == {404: LIMIT, 429: attempts - LIMIT}
    # Each process took half the requests; per-process windows would have let 2 * LIMIT through.
    remaining = sorted(int(answer.headers["x-ratelimit-remaining"]) for answer in answers)
    assert remaining.count(0) == attempts - LIMIT + 1
    assert sorted(set(remaining)) == list(range(LIMIT))


async def test_every_answer_of_a_limited_route_carries_the_headers(
    two_services: tuple[ServedApp, ServedApp], private_redis: localredis.RedisInstance
) -> None:
    flush_windows(private_redis)
    async with httpx.AsyncClient(base_url=two_services[0].base_url, timeout=30) as client:
        found = await client.get("/users", params={"limit": 1})
        missing = await client.get(f"/users/{uuid.uuid4()}")
        invalid = await client.post("/users", json={"name": ""})
        # Refused by a middleware before the handler (it raises; Litestar renders the error
        # outside the limit's middleware): these came without the headers, though counted.
        media_type = await client.post(
            "/users", content="{}", headers={"content-type": "text/plain"}
        )
        query = await client.get("/users", params={"limit": "1e1"})
        for answer, status, remaining in (
            (found, 200, 19),
            (missing, 404, 18),
            (invalid, 422, 17),
            (media_type, 415, 16),
            (query, 422, 15),
        ):
            assert answer.status_code == status
            assert answer.headers["x-ratelimit-limit"] == str(LIMIT)
            assert answer.headers["x-ratelimit-remaining"] == str(remaining)
            assert 59 <= int(answer.headers["x-ratelimit-reset"]) <= 60
        # Open routes are not limited and say nothing about limits.
        for path in ("/", "/health", "/metrics", "/openapi.json", "/docs"):
            answer = await client.get(path)
            assert answer.status_code == 200, path
            assert "x-ratelimit-limit" not in answer.headers, path


async def test_over_the_limit_the_request_does_nothing(
    two_services: tuple[ServedApp, ServedApp],
    private_redis: localredis.RedisInstance,
    cassandra: Any,  # the session's CassandraTarget
    keyspace: str,
) -> None:
    flush_windows(private_redis)
    marker = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=two_services[1].base_url, timeout=30) as client:
        for _ in range(LIMIT):
            assert (await client.get(f"/users/{uuid.uuid4()}")).status_code == 404
        created = await client.post(
            "/users", json={"name": "Over", "email": f"{marker}@example.com", "age": 30}
        )
        # Over the limit, even a malformed body is answered 429: nothing was read or validated.
        malformed = await client.post("/users", content=b"{not json")
    assert created.status_code == 429
    assert created.json() == {"detail": "Rate limit exceeded"}
    assert 1 <= int(created.headers["retry-after"]) <= 60
    assert created.headers["x-ratelimit-remaining"] == "0"
    assert malformed.status_code == 429
    cluster = Cluster(list(cassandra.hosts), port=cassandra.port)
    try:
        emails = {row.email for row in cluster.connect(keyspace).execute("SELECT email FROM users")}
    finally:
        cluster.shutdown()
    assert f"{marker}@example.com" not in emails


async def test_a_slot_frees_when_the_oldest_request_leaves_the_window(
    app_env: dict[str, str],
    private_redis: localredis.RedisInstance,
    tmp_path: Path,
) -> None:
    flush_windows(private_redis)
    served = served_with(app_env, private_redis, tmp_path / "s.log", RATE_LIMIT="2/second")
    try:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
            statuses = [(await client.get(f"/users/{uuid.uuid4()}")).status_code for _ in range(3)]
            assert statuses == [404, 404, 429]
            await asyncio.sleep(1.1)
            assert (await client.get(f"/users/{uuid.uuid4()}")).status_code == 404
    finally:
        stop_app(served)


async def test_limits_fail_open_while_redis_is_stopped_or_frozen_and_resume_by_themselves(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    redis = localredis.RedisInstance(free_port())
    localredis.start(redis)
    served = served_with(app_env, redis, tmp_path / "s.log", RATE_LIMIT="3/minute")
    try:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:

            async def statuses(count: int) -> list[int]:
                return [
                    (await client.get(f"/users/{uuid.uuid4()}")).status_code for _ in range(count)
                ]

            assert await statuses(4) == [404, 404, 404, 429]

            localredis.stop(redis)
            # Served, without limit headers (there is no count to report), and promptly.
            started = time.monotonic()
            answers = [await client.get(f"/users/{uuid.uuid4()}") for _ in range(10)]
            assert [a.status_code for a in answers] == [404] * 10
            assert all("x-ratelimit-limit" not in a.headers for a in answers)
            assert time.monotonic() - started < 5

            localredis.start(redis)  # an empty Redis: the window starts again
            deadline = time.monotonic() + 10
            while (
                "x-ratelimit-limit" not in (await client.get("/users/" + str(uuid.uuid4()))).headers
            ):
                assert time.monotonic() < deadline, "limits did not resume after Redis came back"
                await asyncio.sleep(0.2)
            assert await statuses(3) == [404, 404, 429]

            pid = redis.pid()
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                answers = [await client.get(f"/users/{uuid.uuid4()}") for _ in range(10)]
                assert [a.status_code for a in answers] == [404] * 10
                # The first waits for the window's timeout; the others fail open at once.
                assert time.monotonic() - started < 3
            finally:
                os.kill(pid, signal.SIGCONT)
            deadline = time.monotonic() + 10
            while (await client.get("/users/" + str(uuid.uuid4()))).status_code != 429:
                assert time.monotonic() < deadline, "limits did not resume after Redis thawed"
                await asyncio.sleep(0.2)
        assert "rate limits fail open" in served.log_text()
    finally:
        stop_app(served)
        localredis.stop(redis)
