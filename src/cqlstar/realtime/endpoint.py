"""The routes of the WebSocket API: `/web` itself and `/asyncapi.json`.

`/web` accepts first and decides after (authentication, the connection limit): a refusal before
accepting reaches a browser as a bare HTTP 403 at the handshake, while the contract wants the client
to see a close code. Everything after the accept is `cqlstar.realtime.connection`.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, WebSocket, get, websocket
from litestar.datastructures import State

from cqlstar.identity import OPEN_ROUTE
from cqlstar.realtime.asyncapi import asyncapi_document
from cqlstar.realtime.connection import Connection
from cqlstar.services import Services


# Open to the HTTP authentication middleware: the connection authenticates itself after accepting.
@websocket("/web", opt={"operation": "websocket", **OPEN_ROUTE})
async def web(socket: WebSocket[Any, Any, Any]) -> None:
    realtime = Services.of(socket.app.state).realtime
    if realtime is None:  # pragma: no cover - the route is only added along with its Realtime
        raise RuntimeError("the WebSocket API is not configured")
    await socket.accept()
    await Connection(realtime, socket).run()


@get(
    "/asyncapi.json",
    operation_id="asyncapi",
    summary="The WebSocket API as an AsyncAPI 3 document",
    tags=["system"],
    media_type="application/json",
    opt=OPEN_ROUTE,
)
async def asyncapi(state: State) -> Response[dict[str, Any]]:
    """Packages, messages, roles, status and close codes of `/web`, generated from the types the
    server validates with."""
    return Response(asyncapi_document())


REALTIME_HANDLERS = [web, asyncapi]
