"""Token expiry on an open connection: closed with 4001 when the token expires, unless the client
sent a fresh token for the same principal before then."""

from __future__ import annotations

import asyncio
import time

import pytest

from oidc import OwnIssuer
from served import ServedApp
from ws_client import ws_connect

pytestmark = pytest.mark.integration


def token(issuer: OwnIssuer, *, expires_in: float, subject: str = "ws-expiry") -> str:
    claims = issuer.claims(
        sub=subject,
        exp=int(time.time() + expires_in),
        realm_access={"roles": ["users:read"]},
    )
    return issuer.sign(claims)


async def test_expiry_closes_with_4001(issuer_app: ServedApp, own_issuer: OwnIssuer) -> None:
    async with ws_connect(issuer_app.base_url, token=token(own_issuer, expires_in=3)) as ws:
        assert (await ws.request(1, {"limit": 1}))["status_code"] == 0
        started = time.monotonic()
        assert await ws.wait_closed(timeout=10) == 4001
        assert time.monotonic() - started < 5


async def test_renewal_before_expiry_keeps_the_connection(
    issuer_app: ServedApp, own_issuer: OwnIssuer
) -> None:
    async with ws_connect(issuer_app.base_url, token=token(own_issuer, expires_in=3)) as ws:
        assert await ws.authenticate(token(own_issuer, expires_in=6)) == {"type": "auth_ok"}
        await asyncio.sleep(4.5)  # past the first token's expiry
        assert ws.close_code is None
        assert (await ws.request(1, {"limit": 1}))["status_code"] == 0
        # The renewed token expires in turn.
        assert await ws.wait_closed(timeout=10) == 4001


async def test_renewal_by_first_message_auth(issuer_app: ServedApp, own_issuer: OwnIssuer) -> None:
    async with ws_connect(issuer_app.base_url) as ws:
        assert await ws.authenticate(token(own_issuer, expires_in=2)) == {"type": "auth_ok"}
        assert await ws.authenticate(token(own_issuer, expires_in=60)) == {"type": "auth_ok"}
        await asyncio.sleep(3.5)
        assert (await ws.request(1, {"limit": 1}))["status_code"] == 0


async def test_renewal_for_another_principal_closes(
    issuer_app: ServedApp, own_issuer: OwnIssuer
) -> None:
    async with ws_connect(issuer_app.base_url, token=token(own_issuer, expires_in=60)) as ws:
        other = token(own_issuer, expires_in=60, subject="someone-else")
        await ws.send_raw(f'{{"type": "auth", "token": "{other}"}}')
        assert await ws.wait_closed() == 4001


async def test_an_expired_token_is_refused_at_connect(
    issuer_app: ServedApp, own_issuer: OwnIssuer
) -> None:
    # Past the verifier's 30 s leeway.
    async with ws_connect(issuer_app.base_url, token=token(own_issuer, expires_in=-60)) as ws:
        assert await ws.wait_closed() == 4001
