"""A finished query is freed by reference counting, without waiting for the garbage collector.

Under load, queries that only the cyclic collector could free made every collection walk each
query's objects again (about a tenth of the service's CPU in `python -m bench.probes.profile get_user`).
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from cqlstar.aiocassandra import (
    AsyncResultSet,
    AsyncSession,
    AsyncStreamingResultSet,
    StreamConfig,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class FreedWatch:
    """Set when the driver's ResponseFuture behind a result is freed, on whichever thread frees it
    (the driver's I/O thread lets go of a cancelled timer on its next turn, not at once)."""

    def __init__(self, result: AsyncResultSet | AsyncStreamingResultSet) -> None:
        loop = asyncio.get_running_loop()
        self.freed = asyncio.Event()
        self._ref = weakref.ref(
            result._response_future, lambda _: loop.call_soon_threadsafe(self.freed.set)
        )

    async def wait(self, within_s: float = 2.0) -> bool:
        try:
            await asyncio.wait_for(self.freed.wait(), within_s)
        except TimeoutError:
            return False
        return True


@pytest.mark.usefixtures("collector_off", "small_table")
async def test_a_query_is_freed_once_its_result_is_dropped(aio_session: AsyncSession) -> None:
    statement = await aio_session.prepare("SELECT c, v FROM small WHERE k = ? AND c = ?")
    result = await aio_session.execute(statement, (1, 3))
    assert result.one() is not None
    watch = FreedWatch(result)
    del result
    assert await watch.wait()


@pytest.mark.usefixtures("collector_off", "small_table")
async def test_a_paged_query_is_freed_after_its_last_page(aio_session: AsyncSession) -> None:
    result = await aio_session.execute("SELECT c FROM small WHERE k = 1", fetch_size=100)
    assert len([row async for row in result]) == 250
    watch = FreedWatch(result)
    del result
    assert await watch.wait()


@pytest.mark.usefixtures("collector_off", "small_table")
async def test_a_stream_is_freed_after_its_last_page(aio_session: AsyncSession) -> None:
    # The last page's rows hang off the ResponseFuture: in a cycle, a whole page (5000 rows in the
    # service's streams) outlived every finished stream until the collector came round.
    stream = await aio_session.execute_stream(
        "SELECT c FROM small WHERE k = 1", config=StreamConfig(fetch_size=100)
    )
    async with stream:
        assert len([row async for row in stream]) == 250
    watch = FreedWatch(stream)
    del stream
    assert await watch.wait()
