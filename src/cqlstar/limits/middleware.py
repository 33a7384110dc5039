"""HTTP rate limiting: one check per request on every route that needs a token, before it runs.

Which routes: every route except those marked open (`cqlstar.identity.middleware.OPEN_ROUTE`, the
marker the token check honours: `/`, `/health`, `/metrics`, `/openapi.json`, `/asyncapi.json`, the
OpenAPI UI under `/docs`, the login routes). The login routes are limited by their own handler, per
client address and username (`RateLimiter.check_login`), since they have no principal.

Whose window: the principal's (`scope["user"]`, the `Principal` the token middleware puts there,
keyed by its `subject`). With `CQLSTAR_AUTH=disabled` there is no principal, so the window is the
client address's (the peer of the TCP connection: behind a proxy that is the proxy, so such a
deployment wants authentication on).

What the client sees: every answer of a limited route carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` (added to whatever the route answered, errors
included). Over the limit: 429 `{"detail": "Rate limit exceeded"}` with `Retry-After`, sent by this
middleware, so neither the body is read nor the handler called. While the limits fail open (Redis
unreachable) the headers are left out: there is no count to report.

Why not Litestar's `RateLimitMiddleware`: it is a fixed window stored with a read-modify-write of
one value, which lets more than the limit through when requests race across processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar.enums import ScopeType

from cqlstar.identity.middleware import OPEN_ROUTE_KEY
from cqlstar.identity.principal import Principal
from cqlstar.limits.limiter import RateLimiter
from cqlstar.limits.window import Decision

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send


REJECTED_DETAIL = "Rate limit exceeded"
_REJECTED_BODY = msgspec.json.encode({"detail": REJECTED_DETAIL})


def rate_limit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset_s).encode()),
    ]


def is_limited_route(handler: Any) -> bool:
    """Whether a route handler needs a token, and so counts against the principal's limit."""
    return not handler.opt.get(OPEN_ROUTE_KEY)


def client_key(scope: Scope) -> str:
    """The window's key: the principal's subject, or the client address when there is none."""
    user = scope.get("user")
    if isinstance(user, Principal):
        return "sub:" + user.subject
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")


class HttpRateLimitMiddleware:
    """ASGI middleware around each route handler (Litestar builds one per route)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter
        # Decided once per route handler: the route set is fixed once the app is built.
        self._limited: dict[int, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not self.limiter.enabled("http"):
            await self.app(scope, receive, send)
            return
        handler = scope["route_handler"]
        limited = self._limited.get(id(handler))
        if limited is None:
            limited = self._limited[id(handler)] = is_limited_route(handler)
        if not limited:
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.check_request(client_key(scope))
        if decision is None:  # failing open: served, without a count to report
            await self.app(scope, receive, send)
            return
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_REJECTED_BODY)).encode()),
                        (b"retry-after", str(decision.retry_after_s).encode()),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _REJECTED_BODY, "more_body": False})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
