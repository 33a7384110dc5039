"""Two of the WebSocket phase's measurements against a served app, each an asyncio program:

1. `round_trips`: `GET_USER` round trips per second over `/web`, 64 requests in flight (8
   connections, 8 each), the client being Python (`websockets`, in the harness's process);
2. `fan_out`: 1,000 reader connections; one writer creates users one after another over
   WebSocket; each reader's delivery latency is its receive time minus the event's `created_at`
   (the same clock), and every reader should receive every event exactly once.

`open_connections` opens authenticated connections in batches, for these and for
`websocket_idle`, which measures what idle connections cost in memory.
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
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from bench.harness.procs import CpuMeter, own_cpu_seconds
from bench.harness.server import Server
from bench.harness.stats import percentile
from bench.pipeline.websocket_figures import FanOut, WebSocketRoundTrips

CONNECTIONS = 8
IN_FLIGHT_PER_CONNECTION = 8
READERS = 1000
EVENTS = 100
OPEN_BATCH = 100


def _ws_url(server: Server) -> str:
    return server.base_url.replace("http://", "ws://", 1) + "/web"


def raise_open_files_limit(wanted: int) -> None:
    """Thousands of sockets: the soft limit up to the hard one (the service inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


@contextlib.asynccontextmanager
async def open_connections(
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


# ---- 1. GET_USER round trips ------------------------------------------------------------------


async def round_trips(
    server: Server, token: str, ids: list[str], seconds: float
) -> WebSocketRoundTrips:
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

    async with open_connections(server, token, CONNECTIONS) as connections:
        stop_at = time.monotonic() + 2  # warm-up
        await asyncio.gather(*(connection_load(c) for c in connections))
        measuring = True
        meter = CpuMeter({"service": server.pid})
        meter.start()
        client_cpu = own_cpu_seconds()
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(connection_load(c) for c in connections))
        elapsed = time.monotonic() - started
        cpu = meter.stop()
        client_cpu = own_cpu_seconds() - client_cpu
    ordered = sorted(latencies)
    return WebSocketRoundTrips(
        name="GET_USER_websocket",
        concurrency=CONNECTIONS * IN_FLIGHT_PER_CONNECTION,
        requests=len(latencies),
        requests_per_second=round(len(latencies) / elapsed, 1),
        p50_ms=round(1000 * percentile(ordered, 0.50), 3),
        p99_ms=round(1000 * percentile(ordered, 0.99), 3),
        service_cpu_us_per_request=round(1e6 * cpu["service"] / len(latencies), 1),
        load_generator_cpu_s=round(client_cpu, 2),
        duration_s=round(elapsed, 2),
    )


# ---- 2. Broadcast fan-out -----------------------------------------------------------------------


@dataclass
class _Deliveries:
    """What the readers received: for each reader, each event's delivery latency in seconds."""

    received: list[dict[str, float]]
    duplicates: int = 0
    last: float = 0.0  # monotonic time of the latest delivery

    async def read(self, index: int, connection: ClientConnection) -> None:
        mine = self.received[index]
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
                self.duplicates += 1
            mine[user_id] = now - _epoch_s(message["data"]["user"]["created_at"])
            self.last = time.monotonic()

    def count(self) -> int:
        return sum(map(len, self.received))


async def _create_users(writer: ClientConnection, count: int) -> None:
    """One CREATE_USER after another, each waiting for its answer."""
    for n in range(count):
        req_id = str(uuid.uuid4())
        tag = uuid.uuid4().hex[:12]
        data = {"name": f"Fan {n}", "email": f"fan.{tag}@example.com", "age": 30}
        await writer.send(json.dumps({"pkg_id": 3, "req_id": req_id, "data": data}))
        while True:
            answer = json.loads(await writer.recv())
            if answer.get("req_id") == req_id:
                if answer["status_code"] != 0:
                    raise RuntimeError(f"CREATE_USER answered {answer}")
                break


async def fan_out(server: Server, token: str, writer_token: str) -> FanOut:
    deliveries = _Deliveries([{} for _ in range(READERS)])
    expected = READERS * EVENTS
    async with (
        open_connections(server, token, READERS) as readers,
        open_connections(server, writer_token, 1) as (writer,),
    ):
        tasks = [asyncio.create_task(deliveries.read(i, c)) for i, c in enumerate(readers)]
        await asyncio.sleep(1)
        meter = CpuMeter({"service": server.pid})
        meter.start()
        client_cpu = own_cpu_seconds()
        started = time.monotonic()
        await _create_users(writer, EVENTS)
        # Wait for the stragglers: every reader, every event, or 30 s of silence.
        while (  # noqa: ASYNC110 (a bounded poll: it also ends after 30 s without a delivery)
            deliveries.count() < expected and time.monotonic() - max(deliveries.last, started) < 30
        ):
            await asyncio.sleep(0.1)
        elapsed = max(deliveries.last, started) - started
        cpu = meter.stop()
        client_cpu = own_cpu_seconds() - client_cpu
        for task in tasks:
            task.cancel()
    latencies = sorted(latency for mine in deliveries.received for latency in mine.values())
    return FanOut(
        readers=READERS,
        events=EVENTS,
        deliveries=len(latencies),
        expected_deliveries=expected,
        readers_with_every_event=sum(1 for mine in deliveries.received if len(mine) == EVENTS),
        duplicates=deliveries.duplicates,
        deliveries_per_second=round(len(latencies) / elapsed, 1) if elapsed else None,
        p50_ms=round(1000 * percentile(latencies, 0.50), 2) if latencies else None,
        p99_ms=round(1000 * percentile(latencies, 0.99), 2) if latencies else None,
        service_cpu_s=round(cpu["service"], 2),
        load_generator_cpu_s=round(client_cpu, 2),
        duration_s=round(elapsed, 2),
    )


def _epoch_s(timestamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(timestamp).timestamp()
