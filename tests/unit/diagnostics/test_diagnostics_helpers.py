"""The diagnostics' own logic, without Cassandra: timing and failure counting of the performance
routes, the cancel-half-way machinery, the scratch run's expected counts, and the slow routes'
refusal to wait when there is no session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

import pytest
from cassandra import OperationTimedOut

from cqlstar.database import CassandraConnection, CassandraUnavailable
from cqlstar.diagnostics.performance import _timed_reads
from cqlstar.diagnostics.safety import _consume_then_cancel
from cqlstar.diagnostics.scratch import PERFORMANCE_READ, ScratchRun
from cqlstar.diagnostics.slow import SLOW_QUERY_S, _simulated_slow_call
from cqlstar.settings import Settings


class ReadsSession:
    """Answers `execute` after yielding to the loop, failing the reads whose number is listed."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.failing = failing
        self.prepared: list[str] = []
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def prepare(self, cql: str) -> str:
        self.prepared.append(cql)
        return cql

    async def execute(self, statement: str, *args: Any) -> None:
        number = self.calls
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if number in self.failing:
                raise OperationTimedOut("no answer")
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize(("mode", "overlapping"), [("async", 25), ("sync", 1)])
async def test_reads_overlap_only_in_async_mode(mode: Any, overlapping: int) -> None:
    session = ReadsSession()
    report = await _timed_reads(session, 25, mode=mode)  # type: ignore[arg-type]
    assert session.prepared == [PERFORMANCE_READ]
    assert session.calls == 25
    assert session.most_in_flight == overlapping
    assert report.mode == mode
    assert report.requests == report.successful_requests == 25
    assert report.avg_time_per_request == pytest.approx(report.total_time / 25)
    assert report.requests_per_second == pytest.approx(25 / report.total_time)


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_failed_reads_are_counted_not_raised(mode: Any) -> None:
    report = await _timed_reads(ReadsSession(failing=frozenset({0, 3})), 5, mode=mode)  # type: ignore[arg-type]
    assert report.requests == 5
    assert report.successful_requests == 3


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_when_every_read_fails_the_failure_is_raised(mode: Any) -> None:
    with pytest.raises(OperationTimedOut):
        await _timed_reads(ReadsSession(failing=frozenset({0, 1, 2})), 3, mode=mode)  # type: ignore[arg-type]


class RowsStream:
    """A stream of `rows` integers that records whether it was closed, like the layer's streams."""

    def __init__(self, rows: int, fail_at: int | None = None, hang_at: int | None = None) -> None:
        self.rows = rows
        self.fail_at = fail_at
        self.hang_at = hang_at
        self.hanging = asyncio.Event()
        self.is_closed = False
        self.yielded = 0

    async def __aenter__(self) -> RowsStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.is_closed = True

    def __aiter__(self) -> AsyncIterator[int]:
        return self._rows()

    async def _rows(self) -> AsyncIterator[int]:
        for row in range(self.rows):
            if row == self.fail_at:
                raise OperationTimedOut("page fetch failed")
            if row == self.hang_at:
                self.hanging.set()
                await asyncio.Event().wait()  # a page fetch that never answers
            await asyncio.sleep(0)
            self.yielded += 1
            yield row


async def test_the_consumer_is_cancelled_at_the_given_row_and_closes_its_stream() -> None:
    stream = RowsStream(40)
    processed, cancelled = await _consume_then_cancel(stream, 10)  # type: ignore[arg-type]
    assert (processed, cancelled) == (10, True)
    assert stream.yielded == 10
    assert stream.is_closed


async def test_a_stream_too_short_to_cancel_is_an_error_not_a_result() -> None:
    with pytest.raises(LookupError):
        await _consume_then_cancel(RowsStream(5), 10)  # type: ignore[arg-type]


async def test_a_stream_failure_before_the_cancel_point_is_raised() -> None:
    with pytest.raises(OperationTimedOut):
        await _consume_then_cancel(RowsStream(40, fail_at=3), 10)  # type: ignore[arg-type]


async def test_cancelling_the_caller_also_cancels_the_consumer() -> None:
    stream = RowsStream(40, hang_at=3)
    caller = asyncio.create_task(_consume_then_cancel(stream, 10))  # type: ignore[arg-type]
    await stream.hanging.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert stream.is_closed


def _ages() -> Iterator[int]:
    yield from (20, 25, 30, 30, 45)


def test_scratch_run_knows_how_many_rows_each_age_filter_selects() -> None:
    run = ScratchRun(session=None, ages=tuple(_ages()))  # type: ignore[arg-type]
    assert [run.count_from_age(age) for age in (0, 25, 30, 31, 46)] == [5, 4, 3, 1, 0]


class CleanupFailsSession:
    """Writes succeed or fail as told; the cleanup DELETE always fails (Cassandra went away)."""

    def __init__(self, write_error: Exception | None = None) -> None:
        self.write_error = write_error
        self.deletes = 0

    async def prepare(self, cql: str) -> str:
        return cql

    async def execute_batch(self, *args: Any, **kwargs: Any) -> None:
        if self.write_error is not None:
            raise self.write_error

    async def execute(self, *args: Any, **kwargs: Any) -> None:
        self.deletes += 1
        raise ConnectionError("cleanup could not reach Cassandra")


async def test_a_failed_cleanup_does_not_hide_the_calls_own_error() -> None:
    session = CleanupFailsSession()
    with pytest.raises(LookupError, match="the diagnostic's own failure"):
        async with ScratchRun(session, ages=(1, 2)):  # type: ignore[arg-type]
            raise LookupError("the diagnostic's own failure")
    assert session.deletes == 1


async def test_a_failed_cleanup_after_a_failed_write_reports_the_write() -> None:
    session = CleanupFailsSession(write_error=TimeoutError("the batch timed out"))
    with pytest.raises(TimeoutError, match="the batch timed out"):
        async with ScratchRun(session, ages=(1, 2)):  # type: ignore[arg-type]
            pass
    assert session.deletes == 1


def test_a_slow_route_without_a_session_fails_before_its_wait() -> None:
    # Never started, so never connected. Driving the coroutine one step shows where it stops:
    # a coroutine that reached its sleep would suspend there instead of raising.
    call = _simulated_slow_call(CassandraConnection(Settings()), SLOW_QUERY_S)
    with pytest.raises(CassandraUnavailable):
        call.send(None)
