"""`GET /users/stream` owns the Cassandra stream it opens: it is cancelled when the response is over,
also when the body was never read (client gone before it, or sending the status line failed).

The real route runs over a stand-in repository, driven as a server would drive it, so each test
chooses exactly when the client goes away.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cassandra import OperationTimedOut
from litestar import Litestar
from litestar.di import Provide
from litestar.exceptions import LitestarException
from opentelemetry.trace import NoOpTracer

from asgi_client import ScriptedClient, get_scope
from cqlstar.services import Services
from cqlstar.settings import Settings
from cqlstar.telemetry import Telemetry
from cqlstar.users import UserController
from cqlstar.users.repository import UserRepository
from cqlstar.users.streaming import StreamSlots
from cqlstar.web.dependencies import provide_settings
from cqlstar.web.errors import EXCEPTION_HANDLERS

NDJSON = "application/x-ndjson"
ROW = ("00000000-0000-0000-0000-000000000001", "Ada", "ada@example.com", 36, 0, 0)


class FakeStream:
    """Pages of one row each, the way `AsyncStreamingResultSet` hands them over."""

    def __init__(self, pages: int, *, fail_at: int | None = None) -> None:
        self._pages = pages
        self._fail_at = fail_at
        self.page_number = 0
        self.pages_requested = 0
        self.cancel_calls = 0

    @property
    def cancelled(self) -> bool:
        return self.cancel_calls > 0

    async def __aenter__(self) -> FakeStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()

    def cancel(self) -> None:
        self.cancel_calls += 1

    async def pages(self) -> AsyncIterator[list[tuple[Any, ...]]]:
        for _ in range(self._pages):
            if self.cancelled:
                return
            self.pages_requested += 1
            if self.pages_requested == self._fail_at:
                raise OperationTimedOut("page fetch timed out")
            self.page_number += 1
            yield [ROW]


class FakeRepository(UserRepository):
    """Only `open_stream`, over FakeStreams. A subclass, since the handler's signature checks the type."""

    def __init__(self) -> None:
        self.opened: list[FakeStream] = []
        self.fail_at: int | None = None

    async def open_stream(  # type: ignore[override]
        self, *, limit: int, fetch_size: int, min_age: int | None
    ) -> FakeStream:
        stream = FakeStream(pages=3, fail_at=self.fail_at)
        self.opened.append(stream)
        return stream


class RepositoryHolder:
    def __init__(self, repository: FakeRepository) -> None:
        self.current = repository


@pytest.fixture
def repository() -> FakeRepository:
    return FakeRepository()


@pytest.fixture
def slots() -> StreamSlots:
    return StreamSlots(4)


