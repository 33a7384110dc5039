"""The service rides out Cassandra being late, stopping, hanging and coming back: no restart needed.

This test owns a throwaway second node on its own port, so stopping it disturbs nobody else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from polling import wait_until
from served import ROOT, ServedApp, serve_app, stop_app

pytestmark = pytest.mark.integration

NODE_PORT = 9142


def _node(action: str) -> None:
    env = {**os.environ, "CQLSTAR_NODE_PORT": str(NODE_PORT)}
    subprocess.run(
        [sys.executable, "-m", "cqlstar.localnode", action], cwd=ROOT, env=env, check=True
    )


def _node_pid() -> int:
    from cqlstar.localnode import cache_root

    return int((cache_root() / f"node-{NODE_PORT}" / "cassandra.pid").read_text())


def _status(app: ServedApp, path: str) -> int:
    try:
        return httpx.get(app.base_url + path, timeout=5).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture
def late_service(tmp_path: Path) -> Iterator[ServedApp]:
    """The service started BEFORE its Cassandra exists; the node is removed afterwards."""
    _node("stop")
    env = {
        "CASSANDRA_HOSTS": "127.0.0.1",
        "CASSANDRA_PORT": str(NODE_PORT),
        "CASSANDRA_KEYSPACE": f"outage_{uuid.uuid4().hex[:8]}",
        "CQLSTAR_AUTH": "disabled",  # this test is about Cassandra, not tokens
    }
    app = serve_app(env, tmp_path / "server.log", wait_healthy=False)
    try:
        yield app
    finally:
        stop_app(app)
        _node("reset")


def test_health_follows_cassandra_without_a_restart(late_service: ServedApp) -> None:
    app = late_service
    health = app.base_url + "/health"

    # No database yet: the process serves, and says it is unhealthy.
    response = httpx.get(health, timeout=5)
    assert response.status_code == 503
    assert response.json()["cassandra_connected"] is False
    assert response.json()["status"] == "unhealthy"
    assert _status(app, "/") == 200

    # The database arrives late: the background connection finds it.
    _node("start")
    wait_until(
        lambda: _status(app, "/health") == 200,
        timeout=60,
        interval=0.5,
        message="healthy after Cassandra started",
    )
    body = httpx.get(health, timeout=5).json()
    assert body["cassandra_connected"] is True
    assert body["cassandra"] == "connected"
    assert body["cassandra_version"].startswith("5.0")

    # Cassandra stops: 503, and data routes answer 503 with Retry-After too.
    _node("stop")
    wait_until(
        lambda: _status(app, "/health") == 503,
        timeout=30,
        interval=0.5,
        message="unhealthy after Cassandra stopped",
    )
    assert httpx.get(health, timeout=5).json()["checks"]["cassandra"]["status"] == "down"
    users = httpx.get(app.base_url + "/users?limit=1", timeout=10)
    if users.status_code != 404:  # the Users routes exist
        assert users.status_code == 503
        assert "Retry-After" in users.headers

    # It comes back: same process, healthy again.
    _node("start")
    wait_until(
        lambda: _status(app, "/health") == 200,
        timeout=90,
        interval=0.5,
        message="healthy after Cassandra restarted",
    )

    # A hung node (not dead, just silent): /health still answers within its 2 s promise.
    pid = _node_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = httpx.get(health, timeout=10)
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert response.status_code == 503
    assert elapsed < 2.0
    assert response.json()["status"] == "unhealthy"
    assert response.json()["checks"]["cassandra"] == {
        "status": "down",
        "latency_ms": response.json()["checks"]["cassandra"]["latency_ms"],
        "error": "timeout",
    }
    assert app.process.poll() is None
