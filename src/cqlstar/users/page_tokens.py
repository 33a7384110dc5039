"""Opaque, tamper-evident `page_state` tokens for `GET /users/stream/pages`.

Cassandra's paging state is an internal cursor: handing it out raw would let a client forge one, and
reusing it with a different query makes Cassandra resume somewhere meaningless. So a token is

    urlsafe_base64( VERSION || paging_state || HMAC-SHA256(secret, scope || VERSION || paging_state) )

where the scope names the query the state belongs to (its filter and page size). A token whose MAC
does not verify, for whatever reason (forged, truncated, or presented with other query parameters),
is rejected as a whole; the reason is deliberately not told apart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_VERSION = b"\x01"
_MAC_BYTES = hashlib.sha256().digest_size


class InvalidPageToken(ValueError):
    """The token was not issued by this service for this query."""


class PageTokenSigner:
    """Issues and checks page tokens with one secret (`Settings.page_token_secret`)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("page token secret must be at least 16 bytes")
        self._secret = secret

    def issue(self, paging_state: bytes, *, min_age: int | None, fetch_size: int) -> str:
        body = _VERSION + paging_state
        mac = self._mac(body, min_age=min_age, fetch_size=fetch_size)
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")

    def open(self, token: str, *, min_age: int | None, fetch_size: int) -> bytes:
        """The paging state inside `token`; raises InvalidPageToken unless it verifies for this query."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidPageToken from None
        # At least the version byte, one byte of state, and the MAC.
        if len(raw) < 1 + 1 + _MAC_BYTES or raw[:1] != _VERSION:
            raise InvalidPageToken
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body, min_age=min_age, fetch_size=fetch_size)):
            raise InvalidPageToken
        return body[1:]

    def _mac(self, body: bytes, *, min_age: int | None, fetch_size: int) -> bytes:
        # The scope is length-unambiguous (fixed field names, integers, a separator that cannot occur
        # in them), so no two different queries share a scope.
        scope = (
            f"users.pages|age_filter={'' if min_age is None else min_age}|fetch_size={fetch_size}|"
        )
        return hmac.new(self._secret, scope.encode("ascii") + body, hashlib.sha256).digest()
