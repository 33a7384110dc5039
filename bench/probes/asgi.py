"""Calling an ASGI app in this process as granian would, with no server: its lifespan, then GET
requests whose answers are only counted. The in-process probes (`inprocess`, `auth_cost`) measure
the app's own CPU per request this way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

Headers = Sequence[tuple[bytes, bytes]]


def http_scope(path: str, headers: Headers = ()) -> dict[str, Any]:
    """An HTTP scope as granian hands one over for `GET path` from wrk (the bench's client)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class InProcessClient:
    """GET requests to a started app; the body of each answer is dropped."""

    def __init__(self, app: Any) -> None:
        # Called as a server calls it, with plain dicts: typed loosely.
        self.app = app

    async def get(self, path: str, headers: Headers = ()) -> int:
        """The answer's status."""
        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(http_scope(path, headers), _receive, send)
        return status


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[InProcessClient]:
    """The app between its lifespan's startup and shutdown."""
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.ensure_future(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            lifespan_in.get,
            lifespan_out.put,
        )
    )
    await lifespan_in.put({"type": "lifespan.startup"})
    started = await lifespan_out.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")
    try:
        yield InProcessClient(app)
    finally:
        await lifespan_in.put({"type": "lifespan.shutdown"})
        await lifespan
