"""Two service processes sharing one Redis: the per-principal connection limit holds across both
under concurrent connects, a dead process's connections stop counting within a minute, and every
change reaches every reader on both processes exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from served import ServedApp, serve_app, stop_app
from ws_client import WsClient, ws_connect

pytestmark = pytest.mark.integration

LIMIT = 5


def new_user() -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    return {"name": f"Procs {tag}", "email": f"procs.{tag}@example.com", "age": 44}


async def admitted(client: WsClient) -> bool:
    """Whether the server kept this connection (a request is answered) or closed it with 1008."""
    try:
        answer = await client.request(1, {"limit": 1}, timeout=10)
    except ConnectionError:
        assert client.close_code == 1008
        return False
    assert answer["status_code"] == 0
    return True


@contextlib.asynccontextmanager
async def connections(apps: list[ServedApp], token: str) -> AsyncIterator[list[WsClient]]:
    """One connection per app in `apps`, all opened at once."""
    async with contextlib.AsyncExitStack() as stack:
        clients = await asyncio.gather(
            *(stack.enter_async_context(ws_connect(app.base_url, token=token)) for app in apps)
        )
        yield list(clients)


async def test_connection_limit_across_two_processes(
    auth_apps: tuple[ServedApp, ServedApp], tokens: dict[str, str]
) -> None:
    first, second = auth_apps
    spread = [first, second] * 6  # 12 concurrent connects, half on each process
    async with connections(spread, tokens["alice"]) as clients:
        results = await asyncio.gather(*(admitted(client) for client in clients))
        assert sum(results) == LIMIT
        assert [c.close_code for c, ok in zip(clients, results, strict=True) if not ok] == [
            1008
        ] * (len(spread) - LIMIT)
        # Another principal has its own allowance meanwhile.
        async with ws_connect(second.base_url, token=tokens["bob"]) as other:
            assert await admitted(other)
    # All closed: their slots are given back, on both processes.
    async with connections([second, first] * 3, tokens["alice"]) as clients:
        assert sum(await asyncio.gather(*(admitted(client) for client in clients))) == LIMIT


async def test_broadcast_reaches_readers_on_both_processes_exactly_once(
    auth_apps: tuple[ServedApp, ServedApp], tokens: dict[str, str]
) -> None:
    first, second = auth_apps
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    async with (
        connections([first, first, second, second], tokens["bob"]) as readers,
        ws_connect(second.base_url, token=tokens["alice"]) as writer,
        httpx.AsyncClient(base_url=first.base_url, headers=alice) as http_first,
        httpx.AsyncClient(base_url=second.base_url, headers=alice) as http_second,
    ):
        # A change over HTTP on the first process, and over WebSocket on the second.
        by_http = (await http_first.post("/users", json=new_user())).json()
        by_ws = (await writer.request(3, new_user()))["data"]
        patched = (await http_second.patch(f"/users/{by_ws['id']}", json={"age": 45})).json()
        assert (await writer.request(6, {"id": by_http["id"]}))["status_code"] == 0
        expected = [
            ("created", by_http["id"]),
            ("created", by_ws["id"]),
            ("updated", by_ws["id"]),
            ("deleted", by_http["id"]),
        ]
        mine = {by_http["id"], by_ws["id"]}
        for reader in readers:
            seen: list[tuple[str, str]] = []
            deadline = time.monotonic() + 10
            while len(seen) < len(expected) and time.monotonic() < deadline:
                event = await asyncio.wait_for(reader.events.get(), 10)
                if event["data"]["user_id"] in mine:
                    seen.append((event["data"]["event"], event["data"]["user_id"]))
            assert seen == expected
            if ("updated", by_ws["id"]) in seen:
                assert patched["age"] == 45
            # Nothing twice: no further events about these users arrive.
            await asyncio.sleep(0.5)
            while not reader.events.empty():
                assert reader.events.get_nowait()["data"]["user_id"] not in mine


def _kill_process_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the service and its worker: no clean-up of any kind runs."""
    children = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    os.kill(process.pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
    process.wait()


async def test_a_dead_process_stops_counting_within_a_minute(
    auth_apps: tuple[ServedApp, ServedApp],
    ws_auth_env: dict[str, str],
    tokens: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    first, _ = auth_apps
    doomed = serve_app(ws_auth_env, tmp_path_factory.mktemp("ws-doomed") / "server.log")
    try:
        async with connections([doomed] * LIMIT, tokens["alice"]) as clients:
            assert all(await asyncio.gather(*(admitted(client) for client in clients)))
            killed_at = time.monotonic()
            _kill_process_tree(doomed.process)
            # The dead process's slots still count for now.
            async with ws_connect(first.base_url, token=tokens["alice"]) as refused:
                assert not await admitted(refused)
            while True:
                async with ws_connect(first.base_url, token=tokens["alice"]) as retry:
                    if await admitted(retry):
                        break
                assert time.monotonic() - killed_at < 60, "dead slots still counted after 60 s"
                await asyncio.sleep(3)
            assert time.monotonic() - killed_at < 60
    except websockets.ConnectionClosed:
        pass
    finally:
        if doomed.process.poll() is None:
            stop_app(doomed)
