"""Mixed HTTP load against the service: `concurrency` clients, each alternating reads (GET of a user
acknowledged earlier) and creates (POST) in the ratio `write_share`, until `seconds` pass or
`max_requests` are sent. Bounded in count and time.

`bench.probes.cluster freeze` measures with it, and `tests/cluster` uses it for its HTTP-level
failure tests (a test never asserts a wall-clock threshold).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Sample:
    """One request of the load: what it was, how it ended, when it started (monotonic s), how long."""

    op: str  # "read" or "write"
    status: int  # 0: no HTTP answer at all (connection error, client timeout)
    started: float
    latency_s: float
    user_id: str | None


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    # Every user the service acknowledged (201) during the load.
    acknowledged: list[str] = field(default_factory=list)

    def failed(self) -> list[Sample]:
        """Requests that did not succeed: anything but 200 for a read and 201 for a create."""
        return [s for s in self.samples if s.status != (200 if s.op == "read" else 201)]

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.started < end]


def percentile(samples: list[Sample], op: str, q: float) -> float | None:
    """The q-quantile (0..1) latency in milliseconds of the `op` samples, nearest rank."""
    latencies = sorted(s.latency_s for s in samples if s.op == op)
    if not latencies:
        return None
    rank = max(0, min(len(latencies) - 1, round(q * len(latencies) + 0.5) - 1))
    return latencies[rank] * 1000


def new_user_body(n: int) -> dict[str, Any]:
    return {
        "name": f"Cluster User {n}",
        "email": f"cluster-{uuid.uuid4().hex[:12]}@example.com",
        "age": n % 90,
    }


async def create_users(client: httpx.AsyncClient, count: int) -> list[str]:
    """Create `count` users one request each (the ids every read of the load picks from)."""
    ids: list[str] = []
    for n in range(count):
        response = await client.post("/users", json=new_user_body(n))
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids


async def run_load(
    client: httpx.AsyncClient,
    known_ids: list[str],
    *,
    seconds: float,
    max_requests: int,
    concurrency: int = 6,
    write_share: float = 0.3,
    result: LoadResult | None = None,
) -> LoadResult:
    """Send mixed reads and creates until `seconds` pass or `max_requests` are sent."""
    result = result or LoadResult()
    ids = list(known_ids)
    deadline = time.monotonic() + seconds
    sent = 0
    rng = random.Random()

    async def client_loop() -> None:
        nonlocal sent
        while time.monotonic() < deadline and sent < max_requests:
            sent += 1
            started = time.monotonic()
            user_id: str | None = None
            if rng.random() < write_share or not ids:
                op = "write"
                try:
                    response = await client.post("/users", json=new_user_body(sent))
                    status = response.status_code
                    if status == 201:
                        user_id = response.json()["id"]
                except httpx.HTTPError:
                    status = 0
            else:
                op = "read"
                user_id = rng.choice(ids)
                try:
                    status = (await client.get(f"/users/{user_id}")).status_code
                except httpx.HTTPError:
                    status = 0
            result.samples.append(Sample(op, status, started, time.monotonic() - started, user_id))
            if op == "write" and status == 201 and user_id is not None:
                ids.append(user_id)
                result.acknowledged.append(user_id)

    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return result


async def load_during(
    client: httpx.AsyncClient,
    known_ids: list[str],
    action: Callable[[], Awaitable[None]],
    *,
    seconds: float,
    max_requests: int,
    concurrency: int = 6,
) -> LoadResult:
    """The load for `seconds`, with `action` running beside it (it starts with the load)."""
    result = LoadResult()
    await asyncio.gather(
        run_load(
            client,
            known_ids,
            seconds=seconds,
            max_requests=max_requests,
            concurrency=concurrency,
            result=result,
        ),
        action(),
    )
    return result
