"""The OpenAPI side of rate limits: every limited operation documents its 429."""

from __future__ import annotations

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from cqlstar.limits.login import LOGIN_LIMITED_KEY
from cqlstar.limits.middleware import is_limited_route
from cqlstar.web.schemas import ErrorDetail

RATE_LIMITED = ResponseSpec(
    ErrorDetail,
    description=(
        "Rate limit exceeded: `Retry-After` says in how many seconds to try again. Every answer "
        "of this operation carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and "
        "`X-RateLimit-Reset`."
    ),
)


def document_rate_limits(app: Litestar) -> None:
    """Add the 429 answer to every operation the HTTP or the login limit applies to."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            if is_limited_route(handler) or handler.opt.get(LOGIN_LIMITED_KEY):
                handler.responses = {**(handler.responses or {}), 429: RATE_LIMITED}
