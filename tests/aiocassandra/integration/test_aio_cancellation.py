"""Timeouts and cancellation abandon driver requests cleanly; the session stays usable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from cassandra import OperationTimedOut

from cqlstar.aiocassandra import AsyncSession, StreamConfig
from cqlstar.aiocassandra import result as result_module

pytestmark = pytest.mark.integration

SCAN = "SELECT p, c, payload FROM big"  # a full scan: takes the node several milliseconds
PROBE = "SELECT release_version FROM system.local"
# Generous: these bound waits for things that normally take milliseconds, so a failure is reported
# instead of hanging the run.
WAIT_S = 10.0


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
    assert await asyncio.to_thread(response_future._event.wait, WAIT_S)


async def _until(condition: Callable[[], object], interval: float = 0.0) -> None:
    """Yield to the loop until `condition()` is true; fail after WAIT_S seconds.

    A bounded poll, because what is awaited offers no event: state that a driver thread changes,
    or a step inside the layer under test that the test can only observe.
    """
    async with asyncio.timeout(WAIT_S):
        while not condition():  # noqa: ASYNC110 (no event to wait on; see the docstring)
            await asyncio.sleep(interval)


def _awaits_late_answer(response_future: Any) -> bool:
    """Whether the node has yet to answer a request the driver gave up on (client timeout)."""
    return response_future._req_id in response_future._connection.orphaned_request_ids


async def _settled(session: AsyncSession, *response_futures: Any) -> None:
    """Return once nothing more from `response_futures` can reach the event loop.

    The driver finishes a request on its one I/O thread (libev): it sets `_event`, then runs the
    callbacks still registered, which hand the answer to the session's bridge; the bridge queues it
    and the loop drains that queue in order. A request abandoned on its client-side timeout is
    finished at once, but the node still answers later; that answer releases the request's stream
    id (`orphaned_request_ids`), on the same thread. So once every request has finished (and any
    late answer has come in) and a probe sent after that has been answered on the same session,
    whatever those requests' callbacks handed over has been drained before the probe's answer: an
    error it raised is already in the loop's exception handler.
    """
    for response_future in response_futures:
        await _wait_finished(response_future)
        await _until(lambda rf=response_future: not _awaits_late_answer(rf), interval=0.005)
    assert (await asyncio.wait_for(session.execute(PROBE), WAIT_S)).one() is not None


async def test_client_timeout_raises_operation_timed_out(
    aio_session: AsyncSession, big_table: str, sent: list[Any], loop_errors: list[dict[str, Any]]
) -> None:
    with pytest.raises(OperationTimedOut):
        await aio_session.execute(SCAN, fetch_size=5000, timeout=0.001)
    (response_future,) = sent
    assert (await aio_session.execute("SELECT count(*) FROM big WHERE p = 0")).one() == (1000,)
    await _settled(aio_session, response_future)  # the node's late answer to the scan included
    assert loop_errors == []


async def test_cancelling_the_awaiting_task_abandons_the_request(
    aio_session: AsyncSession,
    big_table: str,
    sent: list[Any],
    loop_errors: list[dict[str, Any]],
) -> None:
    task = asyncio.create_task(aio_session.execute(SCAN, fetch_size=5000))
    await _until(lambda: len(sent) == 1)  # the task has sent the scan and awaits the answer
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (response_future,) = sent
    # The callbacks were dropped: when the answer arrives, nothing calls back into the loop.
    assert response_future._callbacks == []
    assert response_future._errbacks == []
    await _settled(aio_session, response_future)
    assert loop_errors == []
    assert (await aio_session.execute("SELECT count(*) FROM big WHERE p = 0")).one() == (1000,)


async def test_wait_for_timeout_abandons_the_request(
    aio_session: AsyncSession,
    big_table: str,
    sent: list[Any],
    loop_errors: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The answer is held on the driver's thread until the timeout has fired: however fast the node
    # and however late the loop runs the timeout, the answer cannot win the race.
    bridge = aio_session._bridge_for(asyncio.get_running_loop())
    deliver = bridge.deliver_result
    timed_out = threading.Event()

    def deliver_after_the_timeout(value: Any, fut: asyncio.Future[Any]) -> None:
        timed_out.wait(WAIT_S)
        deliver(value, fut)

    monkeypatch.setattr(bridge, "deliver_result", deliver_after_the_timeout)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(aio_session.execute(SCAN, fetch_size=5000), 0.0005)
    finally:
        timed_out.set()
    (response_future,) = sent
    assert response_future._callbacks == []
    await _settled(aio_session, response_future)
    assert loop_errors == []


async def test_cancelling_a_page_fetch(
    aio_session: AsyncSession,
    big_table: str,
    loop_errors: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page_requests: list[Any] = []
    real_fetch = result_module.fetch_next_page

    def recording_fetch(response_future: Any, *args: Any) -> Any:
        page_requests.append(response_future)
        return real_fetch(response_future, *args)

    monkeypatch.setattr(result_module, "fetch_next_page", recording_fetch)
    rs = await aio_session.execute(SCAN, fetch_size=2000)
    task = asyncio.create_task(rs.all())
    # The second page is requested and the task awaits it: the cancel lands mid-fetch.
    await _until(lambda: page_requests)
    assert page_requests == [rs.response_future]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rs.response_future._callbacks == []
    await _settled(aio_session, rs.response_future)
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
    await _settled(aio_session)  # every request that was sent has been answered (gather)
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
