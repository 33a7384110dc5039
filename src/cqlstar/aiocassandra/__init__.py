"""cqlstar.aiocassandra: asyncio access to Apache Cassandra over the DataStax driver.

The layer owns the hand-off of driver results from the driver's I/O thread to the event loop
(`_bridge`), lazy paging (`result`), bounded-memory streaming (`streaming`), an idempotency-aware
retry policy (`retry`), cheap rows (`rows`), and OpenTelemetry client spans (`telemetry`, with `cql`
summarising statement text). It depends on cassandra-driver and opentelemetry-api only, and on
nothing else in cqlstar.

    async with AsyncCluster(["127.0.0.1"]) as cluster:
        session = await cluster.connect("cqlstar")
        stmt = await session.prepare("SELECT id, name FROM users WHERE id = ?")
        row = (await session.execute(stmt, (user_id,))).one()
        async with await session.execute_stream("SELECT id, name FROM users") as stream:
            async for row in stream:
                ...

Driver errors propagate as the driver's own types (InvalidRequest, Unavailable, ReadTimeout,
WriteTimeout, OperationTimedOut, NoHostAvailable). Using a closed session or cluster raises
`SessionClosedError` (a `cassandra.DriverException`).

Time budgets: `with time_budget(seconds):` bounds every query made inside it, all together, with
no `timeout=` argument anywhere (`budget`).

Tracing: one CLIENT span per logical query (retries included), named `<OPERATION> <ks>.<table>`;
a stream is one span with a `cassandra.page` event per page. See `telemetry` for the details.
"""

from .budget import BudgetExceeded, outside_budget, remaining, time_budget
from .cluster import AsyncCluster
from .result import AsyncResultSet
from .retry import IdempotencyAwareRetryPolicy
from .rows import Row
from .session import AsyncSession, SessionClosedError
from .streaming import AsyncStreamingResultSet, StreamConfig
from .telemetry import QueryListener

__all__ = [
    "AsyncCluster",
    "AsyncResultSet",
    "AsyncSession",
    "AsyncStreamingResultSet",
    "BudgetExceeded",
    "IdempotencyAwareRetryPolicy",
    "QueryListener",
    "Row",
    "SessionClosedError",
    "StreamConfig",
    "outside_budget",
    "remaining",
    "time_budget",
]
