"""`X-Request-Timeout`: a time budget for the whole request, shared with its Cassandra calls.

The middleware parses the header and runs the request under `asyncio.timeout` inside the async
layer's `time_budget`, so every query the request makes gets the time left as its driver timeout
without being told (`cqlstar.aiocassandra.budget`). When the budget runs out before the response
has started, the client gets 504; once a streamed body has begun, the stream is cut short instead
(a status line cannot be taken back). A query started with nothing left raises `BudgetExceeded`,
which `cqlstar.web.errors` maps to the same 504.
"""

from __future__ import annotations

import asyncio
import math
import re

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from cqlstar.aiocassandra import time_budget

HEADER = b"x-request-timeout"
MAX_BUDGET_S = 60.0


# A plain decimal number of seconds, optionally with an exponent: `float()` alone would also take
# `1_0`, a sign, surrounding whitespace, `nan`/`inf` and non-ASCII digits.
_SECONDS = re.compile(rb"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_budget(raw: bytes) -> float | None:
    """The budget in seconds, or None when the header value is malformed or out of range."""
    if not _SECONDS.fullmatch(raw):
        return None
    value = float(raw)
    if not math.isfinite(value) or not 0 < value <= MAX_BUDGET_S:
        return None
    return value


def _json_response(status: int, detail: str) -> tuple[Message, Message]:
    body = msgspec.json.encode({"detail": detail})
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class RequestBudgetMiddleware:
    """ASGI middleware: only requests that carry the header pay for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == HEADER), None)
        if raw is None:
            await self.app(scope, receive, send)
            return
        budget = parse_budget(raw)
        if budget is None:
            for message in _json_response(400, "Invalid X-Request-Timeout header"):
                await send(message)
            return

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            with time_budget(budget):
                async with asyncio.timeout(budget):
                    await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if not started:
                for message in _json_response(504, "Gateway Timeout"):
                    await send(message)
