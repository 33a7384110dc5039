"""A Redis of a test's own, for tests that stop, freeze or restart it, or must not share the run's
Redis with other suites (which log in as the same accounts)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from cqlstar import localredis
from served import free_port


@contextmanager
def redis_on_a_free_port(*, started: bool = True) -> Iterator[localredis.RedisInstance]:
    """A Redis on a free loopback port (started unless `started=False`); stopped and its
    directory removed afterwards, whatever state the test left it in."""
    instance = localredis.RedisInstance(free_port())
    if started:
        localredis.start(instance)
    try:
        yield instance
    finally:
        localredis.stop(instance)
        shutil.rmtree(instance.directory, ignore_errors=True)
