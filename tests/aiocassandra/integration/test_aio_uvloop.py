"""The layer on uvloop, the loop the service runs on (the rest of the suite uses asyncio's)."""

from __future__ import annotations

import asyncio

import pytest

from cqlstar.aiocassandra import AsyncCluster, StreamConfig

pytestmark = pytest.mark.integration


async def _exercise(hosts: list[str], port: int, keyspace: str) -> tuple[int, int, int]:
    async with AsyncCluster(hosts, port=port) as cluster:
        session = await cluster.connect(keyspace)
        statement = await session.prepare("SELECT c, v FROM small WHERE k = ? AND c = ?")
        results = await asyncio.gather(
            *(session.execute(statement, (1, c % 250)) for c in range(500))
        )
        matched = sum(1 for c, rs in enumerate(results) if rs.one().c == c % 250)
        rs = await session.execute("SELECT c FROM small WHERE k = 1", fetch_size=30)
        paged = len(await rs.all())
        async with await session.execute_stream(
            "SELECT c FROM small WHERE k = 1", config=StreamConfig(fetch_size=40)
        ) as stream:
            streamed = len([row async for row in stream])
        return matched, paged, streamed


async def test_on_uvloop(
    aio_target: tuple[list[str], int], aio_keyspace: str, small_table: str
) -> None:
    uvloop = pytest.importorskip("uvloop")
    hosts, port = aio_target
    # In its own thread, so the suite's loop is left alone.
    outcome = await asyncio.to_thread(uvloop.run, _exercise(hosts, port, aio_keyspace))
    assert outcome == (500, 250, 250)
