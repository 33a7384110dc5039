"""The WebSocket API (`/web`) under load: round trips against HTTP, broadcast fan-out, idle memory.

One service with authentication on (the local Keycloak; every client holds a token of `bob`, who has
`users:read`) and the local Redis (broadcast through Redis pub/sub), with the message rate limit and
the connection limit off, so that what is measured is the API itself:

1. `GET_USER` round trips per second over WebSocket against HTTP `get_user` with the same token at
   64 connections (wrk) on the same server, in alternating rounds. The WebSocket client is Python:
   its CPU is reported, and it competes with the service for the machine's cores, which wrk's
   barely does.
2. Broadcast fan-out: 100 user creations to 1,000 reader connections.
3. Idle memory: the service's RSS (granian's processes) per idle authenticated connection at
   2,000, on a fresh server; and the same for the floor, a bare ASGI app that only accepts and
   waits, which is what granian itself holds per connection, whatever the application does.

(`websocket_load` and `websocket_idle` have the measurements.) `BENCH_SCENARIOS=websocket just bench` runs
this alone; the figures go to the notes, the report and `websocket.json` next to it.
"""

from __future__ import annotations

import asyncio

import msgspec

from bench.harness.console import say
from bench.harness.provision import token_env
from bench.harness.server import SERVICE_FACTORY, Server, serve, stop
from bench.harness.tokens import READER, WRITER, password_token
from bench.pipeline import websocket_load as load
from bench.pipeline.context import RunContext
from bench.pipeline.findings import Findings
from bench.pipeline.token_rounds import measure_get_user
from bench.pipeline.websocket_figures import (
    FanOut,
    HttpRoundTrips,
    IdleMemory,
    RoundTrips,
    WebSocketFigures,
)
from bench.pipeline.websocket_idle import IDLE_CONNECTIONS, idle_memory
from cqlstar import localredis
from cqlstar.identity import localkeycloak

FLOOR_APP = "bench.pipeline.websocket_idle:websocket_floor_app"


def websocket(ctx: RunContext) -> Findings:
    load.raise_open_files_limit(IDLE_CONNECTIONS + load.READERS + 1024)
    issuer = localkeycloak.start()
    env = {
        **token_env(issuer),
        "REDIS_URL": localredis.start(),
        "WS_RATE_LIMIT": "0",
        "WS_MAX_CONNECTIONS": "0",
    }
    server = serve("service_websocket", SERVICE_FACTORY, ctx.service_env(env), ctx.config.log_dir)
    try:
        trips = _round_trips(ctx, server, issuer)
        fan_out = _fan_out(ctx, server, issuer)
    finally:
        stop(server)
    figures = WebSocketFigures(
        round_trips=trips,
        fan_out=fan_out,
        idle_memory=_idle_memory(ctx, issuer, env),
        idle_memory_floor=_idle_memory_floor(ctx),
    )
    output = ctx.config.output
    output.mkdir(parents=True, exist_ok=True)
    (output / "websocket.json").write_bytes(_encode(figures))
    return Findings(websocket=figures)


def _round_trips(ctx: RunContext, server: Server, issuer: str) -> RoundTrips:
    ids = ctx.dataset.ids()
    rounds = ctx.config.tracing_rounds
    seconds = max(1, round(ctx.config.seconds / rounds))
    ws_rounds, http_rounds = [], []
    for number in range(1, rounds + 1):
        token = password_token(issuer, READER)
        say(f"websocket round {number}/{rounds}: HTTP get_user then WS GET_USER, {seconds} s")
        http = measure_get_user(ctx, server, "auth", seconds, [token])
        http_rounds.append(
            HttpRoundTrips(
                requests_per_second=http.requests_per_second,
                p50_ms=http.p50_ms,
                p99_ms=http.p99_ms,
                service_cpu_us_per_request=http.service_cpu_us_per_request,
            )
        )
        ws_rounds.append(asyncio.run(load.round_trips(server, token, ids, seconds)))
    ws_rate = sum(r.requests_per_second for r in ws_rounds) / rounds
    http_rate = sum(r.requests_per_second for r in http_rounds) / rounds
    ws_cpu = sum(r.service_cpu_us_per_request for r in ws_rounds) / rounds
    http_cpu = sum(r.service_cpu_us_per_request or 0 for r in http_rounds) / rounds
    _note(
        ctx,
        f"websocket: GET_USER round trips / HTTP get_user (both with a token, 64 in flight) = "
        f"{ws_rate / http_rate:.3f} ({ws_rate:,.0f} vs {http_rate:,.0f} per second; service "
        f"CPU per request {ws_cpu:.0f} vs {http_cpu:.0f} µs; {rounds} alternating rounds; the "
        f"WebSocket client is Python in the harness, wrk is C)",
    )
    return RoundTrips(
        websocket=tuple(ws_rounds), http=tuple(http_rounds), ratio=round(ws_rate / http_rate, 3)
    )


def _fan_out(ctx: RunContext, server: Server, issuer: str) -> FanOut:
    token = password_token(issuer, READER)
    say(f"websocket: broadcast of {load.EVENTS} events to {load.READERS} readers")
    fan_out = asyncio.run(load.fan_out(server, token, password_token(issuer, WRITER)))
    _note(
        ctx,
        f"websocket: broadcast to {load.READERS} readers: {fan_out.deliveries_per_second:,.0f} "
        f"deliveries/s, latency p50 {fan_out.p50_ms} ms, p99 {fan_out.p99_ms} ms; "
        f"{fan_out.readers_with_every_event} of {load.READERS} readers got all {load.EVENTS} "
        f"events, {fan_out.duplicates} duplicates",
    )
    return fan_out


def _idle_memory(ctx: RunContext, issuer: str, env: dict[str, str]) -> IdleMemory:
    # A fresh server, so the figure is not the previous load's leftovers.
    served_env = ctx.service_env(env)
    server = serve("service_websocket_idle", SERVICE_FACTORY, served_env, ctx.config.log_dir)
    try:
        token = password_token(issuer, READER)
        say(f"websocket: memory of {IDLE_CONNECTIONS} idle authenticated connections")
        idle = asyncio.run(idle_memory(server, token))
    finally:
        stop(server)
    _note(
        ctx,
        f"websocket: {idle.kib_per_connection} KiB of service RSS per idle authenticated "
        f"connection at {IDLE_CONNECTIONS} ({idle.rss_before_mib} -> "
        f"{idle.rss_after_mib} MiB)",
    )
    return idle


def _idle_memory_floor(ctx: RunContext) -> IdleMemory:
    floor = serve("websocket_floor", FLOOR_APP, ctx.service_env(), ctx.config.log_dir)
    try:
        say(f"websocket: memory of {IDLE_CONNECTIONS} idle connections to a bare ASGI app")
        idle = asyncio.run(idle_memory(floor, "", probe=False))
    finally:
        stop(floor)
    _note(
        ctx,
        f"websocket: the floor, a bare ASGI app that accepts and waits under the same granian: "
        f"{idle.kib_per_connection} KiB per idle connection at {IDLE_CONNECTIONS}",
    )
    return idle


def _note(ctx: RunContext, note: str) -> None:
    ctx.note(note)
    say(note)


def _encode(figures: WebSocketFigures) -> bytes:
    return msgspec.json.format(msgspec.json.encode(figures), indent=2) + b"\n"
