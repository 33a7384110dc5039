"""`GET /health` checks every dependency at once and answers within 2 s whatever hangs.

The service here depends on the run's Cassandra, a Redis of this module's own, and an identity
provider of its own: a separate process (`python -m http.server`) serving a discovery document and a
JWKS from files. Both private dependencies are real processes, so the test stops them and freezes
them (SIGSTOP) without touching the Redis and Keycloak that other tests share.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cqlstar import localredis
from oidc import new_rsa_key
from private_redis import redis_on_a_free_port
from served import ServedApp, free_port, serve_app, stop_app

pytestmark = pytest.mark.integration

ANSWER_WITHIN_S = 2.0


@dataclass
class StaticIssuer:
    """An OpenID Connect issuer reduced to its two public documents, in a process of its own."""

    port: int
    root: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/static"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the static issuer did not start")

    def stop(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="module")
def static_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticIssuer]:
    root = tmp_path_factory.mktemp("issuer")
    issuer = StaticIssuer(free_port(), root)
    realm = root / "realms" / "static"
    (realm / ".well-known").mkdir(parents=True)
    (realm / ".well-known" / "openid-configuration").write_text(
        json.dumps(
            {
                "issuer": issuer.issuer,
                "jwks_uri": f"{issuer.issuer}/certs",
                "token_endpoint": f"{issuer.issuer}/token",
            }
        )
    )
    key = new_rsa_key("static-key")
    (realm / "certs").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    issuer.start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def own_redis() -> Iterator[localredis.RedisInstance]:
    with redis_on_a_free_port() as instance:
        yield instance


@pytest.fixture(scope="module")
def checked_app(
    app_env: dict[str, str],
    own_redis: localredis.RedisInstance,
    static_issuer: StaticIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedApp]:
    env = {
        **app_env,
        "REDIS_URL": own_redis.url,
        "CQLSTAR_AUTH": "oidc",
        "OIDC_ISSUER": static_issuer.issuer,
    }
    served = serve_app(env, tmp_path_factory.mktemp("health") / "server.log")
    yield served
    stop_app(served)


def timed_health(app: ServedApp) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = httpx.get(app.base_url + "/health", timeout=10)
    return response.status_code, response.json(), time.monotonic() - started


def wait_until_healthy(app: ServedApp, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = timed_health(app)
        if status == 200 and body["status"] == "healthy":
            return body
        assert time.monotonic() < deadline, f"not healthy again: {body}"
        time.sleep(0.3)


def test_all_up_is_healthy_with_one_check_per_dependency(checked_app: ServedApp) -> None:
    body = wait_until_healthy(checked_app)
    checks = body["checks"]
    assert set(checks) == {"cassandra", "redis", "identity_provider"}
    assert all(check["status"] == "up" for check in checks.values())
    assert checks["cassandra"]["version"].startswith("5.0")
    assert checks["redis"]["version"].startswith("7.0")
    assert checks["redis"]["details"]["rate_limits"] == "enforced"
    assert checks["identity_provider"]["details"]["signing_keys"] == 1
    assert all(check["latency_ms"] >= 0 for check in checks.values())
    # The fields /health always had are still there.
    assert body["cassandra_connected"] is True
    assert body["cassandra_version"] == checks["cassandra"]["version"]


def test_redis_stopped_then_frozen_is_degraded_and_answered_in_time(
    checked_app: ServedApp, own_redis: localredis.RedisInstance
) -> None:
    wait_until_healthy(checked_app)
    localredis.stop(own_redis)
    try:
        status, body, elapsed = timed_health(checked_app)
        assert (status, body["status"]) == (200, "degraded")
        assert body["checks"]["redis"]["status"] == "down"
        assert body["checks"]["cassandra"]["status"] == "up"
        assert body["checks"]["identity_provider"]["status"] == "up"
        assert elapsed < ANSWER_WITHIN_S
    finally:
        localredis.start(own_redis)
    wait_until_healthy(checked_app)

    pid = own_redis.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        status, body, elapsed = timed_health(checked_app)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["redis"] == {
        "status": "down",
        "latency_ms": body["checks"]["redis"]["latency_ms"],
        "error": "timeout",
    }
    assert elapsed < ANSWER_WITHIN_S
    wait_until_healthy(checked_app)


def test_identity_provider_stopped_then_frozen_is_degraded_and_answered_in_time(
    checked_app: ServedApp, static_issuer: StaticIssuer
) -> None:
    wait_until_healthy(checked_app)
    static_issuer.stop()
    try:
        status, body, elapsed = timed_health(checked_app)
        assert (status, body["status"]) == (200, "degraded")
        assert body["checks"]["identity_provider"]["status"] == "down"
        assert body["checks"]["redis"]["status"] == "up"
        assert elapsed < ANSWER_WITHIN_S
    finally:
        static_issuer.start()
    wait_until_healthy(checked_app)

    assert static_issuer.process is not None
    os.kill(static_issuer.process.pid, signal.SIGSTOP)
    try:
        status, body, elapsed = timed_health(checked_app)
    finally:
        os.kill(static_issuer.process.pid, signal.SIGCONT)
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["identity_provider"]["status"] == "down"
    assert body["checks"]["identity_provider"]["error"] == "timeout"
    assert elapsed < ANSWER_WITHIN_S
    wait_until_healthy(checked_app)


def test_everything_frozen_at_once_is_still_answered_within_two_seconds(
    checked_app: ServedApp, own_redis: localredis.RedisInstance, static_issuer: StaticIssuer
) -> None:
    """The checks run side by side: two hung dependencies cost one budget, not two."""
    wait_until_healthy(checked_app)
    frozen = [own_redis.pid(), static_issuer.process.pid if static_issuer.process else None]
    assert None not in frozen
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)  # type: ignore[arg-type]
    try:
        status, body, elapsed = timed_health(checked_app)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)  # type: ignore[arg-type]
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["redis"]["error"] == "timeout"
    assert body["checks"]["identity_provider"]["error"] == "timeout"
    assert elapsed < ANSWER_WITHIN_S
    wait_until_healthy(checked_app)


def test_cassandra_unreachable_is_unhealthy_503(
    app_env: dict[str, str], own_redis: localredis.RedisInstance, tmp_path: Path
) -> None:
    env = {**app_env, "REDIS_URL": own_redis.url, "CASSANDRA_PORT": str(free_port())}
    served = serve_app(env, tmp_path / "server.log", wait_healthy=False)
    try:
        status, body, elapsed = timed_health(served)
    finally:
        stop_app(served)
    assert (status, body["status"]) == (503, "unhealthy")
    assert body["checks"]["cassandra"]["status"] == "down"
    assert body["checks"]["redis"]["status"] == "up"
    assert "identity_provider" not in body["checks"]  # authentication is off here
    assert body["auth"] == "disabled"
    assert elapsed < ANSWER_WITHIN_S
