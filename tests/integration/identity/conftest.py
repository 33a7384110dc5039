"""The service served with authentication on, against the run's real Keycloak (`auth_app`), and
against a test issuer of our own (`test_issuer_app`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from oidc import PASSWORDS, OwnIssuer, keycloak_login, serving_issuer
from served import ServedApp, serve_app, stop_app


@pytest.fixture(scope="session")
def auth_env(app_env: dict[str, str], keycloak: Any) -> dict[str, str]:
    # INFO: the service logs each call it makes to the issuer, which the tests count.
    return {**app_env, **keycloak.env, "LOG_LEVEL": "INFO"}


@pytest.fixture(scope="module")
def auth_app(
    auth_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The service with authentication on, one per test module (its log is the module's own)."""
    served = serve_app(auth_env, tmp_path_factory.mktemp("auth") / "server.log")
    yield served
    stop_app(served)


@pytest.fixture(scope="module")
def tokens(keycloak: Any) -> dict[str, dict[str, Any]]:
    """One login per account for the module: what a client that reuses its token holds."""
    return {username: keycloak_login(keycloak, username) for username in PASSWORDS}


@pytest.fixture(scope="module")
def test_issuer() -> Iterator[OwnIssuer]:
    with serving_issuer("test-key-1") as issuer:
        yield issuer


@pytest.fixture(scope="module")
def test_issuer_app(
    app_env: dict[str, str], test_issuer: OwnIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The service trusting the test issuer instead of Keycloak."""
    env = {
        **app_env,
        "CQLSTAR_AUTH": "oidc",
        "OIDC_ISSUER": test_issuer.issuer,
        "LOG_LEVEL": "INFO",
    }
    served = serve_app(env, tmp_path_factory.mktemp("test-issuer") / "server.log")
    yield served
    stop_app(served)
