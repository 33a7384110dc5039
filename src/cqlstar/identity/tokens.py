"""Access-token checks, all local: `TokenVerifier.verify(token) -> Principal` or `InvalidToken`.

What a token must be to pass, in order:

1. A JWS in compact form (three base64url segments, at most `MAX_TOKEN_CHARS`) whose protected
   header names an asymmetric algorithm (`RS*`, `PS*`, `ES*`, `EdDSA`; never `none` or `HS*`), a
   `kid`, and no critical extension.
2. Signed by the issuer's key with that `kid` (`cqlstar.identity.keys`: fetched from its JWKS,
   refetched when the `kid` is unknown).
3. Claims: `iss` equal to the configured issuer; `aud` (a string or a list) containing the audience;
   `sub` a non-empty string; `exp` in the future, `nbf` (if present) not in the future, `iat` (if
   present) not in the future, each with at most `LEEWAY_S` seconds of clock skew; and, where the
   token says what it is (Keycloak's `typ` claim), an access token (`Bearer`): an ID token issued
   to the same client would otherwise pass, since it carries the same `aud`.
4. Not revoked (`cqlstar.identity.revocation`): its session was not logged out.

A token that passed 1 to 3 is remembered until it expires (at most `CACHE_SIZE` tokens, the oldest
forgotten first), so a client that reuses its token pays the signature check once; step 4 and the
expiry are checked on every use. Nothing about a token's shape can make a check raise anything
but `InvalidToken`: every parse is guarded.

`SigningKeysUnavailable` (an `InvalidToken`) means the token could not be checked because no key set was
ever obtained from the issuer; HTTP answers it 503 rather than 401.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

import msgspec
from joserfc import jws

from cqlstar.identity.issuer import IssuerUnavailable
from cqlstar.identity.keys import ALGORITHM_KEY_TYPES, SigningKeys, UnknownKey
from cqlstar.identity.principal import Principal
from cqlstar.identity.revocation import RevocationStore, session_key, token_key

LEEWAY_S = 30.0
MAX_TOKEN_CHARS = 16 * 1024
CACHE_SIZE = 10_000
# Keycloak's `typ` claim of an access token; other issuers usually send none.
_ACCESS_TOKEN_TYPES = {"Bearer", "bearer", "at+jwt"}


class InvalidToken(Exception):
    """The token fails a check: HTTP 401 `invalid_token`, WebSocket close 4001."""


class SigningKeysUnavailable(InvalidToken):
    """The token cannot be checked now: no signing keys were ever obtained from the issuer."""


class _Header(msgspec.Struct, frozen=True):
    alg: str
    kid: str
    crit: Any = None
    typ: Any = None


class VerifiedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token that passed the signature and claim checks, and what revoking it needs."""

    principal: Principal
    expires_at: float
    issued_at: float | None = None
    token_id: str | None = None

    @property
    def revocation_keys(self) -> tuple[str, ...]:
        keys: list[str] = []
        if self.principal.session_id:
            keys.append(session_key(self.principal.session_id))
        if self.token_id:
            keys.append(token_key(self.token_id))
        return tuple(keys)


