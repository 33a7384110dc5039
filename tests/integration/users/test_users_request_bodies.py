"""Bodies that never complete: malformed chunking, a client that leaves, a body that trickles.

granian reports a malformed chunked body and a client gone mid-body alike, as `http.disconnect`
before the body's end, and has no timeout of its own for bodies (`cqlstar.web.request_body`). These
tests drive a served app over raw sockets, the only way to send such requests.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from served import ServedApp, serve_app, stop_app

pytestmark = pytest.mark.integration

BODY_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def body_app(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The service with a short body timeout, logging every request (info)."""
    env = {
        **app_env,
        "CQLSTAR_REQUEST_BODY_TIMEOUT": str(BODY_TIMEOUT_S),
        "LOG_LEVEL": "INFO",
    }
    served = serve_app(env, tmp_path_factory.mktemp("bodies") / "server.log")
    yield served
    stop_app(served)


async def exchange(
    app: ServedApp, head: bytes, pieces: list[tuple[float, bytes]], *, close: bool = False
) -> tuple[int, dict[str, Any], bytes] | None:
    """Send `head`, then each piece after its delay; read the answer (None if `close`)."""
    return await asyncio.to_thread(_exchange, app, head, pieces, close)


def _exchange(
    app: ServedApp, head: bytes, pieces: list[tuple[float, bytes]], close: bool
) -> tuple[int, dict[str, Any], bytes] | None:
    # A blocking socket: after the server has answered and closed, a failed send leaves its
    # answer readable (asyncio streams raise the send error on every later read instead).
    url = httpx.URL(app.base_url)
    with socket.create_connection((url.host, url.port), timeout=15) as sock:
        sock.sendall(head)
        for delay, piece in pieces:
            time.sleep(delay)
            try:
                sock.sendall(piece)
            except OSError:
                break  # the server answered and closed
        if close:
            return None
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        status_head, _, rest = received.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", status_head).group(1))  # type: ignore[union-attr]
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, rest
            rest += chunk
        return int(status_head.split(b" ", 2)[1]), json.loads(rest[:length]), status_head


def post(path: str, headers: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{headers}\r\n"
    ).encode()


def access_lines(app: ServedApp, path: str) -> list[dict[str, Any]]:
    lines = []
    for raw in app.log_text().splitlines():
        if raw.startswith("{") and '"status"' in raw:
            line = json.loads(raw)
            if line.get("route") == path or line.get("path") == path:
                lines.append(line)
    return lines


async def test_a_malformed_chunked_body_is_400(body_app: ServedApp) -> None:
    answer = await exchange(
        body_app,
        post("/users", "Transfer-Encoding: chunked\r\n"),
        [(0, b"zz\r\nnot a chunk\r\n0\r\n\r\n")],
    )
    assert answer is not None
    status, body, _ = answer
    assert status == 400
    assert body == {"detail": "The request body is incomplete"}


async def test_a_body_that_trickles_is_cut_with_408(body_app: ServedApp) -> None:
    started = time.monotonic()
    answer = await exchange(
        body_app,
        post("/users", "Content-Length: 60\r\n"),
        [(0.5, b"{")] * 8,  # four seconds for eight bytes, then nothing
    )
    assert answer is not None
    status, body, head = answer
    assert status == 408
    assert body == {"detail": "The request body did not arrive in time"}
    assert re.search(rb"(?i)connection: *close", head)
    assert time.monotonic() - started < BODY_TIMEOUT_S + 3


async def test_a_slow_but_steady_body_within_the_time_is_accepted(body_app: ServedApp) -> None:
    user = json.dumps({"name": "Slow Sender", "email": "slow@example.com", "age": 30}).encode()
    half = len(user) // 2
    answer = await exchange(
        body_app,
        post("/users", f"Content-Length: {len(user)}\r\n"),
        [(0.3, user[:half]), (0.3, user[half:])],
    )
    assert answer is not None
    assert answer[0] == 201


async def test_a_client_that_leaves_mid_body_is_not_a_server_error(body_app: ServedApp) -> None:
    await exchange(
        body_app, post("/users/batch", "Content-Length: 5000\r\n"), [(0, b"[{")], close=True
    )
    await asyncio.sleep(1)
    async with httpx.AsyncClient(base_url=body_app.base_url) as client:
        assert (await client.get("/health")).status_code == 200
    log = body_app.log_text()
    assert "client disconnected prematurely" not in log
    assert '"level":"ERROR"' not in log.replace(" ", "")
    statuses = [line["status"] for line in access_lines(body_app, "/users/batch")]
    assert statuses
    assert all(status < 500 for status in statuses), statuses
