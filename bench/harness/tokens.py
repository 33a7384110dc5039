"""Access tokens from the local Keycloak's development realm, by the password grant.

`bob` holds `users:read`, `alice` also `users:write` and `admin` (deploy/keycloak). Clients reuse a
token, as real clients do, so the measurements see the verified-token cache's steady state.
"""

from __future__ import annotations

import httpx

READER = ("bob", "bob-pass")
WRITER = ("alice", "alice-pass")


def password_token(issuer: str, account: tuple[str, str]) -> str:
    username, password = account
    answer = httpx.post(
        f"{issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "cqlstar-api",
            "username": username,
            "password": password,
        },
        timeout=30,
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def reader_tokens(issuer: str, count: int) -> list[str]:
    """`count` tokens of the reader, one per wrk thread."""
    return [password_token(issuer, READER) for _ in range(count)]
