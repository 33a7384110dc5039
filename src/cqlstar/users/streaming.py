"""Response bodies written while Cassandra is still being read: `GET /users/stream`.

Each Cassandra page is encoded at once (encoding row by row would cost a call per row), then handed
to the server in pieces of at most `PIECE_BYTES`.

Slow readers. The stream reads at the pace its client does: the layer prefetches one page and asks
for the next only when this body asks for it (`cqlstar.aiocassandra.streaming`), and this body asks
only once the previous page has been handed to the server. granian (2.8 and later, hence the
project's lower bound) applies backpressure to ASGI `send`: a streamed body goes through a short
queue of messages per response, and `await send(...)` waits while that queue is full, that is while
the socket takes nothing more. Measured with granian 2.8.7 and a client that reads nothing: about 5
sends of 8 MiB complete, 8 of 1 MiB, 71 of 64 KiB, that is a few messages plus what the kernel's
socket buffers take. The queue counts messages, not bytes, which is why pages go out in pieces: the
server then holds a few pieces, not a few pages. So when a page has been handed over, all but a few
pieces of it are in the kernel's socket buffers, and only then is the page after the prefetched one
requested. A stream whose client reads nothing holds the prefetched page's rows, the encoded page
being handed over and a few pieces in granian, whatever the row count: two to three pages' worth of
NDJSON at most (measured by `BENCH_SCENARIOS=slow_readers just bench`; see README, Performance).

How many streams: `StreamSlots` caps the streams in progress in this process (CQLSTAR_MAX_STREAMS);
a request over the cap is answered 503 with Retry-After before anything is read. A slot is held from
before the Cassandra query until the response is over, however it ends.

Failures. The first page is read and encoded before the status line goes out (`start_stream`), so
a failure there (Cassandra unavailable or timed out, an encoding failure) is answered with the
error contract, `{"detail": ...}` and its status. A failure after the status line cannot change the
status: it is logged with its cause (and, like every line logged during a request, the trace id),
and the connection is closed without the chunked body's last chunk, so the client sees a truncated
body rather than a complete-looking one. A client that goes away is not a failure.

Who closes the Cassandra stream: the route opens it before the status line and hands it to a
`ResultSetStream` response, which cancels it when the response is over, however that ends: body
complete, client gone, request cancelled, sending failed. The generators also close it
(`async with`) as soon as their last page is read or reading fails, which frees it a little earlier.

The response has to own it because the generators cannot: a generator's `async with` only runs once
the generator has started and is resumed. A body never started (the status line could not be sent,
the request was cancelled first) or left suspended at a `yield` (Litestar cancels the sending task
when the client disconnects; it does not close the iterator) would keep the stream open, prefetching,
until garbage collection. A Litestar background task is no substitute: it runs only after a response
was sent in full.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.exceptions import ServiceUnavailableException
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.types import Message, Receive, Scope, Send, TypeEncodersMap

from cqlstar.aiocassandra import AsyncStreamingResultSet, BudgetExceeded
from cqlstar.aiocassandra import remaining as budget_left
from cqlstar.users.repository import users_from_rows
from cqlstar.users.schemas import StreamMetadata

if TYPE_CHECKING:
    from litestar import Litestar, Request

log = logging.getLogger(__name__)

NDJSON_MEDIA_TYPE = "application/x-ndjson"

# The most a body hands to the server in one `send`. granian's queue per response holds a few
# messages whatever their size; pieces this big cost a `send` per 64 KiB (about 16 per page of 5000
# users), next to nothing beside encoding the page.
PIECE_BYTES = 64 * 1024
# A stream refused for want of a slot: streams last seconds, so a retry soon may find one.
STREAMS_RETRY_AFTER_S = "2"

# msgspec encoders are safe to share: encoding holds the GIL and keeps no state between calls.
_encoder = msgspec.json.Encoder()

_DOCUMENT_OPEN = b'{"users":['
_COMMA = ord(",")


async def json_document(
    stream: AsyncStreamingResultSet, *, fetch_size: int
) -> AsyncIterator[bytes]:
    """`{"users": [...], "metadata": {...}}`, the metadata last because only then is it known.

    The opening of the document goes out with the first page, so that nothing is sent before the
    first page has been read and encoded (see the module docs, Failures)."""
    total_returned = 0
    buffer = bytearray()
    async with stream:
        async for rows in stream.pages():
            users = users_from_rows(rows)
            del rows  # the page's rows are freed once encoded, while the client reads the bytes
            # The layer skips empty pages, but reads leave out incomplete rows, which can empty
            # one; an empty page here would break the splice.
            if not users:
                continue
            # Encode the page as one JSON array, "[u1,u2,...]", then splice it into the open array:
            # drop the closing bracket, and turn the opening one into the separator from the previous
            # page (or into the document's opening on the first page).
            _encoder.encode_into(users, buffer)
            del buffer[-1]
            if total_returned:
                buffer[0] = _COMMA
            else:
                buffer[0:1] = _DOCUMENT_OPEN
            total_returned += len(users)
            del users
            for piece in _pieces(buffer):
                yield piece
    metadata = StreamMetadata(
        total_returned=total_returned, pages_fetched=stream.page_number, fetch_size=fetch_size
    )
    closing = b'],"metadata":' + _encoder.encode(metadata) + b"}"
    yield closing if total_returned else _DOCUMENT_OPEN + closing


async def ndjson_lines(stream: AsyncStreamingResultSet) -> AsyncIterator[bytes]:
    """One user per line: a client can process each line as it arrives."""
    async with stream:
        async for rows in stream.pages():
            lines = _encoder.encode_lines(users_from_rows(rows))
            del rows  # the page's rows are freed once encoded, while the client reads the bytes
            for piece in _pieces(lines):
                yield piece
            del lines


def _pieces(encoded: bytes | bytearray) -> Iterator[bytes]:
    """`encoded` in pieces of at most PIECE_BYTES; copies, as a bytearray is reused for the next
    page (and granian keeps what it is handed until it is written)."""
    if len(encoded) <= PIECE_BYTES:
        yield bytes(encoded)
        return
    with memoryview(encoded) as view:
        for start in range(0, len(view), PIECE_BYTES):
            yield view[start : start + PIECE_BYTES].tobytes()


class StreamSlots:
    """At most `capacity` streamed responses in progress at once in this process.

    A slot is taken before the stream's query and given back when its response is over; see
    `start_stream` and `ResultSetStream`. Everything runs on the event loop, so a counter is enough.
    """

    __slots__ = ("_in_use", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    def take(self) -> StreamSlot:
        """A slot, or 503 with Retry-After when every slot is taken."""
        if self._in_use >= self.capacity:
            raise ServiceUnavailableException(
                detail="Too many streams in progress",
                headers={"Retry-After": STREAMS_RETRY_AFTER_S},
            )
        self._in_use += 1
        return StreamSlot(self)

    def _give_back(self) -> None:
        self._in_use -= 1


class StreamSlot:
    """One taken slot; `release` is idempotent."""

    __slots__ = ("_slots",)

    def __init__(self, slots: StreamSlots) -> None:
        self._slots: StreamSlots | None = slots

    def release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots._give_back()


async def start_stream(
    result_set: AsyncStreamingResultSet,
    chunks: AsyncIterator[bytes],
    *,
    slot: StreamSlot,
    media_type: str,
) -> ResultSetStream:
    """The response for `chunks`, once their first chunk is ready.

    Awaited by the handler, so a failure to produce the first chunk (the first page, read and
    encoded) is answered by the app's error handlers, as if the stream had never started. The
    response owns `result_set` and `slot` from here on; on failure they are let go here.
    """
    try:
        first = await anext(chunks, None)
    except BaseException:
        result_set.cancel()
        slot.release()
        raise
    return ResultSetStream(
        _after(first, chunks), result_set=result_set, slot=slot, media_type=media_type
    )


async def _after(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is None:
        return
    yield first
    async for chunk in rest:
        yield chunk


class ResultSetStream(Stream):
    """A streamed response whose body reads `result_set`; it owns the result set and cancels it
    when the response is over, whether or not the body was ever read (see the module docs)."""

    __slots__ = ("result_set", "slot")

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        result_set: AsyncStreamingResultSet,
        slot: StreamSlot,
        media_type: str,
    ) -> None:
        super().__init__(chunks, media_type=media_type)
        self.result_set = result_set
        self.slot = slot

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
            self.slot.release()
            raise
        return _CancellingResponse(streaming, self.result_set, self.slot)


class _CancellingResponse(ASGIResponse):
    """Sends Litestar's streaming response, then cancels the result set and gives back the slot
    however sending ended; a failure after the status line is logged and ends the body early.

    Only its `__call__` is used: Litestar sends a response by calling it, so the fields of
    `ASGIResponse` (which the wrapped response has) are left unset here.
    """

    __slots__ = ("_result_set", "_slot", "_streaming")

    def __init__(
        self, streaming: ASGIResponse, result_set: AsyncStreamingResultSet, slot: StreamSlot
    ) -> None:
        self._streaming = streaming
        self._result_set = result_set
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_and_watch(message: Message) -> None:
            nonlocal started
            await send(message)
            if message["type"] == "http.response.start":
                started = True

        try:
            await self._streaming(scope, receive, send_and_watch)
        except Exception as exc:
            if not started:
                raise  # still answerable: the app's error handlers do it
            # The status line is out: returning without the body's last message makes the server
            # close the connection without the final chunk, so the client sees the body cut short.
            # Raising instead would reach the server as an application error, logged without the
            # request's trace and cause.
            self._log_early_end(scope, _cause(exc))
        except asyncio.CancelledError:
            # The request's task is cancelled: by the X-Request-Timeout budget (which then answers
            # nothing more, the status line being out) or by a server shutting down. Only the first
            # is a failure of this stream; a client that leaves is seen by Litestar, not here.
            if started and _budget_spent():
                self._log_early_end(scope, BudgetExceeded())
            raise
        finally:
            self._result_set.cancel()  # idempotent: a body read to its end has closed it already
            self._slot.release()

    def _log_early_end(self, scope: Scope, cause: BaseException) -> None:
        log.error(
            "stream ended early",
            exc_info=cause if cause.__traceback__ is not None else None,
            extra={
                "path": scope["path"],
                "error_type": f"{type(cause).__module__}.{type(cause).__qualname__}",
                "cause": _describe(cause),
                "pages_read": self._result_set.page_number,
            },
        )


def _describe(exc: BaseException) -> str:
    """The exception's message; for one raised without any, the first line of its class's docs."""
    if message := str(exc):
        return message
    doc = (type(exc).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else type(exc).__name__


def _budget_spent() -> bool:
    try:
        budget_left()
    except BudgetExceeded:
        return True
    return False


def _cause(exc: BaseException) -> BaseException:
    """The failure itself: Litestar sends the body in a task group, which wraps it in a group."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
