"""The service served with authentication on, against the run's real Keycloak (`auth_app`), and
against a test issuer of our own (`test_issuer_app`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from oidc import PASSWORDS, OwnIssuer, keycloak_login, new_rsa_key
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
    state = OwnIssuer(port=0, keys=[new_rsa_key("test-key-1")])
    state.published = list(state.keys)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.endswith("/.well-known/openid-configuration"):
                body: dict[str, Any] = {
                    "issuer": state.issuer,
                    "jwks_uri": f"{state.issuer}/certs",
                    "token_endpoint": f"{state.issuer}/token",
                }
            elif self.path.endswith("/certs"):
                state.jwks_requests += 1
                body = {"keys": [key.as_dict(private=False) for key in state.published]}
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


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
