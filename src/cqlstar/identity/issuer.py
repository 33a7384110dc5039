"""Everything the service asks of the OpenID Connect issuer, and nothing else does.

Per process: the discovery document (once), the JWKS (at start, then only when a token names an
unknown key: see `cqlstar.identity.keys`), and on behalf of a client the password grant, the
refresh grant and the end of a session. Token checks never come here per request.

Every call is asynchronous (httpx), bounded by `ISSUER_TIMEOUT_S`, and logged at INFO as
`issuer call` with its purpose, so that an operator (and the tests) can count them. What the issuer
answers is turned into one of three outcomes here, and its text, its URLs and its status codes never
travel further: a `TokenSet`, `IssuerRejected` (it refused the credentials or the token: the
client's fault), or `IssuerUnavailable` (it did not answer, failed, or answered nonsense: retry).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import msgspec

log = logging.getLogger(__name__)
# httpx logs every request at INFO; the calls to the issuer are logged once, here, with their purpose.
logging.getLogger("httpx").setLevel(logging.WARNING)

# Long enough for a password check on a busy issuer (Keycloak hashes with a slow KDF on purpose),
# short enough that a client waiting on a hung issuer gets its 503 before it gives up itself.
ISSUER_TIMEOUT_S = 10.0
# OAuth2 errors that mean "these credentials or this token are not accepted" (RFC 6749, 5.2).
_CLIENT_FAULTS = {"invalid_grant", "invalid_request"}


class IssuerUnavailable(Exception):
    """The issuer did not answer, failed, or answered something unusable: try again later."""


class IssuerRejected(Exception):
    """The issuer refused the credentials or the token (OAuth2 `invalid_grant`)."""


class Discovery(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of the discovery document the service uses."""

    issuer: str
    jwks_uri: str
    token_endpoint: str
    end_session_endpoint: str | None = None
    revocation_endpoint: str | None = None


class TokenSet(msgspec.Struct, frozen=True, kw_only=True):
    """A token endpoint's answer, reduced to what `POST /login` hands on."""

    access_token: str
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    token_type: str = "Bearer"


class _OAuthError(msgspec.Struct, frozen=True):
    error: str = ""


class IssuerClient:
    """The service's one connection to its issuer (an httpx connection pool)."""

    def __init__(
        self,
        issuer: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        timeout: float = ISSUER_TIMEOUT_S,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._client_secret = client_secret
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._discovery: Discovery | None = None
        self._discovery_lock: asyncio.Lock | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def discovery(self) -> Discovery:
        """The discovery document, fetched once per process (single-flight) and then kept."""
        if self._discovery is not None:
            return self._discovery
        if self._discovery_lock is None:
            self._discovery_lock = asyncio.Lock()
        async with self._discovery_lock:
            if self._discovery is None:
                url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
                document = await self._get_json(url, "discovery")
                try:
                    discovery = msgspec.convert(document, Discovery)
                except msgspec.ValidationError as error:
                    raise IssuerUnavailable(f"unusable discovery document: {error}") from None
                # OpenID Connect Discovery 1.0, 4.3: the document must name the issuer we asked.
                if discovery.issuer != self.issuer:
                    raise IssuerUnavailable(
                        f"the discovery document names issuer {discovery.issuer!r}, "
                        f"not the configured {self.issuer!r}"
                    )
                self._discovery = discovery
        return self._discovery

    async def jwks(self, purpose: str = "jwks") -> dict[str, Any]:
        # `purpose` names the call in the log: /health fetches it too, as "health".
        document = await self._get_json((await self.discovery()).jwks_uri, purpose)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise IssuerUnavailable("the JWKS is not a key set")
        return document

    async def password_grant(self, username: str, password: str) -> TokenSet:
        return await self._token(
            {
                "grant_type": "password",
                "username": username,
                "password": password,
                "scope": "openid",
            },
            "password grant",
        )

    async def refresh_grant(self, refresh_token: str) -> TokenSet:
        return await self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, "refresh grant"
        )

    async def end_session(self, refresh_token: str) -> None:
        """End the refresh token's session at the issuer: the end-session endpoint with the refresh
        token (Keycloak's back-channel logout), else the revocation endpoint (RFC 7009).

        A token the issuer no longer knows (a second logout, an expired session) raises
        `IssuerRejected`; the caller decides what that means."""
        discovery = await self.discovery()
        url = discovery.end_session_endpoint or discovery.revocation_endpoint
        if url is None:
            raise IssuerUnavailable("the issuer offers no way to end a session")
        form = {"refresh_token": refresh_token}
        if url == discovery.revocation_endpoint:
            form = {"token": refresh_token, "token_type_hint": "refresh_token"}
        response = await self._post(url, form, "end session")
        self._raise_for_outcome(response)

    async def _token(self, form: dict[str, str], purpose: str) -> TokenSet:
        response = await self._post((await self.discovery()).token_endpoint, form, purpose)
        self._raise_for_outcome(response)
        try:
            return msgspec.json.decode(response.content, type=TokenSet)
        except msgspec.DecodeError as error:
            raise IssuerUnavailable(f"unusable token response: {error}") from None

    async def _post(self, url: str, form: dict[str, str], purpose: str) -> httpx.Response:
        form = {**form, "client_id": self.client_id}
        if self._client_secret is not None:
            form["client_secret"] = self._client_secret
        return await self._call("POST", url, purpose, data=form)

    async def _get_json(self, url: str, purpose: str) -> Any:
        response = await self._call("GET", url, purpose)
        if response.status_code != 200:
            raise IssuerUnavailable(f"{purpose}: HTTP {response.status_code}")
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError as error:
            raise IssuerUnavailable(f"{purpose}: not JSON ({error})") from None

    async def _call(self, method: str, url: str, purpose: str, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            log.warning(
                "issuer call failed",
                extra={"purpose": purpose, "error": type(error).__name__},
            )
            raise IssuerUnavailable(f"{purpose}: {type(error).__name__}") from None
        log.info(
            "issuer call",
            extra={
                "purpose": purpose,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response

    def _raise_for_outcome(self, response: httpx.Response) -> None:
        status = response.status_code
        if status in (200, 204):
            return
        if 400 <= status < 500:
            try:
                error = msgspec.json.decode(response.content, type=_OAuthError).error
            except msgspec.DecodeError:
                error = ""
            if error in _CLIENT_FAULTS:
                raise IssuerRejected(error)
            # invalid_client, unauthorized_client, unsupported_grant_type...: the service's own
            # client configuration is wrong, which no retry by the caller can fix; an operator must.
            log.error(
                "the issuer refused the service's client",
                extra={"status": status, "oauth_error": error or None},
            )
        raise IssuerUnavailable(f"HTTP {status}")
