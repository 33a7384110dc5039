"""Roles per route: `guards=[requires(Role.USERS_READ)]` next to each route, and its documentation.

A guard answers 403 when the authenticated principal lacks the role. With `CQLSTAR_AUTH=disabled`
no middleware sets a principal and every guard lets the request through: that mode is open by
definition, and says so loudly at start and in `/health`.

`document_access(app)` writes what the guards say into the OpenAPI document, so the two cannot
disagree: each guarded operation gets the security requirement (OAuth2 password flow through
`POST /login`, or a pasted bearer token), its role at the top of its description, and its 401 and
403 responses. It edits the route handlers' public `security`, `responses` and `description`
attributes once, after the app is built and before the schema is first generated (Litestar builds
it lazily): the one place the project reaches into handlers after registration, checked by
`tests/unit/identity/test_openapi_security.py`.
"""

from __future__ import annotations

import inspect
from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OAuthFlow,
    OAuthFlows,
    SecurityRequirement,
    SecurityScheme,
)

from cqlstar.identity.principal import Principal, Role
from cqlstar.services import Services
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
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_ROLE_LINE = "Requires the `{role}` role."
_TOKEN_LINE = "Requires an access token (no role)."


class RoleGuard:
    """A Litestar guard (a callable of connection and handler) that names its role."""

    __slots__ = ("role",)

    def __init__(self, role: Role | None) -> None:
        self.role = role

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope.get("method") == "OPTIONS":
            # Litestar's automatic OPTIONS answer (the allowed methods) inherits a controller's
            # guards; like the middleware, it stays open: it reveals nothing the 405s don't.
            return
        principal = connection.scope.get("user")
        if principal is None:
            if Services.of(connection.app.state).identity is None:
                return  # CQLSTAR_AUTH=disabled: no middleware, every route open
            # Authentication on, yet no principal: the route was marked open by mistake. Closed.
            raise NotAuthorizedException(detail="Not authenticated", headers=_CHALLENGE)
        if self.role is not None and not (
            isinstance(principal, Principal) and principal.has_role(self.role)
        ):
            raise PermissionDeniedException(detail=f"This needs the {self.role.value} role")

    def __repr__(self) -> str:
        return f"requires({self.role})"


def requires(role: Role) -> RoleGuard:
    return RoleGuard(role)


# For routes that need a token but no role (`POST /logout`): documents the security requirement.
AUTHENTICATED = RoleGuard(None)


def role_guard(handler: HTTPRouteHandler) -> RoleGuard | None:
    """The handler's `RoleGuard`, declared on it or on its controller or router.

    Read from the layers' declared `guards`: `resolve_guards()` returns them wrapped."""
    for layer in handler.ownership_layers:
        for guard in layer.guards or ():
            if isinstance(guard, RoleGuard):
                return guard
    return None


def document_access(app: Litestar) -> None:
    """Security, role and 401/403 of every guarded operation, from its `RoleGuard`."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            guard = role_guard(handler)
            if guard is None:
                continue
            line = _TOKEN_LINE if guard.role is None else _ROLE_LINE.format(role=guard.role.value)
            base = handler.description
            if base is None:
                base = inspect.getdoc(handler.fn) or ""
            if base.startswith(line):
                continue  # documented already (the same handler object in another route)
            handler.description = f"{line}\n\n{base}".strip()
            handler.security = SECURITY
            handler.responses = {**AUTH_RESPONSES, **(handler.responses or {})}
