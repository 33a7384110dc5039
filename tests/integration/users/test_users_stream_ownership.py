"""`GET /users/stream` closes its Cassandra stream when the response is over, even when the body was
never read: the real route and the real result set, with the app in this process so the test can hold
the stream and drive the exchange the way a server would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from asgi_client import ScriptedClient, get_scope
from cqlstar.aiocassandra import AsyncStreamingResultSet
from cqlstar.app import create_app
from cqlstar.services import Services
from cqlstar.settings import Settings
from cqlstar.users.repository import UserRepository

pytestmark = pytest.mark.integration

# Inside the stream tests' ages (see conftest); more rows than one page, so a page is prefetching.
OWNERSHIP_AGE = 145
FETCH_SIZE = 10


@pytest.fixture(scope="module")
async def app(app_env: dict[str, str]) -> AsyncIterator[Litestar]:
    """The whole service in this process, connected to the run's keyspace.

    Its lifespan runs in a task of its own: it holds a task group, which must be left by the task
    that entered it, and fixture set-up and teardown may run in different tasks.
    """
    app = create_app(Settings.from_env(app_env))
    started, stopping = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stopping.wait()

    lifespan = asyncio.create_task(run_lifespan())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait({lifespan, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if lifespan.done():  # start-up failed: show why
        lifespan.result()
    try:
        assert await Services.of(app.state).cassandra.wait_connected(60), (
            "Cassandra did not connect"
        )
        yield app
    finally:
        stopping.set()
        await lifespan


@pytest.fixture
def opened_streams(monkeypatch: pytest.MonkeyPatch) -> list[AsyncStreamingResultSet]:
    """Every stream the route opens, kept here (which also keeps garbage collection from closing
    them)."""
    opened: list[AsyncStreamingResultSet] = []
    open_stream = UserRepository.open_stream

    async def recording(self: UserRepository, **kwargs: Any) -> AsyncStreamingResultSet:
        stream = await open_stream(self, **kwargs)
        opened.append(stream)
        return stream

    monkeypatch.setattr(UserRepository, "open_stream", recording)
    return opened


@pytest.fixture(scope="module")
async def seeded(app: Litestar) -> None:
    run = uuid.uuid4().hex[:8]
    body = [
        {"name": f"Owner {run}-{n}", "email": f"owner-{run}-{n}@example.com", "age": OWNERSHIP_AGE}
        for n in range(3 * FETCH_SIZE)
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as http:
        response = await http.post("/users/batch", json=body)
    assert response.status_code == 201, response.text


def stream_request(accept: str) -> dict[str, Any]:
    query = f"age_filter={OWNERSHIP_AGE}&fetch_size={FETCH_SIZE}".encode()
    return get_scope("/users/stream", query=query, accept=accept)


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("accept", ["application/json", "application/x-ndjson"])
async def test_a_request_cancelled_before_the_body_closes_the_stream(
    app: Litestar, opened_streams: list[AsyncStreamingResultSet], accept: str
) -> None:
    client = ScriptedClient(leaves="during-status-line")
    request = asyncio.create_task(app(stream_request(accept), client.receive, client.send))  # type: ignore[arg-type]
    await client.stuck_sending.wait()

    request.cancel()  # what a server does with a request whose client has gone
    with pytest.raises(asyncio.CancelledError):
        await request

    [stream] = opened_streams
    # The first page was read and the next one requested when the client left...
    assert (stream.page_number, stream.has_more_pages) == (1, True)
    assert stream.is_closed  # ...and the stream is closed now, not whenever it is collected


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("accept", ["application/json", "application/x-ndjson"])
async def test_a_client_gone_during_the_body_closes_the_stream_at_once(
    app: Litestar, opened_streams: list[AsyncStreamingResultSet], accept: str
) -> None:
    client = ScriptedClient(leaves="during-body")

    await app(stream_request(accept), client.receive, client.send)  # type: ignore[arg-type]

    [stream] = opened_streams
    assert stream.page_number == 1
    assert stream.is_closed
