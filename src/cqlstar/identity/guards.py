"""Roles per route: `opt=requires(Role.USERS_READ)` next to each route, and its documentation.

The role is route metadata (`opt`), and `BearerAuthenticationMiddleware` checks it right after the
token: 403 when the principal lacks it. Not a Litestar guard, on purpose: Litestar calls each guard
with a fresh copy of the route handler (`copy(handler)` in `authorize_connection`), which costs
more than the whole token check with a reused token (measured: 4 to 35 µs per request on the
project's machine, depending on load, against about 1 µs for this lookup), and the contract asks
the token check to cost at most 5% of `get_user`. Where a controller declares `opt =
requires(Role.ADMIN)`, every route of it needs the role. With `CQLSTAR_AUTH=disabled` there is no
middleware, so no check: that mode is open by definition, and says so at start and in `/health`.

`document_access(app)` writes the same metadata into the OpenAPI document, so the two cannot
disagree: every operation that is not open gets the security requirement (OAuth2 password flow
through `POST /login`, or a pasted bearer token), its role (or "no role") at the top of its
description, and its 401 and 403 responses. It edits the route handlers' public `security`,
`responses` and `description` attributes once, after the app is built and before the schema is
first generated (Litestar builds it lazily): the one place the project reaches into handlers after
registration, checked by `tests/unit/identity/test_openapi_security.py`.
"""

from __future__ import annotations

import inspect
from typing import Any

from litestar import Litestar
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OAuthFlow,
    OAuthFlows,
    SecurityRequirement,
    SecurityScheme,
)

from cqlstar.identity.middleware import OPEN_ROUTE_KEY, REQUIRED_ROLE_KEY
from cqlstar.identity.principal import Role
from cqlstar.web.schemas import ErrorDetail

PASSWORD_SCHEME = "login"
BEARER_SCHEME = "bearer"
SECURITY_COMPONENTS = Components(
    security_schemes={
        PASSWORD_SCHEME: SecurityScheme(
            type="oauth2",
            description="Log in with a username and password: POST /login (the password flow).",
            flows=OAuthFlows(password=OAuthFlow(token_url="/login", scopes={})),
        ),
        BEARER_SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="An access token from POST /login, as `Authorization: Bearer <token>`.",
        ),
    }
)
# Either scheme: the OpenAPI UI logs in with the first, a client may paste a token with the second.
SECURITY: list[SecurityRequirement] = [{PASSWORD_SCHEME: []}, {BEARER_SCHEME: []}]

AUTH_RESPONSES: dict[int, ResponseSpec] = {
    401: ResponseSpec(
        ErrorDetail,
        description="No token, or a token that fails a check (`WWW-Authenticate` says which)",
    ),
    403: ResponseSpec(ErrorDetail, description="The token's principal lacks the role"),
}
_ROLE_LINE = "Requires the `{role}` role."
_TOKEN_LINE = "Requires an access token (no role)."


def requires(role: Role) -> dict[str, Any]:
    """The route `opt` that asks for `role` (merge it with the route's other `opt` keys)."""
    return {REQUIRED_ROLE_KEY: role}


def required_role(handler: HTTPRouteHandler) -> Role | None:
    role = handler.opt.get(REQUIRED_ROLE_KEY)
    return role if isinstance(role, Role) else None


def is_protected(handler: HTTPRouteHandler) -> bool:
    """Whether the middleware asks this handler's callers for a token (Litestar's automatic OPTIONS
    answers never: the middleware lets OPTIONS through)."""
    return not handler.opt.get(OPEN_ROUTE_KEY) and handler.http_methods != {"OPTIONS"}


def document_access(app: Litestar) -> None:
    """Security, role and 401/403 of every operation that needs a token."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not is_protected(handler):
                continue
            role = required_role(handler)
            line = _TOKEN_LINE if role is None else _ROLE_LINE.format(role=role.value)
            base = handler.description
            if base is None:
                base = inspect.getdoc(handler.fn) or ""
            if base.startswith(line):
                continue  # documented already (the same handler object in another route)
            handler.description = f"{line}\n\n{base}".strip()
            handler.security = SECURITY
            handler.responses = {**AUTH_RESPONSES, **(handler.responses or {})}
