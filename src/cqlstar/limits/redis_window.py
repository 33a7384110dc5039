"""The sliding window in Redis: one Lua script, exact and atomic across processes.

Why a script of our own rather than the `limits` library's moving window: the contract's headers
need the decision, the remaining count and the time until a slot frees, all from the same atomic
step; `limits` answers "allowed?" in one call and the window's state in a second one (a second round
trip, and the two can disagree under concurrency). Its moving window also stamps events with each
client's own clock, while this script reads the Redis server's `TIME`, so processes on hosts whose
clocks drift still share one timeline. And it would be one more dependency for about 30 lines.

How it stays cheap: checks that arrive while one script call is in flight are queued and sent
together as the next call (each check is still decided on its own, one after another, inside one
atomic script run). Under load a request therefore pays a share of one Redis round trip instead of
a whole one; an idle service sends each check at once. At most one call is in flight per process.

Redis down or frozen: a call that fails or takes longer than `timeout_s` marks the store
unavailable; from then on `hit` raises `WindowUnavailable` at once (callers fail open, without
waiting) while a background probe PINGs Redis every `probe_interval_s` and puts it back in use as
soon as it answers. A restarted Redis has lost the script: redis-py's `Script` loads it again
(NOSCRIPT). The keys live for one window after their last event (PEXPIRE), so Redis holds only the
principals active in the last window.

Several keys in one script call assume a single Redis (or one Redis Cluster slot), as the rest of
the service does.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from cqlstar.limits.window import Decision, WindowUnavailable, whole_seconds
from cqlstar.settings import Rate

log = logging.getLogger(__name__)

# KEYS: one sorted set per check (members: one per accepted event, scored by its time in ms).
# ARGV: per check, its limit, its window in ms and a member name unique to this event.
# Returns, per check: 1 or 0 (accepted), the events still allowed (0, not negative, when processes
# with a higher limit filled the window past this one's), ms until the oldest leaves.
SLIDING_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 2])
  local window = tonumber(ARGV[3 * i - 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local accepted = 0
  if count < limit then
    redis.call('ZADD', key, now, ARGV[3 * i])
    redis.call('PEXPIRE', key, window)
    count = count + 1
    accepted = 1
  end
  local reset = 0
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if oldest[2] then
    reset = tonumber(oldest[2]) + window - now
  end
  out[#out + 1] = accepted
  out[#out + 1] = math.max(limit - count, 0)
  out[#out + 1] = reset
end
return out
"""

# Followed by the deployment (the Cassandra keyspace), then the window's own key.
KEY_PREFIX = "cqlstar:ratelimit:"
# A script call carries at most this many checks; more wait for the next call.
MAX_BATCH = 256


class _Check:
    __slots__ = ("future", "key", "rate")

    def __init__(self, key: str, rate: Rate, future: asyncio.Future[Decision]) -> None:
        self.key = key
        self.rate = rate
        self.future = future


class RedisWindow:
    def __init__(
        self,
        redis: Redis,
        *,
        deployment: str,
        timeout_s: float = 0.5,
        probe_interval_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._key_prefix = f"{KEY_PREFIX}{deployment}:"
        self._script = redis.register_script(SLIDING_WINDOW_LUA)
        self._timeout_s = timeout_s
        self._probe_interval_s = probe_interval_s
        self._queue: list[_Check] = []
        self._sender: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        # Event names only need to be unique within their key's window: a per-process random
        # prefix and a counter are unique across processes without asking anyone.
        self._member_prefix = os.urandom(6).hex() + ":"
        self._sequence = 0
        self.available = True

    async def hit(self, key: str, rate: Rate) -> Decision:
        if not self.available:
            raise WindowUnavailable
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._queue.append(_Check(self._key_prefix + key, rate, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_queued())
        return await future

    async def _send_queued(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._send(batch)
        finally:
            self._sender = None

    async def _send(self, batch: list[_Check]) -> None:
        keys: list[str] = []
        args: list[Any] = []
        for check in batch:
            self._sequence += 1
            keys.append(check.key)
            args += (
                check.rate.limit,
                check.rate.window_s * 1000,
                self._member_prefix + str(self._sequence),
            )
        try:
            async with asyncio.timeout(self._timeout_s):
                reply = await self._script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as error:
            self._mark_unavailable(error)
            for check in batch:
                if not check.future.done():
                    check.future.set_exception(WindowUnavailable())
            return
        for i, check in enumerate(batch):
            if not check.future.done():  # its request may have been cancelled meanwhile
                accepted, remaining, reset_ms = reply[3 * i : 3 * i + 3]
                check.future.set_result(
                    Decision(
                        bool(accepted), check.rate.limit, int(remaining), whole_seconds(reset_ms)
                    )
                )

    def _mark_unavailable(self, error: BaseException) -> None:
        if not self.available:
            return
        self.available = False
        log.warning(
            "rate limits fail open: Redis does not answer",
            extra={"error": type(error).__name__},
        )
        self._prober = asyncio.create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval_s)
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._redis.ping()
            except (RedisError, OSError, TimeoutError):
                continue
            self.available = True
            log.warning("rate limits enforced again: Redis answers")
            return

    async def close(self) -> None:
        for task in (self._prober, self._sender):
            if task is not None:
                task.cancel()
