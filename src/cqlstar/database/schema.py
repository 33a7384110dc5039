"""The keyspace and tables the service owns.

Creation is idempotent and additive: every statement is `IF NOT EXISTS`, so starting the service never
drops, truncates or rewrites data that is already there.
"""

from __future__ import annotations

from cqlstar.aiocassandra import AsyncSession

# SimpleStrategy with one replica suits the single local node; a real deployment creates its
# keyspace with NetworkTopologyStrategy beforehand, and this statement then leaves it alone.
_KEYSPACE = (
    "CREATE KEYSPACE IF NOT EXISTS {ks} "
    "WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
)

_TABLES = (
    """CREATE TABLE IF NOT EXISTS {ks}.users (
        id uuid PRIMARY KEY,
        name text,
        email text,
        age int,
        created_at timestamp,
        updated_at timestamp
    )""",
    # A storage-attached index lets `age >= n` filters run without ALLOW FILTERING scans.
    "CREATE INDEX IF NOT EXISTS users_age_idx ON {ks}.users (age) USING 'sai'",
)

# Schema changes must settle across the cluster before the next statement relies on them.
_DDL_TIMEOUT_S = 30.0


async def create_schema(session: AsyncSession, keyspace: str) -> None:
    """Create the keyspace and the service's tables where they are missing."""
    await session.execute(_KEYSPACE.format(ks=keyspace), timeout=_DDL_TIMEOUT_S)
    for statement in _TABLES:
        await session.execute(statement.format(ks=keyspace), timeout=_DDL_TIMEOUT_S)
