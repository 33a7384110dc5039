"""The served process's log: JSON lines, one per request, leading to the request's trace; and with
no OTLP endpoint configured, not a word about exporting."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from served import serve_app, stop_app

pytestmark = pytest.mark.integration


def test_request_lines_carry_route_status_and_trace_ids(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    trace_id = secrets.token_hex(16)
    parent_id = secrets.token_hex(8)
    env = {**app_env, "LOG_LEVEL": "INFO"}
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env[name] = ""  # explicitly none, whatever the calling environment says
    served = serve_app(env, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=served.base_url, timeout=30) as client:
            missing = "/users/00000000-0000-4000-8000-000000000000"
            response = client.get(missing, headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
            assert response.status_code == 404
    finally:
        stop_app(served)

    app_lines = [line for line in served.log_text().splitlines() if line.startswith("{")]
    entries: list[dict[str, Any]] = [json.loads(line) for line in app_lines]
    assert entries, served.log_text()[-2000:]
    for entry in entries:
        assert {"timestamp", "level", "logger", "message"} <= set(entry)

    ours = [e for e in entries if e.get("trace_id") == trace_id]
    access = [e for e in ours if e["logger"] == "cqlstar.access"]
    assert len(access) == 1, ours
    (line,) = access
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["route"] == "/users/{user_id}"
    assert line["status"] == 404
    assert line["duration_ms"] > 0
    # No exporter, so no span of ours: the line carries the caller's trace and span.
    assert line["span_id"] == parent_id

    # Requests made while starting up (the /health polls) are logged too; they came with no trace
    # and none is made up for them.
    health = [e for e in entries if e["logger"] == "cqlstar.access" and e["route"] == "/health"]
    assert health
    assert all("trace_id" not in e for e in health)

    # No endpoint, no exporter: nothing tried to connect, so nothing complained about it.
    text = served.log_text().lower()
    for complaint in ("failed to export", "transient error", "exporter", "statuscode.unavailable"):
        assert complaint not in text
