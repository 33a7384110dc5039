"""Streams: bounded memory over 100k rows, prefetch depth, cancellation, concurrency, failures."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from typing import Any

import pytest
from cassandra import InvalidRequest, OperationTimedOut
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from cqlstar.aiocassandra import AsyncSession, AsyncStreamingResultSet, StreamConfig
from cqlstar.aiocassandra import streaming as streaming_module

BIG_TABLE_ROWS = 100_000  # what the big_table fixture writes

pytestmark = pytest.mark.integration


async def test_streams_100k_rows_with_bounded_memory(
    aio_session: AsyncSession, big_table: str
) -> None:
    fetch_size = 1000
    # What a page of these rows costs when held: the yardstick for "bounded".
    tracemalloc.start()
    try:
        sample = await aio_session.execute("SELECT p, c, payload FROM big", fetch_size=fetch_size)
        one_page = tracemalloc.get_traced_memory()[0]
        del sample
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        count = 0
        async with await aio_session.execute_stream(
            "SELECT p, c, payload FROM big", config=StreamConfig(fetch_size=fetch_size)
        ) as stream:
            async for row in stream:
                count += 1
                assert row.payload
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert count == BIG_TABLE_ROWS
    assert stream.page_number == BIG_TABLE_ROWS // fetch_size
    assert stream.total_rows_fetched == BIG_TABLE_ROWS
    assert stream.is_closed
    all_rows_cost = one_page * (BIG_TABLE_ROWS // fetch_size)
    # About two pages held plus the driver's buffers; everything would be ~100 pages.
    assert peak < 6 * one_page, (peak, one_page)
    assert peak < all_rows_cost / 10


async def test_prefetch_is_one_page_ahead(
    aio_session: AsyncSession, small_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    requested: list[int] = []
    real_fetch = streaming_module.fetch_next_page

    def counting_fetch(*args: Any) -> Any:
        requested.append(1)
        return real_fetch(*args)

    monkeypatch.setattr(streaming_module, "fetch_next_page", counting_fetch)
    pages_seen: list[tuple[int, int]] = []
    stream = await aio_session.execute_stream(
        "SELECT c FROM small WHERE k = 1",
        config=StreamConfig(
            fetch_size=30, page_callback=lambda n, rows: pages_seen.append((n, rows))
        ),
    )
    async with stream:
        async for _row in stream:
            # Requests beyond the first: never more than one past the page being consumed.
            assert len(requested) <= stream.page_number
            await asyncio.sleep(0)
    assert pages_seen == [(n, 30) for n in range(1, 9)] + [(9, 10)]
    assert len(requested) == 8


async def test_pages_max_pages_and_resume(aio_session: AsyncSession, small_table: str) -> None:
    query = "SELECT c FROM small WHERE k = 1"
    stream = await aio_session.execute_stream(
        query, config=StreamConfig(fetch_size=40, max_pages=2)
    )
    pages = [[row.c for row in page] async for page in stream.pages()]
    assert pages == [list(range(40)), list(range(40, 80))]
    assert stream.is_closed
    assert stream.has_more_pages
    token = stream.paging_state
    assert token is not None
    async with await aio_session.execute_stream(
        query, config=StreamConfig(fetch_size=100), paging_state=token
    ) as rest:
        assert [row.c async for row in rest] == list(range(80, 250))
    assert not rest.has_more_pages
    assert rest.paging_state is None


async def test_pages_after_partial_row_iteration(
    aio_session: AsyncSession, small_table: str
) -> None:
    async with await aio_session.execute_stream(
        "SELECT c FROM small WHERE k = 1", config=StreamConfig(fetch_size=100)
    ) as stream:
        first = await stream.__anext__()
        pages = [page async for page in stream.pages()]
    assert first.c == 0
    assert [len(page) for page in pages] == [99, 100, 50]


async def test_a_page_handed_over_by_pages_is_held_only_by_the_consumer(
    aio_session: AsyncSession, small_table: str
) -> None:
    """What lets a slow consumer hold one page less: once it has turned a page into something else
    (an encoded chunk), dropping it frees the rows, while the stream keeps only its prefetch."""
    async with await aio_session.execute_stream(
        "SELECT c FROM small WHERE k = 1", config=StreamConfig(fetch_size=100)
    ) as stream:
        pages = stream.pages()
        for expected in (list(range(100)), list(range(100, 200))):
            page = await anext(pages)
            assert [row.c for row in page] == expected
            holders = gc.get_referrers(page)
            assert not any(holder is vars(stream) for holder in holders)
            assert not any(holder is pages for holder in holders)
        await pages.aclose()


async def test_cancel_mid_stream_drops_callbacks_and_session_works(
    aio_session: AsyncSession, big_table: str, spans: InMemorySpanExporter
) -> None:
    stream = await aio_session.execute_stream(
        "SELECT p, c FROM big", config=StreamConfig(fetch_size=500)
    )
    seen = 0
    async for _row in stream:
        seen += 1
        if seen == 1200:
            await stream.cancel()
    assert seen == 1200  # iteration ended right after the cancel
    assert stream.is_closed
    response_future = stream._response_future
    assert response_future._callbacks == []
    assert response_future._errbacks == []
    stream.cancel()  # idempotent, and fine without await
    assert [row async for row in stream] == []
    (span,) = spans.get_finished_spans()
    assert [event.name for event in span.events][-1] == "cassandra.stream.cancelled"
    assert span.attributes is not None
    assert span.attributes["db.response.returned_rows"] == 1500  # pages 1-3 reached the consumer
    count = await aio_session.execute("SELECT count(*) FROM big WHERE p = 1")
    assert count.one() == (1000,)


async def test_leaving_the_context_early_cancels(
    aio_session: AsyncSession, small_table: str
) -> None:
    async with await aio_session.execute_stream(
        "SELECT c FROM small WHERE k = 1", config=StreamConfig(fetch_size=10)
    ) as stream:
        async for row in stream:
            if row.c == 15:
                break
    assert stream.is_closed
    assert stream.page_number == 2
    assert stream._response_future._callbacks == []


async def test_cancel_from_another_task_ends_a_waiting_iteration(
    aio_session: AsyncSession, big_table: str
) -> None:
    second_page = asyncio.Event()
    stream = await aio_session.execute_stream(
        "SELECT p, c FROM big",
        config=StreamConfig(
            fetch_size=5000, page_callback=lambda page, _rows: page == 2 and second_page.set()
        ),
    )

    async def consume() -> int:
        return len([row async for row in stream])

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(second_page.wait(), 10)
    stream.cancel()
    seen = await asyncio.wait_for(consumer, 5)
    assert 5000 <= seen < BIG_TABLE_ROWS


async def test_three_concurrent_streams_are_independent(
    aio_session: AsyncSession, big_table: str
) -> None:
    async def read(partition: int, fetch_size: int) -> list[int]:
        config = StreamConfig(fetch_size=fetch_size)
        async with await aio_session.execute_stream(
            "SELECT c FROM big WHERE p = %s", (partition,), config=config
        ) as stream:
            return [row.c async for row in stream]

    results = await asyncio.gather(read(3, 70), read(4, 130), read(5, 1000))
    for result in results:
        assert result == list(range(1000))


async def test_a_failing_stream_leaves_the_session_usable(
    aio_session: AsyncSession, big_table: str, spans: InMemorySpanExporter
) -> None:
    with pytest.raises(InvalidRequest):
        await aio_session.execute_stream("SELECT nope FROM big")
    # Mid-stream: from the third page on, each fetch gets an impossible per-page timeout.
    stream = await aio_session.execute_stream(
        "SELECT p, c FROM big", config=StreamConfig(fetch_size=1000)
    )
    stream._page_timeout = 1e-9
    seen: list[Any] = []

    async def consume() -> None:
        async for row in stream:
            seen.append(row)

    with pytest.raises(OperationTimedOut):
        await consume()
    assert len(seen) == 2000
    assert stream.is_closed
    failed = [s for s in spans.get_finished_spans() if s.status.status_code is StatusCode.ERROR]
    assert [s.attributes["error.type"] for s in failed if s.attributes] == [
        "InvalidRequest",
        "OperationTimedOut",
    ]
    assert (await aio_session.execute("SELECT count(*) FROM big WHERE p = 2")).one() == (1000,)


async def test_page_callback_error_ends_the_stream(
    aio_session: AsyncSession, small_table: str
) -> None:
    def explode(page: int, rows: int) -> None:
        if page == 2:
            raise RuntimeError("stop here")

    stream = await aio_session.execute_stream(
        "SELECT c FROM small WHERE k = 1",
        config=StreamConfig(fetch_size=100, page_callback=explode),
    )
    with pytest.raises(RuntimeError, match="stop here"):
        async for _row in stream:
            pass
    assert stream.is_closed


async def test_event_loop_stays_responsive_while_streaming(
    aio_session: AsyncSession, big_table: str
) -> None:
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        interval = 0.005
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(interval)
            lags.append(time.perf_counter() - started - interval)

    ticking = asyncio.create_task(ticker())
    try:
        stream: AsyncStreamingResultSet
        async with await aio_session.execute_stream(
            "SELECT p, c, payload FROM big", config=StreamConfig(fetch_size=500)
        ) as stream:
            rows = 0
            async for _row in stream:
                rows += 1
    finally:
        stop.set()
        await ticking
    assert rows == BIG_TABLE_ROWS
    assert stream.page_number == 200
    assert len(lags) > 10
    assert max(lags) < 0.1, f"max event-loop lag {max(lags) * 1000:.1f} ms"
