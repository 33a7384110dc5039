"""Broadcast survives Redis going away: after a Redis restart, or when Redis first answers after the
service started without it, changes reach readers without restarting the service, and the readers'
connections are never dropped for it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cqlstar import localredis
from private_redis import redis_on_a_free_port
from served import ServedApp, serve_app, stop_app
from ws_client import WsClient, ws_connect

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def restartable_redis() -> Iterator[localredis.RedisInstance]:
    with redis_on_a_free_port() as instance:
        yield instance


@pytest.fixture(scope="module")
def app_on_own_redis(
    app_env: dict[str, str],
    restartable_redis: localredis.RedisInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedApp]:
    env = {**app_env, "REDIS_URL": restartable_redis.url}
    served = serve_app(env, tmp_path_factory.mktemp("ws-redis-restart") / "server.log")
    yield served
    stop_app(served)


def new_user() -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    return {"name": f"Restart {tag}", "email": f"r.{tag}@example.com", "age": 30}


async def broadcast_reaches(http: httpx.AsyncClient, reader: WsClient, within_s: float) -> None:
    """Create users until one's event reaches `reader`: changes made while the subscription is
    still away are missed (pub/sub keeps no history), later ones must arrive."""
    deadline = time.monotonic() + within_s
    while True:
        created = await http.post("/users", json=new_user())
        assert created.status_code == 201
        try:
            await reader.event_for(created.json()["id"], "created", timeout=1)
            return
        except TimeoutError:
            assert time.monotonic() < deadline, "no event reached the reader"
            await asyncio.sleep(0.5)


async def test_broadcast_resumes_after_redis_restarts(
    app_on_own_redis: ServedApp, restartable_redis: localredis.RedisInstance
) -> None:
    async with (
        httpx.AsyncClient(base_url=app_on_own_redis.base_url, timeout=30) as http,
        ws_connect(app_on_own_redis.base_url) as reader,
    ):
        before = (await http.post("/users", json=new_user())).json()["id"]
        await reader.event_for(before, "created")
        errors_before = (await http.get("/metrics")).json()["websocket"][
            "broadcast_subscription_errors"
        ]

        localredis.stop(restartable_redis)
        localredis.start(restartable_redis)

        await broadcast_reaches(http, reader, within_s=20)
        assert reader.close_code is None
        after = (await http.post("/users", json=new_user())).json()["id"]
        await reader.event_for(after, "created")
        # The lost subscription is on the operator's dashboard.
        figures = (await http.get("/metrics")).json()["websocket"]
        assert figures["broadcast_subscription_errors"] > errors_before


async def test_a_service_started_while_redis_is_down_broadcasts_once_it_answers(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    with redis_on_a_free_port(started=False) as late:
        served = serve_app({**app_env, "REDIS_URL": late.url}, tmp_path / "server.log")
        try:
            async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
                health = (await http.get("/health")).json()
                assert health["status"] == "degraded"
                assert health["checks"]["redis"]["status"] == "down"
                async with ws_connect(served.base_url) as reader:
                    localredis.start(late)
                    await broadcast_reaches(http, reader, within_s=20)
                    assert (await http.get("/health")).json()["status"] == "healthy"
        finally:
            stop_app(served)
