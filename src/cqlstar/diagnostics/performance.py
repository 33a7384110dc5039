"""`GET /performance/async` and `GET /performance/sync`: the same N reads, overlapped or one by one.

Both routes issue N real reads of the service's `users` table through the async layer (one prepared
statement, from the session's prepare cache) and time them on the server. The async route has all N
in flight at once; the sync route awaits each before sending the next. The ratio of the two figures
is what an async driver buys: the reads' network and server time overlaps instead of adding up.

The figures are wall-clock measurements of this process on this machine, including its other load;
compare the two modes against each other, not against a fixed number.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from cqlstar.aiocassandra import AsyncSession
from cqlstar.diagnostics.schemas import QUERY_VALIDATION, PerformanceReport, data_route_errors
from cqlstar.diagnostics.scratch import PERFORMANCE_READ
from cqlstar.identity import Role, requires

DEFAULT_REQUESTS = 100
MAX_REQUESTS = 1000

RequestCount = Annotated[
    int,
    Parameter(
        ge=1,
        le=MAX_REQUESTS,
        description=f"How many reads to issue (1..{MAX_REQUESTS}); outside that range: 422",
    ),
]


class PerformanceController(Controller):
    path = "/performance"
    tags = ["diagnostics"]
    opt = requires(Role.ADMIN)

    @get(
        "/async",
        operation_id="performance_async",
        summary="Time N reads issued concurrently",
        opt={"operation": "run concurrent reads"},
        responses={**data_route_errors("run concurrent reads"), **QUERY_VALIDATION},
        cache=False,
    )
    async def concurrent_reads(
        self, session: NamedDependency[AsyncSession], requests: RequestCount = DEFAULT_REQUESTS
    ) -> PerformanceReport:
        """Issues `requests` reads of `users` at once and waits for all of them. A read that fails
        counts as unsuccessful; when none succeeds the first failure is answered (503, 504, ...)."""
        return await _timed_reads(session, requests, mode="async")

    @get(
        "/sync",
        operation_id="performance_sync",
        summary="Time N reads awaited one at a time",
        opt={"operation": "run sequential reads"},
        responses={**data_route_errors("run sequential reads"), **QUERY_VALIDATION},
        cache=False,
    )
    async def sequential_reads(
        self, session: NamedDependency[AsyncSession], requests: RequestCount = DEFAULT_REQUESTS
    ) -> PerformanceReport:
        """Issues the same reads as `/performance/async`, but each only after the previous one
        has answered: the baseline the concurrent figure is compared with."""
        return await _timed_reads(session, requests, mode="sync")


async def _timed_reads(
    session: AsyncSession, requests: int, *, mode: Literal["async", "sync"]
) -> PerformanceReport:
    statement = await session.prepare(PERFORMANCE_READ)
    failures: list[BaseException] = []
    started = time.perf_counter()
    if mode == "async":
        outcomes = await asyncio.gather(
            *(session.execute(statement) for _ in range(requests)),
            return_exceptions=True,
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    else:
        for _ in range(requests):
            # Each read gets what is left of the budget, which runs out with a 504.
            try:
                await session.execute(statement)
            except Exception as exc:  # counted, like the concurrent mode's failures
                failures.append(exc)
    elapsed = time.perf_counter() - started
    if len(failures) == requests:
        # Nothing was measured: let the central mapping say why (Cassandra down, timeouts, ...).
        raise failures[0]
    return PerformanceReport(
        requests=requests,
        successful_requests=requests - len(failures),
        total_time=elapsed,
        avg_time_per_request=elapsed / requests,
        requests_per_second=requests / elapsed if elapsed > 0 else 0.0,
        mode=mode,
    )
