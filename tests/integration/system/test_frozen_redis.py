"""A frozen Redis (it accepts connections and never answers) does not hold up what only fails open on
it: a change's broadcast publish, a connect's connection-limit check and a logout's revocation give
up as promptly as the rate limits do, instead of waiting out the Redis client's 5 s socket
backstop."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cqlstar import localredis
from oidc import bearer, keycloak_login
from private_redis import redis_on_a_free_port
from served import ServedApp, serve_app, stop_app
from ws_client import ws_connect

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def frozen_redis() -> Iterator[localredis.RedisInstance]:
    with redis_on_a_free_port() as instance:
        yield instance


@pytest.fixture(scope="module")
def app_on_frozen_redis(
    app_env: dict[str, str],
    keycloak: Any,
    frozen_redis: localredis.RedisInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedApp]:
    env = {**app_env, **keycloak.env, "REDIS_URL": frozen_redis.url, "WS_MAX_CONNECTIONS": "5"}
    served = serve_app(env, tmp_path_factory.mktemp("frozen-redis") / "server.log")
    yield served
    stop_app(served)


async def test_writes_connects_and_logouts_do_not_wait_for_a_frozen_redis(
    app_on_frozen_redis: ServedApp, frozen_redis: localredis.RedisInstance, keycloak: Any
) -> None:
    session = keycloak_login(keycloak, "alice")
    token = session["access_token"]
    pid = frozen_redis.pid()
    assert pid is not None
    async with httpx.AsyncClient(
        base_url=app_on_frozen_redis.base_url, timeout=30, headers=bearer(token)
    ) as http:
        os.kill(pid, signal.SIGSTOP)
        try:
            # The write is made and answered: its publish fails (counted) within the request's
            # 2 s budget. It waited 5 s for the publish before, so the client got 504 for a
            # user that had been created.
            tag = uuid.uuid4().hex[:10]
            created = await http.post(
                "/users",
                json={"name": f"Frozen {tag}", "email": f"f.{tag}@example.com", "age": 30},
                headers={"X-Request-Timeout": "2"},
            )
            assert created.status_code == 201, created.text
            found = await http.get(f"/users/{created.json()['id']}")
            assert found.status_code == 200

            # The connection limit fails open promptly too (its check waited 5 s before).
            started = time.monotonic()
            async with ws_connect(app_on_frozen_redis.base_url, token=token) as ws:
                answer = await ws.request(1, {"limit": 1})
            assert answer["status_code"] == 0
            assert time.monotonic() - started < 3

            # The revocation cannot be shared: 503 with Retry-After (the client retries), within
            # the request's budget (it waited 5 s for Redis before: 504).
            logout = await http.post(
                "/logout",
                json={"refresh_token": session["refresh_token"]},
                headers={"X-Request-Timeout": "2"},
            )
            assert logout.status_code == 503, logout.text
            assert "retry-after" in logout.headers
        finally:
            os.kill(pid, signal.SIGCONT)
        metrics = (await http.get("/metrics")).json()["websocket"]
        assert metrics["broadcast_publish_failures"] >= 1
        assert metrics["slot_failures"] >= 1
