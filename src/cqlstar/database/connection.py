"""The service's one Cassandra connection, kept alive for the life of the process.

The service must start whether or not Cassandra is up, and must never need a restart because the
database came up late or went away. So connecting happens in a background task that retries with
capped exponential backoff; until it succeeds, `session` raises `CassandraUnavailable` (the web layer
answers 503). Once connected, the driver's own reconnection policy brings hosts back after an outage,
so the same session keeps working when Cassandra returns.

On each successful connect the schema is created (idempotently) and the `on_connect` hooks run, so
statements are prepared once per connection rather than once per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

from cassandra import ConsistencyLevel

from cqlstar.aiocassandra import AsyncCluster, AsyncSession, QueryListener
from cqlstar.database.schema import create_schema
from cqlstar.settings import Settings

log = logging.getLogger(__name__)

OnConnect = Callable[[AsyncSession], Awaitable[None]]

# A single-partition read of a user that never exists: it needs the configured consistency's number
# of replicas, and costs them next to nothing.
_QUORUM_PROBE = "SELECT id FROM users WHERE id = 00000000-0000-0000-0000-000000000000"

_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 5.0


class CassandraUnavailable(Exception):
    """No session yet: the service is still connecting to Cassandra."""


class CassandraConnection:
    def __init__(
        self,
        settings: Settings,
        on_connect: Sequence[OnConnect] = (),
        *,
        query_listener: QueryListener | None = None,
    ) -> None:
        self.settings = settings
        self._on_connect = list(on_connect)
        # Told of every query's duration and outcome (the service's metrics), traced or not.
        self._query_listener = query_listener
        self._cluster: AsyncCluster | None = None
        self._session: AsyncSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        # Stable identities for the diagnostics routes: one per process, not per reconnect.
        self.session_id = str(uuid.uuid4())
        self.cluster_id = str(uuid.uuid4())

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise CassandraUnavailable
        return self._session

    @property
    def cluster(self) -> AsyncCluster:
        if self._cluster is None or self._session is None:
            raise CassandraUnavailable
        return self._cluster

    @property
    def is_connected(self) -> bool:
        return self._session is not None

    def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._connect_until_done(), name="cassandra-connect")

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout)
        return self.is_connected

    async def _connect_until_done(self) -> None:
        delay = _BACKOFF_FIRST_S
        s = self.settings
        where = f"{','.join(s.cassandra_hosts)}:{s.cassandra_port}"
        while True:
            cluster = AsyncCluster(
                s.cassandra_hosts,
                port=s.cassandra_port,
                local_dc=s.cassandra_local_dc,
                username=s.cassandra_username,
                password=s.cassandra_password,
                consistency_level=ConsistencyLevel.name_to_value[s.cassandra_consistency],
                serial_consistency_level=ConsistencyLevel.name_to_value[
                    s.cassandra_serial_consistency
                ],
                speculative_delay=None
                if s.cassandra_speculative_delay_ms is None
                else s.cassandra_speculative_delay_ms / 1000,
                speculative_write_delay=None
                if s.cassandra_speculative_write_delay_ms is None
                else s.cassandra_speculative_write_delay_ms / 1000,
                speculative_attempts=s.cassandra_speculative_attempts,
                query_listener=self._query_listener,
            )
            try:
                session = await cluster.connect()
                await create_schema(session, s.cassandra_keyspace, s.cassandra_replication)
                await session.set_keyspace(s.cassandra_keyspace)
                for hook in self._on_connect:
                    await hook(session)
            except asyncio.CancelledError:
                await cluster.shutdown()
                raise
            except Exception as exc:
                await cluster.shutdown()
                log.warning(
                    "cassandra not reachable yet; retrying",
                    extra={
                        "contact_points": where,
                        "error": type(exc).__name__,
                        "retry_in_s": round(delay, 2),
                    },
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)
                continue
            self._cluster, self._session = cluster, session
            self._connected.set()
            log.info(
                "connected to cassandra",
                extra={"contact_points": where, "keyspace": s.cassandra_keyspace},
            )
            return

    async def release_version(self, timeout: float | None = None) -> str:
        """Ask the cluster for its release version: a real round trip, bounded by `timeout` (and
        by the caller's time budget)."""
        rs = await self.session.execute("SELECT release_version FROM system.local", timeout=timeout)
        row = rs.one()
        if row is None:
            raise CassandraUnavailable
        (release_version,) = row
        return str(release_version)

    async def health_probe(self, timeout: float) -> str:
        """The release version, once the cluster has shown it can serve the service's queries.

        Two reads, side by side, each bounded by `timeout`: the coordinator's release version, and
        a read of one (absent) user at the configured consistency. The second is what fails when
        too few replicas are up for that consistency (two of three nodes down at LOCAL_QUORUM),
        where any single node still answers the first.
        """
        # The session first: while connecting it raises CassandraUnavailable, before either read
        # is created (a coroutine made and then never awaited would be reported as a bug).
        session = self.session
        version, _ = await asyncio.gather(
            self.release_version(timeout), session.execute(_QUORUM_PROBE, timeout=timeout)
        )
        return version

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        session, cluster = self._session, self._cluster
        self._session = self._cluster = None
        if session is not None:
            await session.close()
        if cluster is not None:
            await cluster.shutdown()
