"""`PageCursor`: rows handed out one at a time from the current page, shared by results and streams.

`AsyncResultSet` and `AsyncStreamingResultSet` differ in how the next page arrives (fetched on
demand with a span per page, or prefetched with one span for the whole stream, and so how a failed
page is reported), not in how rows are read from the page they hold; that part lives here once.
"""

from __future__ import annotations

from typing import Self

from .rows import Row


class PageCursor:
    __slots__ = ("_index", "_rows")

    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows
        self._index = 0  # the next row of the current page to hand out

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Row:
        while True:
            index = self._index
            if index < len(self._rows):
                self._index = index + 1
                return self._rows[index]
            if not await self._advance():
                raise StopAsyncIteration

    async def _advance(self) -> bool:
        """Make the next page current (`_rows`, `_index` 0); False when there is none."""
        raise NotImplementedError
