"""An ASGI client for driving an app as a server would, choosing when the client goes away.

Shared by the tests that check what the service does when a client leaves mid-response.
"""

from __future__ import annotations

import asyncio
from typing import Any


class ScriptedClient:
    """The server side of one HTTP exchange: what was sent, and when the client goes away.

    `leaves`: None (stays until the response is complete), "at-status-line" (sending the status
    line fails), "during-status-line" (sending the status line never finishes; the test cancels
    the request) or "during-body" (the first body chunk is never delivered; the server reports the
    disconnect meanwhile).
    """

    def __init__(self, *, leaves: str | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.leaves = leaves
        self.stuck_sending = asyncio.Event()
        self._disconnected = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            if self.leaves == "at-status-line":
                raise OSError("connection reset by peer")
            if self.leaves == "during-status-line":
                await self._stuck()
        elif self.leaves == "during-body":
            self._disconnected.set()
            await self._stuck()
        self.messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._disconnected.set()  # after a complete response, as a server reports it

    async def _stuck(self) -> None:
        self.stuck_sending.set()
        await asyncio.Event().wait()  # the peer never reads

    @property
    def status(self) -> int:
        statuses = [m["status"] for m in self.messages if m["type"] == "http.response.start"]
        assert len(statuses) == 1, self.messages
        return int(statuses[0])

    @property
    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )


def get_scope(path: str, *, query: bytes = b"", accept: str = "application/json") -> dict[str, Any]:
    """The ASGI scope of `GET path?query` with an `Accept` header, as a server would pass it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"test"), (b"accept", accept.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
