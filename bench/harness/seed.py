"""The benchmark's dataset: a keyspace of its own holding at least `BENCH_ROWS` users.

The keyspace persists between runs (it is a benchmark, not a test): a run reads the ids already there
and inserts only what is missing. The schema is the service's own (`cqlstar.database.schema`),
created through the async layer exactly as the service creates it; the rows are written with the raw
driver's `execute_concurrent_with_args`, which is the fastest way Python has to write them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from cassandra.cluster import Cluster, Session
from cassandra.concurrent import execute_concurrent_with_args

from bench.harness.statements import INSERT_USER, SELECT_IDS
from cqlstar.aiocassandra import AsyncCluster
from cqlstar.database.schema import create_schema
from cqlstar.settings import parse_replication

_INSERT_CONCURRENCY = 256
_CHUNK = 20_000


async def _create_schema(hosts: list[str], port: int, keyspace: str) -> None:
    # As the service would create it: CASSANDRA_REPLICATION (e.g. `just bench-cluster`'s three
    # replicas), else one replica.
    raw = os.environ.get("CASSANDRA_REPLICATION", "").strip()
    replication = parse_replication(raw) if raw else None
    cluster = AsyncCluster(hosts, port=port)
    try:
        session = await cluster.connect()
        await create_schema(session, keyspace, replication)
        await session.close()
    finally:
        await cluster.shutdown()


def existing_ids(session: Session, limit: int) -> list[uuid.UUID]:
    statement = session.prepare(SELECT_IDS)
    statement.fetch_size = 5000
    return [row[0] for row in session.execute(statement, (limit,), timeout=120)]


def _user_rows(count: int) -> Iterator[tuple[object, ...]]:
    rng = random.Random()
    # Cassandra keeps milliseconds: seed with what the API would have stored.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for n in range(count):
        user_id = uuid.uuid4()
        yield (
            user_id,
            f"Bench User {n}",
            f"bench-seed-{user_id.hex[:16]}@example.com",
            rng.randint(0, 150),
            now,
            now,
        )


def insert_users(session: Session, count: int) -> list[uuid.UUID]:
    statement = session.prepare(INSERT_USER)
    inserted: list[uuid.UUID] = []
    started = time.monotonic()
    remaining = count
    while remaining > 0:
        chunk = list(_user_rows(min(_CHUNK, remaining)))
        execute_concurrent_with_args(
            session, statement, chunk, concurrency=_INSERT_CONCURRENCY, raise_on_first_error=True
        )
        inserted.extend(row[0] for row in chunk)  # type: ignore[misc]
        remaining -= len(chunk)
        rate = len(inserted) / max(time.monotonic() - started, 1e-6)
        print(f"[bench] seeded {len(inserted)}/{count} users ({rate:,.0f}/s)", flush=True)
    return inserted


def ensure_dataset(
    hosts: list[str], port: int, keyspace: str, rows: int, ids_file: Path
) -> tuple[int, str]:
    """Make sure `keyspace.users` holds at least `rows` users; write `rows` of their ids.

    Returns the number of ids written and Cassandra's release version.
    """
    asyncio.run(_create_schema(hosts, port, keyspace))
    cluster = Cluster(hosts, port=port)
    try:
        session = cluster.connect(keyspace)
        version = str(session.execute("SELECT release_version FROM system.local").one()[0])
        ids = existing_ids(session, rows)
        if len(ids) < rows:
            print(
                f"[bench] {keyspace}.users has {len(ids)} users; inserting {rows - len(ids)}",
                flush=True,
            )
            ids += insert_users(session, rows - len(ids))
        else:
            print(f"[bench] reusing {keyspace}.users (at least {rows} users)", flush=True)
    finally:
        cluster.shutdown()
    ids_file.parent.mkdir(parents=True, exist_ok=True)
    ids_file.write_text("".join(f"{user_id}\n" for user_id in ids))
    return len(ids), version