@pytest.fixture
def app(repository: FakeRepository, slots: StreamSlots) -> Litestar:
    return Litestar(
        route_handlers=[UserController],
        state=Services(
            settings=Settings(),
            cassandra=None,  # type: ignore[arg-type]  # these routes never reach it
            user_repository=RepositoryHolder(repository),  # type: ignore[arg-type]
            telemetry=Telemetry(tracer=NoOpTracer()),
            redis=None,
            rate_limiter=None,  # type: ignore[arg-type]  # no limits in front of these routes
            stream_slots=slots,
        ).state(),
        dependencies={"settings": Provide(provide_settings, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
    )


async def get_stream(app: Litestar, client: ScriptedClient, *, accept: str) -> None:
    scope = get_scope("/users/stream", query=b"fetch_size=10", accept=accept)
    await app(scope, client.receive, client.send)  # type: ignore[arg-type]


@pytest.mark.parametrize("accept", ["application/json", NDJSON])
async def test_a_failed_status_line_cancels_the_unread_stream(
    app: Litestar, repository: FakeRepository, slots: StreamSlots, accept: str
) -> None:
    client = ScriptedClient(leaves="at-status-line")

    # Litestar reports the failed send as an exception caught after the response started.
    with pytest.raises(LitestarException):
        await get_stream(app, client, accept=accept)

    [stream] = repository.opened
    # The first page is read before the status line; the rest of the body never started...
    assert stream.pages_requested == 1
    assert stream.cancelled  # ...and the stream was closed all the same
    assert slots.in_use == 0


@pytest.mark.parametrize("accept", ["application/json", NDJSON])
async def test_a_request_cancelled_before_the_body_cancels_the_unread_stream(
    app: Litestar, repository: FakeRepository, slots: StreamSlots, accept: str
) -> None:
    client = ScriptedClient(leaves="during-status-line")
    request = asyncio.create_task(get_stream(app, client, accept=accept))
    await client.stuck_sending.wait()

    request.cancel()  # what a server does with a request whose client has gone
    with pytest.raises(asyncio.CancelledError):
        await request

    [stream] = repository.opened
    assert stream.pages_requested == 1  # the first, read before the status line
    assert stream.cancelled
    assert slots.in_use == 0


@pytest.mark.parametrize("accept", ["application/json", NDJSON])
async def test_a_client_gone_while_a_chunk_is_sent_cancels_the_stream_at_once(
    app: Litestar, repository: FakeRepository, slots: StreamSlots, accept: str
) -> None:
    client = ScriptedClient(leaves="during-body")

    await get_stream(app, client, accept=accept)

    [stream] = repository.opened
    # The body was abandoned at a `yield`, where only its eventual finalisation would close it.
    assert stream.pages_requested < 3
    assert stream.cancelled
    assert slots.in_use == 0


@pytest.mark.parametrize(
    ("accept", "expected_body"),
    [
        ("application/json", b'"metadata":{"total_returned":3,"pages_fetched":3'),
        (NDJSON, b'"name":"Ada"'),
    ],
)
async def test_a_complete_response_reads_every_page_then_cancels_the_stream(
    app: Litestar,
    repository: FakeRepository,
    slots: StreamSlots,
    accept: str,
    expected_body: bytes,
) -> None:
    client = ScriptedClient()

    await get_stream(app, client, accept=accept)

    assert client.status == 200
    assert expected_body in client.body
    [stream] = repository.opened
    assert stream.pages_requested == 3
    assert stream.cancelled
    assert slots.in_use == 0


@pytest.mark.parametrize("accept", ["application/json", NDJSON])
async def test_a_failure_after_the_status_line_is_logged_and_cuts_the_body_short(
    app: Litestar,
    repository: FakeRepository,
    slots: StreamSlots,
    accept: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    repository.fail_at = 2
    client = ScriptedClient()

    with caplog.at_level(logging.ERROR, logger="cqlstar.users.streaming"):
        await get_stream(app, client, accept=accept)  # no exception reaches the server

    assert client.status == 200
    bodies = [m for m in client.messages if m["type"] == "http.response.body"]
    assert bodies  # the first page went out...
    assert all(m.get("more_body") for m in bodies)  # ...and the body was never said complete
    [record] = [r for r in caplog.records if r.getMessage() == "stream ended early"]
    assert record.error_type == "cassandra.OperationTimedOut"  # type: ignore[attr-defined]
    assert "page fetch timed out" in record.cause  # type: ignore[attr-defined]
    assert isinstance(record.exc_info and record.exc_info[1], OperationTimedOut)
    [stream] = repository.opened
    assert stream.cancelled
    assert slots.in_use == 0


@pytest.mark.parametrize("accept", ["application/json", NDJSON])
async def test_a_failure_on_the_first_page_is_answered_before_any_status_line(
    app: Litestar, repository: FakeRepository, slots: StreamSlots, accept: str
) -> None:
    repository.fail_at = 1
    client = ScriptedClient()

    await get_stream(app, client, accept=accept)

    # The service's error contract, as for any request: the timeout's 504 and its detail.
    assert client.status == 504
    assert json.loads(client.body) == {"detail": "Gateway Timeout"}
    [stream] = repository.opened
    assert stream.cancelled
    assert slots.in_use == 0


async def test_streams_over_the_cap_are_refused_with_retry_after(
    app: Litestar, repository: FakeRepository, slots: StreamSlots
) -> None:
    held = [slots.take() for _ in range(slots.capacity)]
    client = ScriptedClient()

    await get_stream(app, client, accept=NDJSON)

    assert client.status == 503
    start = next(m for m in client.messages if m["type"] == "http.response.start")
    assert (b"retry-after", b"2") in [(k.lower(), v) for k, v in start["headers"]]
    assert repository.opened == []  # refused before any query
    for slot in held:
        slot.release()
        slot.release()  # idempotent
    assert slots.in_use == 0
