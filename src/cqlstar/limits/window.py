"""Sliding-window counting: the one decision every rate limit of the service makes.

`SlidingWindow.hit(key, rate)` records one event under `key` if fewer than `rate.limit` events were
recorded in the last `rate.window_s` seconds, and says what it decided. Two implementations:

- `InProcessWindow` (this module): a deque of timestamps per key. Right for one process only,
  which is why `python -m cqlstar --workers 2` refuses to start without `REDIS_URL`.
- `RedisWindow` (`cqlstar.limits.redis_window`): the same rule as one Lua script over Redis, atomic
  across every process sharing that Redis.

The window is exact, not an approximation: an event counts from the moment it is accepted until
exactly `window_s` later, so at any moment at most `limit` accepted events lie in the last window.
Rejected events are not recorded (a client that keeps knocking does not extend its own ban).
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import NamedTuple, Protocol

from cqlstar.settings import Rate


class Decision(NamedTuple):
    """One window's answer. `reset_s`: whole seconds until the oldest counted event leaves the
    window (when `remaining` next grows), 0 when the window is empty."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    @property
    def retry_after_s(self) -> int:
        """What `Retry-After` says on a rejection: at least one second."""
        return max(1, self.reset_s)


class WindowUnavailable(Exception):
    """The shared store cannot answer right now; callers fail open."""


class SlidingWindow(Protocol):
    async def hit(self, key: str, rate: Rate) -> Decision:
        """Count one event under `key` if `rate` allows it. Raises `WindowUnavailable`."""
        ...

    async def close(self) -> None:
        """Stop any background work (the Redis window's probe)."""
        ...


def whole_seconds(milliseconds: float) -> int:
    return max(0, math.ceil(milliseconds / 1000))


class InProcessWindow:
    """Timestamps per key, in this process only. No I/O: `hit` never waits."""

    # Keys whose events have all left their window are dropped every so many hits, so memory
    # follows the principals active in the last window, not every principal ever seen.
    _SWEEP_EVERY = 4096

    def __init__(self) -> None:
        self._events: dict[str, tuple[float, deque[float]]] = {}
        self._hits = 0

    async def hit(self, key: str, rate: Rate) -> Decision:
        return self.hit_now(key, rate, time.monotonic())

    async def close(self) -> None:
        return None

    def hit_now(self, key: str, rate: Rate, now: float) -> Decision:
        """The decision at monotonic time `now` (seconds); separate so tests can move the clock."""
        self._hits += 1
        if self._hits % self._SWEEP_EVERY == 0:
            self._sweep(now)
        window = float(rate.window_s)
        entry = self._events.get(key)
        if entry is None:
            entry = self._events[key] = (window, deque())
        events = entry[1]
        while events and events[0] <= now - window:
            events.popleft()
        allowed = len(events) < rate.limit
        if allowed:
            events.append(now)
        reset_ms = (events[0] + window - now) * 1000 if events else 0.0
        return Decision(
            allowed, rate.limit, max(rate.limit - len(events), 0), whole_seconds(reset_ms)
        )

    def _sweep(self, now: float) -> None:
        stale = [
            key
            for key, (window, events) in self._events.items()
            if not events or events[-1] <= now - window
        ]
        for key in stale:
            del self._events[key]
