"""Broadcast of user changes to every reader connection, on every process.

Publishing: every change made over HTTP or WebSocket calls `UserEvents.publish` once, which encodes
the event message once and hands it to Litestar's channels (`ChannelsPlugin`: the Redis pub/sub
backend when `REDIS_URL` is set, so every process subscribed to the channel receives it once; the
memory backend otherwise). The publish is awaited, in a PRODUCER span, so the change's answer goes
out after its event: a client that saw its write succeed can count on the event being on its way. A
failed publish is logged and counted; the change itself stands and is answered normally. A publish
that Redis does not answer within `PUBLISH_TIMEOUT_S` (a frozen server) has failed: a change's answer
waits that long at most, not the client's 5 s socket backstop (`cqlstar.redisclient`), which used to
hold every write for 5 s and turn a write made under `X-Request-Timeout` into a 504.

Fan-out: each process holds ONE channels subscription, and `UserEvents.run` hands each event to the
process's reader connections (those whose principal holds `users:read`). A reader's `deliver` only
appends to that connection's own bounded backlog and never waits, so one slow reader cannot delay
the others or the fan-out; a reader whose backlog is full is closed with 1013 (see
`cqlstar.realtime.connection`). One subscription per process rather than one per connection keeps an
idle connection's cost at a set entry, and uses only the plugin's public API.

Redis going away: a publish fails (counted, as above); the subscription is kept alive by
`ResubscribingRedisPubSub`, so once Redis answers again events flow without a restart. Pub/sub keeps
no history: events published while the subscription was down are missed by this process's readers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Protocol

import msgspec
from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from redis.asyncio import Redis
from redis.exceptions import RedisError

from cqlstar.realtime.metrics import WebSocketMetrics
from cqlstar.realtime.protocol import UserEvent, UserEventKind, UserEventMessage
from cqlstar.users.schemas import User

log = logging.getLogger(__name__)

# One channel per keyspace: processes that share a keyspace are one deployment and share its
# events; another deployment (or a test run) on the same Redis with its own keyspace sees none of them.
CHANNEL_PREFIX = "users:"


def users_channel(keyspace: str) -> str:
    return CHANNEL_PREFIX + keyspace


_tracer = trace.get_tracer("cqlstar.realtime")
_encode = msgspec.json.Encoder().encode


# The most a change's answer waits for its event to be published (the rate limits' first check
# waits as long).
PUBLISH_TIMEOUT_S = 0.5

# How long the subscription waits before reading again after Redis failed it: doubling from the first
# to the last, so a restart is picked up within a second and an outage costs a few reads a minute.
RESUBSCRIBE_DELAYS_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _delay_after(failures: int) -> float:
    return RESUBSCRIBE_DELAYS_S[min(failures, len(RESUBSCRIBE_DELAYS_S) - 1)]


class ResubscribingRedisPubSub(RedisChannelsPubSubBackend):
    """Litestar's Redis pub/sub backend, with a subscription that outlives Redis being away.

    The stock backend fails the app's start when Redis does not answer the first SUBSCRIBE, and its
    event stream ends at the first connection error, taking the plugin's subscription task with it:
    no reader on this process would get an event again until the service restarted. Here:
    - a SUBSCRIBE that fails is retried in the background until Redis answers, so the service
      starts (degraded, like its limits) with Redis down;
    - a read that fails is retried after a pause, and redis-py's `PubSub` reconnects on that read and
      re-subscribes the channels it had (its `on_connect`).
    Each failure is counted (`on_lost`); the first of a run of them is logged.
    """

    def __init__(self, *, redis: Redis, key_prefix: str, on_lost: Callable[[], None]) -> None:
        super().__init__(redis=redis, key_prefix=key_prefix)
        self._on_lost = on_lost
        self._late_subscriptions: set[asyncio.Task[None]] = set()

    def _failed(self, exc: BaseException, failures: int, what: str) -> float:
        self._on_lost()
        if failures == 0:
            log.warning(
                f"broadcast subscription: {what} failed; retrying until Redis answers",
                extra={"error": type(exc).__qualname__},
            )
        return _delay_after(failures)

    async def subscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        try:
            await super().subscribe(channels)
        except (RedisError, OSError) as exc:
            self._failed(exc, 0, "SUBSCRIBE")
            task = asyncio.create_task(self._subscribe_when_back(channels))
            self._late_subscriptions.add(task)
            task.add_done_callback(self._late_subscriptions.discard)

    async def _subscribe_when_back(self, channels: list[str]) -> None:
        failures = 1
        while True:
            await asyncio.sleep(_delay_after(failures))
            try:
                await super().subscribe(channels)
            except (RedisError, OSError) as exc:
                self._failed(exc, failures, "SUBSCRIBE")
                failures += 1
            else:
                log.info("broadcast subscription: subscribed once Redis answered")
                return

    async def on_shutdown(self) -> None:
        for task in self._late_subscriptions:
            task.cancel()
        await super().on_shutdown()

    async def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        failures = 0
        while True:
            try:
                async for event in super().stream_events():
                    failures = 0
                    yield event
            except (RedisError, OSError) as exc:
                await asyncio.sleep(self._failed(exc, failures, "reading events"))
                failures += 1


class Reader(Protocol):
    def deliver(self, message: str) -> None:
        """Queue `message` for sending, without waiting."""


class UserEvents:
    """Publishes user changes and fans them out to this process's readers."""

    def __init__(self, channels: ChannelsPlugin, metrics: WebSocketMetrics, channel: str) -> None:
        self.channels = channels
        self.channel = channel
        self.metrics = metrics
        self.readers: set[Reader] = set()
        self._fan_out: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @staticmethod
    def memory_channels(channel: str) -> ChannelsPlugin:
        return ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[channel])

    @staticmethod
    def redis_channels(redis: Redis, channel: str, metrics: WebSocketMetrics) -> ChannelsPlugin:
        """Redis pub/sub: every process subscribed to the channel receives each event once."""

        def lost() -> None:
            metrics.broadcast_subscription_errors += 1

        backend = ResubscribingRedisPubSub(redis=redis, key_prefix="cqlstar:channels", on_lost=lost)
        return ChannelsPlugin(backend=backend, channels=[channel])

    async def publish(self, kind: UserEventKind, user_id: str, user: User | None) -> None:
        payload = _encode(UserEventMessage(data=UserEvent(kind, user_id, user)))
        with _tracer.start_as_current_span(
            "publish users",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "litestar.channels",
                "messaging.destination.name": self.channel,
                "messaging.operation.type": "publish",
                "messaging.message.body.size": len(payload),
                "cqlstar.user_event": kind.value,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                    await self.channels.wait_published(payload, self.channel)
            except Exception as exc:
                # The change is made and stays made; readers miss this one event.
                self.metrics.broadcast_publish_failures += 1
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", type(exc).__qualname__)
                log.warning("user event not published", extra={"error": type(exc).__qualname__})
                return
        self.metrics.broadcast_published += 1

    async def _run(self) -> None:
        async with self.channels.start_subscription(self.channel) as subscriber:
            self._subscribed.set()
            async for payload in subscriber.iter_events():
                # Decoded to text once per event, then shared by every reader's text frame.
                message = payload.decode() if isinstance(payload, bytes) else str(payload)
                for reader in list(self.readers):
                    reader.deliver(message)

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """Subscribe once the channels plugin has started (its lifespan runs before this one)."""
        self._fan_out = asyncio.create_task(self._run(), name="cqlstar-user-events")
        await asyncio.wait(
            [asyncio.ensure_future(self._subscribed.wait()), self._fan_out],
            return_when=asyncio.FIRST_COMPLETED,
        )
        try:
            yield
        finally:
            self._fan_out.cancel()
            with suppress(asyncio.CancelledError):
                await self._fan_out
