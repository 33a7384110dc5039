"""`AsyncStreamingResultSet`: rows of a large query with bounded memory, and `StreamConfig`.

Flow control: the stream holds the page being consumed and at most one more — the next page is
requested from the server as soon as the current one is handed to the consumer (prefetch), so the
network round trip overlaps the consumer's work, and no further page is requested until the consumer
reaches that prefetched page. Memory is therefore about two pages, whatever the result's size, and a
consumer that stops asking (say, one waiting for a slow client) stops the reads after one page.
`pages()` hands each page over outright: the stream keeps no reference to it, so a consumer that has
turned a page into something else holds the prefetched page alone.

Pages are counted as they are handed to the consumer, not as they arrive: `page_number` is the page
being consumed (1-based), `total_rows_fetched` the rows of pages 1..page_number, `paging_state` the
server's position after the current page (a page token: give it back to `execute` or
`execute_stream` to resume right after it), and `page_callback(page_number, rows_in_page)` is
called as each page is handed over. Empty pages are not pages here: the server sends one at the
end of a result whose size is a multiple of the fetch size, and in between with ALLOW FILTERING;
they are skipped by iteration, `pages()`, the counters, `max_pages` and the callback.

Ending a stream: it closes itself when exhausted (or after `max_pages`) and on error. `cancel()` —
and leaving `async with` early — stops it at once: the driver's callbacks are dropped, the prefetched
page is released, an iteration waiting for a page ends. `cancel()` is synchronous (usable from any
code on the loop thread) and returns an awaitable, so `await stream.cancel()` works as well.
A task cancelled while awaiting a page also closes the stream (the page it waited for is lost).
A stream is not meant to be iterated by two tasks at once.

Tracing: one span per stream, from the first request to the end of the stream, with a
`cassandra.page` event per page and the total row count (see `telemetry`).

Timeouts: `StreamConfig.timeout` (or `execute_stream(timeout=...)`, which wins) bounds each page
fetch on its own, including the first; the driver raises OperationTimedOut.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._cursor import PageCursor
from ._driver import paging_state, release_timer
from .result import fetch_next_page
from .rows import Row

if TYPE_CHECKING:
    from ._bridge import LoopBridge
    from ._context import ResultContext
    from .telemetry import QueryTrace

__all__ = ["AsyncStreamingResultSet", "StreamConfig"]

# Put into a pending page future by cancel(), so a consumer waiting on it ends its iteration instead
# of seeing a CancelledError that would look like its own task being cancelled.
_CANCELLED: Any = object()


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How a stream pages.

    fetch_size: rows per page requested from the server.
    max_pages: stop after this many pages (None: until the result ends); `has_more_pages` then says
        whether the server had more, and `paging_state` resumes there.
    page_callback: called as `page_callback(page_number, rows_in_page)` on the event loop each time
        a page is handed to the consumer; an exception from it ends the stream and propagates.
    timeout: seconds allowed for each page fetch (None: the cluster's request timeout).
    """

    fetch_size: int = 1000
    max_pages: int | None = None
    page_callback: Callable[[int, int], None] | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.fetch_size <= 0:
            raise ValueError("fetch_size must be positive")
        if self.max_pages is not None and self.max_pages <= 0:
            raise ValueError("max_pages must be positive or None")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive or None")


