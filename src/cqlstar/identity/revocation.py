"""Tokens refused before they expire: what `POST /logout` ends.

A signed token stays valid until its `exp` whatever the issuer later does, so ending a session has
to be remembered by the service: the session (`sid`), or the token itself (`jti`) when it names no
session, is kept as revoked until every token it covers has expired, and no longer.

The check runs on every authenticated request, so it is a lookup in a local dict and never a
network round trip. `LocalRevocations` is that dict alone: right for one process. With shared state
(Redis) a store shares revocations between processes and keeps the same local lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

Clock = Callable[[], float]


def session_key(session_id: str) -> str:
    return f"sid:{session_id}"


def token_key(token_id: str) -> str:
    return f"jti:{token_id}"


class RevocationStore(Protocol):
    def is_revoked(self, keys: tuple[str, ...]) -> bool:
        """Whether any of these keys is revoked now (local, no I/O)."""
        ...

    async def revoke(self, key: str, until: float) -> None:
        """Refuse `key` until the epoch time `until`, on every process sharing this store."""
        ...


class LocalRevocations:
    """Revocations held in this process: what `REDIS_URL` unset means."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    def is_revoked(self, keys: tuple[str, ...]) -> bool:
        if not self._until:
            return False
        now = self._clock()
        return any(self._until.get(key, 0.0) > now for key in keys)

    def add(self, key: str, until: float) -> None:
        """Record a revocation (also what a shared store calls when another process revoked)."""
        if until > self._until.get(key, 0.0):
            self._until[key] = until
        self._forget_expired()

    async def revoke(self, key: str, until: float) -> None:
        self.add(key, until)

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [key for key, until in self._until.items() if until <= now]:
            del self._until[key]

    def __len__(self) -> int:
        return len(self._until)
