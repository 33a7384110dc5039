"""The keyspace and tables the service owns.

Creation is idempotent and additive: every statement is `IF NOT EXISTS`, so starting the service never
drops, truncates or rewrites data that is already there.
"""

from __future__ import annotations

from collections.abc import Sequence

from cqlstar.aiocassandra import AsyncSession

# Without a configured replication: SimpleStrategy with one replica, which suits the single local
# node. With one (CASSANDRA_REPLICATION): NetworkTopologyStrategy with a factor per datacenter.
# Either way only a *missing* keyspace is created: IF NOT EXISTS leaves an existing one, and its
# replication, exactly as it is (changing replication needs a repair, an operator's decision).
_KEYSPACE = "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {replication}"
_SINGLE_REPLICA = "{'class': 'SimpleStrategy', 'replication_factor': 1}"

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
    # What `Idempotency-Key` remembers (`cqlstar.users.idempotency`). Times are epoch milliseconds.
    # Every write sets its own TTL; the table's default is there for a write that would not.
    """CREATE TABLE IF NOT EXISTS {ks}.idempotency_keys (
        operation text,
        principal text,
        key text,
        fingerprint blob,
        user_ids list<uuid>,
        created_at bigint,
        state text,
        owner uuid,
        claimed_at bigint,
        PRIMARY KEY ((operation, principal, key))
    ) WITH default_time_to_live = 86400""",
)

# Schema changes must settle across the cluster before the next statement relies on them.
_DDL_TIMEOUT_S = 30.0


def replication_map(replication: Sequence[tuple[str, int]] | None) -> str:
    """The CQL replication map for `CREATE KEYSPACE` (names and factors were validated by Settings)."""
    if not replication:
        return _SINGLE_REPLICA
    factors = ", ".join(f"'{datacenter}': {replicas}" for datacenter, replicas in replication)
    return f"{{'class': 'NetworkTopologyStrategy', {factors}}}"


async def create_schema(
    session: AsyncSession,
    keyspace: str,
    replication: Sequence[tuple[str, int]] | None = None,
) -> None:
    """Create the keyspace and the service's tables where they are missing."""
    await session.execute(
        _KEYSPACE.format(ks=keyspace, replication=replication_map(replication)),
        timeout=_DDL_TIMEOUT_S,
    )
    for statement in _TABLES:
        await session.execute(statement.format(ks=keyspace), timeout=_DDL_TIMEOUT_S)
