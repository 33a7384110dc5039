"""The WebSocket API's process-wide part: what every connection shares, and the once-a-second sweep.

`Realtime` is held on `Services` (`Services.of(state).realtime`). It knows how to authenticate a
token, the per-principal limits, the broadcast (`UserEvents`), the counters, and the set of open
connections, which `sweep` visits once a second to:

- close with 4002 a connection that has not authenticated within `AUTH_TIMEOUT_S` of connecting;
- close with 4001 a connection whose token has expired (a renewal moves the expiry);
- send `{"type": "ping"}` to a connection silent for `PING_AFTER_S`, and close with 4003 one silent
  for `DEAD_AFTER_S`, so a peer that vanished without closing is noticed within a minute and its
  slot, its backlog and its task are freed. (granian sends no WebSocket pings, and ASGI gives the
  application no way to send protocol-level pings, so the ping is a message of the protocol; any
  frame from the client counts as a sign of life.)
- confirm this process's connection slots every `SLOT_REFRESH_S`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, Final

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin
from opentelemetry import trace

from cqlstar.identity.principal import Principal, Role
from cqlstar.identity.tokens import InvalidToken, TokenVerifier, VerifiedToken
from cqlstar.limits import RateLimiter
from cqlstar.realtime.broadcast import UserEvents, users_channel
from cqlstar.realtime.limits import (
    SLOT_REFRESH_S,
    ConnectionSlots,
    InProcessConnectionSlots,
    RedisConnectionSlots,
)
from cqlstar.realtime.metrics import WebSocketMetrics
from cqlstar.realtime.packages import PackageContext
from cqlstar.realtime.protocol import CloseCode, UserEventKind
from cqlstar.users.dependencies import UserRepositoryHolder, provide_page_token_signer
from cqlstar.users.schemas import User

if TYPE_CHECKING:
    from litestar import WebSocket
    from redis.asyncio import Redis

    from cqlstar.realtime.connection import Connection
    from cqlstar.settings import Settings

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S: Final = 5.0
PING_AFTER_S: Final = 20.0
DEAD_AFTER_S: Final = 45.0
SWEEP_INTERVAL_S: Final = 1.0
# The most a connect (or a close) waits for the connection limit's store: a frozen Redis fails open
# after this, as the rate limits do, rather than after the client's 5 s socket backstop.
SLOT_TIMEOUT_S: Final = 0.5

_ALL_ROLES = frozenset(role.value for role in Role)


class Realtime:
    """Everything the `/web` connections of one process share."""

    def __init__(
        self,
        *,
        settings: Settings,
        user_repository: UserRepositoryHolder,
        rate_limiter: RateLimiter,
        verifier: TokenVerifier | None = None,
        redis: Redis | None = None,
    ) -> None:
        self.metrics = WebSocketMetrics()
        channel = users_channel(settings.cassandra_keyspace)
        self.channels = (
            UserEvents.memory_channels(channel)
            if redis is None
            else UserEvents.redis_channels(redis, channel, self.metrics)
        )
        self.events = UserEvents(self.channels, self.metrics, channel)
        self.verifier = verifier
        self.auth_disabled = verifier is None
        self.slots: ConnectionSlots = (
            InProcessConnectionSlots()
            if redis is None
            else RedisConnectionSlots(redis, deployment=settings.cassandra_keyspace)
        )
        self.rate_limiter = rate_limiter
        # 0: no limit.
        self.max_connections = settings.ws_max_connections
        self.connections: set[Connection] = set()
        self.tracer = trace.get_tracer("cqlstar.realtime")
        self.packages = PackageContext(
            lambda: user_repository.current,
            provide_page_token_signer(settings),
            self.events.publish,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_refresh = 0.0

    # ---- used by connections --------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run `coroutine` as a task kept alive until it ends."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def handshake_token(socket: WebSocket[Any, Any, Any]) -> str | None:
        """The token of the handshake: `Authorization: Bearer`, else `?token=`. Never logged."""
        header = socket.headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
        query_token: str | None = socket.query_params.get("token")
        return query_token

    @staticmethod
    def anonymous_principal(connection_id: str) -> Principal:
        """With authentication disabled: every role, and limits per connection."""
        return Principal(subject=f"anonymous:{connection_id}", roles=_ALL_ROLES)

    async def verify(self, token: str) -> VerifiedToken | None:
        """The token's checks passed and its session is not logged out; None otherwise (4001)."""
        if self.verifier is None or not token:
            self.metrics.auth_failures += 1
            return None
        try:
            return await self.verifier.verify_unrevoked(token)
        except InvalidToken as refused:
            # Any check failed, or the issuer's keys could not be had: 4001 either way. The reason
            # is logged (the verifier's messages never quote the token).
            self.metrics.auth_failures += 1
            log.info("websocket token refused", extra={"reason": str(refused)})
            return None

    def logged_out(self, connection: Connection) -> bool:
        """Whether the session of the token the connection presented last has since ended."""
        keys = connection.revocation_keys
        return (
            bool(keys) and self.verifier is not None and self.verifier.revocations.is_revoked(keys)
        )

    async def acquire_slot(self, subject: str, connection_id: str) -> bool | None:
        """True: a slot is held; False: over the limit; None: admitted without a slot (no limit,
        or the shared store did not answer: fail open)."""
        if self.auth_disabled or self.max_connections <= 0:
            return None
        try:
            async with asyncio.timeout(SLOT_TIMEOUT_S):
                return await self.slots.acquire(subject, connection_id, self.max_connections)
        except Exception as exc:
            self.metrics.slot_failures += 1
            log.warning("connection limit not checked", extra={"error": type(exc).__qualname__})
            return None

    async def release_slot(self, subject: str, connection_id: str) -> None:
        try:
            async with asyncio.timeout(SLOT_TIMEOUT_S):
                await self.slots.release(subject, connection_id)
        except Exception as exc:
            # The slot goes stale and stops counting within SLOT_STALE_S.
            log.warning("connection slot not released", extra={"error": type(exc).__qualname__})

    async def allow_message(self, subject: str) -> bool:
        decision = await self.rate_limiter.check_ws_message(subject)
        return decision is None or decision.allowed

    def update_reader(self, connection: Connection) -> None:
        """Receive broadcasts while the principal holds users:read."""
        principal = connection.principal
        if principal is not None and principal.has_role(Role.USERS_READ):
            self.events.readers.add(connection)
        else:
            self.events.readers.discard(connection)

    async def publish_user_change(self, kind: str, user_id: str, user: User | None) -> None:
        """For the HTTP routes: publish one user change ("created", "updated" or "deleted")."""
        await self.events.publish(UserEventKind(kind), user_id, user)

    # ---- the sweep ------------------------------------------------------------------------------

    def sweep(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        wall = time.time()
        for connection in list(self.connections):
            if connection.closing is not None or connection.close_requested is not None:
                continue
            principal = connection.principal
            if principal is None:
                if now - connection.connected_at >= AUTH_TIMEOUT_S:
                    connection.close_soon(CloseCode.AUTH_TIMEOUT)
                continue
            if (
                principal.expires_at is not None and wall >= principal.expires_at
            ) or self.logged_out(connection):
                connection.close_soon(CloseCode.INVALID_TOKEN)
                continue
            silent = now - connection.last_seen
            if silent >= DEAD_AFTER_S:
                connection.close_soon(CloseCode.HEARTBEAT_TIMEOUT)
            elif silent >= PING_AFTER_S and not connection.pinged:
                connection.ping()
        if now - self._last_refresh >= SLOT_REFRESH_S and not self.auth_disabled:
            self._last_refresh = now
            held = [
                (c.principal.subject, c.id)
                for c in self.connections
                if c.slot_held and c.principal is not None
            ]
            self.spawn(self._refresh_slots(held))

    async def _refresh_slots(self, held: list[tuple[str, str]]) -> None:
        try:
            await self.slots.refresh(held)
        except Exception as exc:
            log.warning("connection slots not refreshed", extra={"error": type(exc).__qualname__})

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                self.sweep()
            except Exception:
                log.exception("websocket sweep failed")

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        async with self.events.lifespan(app):
            sweeper = asyncio.create_task(self._sweep_forever(), name="cqlstar-ws-sweep")
            try:
                yield
            finally:
                sweeper.cancel()
                with suppress(asyncio.CancelledError):
                    await sweeper
                for connection in list(self.connections):
                    connection.close_soon(CloseCode.GOING_AWAY)


class RealtimePlugin(InitPlugin):
    """Adds `/web`, `/asyncapi.json` and the WebSocket lifespan, after the channels plugin's."""

    def __init__(self, realtime: Realtime) -> None:
        self.realtime = realtime

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        from cqlstar.realtime.endpoint import REALTIME_HANDLERS

        app_config.route_handlers.extend(REALTIME_HANDLERS)
        # Appended after the channels plugin's lifespan (plugins run in order), so the broadcast
        # subscribes once the channels are up, and stops before they stop.
        app_config.lifespan.append(self.realtime.lifespan)
        return app_config
