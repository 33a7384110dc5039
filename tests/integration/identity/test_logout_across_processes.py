"""A logout on one process is honoured by every process sharing the Redis, including one that
starts afterwards, while each request still checks revocation locally (no Redis round trip)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from oidc import bearer, keycloak_login, wait_for
from served import ServedApp, serve_app, stop_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_processes(
    auth_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServedApp, ServedApp]]:
    assert auth_env.get("REDIS_URL"), "these tests need the run's Redis"
    first = serve_app(auth_env, tmp_path_factory.mktemp("first") / "server.log")
    second = serve_app(auth_env, tmp_path_factory.mktemp("second") / "server.log")
    yield first, second
    stop_app(first)
    stop_app(second)


def _status(app: ServedApp, token: str) -> int:
    return httpx.get(f"{app.base_url}/users?limit=1", headers=bearer(token), timeout=30).status_code


def test_a_logout_reaches_every_process_and_one_started_later(
    two_processes: tuple[ServedApp, ServedApp],
    auth_env: dict[str, str],
    keycloak: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    first, second = two_processes
    session = keycloak_login(keycloak, "bob")
    other_session = keycloak_login(keycloak, "bob")["access_token"]
    access = session["access_token"]
    # Both processes have checked (and cached) the token as valid.
    assert _status(first, access) == 200
    assert _status(second, access) == 200

    logout = httpx.post(
        f"{first.base_url}/logout",
        json={"refresh_token": session["refresh_token"]},
        headers=bearer(access),
        timeout=30,
    )
    assert logout.status_code == 204, logout.text
    assert _status(first, access) == 401
    assert wait_for(lambda: _status(second, access) == 401, timeout=5, interval=0.1)
    # Another session of the same account still works on both.
    assert _status(first, other_session) == 200
    assert _status(second, other_session) == 200

    later = serve_app(auth_env, tmp_path_factory.mktemp("later") / "server.log")
    try:
        # Known from its first request: it loads the stored revocations before it serves.
        assert _status(later, access) == 401
        assert _status(later, other_session) == 200
    finally:
        stop_app(later)
