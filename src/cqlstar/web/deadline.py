"""`X-Request-Timeout`: a time budget for the whole request, shared with its Cassandra calls.

The middleware parses the header, runs the request under `asyncio.timeout`, and publishes the
deadline in a context variable. Code that talks to Cassandra asks `remaining()` for the timeout to
give the driver, so a query never outlives the request that asked for it. When the budget runs out
before the response has started, the client gets 504; once a streamed body has begun, the stream is
cut short instead (a status line cannot be taken back).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from contextvars import ContextVar

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-timeout"
MAX_BUDGET_S = 60.0

_deadline: ContextVar[float | None] = ContextVar("cqlstar_request_deadline", default=None)


class BudgetExceeded(Exception):
    """The request's `X-Request-Timeout` budget ran out."""


def remaining(default: float | None = None) -> float | None:
    """Seconds left in the current request's budget, or `default` when it has none."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    left = deadline - time.monotonic()
    if left <= 0:
        raise BudgetExceeded
    return left if default is None else min(left, default)


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

        token = _deadline.set(time.monotonic() + budget)
        try:
            async with asyncio.timeout(budget):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if not started:
                for message in _json_response(504, "Gateway Timeout"):
                    await send(message)
        finally:
            _deadline.reset(token)
