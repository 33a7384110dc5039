"""Limits with authentication on, against the real Keycloak: one window per principal (the token's
`sub`), and login attempts per client address and username, checked before the issuer is asked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cqlstar import localredis
from oidc import bearer, issuer_calls, keycloak_login
from served import ServedApp, serve_app, stop_app

pytestmark = pytest.mark.integration

LIMIT = 4
LOGIN_LIMIT = 3


@pytest.fixture(scope="module")
def limited_auth_app(
    app_env: dict[str, str],
    keycloak: Any,
    private_redis: localredis.RedisInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedApp]:
    env = {
        **app_env,
        **keycloak.env,
        "REDIS_URL": private_redis.url,
        "RATE_LIMIT": f"{LIMIT}/minute",
        "LOGIN_RATE_LIMIT": f"{LOGIN_LIMIT}/minute",
        # INFO: the service logs each call it makes to the issuer, which a test counts.
        "LOG_LEVEL": "INFO",
    }
    served = serve_app(env, tmp_path_factory.mktemp("limited-auth") / "server.log")
    yield served
    stop_app(served)


def test_each_principal_has_its_own_window(limited_auth_app: ServedApp, keycloak: Any) -> None:
    alice = bearer(keycloak_login(keycloak, "alice")["access_token"])
    bob = bearer(keycloak_login(keycloak, "bob")["access_token"])
    with httpx.Client(base_url=limited_auth_app.base_url, timeout=30) as client:
        alices = [client.get(f"/users/{uuid.uuid4()}", headers=alice) for _ in range(LIMIT + 1)]
        assert [a.status_code for a in alices] == [404] * LIMIT + [429]
        assert [a.headers["x-ratelimit-remaining"] for a in alices] == ["3", "2", "1", "0", "0"]
        # Bob's window is untouched by Alice's requests.
        answer = client.get(f"/users/{uuid.uuid4()}", headers=bob)
        assert answer.status_code == 404
        assert answer.headers["x-ratelimit-remaining"] == str(LIMIT - 1)
        # A token fails before any window is touched: 401, no limit headers, nothing counted.
        anonymous = client.get(f"/users/{uuid.uuid4()}")
        assert anonymous.status_code == 401
        assert "x-ratelimit-limit" not in anonymous.headers
        # A forbidden request still counts in the principal's window (the role check comes after
        # the limit): Carol has no role.
        carol = bearer(keycloak_login(keycloak, "carol")["access_token"])
        forbidden = client.get("/users", headers=carol)
        assert forbidden.status_code == 403
        assert forbidden.headers["x-ratelimit-remaining"] == str(LIMIT - 1)


def test_login_attempts_are_limited_per_address_and_username(limited_auth_app: ServedApp) -> None:
    with httpx.Client(base_url=limited_auth_app.base_url, timeout=30) as client:
        before = issuer_calls(limited_auth_app, "password grant", settle_s=0)
        wrong = {"username": "carol", "password": "not-her-password"}
        refused = [client.post("/login", json=wrong) for _ in range(LOGIN_LIMIT)]
        assert [r.status_code for r in refused] == [401] * LOGIN_LIMIT
        assert [r.headers["x-ratelimit-remaining"] for r in refused] == ["2", "1", "0"]
        # Over the limit: 429 even with the right password, and the issuer is not asked.
        limited = client.post("/login", json={"username": "Carol", "password": "carol-pass"})
        assert limited.status_code == 429
        assert limited.json() == {"detail": "Rate limit exceeded"}
        assert int(limited.headers["retry-after"]) >= 1
        assert issuer_calls(limited_auth_app, "password grant") - before == LOGIN_LIMIT
        # Another username from the same address has its own window.
        bob = client.post("/login", json={"username": "bob", "password": "bob-pass"})
        assert bob.status_code == 200
        assert bob.headers["x-ratelimit-remaining"] == str(LOGIN_LIMIT - 1)
        # Refreshes count per address, apart from logins.
        refreshed = client.post(
            "/login/refresh", json={"refresh_token": bob.json()["refresh_token"]}
        )
        assert refreshed.status_code == 200
        assert refreshed.headers["x-ratelimit-remaining"] == str(LOGIN_LIMIT - 1)


def test_openapi_documents_429_on_limited_operations(limited_auth_app: ServedApp) -> None:
    document = httpx.get(limited_auth_app.base_url + "/openapi.json", timeout=30).json()
    paths = document["paths"]
    assert "429" in paths["/users/{user_id}"]["get"]["responses"]
    assert "429" in paths["/users"]["post"]["responses"]
    assert "429" in paths["/login"]["post"]["responses"]
    assert "429" not in paths["/health"]["get"]["responses"]
