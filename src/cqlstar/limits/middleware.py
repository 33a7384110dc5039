"""HTTP rate limiting: one check per request on every route that needs a token, before it runs.

Which routes: every route except those marked open (`cqlstar.identity.middleware.OPEN_ROUTE`, the
marker the token check honours: `/`, `/health`, `/metrics`, `/openapi.json`, `/asyncapi.json`, the
OpenAPI UI under `/docs`, the login routes). The login routes are limited by their own handler, per
client address and username (`RateLimiter.check_login`), since they have no principal.

Whose window: the principal's (its `subject`). The token check calls `check_principal_limit` once
the token is good and before the role check, so a forbidden request counts too and its 403 carries
the headers; this middleware then finds that decision in the scope and only puts its headers on
the route's answer. With `CQLSTAR_AUTH=disabled` there is no token check and no principal, so this
middleware checks the client address's window (the peer of the TCP connection: behind a proxy that
is the proxy, so such a deployment wants authentication on).

What the client sees: every answer of a limited route carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` (added to whatever the route answered, errors
included, also those a middleware after this one raises). Over the limit: 429 `{"detail": "Rate
limit exceeded"}` with `Retry-After`, sent by this middleware, so neither the body is read nor the
handler called. While the limits fail open (Redis unreachable) the headers are left out: there is
no count to report.

Why not Litestar's `RateLimitMiddleware`: it is a fixed window stored with a read-modify-write of
one value, which lets more than the limit through when requests race across processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, TooManyRequestsException

from cqlstar.identity.principal import Principal
from cqlstar.limits.limiter import RateLimiter
from cqlstar.limits.window import Decision

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send


# Litestar's own `opt` key for routes that need no authentication, which the token check
# (`cqlstar.identity.middleware.OPEN_ROUTE_KEY`) uses; restated so that the two modules do not
# import each other (a unit test holds them equal).
OPEN_ROUTE_KEY = "exclude_from_auth"
# Where a decision taken by the token check waits for this middleware (`scope["state"]`).
_DECISION_KEY = "cqlstar.rate_limit_decision"
_UNCHECKED = object()

REJECTED_DETAIL = "Rate limit exceeded"
_REJECTED_BODY = msgspec.json.encode({"detail": REJECTED_DETAIL})


def rate_limit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset_s).encode()),
    ]


def header_dict(decision: Decision) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in rate_limit_headers(decision)}


async def check_principal_limit(
    scope: Scope, limiter: RateLimiter, principal: Principal
) -> dict[str, str]:
    """The principal's HTTP limit, checked by the token check once the token is good and before
    the role: raises the 429, or returns the headers for an answer the token check gives itself
    (403). The decision is kept for `HttpRateLimitMiddleware`, which then does not check again and
    puts the same headers on the route's answer."""
    decision = await limiter.check_request("sub:" + principal.subject)
    scope["state"][_DECISION_KEY] = decision
    if decision is None:
        return {}
    headers = header_dict(decision)
    if not decision.allowed:
        raise TooManyRequestsException(
            detail=REJECTED_DETAIL,
            headers={**headers, "Retry-After": str(decision.retry_after_s)},
        )
    return headers


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
        decision = scope["state"].get(_DECISION_KEY, _UNCHECKED)
        if decision is _UNCHECKED:  # no token check ran (CQLSTAR_AUTH=disabled)
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

        try:
            await self.app(scope, receive, send_with_headers)
        except HTTPException as refusal:
            # Raised by a middleware inside this one (415, a query value that is not an integer):
            # Litestar renders it outside, past `send_with_headers`, so the headers go on it here.
            refusal.headers = {**header_dict(decision), **(refusal.headers or {})}
            raise
