"""Whatever a client sends gets one answer and the connection stays open; only a frame over 64 KiB
closes it (1009)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from served import ServedApp
from ws_client import WsClient, ws_connect

pytestmark = pytest.mark.integration

REQ_ID = str(uuid.uuid4())


async def still_open(ws: WsClient) -> None:
    answer = await ws.request(1, {"limit": 1})
    assert answer["status_code"] == 0


@pytest.mark.parametrize(
    ("frame", "pkg_id", "req_id", "msg"),
    [
        ("not json", None, None, "Not valid JSON"),
        ("{", None, None, "Not valid JSON"),
        ("", None, None, "Not valid JSON"),
        ("[1, 2]", None, None, "A message must be a JSON object"),
        ("42", None, None, "A message must be a JSON object"),
        ("null", None, None, "A message must be a JSON object"),
        (b"\x00\x01binary", None, None, "Binary frames are not accepted: send JSON text"),
        (json.dumps({"pkg_id": 1, "req_id": REQ_ID}).encode(), None, None, "Binary frames"),
        (json.dumps({"pkg_id": 99, "req_id": REQ_ID}), 99, REQ_ID, "Unknown pkg_id 99"),
        (json.dumps({"pkg_id": 0, "req_id": REQ_ID}), 0, REQ_ID, "Unknown pkg_id 0"),
        (json.dumps({"pkg_id": "4", "req_id": REQ_ID}), None, REQ_ID, "pkg_id:"),
        (json.dumps({"pkg_id": 1.5, "req_id": REQ_ID}), None, REQ_ID, "pkg_id:"),
        (json.dumps({"req_id": REQ_ID}), None, REQ_ID, "missing required field `pkg_id`"),
        (json.dumps({"pkg_id": 4, "data": {"id": REQ_ID}}), 4, None, "req_id"),
        (json.dumps({"pkg_id": 4, "req_id": "abc", "data": {"id": REQ_ID}}), 4, None, "req_id:"),
        (json.dumps({"pkg_id": 4, "req_id": 7, "data": {"id": REQ_ID}}), 4, None, "req_id:"),
        (
            json.dumps({"pkg_id": 4, "req_id": REQ_ID.replace("-", ""), "data": {"id": REQ_ID}}),
            4,
            None,
            "req_id:",
        ),
        (json.dumps({"pkg_id": 4, "req_id": REQ_ID}), 4, REQ_ID, "data"),
        (json.dumps({"pkg_id": 4, "req_id": REQ_ID, "data": []}), 4, REQ_ID, "data:"),
        (json.dumps({"pkg_id": 4, "req_id": REQ_ID, "data": {"id": 5}}), 4, REQ_ID, "data.id:"),
        (json.dumps({"pkg_id": 3, "req_id": REQ_ID, "data": {"name": "x"}}), 3, REQ_ID, "data"),
        (json.dumps({"type": "dance"}), None, None, "type:"),
        (json.dumps({"type": "auth"}), None, None, "token"),
        ('{"a":' * 10_000 + "1" + "}" * 10_000, None, None, "JSON nests too deeply"),
    ],
)
async def test_bad_frames_are_answered_with_status_2(
    live_app: ServedApp, frame: str | bytes, pkg_id: Any, req_id: Any, msg: str
) -> None:
    async with ws_connect(live_app.base_url) as ws:
        await ws.send_raw(frame)
        answer = await ws.next_other()
        assert answer["status_code"] == 2
        assert answer["pkg_id"] == pkg_id
        assert answer["req_id"] == req_id
        assert msg in answer["msg"]
        assert answer["data"] is None
        await still_open(ws)


async def test_many_bad_frames_then_a_good_request(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        for frame in ("x", "[]", '{"pkg_id": 9}', b"\xff"):
            await ws.send_raw(frame)
        answers = [await ws.next_other() for _ in range(4)]
        assert [a["status_code"] for a in answers] == [2, 2, 2, 2]
        await still_open(ws)


async def test_a_frame_of_64_kib_is_read(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        frame = json.dumps({"pkg_id": 1, "req_id": REQ_ID, "pad": ""})
        frame = frame.replace('""', '"' + "x" * (64 * 1024 - len(frame)) + '"')
        assert len(frame.encode()) == 64 * 1024
        await ws.send_raw(frame)
        answer = await ws.next_other()
        assert answer["status_code"] == 0
        assert answer["req_id"] == REQ_ID
        await still_open(ws)


@pytest.mark.parametrize("binary", [False, True])
async def test_a_frame_over_64_kib_closes_with_1009(live_app: ServedApp, binary: bool) -> None:
    async with ws_connect(live_app.base_url, max_size=None) as ws:
        frame = "x" * (64 * 1024 + 1)
        await ws.send_raw(frame.encode() if binary else frame)
        assert await ws.wait_closed() == 1009


async def test_multibyte_text_over_64_kib_in_utf8_closes(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        # 22,000 characters, 66,000 bytes in UTF-8.
        await ws.send_raw("€" * 22_000)
        assert await ws.wait_closed() == 1009
