"""X-Request-Timeout parsing, and the middleware that opens the async layer's time budget."""

from __future__ import annotations

import asyncio

import pytest

from cqlstar.aiocassandra import budget as cassandra_budget
from cqlstar.web import deadline


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"0.5", 0.5), (b"60", 60.0), (b"1e1", 10.0), (b".5", 0.5), (b"5.", 5.0), (b"2.5E0", 2.5)],
)
def test_accepts_seconds_in_range(raw: bytes, expected: float) -> None:
    assert deadline.parse_budget(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        *(b"0", b"-1", b"60.01", b"abc", b"", b"nan", b"inf", b"0x10", b"1e9"),
        # Forms `float()` takes that a number of seconds is not written as.
        *(b"1_0", b"+5", b"\t5", b"5\t", b" 2 ", b"\xd9\xa3", b"5 s", b"1,5", b"."),
    ],
)
def test_refuses_malformed_or_out_of_range(raw: bytes) -> None:
    assert deadline.parse_budget(raw) is None


async def _echo_app(scope: object, receive: object, send: object) -> None:
    budget = cassandra_budget.remaining(100.0)
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": repr(budget).encode()})  # type: ignore[operator]


async def _sleepy_app(scope: object, receive: object, send: object) -> None:
    await asyncio.sleep(5)


async def _call(app: object, header: bytes | None) -> list[dict[str, object]]:
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [(b"x-request-timeout", header)] if header is not None else []
    middleware = deadline.RequestBudgetMiddleware(app)  # type: ignore[arg-type]
    await middleware({"type": "http", "headers": headers}, None, send)  # type: ignore[arg-type]
    return sent


async def test_the_budget_flows_to_code_running_in_the_request() -> None:
    sent = await _call(_echo_app, b"2.5")
    left = float(sent[1]["body"])  # type: ignore[arg-type]
    assert 2.0 < left <= 2.5


async def test_malformed_header_answers_400_without_calling_the_app() -> None:
    sent = await _call(_sleepy_app, b"soon")
    assert sent[0]["status"] == 400
    assert sent[1]["body"] == b'{"detail":"Invalid X-Request-Timeout header"}'


async def test_exhausted_budget_answers_504() -> None:
    sent = await _call(_sleepy_app, b"0.05")
    assert sent[0]["status"] == 504
    assert sent[1]["body"] == b'{"detail":"Gateway Timeout"}'


async def test_budget_is_gone_after_the_request() -> None:
    await _call(_echo_app, b"1")
    assert cassandra_budget.remaining() is None
