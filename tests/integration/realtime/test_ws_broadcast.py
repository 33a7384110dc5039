"""Every user change, over HTTP or WebSocket, reaches every reader connection once; a reader that
stops reading is closed with 1013 and the others keep receiving."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import httpx
import pytest
import websockets

from served import ServedApp
from ws_client import WsClient, ws_connect, ws_url

pytestmark = pytest.mark.integration

ZERO_REQ_ID = "00000000-0000-0000-0000-000000000000"


def new_user(age: int = 50) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    return {"name": f"Broadcast {tag}", "email": f"b.{tag}@example.com", "age": age}


def large_user() -> dict[str, Any]:
    """A user near the size limits: about 650 bytes of event each."""
    tag = uuid.uuid4().hex
    return {
        "name": f"Large {tag}".ljust(100, "n"),
        "email": f"{tag}.{'x' * 30}@{'d' * 60}.{'e' * 60}.example.com",
        "age": 50,
    }


async def no_more_events_for(ws: WsClient, user_id: str, wait_s: float = 1.0) -> None:
    """Nothing else about `user_id` arrives (exactly once)."""
    await asyncio.sleep(wait_s)
    while not ws.events.empty():
        assert ws.events.get_nowait()["data"]["user_id"] != user_id


async def test_http_changes_reach_every_reader_once(
    own_app: ServedApp, own_http: httpx.AsyncClient
) -> None:
    async with ws_connect(own_app.base_url) as one, ws_connect(own_app.base_url) as two:
        created = (await own_http.post("/users", json=new_user())).json()
        uid = created["id"]
        for reader in (one, two):
            event = await reader.event_for(uid, "created")
            assert event == {
                "pkg_id": 100,
                "req_id": ZERO_REQ_ID,
                "status_code": 0,
                "data": {"event": "created", "user_id": uid, "user": created},
                "meta": None,
                "msg": None,
            }
        put = (await own_http.put(f"/users/{uid}", json={"age": 51})).json()
        patched = (await own_http.patch(f"/users/{uid}", json={"name": "Renamed"})).json()
        for reader in (one, two):
            assert (await reader.event_for(uid, "updated"))["data"]["user"] == put
            assert (await reader.event_for(uid, "updated"))["data"]["user"] == patched
        assert (await own_http.delete(f"/users/{uid}")).status_code == 204
        for reader in (one, two):
            deleted = await reader.event_for(uid, "deleted")
            assert deleted["data"] == {"event": "deleted", "user_id": uid, "user": None}
        for reader in (one, two):
            await no_more_events_for(reader, uid)


async def test_batch_creates_one_event_per_user(
    own_app: ServedApp, own_http: httpx.AsyncClient
) -> None:
    async with ws_connect(own_app.base_url) as reader:
        response = await own_http.post("/users/batch", json=[new_user() for _ in range(5)])
        assert response.status_code == 201
        for user in response.json()["users"]:
            assert (await reader.event_for(user["id"], "created"))["data"]["user"] == user


async def test_a_failed_change_publishes_nothing(
    own_app: ServedApp, own_http: httpx.AsyncClient
) -> None:
    missing = str(uuid.uuid4())
    async with ws_connect(own_app.base_url) as reader:
        assert (await own_http.patch(f"/users/{missing}", json={"age": 3})).status_code == 404
        async with ws_connect(own_app.base_url) as writer:
            assert (await writer.request(5, {"id": missing, "age": 3}))["status_code"] == 1
            assert (await writer.request(3, {"name": "x"}))["status_code"] == 2
        await no_more_events_for(reader, missing)


async def test_websocket_changes_reach_the_writer_and_other_readers(own_app: ServedApp) -> None:
    async with ws_connect(own_app.base_url) as writer, ws_connect(own_app.base_url) as reader:
        created = (await writer.request(3, new_user()))["data"]
        uid = created["id"]
        for ws in (writer, reader):
            assert (await ws.event_for(uid, "created"))["data"]["user"] == created
        updated = (await writer.request(5, {"id": uid, "email": f"new.{uid}@example.com"}))["data"]
        for ws in (writer, reader):
            assert (await ws.event_for(uid, "updated"))["data"]["user"] == updated
        await writer.request(6, {"id": uid})
        for ws in (writer, reader):
            await ws.event_for(uid, "deleted")
            await no_more_events_for(ws, uid)


async def _read_until_closed(connection: websockets.ClientConnection) -> int:
    received = 0
    try:
        while True:
            await asyncio.wait_for(connection.recv(), 10)
            received += 1
    except websockets.ConnectionClosed:
        return received


async def _stalled_connection(base_url: str) -> websockets.ClientConnection:
    """A client whose socket takes almost nothing and which never reads: the server's sends to it
    back up after a few hundred kilobytes instead of megabytes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = base_url.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    return await websockets.connect(
        ws_url(base_url), sock=sock, max_queue=1, ping_interval=None, max_size=None
    )


async def test_stalled_reader_is_closed_with_1013_and_others_keep_receiving(
    own_app: ServedApp, own_http: httpx.AsyncClient
) -> None:
    stalled = await _stalled_connection(own_app.base_url)
    try:
        async with ws_connect(own_app.base_url) as healthy:
            created: list[str] = []
            closes_before = (
                (await own_http.get("/metrics")).json()["websocket"]["closes"].get("1013", 0)
            )
            # Each batch is 100 events of about 650 bytes. What the stalled reader does not take
            # fills the server's socket buffer (up to the kernel's 4 MiB), then its backlog: it
            # overflowed after about 48 batches when measured.
            for _ in range(150):
                batch = await own_http.post("/users/batch", json=[large_user() for _ in range(100)])
                assert batch.status_code == 201
                created += [user["id"] for user in batch.json()["users"]]
                closes = (
                    (await own_http.get("/metrics")).json()["websocket"]["closes"].get("1013", 0)
                )
                if closes > closes_before:
                    break
            assert closes > closes_before, "the stalled reader was never closed"
            # The stalled client now reads what was sent before the close, then the close frame.
            received = await _read_until_closed(stalled)
            assert stalled.close_code == 1013
            assert received < len(created)
            # Every event reached the healthy reader, once each and in order.
            seen: list[str] = []
            mine = set(created)
            while len(seen) < len(created):
                event = await asyncio.wait_for(healthy.events.get(), 10)
                if event["data"]["user_id"] in mine:
                    seen.append(event["data"]["user_id"])
            assert seen == created
    finally:
        await stalled.close()
