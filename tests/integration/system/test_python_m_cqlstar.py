"""`python -m cqlstar` as every caller runs it: listening on the PORT it was given, healthy on Cassandra."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from cqlstar.serving import serve_command
from served import ServedApp

pytestmark = pytest.mark.integration


def test_python_m_cqlstar_serves_health_on_the_port_from_the_environment(
    live_app: ServedApp,
) -> None:
    # The run's shared service is started by tests/served.py with PORT set to a free port.
    assert live_app.process.args == serve_command()
    port = urlsplit(live_app.base_url).port
    response = httpx.get(f"{live_app.base_url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["cassandra_connected"] is True
    assert f"Listening at: http://127.0.0.1:{port}" in live_app.log_text()