class _Completed:
    """An awaitable that is already complete: what `cancel()` returns."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # makes this a generator function


_COMPLETED = _Completed()


class AsyncStreamingResultSet(PageCursor):
    """Rows of one query, fetched page by page with one page of prefetch; see the module docs."""

    def __init__(
        self,
        context: ResultContext,
        response_future: Any,
        first_rows: Any,
        *,
        config: StreamConfig,
        page_timeout: float | None,
        bridge: LoopBridge,
        query: QueryTrace | None,
    ) -> None:
        super().__init__([])
        self._context = context
        self._response_future = response_future
        self._config = config
        self._page_timeout = page_timeout
        self._bridge = bridge
        self._query = query
        self._page_number = 0
        self._total_rows = 0
        self._paging_state: bytes | None = None
        self._next: asyncio.Future[Any] | None = None
        self._closed = False
        self._accept(first_rows)

    # State ------------------------------------------------------------------------------------

    @property
    def config(self) -> StreamConfig:
        return self._config

    @property
    def page_number(self) -> int:
        """The page being consumed, 1-based; 0 while no row has arrived."""
        return self._page_number

    @property
    def total_rows_fetched(self) -> int:
        """Rows in the pages handed to the consumer so far."""
        return self._total_rows

    @property
    def paging_state(self) -> bytes | None:
        """The server's position after the current page; None when the result ends there."""
        return self._paging_state

    @property
    def has_more_pages(self) -> bool:
        """Whether the server has rows after the current page."""
        return self._paging_state is not None

    @property
    def is_closed(self) -> bool:
        return self._closed

    # Consuming --------------------------------------------------------------------------------

    async def pages(self) -> AsyncIterator[list[Row]]:
        """Iterate page by page: the unconsumed rest of the current page, then each later page.

        A page handed over this way is no longer held by the stream (nor by this generator while it
        waits to be resumed): once the consumer lets go of it, say after encoding it, its rows are
        freed, and the stream holds only the prefetched page.
        """
        while True:
            if self._index < len(self._rows):
                yield self._take_rest()
            if not await self._advance():
                return

    def _take_rest(self) -> list[Row]:
        rows, index = self._rows, self._index
        self._rows = []
        self._index = 0
        return rows if index == 0 else rows[index:]

    async def _advance(self) -> bool:
        """Make the prefetched page current; False when the stream has ended."""
        if self._closed:
            return False
        pending = self._next
        if pending is None:  # the result (or max_pages) is exhausted
            self._close(None)
            return False
        try:
            rows = await pending
        except BaseException as exc:
            self._close(exc)
            raise
        if rows is _CANCELLED:
            return False
        # The answer is in: without this the last page's timer, and through it the page's rows,
        # would stay in a cycle with the ResponseFuture after the stream ends (`release_timer`).
        release_timer(self._response_future)
        self._next = None
        self._accept(rows)
        return True

    def _accept(self, rows: Any) -> None:
        """Hand a page to the consumer and prefetch the one after it."""
        page: list[Row] = rows if isinstance(rows, list) else []
        response_future = self._response_future
        self._rows = page
        self._index = 0
        # Read now: the prefetch below will overwrite the driver's copy when its page arrives.
        self._paging_state = paging_state(response_future)
        if page:
            self._page_number += 1
            self._total_rows += len(page)
        max_pages = self._config.max_pages
        if self._paging_state is not None and (max_pages is None or self._page_number < max_pages):
            self._next = fetch_next_page(response_future, self._bridge, self._page_timeout)
        if not page:
            return
        if self._query is not None:
            self._context.telemetry.page(self._query, self._page_number, len(page))
        callback = self._config.page_callback
        if callback is not None:
            try:
                callback(self._page_number, len(page))
            except BaseException as exc:
                self._close(exc)
                raise

    # Ending -----------------------------------------------------------------------------------

    def cancel(self) -> Awaitable[None]:
        """Stop the stream now: no further page is fetched or delivered. Idempotent.

        Returns an already-complete awaitable, so both `stream.cancel()` and
        `await stream.cancel()` are fine.
        """
        if not self._closed:
            pending = self._next
            self._close(None, cancelled=True)
            if pending is not None and not pending.done():
                pending.set_result(_CANCELLED)
        return _COMPLETED

    def _close(self, exc: BaseException | None, *, cancelled: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self._next = None
        self._rows = []
        self._index = 0
        # Late answers for a page nobody will read are dropped by the driver instead of waking the
        # loop; the driver still completes (or times out) the request itself.
        self._response_future.clear_callbacks()
        self._context.stream_closed(self)
        query = self._query
        if query is not None:
            self._query = None
            telemetry = self._context.telemetry
            if cancelled:
                telemetry.event(query, "cassandra.stream.cancelled")
            if exc is None:
                telemetry.succeed(query, self._response_future, self._total_rows, attempts=False)
            else:
                telemetry.fail(query, self._response_future, exc, attempts=False)

    async def __aenter__(self) -> AsyncStreamingResultSet:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<AsyncStreamingResultSet {state} page={self._page_number} "
            f"rows={self._total_rows} has_more_pages={self.has_more_pages}>"
        )
