"""Response bodies written while Cassandra is still being read: `GET /users/stream`.

Each Cassandra page becomes one chunk (encoding and sending row by row would cost a send per row), so
the server holds at most the page being encoded plus what the driver prefetches, whatever the total.
The encoder and its output buffer are reused from page to page.

The generators own the Cassandra stream: it is entered with `async with`, so when the body ends, fails,
or is abandoned because the client went away (Litestar cancels the task, or the generator is closed),
the read is cancelled and no further pages are requested.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from cqlstar.aiocassandra import AsyncStreamingResultSet
from cqlstar.users.repository import users_from_rows
from cqlstar.users.schemas import StreamMetadata

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
            if not rows:  # the layer skips empty pages; an empty one here would break the splice
                continue
            # Encode the page as one JSON array, "[u1,u2,...]", then splice it into the open array:
            # drop the closing bracket, and turn the opening one into the separator from the previous
            # page (or drop it on the first page).
            _encoder.encode_into(users_from_rows(rows), buffer)
            del buffer[-1]
            if total_returned:
                buffer[0] = _COMMA
            else:
                del buffer[0]
            total_returned += len(rows)
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
