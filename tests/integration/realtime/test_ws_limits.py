"""The per-principal message rate limit (WS_RATE_LIMIT, 100/minute by default): every frame counts,
before any other check, and a limited request does nothing."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from served import ServedApp
from ws_client import ws_connect

pytestmark = pytest.mark.integration

LIMIT = 100


async def test_the_101st_message_of_a_minute_is_refused_and_does_nothing(
    limited_app: ServedApp,
) -> None:
    async with (
        ws_connect(limited_app.base_url) as ws,
        httpx.AsyncClient(base_url=limited_app.base_url) as http,
    ):
        # Bad frames count as much as good ones.
        for _ in range(LIMIT - 1):
            await ws.send_raw("not json")
        answers = [await ws.next_other() for _ in range(LIMIT - 1)]
        assert {a["status_code"] for a in answers} == {2}
        tag = uuid.uuid4().hex
        last = await ws.request(
            3, {"name": f"Limited {tag}", "email": f"l.{tag}@example.com", "age": 20}
        )
        assert last["status_code"] == 0
        refused_req = str(uuid.uuid4())
        refused = await ws.request(
            3,
            {"name": f"Refused {tag}", "email": f"r.{tag}@example.com", "age": 20},
            req_id=refused_req,
        )
        assert refused == {
            "pkg_id": 3,
            "req_id": refused_req,
            "status_code": 1,
            "data": None,
            "meta": None,
            "msg": "Rate limit exceeded",
        }
        # Invalid and unknown frames are limited too, before they are checked.
        await ws.send_raw(json.dumps({"pkg_id": 99, "req_id": refused_req}))
        limited = await ws.next_other()
        assert limited["status_code"] == 1
        assert limited["msg"] == "Rate limit exceeded"
        assert limited["pkg_id"] == 99
        # The refused create wrote nothing and published nothing.
        listed = await http.get("/users", params={"limit": 100})
        assert all(user["name"] != f"Refused {tag}" for user in listed.json())
        await ws.event_for(last["data"]["id"], "created")
        metrics = (await http.get("/metrics")).json()["websocket"]
        assert metrics["rate_limited"] == 2
        assert metrics["messages"]["RATE_LIMITED"]["1"] == 2
        # Another connection is another principal here (authentication off): its own window.
        async with ws_connect(limited_app.base_url) as other:
            assert (await other.request(1, {"limit": 1}))["status_code"] == 0
