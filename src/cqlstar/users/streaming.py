"""Response bodies written while Cassandra is still being read: `GET /users/stream`.

Each Cassandra page becomes one chunk (encoding and sending row by row would cost a send per row), so
the server holds at most the page being encoded plus what the driver prefetches, whatever the total.
The encoder and its output buffer are reused from page to page.

Who closes the Cassandra stream: the route opens it before the status line, so that an unavailable
node or a timeout is still answered with a 5xx status, and hands it to a `ResultSetStream` response,
which cancels it when the response is over, however that ends: body complete, client gone, request
cancelled, sending failed. The generators also close it (`async with`) as soon as their last page is
read or reading fails, which frees it a little earlier.

The response has to own it because the generators cannot: a generator's `async with` only runs once
the generator has started and is resumed. A body never started (the status line could not be sent,
the request was cancelled first) or left suspended at a `yield` (Litestar cancels the sending task
when the client disconnects; it does not close the iterator) would keep the stream open, prefetching,
until garbage collection. A Litestar background task is no substitute: it runs only after a response
was sent in full.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send, TypeEncodersMap

from cqlstar.aiocassandra import AsyncStreamingResultSet
from cqlstar.users.repository import users_from_rows
from cqlstar.users.schemas import StreamMetadata

if TYPE_CHECKING:
    from litestar import Litestar, Request

NDJSON_MEDIA_TYPE = "application/x-ndjson"

# msgspec encoders are safe to share: encoding holds the GIL and keeps no state between calls.
_encoder = msgspec.json.Encoder()

_DOCUMENT_OPEN = b'{"users":['
_COMMA = ord(",")


async def json_document(
    stream: AsyncStreamingResultSet, *, fetch_size: int
) -> AsyncIterator[bytes]:
    """`{"users": [...], "metadata": {...}}`, the metadata last because only then is it known."""
    total_returned = 0
    buffer = bytearray()
    async with stream:
        yield _DOCUMENT_OPEN
        async for rows in stream.pages():
            users = users_from_rows(rows)
            # The layer skips empty pages, but reads leave out incomplete rows, which can empty
            # one; an empty page here would break the splice.
            if not users:
                continue
            # Encode the page as one JSON array, "[u1,u2,...]", then splice it into the open array:
            # drop the closing bracket, and turn the opening one into the separator from the previous
            # page (or drop it on the first page).
            _encoder.encode_into(users, buffer)
            del buffer[-1]
            if total_returned:
                buffer[0] = _COMMA
            else:
                del buffer[0]
            total_returned += len(users)
            yield bytes(buffer)
    metadata = StreamMetadata(
        total_returned=total_returned, pages_fetched=stream.page_number, fetch_size=fetch_size
    )
    yield b'],"metadata":' + _encoder.encode(metadata) + b"}"


async def ndjson_lines(stream: AsyncStreamingResultSet) -> AsyncIterator[bytes]:
    """One user per line: a client can process each line as it arrives."""
    async with stream:
        async for rows in stream.pages():
            yield _encoder.encode_lines(users_from_rows(rows))


class ResultSetStream(Stream):
    """A streamed response whose body reads `result_set`; it owns the result set and cancels it
    when the response is over, whether or not the body was ever read (see the module docs)."""

    __slots__ = ("result_set",)

    def __init__(
        self, chunks: AsyncIterator[bytes], *, result_set: AsyncStreamingResultSet, media_type: str
    ) -> None:
        super().__init__(chunks, media_type=media_type)
        self.result_set = result_set

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        # Between the handler's return and this call only Litestar's `after_request` hooks run,
        # and this app has none; from here on the response below owns the result set.
        try:
            streaming = super().to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
        except BaseException:
            self.result_set.cancel()
            raise
        return _CancellingResponse(streaming, self.result_set)


class _CancellingResponse(ASGIResponse):
    """Sends Litestar's streaming response, then cancels the result set however sending ended.

    Only its `__call__` is used: Litestar sends a response by calling it, so the fields of
    `ASGIResponse` (which the wrapped response has) are left unset here.
    """

    __slots__ = ("_result_set", "_streaming")

    def __init__(self, streaming: ASGIResponse, result_set: AsyncStreamingResultSet) -> None:
        self._streaming = streaming
        self._result_set = result_set

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._streaming(scope, receive, send)
        finally:
            self._result_set.cancel()  # idempotent: a body read to its end has closed it already
