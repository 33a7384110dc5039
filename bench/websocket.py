"""The WebSocket API (`/web`) under load: round trips against HTTP, broadcast fan-out, idle memory.

One service with authentication on (the local Keycloak; every client holds a token of `bob`, who has
`users:read`) and the local Redis (broadcast through Redis pub/sub), with the message rate limit and
the connection limit off, so that what is measured is the API itself:

1. `GET_USER` round trips per second over WebSocket, 64 requests in flight (8 connections, 8 each),
   against HTTP `get_user` with the same token at 64 connections (wrk) on the same server, in
   alternating rounds. The WebSocket client is Python (`websockets`, in this process): its CPU is
   reported, and it competes with the service for the machine's cores, which wrk's barely does.
2. Broadcast fan-out: 1,000 reader connections; one writer creates users one after another over
   WebSocket; each reader's delivery latency is its receive time minus the event's `created_at`
   (the same clock). Deliveries per second over the whole fan-out, p50/p99, and a check that every
   reader received every event exactly once.
3. Idle memory: the service's RSS (granian's processes) before and after 2,000 authenticated idle
   connections, divided by 2,000; and the same for the floor, a bare ASGI app that only accepts and
   waits (`websocket_floor_app`, served the same way), which is what granian itself holds per
   connection, whatever the application does.

`BENCH_SCENARIOS=websocket just bench` runs this alone; the figures go to the notes and to
`websocket.json` next to the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import resource
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from bench.auth import _login, _measure
from bench.harness.procs import CpuMeter, tree_rss_bytes
from bench.harness.server import SERVICE_FACTORY, Server, serve, stop
from bench.harness.stats import percentile
from bench.run import Run, say
from cqlstar import localredis
from cqlstar.identity import localkeycloak

CONNECTIONS = 8
IN_FLIGHT_PER_CONNECTION = 8
READERS = 1000
EVENTS = 100
IDLE_CONNECTIONS = 2000
OPEN_BATCH = 100


def _ws_url(server: Server) -> str:
    return server.base_url.replace("http://", "ws://", 1) + "/web"


def _raise_open_files_limit(wanted: int) -> None:
    """Thousands of sockets: the soft limit up to the hard one (the service inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


@contextlib.asynccontextmanager
async def _connections(
    server: Server, token: str, count: int
) -> AsyncIterator[list[ClientConnection]]:
    headers = {"Authorization": f"Bearer {token}"}
    opened: list[ClientConnection] = []
    try:
        for start in range(0, count, OPEN_BATCH):
            opened += await asyncio.gather(
                *(
                    websockets.connect(
                        _ws_url(server),
                        additional_headers=headers,
                        ping_interval=None,
                        max_queue=None,
                        open_timeout=60,
                    )
                    for _ in range(min(OPEN_BATCH, count - start))
                )
            )
        yield opened
    finally:
        await asyncio.gather(*(c.close() for c in opened), return_exceptions=True)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---- 1. GET_USER round trips ------------------------------------------------------------------


async def _round_trips(
    server: Server, token: str, ids: list[str], seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    stop_at = 0.0
    measuring = False

    async def connection_load(connection: ClientConnection) -> None:
        waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

        async def read() -> None:
            async for frame in connection:
                answer = json.loads(frame)
                future = waiting.pop(answer.get("req_id"), None)
                if future is not None:
                    future.set_result(answer)

        async def worker() -> None:
            loop = asyncio.get_running_loop()
            while time.monotonic() < stop_at:
                req_id = str(uuid.uuid4())
                future = loop.create_future()
                waiting[req_id] = future
                started = time.perf_counter()
                await connection.send(
                    json.dumps({"pkg_id": 4, "req_id": req_id, "data": {"id": random.choice(ids)}})
                )
                answer = await future
                if answer["status_code"] != 0:
                    raise RuntimeError(f"GET_USER answered {answer}")
                if measuring:
                    latencies.append(time.perf_counter() - started)

        reader = asyncio.create_task(read())
        try:
            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT_PER_CONNECTION)))
        finally:
            reader.cancel()

    async with _connections(server, token, CONNECTIONS) as connections:
        stop_at = time.monotonic() + 2  # warm-up
        await asyncio.gather(*(connection_load(c) for c in connections))
        measuring = True
        meter = CpuMeter({"service": server.pid})
        meter.start()
        client_cpu = _cpu_s()
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(connection_load(c) for c in connections))
        elapsed = time.monotonic() - started
        cpu = meter.stop()
        client_cpu = _cpu_s() - client_cpu
    ordered = sorted(latencies)
    return {
        "name": "GET_USER_websocket",
        "concurrency": CONNECTIONS * IN_FLIGHT_PER_CONNECTION,
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * percentile(ordered, 0.50), 3),
        "p99_ms": round(1000 * percentile(ordered, 0.99), 3),
        "service_cpu_us_per_request": round(1e6 * cpu["service"] / len(latencies), 1),
        "load_generator_cpu_s": round(client_cpu, 2),
        "duration_s": round(elapsed, 2),
    }


