"""What the identity tests share: logins at the real Keycloak, the service's log of its calls to the
issuer, and a test issuer of our own (real HTTP, our own keys) for tokens whose claims Keycloak
would never sign.

Importable from any test (`from oidc import keycloak_login`): pytest puts `tests/` on the path.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from joserfc import jws
from joserfc.jwk import RSAKey

from served import ServedApp

PASSWORDS = {"alice": "alice-pass", "bob": "bob-pass", "carol": "carol-pass"}
CLIENT_ID = "cqlstar-api"


def keycloak_login(keycloak: Any, username: str) -> dict[str, Any]:
    """Tokens straight from Keycloak's token endpoint (not through the service)."""
    response = httpx.post(
        f"{keycloak.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": CLIENT_ID,
            "username": username,
            "password": PASSWORDS[username],
        },
        timeout=30,
    )
    response.raise_for_status()
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
    )


def issuer_calls(app: ServedApp, purpose: str, settle_s: float = 1.0) -> int:
    """How many times the service called its issuer for `purpose` (its INFO log, one line each).

    The service writes its log from a background thread in batches: wait `settle_s` first so that
    lines of calls already made are in the file."""
    time.sleep(settle_s)
    count = 0
    for line in app.log_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("message") == "issuer call" and record.get("purpose") == purpose:
            count += 1
    return count


@dataclass
class OwnIssuer:
    """A minimal OpenID Connect issuer over real HTTP: discovery and a JWKS of keys we hold, so
    tests can sign tokens with any claims. Counts the JWKS requests it answers."""

    port: int
    keys: list[RSAKey]
    jwks_requests: int = 0
    published: list[RSAKey] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/test"

    def sign(
        self,
        claims: dict[str, Any],
        key: RSAKey | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        key = key or self.keys[0]
        protected = {"alg": "RS256", "kid": key.kid, **(header or {})}
        return jws.serialize_compact(protected, json.dumps(claims).encode(), key)

    def claims(self, audience: str = CLIENT_ID, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": "test-subject",
            "iat": now,
            "exp": now + 300,
            "typ": "Bearer",
            "preferred_username": "tester",
            "realm_access": {"roles": ["users:read"]},
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}


def new_rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


@contextlib.contextmanager
def serving_issuer(key_id: str) -> Iterator[OwnIssuer]:
    """An `OwnIssuer` with one key, answering discovery and its JWKS on a free loopback port
    until the block ends."""
    state = OwnIssuer(port=0, keys=[new_rsa_key(key_id)])
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
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
