"""`/`, `/health`, `/openapi.json` and `/shutdown` over HTTP, against the granian-served service."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from served import serve_app, stop_app

pytestmark = pytest.mark.integration

RFC3339_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_welcome_names_the_service_and_its_docs(http: httpx.AsyncClient) -> None:
    body = (await http.get("/")).json()
    assert body["docs"] == "/docs"
    assert body["version"] == "0.1.0"
    assert "cqlstar" in body["message"]


async def test_health_reports_the_clusters_release_and_keyspace(
    http: httpx.AsyncClient, keyspace: str
) -> None:
    response = await http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["cassandra_connected"] is True
    assert body["cassandra"] == "connected"
    assert body["cassandra_version"].startswith("5.0")
    assert body["keyspace"] == keyspace
    assert RFC3339_MS_UTC.match(body["timestamp"]), body["timestamp"]


async def test_openapi_document_is_served_at_the_root_and_under_docs(
    http: httpx.AsyncClient,
) -> None:
    root = await http.get("/openapi.json")
    assert root.status_code == 200
    assert root.json()["openapi"].startswith("3.1")
    assert root.json() == (await http.get("/docs/openapi.json")).json()
    assert "/users/{user_id}" in root.json()["paths"]
    assert "text/html" in (await http.get("/docs")).headers["content-type"]


async def test_shutdown_is_refused_unless_enabled(http: httpx.AsyncClient) -> None:
    response = await http.post("/shutdown")
    assert response.status_code == 403
    assert response.json() == {"detail": "The shutdown endpoint is disabled"}
    assert (await http.get("/health")).status_code == 200


def test_enabled_shutdown_answers_then_drains_and_exits(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    app = serve_app({**app_env, "CQLSTAR_ENABLE_SHUTDOWN": "true"}, tmp_path / "server.log")
    try:
        response = httpx.post(f"{app.base_url}/shutdown", timeout=10)
        assert response.status_code == 202
        assert response.json() == {"message": "Shutdown initiated"}
        # granian drains and exits by itself: no signal from the test.
        assert app.process.wait(timeout=30) == 0
    finally:
        if app.process.poll() is None:
            stop_app(app)