Clock = Callable[[], float]


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        roles_claim: str,
        keys: SigningKeys,
        revocations: RevocationStore,
        clock: Clock = time.time,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.revocations = revocations
        self._roles_path = tuple(roles_claim.split("."))
        self._clock = clock
        self._cache: dict[str, VerifiedToken] = {}
        self._cache_size = cache_size

    async def verify(self, token: str) -> Principal:
        """The token's principal, or `InvalidToken` (also for a revoked token)."""
        return (await self.verify_unrevoked(token)).principal

    async def verify_unrevoked(self, token: str) -> VerifiedToken:
        """`check`, then `InvalidToken` if the token's session has ended; for a caller that keeps
        the token's `revocation_keys` to look again later (a long-lived connection)."""
        verified = await self.check(token)
        if self.is_revoked(verified):
            raise InvalidToken("the token's session has ended")
        return verified

    def is_revoked(self, verified: VerifiedToken) -> bool:
        return self.revocations.is_revoked(verified.revocation_keys)

    async def revoke(self, verified: VerifiedToken) -> None:
        """Refuse this token, and every other token of its session, until they have all expired.

        A session's tokens were all issued before it ended, each for at most this token's
        lifetime, so none outlives now + that lifetime (+ the leeway it is accepted with)."""
        now = self._clock()
        lifetime = verified.expires_at - (verified.issued_at or now)
        until = max(now + max(lifetime, 0.0), verified.expires_at) + LEEWAY_S
        for key in verified.revocation_keys:
            await self.revocations.revoke(key, until)

    async def check(self, token: str) -> VerifiedToken:
        """Signature and claims (cached until expiry), not revocation."""
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + LEEWAY_S > self._clock():
                return cached
            del self._cache[token]
            raise InvalidToken("the token has expired")
        verified = await self._check_uncached(token)
        if len(self._cache) >= self._cache_size:
            # The oldest entry goes first (dicts keep insertion order): a bounded cache whatever
            # the number of distinct tokens presented.
            del self._cache[next(iter(self._cache))]
        self._cache[token] = verified
        return verified

    async def _check_uncached(self, token: str) -> VerifiedToken:
        header = _parse_header(token)
        try:
            key = await self.keys.key_for(header.kid, header.alg)
        except UnknownKey:
            raise InvalidToken("no signing key of the issuer has this kid") from None
        except IssuerUnavailable as error:
            raise SigningKeysUnavailable(str(error)) from None
        try:
            payload = jws.deserialize_compact(token, key, algorithms=[header.alg]).payload
            claims = msgspec.json.decode(payload)
        except Exception as error:  # any failure to verify or decode is the token's, never a 500
            raise InvalidToken(f"bad signature or payload: {type(error).__name__}") from None
        if not isinstance(claims, dict):
            raise InvalidToken("the claims are not an object")
        return self._check_claims(claims)

    def _check_claims(self, claims: dict[str, Any]) -> VerifiedToken:
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong issuer")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise InvalidToken("wrong audience")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("no subject")
        token_type = claims.get("typ")
        if token_type is not None and token_type not in _ACCESS_TOKEN_TYPES:
            raise InvalidToken("not an access token")
        now = self._clock()
        expires_at = _time_claim(claims, "exp", required=True)
        assert expires_at is not None  # required=True
        if expires_at + LEEWAY_S <= now:
            raise InvalidToken("the token has expired")
        not_before = _time_claim(claims, "nbf")
        if not_before is not None and not_before - LEEWAY_S > now:
            raise InvalidToken("the token is not valid yet")
        issued_at = _time_claim(claims, "iat")
        if issued_at is not None and issued_at - LEEWAY_S > now:
            raise InvalidToken("the token was issued in the future")
        username = claims.get("preferred_username")
        session_id = claims.get("sid")
        token_id = claims.get("jti")
        return VerifiedToken(
            principal=Principal(
                subject=subject,
                username=username if isinstance(username, str) else None,
                roles=self._roles(claims),
                expires_at=expires_at,
                session_id=session_id if isinstance(session_id, str) and session_id else None,
            ),
            expires_at=expires_at,
            issued_at=issued_at,
            token_id=token_id if isinstance(token_id, str) and token_id else None,
        )

    def _roles(self, claims: dict[str, Any]) -> frozenset[str]:
        value: Any = claims
        for step in self._roles_path:
            if not isinstance(value, dict):
                return frozenset()
            value = value.get(step)
        if not isinstance(value, list):
            return frozenset()
        return frozenset(role for role in value if isinstance(role, str))


def _parse_header(token: str) -> _Header:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("not a token")
    segments = token.split(".")
    if len(segments) != 3 or not all(segments[:2]):
        raise InvalidToken("not a compact JWS")
    try:
        raw = base64.urlsafe_b64decode(segments[0] + "=" * (-len(segments[0]) % 4))
        header = msgspec.json.decode(raw, type=_Header)
    # DecodeError: also wrong types. RecursionError: nested past msgspec's recursion allowance,
    # which guards the fields it skips as well (a header of 16 KiB nests 5000 deep).
    except (binascii.Error, ValueError, msgspec.DecodeError, RecursionError):
        raise InvalidToken("unreadable header") from None
    if header.alg not in ALGORITHM_KEY_TYPES:
        raise InvalidToken("algorithm not allowed")
    if header.crit is not None:
        raise InvalidToken("critical header extensions are not supported")
    return header


def _time_claim(claims: dict[str, Any], name: str, *, required: bool = False) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise InvalidToken(f"no {name}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"{name} is not a number")
    return float(value)
