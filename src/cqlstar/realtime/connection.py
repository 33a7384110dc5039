"""One `/web` connection, from accept to close: authentication, limits, requests, broadcast.

The endpoint's handler owns a receive loop of its own (not a Litestar listener): it reads raw ASGI
messages, checks the size before anything else, counts the message against the principal's rate
limit, decodes it in one msgspec pass, and starts each request as a task of its own, so a slow query
does not hold up the next request on the same socket; at most `MAX_IN_FLIGHT` requests run at once
per connection, after which the loop stops reading (the client's sends back up, the server's memory
does not grow). Every request gets exactly one answer, and nothing a client sends closes the
connection except a frame over 64 KiB (1009).

Sending: answers, pings and broadcast events share one send lock, so frames never interleave.
Broadcast events wait in a bounded per-connection backlog (`MAX_BACKLOG`) and are sent by a task that
exists only while there is something to send, so an idle connection holds no task but its own. A
reader whose backlog overflows (it does not read what it is sent) is closed with 1013.

Housekeeping that depends on time (the 5 s authentication deadline, token expiry and logout, dead
peers) is done for all connections by one sweep per second (`cqlstar.realtime.runtime`), not a timer
per connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec
from litestar import WebSocket
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace import Status as SpanStatus

from cqlstar.identity.principal import Principal
from cqlstar.realtime.packages import PackageFailed, run_package
from cqlstar.realtime.protocol import (
    MAX_FRAME_BYTES,
    PACKAGE_OF,
    Answer,
    AuthMessage,
    AuthOk,
    CloseCode,
    Invalid,
    PingMessage,
    PongMessage,
    Status,
    decode_frame,
)

if TYPE_CHECKING:
    from cqlstar.realtime.runtime import Realtime

log = logging.getLogger(__name__)

# Requests of one connection running at once; past this the connection is not read until one ends.
MAX_IN_FLIGHT: Final = 16
# Broadcast events waiting for one slow reader before it is closed with 1013.
MAX_BACKLOG: Final = 256
# How long a close frame may wait behind a send the peer does not take, before the connection is
# dropped without it.
CLOSE_SEND_TIMEOUT_S: Final = 5.0

RATE_LIMITED: Final = "Rate limit exceeded"
NOT_AUTHENTICATED: Final = 'Not authenticated: send {"type": "auth", "token": ...} first'

_encode = msgspec.json.Encoder().encode
_AUTH_OK: Final = _encode(AuthOk()).decode()
PING: Final = _encode(PingMessage()).decode()


def _text(value: Any) -> str:
    return _encode(value).decode()


class Connection:
    """The state of one accepted WebSocket connection."""

    __slots__ = (
        "_drain",
        "_in_flight",
        "_send_lock",
        "backlog",
        "close_requested",
        "closing",
        "connected_at",
        "id",
        "last_seen",
        "pinged",
        "principal",
        "revocation_keys",
        "runtime",
        "slot_held",
        "socket",
        "task",
    )

    def __init__(self, runtime: Realtime, socket: WebSocket[Any, Any, Any]) -> None:
        self.runtime = runtime
        self.socket = socket
        self.id = uuid.uuid4().hex
        now = time.monotonic()
        self.connected_at = now
        self.last_seen = now
        self.pinged = False
        self.principal: Principal | None = None
        # What logging out the presented token's session revokes (the sweep closes the connection).
        self.revocation_keys: tuple[str, ...] = ()
        self.slot_held = False
        self.closing: CloseCode | None = None
        self.close_requested: CloseCode | None = None
        self.backlog: deque[str] = deque()
        self.task: asyncio.Task[Any] | None = None
        self._drain: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    # ---- life cycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the peer leaves or the server closes it."""
        runtime = self.runtime
        self.task = asyncio.current_task()
        runtime.connections.add(self)
        runtime.metrics.connections_open += 1
        runtime.metrics.connections_total += 1
        try:
            token = runtime.handshake_token(self.socket)
            if runtime.auth_disabled:
                await self._admit(runtime.anonymous_principal(self.id))
            elif token is not None:
                verified = await runtime.verify(token)
                if verified is None:
                    await self.close(CloseCode.INVALID_TOKEN)
                    return
                self.revocation_keys = verified.revocation_keys
                await self._admit(verified.principal)
            if self.closing is None:
                await self._receive_loop()
        except asyncio.CancelledError:
            # `close_soon` asked for a close: a normal end, not a cancellation of the server.
            code = self.close_requested
            if code is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            await self.close(code)
        except Exception:
            # Litestar closes the socket with 4500 and logs nothing outside debug mode: without
            # this line a failure here would leave no trace.
            log.exception("websocket connection failed")
            raise
        finally:
            await self._release()

    async def _admit(self, principal: Principal) -> None:
        """Take a connection slot for `principal` (or close 1008) and start receiving broadcasts."""
        runtime = self.runtime
        slot = await runtime.acquire_slot(principal.subject, self.id)
        if slot is False:
            await self.close(CloseCode.POLICY_VIOLATION)
            return
        self.slot_held = slot is True
        self.principal = principal
        runtime.update_reader(self)

    async def _release(self) -> None:
        runtime = self.runtime
        runtime.connections.discard(self)
        runtime.events.readers.discard(self)
        runtime.metrics.connections_open -= 1
        self.backlog.clear()
        if self.slot_held and self.principal is not None:
            self.slot_held = False
            await runtime.release_slot(self.principal.subject, self.id)

    async def close(self, code: CloseCode) -> None:
        """Send a close frame with `code`, from the connection's own task (see `close_soon`)."""
        if self.closing is not None:
            return
        self.closing = code
        self.runtime.metrics.closes[code] += 1
        self.backlog.clear()
        # A peer that takes nothing (stalled or gone) leaves the frame unsent: it is dropped then.
        with suppress(Exception):
            async with asyncio.timeout(CLOSE_SEND_TIMEOUT_S), self._send_lock:
                await self.socket.close(code)
        if self._drain is not None:
            self._drain.cancel()

    def close_soon(self, code: CloseCode) -> None:
        """Close from outside the connection's task (the sweep, an overflow, shutdown).

        granian does not send a close frame while the application waits in `receive` (the send
        waits for the receive to end; measured), so the close is not sent from here: the
        connection's task is cancelled out of its receive, and sends the close frame itself
        (`run`), then frees what the connection held.
        """
        if self.closing is None and self.close_requested is None:
            self.close_requested = code
            if self.task is not None and not self.task.done():
                self.task.cancel()

    # ---- receiving ------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        receive = self.socket.receive
        while self.closing is None:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            self.last_seen = time.monotonic()
            self.pinged = False
            text = cast("str | None", message.get("text"))
            if text is None:
                data = cast("bytes", message.get("bytes") or b"")
                if len(data) > MAX_FRAME_BYTES:
                    await self.close(CloseCode.MESSAGE_TOO_BIG)
                    return
                await self._answer_invalid(
                    Invalid(None, None, "Binary frames are not accepted: send JSON text")
                )
                continue
            # A character is 1 to 4 bytes in UTF-8: count bytes only where it can matter.
            if len(text) > MAX_FRAME_BYTES // 4 and len(text.encode()) > MAX_FRAME_BYTES:
                await self.close(CloseCode.MESSAGE_TOO_BIG)
                return
            await self._on_text(text)

    async def _on_text(self, text: str) -> None:
        principal = self.principal
        if principal is not None and not await self.runtime.allow_message(principal.subject):
            # Counted before any other check: a flood of bad or forbidden frames is limited too.
            self.runtime.metrics.rate_limited += 1
            envelope = decode_frame(text)
            pkg_id = req_id = None
            if isinstance(envelope, Invalid):
                pkg_id, req_id = envelope.pkg_id, envelope.req_id
            elif not isinstance(envelope, (AuthMessage, PongMessage)):
                pkg_id, req_id = PACKAGE_OF[type(envelope)].pkg_id, envelope.req_id
            if not isinstance(envelope, PongMessage):
                await self._answer(
                    Answer(pkg_id, req_id, Status.ERROR, msg=RATE_LIMITED), "RATE_LIMITED"
                )
            return
        decoded = decode_frame(text)
        if isinstance(decoded, Invalid):
            await self._answer_invalid(decoded)
        elif isinstance(decoded, PongMessage):
            return
        elif isinstance(decoded, AuthMessage):
            await self._authenticate(decoded.token)
        elif principal is None:
            package = PACKAGE_OF[type(decoded)]
            await self._answer(
                Answer(package.pkg_id, decoded.req_id, Status.FORBIDDEN, msg=NOT_AUTHENTICATED),
                package.name,
            )
        else:
            await self._in_flight.acquire()
            self.runtime.spawn(self._serve(decoded, principal))

    async def _authenticate(self, token: str) -> None:
        """A first authentication, or a fresh token for the same principal (renewal)."""
        runtime = self.runtime
        verified = await runtime.verify(token)
        current = self.principal
        if verified is None or (
            current is not None and verified.principal.subject != current.subject
        ):
            await self.close(CloseCode.INVALID_TOKEN)
            return
        principal = verified.principal
        self.revocation_keys = verified.revocation_keys
        if current is None:
            await self._admit(principal)
            if self.closing is not None:
                return
        else:
            self.principal = principal
            runtime.update_reader(self)
        await self.send_text(_AUTH_OK)

    # ---- requests -------------------------------------------------------------------------------

    async def _serve(self, request: Any, principal: Principal) -> None:
        package = PACKAGE_OF[type(request)]
        runtime = self.runtime
        span = runtime.tracer.start_span(
            f"WS {package.name}",
            kind=SpanKind.SERVER,
            attributes={
                "network.protocol.name": "websocket",
                "cqlstar.ws.pkg_id": package.pkg_id,
                "cqlstar.ws.package": package.name,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            if not principal.has_role(package.role):
                answer = Answer(
                    package.pkg_id,
                    request.req_id,
                    Status.FORBIDDEN,
                    msg=f"Permission denied: this package needs the role {package.role.value}",
                )
            else:
                try:
                    data, meta = await run_package(request, runtime.packages)
                    answer = Answer(package.pkg_id, request.req_id, Status.OK, data, meta)
                except PackageFailed as failure:
                    answer = Answer(package.pkg_id, request.req_id, failure.status, msg=failure.msg)
            if span.is_recording():
                span.set_attribute("cqlstar.ws.status_code", int(answer.status_code))
                if answer.status_code is Status.ERROR:
                    span.set_status(SpanStatus(StatusCode.ERROR))
            await self._send_answer(answer, package.name)
        finally:
            span.end()
            otel_context.detach(token)
            self._in_flight.release()

    async def _answer_invalid(self, invalid: Invalid) -> None:
        await self._answer(
            Answer(invalid.pkg_id, invalid.req_id, Status.INVALID, msg=invalid.msg), "INVALID"
        )

    async def _answer(self, answer: Answer, name: str) -> None:
        """Answer a frame that runs no package, in a span of its own (`WS <name>`)."""
        with self.runtime.tracer.start_as_current_span(
            f"WS {name}",
            kind=SpanKind.SERVER,
            attributes={
                "network.protocol.name": "websocket",
                "cqlstar.ws.status_code": int(answer.status_code),
            },
        ):
            await self._send_answer(answer, name)

    async def _send_answer(self, answer: Answer, name: str) -> None:
        self.runtime.metrics.messages[name, int(answer.status_code)] += 1
        await self.send_text(_text(answer))

    # ---- sending --------------------------------------------------------------------------------

    async def send_text(self, text: str) -> bool:
        if self.closing is not None:
            return False
        async with self._send_lock:
            if self.closing is not None:
                return False
            try:
                await self.socket.send({"type": "websocket.send", "text": text, "bytes": None})
            except Exception:
                # The peer is gone; the receive loop sees the disconnect and ends the connection.
                return False
        return True

    def deliver(self, message: str) -> None:
        """Queue a broadcast event (from the fan-out: never waits)."""
        if self.closing is not None or self.close_requested is not None:
            return
        if len(self.backlog) >= MAX_BACKLOG:
            metrics = self.runtime.metrics
            metrics.broadcast_drops += len(self.backlog) + 1
            self.backlog.clear()
            self.close_soon(CloseCode.TRY_AGAIN_LATER)
            return
        self.backlog.append(message)
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._drain_backlog())

    async def _drain_backlog(self) -> None:
        backlog = self.backlog
        metrics = self.runtime.metrics
        try:
            while backlog and self.closing is None:
                if await self.send_text(backlog.popleft()):
                    metrics.broadcast_deliveries += 1
        finally:
            self._drain = None

    def ping(self) -> None:
        """Ask an idle peer to show it is alive (`{"type": "ping"}`; it answers `{"type": "pong"}`)."""
        self.pinged = True
        self.runtime.spawn(self.send_text(PING))
