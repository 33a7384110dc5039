"""Fixtures for the rate limit tests: a Redis of this module's own, and services in front of it.

A private Redis (on a free port, stopped at the end) keeps these tests' small limits away from the
windows of the run's shared Redis, which other tests (and other runs on the machine) count in.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from cqlstar import localredis
from served import free_port


@pytest.fixture(scope="module")
def private_redis() -> Iterator[localredis.RedisInstance]:
    instance = localredis.RedisInstance(free_port())
    localredis.start(instance)
    yield instance
    localredis.stop(instance)
    shutil.rmtree(instance.directory, ignore_errors=True)
