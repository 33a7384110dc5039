"""The request body guard: a deadline for the body, an early end is the client's error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cqlstar.web.request_body import (
    IncompleteRequestBody,
    RequestBodyMiddleware,
    RequestBodyTimeout,
)


def scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "headers": list(headers)}


def scripted(*messages: dict[str, Any], delay: float = 0.0) -> Any:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(delay)
        if not pending:
            await asyncio.Event().wait()
        return pending.pop(0)

    return receive


async def read_body(middleware_timeout: float, request_scope: dict[str, Any], receive: Any) -> Any:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(receive)
        while True:
            message = await receive()
            if not message.get("more_body"):
                return

    await RequestBodyMiddleware(app, timeout_s=middleware_timeout)(request_scope, receive, None)  # type: ignore[arg-type]
    return seen[0]


async def test_a_complete_body_passes() -> None:
    receive = scripted(
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.request", "body": b"}", "more_body": False},
    )
    await read_body(1.0, scope((b"content-length", b"2")), receive)


async def test_a_body_that_ends_early_is_the_clients_error() -> None:
    receive = scripted(
        {"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(IncompleteRequestBody) as caught:
        await read_body(1.0, scope((b"transfer-encoding", b"chunked")), receive)
    assert caught.value.status_code == 400


async def test_a_body_slower_than_the_deadline_is_408_and_closes() -> None:
    receive = scripted(
        *[{"type": "http.request", "body": b"x", "more_body": True}] * 50, delay=0.05
    )
    with pytest.raises(RequestBodyTimeout) as caught:
        await read_body(0.3, scope((b"content-length", b"100")), receive)
    assert caught.value.status_code == 408
    assert caught.value.headers == {"Connection": "close"}


@pytest.mark.parametrize("headers", [(), ((b"content-length", b"0"),)])
async def test_requests_without_a_body_keep_the_servers_receive(headers: Any) -> None:
    receive = scripted({"type": "http.request", "body": b"", "more_body": False})
    assert await read_body(0.01, scope(*headers), receive) is receive
