"""Tokens refused before they expire: what `POST /logout` ends.

A signed token stays valid until its `exp` whatever the issuer later does, so ending a session has
to be remembered by the service: the session (`sid`), or the token itself (`jti`) when it names no
session, is kept as revoked until every token it covers has expired, and no longer.

The check runs on every authenticated request, so it is a lookup in a local dict and never a
network round trip. `LocalRevocations` is that dict alone: right for one process (`REDIS_URL`
unset). `SharedRevocations` feeds the same dict from Redis, for every process sharing it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

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


class RevocationUnavailable(Exception):
    """A revocation could not be shared with the other processes (Redis did not answer)."""


class SharedRevocations:
    """Revocations shared through Redis, checked locally.

    `revoke` records the key locally, stores it in Redis (`cqlstar:revoked:<key>`, expiring when the
    revocation does) and publishes it on `cqlstar:revocations`. Every process runs `run()`: it
    subscribes to that channel, then loads what is stored (so nothing revoked between a process's
    start and its subscription is missed), and adds each published key to its local dict. The check
    on the request path stays a local lookup: no Redis round trip per request. If the subscription
    breaks (Redis restarted), `run()` subscribes and loads again; a revocation published meanwhile
    reaches the process then, from the stored keys.
    """

    CHANNEL = "cqlstar:revocations"
    PREFIX = "cqlstar:revoked:"
    RETRY_S = 1.0
    # The most a logout waits for Redis to take a revocation: a frozen server answers nothing, and
    # the client's 5 s socket backstop would outlast a request's `X-Request-Timeout` (504 instead
    # of the 503 that tells the client to retry).
    STORE_TIMEOUT_S = 0.5

    def __init__(self, redis: Redis, clock: Clock = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self.local = LocalRevocations(clock)
        self.subscribed = asyncio.Event()

    def is_revoked(self, keys: tuple[str, ...]) -> bool:
        return self.local.is_revoked(keys)

    async def revoke(self, key: str, until: float) -> None:
        self.local.add(key, until)
        ttl_ms = int((until - self._clock()) * 1000)
        if ttl_ms <= 0:
            return
        try:
            async with asyncio.timeout(self.STORE_TIMEOUT_S):
                await self._redis.set(self.PREFIX + key, repr(until), px=ttl_ms)
                await self._redis.publish(self.CHANNEL, f"{until!r} {key}")
        except (RedisError, OSError) as error:  # OSError: TimeoutError too
            raise RevocationUnavailable(type(error).__name__) from None

    async def run(self) -> None:
        """Follow the other processes' revocations until cancelled."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis down or restarting: try again shortly
                self.subscribed.clear()
                log.warning("revocations: lost Redis, retrying", extra={"error": repr(error)})
                await asyncio.sleep(self.RETRY_S)

    async def _follow(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.CHANNEL)
            await self._load()
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self._receive(message.get("data"))
        finally:
            await pubsub.aclose()

    async def _load(self) -> None:
        async for name in self._redis.scan_iter(match=self.PREFIX + "*", count=500):
            value = await self._redis.get(name)
            if value is not None:
                key = _text(name)[len(self.PREFIX) :]
                self._add(key, _text(value))

    def _receive(self, data: object) -> None:
        until, _, key = _text(data).partition(" ")
        self._add(key, until)

    def _add(self, key: str, until: str) -> None:
        try:
            self.local.add(key, float(until))
        except ValueError:
            log.warning("revocations: ignored a malformed entry", extra={"key": key})


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
