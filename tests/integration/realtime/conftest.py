"""Services for the WebSocket tests: the run's shared one (authentication off) for the protocol, and
these, each a real `python -m cqlstar` process:

- `ws_redis`: a Redis of this suite's own, so connection slots and broadcast are not shared with the
  rest of the run (other suites log in as the same accounts);
- `auth_apps`: TWO service processes with authentication on against the run's real Keycloak, both
  on `ws_redis` (connection limit and broadcast across processes);
- `limited_app`: authentication off, the default message limit (100/minute; with authentication
  off each connection is its own principal, so a test's window is its own);
- `issuer_app`: trusting a test issuer of our own, whose tokens can expire within seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from cqlstar import localredis
from oidc import PASSWORDS, OwnIssuer, keycloak_login, serving_issuer
from private_redis import redis_on_a_free_port
from served import ServedApp, serve_app, stop_app


@pytest.fixture(scope="session")
def ws_redis() -> Iterator[localredis.RedisInstance]:
    with redis_on_a_free_port() as instance:
        yield instance


@pytest.fixture(scope="session")
def ws_auth_env(
    app_env: dict[str, str], keycloak: Any, ws_redis: localredis.RedisInstance
) -> dict[str, str]:
    return {
        **app_env,
        **keycloak.env,
        "REDIS_URL": ws_redis.url,
        "WS_MAX_CONNECTIONS": "5",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def auth_apps(
    ws_auth_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServedApp, ServedApp]]:
    env = ws_auth_env
    folder = tmp_path_factory.mktemp("ws-auth")
    first = serve_app(env, folder / "first.log")
    try:
        second = serve_app(env, folder / "second.log")
    except BaseException:
        stop_app(first)
        raise
    yield first, second
    stop_app(second)
    stop_app(first)


@pytest.fixture(scope="session")
def auth_app(auth_apps: tuple[ServedApp, ServedApp]) -> ServedApp:
    return auth_apps[0]


@pytest.fixture(scope="session")
def tokens(keycloak: Any) -> dict[str, str]:
    """An access token per development account (valid for the realm's 5 minutes)."""
    return {name: keycloak_login(keycloak, name)["access_token"] for name in PASSWORDS}


@pytest.fixture(scope="module")
def limited_app(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    env = {**app_env, "WS_RATE_LIMIT": "100/minute"}
    served = serve_app(env, tmp_path_factory.mktemp("ws-limited") / "server.log")
    yield served
    stop_app(served)


@pytest.fixture(scope="session")
def own_issuer() -> Iterator[OwnIssuer]:
    """A test issuer over real HTTP (discovery and JWKS of keys we hold): it signs tokens that
    expire within seconds, which the development realm (5 minute tokens) cannot."""
    with serving_issuer("ws-test-key") as issuer:
        yield issuer


@pytest.fixture(scope="module")
def issuer_app(
    app_env: dict[str, str],
    own_issuer: OwnIssuer,
    ws_redis: localredis.RedisInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedApp]:
    env = {
        **app_env,
        "CQLSTAR_AUTH": "oidc",
        "OIDC_ISSUER": own_issuer.issuer,
        "REDIS_URL": ws_redis.url,
        "LOG_LEVEL": "INFO",
    }
    served = serve_app(env, tmp_path_factory.mktemp("ws-issuer") / "server.log")
    yield served
    stop_app(served)


@pytest.fixture(scope="module")
def own_app(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """A service of the module's own (authentication off): its writes over HTTP stay out of the
    shared service's request figures, which other suites assert on."""
    served = serve_app(app_env, tmp_path_factory.mktemp("ws-own") / "server.log")
    yield served
    stop_app(served)


@pytest.fixture
async def own_http(own_app: ServedApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=own_app.base_url, timeout=30) as client:
        yield client
