"""Opening and closing: nesting order, idempotence, promptness, use after close."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from cqlstar.aiocassandra import AsyncCluster, SessionClosedError, StreamConfig

pytestmark = pytest.mark.integration


def _record(events: list[str], name: str, obj: Any, method: str) -> None:
    """Log `name` to `events` when obj.method is called (then call the real one)."""
    real = getattr(obj, method)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        events.append(name)
        return real(*args, **kwargs)

    setattr(obj, method, wrapper)


async def test_nested_contexts_close_innermost_first(
    aio_target: tuple[list[str], int], aio_keyspace: str, small_table: str
) -> None:
    hosts, port = aio_target
    events: list[str] = []
    async with AsyncCluster(hosts, port=port) as cluster:
        _record(events, "cluster", cluster, "shutdown")
        async with await cluster.connect(aio_keyspace) as session:
            _record(events, "session", session, "close")
            async with await session.execute_stream(
                "SELECT c FROM small WHERE k = 1", config=StreamConfig(fetch_size=50)
            ) as stream:
                _record(events, "stream", stream, "cancel")
                assert (await stream.__anext__()).c == 0
            assert stream.is_closed
            assert not session.is_closed
        assert session.is_closed
        assert not cluster.is_closed
    assert cluster.is_closed
    assert events == ["stream", "session", "cluster"]


async def test_close_is_idempotent_prompt_and_final(
    aio_target: tuple[list[str], int], aio_keyspace: str, small_table: str
) -> None:
    hosts, port = aio_target
    cluster = AsyncCluster(hosts, port=port)
    session = await cluster.connect(aio_keyspace)
    other = await cluster.connect(aio_keyspace)
    stream = await other.execute_stream(
        "SELECT c FROM small WHERE k = 1", config=StreamConfig(fetch_size=10)
    )

    started = time.perf_counter()
    await asyncio.gather(session.close(), session.close())
    await session.close()
    assert time.perf_counter() - started < 1.0
    assert session.is_closed
    with pytest.raises(SessionClosedError):
        await session.execute("SELECT c FROM small WHERE k = 1")
    with pytest.raises(SessionClosedError):
        await session.prepare("SELECT c FROM small WHERE k = ?")
    with pytest.raises(SessionClosedError):
        await session.execute_stream("SELECT c FROM small")

    started = time.perf_counter()
    await asyncio.gather(cluster.shutdown(), cluster.shutdown())
    await cluster.shutdown()
    assert time.perf_counter() - started < 1.0
    # Shutting the cluster down closes its sessions and their streams.
    assert other.is_closed
    assert stream.is_closed
    assert [row async for row in stream] == []
    await other.close()  # after the cluster: still fine
    with pytest.raises(SessionClosedError):
        await cluster.connect()


async def test_register_user_type(aio_session: Any, aio_cluster: AsyncCluster) -> None:
    keyspace = aio_session.keyspace
    await aio_session.execute("CREATE TYPE IF NOT EXISTS address (street text, zip int)")
    await aio_session.execute(
        "CREATE TABLE IF NOT EXISTS people (id int PRIMARY KEY, home frozen<address>)"
    )

    class Address:
        def __init__(self, street: str, zip: int) -> None:  # the UDT's fields
            self.street = street
            self.zip = zip

    # The driver learns about the new type from its schema refresh after the DDL.
    for _ in range(50):
        if "address" in aio_cluster.metadata.keyspaces[keyspace].user_types:
            break
        await asyncio.sleep(0.05)
    aio_cluster.register_user_type(keyspace, "address", Address)
    await aio_session.execute(
        "INSERT INTO people (id, home) VALUES (%s, %s)", (1, Address("Main St", 12345))
    )
    home = (await aio_session.execute("SELECT home FROM people WHERE id = 1")).one().home
    assert isinstance(home, Address)
    assert (home.street, home.zip) == ("Main St", 12345)


async def test_a_cancelled_connect_leaks_no_session(
    aio_target: tuple[list[str], int], aio_keyspace: str
) -> None:
    hosts, port = aio_target
    cluster = AsyncCluster(hosts, port=port)
    driver_cluster = cluster.driver_cluster
    connecting = threading.Event()
    made: list[Any] = []
    real_connect = driver_cluster.connect

    def recording_connect(*args: Any, **kwargs: Any) -> Any:
        connecting.set()
        made.append(real_connect(*args, **kwargs))
        return made[-1]

    driver_cluster.connect = recording_connect
    task = asyncio.create_task(cluster.connect(aio_keyspace))
    # Cancel only once the driver's connect is running in the cluster's thread.
    assert await asyncio.to_thread(connecting.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await cluster.shutdown()  # queued behind the connect in the cluster's one thread
    # The abandoned connect did make a session, and it was shut down, not leaked.
    assert len(made) == 1
    assert made[0].is_shutdown


async def test_the_default_profile_is_in_use(aio_session: Any, small_table: str) -> None:
    from cqlstar.aiocassandra import IdempotencyAwareRetryPolicy

    rs = await aio_session.execute("SELECT c FROM small WHERE k = 2")
    assert isinstance(rs.response_future._retry_policy, IdempotencyAwareRetryPolicy)
    assert type(rs.one()).__name__ == "Row"
