"""The issuer's signing keys, as the token checks need them: by `kid`, cached, refreshed rarely.

The JWKS is fetched at start (in the background) and then only when a token names a `kid` the cache
does not hold: that is how a key rotation at the issuer is picked up without a restart. Fetches are
single-flight (concurrent misses share one fetch) and at most one every `min_refresh_interval_s`, so
a flood of tokens with made-up `kid`s costs the issuer one request every few seconds, not one per
token. Keys published for encryption (`use: enc`), symmetric keys and keys whose type no asymmetric
signature algorithm uses are left out: only they could verify a signature we would accept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from cqlstar.identity.issuer import IssuerClient, IssuerUnavailable

log = logging.getLogger(__name__)

# Asymmetric JWS algorithms only (RFC 7518, RFC 8037), with the key type each needs. `none` and the
# HMAC family are absent on purpose: an HMAC "public key" is a shared secret anyone could sign with.
ALGORITHM_KEY_TYPES: Mapping[str, str] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
}
MIN_REFRESH_INTERVAL_S = 5.0

VerificationKey = RSAKey | ECKey | OKPKey


class UnknownKey(Exception):
    """No signing key of the issuer has this `kid` (or fits this algorithm)."""


class SigningKeys:
    def __init__(
        self, issuer: IssuerClient, *, min_refresh_interval_s: float = MIN_REFRESH_INTERVAL_S
    ) -> None:
        self._issuer = issuer
        self._min_interval = min_refresh_interval_s
        self._keys: dict[str, VerificationKey] = {}
        self._loaded = False
        self._last_attempt = -float("inf")
        self._lock: asyncio.Lock | None = None
        self.fetches = 0  # successful JWKS fetches, for tests and operators

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    async def key_for(self, kid: str, algorithm: str) -> VerificationKey:
        """The key that must have signed a token with this header.

        Raises `UnknownKey`, or `IssuerUnavailable` when no key set was ever obtained."""
        key = self._keys.get(kid)
        if key is None:
            await self.refresh()
            key = self._keys.get(kid)
            if key is None:
                raise UnknownKey(kid)
        if key.key_type != ALGORITHM_KEY_TYPES[algorithm]:
            raise UnknownKey(kid)
        published_alg = key.get("alg")
        if published_alg is not None and published_alg != algorithm:
            raise UnknownKey(kid)
        return key

    async def refresh(self) -> None:
        """Fetch the JWKS unless another fetch just ran or is running (then share its result).

        Raises `IssuerUnavailable` only while no key set was ever obtained: once one was, tokens
        signed by its keys keep verifying whatever the issuer does."""
        asked_at = time.monotonic()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._last_attempt >= asked_at:
                pass  # a fetch finished while we waited for the lock: its answer is ours
            elif time.monotonic() - self._last_attempt >= self._min_interval:
                self._last_attempt = time.monotonic()
                try:
                    self._replace(await self._issuer.jwks())
                except IssuerUnavailable as error:
                    log.warning("JWKS fetch failed", extra={"error": str(error)})
                    if not self._loaded:
                        raise
            if not self._loaded:
                raise IssuerUnavailable("no signing keys obtained from the issuer yet")

    def _replace(self, jwks: dict[str, Any]) -> None:
        keys: dict[str, VerificationKey] = {}
        for entry in jwks["keys"]:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str) or entry.get("kty") not in {"RSA", "EC", "OKP"}:
                continue
            try:
                key = import_key(entry)
            except (JoseError, ValueError, TypeError) as error:
                log.warning("skipped an unusable JWKS key", extra={"kid": kid, "error": str(error)})
                continue
            if isinstance(key, RSAKey | ECKey | OKPKey):
                keys[kid] = key
        self._keys = keys
        self._loaded = True
        self.fetches += 1
        log.info("signing keys loaded", extra={"kids": sorted(keys)})
