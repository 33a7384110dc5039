"""The service's one Redis client (when `REDIS_URL` is set), shared by every concern that keeps
state between processes: rate limits, WebSocket connection counts, broadcast, revoked sessions.

One `redis.asyncio.Redis` per process holds a connection pool; commands borrow a pooled connection,
so no request pays for a connect. Creating the client does no I/O: a Redis that is down at start is
reported by `/health` and retried by the pool on the next command, never a reason not to start.

Why no retries inside the client (redis-py retries three times with backoff by default): every
caller has its own answer to a Redis that does not answer (limits fail open at once, `/health` says
"down"), and a hidden retry loop would only make a request wait longer before that answer.
`socket_timeout` is a backstop for a frozen server; callers bound their own waits more tightly.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 5.0


def connect_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
