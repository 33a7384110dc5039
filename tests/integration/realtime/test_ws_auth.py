"""Authentication and roles on `/web` against the real Keycloak: the three ways to present a token,
every close code of authentication, and every package with each role."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
import websockets

from oidc import keycloak_login
from served import ServedApp
from ws_client import ws_connect, ws_url

pytestmark = pytest.mark.integration

READ, WRITE = "users:read", "users:write"
ROLES = {"alice": {READ, WRITE}, "bob": {READ}, "carol": set()}
PACKAGE_ROLES = {1: READ, 2: READ, 3: WRITE, 4: READ, 5: WRITE, 6: WRITE}


def new_user() -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    return {"name": f"Auth {tag}", "email": f"auth.{tag}@example.com", "age": 33}


async def closed_with(url: str, **options: Any) -> int | None:
    """Connect, then read until the server closes; the close code it sent."""
    async with websockets.connect(url, ping_interval=None, **options) as connection:
        try:
            while True:
                await asyncio.wait_for(connection.recv(), 15)
        except websockets.ConnectionClosed:
            return connection.close_code


async def test_header_token(auth_app: ServedApp, tokens: dict[str, str]) -> None:
    async with ws_connect(auth_app.base_url, token=tokens["bob"]) as ws:
        assert (await ws.request(1, {"limit": 1}))["status_code"] == 0


async def test_query_token_is_never_logged(auth_app: ServedApp, tokens: dict[str, str]) -> None:
    token = tokens["bob"]
    async with ws_connect(auth_app.base_url, query_token=token) as ws:
        assert (await ws.request(1, {"limit": 1}))["status_code"] == 0
    signature = token.rsplit(".", 1)[1]
    assert signature not in auth_app.log_text()


async def test_first_message_token(auth_app: ServedApp, tokens: dict[str, str]) -> None:
    async with ws_connect(auth_app.base_url) as ws:
        # Before authenticating, a request is answered with status 3 and the socket stays open.
        early = await ws.request(1, {"limit": 1})
        assert early["status_code"] == 3
        assert early["msg"].startswith("Not authenticated")
        assert await ws.authenticate(tokens["bob"]) == {"type": "auth_ok"}
        assert (await ws.request(1, {"limit": 1}))["status_code"] == 0


async def test_no_authentication_within_5_s_closes_with_4002(auth_app: ServedApp) -> None:
    started = time.monotonic()
    assert await closed_with(ws_url(auth_app.base_url)) == 4002
    assert 4.5 <= time.monotonic() - started < 8


@pytest.mark.parametrize("way", ["header", "query", "message"])
@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b.c", "", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
    ids=["garbage", "three-parts", "empty", "alg-none"],
)
async def test_a_bad_token_closes_with_4001(auth_app: ServedApp, way: str, token: str) -> None:
    if way == "header":
        code = await closed_with(
            ws_url(auth_app.base_url), additional_headers={"Authorization": f"Bearer {token}"}
        )
    elif way == "query":
        code = await closed_with(ws_url(auth_app.base_url, token))
    else:
        async with ws_connect(auth_app.base_url) as ws:
            await ws.send_raw(json.dumps({"type": "auth", "token": token}))
            code = await ws.wait_closed()
    assert code == 4001


async def test_a_non_bearer_authorization_header_closes_with_4001(auth_app: ServedApp) -> None:
    code = await closed_with(
        ws_url(auth_app.base_url), additional_headers={"Authorization": "Basic YWxpY2U6eA=="}
    )
    assert code == 4001


async def test_a_tampered_keycloak_token_closes_with_4001(
    auth_app: ServedApp, tokens: dict[str, str]
) -> None:
    header, payload, signature = tokens["alice"].split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert await closed_with(ws_url(auth_app.base_url, tampered)) == 4001


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
@pytest.mark.parametrize("pkg_id", [1, 2, 3, 4, 5, 6])
async def test_every_package_with_every_role(
    auth_app: ServedApp, tokens: dict[str, str], user: str, pkg_id: int
) -> None:
    async with ws_connect(auth_app.base_url, token=tokens["alice"]) as admin:
        existing = (await admin.request(3, new_user()))["data"]
    data: dict[str, Any] = {
        1: {"limit": 5},
        2: {"fetch_size": 10},
        3: new_user(),
        4: {"id": existing["id"]},
        5: {"id": existing["id"], "age": 34},
        6: {"id": existing["id"]},
    }[pkg_id]
    allowed = PACKAGE_ROLES[pkg_id] in ROLES[user]
    async with ws_connect(auth_app.base_url, token=tokens[user]) as ws:
        answer = await ws.request(pkg_id, data)
        assert answer["pkg_id"] == pkg_id
        if allowed:
            assert answer["status_code"] == 0, answer
        else:
            assert answer["status_code"] == 3
            assert answer["msg"] == (
                f"Permission denied: this package needs the role {PACKAGE_ROLES[pkg_id]}"
            )
            assert answer["data"] is None
    async with ws_connect(auth_app.base_url, token=tokens["alice"]) as admin:
        after = await admin.request(4, {"id": existing["id"]})
    # A refused write changed nothing; an allowed one did.
    if pkg_id == 5:
        assert after["data"]["age"] == (34 if allowed else 33)
    if pkg_id == 6:
        assert after["status_code"] == (1 if allowed else 0)


async def test_only_readers_receive_broadcasts(auth_app: ServedApp, tokens: dict[str, str]) -> None:
    async with (
        ws_connect(auth_app.base_url, token=tokens["bob"]) as reader,
        ws_connect(auth_app.base_url, token=tokens["carol"]) as outsider,
        ws_connect(auth_app.base_url, token=tokens["alice"]) as writer,
    ):
        created = (await writer.request(3, new_user()))["data"]
        assert (await reader.event_for(created["id"], "created"))["data"]["user"] == created
        await writer.event_for(created["id"], "created")
        await asyncio.sleep(1)
        assert outsider.events.empty()


async def test_http_with_token_publishes_too(auth_app: ServedApp, tokens: dict[str, str]) -> None:
    async with (
        ws_connect(auth_app.base_url, token=tokens["bob"]) as reader,
        httpx.AsyncClient(base_url=auth_app.base_url) as http,
    ):
        response = await http.post(
            "/users", json=new_user(), headers={"Authorization": f"Bearer {tokens['alice']}"}
        )
        assert response.status_code == 201
        await reader.event_for(response.json()["id"], "created")


async def test_renewal_with_another_principal_closes_with_4001(
    auth_app: ServedApp, tokens: dict[str, str]
) -> None:
    async with ws_connect(auth_app.base_url, token=tokens["bob"]) as ws:
        # The same principal again: accepted.
        assert await ws.authenticate(tokens["bob"]) == {"type": "auth_ok"}
        await ws.send_raw(json.dumps({"type": "auth", "token": tokens["alice"]}))
        assert await ws.wait_closed() == 4001


async def test_logout_closes_the_sessions_connections_on_every_process_with_4001(
    auth_apps: tuple[ServedApp, ServedApp], keycloak: Any
) -> None:
    first, second = auth_apps
    session = keycloak_login(keycloak, "bob")
    access = session["access_token"]
    other_session = keycloak_login(keycloak, "bob")["access_token"]
    async with (
        ws_connect(first.base_url, token=access) as here,
        ws_connect(second.base_url, token=access) as there,
        ws_connect(second.base_url, token=other_session) as unaffected,
    ):
        for ws in (here, there, unaffected):
            assert (await ws.request(1, {"limit": 1}))["status_code"] == 0
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
            logout = await http.post(
                "/logout",
                json={"refresh_token": session["refresh_token"]},
                headers={"Authorization": f"Bearer {access}"},
            )
        assert logout.status_code == 204
        # Within the sweep's second (and the revocation's trip through Redis to the other process).
        assert await here.wait_closed(timeout=10) == 4001
        assert await there.wait_closed(timeout=10) == 4001
        # Bob's other session is not logged out: its connection stays.
        assert (await unaffected.request(1, {"limit": 1}))["status_code"] == 0
        assert unaffected.close_code is None
