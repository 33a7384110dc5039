"""Fixtures for the rate limit tests: a Redis of this module's own, and services in front of it.

A private Redis (on a free port, stopped at the end) keeps these tests' small limits away from the
windows of the run's shared Redis, which other tests (and other runs on the machine) count in.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cqlstar import localredis
from private_redis import redis_on_a_free_port


@pytest.fixture(scope="module")
def private_redis() -> Iterator[localredis.RedisInstance]:
    with redis_on_a_free_port() as instance:
        yield instance
