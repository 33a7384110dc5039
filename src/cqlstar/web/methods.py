"""HEAD and OPTIONS as HTTP defines them, around Litestar's router.

Litestar 2 answers `HEAD` only where a handler is declared with `@head` (and refuses to declare one
for a route whose answer has a body), so every `GET` route would answer `HEAD` with 405. Its
automatic `OPTIONS` answer lists the methods of the first handler registered on a path only
(litestar-org/litestar#4169, fixed in v3), so `OPTIONS /users` left out `GET`.

`MethodsMiddleware` wraps the app's whole ASGI handler (routing included):

- `HEAD` is routed and handled as `GET`, and the answer's status line and headers (its
  Content-Length included, as RFC 9110 allows) go out without the body. Once the headers are out the
  app is told the client has gone, so a streamed body stops being produced instead of being read to
  the end and thrown away. A path without `GET` answers `HEAD` with the same 405 `GET` gets.
- The `Allow` header of an `OPTIONS` answer is rebuilt from every method the matched route has,
  with `HEAD` wherever `GET` is; so is the `Allow` of a 405 answer to `HEAD` or `OPTIONS`. Other
  requests pass through untouched (a 405 to `POST` keeps Litestar's `Allow`, without `HEAD`).

`allowed_methods(app)` reads the routes' methods from `Litestar.routes` (public) once at start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, cast

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

# ASGI messages handled as plain dicts here: the middleware reads and rebuilds them by key.
_Event = dict[str, Any]
_DISCONNECT: _Event = {"type": "http.disconnect"}


def _with_head(methods: Iterable[str]) -> str:
    allowed = set(methods)
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


def allowed_methods(app: Litestar) -> dict[str, str]:
    """`Allow` header values by route path template (both spellings Litestar uses)."""
    allowed: dict[str, str] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            value = _with_head(route.methods)
            allowed[route.path] = value
            allowed[route.path_format] = value
    return allowed


def _replace_allow(message: _Event, value: str) -> _Event:
    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"allow"]
    headers.append((b"allow", value.encode()))
    return {**message, "headers": headers}


def _allow_value(message: _Event) -> str | None:
    for key, value in message.get("headers", ()):
        if key.lower() == b"allow":
            text: str = value.decode("latin-1")
            return text
    return None


class MethodsMiddleware:
    """ASGI middleware around routing: answers HEAD like GET without a body, fixes `Allow`."""

    def __init__(self, app: ASGIApp, allowed: Mapping[str, str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "HEAD":
            await self._head(scope, receive, send)
        elif method == "OPTIONS":
            await self.app(scope, receive, self._fixing_allow(scope, send))
        else:
            # Every other request passes untouched: nothing to add on the hot path.
            await self.app(scope, receive, send)

    def _fixing_allow(self, scope: Scope, send: Send) -> Send:
        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = cast("Message", self._allow(scope, dict(message), options=True))
            await send(message)

        return send_with_allow

    def _allow(self, scope: Scope, message: _Event, *, options: bool) -> _Event:
        status = message["status"]
        if options and status < 300:
            value = self.allowed.get(scope.get("path_template", ""))
            if value is not None:
                return _replace_allow(message, value)
        elif status == 405 and (current := _allow_value(message)) is not None:
            return _replace_allow(message, _with_head(m.strip() for m in current.split(",")))
        return message

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers_sent = asyncio.Event()
        body_ended = False

        async def send_headers_only(message: Message) -> None:
            nonlocal body_ended
            if message["type"] == "http.response.start":
                await send(cast("Message", self._allow(scope, dict(message), options=False)))
                headers_sent.set()
            elif message["type"] == "http.response.body" and not body_ended:
                body_ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def receive_until_headers_sent() -> Any:
            if headers_sent.is_set():
                return _DISCONNECT
            received = asyncio.ensure_future(receive())
            sent = asyncio.ensure_future(headers_sent.wait())
            await asyncio.wait((received, sent), return_when=asyncio.FIRST_COMPLETED)
            if received.done():
                sent.cancel()
                return received.result()
            received.cancel()
            return _DISCONNECT

        state: Any = scope
        state["method"] = "GET"
        try:
            await self.app(scope, receive_until_headers_sent, send_headers_only)
        finally:
            state["method"] = "HEAD"
