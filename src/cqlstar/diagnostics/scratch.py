"""The diagnostics' own scratch data: a table of their own, one partition per call.

The context-manager-safety routes need rows to stream over, but they must never touch the users
other clients see. So each call writes a handful of rows under a fresh `run_id` partition of
`diagnostics_scratch`, reads only that partition, and deletes it when the call ends (one partition
tombstone, whatever the row count). `age` is a clustering column, so "rows with age >= n" is a slice
of the partition: no index and no ALLOW FILTERING.

`prepare_diagnostics` is the `on_connect` hook: it creates the table (idempotently) and prepares the
statements once per connection; handlers then get them from the session's prepare cache.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from types import TracebackType

from cqlstar.aiocassandra import AsyncSession, AsyncStreamingResultSet, StreamConfig, outside_budget

log = logging.getLogger(__name__)

# The TTL is a safety net, not the cleanup: every call deletes its partition, but a process killed
# mid-call would otherwise leave rows behind for good.
_CREATE_SCRATCH_TABLE = """CREATE TABLE IF NOT EXISTS diagnostics_scratch (
    run_id uuid,
    age int,
    seq int,
    PRIMARY KEY (run_id, age, seq)
) WITH default_time_to_live = 3600
  AND comment = 'cqlstar diagnostics scratch rows: one partition per call, deleted when it ends'"""

INSERT_ROW = "INSERT INTO diagnostics_scratch (run_id, age, seq) VALUES (?, ?, ?)"
SELECT_RUN = "SELECT age, seq FROM diagnostics_scratch WHERE run_id = ?"
SELECT_RUN_FROM_AGE = "SELECT age, seq FROM diagnostics_scratch WHERE run_id = ? AND age >= ?"
DELETE_RUN = "DELETE FROM diagnostics_scratch WHERE run_id = ?"
# The read the performance routes repeat: real, cheap, and on the service's own table.
PERFORMANCE_READ = "SELECT id FROM users LIMIT 1"

_PREPARED = (INSERT_ROW, SELECT_RUN, SELECT_RUN_FROM_AGE, DELETE_RUN, PERFORMANCE_READ)

# A schema change has to settle across the cluster before anything relies on it.
_DDL_TIMEOUT_S = 30.0
# Cleanup runs even when the request budget is spent: it gets its own fixed timeout.
_CLEANUP_TIMEOUT_S = 10.0


async def prepare_diagnostics(session: AsyncSession) -> None:
    """`on_connect` hook: the scratch table, and every statement the diagnostics routes use."""
    await session.execute(_CREATE_SCRATCH_TABLE, timeout=_DDL_TIMEOUT_S)
    for cql in _PREPARED:
        await session.prepare(cql)


class ScratchRun:
    """One call's scratch rows: `async with ScratchRun(session, ages) as run:` writes them, and
    deletes the partition on the way out, however the block ends."""

    def __init__(self, session: AsyncSession, ages: Sequence[int]) -> None:
        self.session = session
        self.run_id = uuid.uuid4()
        self.ages = tuple(ages)

    async def __aenter__(self) -> ScratchRun:
        insert = await self.session.prepare(INSERT_ROW)
        # One partition, so an unlogged batch is a single atomic mutation on one replica set.
        rows = [(insert, (self.run_id, age, seq)) for seq, age in enumerate(self.ages)]
        try:
            await self.session.execute_batch(rows, logged=False)
        except BaseException:
            await self._delete()  # a write that timed out may still have landed
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._delete()

    async def _delete(self) -> None:
        delete = await self.session.prepare(DELETE_RUN)
        with outside_budget():  # the task copies the context: its query ignores the budget
            cleanup = asyncio.ensure_future(
                self.session.execute(delete, (self.run_id,), timeout=_CLEANUP_TIMEOUT_S)
            )
        try:
            await asyncio.shield(cleanup)
        except Exception as cleanup_error:
            # Whatever the call was reporting matters more than its cleanup; the TTL removes the
            # rows later.
            _log_cleanup_failure(self.run_id, cleanup_error)
        except asyncio.CancelledError:
            # A request cut short by its budget must still leave no rows behind, and should
            # answer only once they are gone: finish the delete (bounded by its own timeout),
            # then let the cancellation through.
            await asyncio.wait({cleanup})
            if not cleanup.cancelled() and (error := cleanup.exception()) is not None:
                # The table's TTL removes the rows later; the cancellation is what to report.
                _log_cleanup_failure(self.run_id, error)
            raise

    def count_from_age(self, min_age: int) -> int:
        """How many of this run's rows have `age >= min_age`: the answer a stream must give."""
        return sum(1 for age in self.ages if age >= min_age)

    async def stream(
        self, *, fetch_size: int, min_age: int | None = None, session: AsyncSession | None = None
    ) -> AsyncStreamingResultSet:
        """A paged stream over this run's rows (all, or those with `age >= min_age`)."""
        session = session or self.session
        if min_age is None:
            statement = await session.prepare(SELECT_RUN)
            parameters: tuple[object, ...] = (self.run_id,)
        else:
            statement = await session.prepare(SELECT_RUN_FROM_AGE)
            parameters = (self.run_id, min_age)
        return await session.execute_stream(
            statement,
            parameters,
            config=StreamConfig(fetch_size=fetch_size),
        )


def _log_cleanup_failure(run_id: object, error: BaseException) -> None:
    log.warning(
        "diagnostics scratch cleanup failed",
        extra={"run_id": str(run_id), "error": type(error).__name__},
    )
