"""What the WebSocket phase measures, as the report (and `websocket.json`) hold it."""

from __future__ import annotations

import msgspec


class WebSocketRoundTrips(msgspec.Struct, frozen=True, kw_only=True):
    """`GET_USER` over `/web` in one round: 8 connections x 8 requests in flight."""

    name: str
    concurrency: int
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    service_cpu_us_per_request: float
    load_generator_cpu_s: float
    duration_s: float


class HttpRoundTrips(msgspec.Struct, frozen=True, kw_only=True):
    """HTTP `get_user` with the same token under wrk, the round beside it."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    service_cpu_us_per_request: float | None


class RoundTrips(msgspec.Struct, frozen=True, kw_only=True):
    websocket: tuple[WebSocketRoundTrips, ...]
    http: tuple[HttpRoundTrips, ...]
    # Mean WebSocket round trips per second over mean HTTP requests per second.
    ratio: float


class FanOut(msgspec.Struct, frozen=True, kw_only=True):
    """One writer's user creations broadcast to every reader connection."""

    readers: int
    events: int
    deliveries: int
    expected_deliveries: int
    readers_with_every_event: int
    duplicates: int
    deliveries_per_second: float | None
    p50_ms: float | None
    p99_ms: float | None
    service_cpu_s: float
    load_generator_cpu_s: float
    duration_s: float


class IdleMemory(msgspec.Struct, frozen=True, kw_only=True):
    connections: int
    rss_before_mib: float
    rss_after_mib: float
    kib_per_connection: float


class WebSocketFigures(msgspec.Struct, frozen=True, kw_only=True):
    round_trips: RoundTrips
    fan_out: FanOut
    idle_memory: IdleMemory
    # The same for a bare ASGI app under the same granian: granian's own share.
    idle_memory_floor: IdleMemory
