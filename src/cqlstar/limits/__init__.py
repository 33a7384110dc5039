"""Rate limits: sliding windows per principal (HTTP, WebSocket) and per address and username (login).

- `window`: the sliding-window rule, and its in-process implementation;
- `redis_window`: the same rule as one atomic Lua script over Redis, for several processes;
- `limiter`: `RateLimiter`, the API the routes, the login and the WebSocket API call;
- `middleware`: the HTTP side: headers on every answer of a limited route, 429 before anything runs.
"""

from __future__ import annotations

from redis.asyncio import Redis

from cqlstar.limits.limiter import LimitKind, RateLimiter
from cqlstar.limits.redis_window import RedisWindow
from cqlstar.limits.window import Decision, InProcessWindow, SlidingWindow, WindowUnavailable
from cqlstar.settings import Settings

__all__ = [
    "Decision",
    "InProcessWindow",
    "LimitKind",
    "RateLimiter",
    "RedisWindow",
    "SlidingWindow",
    "WindowUnavailable",
    "create_rate_limiter",
]


def create_rate_limiter(settings: Settings, redis: Redis | None) -> RateLimiter:
    """Shared windows in Redis when there is one, this process's own otherwise.

    In Redis the windows belong to one deployment, the processes that share a keyspace (as the
    broadcast channel does): another deployment, or a test run, on the same Redis has its own.
    """
    window: SlidingWindow = (
        InProcessWindow()
        if redis is None
        else RedisWindow(redis, deployment=settings.cassandra_keyspace)
    )
    return RateLimiter(window, settings)