# ---- 2. Broadcast fan-out -----------------------------------------------------------------------


async def _fan_out(server: Server, token: str, writer_token: str) -> dict[str, Any]:
    received: list[dict[str, float]] = [{} for _ in range(READERS)]
    duplicates = 0
    last_delivery = 0.0

    async def read(index: int, connection: ClientConnection) -> None:
        nonlocal duplicates, last_delivery
        mine = received[index]
        async for frame in connection:
            now = time.time()
            message = json.loads(frame)
            if message.get("type") == "ping":
                await connection.send('{"type": "pong"}')
                continue
            if message.get("pkg_id") != 100:
                continue
            user_id = message["data"]["user_id"]
            if user_id in mine:
                duplicates += 1
            mine[user_id] = now - _epoch_s(message["data"]["user"]["created_at"])
            last_delivery = time.monotonic()

    async with (
        _connections(server, token, READERS) as readers,
        _connections(server, writer_token, 1) as (writer,),
    ):
        tasks = [asyncio.create_task(read(i, c)) for i, c in enumerate(readers)]
        await asyncio.sleep(1)
        meter = CpuMeter({"service": server.pid})
        meter.start()
        client_cpu = _cpu_s()
        started = time.monotonic()
        for n in range(EVENTS):
            req_id = str(uuid.uuid4())
            tag = uuid.uuid4().hex[:12]
            await writer.send(
                json.dumps(
                    {
                        "pkg_id": 3,
                        "req_id": req_id,
                        "data": {"name": f"Fan {n}", "email": f"fan.{tag}@example.com", "age": 30},
                    }
                )
            )
            while True:
                answer = json.loads(await writer.recv())
                if answer.get("req_id") == req_id:
                    if answer["status_code"] != 0:
                        raise RuntimeError(f"CREATE_USER answered {answer}")
                    break
        # Wait for the stragglers: every reader, every event, or 30 s of silence.
        expected = READERS * EVENTS
        while (  # noqa: ASYNC110 (a bounded poll: it also ends after 30 s without a delivery)
            sum(map(len, received)) < expected
            and time.monotonic() - max(last_delivery, started) < 30
        ):
            await asyncio.sleep(0.1)
        elapsed = max(last_delivery, started) - started
        cpu = meter.stop()
        client_cpu = _cpu_s() - client_cpu
        for task in tasks:
            task.cancel()
    latencies = sorted(latency for mine in received for latency in mine.values())
    complete = sum(1 for mine in received if len(mine) == EVENTS)
    return {
        "readers": READERS,
        "events": EVENTS,
        "deliveries": len(latencies),
        "expected_deliveries": expected,
        "readers_with_every_event": complete,
        "duplicates": duplicates,
        "deliveries_per_second": round(len(latencies) / elapsed, 1) if elapsed else None,
        "p50_ms": round(1000 * percentile(latencies, 0.50), 2) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 0.99), 2) if latencies else None,
        "service_cpu_s": round(cpu["service"], 2),
        "load_generator_cpu_s": round(client_cpu, 2),
        "duration_s": round(elapsed, 2),
    }


