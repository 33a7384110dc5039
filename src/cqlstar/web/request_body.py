"""How long a request body may take to arrive, and what a body that never completes answers.

granian (measured with a bare ASGI app, see the README) hands the body to the app as it arrives,
has a timeout for reading headers (30 s) but none for the body, and reports both a malformed
chunked body and a client that left mid-body the same way: `http.disconnect` before the last part.
Litestar turns that disconnect into a 500 ("client disconnected prematurely"), which the client of a
malformed body receives, and which logs, spans and `/metrics` count as a server failure; and a body
sent one byte at a time holds its connection and its request for as long as the client likes.

`RequestBodyMiddleware` (a Litestar middleware, so the handler's exception mapping answers) watches
the `receive` of every request while its body is incomplete:

- the whole body must be in within `Settings.request_body_timeout_s` (`CQLSTAR_REQUEST_BODY_TIMEOUT`,
  default 30 s) of the request's start, else 408 with `Connection: close`. With bodies capped at
  1 MiB this is a floor on the rate, about 35 KiB/s for the largest body, with no cost per chunk;
- a body that ends early answers 400 "The request body is incomplete". The server cannot tell a
  malformed body from a client that left; either way it is the client's doing, so it is logged and
  traced as a 4xx (where the client is gone the answer is simply not delivered).

Once the body is complete, `receive` passes through untouched (streams use it to learn that their
client left); requests that announce no body (no Content-Length above 0, no Transfer-Encoding) are
not watched at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_408_REQUEST_TIMEOUT
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

DEFAULT_BODY_TIMEOUT_S = 30.0
INCOMPLETE_BODY = "The request body is incomplete"
BODY_TIMED_OUT = "The request body did not arrive in time"


class IncompleteRequestBody(HTTPException):
    status_code = HTTP_400_BAD_REQUEST
    detail = INCOMPLETE_BODY


class RequestBodyTimeout(HTTPException):
    status_code = HTTP_408_REQUEST_TIMEOUT
    detail = BODY_TIMED_OUT

    def __init__(self) -> None:
        # The rest of the body may still be on its way: the connection cannot be reused.
        super().__init__(headers={"Connection": "close"})


class RequestBodyMiddleware:
    """Bounds the time a request body takes; a body that stops short is the client's error."""

    def __init__(self, app: ASGIApp, *, timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not _announces_body(scope["headers"]):
            # No body to wait for (most GETs): `receive` stays the server's own.
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_s
        complete = False

        async def receive_body() -> ReceiveMessage:
            nonlocal complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(_loop_time(deadline)):
                    message = await receive()
            except TimeoutError:
                raise RequestBodyTimeout from None
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                raise IncompleteRequestBody
            return message

        await self.app(scope, receive_body, send)


def _announces_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request says a body follows: a non-zero Content-Length, or any Transfer-Encoding."""
    for name, value in headers:
        if name == b"content-length":
            return value.strip() != b"0"
        if name == b"transfer-encoding":
            return True
    return False


def _loop_time(monotonic_deadline: float) -> float:
    """A `time.monotonic()` deadline on the running loop's clock (which may differ, e.g. uvloop)."""
    return asyncio.get_running_loop().time() + (monotonic_deadline - time.monotonic())
