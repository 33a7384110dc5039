"""A test client of the `/web` protocol over a real WebSocket connection (the `websockets` library).

Importable from any test (`from ws_client import WsClient`). A background task reads every frame:
answers go to the request that waits for their `req_id`, answers without one (bad frames) and
control messages to `others`, broadcast events (pkg_id 100) to `events`; a server `ping` is answered
with a `pong` unless the test turned that off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

Message = dict[str, Any]


class WsClient:
    def __init__(self, connection: ClientConnection, *, answer_pings: bool = True) -> None:
        self.connection = connection
        self.answer_pings = answer_pings
        self.events: asyncio.Queue[Message] = asyncio.Queue()
        self.others: asyncio.Queue[Message] = asyncio.Queue()
        self.pings = 0
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._reader = asyncio.create_task(self._read())

    @property
    def close_code(self) -> int | None:
        return self.connection.close_code

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in self.connection:
                message: Message = json.loads(frame)
                if message.get("pkg_id") == 100:
                    await self.events.put(message)
                elif message.get("type") == "ping":
                    self.pings += 1
                    if self.answer_pings:
                        await self.connection.send('{"type": "pong"}')
                elif (req_id := message.get("req_id")) in self._waiting:
                    self._waiting.pop(req_id).set_result(message)
                else:
                    await self.others.put(message)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionError(f"closed: {self.close_code}"))

    async def request(
        self, pkg_id: Any, data: Any = None, *, req_id: str | None = None, timeout: float = 15
    ) -> Message:
        req_id = req_id or str(uuid.uuid4())
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[req_id] = future
        frame: dict[str, Any] = {"pkg_id": pkg_id, "req_id": req_id}
        if data is not None:
            frame["data"] = data
        try:
            await self.connection.send(json.dumps(frame))
        except websockets.ConnectionClosed:
            # The server closed first (1008 over the connection limit, say): the same answer as a
            # close that arrives while the request waits.
            del self._waiting[req_id]
            raise ConnectionError(f"closed: {self.close_code}") from None
        return await asyncio.wait_for(future, timeout)

    async def send_raw(self, frame: str | bytes) -> None:
        await self.connection.send(frame)

    async def next_other(self, timeout: float = 10) -> Message:
        return await asyncio.wait_for(self.others.get(), timeout)

    async def event_for(self, user_id: str, kind: str, timeout: float = 10) -> Message:
        """The next broadcast about `user_id` of this kind; other events are skipped."""

        async def wait() -> Message:
            while True:
                event = await self.events.get()
                if event["data"]["user_id"] == user_id and event["data"]["event"] == kind:
                    return event

        return await asyncio.wait_for(wait(), timeout)

    async def wait_closed(self, timeout: float = 15) -> int | None:
        await asyncio.wait_for(self.connection.wait_closed(), timeout)
        return self.close_code

    async def authenticate(self, token: str, timeout: float = 10) -> Message:
        await self.connection.send(json.dumps({"type": "auth", "token": token}))
        return await self.next_other(timeout)

    async def aclose(self) -> None:
        await self.connection.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def ws_url(base_url: str, token: str | None = None) -> str:
    url = base_url.replace("http://", "ws://", 1) + "/web"
    return f"{url}?token={token}" if token is not None else url


@contextlib.asynccontextmanager
async def ws_connect(
    base_url: str,
    *,
    token: str | None = None,
    query_token: str | None = None,
    answer_pings: bool = True,
    **options: Any,
) -> AsyncIterator[WsClient]:
    """A connected client: `token` goes in the Authorization header, `query_token` in `?token=`."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    # The library's own keepalive pings are protocol pings granian answers by itself; off, so a
    # stalled test client is not dropped by its own side.
    connection = await websockets.connect(
        ws_url(base_url, query_token),
        additional_headers=headers,
        ping_interval=None,
        **options,
    )
    client = WsClient(connection, answer_pings=answer_pings)
    try:
        yield client
    finally:
        await client.aclose()
