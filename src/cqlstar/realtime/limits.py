"""The per-principal connection limit of the WebSocket API (`WS_MAX_CONNECTIONS`).

`ConnectionSlots` counts a principal's open connections across every process. Each connection holds
a slot named by a random id, stamped with the time it was last confirmed alive; a slot nobody
confirms for `SLOT_STALE_S` no longer counts, so a process that dies without cleaning up stops
counting against its principals within a minute. Each process confirms the slots of all its open
connections every `SLOT_REFRESH_S`, in one call (`refresh`).

- `InProcessConnectionSlots`: one process (no `REDIS_URL`).
- `RedisConnectionSlots`: a sorted set per principal, slot ids scored by the Redis server's clock
  (`TIME`, so hosts whose clocks drift share one timeline), and ONE Lua script that prunes the stale
  slots, counts and adds: atomic, so concurrent connects on any number of processes never admit more
  than the limit. (Separate calls, check then add, let concurrent connects all pass the check before
  any of them added its slot.)

Redis unreachable, or silent for `SLOT_TIMEOUT_S` (`cqlstar.realtime.runtime`): the limit fails open
like the rate limits (the connection is admitted, the failure logged and counted), so an outage of
the shared state does not take the API down.

The per-message rate limit is `cqlstar.limits` (`RateLimiter.check_ws_message`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final, Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)

# Slots are confirmed this often, and stop counting after this long unconfirmed: well within the
# contract's minute, with two refreshes of slack before a live connection's slot could go stale.
SLOT_REFRESH_S: Final = 15.0
SLOT_STALE_S: Final = 45.0
# Followed by the deployment (the Cassandra keyspace, as for the rate limits), then the principal.
KEY_PREFIX: Final = "cqlstar:ws:connections:"

# KEYS[1]: the principal's slots. ARGV: the new slot's id, the limit, the staleness in ms.
# Returns 1 (admitted) or 0 (the principal holds `limit` live slots already).
ACQUIRE_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - stale)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], stale)
return 1
"""
# KEYS: principals' slot sets; ARGV[1]: staleness in ms, ARGV[i + 1]: a slot of KEYS[i].
# Re-stamps each slot (re-adding one that went stale while Redis was away: it is still open).
REFRESH_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[i + 1])
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""


class ConnectionSlots(Protocol):
    async def acquire(self, subject: str, slot: str, limit: int) -> bool:
        """Take a slot for a new connection; False when `subject` already holds `limit`."""

    async def release(self, subject: str, slot: str) -> None:
        """Give a closed connection's slot back."""

    async def refresh(self, held: Iterable[tuple[str, str]]) -> None:
        """Confirm that these (subject, slot) pairs are still open."""


class InProcessConnectionSlots:
    """The open connections of this process, per principal."""

    def __init__(self) -> None:
        self._held: dict[str, set[str]] = {}

    async def acquire(self, subject: str, slot: str, limit: int) -> bool:
        held = self._held.setdefault(subject, set())
        if len(held) >= limit:
            return False
        held.add(slot)
        return True

    async def release(self, subject: str, slot: str) -> None:
        held = self._held.get(subject)
        if held is not None:
            held.discard(slot)
            if not held:
                del self._held[subject]

    async def refresh(self, held: Iterable[tuple[str, str]]) -> None:
        # The process is alive by definition: nothing can go stale here.
        return None


class RedisConnectionSlots:
    """The open connections of every process sharing one Redis, per principal."""

    def __init__(self, redis: Redis, *, deployment: str) -> None:
        self._redis = redis
        self._key_prefix = f"{KEY_PREFIX}{deployment}:"
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._refresh = redis.register_script(REFRESH_LUA)
        self._stale_ms = int(SLOT_STALE_S * 1000)

    async def acquire(self, subject: str, slot: str, limit: int) -> bool:
        admitted = await self._acquire(
            keys=[self._key_prefix + subject], args=[slot, limit, self._stale_ms]
        )
        return bool(admitted)

    async def release(self, subject: str, slot: str) -> None:
        await self._redis.zrem(self._key_prefix + subject, slot)

    async def refresh(self, held: Iterable[tuple[str, str]]) -> None:
        pairs = list(held)
        if pairs:
            await self._refresh(
                keys=[self._key_prefix + subject for subject, _ in pairs],
                args=[self._stale_ms, *(slot for _, slot in pairs)],
            )
