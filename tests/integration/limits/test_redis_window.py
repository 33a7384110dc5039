"""The Redis sliding window itself, against a real Redis: what it reports when processes that share
it are configured with different limits (a rolling change of `RATE_LIMIT`)."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from cqlstar import localredis
from cqlstar.limits.redis_window import RedisWindow
from cqlstar.settings import Rate

pytestmark = pytest.mark.integration


async def test_a_lowered_limit_reports_nothing_remaining_never_a_negative_count(
    private_redis: localredis.RedisInstance,
) -> None:
    client = Redis.from_url(private_redis.url)
    window = RedisWindow(client)
    key = f"lowered-{uuid.uuid4().hex}"
    try:
        for _ in range(5):
            assert (await window.hit(key, Rate(10, 60))).allowed
        # A process with the lower limit finds more in the window than its limit allows.
        lowered = await window.hit(key, Rate(2, 60))
        assert not lowered.allowed
        assert lowered.remaining == 0
    finally:
        await window.close()
        await client.aclose()
