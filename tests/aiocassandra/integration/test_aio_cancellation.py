"""Timeouts and cancellation abandon driver requests cleanly; the session stays usable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from cassandra import OperationTimedOut

from cqlstar.aiocassandra import AsyncSession, StreamConfig

pytestmark = pytest.mark.integration

SCAN = "SELECT p, c, payload FROM big"  # a full scan: takes the node several milliseconds


@pytest_asyncio.fixture(loop_scope="session")
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Everything reported to the loop's exception handler during the test."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


@pytest.fixture
def sent(aio_session: AsyncSession, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The driver ResponseFutures the session creates during the test."""
    futures: list[Any] = []
    driver = aio_session.driver_session
    real = driver.execute_async

    def spy(*args: Any, **kwargs: Any) -> Any:
        future = real(*args, **kwargs)
        futures.append(future)
        return future

    monkeypatch.setattr(driver, "execute_async", spy)
    return futures


async def _wait_finished(response_future: Any) -> None:
    # The driver signals completion of the request with a threading.Event.
    assert await asyncio.to_thread(response_future._event.wait, 10)


async def test_client_timeout_raises_operation_timed_out(
    aio_session: AsyncSession, big_table: str, loop_errors: list[dict[str, Any]]
) -> None:
    with pytest.raises(OperationTimedOut):
        await aio_session.execute(SCAN, fetch_size=5000, timeout=0.001)
    assert (await aio_session.execute("SELECT count(*) FROM big WHERE p = 0")).one() == (1000,)
    await asyncio.sleep(0.05)
    assert loop_errors == []


async def test_cancelling_the_awaiting_task_abandons_the_request(
    aio_session: AsyncSession,
    big_table: str,
    sent: list[Any],
    loop_errors: list[dict[str, Any]],
) -> None:
    task = asyncio.create_task(aio_session.execute(SCAN, fetch_size=5000))
    await asyncio.sleep(0)  # the task runs up to its wait for the answer
    assert len(sent) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (response_future,) = sent
    # The callbacks were dropped: when the answer arrives, nothing calls back into the loop.
    assert response_future._callbacks == []
    assert response_future._errbacks == []
    await _wait_finished(response_future)
    await asyncio.sleep(0.05)
    assert loop_errors == []
    assert (await aio_session.execute("SELECT count(*) FROM big WHERE p = 0")).one() == (1000,)


async def test_wait_for_timeout_abandons_the_request(
    aio_session: AsyncSession, big_table: str, sent: list[Any], loop_errors: list[dict[str, Any]]
) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(aio_session.execute(SCAN, fetch_size=5000), 0.0005)
    (response_future,) = sent
    assert response_future._callbacks == []
    await _wait_finished(response_future)
    await asyncio.sleep(0.05)
    assert loop_errors == []


async def test_cancelling_a_page_fetch(
    aio_session: AsyncSession, big_table: str, loop_errors: list[dict[str, Any]]
) -> None:
    rs = await aio_session.execute(SCAN, fetch_size=2000)
    task = asyncio.create_task(rs.all())
    await asyncio.sleep(0)  # the second page is requested
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rs.response_future._callbacks == []
    await _wait_finished(rs.response_future)
    await asyncio.sleep(0.05)
    assert loop_errors == []


async def test_cancelling_a_stream_consumer_closes_the_stream(
    aio_session: AsyncSession, big_table: str
) -> None:
    second_page = asyncio.Event()
    stream = await aio_session.execute_stream(
        SCAN, config=StreamConfig(page_callback=lambda page, _rows: page == 2 and second_page.set())
    )

    async def consume() -> None:
        async for _row in stream:
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(second_page.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Whether the task was cancelled inside a page wait or between rows, nothing is left running
    # once the stream is closed.
    stream.cancel()
    assert stream.is_closed
    assert stream._response_future._callbacks == []


async def test_many_concurrent_requests_with_some_cancelled(
    aio_session: AsyncSession, small_table: str, loop_errors: list[dict[str, Any]]
) -> None:
    statement = await aio_session.prepare("SELECT c, v FROM small WHERE k = ? AND c = ?")
    tasks = [asyncio.create_task(aio_session.execute(statement, (1, c % 250))) for c in range(600)]
    for task in tasks[::3]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for c, result in enumerate(results):
        if c % 3 == 0:
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert not isinstance(result, BaseException)
            assert result.one().c == c % 250
    await asyncio.sleep(0.05)
    assert loop_errors == []


async def test_an_already_finished_empty_result_is_not_lost(
    aio_session: AsyncSession, small_table: str
) -> None:
    # A real driver future that completed (with None, as writes do) before anyone watched it.
    from cqlstar.aiocassandra._bridge import LoopBridge

    driver = aio_session.driver_session
    for statement in (
        "UPDATE small SET v = 'z' WHERE k = 9 AND c = 9",
        "SELECT c FROM small WHERE k = 404",
    ):
        response_future = driver.execute_async(statement)
        await _wait_finished(response_future)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        LoopBridge(loop).watch(response_future, fut)
        assert await asyncio.wait_for(fut, 1) in (None, [])
