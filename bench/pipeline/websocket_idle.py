"""What idle WebSocket connections cost in memory: the served processes' RSS before and after
2,000 of them, and `websocket_floor_app`, the floor: a bare ASGI app under the same granian that
only accepts and waits, which is what granian itself holds per connection."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from bench.harness.procs import tree_rss_bytes
from bench.harness.server import Server
from bench.pipeline.websocket_figures import IdleMemory
from bench.pipeline.websocket_load import open_connections

IDLE_CONNECTIONS = 2000


async def idle_memory(server: Server, token: str, *, probe: bool = True) -> IdleMemory:
    async with open_connections(server, token, 10):
        await asyncio.sleep(1)
        before = tree_rss_bytes(server.pid)
    await asyncio.sleep(1)
    before = min(before, tree_rss_bytes(server.pid))
    async with open_connections(server, token, IDLE_CONNECTIONS) as connections:
        if probe:  # authenticated and admitted: a request on the last one is answered
            last = connections[-1]
            await last.send(
                json.dumps({"pkg_id": 1, "req_id": str(uuid.uuid4()), "data": {"limit": 1}})
            )
            answer = json.loads(await last.recv())
            if answer["status_code"] != 0:
                raise RuntimeError(f"idle connection not admitted: {answer}")
        await asyncio.sleep(3)
        after = tree_rss_bytes(server.pid)
    per_connection = (after - before) / IDLE_CONNECTIONS
    return IdleMemory(
        connections=IDLE_CONNECTIONS,
        rss_before_mib=round(before / 2**20, 1),
        rss_after_mib=round(after / 2**20, 1),
        kib_per_connection=round(per_connection / 1024, 1),
    )


def websocket_floor_app() -> Any:
    """The idle-memory floor: a bare ASGI app under granian that accepts a WebSocket and waits
    for the disconnect (and answers any HTTP request 200, for the readiness probe)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        else:
            await receive()
            await send({"type": "websocket.accept"})
            while (await receive())["type"] != "websocket.disconnect":
                pass

    return app
