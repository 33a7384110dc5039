"""Bearer-token authentication for HTTP routes, before anything else of the route runs.

Litestar's `AbstractAuthenticationMiddleware` runs after routing (so unknown routes still answer
404 and wrong methods 405) and before the handler's parameters and body are parsed (so a request
with no token and a bad body answers 401, not 422). Routes whose `opt` has `exclude_from_auth` are
open; every other route needs a valid token, and the role its `opt` names (`requires(role)`,
`cqlstar.identity.guards`): 403 without it.
`scope["user"]` is the `Principal`, `scope["auth"]` the `VerifiedToken`.

- No `Authorization` header, or not `Bearer <token>`: 401 with `WWW-Authenticate: Bearer`.
- A token that fails any check (`cqlstar.identity.tokens`) or was logged out: 401 with
  `WWW-Authenticate: Bearer error="invalid_token"`.
- No signing keys could ever be fetched from the issuer: 503 with `Retry-After`.

WebSockets authenticate themselves (handshake header, query or first message), so only HTTP scopes
come here. A route with `opt={"allow_revoked_token": True}` (`POST /logout`) accepts a token whose
session has already ended, so that a second logout is still answered 204.

Every refusal is counted by kind (`Services.counters.authentication_failed`: missing, malformed,
invalid_token, revoked, issuer_unavailable) for `GET /metrics`. Once the token is good, the
principal's rate limit is checked (`cqlstar.limits.middleware.check_principal_limit`) before the
role, so a forbidden request counts in its window and its 403 carries the limit's headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from litestar.middleware.authentication import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
)
from litestar.types import ASGIApp

from cqlstar.identity.tokens import InvalidToken, SigningKeysUnavailable, TokenVerifier
from cqlstar.limits.middleware import check_principal_limit
from cqlstar.services import Services

OPEN_ROUTE_KEY = "exclude_from_auth"
# Route `opt` key of the role a route needs (`cqlstar.identity.guards.requires`).
REQUIRED_ROLE_KEY = "required_role"
# Route `opt` for routes anyone may call (`opt=OPEN_ROUTE`).
OPEN_ROUTE: dict[str, Any] = {OPEN_ROUTE_KEY: True}
ALLOW_REVOKED_KEY = "allow_revoked_token"
RETRY_AFTER_S = "5"

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_NOT_AUTHENTICATED = "Not authenticated"
_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class BearerAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    def __init__(self, app: ASGIApp, verifier: TokenVerifier) -> None:
        super().__init__(app, exclude_from_auth_key=OPEN_ROUTE_KEY, scopes={ScopeType.HTTP})
        self.verifier = verifier

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        services = Services.of(connection.app.state)
        try:
            token = _bearer_token(connection.scope["headers"])
        except NotAuthorizedException as refused:
            services.counters.authentication_failed(
                "missing" if refused.detail == _NOT_AUTHENTICATED else "malformed"
            )
            raise
        try:
            verified = await self.verifier.check(token)
        except SigningKeysUnavailable:
            services.counters.authentication_failed("issuer_unavailable")
            raise ServiceUnavailableException(
                detail="The identity provider is unavailable",
                headers={"Retry-After": RETRY_AFTER_S},
            ) from None
        except InvalidToken:
            services.counters.authentication_failed("invalid_token")
            raise NotAuthorizedException(
                detail="Invalid or expired token", headers=_INVALID
            ) from None
        opt = connection.route_handler.opt
        if self.verifier.is_revoked(verified) and not opt.get(ALLOW_REVOKED_KEY):
            services.counters.authentication_failed("revoked")
            raise NotAuthorizedException(detail="The session has ended", headers=_INVALID)
        # The principal's rate limit, before the role check: a forbidden request counts too, and
        # its 403 carries the limit's headers like every answer of the route (429 raised here).
        limit_headers = await check_principal_limit(
            connection.scope, services.rate_limiter, verified.principal
        )
        role = opt.get(REQUIRED_ROLE_KEY)
        if role is not None and not verified.principal.has_role(role):
            raise PermissionDeniedException(
                detail=f"This needs the {role.value} role", headers=limit_headers
            )
        return AuthenticationResult(user=verified.principal, auth=verified)


def _bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The token of the one `Authorization: Bearer <token>` header; 401 for anything else."""
    values = [value for name, value in headers if name == b"authorization"]
    if not values:
        raise NotAuthorizedException(detail=_NOT_AUTHENTICATED, headers=_CHALLENGE)
    scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
    token = token.strip()
    if len(values) > 1 or scheme.lower() != "bearer" or not token or " " in token:
        raise NotAuthorizedException(
            detail="Expected an Authorization header of the form: Bearer <token>",
            headers=_CHALLENGE,
        )
    return token
