"""`AsyncResultSet`: the answer to `AsyncSession.execute`, one page at a time.

`execute` returns as soon as the *first* page is in; nothing more is fetched until the caller asks:
`async for` fetches the next page only when the current one is used up, `all()` fetches the rest.
The first page alone is what `one()`, `first()` and `current_rows` look at, like the driver's own
`ResultSet`. `has_more_pages` and `paging_state` describe the position after the latest page fetched,
so `paging_state` can be handed to a client as a page token and given back to `execute`.

This module also owns `fetch_next_page`, the one place a further page of a driver `ResponseFuture`
is requested (streams use it too), and the per-page timeout that comes with it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._cursor import PageCursor
from ._driver import column_names, paging_state, release_timer, restart_request_timer
from .budget import remaining
from .cql import CqlSummary
from .rows import Row

if TYPE_CHECKING:
    from ._bridge import LoopBridge
    from ._context import ResultContext

__all__ = ["AsyncResultSet", "fetch_next_page"]


def fetch_next_page(
    response_future: Any, bridge: LoopBridge, timeout: float | None
) -> asyncio.Future[Any]:
    """Ask the driver for the page after the current one; the future gets its rows.

    The caller must know that there is a next page (`response_future.has_more_pages`).
    """
    timeout = remaining(timeout)  # a later page is still bounded by the caller's time budget
    fut: asyncio.Future[Any] = bridge.loop.create_future()
    # A ResponseFuture keeps its callbacks across pages and calls them again for every page; the
    # previous page's callbacks point at a future that is already done.
    response_future.clear_callbacks()
    restart_request_timer(response_future, timeout)
    response_future.start_fetching_next_page()
    # Only now: start_fetching_next_page resets the previous result, so a callback added before it
    # would be called at once with the *previous* page.
    response_future.add_callback(bridge.deliver_result, fut)
    response_future.add_errback(bridge.deliver_error, fut)
    return fut


def _as_rows(value: Any) -> list[Row]:
    # None for writes and schema changes; a list of rows for a ROWS result.
    return value if isinstance(value, list) else []


class AsyncResultSet(PageCursor):
    """The result of one `execute`: the first page now, later pages when iterated.

    Iteration is a cursor: a second `async for` (or `all()`) continues where the previous one
    stopped. Not meant to be iterated by two tasks at once.
    """

    __slots__ = ("_context", "_page_number", "_response_future", "_summary", "_timeout")

    def __init__(
        self,
        context: ResultContext,
        response_future: Any,
        rows: Any,
        summary: CqlSummary,
        timeout: float | None,
    ) -> None:
        super().__init__(_as_rows(rows))
        self._context = context
        self._response_future = response_future
        self._page_number = 1
        self._summary = summary
        self._timeout = timeout

    # The current page -------------------------------------------------------------------------

    @property
    def current_rows(self) -> list[Row]:
        """The rows of the current (latest fetched) page."""
        return self._rows

    def one(self) -> Row | None:
        """The first row of the current page, or None when it is empty (the driver's `one()`)."""
        rows = self._rows
        return rows[0] if rows else None

    def first(self) -> Row | None:
        """Same as `one()`."""
        rows = self._rows
        return rows[0] if rows else None

    @property
    def has_more_pages(self) -> bool:
        """Whether the server has rows after the latest fetched page."""
        return bool(self._response_future.has_more_pages)

    @property
    def paging_state(self) -> bytes | None:
        """Opaque position after the latest fetched page, for `execute(..., paging_state=...)`."""
        state: bytes | None = paging_state(self._response_future)
        return state

    @property
    def column_names(self) -> list[str]:
        """The result's column names, as the server sent them (empty for a write)."""
        return list(column_names(self._response_future) or ())

    @property
    def was_applied(self) -> bool:
        """For a conditional (IF ...) statement: whether the server applied it."""
        names = column_names(self._response_future)
        if not names or names[0] != "[applied]" or not self._rows:
            raise RuntimeError("was_applied is only known for a conditional statement's result")
        return bool(self._rows[0][0])

    @property
    def response_future(self) -> Any:
        """The driver's ResponseFuture behind this result (warnings, tracing, custom payload)."""
        return self._response_future

    # Later pages ------------------------------------------------------------------------------

    async def all(self) -> list[Row]:
        """Every row not yet iterated: the rest of the current page and all later pages."""
        rows = self._rows[self._index :] if self._index else list(self._rows)
        while self._response_future.has_more_pages:
            await self._fetch_next_page()
            rows.extend(self._rows)
        self._index = len(self._rows)
        return rows

    async def _advance(self) -> bool:
        if not self._response_future.has_more_pages:
            return False
        await self._fetch_next_page()
        return True

    async def _fetch_next_page(self) -> None:
        context = self._context
        response_future = self._response_future
        bridge = context.bridge()
        query = context.telemetry.start_page(
            self._summary, context.keyspace(), response_future.query, self._page_number + 1
        )
        try:
            rows = await fetch_next_page(response_future, bridge, self._timeout)
        except BaseException as exc:
            response_future.clear_callbacks()
            if query is not None:
                context.telemetry.fail(query, response_future, exc, attempts=False)
            raise
        release_timer(response_future)
        self._rows = _as_rows(rows)
        self._index = 0
        self._page_number += 1
        if query is not None:
            context.telemetry.succeed(query, response_future, len(self._rows), attempts=False)

    def __repr__(self) -> str:
        return (
            f"<AsyncResultSet page={self._page_number} rows={len(self._rows)} "
            f"has_more_pages={self.has_more_pages}>"
        )
