"""Fixtures for the Users integration tests: a direct driver session on this run's keyspace, a bulk
data set for the streaming tests, and a factory of unique user bodies.

The `users` table is shared by every test of the run, so a test never counts rows globally: it checks
the rows it made itself (unique names/emails), and the age ranges keep the suites apart:
ages 0..99 for the bulk rows and ordinary tests, 120..150 for the stream and page walks, which filter
with `age_filter` so that they read only their own small sets.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from cassandra.cluster import Cluster, Session
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType

BULK_USERS = 100_000
BULK_MAX_AGE = 99
SEED_BATCH = 25
SEED_CONCURRENCY = 64

UserBody = dict[str, Any]


@pytest.fixture(scope="session")
def users_table(cassandra: Any, keyspace: str, live_app: Any) -> Iterator[Session]:
    """A driver session on the run's keyspace; `live_app` first, because the service creates the
    schema when it connects."""
    cluster = Cluster(list(cassandra.hosts), port=cassandra.port)
    try:
        yield cluster.connect(keyspace)
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def bulk_users(users_table: Session) -> int:
    """Insert BULK_USERS rows (ages 0..99) straight through the driver, in a few seconds.

    Going around the HTTP API is deliberate: this is test data for reads. Rows go in UNLOGGED
    batches of SEED_BATCH rows, many batches in flight: one request per batch instead of per row is
    what makes it fast, and an unlogged batch costs the server no batch log. (Cassandra logs a
    warning for unlogged batches spanning many partitions; for seeding test data that is fine.)
    """
    insert = users_table.prepare(
        "INSERT INTO users (id, name, email, age, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    started = time.monotonic()
    batches = []
    for first in range(0, BULK_USERS, SEED_BATCH):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for n in range(first, min(first + SEED_BATCH, BULK_USERS)):
            row = (uuid.uuid4(), f"Bulk User {n}", f"bulk-{n}@example.com", n % (BULK_MAX_AGE + 1))
            batch.add(insert, (*row, now, now))
        batches.append((batch, ()))
    execute_concurrent(
        users_table, batches, concurrency=SEED_CONCURRENCY, raise_on_first_error=True
    )
    print(f"\n[users] seeded {BULK_USERS} rows in {time.monotonic() - started:.1f} s")
    return BULK_USERS


_serial = itertools.count()


@pytest.fixture
def user_body() -> Callable[..., UserBody]:
    """A factory of valid, unique user bodies: `user_body(age=30)`."""
    run = uuid.uuid4().hex[:8]

    def make(*, age: int = 42, **overrides: Any) -> UserBody:
        n = next(_serial)
        return {
            "name": f"User {run}-{n}",
            "email": f"user-{run}-{n}@example.com",
            "age": age,
            **overrides,
        }

    return make


SeedUsers = Callable[[int, int], Awaitable[set[str]]]


@pytest.fixture
def seed_users(http: httpx.AsyncClient, user_body: Callable[..., UserBody]) -> SeedUsers:
    """`await seed_users(count, age)`: that many new users of that age, created in one batch
    through the API; their ids."""

    async def seed(count: int, age: int) -> set[str]:
        response = await http.post("/users/batch", json=[user_body(age=age) for _ in range(count)])
        assert response.status_code == 201, response.text
        return {user["id"] for user in response.json()["users"]}

    return seed
