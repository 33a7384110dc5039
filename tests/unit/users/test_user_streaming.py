"""The streamed bodies, over a stand-in for the layer's streaming result: one chunk per page, valid
JSON however the pages fall, and the Cassandra stream closed however the body ends."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cqlstar.users.streaming import PIECE_BYTES, json_document, ndjson_lines

# 2026-11-22T10:00:00.123Z, as the repository's SELECTs return timestamps: epoch milliseconds.
STAMP = 1795341600123


def row(n: int) -> tuple[Any, ...]:
    return (str(uuid.UUID(int=n)), f"User {n}", f"user{n}@example.com", n % 151, STAMP, STAMP)


class FakeStream:
    """Pages of rows, the way `AsyncStreamingResultSet` hands them over."""

    def __init__(self, pages: list[list[tuple[Any, ...]]], *, block_after: int | None = None):
        self._pages = pages
        self._block_after = block_after
        self.page_number = 0
        self.pages_requested = 0
        self.cancelled = False
        self.waiting_for_page = asyncio.Event()

    async def __aenter__(self) -> FakeStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()

    def cancel(self) -> None:
        self.cancelled = True

    async def pages(self) -> AsyncIterator[list[tuple[Any, ...]]]:
        for page in self._pages:
            if self.cancelled:
                return
            if self._block_after is not None and self.pages_requested == self._block_after:
                self.waiting_for_page.set()
                await asyncio.Event().wait()  # a page that never arrives
            self.pages_requested += 1
            self.page_number += 1
            yield page


def pages_of(sizes: list[int]) -> list[list[tuple[Any, ...]]]:
    pages, n = [], 0
    for size in sizes:
        pages.append([row(n + i) for i in range(size)])
        n += size
    return pages


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


@pytest.mark.parametrize("sizes", [[], [1], [3], [3, 3, 1], [2, 0, 2]])
async def test_json_document_is_valid_with_metadata_last(sizes: list[int]) -> None:
    stream = FakeStream(pages_of(sizes))
    body = b"".join(await collect(json_document(stream, fetch_size=3)))  # type: ignore[arg-type]

    document = json.loads(body)
    assert list(document) == ["users", "metadata"]
    assert [user["name"] for user in document["users"]] == [f"User {n}" for n in range(sum(sizes))]
    assert document["metadata"] == {
        "total_returned": sum(sizes),
        "pages_fetched": len(sizes),
        "fetch_size": 3,
        "streaming_enabled": True,
    }
    if sum(sizes):
        assert document["users"][0] == {
            "id": "00000000-0000-0000-0000-000000000000",
            "name": "User 0",
            "email": "user0@example.com",
            "age": 0,
            "created_at": "2026-11-22T10:00:00.123Z",
            "updated_at": "2026-11-22T10:00:00.123Z",
        }
    assert stream.cancelled  # closed at the end, too


async def test_json_document_sends_one_chunk_per_page_the_opening_with_the_first() -> None:
    chunks = await collect(json_document(FakeStream(pages_of([4, 4, 2])), fetch_size=4))  # type: ignore[arg-type]
    # Nothing before the first page is encoded: the opening travels with it (a failure there is
    # still answerable with an error status). Then one chunk per page, the closing with the metadata.
    assert len(chunks) == 4
    assert chunks[0].startswith(b'{"users":[{"id"')
    assert chunks[0].count(b'"id"') == 4
    assert chunks[1].startswith(b",{")
    assert chunks[3].startswith(b'],"metadata":')


async def test_ndjson_is_one_line_per_user_in_one_chunk_per_page() -> None:
    chunks = await collect(ndjson_lines(FakeStream(pages_of([3, 2]))))  # type: ignore[arg-type]
    assert len(chunks) == 2
    lines = b"".join(chunks).decode().splitlines()
    assert [json.loads(line)["name"] for line in lines] == [f"User {n}" for n in range(5)]


@pytest.mark.parametrize(
    "make_body",
    [lambda stream: json_document(stream, fetch_size=1000), ndjson_lines],
    ids=["json", "ndjson"],
)
async def test_a_large_page_goes_out_in_pieces_of_at_most_piece_bytes(make_body: Any) -> None:
    """The server queues a few messages per response whatever their size: pieces keep what it holds
    for a client that does not read to a few pieces rather than a few pages."""
    sizes = [1000, 1000, 10]
    chunks = await collect(make_body(FakeStream(pages_of(sizes))))
    body = b"".join(chunks)
    assert len(body) > 2 * PIECE_BYTES
    assert all(len(chunk) <= PIECE_BYTES for chunk in chunks)
    assert len(chunks) >= len(body) // PIECE_BYTES
    users = (
        json.loads(body)["users"]
        if body.startswith(b'{"users":')
        else [json.loads(line) for line in body.decode().splitlines()]
    )
    names = [user["name"] for user in users]
    assert names == [f"User {n}" for n in range(sum(sizes))]


@pytest.mark.parametrize(
    "make_body",
    [
        lambda stream: json_document(stream, fetch_size=2),
        ndjson_lines,
    ],
    ids=["json", "ndjson"],
)
async def test_closing_the_body_early_cancels_the_stream(make_body: Any) -> None:
    stream = FakeStream(pages_of([2] * 100))
    body = make_body(stream)
    await anext(body)
    await anext(body)
    await body.aclose()  # what happens to an abandoned body when the client has gone

    assert stream.cancelled
    assert stream.pages_requested < 100


@pytest.mark.parametrize(
    "make_body",
    [
        lambda stream: json_document(stream, fetch_size=2),
        ndjson_lines,
    ],
    ids=["json", "ndjson"],
)
async def test_cancelling_the_task_waiting_for_a_page_cancels_the_stream(make_body: Any) -> None:
    stream = FakeStream(pages_of([2] * 100), block_after=1)
    body = make_body(stream)

    async def consume() -> None:
        async for _ in body:
            pass

    task = asyncio.create_task(consume())
    await stream.waiting_for_page.wait()
    task.cancel()  # what Litestar does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await task

    assert stream.cancelled
    assert stream.pages_requested == 1
