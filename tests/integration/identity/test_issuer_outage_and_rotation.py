"""The real Keycloak frozen, and its signing key rotated, while the service runs.

Freezing: the run's Keycloak is shared with every other test module (and `just keycloak` leaves it
running for the next run), so it is not stopped here but frozen with SIGSTOP for a second or two and
thawed with SIGCONT in a `finally`. To the service that is an issuer that accepts connections and
never answers: the harder case of "down". Tokens keep working because nothing asks the issuer.

Rotating: a new RSA key with a higher priority is added through Keycloak's admin API, so Keycloak
signs new tokens with it; the old key stays published, so tokens other modules hold keep working.
The key lives only until Keycloak restarts (its database is in memory).
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cqlstar.identity import localkeycloak
from oidc import bearer, issuer_calls, keycloak_login, token_parts
from served import ServedApp

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(auth_app: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth_app.base_url, timeout=30) as http:
        yield http


def test_tokens_keep_working_while_keycloak_is_frozen(client: httpx.Client, keycloak: Any) -> None:
    if localkeycloak.running_pid() is None:
        pytest.skip("the Keycloak answering was not started by this checkout's tooling")
    reused = keycloak_login(keycloak, "bob")["access_token"]
    never_seen = keycloak_login(keycloak, "alice")["access_token"]
    assert client.get("/users?limit=1", headers=bearer(reused)).status_code == 200
    localkeycloak.signal_keycloak(signal.SIGSTOP)
    try:
        with pytest.raises(httpx.TimeoutException):
            httpx.get(localkeycloak.DISCOVERY_URL, timeout=0.5)  # it is really not answering
        assert client.get("/users?limit=1", headers=bearer(reused)).status_code == 200
        assert client.get("/users?limit=1", headers=bearer(never_seen)).status_code == 200
        assert client.get("/users/stream?limit=1", headers=bearer(never_seen)).status_code == 200
    finally:
        localkeycloak.signal_keycloak(signal.SIGCONT)
    assert httpx.get(localkeycloak.DISCOVERY_URL, timeout=10).status_code == 200


def _admin_token() -> str:
    answer = httpx.post(
        f"{localkeycloak.BASE_URL}/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": localkeycloak.ADMIN_USERNAME,
            "password": localkeycloak.ADMIN_PASSWORD,
        },
        timeout=30,
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def test_a_key_rotation_at_keycloak_is_picked_up_without_a_restart(
    auth_app: ServedApp, client: httpx.Client, keycloak: Any
) -> None:
    before = keycloak_login(keycloak, "bob")["access_token"]
    old_kid = token_parts(before)[0]["kid"]
    assert client.get("/users?limit=1", headers=bearer(before)).status_code == 200
    fetches = issuer_calls(auth_app, "jwks")

    admin = {"Authorization": f"Bearer {_admin_token()}"}
    realm = httpx.get(
        f"{localkeycloak.BASE_URL}/admin/realms/{localkeycloak.REALM}", headers=admin, timeout=30
    ).json()
    created = httpx.post(
        f"{localkeycloak.BASE_URL}/admin/realms/{localkeycloak.REALM}/components",
        headers=admin,
        json={
            "name": f"rotated-{uuid.uuid4().hex[:8]}",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"],
            "config": {
                # Above every earlier key, including those of earlier runs against this Keycloak.
                "priority": [str(int(time.time()))],
                "enabled": ["true"],
                "active": ["true"],
                "algorithm": ["RS256"],
                "keySize": ["2048"],
            },
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text

    after = keycloak_login(keycloak, "bob")["access_token"]
    new_kid = token_parts(after)[0]["kid"]
    assert new_kid != old_kid
    # The service has never seen this kid: it fetches the JWKS once and accepts the token.
    time.sleep(5.5)  # past the service's minimum interval between JWKS fetches
    assert client.get("/users?limit=1", headers=bearer(after)).status_code == 200
    assert issuer_calls(auth_app, "jwks") == fetches + 1
    # Tokens signed by the old key (still published) keep working, with no further fetch.
    assert client.get("/users?limit=1", headers=bearer(before)).status_code == 200
    assert client.get("/users?limit=1", headers=bearer(after)).status_code == 200
    assert issuer_calls(auth_app, "jwks") == fetches + 1
