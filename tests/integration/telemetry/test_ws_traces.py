"""The spans of WebSocket requests: one SERVER span per request named `WS <PACKAGE>`, its Cassandra
queries under it, and a PRODUCER span for each broadcast publish (in-process app, real Cassandra)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

pytestmark = pytest.mark.integration

Spans = Callable[[], list[ReadableSpan]]


def frame(pkg_id: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"pkg_id": pkg_id, "req_id": str(uuid.uuid4()), "data": data}


def children_of(parent: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def converse(app: Litestar, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drive `/web` through the ASGI interface: send `frames` one after another, each after the
    previous one's answer, and return the answers."""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await incoming.put({"type": "websocket.connect"})
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/web",
        "raw_path": b"/web",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "subprotocols": [],
    }
    task = asyncio.create_task(app(scope, incoming.get, outgoing.put))  # type: ignore[arg-type]
    assert (await asyncio.wait_for(outgoing.get(), 10))["type"] == "websocket.accept"
    answers = []
    for frame in frames:
        await incoming.put({"type": "websocket.receive", "text": json.dumps(frame)})
        while True:
            message = await asyncio.wait_for(outgoing.get(), 20)
            answer = json.loads(message["text"])
            if answer.get("req_id") == frame["req_id"] or answer.get("pkg_id") == frame["pkg_id"]:
                answers.append(answer)
                break
    await incoming.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 10)
    return answers


async def test_each_request_is_one_span_with_its_queries_under_it(
    traced_client: AsyncTestClient[Litestar], spans: Spans, marked_user: dict[str, Any]
) -> None:
    app = traced_client.app

    async def run() -> list[dict[str, Any]]:
        created = (await converse(app, [frame(3, marked_user)]))[0]
        return [
            created,
            *await converse(
                app, [frame(4, {"id": created["data"]["id"]}), frame(4, {"id": "nope"})]
            ),
        ]

    created, got, bad = await asyncio.to_thread(traced_client.blocking_portal.call, run)
    assert created["status_code"] == 0
    assert got["status_code"] == 0
    assert bad["status_code"] == 2
    await asyncio.sleep(0.2)

    finished = spans()
    servers = [s for s in finished if s.kind is SpanKind.SERVER and s.name.startswith("WS")]
    assert [s.name for s in servers] == ["WS CREATE_USER", "WS GET_USER", "WS INVALID"]
    create, get, invalid = servers
    for span, status in ((create, 0), (get, 0), (invalid, 2)):
        assert (span.attributes or {})["cqlstar.ws.status_code"] == status
    get_queries = children_of(get, finished)
    assert [q.kind for q in get_queries] == [SpanKind.CLIENT]
    assert (get_queries[0].attributes or {})["db.operation.name"] == "SELECT"
    create_children = children_of(create, finished)
    assert any(c.kind is SpanKind.CLIENT for c in create_children)
    publishes = [c for c in create_children if c.kind is SpanKind.PRODUCER]
    assert [p.name for p in publishes] == ["publish users"]
    assert children_of(invalid, finished) == []
    # No user data in any of them.
    for span in servers + create_children + get_queries:
        text = json.dumps({k: str(v) for k, v in (span.attributes or {}).items()})
        assert marked_user["email"] not in text
        assert marked_user["name"] not in text