def _writer_token(issuer: str) -> str:
    """A token of `alice`, who holds users:write (bob, the readers' account, does not)."""
    answer = httpx.post(
        f"{issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "cqlstar-api",
            "username": "alice",
            "password": "alice-pass",
        },
        timeout=30,
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def _epoch_s(timestamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(timestamp).timestamp()


# ---- 3. Idle memory -----------------------------------------------------------------------------


async def _idle_memory(server: Server, token: str, *, probe: bool = True) -> dict[str, Any]:
    async with _connections(server, token, 10):
        await asyncio.sleep(1)
        before = tree_rss_bytes(server.pid)
    await asyncio.sleep(1)
    before = min(before, tree_rss_bytes(server.pid))
    async with _connections(server, token, IDLE_CONNECTIONS) as connections:
        if probe:  # authenticated and admitted: a request on the last one is answered
            last = connections[-1]
            await last.send(
                json.dumps({"pkg_id": 1, "req_id": str(uuid.uuid4()), "data": {"limit": 1}})
            )
            answer = json.loads(await last.recv())
            if answer["status_code"] != 0:
                raise RuntimeError(f"idle connection not admitted: {answer}")
        await asyncio.sleep(3)
        after = tree_rss_bytes(server.pid)
    per_connection = (after - before) / IDLE_CONNECTIONS
    return {
        "connections": IDLE_CONNECTIONS,
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "kib_per_connection": round(per_connection / 1024, 1),
    }


def websocket_floor_app() -> Any:
    """The idle-memory floor: a bare ASGI app under granian that accepts a WebSocket and waits
    for the disconnect (and answers any HTTP request 200, for the readiness probe)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        else:
            await receive()
            await send({"type": "websocket.accept"})
            while (await receive())["type"] != "websocket.disconnect":
                pass

    return app


# ---- the phase ----------------------------------------------------------------------------------


def _floor_phase(run: Run, results: dict[str, Any]) -> None:
    floor = serve(
        "websocket_floor", "bench.websocket:websocket_floor_app", run.service_env(), run.log_dir
    )
    try:
        say(f"websocket: memory of {IDLE_CONNECTIONS} idle connections to a bare ASGI app")
        floor_idle = asyncio.run(_idle_memory(floor, "", probe=False))
        results["idle_memory_floor"] = floor_idle
        note = (
            f"websocket: the floor, a bare ASGI app that accepts and waits under the same granian: "
            f"{floor_idle['kib_per_connection']} KiB per idle connection at {IDLE_CONNECTIONS}"
        )
        run.notes.append(note)
        say(note)
    finally:
        stop(floor)


def websocket_phase(run: Run) -> None:
    _raise_open_files_limit(IDLE_CONNECTIONS + READERS + 1024)
    issuer = localkeycloak.start()
    redis_url = localredis.start()
    env = {
        "CQLSTAR_AUTH": "oidc",
        "OIDC_ISSUER": issuer,
        "REDIS_URL": redis_url,
        "RATE_LIMIT": "0",
        "WS_RATE_LIMIT": "0",
        "WS_MAX_CONNECTIONS": "0",
    }
    ids = [line for line in run.ids_file.read_text().split("\n") if line]
    rounds = run.config.tracing_rounds
    seconds = max(1, round(run.config.seconds / rounds))
    results: dict[str, Any] = {}
    server = serve("service_websocket", SERVICE_FACTORY, run.service_env(env), run.log_dir)
    try:
        ws_rounds: list[dict[str, Any]] = []
        http_rounds: list[dict[str, Any]] = []
        for number in range(1, rounds + 1):
            (token,) = _login(issuer, 1)
            say(f"websocket round {number}/{rounds}: HTTP get_user then WS GET_USER, {seconds} s")
            http_rounds.append(_measure(run, server, "auth", seconds, [token]))
            ws_rounds.append(asyncio.run(_round_trips(server, token, ids, seconds)))
        ws_rate = sum(r["requests_per_second"] for r in ws_rounds) / rounds
        http_rate = sum(r["requests_per_second"] for r in http_rounds) / rounds
        results["round_trips"] = {
            "websocket": ws_rounds,
            "http": [
                {
                    k: r[k]
                    for k in (
                        "requests_per_second",
                        "p50_ms",
                        "p99_ms",
                        "service_cpu_us_per_request",
                    )
                }
                for r in http_rounds
            ],
            "ratio": round(ws_rate / http_rate, 3),
        }
        ws_cpu = sum(r["service_cpu_us_per_request"] for r in ws_rounds) / rounds
        http_cpu = sum(r["service_cpu_us_per_request"] or 0 for r in http_rounds) / rounds
        note = (
            f"websocket: GET_USER round trips / HTTP get_user (both with a token, 64 in flight) = "
            f"{ws_rate / http_rate:.3f} ({ws_rate:,.0f} vs {http_rate:,.0f} per second; service "
            f"CPU per request {ws_cpu:.0f} vs {http_cpu:.0f} µs; {rounds} alternating rounds; the "
            f"WebSocket client is Python in the harness, wrk is C)"
        )
        run.notes.append(note)
        say(note)

        (token,) = _login(issuer, 1)
        say(f"websocket: broadcast of {EVENTS} events to {READERS} readers")
        fan_out = asyncio.run(_fan_out(server, token, _writer_token(issuer)))
        results["fan_out"] = fan_out
        note = (
            f"websocket: broadcast to {READERS} readers: {fan_out['deliveries_per_second']:,.0f} "
            f"deliveries/s, latency p50 {fan_out['p50_ms']} ms, p99 {fan_out['p99_ms']} ms; "
            f"{fan_out['readers_with_every_event']} of {READERS} readers got all {EVENTS} events, "
            f"{fan_out['duplicates']} duplicates"
        )
        run.notes.append(note)
        say(note)
    finally:
        stop(server)

    # A fresh server, so the figure is not the previous load's leftovers.
    server = serve("service_websocket_idle", SERVICE_FACTORY, run.service_env(env), run.log_dir)
    try:
        (token,) = _login(issuer, 1)
        say(f"websocket: memory of {IDLE_CONNECTIONS} idle authenticated connections")
        idle = asyncio.run(_idle_memory(server, token))
        results["idle_memory"] = idle
        note = (
            f"websocket: {idle['kib_per_connection']} KiB of service RSS per idle authenticated "
            f"connection at {IDLE_CONNECTIONS} ({idle['rss_before_mib']} -> "
            f"{idle['rss_after_mib']} MiB)"
        )
        run.notes.append(note)
        say(note)
    finally:
        stop(server)
    _floor_phase(run, results)
    run.config.output.mkdir(parents=True, exist_ok=True)
    (run.config.output / "websocket.json").write_text(json.dumps(results, indent=2) + "\n")
