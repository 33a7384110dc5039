"""The once-a-second sweep: authentication deadline, token expiry, ping and dead peers."""

from __future__ import annotations

import time
from typing import Any

from cqlstar.identity.principal import Principal
from cqlstar.limits import create_rate_limiter
from cqlstar.realtime.protocol import CloseCode
from cqlstar.realtime.runtime import AUTH_TIMEOUT_S, DEAD_AFTER_S, PING_AFTER_S, Realtime
from cqlstar.settings import Settings
from cqlstar.users import UserRepositoryHolder


class FakeConnection:
    def __init__(self, *, principal: Principal | None, connected_at: float, last_seen: float):
        self.principal = principal
        self.connected_at = connected_at
        self.last_seen = last_seen
        self.pinged = False
        self.closing = None
        self.close_requested: CloseCode | None = None
        self.slot_held = False
        self.revocation_keys: tuple[str, ...] = ()
        self.id = "c"
        self.pings = 0

    def close_soon(self, code: CloseCode) -> None:
        self.close_requested = code

    def ping(self) -> None:
        self.pinged = True
        self.pings += 1


def realtime() -> Realtime:
    settings = Settings(auth="disabled")
    return Realtime(
        settings=settings,
        user_repository=UserRepositoryHolder(),
        rate_limiter=create_rate_limiter(settings, None),
    )


def add(runtime: Realtime, **kwargs: Any) -> FakeConnection:
    connection = FakeConnection(**kwargs)
    runtime.connections.add(connection)  # type: ignore[arg-type]
    return connection


def test_unauthenticated_connections_get_5_s() -> None:
    runtime = realtime()
    now = 1000.0
    fresh = add(runtime, principal=None, connected_at=now - AUTH_TIMEOUT_S + 0.5, last_seen=now)
    late = add(runtime, principal=None, connected_at=now - AUTH_TIMEOUT_S, last_seen=now)
    runtime.sweep(now)
    assert fresh.close_requested is None
    assert late.close_requested is CloseCode.AUTH_TIMEOUT


def test_expired_tokens_close_with_4001() -> None:
    runtime = realtime()
    now = 1000.0
    wall = time.time()
    valid = add(
        runtime,
        principal=Principal(subject="a", expires_at=wall + 30),
        connected_at=now,
        last_seen=now,
    )
    expired = add(
        runtime,
        principal=Principal(subject="b", expires_at=wall - 1),
        connected_at=now,
        last_seen=now,
    )
    runtime.sweep(now)
    assert valid.close_requested is None
    assert expired.close_requested is CloseCode.INVALID_TOKEN


def test_ping_once_then_close_the_silent() -> None:
    runtime = realtime()
    start = 1000.0
    peer = add(runtime, principal=Principal(subject="a"), connected_at=start, last_seen=start)
    runtime.sweep(start + PING_AFTER_S - 0.1)
    assert peer.pings == 0
    runtime.sweep(start + PING_AFTER_S)
    runtime.sweep(start + PING_AFTER_S + 1)
    assert peer.pings == 1
    assert peer.close_requested is None
    runtime.sweep(start + DEAD_AFTER_S)
    assert peer.close_requested is CloseCode.HEARTBEAT_TIMEOUT
    assert DEAD_AFTER_S < 60


def test_closing_connections_are_left_alone() -> None:
    runtime = realtime()
    peer = add(runtime, principal=None, connected_at=0.0, last_seen=0.0)
    peer.close_requested = CloseCode.MESSAGE_TOO_BIG
    runtime.sweep(1000.0)
    assert peer.close_requested is CloseCode.MESSAGE_TOO_BIG
