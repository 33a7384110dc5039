"""`POST /login`, `POST /login/refresh` and `POST /logout`: the issuer's grants, on the client's behalf.

Thin on purpose: read the body, ask the issuer (`cqlstar.identity.issuer`), shape the answer. What
the issuer says never reaches the client: refused credentials become 401 with a fixed message, an
issuer that cannot be reached or fails becomes 503 with `Retry-After`.

`POST /login` takes JSON or a form body (`application/x-www-form-urlencoded` or multipart), so the
OpenAPI UI's OAuth2 password flow can log in through it; fields other than `username` and
`password` (the flow's `grant_type`, `client_id`, `scope`) are ignored.

`POST /logout` first refuses the session's tokens (`TokenVerifier.revoke`: in this process, and in
every process sharing the Redis when `REDIS_URL` is set), then ends the session at the issuer. An issuer that no longer knows the refresh token (a second logout, a session
that expired, a refresh token of another client) changes nothing for the caller: 204. An issuer
that cannot be reached, or a Redis that cannot take the revocation: 503 with `Retry-After`, and the
tokens are refused where that could be recorded; the client retries (a second logout is 204).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    NotAuthorizedException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from cqlstar.identity.issuer import IssuerClient, IssuerRejected, IssuerUnavailable, TokenSet
from cqlstar.identity.middleware import ALLOW_REVOKED_KEY, OPEN_ROUTE_KEY, RETRY_AFTER_S
from cqlstar.identity.revocation import RevocationUnavailable
from cqlstar.identity.tokens import TokenVerifier, VerifiedToken
from cqlstar.limits.login import LOGIN_LIMITED_KEY, check_login_attempt
from cqlstar.services import Services
from cqlstar.web.inputs import TOO_DEEP
from cqlstar.web.schemas import ErrorDetail, ValidationErrorDetail

INVALID_CREDENTIALS = "Invalid username or password"
INVALID_REFRESH_TOKEN = "Invalid refresh token"

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
RefreshToken = Annotated[str, msgspec.Meta(min_length=1, max_length=16 * 1024)]


class LoginRequest(msgspec.Struct, frozen=True):
    username: Username
    password: Password


class RefreshRequest(msgspec.Struct, frozen=True):
    refresh_token: RefreshToken


class LoginTokens(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str | None
    token_type: str
    expires_in: int
    refresh_expires_in: int | None

    @classmethod
    def of(cls, tokens: TokenSet) -> LoginTokens:
        return cls(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            token_type="Bearer",
            expires_in=tokens.expires_in,
            refresh_expires_in=tokens.refresh_expires_in,
        )


def provide_identity_provider(state: State) -> IssuerClient:
    provider = Services.of(state).identity_provider
    assert provider is not None  # these routes are only registered when authentication is on
    return provider


def provide_verifier(state: State) -> TokenVerifier:
    verifier = Services.of(state).identity
    assert verifier is not None
    return verifier


_UNAVAILABLE = ResponseSpec(
    ErrorDetail, description="The identity provider cannot be reached (see Retry-After)"
)
_INVALID = ResponseSpec(ValidationErrorDetail, description="A field is missing or malformed")


@dataclass
class _LoginOperation(Operation):
    """`POST /login`'s request body in both encodings it accepts (Litestar documents one)."""

    def __post_init__(self) -> None:
        schema = Schema(
            type=OpenAPIType.OBJECT,
            required=["username", "password"],
            properties={
                "username": Schema(type=OpenAPIType.STRING, min_length=1, max_length=255),
                "password": Schema(type=OpenAPIType.STRING, min_length=1, max_length=1024),
            },
        )
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(schema=schema),
                "application/x-www-form-urlencoded": OpenAPIMediaType(schema=schema),
            },
        )


