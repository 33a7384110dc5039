"""Dead peers: a client silent for 20 s gets a ping; one that answers nothing for 45 s is closed
with 4003 and freed, while one that answers stays connected."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from served import ServedApp
from ws_client import ws_connect

pytestmark = pytest.mark.integration


async def test_a_silent_peer_is_closed_and_a_live_one_is_kept(
    live_app: ServedApp, http: httpx.AsyncClient
) -> None:
    async with (
        ws_connect(live_app.base_url, answer_pings=False) as silent,
        ws_connect(live_app.base_url, answer_pings=True) as alive,
    ):
        started = time.monotonic()
        before = (await http.get("/metrics")).json()["websocket"]
        code = await silent.wait_closed(timeout=60)
        elapsed = time.monotonic() - started
        assert code == 4003
        assert 44 <= elapsed < 50
        assert silent.pings == 1
        assert alive.pings >= 1
        assert alive.close_code is None
        assert (await alive.request(1, {"limit": 1}))["status_code"] == 0
        await asyncio.sleep(0.5)
        after = (await http.get("/metrics")).json()["websocket"]
        assert after["closes"].get("4003", 0) > before["closes"].get("4003", 0)
        # Freed: the silent connection no longer counts as open.
        assert after["connections_open"] <= before["connections_open"] - 1
