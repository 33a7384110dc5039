"""The Redis sliding window and connection slots themselves, against a real Redis: what the window
reports when processes that share it are configured with different limits (a rolling change of
`RATE_LIMIT`), and that deployments sharing one Redis keep separate windows and slots."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from cqlstar import localredis
from cqlstar.limits.redis_window import RedisWindow
from cqlstar.realtime.limits import RedisConnectionSlots
from cqlstar.settings import Rate

pytestmark = pytest.mark.integration


async def test_a_lowered_limit_reports_nothing_remaining_never_a_negative_count(
    private_redis: localredis.RedisInstance,
) -> None:
    client = Redis.from_url(private_redis.url)
    window = RedisWindow(client, deployment=f"d{uuid.uuid4().hex}")
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


async def test_deployments_sharing_a_redis_keep_their_own_windows_and_slots(
    private_redis: localredis.RedisInstance,
) -> None:
    client = Redis.from_url(private_redis.url)
    ours, theirs = (f"d{uuid.uuid4().hex}" for _ in range(2))
    windows = [RedisWindow(client, deployment=name) for name in (ours, theirs)]
    key = f"alice-{uuid.uuid4().hex}"
    try:
        # The same principal's key fills our window; the other deployment's is untouched.
        assert [(await windows[0].hit(key, Rate(2, 60))).allowed for _ in range(3)] == [
            True,
            True,
            False,
        ]
        other = await windows[1].hit(key, Rate(2, 60))
        assert (other.allowed, other.remaining) == (True, 1)

        slots = [RedisConnectionSlots(client, deployment=name) for name in (ours, theirs)]
        assert [await slots[0].acquire(key, f"c{i}", 1) for i in range(2)] == [True, False]
        assert await slots[1].acquire(key, "c9", 1)
    finally:
        for window in windows:
            await window.close()
        await client.aclose()
