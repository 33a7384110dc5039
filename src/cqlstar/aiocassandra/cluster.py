"""`AsyncCluster`: configuration and lifecycle of one driver `Cluster`.

Policies it installs (one default execution profile):

* load balancing: token-aware over DC-aware round robin (`local_dc`, or the contact points' DC);
* retries: `IdempotencyAwareRetryPolicy(max_retries)` unless a `retry_policy` is given;
* consistency: `consistency_level` and `serial_consistency_level` (for conditional writes) when
  given, else the driver's (LOCAL_ONE; serial decided by the server, SERIAL);
* speculative execution: with `speculative_delay` (seconds), an idempotent read that has no answer
  after that long is sent to the next host of its query plan too, up to `speculative_attempts`
  extra times; the first answer wins. Keep `speculative_attempts` below the replica count minus one:
  attempts share one query plan, and when a connection error (a node killed mid-request) asks the
  driver to retry on the next host of a plan the speculative attempts have used up, the driver
  fails the whole request with NoHostAvailable although an attempt is still in flight on a live
  replica (`ResponseFuture._retry_task`, cassandra-driver 3.30). Idempotent writes speculate after
  `speculative_write_delay` (None: never), which should be far longer (see `speculation`). The
  driver never speculates a statement that is not marked idempotent. Off when both are None;
* reconnection: exponential, 1 s doubling to 60 s, unless a `reconnection_policy` is given;
* rows: `rows.row_factory` (tuples with attribute access, one cached class per column set);
* protocol: with `protocol_version=None` the driver starts at v5 and steps down on the server's
  refusal; a node that speaks neither v5 nor v4 is refused after connecting. An explicit version is
  used as is, without negotiation;
* I/O: the driver's libev reactor when compiled in (it is in the wheels), else the driver's default.

The driver's `Cluster.connect` and `Cluster.shutdown`/`Session.shutdown` block (they wait for
connections and threads), so they run on a one-thread executor owned by the cluster — never on the
event loop and never on the loop's default executor, whose size is unbounded by our needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from cassandra import DriverException, ProtocolVersion
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from opentelemetry.trace import TracerProvider

from .retry import IdempotencyAwareRetryPolicy
from .rows import row_factory
from .session import AsyncSession, SessionClosedError
from .speculation import ReadWriteSpeculativeExecutionPolicy
from .telemetry import QueryListener, QueryTelemetry

try:  # the compiled reactor; absent only in a driver built without libev
    from cassandra.io.libevreactor import LibevConnection as _Reactor
except ImportError:  # pragma: no cover
    _Reactor = None

__all__ = ["AsyncCluster"]

_T = TypeVar("_T")

_MIN_PROTOCOL = ProtocolVersion.V4
_PREFERRED_PROTOCOL = ProtocolVersion.V5


class AsyncCluster:
    """An asyncio front to a driver `Cluster`: connect sessions, read metadata, shut down."""

    def __init__(
        self,
        contact_points: Sequence[str] = ("127.0.0.1",),
        *,
        port: int = 9042,
        local_dc: str | None = None,
        username: str | None = None,
        password: str | None = None,
        protocol_version: int | None = None,
        connect_timeout: float = 5.0,
        request_timeout: float = 10.0,
        retry_policy: Any = None,
        reconnection_policy: Any = None,
        max_retries: int = 3,
        consistency_level: int | None = None,
        serial_consistency_level: int | None = None,
        speculative_delay: float | None = None,
        speculative_write_delay: float | None = None,
        speculative_attempts: int = 1,
        tracer_provider: TracerProvider | None = None,
        query_listener: QueryListener | None = None,
    ) -> None:
        profile_options: dict[str, Any] = {}
        if consistency_level is not None:
            profile_options["consistency_level"] = consistency_level
        if serial_consistency_level is not None:
            profile_options["serial_consistency_level"] = serial_consistency_level
        if speculative_delay is not None or speculative_write_delay is not None:
            profile_options["speculative_execution_policy"] = ReadWriteSpeculativeExecutionPolicy(
                speculative_delay, speculative_write_delay, speculative_attempts
            )
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(
                DCAwareRoundRobinPolicy(local_dc=local_dc or "")
            ),
            retry_policy=retry_policy or IdempotencyAwareRetryPolicy(max_retries=max_retries),
            request_timeout=request_timeout,
            row_factory=row_factory,
            **profile_options,
        )
        options: dict[str, Any] = {
            "contact_points": list(contact_points),
            "port": port,
            "execution_profiles": {EXEC_PROFILE_DEFAULT: profile},
            "reconnection_policy": reconnection_policy
            or ExponentialReconnectionPolicy(base_delay=1.0, max_delay=60.0),
            "connect_timeout": connect_timeout,
            "control_connection_timeout": connect_timeout,
        }
        if username is not None:
            options["auth_provider"] = PlainTextAuthProvider(username=username, password=password)
        if protocol_version is not None:
            options["protocol_version"] = protocol_version
        if _Reactor is not None:
            options["connection_class"] = _Reactor
        self._cluster = Cluster(**options)
        if protocol_version is None:
            # Not passed to the constructor: that would make it "explicit" and disable the
            # driver's step-down on a ProtocolError. Set afterwards, it is only the starting point.
            self._cluster.protocol_version = _PREFERRED_PROTOCOL
        self._request_timeout = request_timeout
        self._telemetry = QueryTelemetry(tracer_provider, query_listener)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="aiocassandra-cluster"
        )
        self._sessions: weakref.WeakSet[AsyncSession] = weakref.WeakSet()
        self._closed = False
        self._shutdown: asyncio.Future[Any] | None = None

    # Properties -------------------------------------------------------------------------------

    @property
    def metadata(self) -> Any:
        """The driver's cluster metadata (keyspaces, tables, hosts, token map)."""
        return self._cluster.metadata

    @property
    def protocol_version(self) -> int:
        """The native protocol version in use (final once connected)."""
        version: int = self._cluster.protocol_version
        return version

    @property
    def request_timeout(self) -> float:
        return self._request_timeout

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def driver_cluster(self) -> Any:
        """The underlying driver `Cluster` (for what this layer does not wrap)."""
        return self._cluster

    def register_user_type(self, keyspace: str, type_name: str, klass: type) -> None:
        """Map a user-defined type to a Python class (no I/O; see the driver's docs)."""
        self._cluster.register_user_type(keyspace, type_name, klass)

    # Lifecycle --------------------------------------------------------------------------------

    def _run_blocking(self, fn: Callable[[], _T]) -> asyncio.Future[_T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def connect(self, keyspace: str | None = None) -> AsyncSession:
        """Open a session (connection pools to the nodes), optionally bound to `keyspace`."""
        if self._closed:
            raise SessionClosedError("the cluster is shut down")
        pending = self._run_blocking(lambda: self._cluster.connect(keyspace))
        try:
            session = await asyncio.shield(pending)
        except asyncio.CancelledError:
            # The connect goes on in its thread; whatever session it makes must not leak.
            pending.add_done_callback(self._shutdown_abandoned_session)
            raise
        if self._cluster.protocol_version < _MIN_PROTOCOL:
            version = self._cluster.protocol_version
            await self._run_blocking(session.shutdown)
            raise DriverException(
                f"the cluster speaks native protocol v{version}; this layer needs v4 or v5"
            )
        if self._closed:  # shut down while we were connecting
            await self._run_blocking(session.shutdown)
            raise SessionClosedError("the cluster was shut down while connecting")
        async_session = AsyncSession(self, session)
        self._sessions.add(async_session)
        return async_session

    async def shutdown(self) -> None:
        """Close every session and connection and stop the driver's threads. Idempotent."""
        if self._shutdown is None:
            self._closed = True
            for session in list(self._sessions):
                session._mark_closed()
            self._shutdown = self._run_blocking(self._cluster.shutdown)
            # Lets the executor's thread exit once the shutdown (queued after any connect) ran.
            self._shutdown.add_done_callback(lambda _: self._executor.shutdown(wait=False))
        await asyncio.shield(self._shutdown)

    def _shutdown_abandoned_session(self, pending: asyncio.Future[Any]) -> None:
        if pending.cancelled() or pending.exception() is not None:
            return
        session = pending.result()
        # RuntimeError: the executor is gone, and the cluster's shutdown closed its sessions.
        with contextlib.suppress(RuntimeError):
            self._executor.submit(session.shutdown)

    async def __aenter__(self) -> AsyncCluster:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    def __repr__(self) -> str:
        state = "shut down" if self._closed else "open"
        return f"<AsyncCluster {state} contact_points={self._cluster.contact_points!r}>"