class LoginController(Controller):
    tags = ["identity"]
    dependencies = {
        "identity_provider": Provide(provide_identity_provider, sync_to_thread=False),
    }

    @post(
        "/login",
        operation_id="login",
        summary="Log in with a username and password",
        status_code=200,
        opt={OPEN_ROUTE_KEY: True, LOGIN_LIMITED_KEY: True, "operation": "log in"},
        operation_class=_LoginOperation,
        responses={
            401: ResponseSpec(ErrorDetail, description=INVALID_CREDENTIALS),
            422: _INVALID,
            503: _UNAVAILABLE,
        },
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        identity_provider: NamedDependency[IssuerClient],
    ) -> Response[LoginTokens]:
        """The issuer's tokens for these credentials (OAuth2 password grant). JSON or form body.
        Attempts are limited per client address and username (`LOGIN_RATE_LIMIT`)."""
        credentials = await read_credentials(request)
        limit_headers = await check_login_attempt(request, credentials.username)
        return await _exchange(
            identity_provider.password_grant(credentials.username, credentials.password),
            INVALID_CREDENTIALS,
            limit_headers,
        )

    @post(
        "/login/refresh",
        operation_id="refreshLogin",
        summary="Exchange a refresh token for fresh tokens",
        status_code=200,
        opt={OPEN_ROUTE_KEY: True, LOGIN_LIMITED_KEY: True, "operation": "refresh login"},
        responses={
            401: ResponseSpec(ErrorDetail, description=INVALID_REFRESH_TOKEN),
            422: _INVALID,
            503: _UNAVAILABLE,
        },
    )
    async def refresh(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RefreshRequest],
        identity_provider: NamedDependency[IssuerClient],
    ) -> Response[LoginTokens]:
        """The issuer's tokens for this refresh token (OAuth2 refresh grant). Attempts are limited
        per client address (`LOGIN_RATE_LIMIT`)."""
        limit_headers = await check_login_attempt(request, None)
        return await _exchange(
            identity_provider.refresh_grant(data.refresh_token),
            INVALID_REFRESH_TOKEN,
            limit_headers,
        )

    @post(
        "/logout",
        operation_id="logout",
        summary="End the session of this access token and refresh token",
        status_code=HTTP_204_NO_CONTENT,
        opt={ALLOW_REVOKED_KEY: True, "operation": "log out"},
        dependencies={"verifier": Provide(provide_verifier, sync_to_thread=False)},
        responses={422: _INVALID, 503: _UNAVAILABLE},
    )
    async def logout(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RefreshRequest],
        identity_provider: NamedDependency[IssuerClient],
        verifier: NamedDependency[TokenVerifier],
    ) -> None:
        """Ends the session at the issuer; this access token and every other token of its session
        are refused from now on, until they would have expired. A second logout is also 204."""
        verified: VerifiedToken = request.auth
        try:
            await verifier.revoke(verified)
            shared = True
        except RevocationUnavailable:
            shared = False  # refused in this process only: still end the session at the issuer
        try:
            await identity_provider.end_session(data.refresh_token)
        except IssuerRejected:
            pass  # the issuer knows no such session any more: ended either way
        except IssuerUnavailable:
            raise _unavailable() from None
        if not shared:
            # Other processes may still accept the tokens: say so, so that the client retries.
            raise ServiceUnavailableException(
                detail="The logout could not reach every process; retry",
                headers={"Retry-After": RETRY_AFTER_S},
            )


async def _exchange(
    grant: Awaitable[TokenSet], refused: str, limit_headers: dict[str, str]
) -> Response[LoginTokens]:
    """The grant's tokens, or its failure; either answer carries the login limit's headers."""
    try:
        tokens = LoginTokens.of(await grant)
    except IssuerRejected:
        raise NotAuthorizedException(detail=refused, headers=limit_headers) from None
    except IssuerUnavailable:
        raise _unavailable(limit_headers) from None
    return Response(tokens, headers=limit_headers)


def _unavailable(extra_headers: dict[str, str] | None = None) -> ServiceUnavailableException:
    return ServiceUnavailableException(
        detail="The identity provider is unavailable",
        headers={"Retry-After": RETRY_AFTER_S, **(extra_headers or {})},
    )


_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
_ERROR_PATH = re.compile(r"- at `\$\.([^`]*)`$")
_MISSING_FIELD = re.compile(r"missing required field `([^`]*)`")


async def read_credentials(request: Request[Any, Any, Any]) -> LoginRequest:
    """`LoginRequest` from a JSON or form body; 422 (`ValidationException`) when it does not fit."""
    try:
        if request.content_type[0] in _FORM_TYPES:
            form = await request.form()
            fields = {name: form.get(name) for name in ("username", "password") if name in form}
            return msgspec.convert(fields, LoginRequest)
        return msgspec.json.decode(await request.body(), type=LoginRequest)
    except msgspec.ValidationError as error:
        message = str(error)
        path = _ERROR_PATH.search(message) or _MISSING_FIELD.search(message)
        raise ValidationException(
            detail="Validation failed",
            extra=[{"key": path.group(1) if path else "", "message": message, "source": "body"}],
        ) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise ValidationException(detail="The body is not valid JSON") from None
    except RecursionError:
        # msgspec guards its recursion with the interpreter's limit, in skipped fields as well.
        raise ValidationException(detail=TOO_DEEP) from None
