"""Mixed HTTP load against the service on the local three-node cluster, and the node-freeze figure.

    uv run python -m bench.probes.cluster freeze                                  (speculative execution on)
    uv run python -m bench.probes.cluster freeze --speculative-delay-ms off       (off)

`freeze` starts the local cluster if it does not answer (`cqlstar.localcluster`), serves the service
on it (three replicas, LOCAL_QUORUM, a keyspace of its own, dropped at the end), then runs the same
bounded load twice: a baseline, and the same load while one node is frozen (SIGSTOP) for 20 s. It
prints the read p99 of each phase, their ratio, and how many requests failed. `tests/cluster` uses
the load generator below for its HTTP-level failure tests; the figures in README come from this
command (a test never asserts a wall-clock threshold).

The load is bounded in count and time: `concurrency` clients, each alternating reads (GET of a user
acknowledged earlier) and creates (POST) in the ratio `write_share`, until `seconds` pass or
`max_requests` are sent.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

FREEZE_S = 20.0


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


@dataclass(frozen=True)
class FreezeFigures:
    before: LoadResult
    during: LoadResult
    frozen_from: float
    frozen_until: float

    def read_p99_ms(self) -> tuple[float | None, float | None]:
        frozen = self.during.between(self.frozen_from, self.frozen_until)
        return percentile(self.before.samples, "read", 0.99), percentile(frozen, "read", 0.99)

    def summary(self) -> str:
        before, during = self.read_p99_ms()
        ratio = f"{during / before:.2f}" if before and during else "n/a"
        frozen = self.during.between(self.frozen_from, self.frozen_until)
        return (
            f"read p99 before the freeze {_ms(before)}, during it {_ms(during)} (x{ratio}); "
            f"requests: {len(self.before.samples)} before, {len(frozen)} while frozen; "
            f"failed: {len(self.before.failed())} before, {len(self.during.failed())} during"
        )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


async def measure_freeze(
    client: httpx.AsyncClient,
    known_ids: list[str],
    node: int,
    *,
    baseline_s: float = 10.0,
    freeze_s: float = FREEZE_S,
    max_requests: int = 600,
    concurrency: int = 6,
) -> FreezeFigures:
    """A baseline, then the same load while node `node` is frozen for `freeze_s` (then thawed)."""
    from cqlstar import localcluster

    before = await run_load(
        client, known_ids, seconds=baseline_s, max_requests=max_requests, concurrency=concurrency
    )
    window: dict[str, float] = {}

    async def freeze_then_thaw() -> None:
        await asyncio.sleep(1.0)
        localcluster.freeze(node)
        window["from"] = time.monotonic()
        try:
            await asyncio.sleep(freeze_s)
        finally:
            localcluster.thaw(node)
            window["until"] = time.monotonic()

    during = await load_during(
        client,
        known_ids,
        freeze_then_thaw,
        seconds=freeze_s + 3.0,
        max_requests=max_requests * 3,
        concurrency=concurrency,
    )
    return FreezeFigures(before, during, window["from"], window["until"])


def _serve_on_cluster(speculative_delay_ms: str, log_dir: Path) -> tuple[Any, str]:
    from bench.harness.server import SERVICE_FACTORY, serve
    from cqlstar import localcluster

    keyspace = f"bench_cluster_{uuid.uuid4().hex[:8]}"
    env = {
        "CASSANDRA_HOSTS": localcluster.HOSTS_ENV,
        "CASSANDRA_REPLICATION": localcluster.REPLICATION_ENV,
        "CASSANDRA_CONSISTENCY": "LOCAL_QUORUM",
        "CASSANDRA_SPECULATIVE_DELAY_MS": speculative_delay_ms,
        "CASSANDRA_KEYSPACE": keyspace,
        "CQLSTAR_AUTH": "disabled",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT": "100000/minute",  # one client address sends all the load
    }
    return serve("cluster-freeze", SERVICE_FACTORY, env, log_dir), keyspace


def _drop_keyspace(keyspace: str) -> None:
    from cassandra.cluster import Cluster

    from cqlstar import localcluster

    cluster = Cluster(list(localcluster.ADDRESSES))
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        cluster.shutdown()


def main(argv: list[str] | None = None) -> None:
    from bench.harness.server import stop
    from cqlstar import localcluster

    parser = argparse.ArgumentParser(
        prog="python -m bench.probes.cluster", description=__doc__.splitlines()[0]
    )
    parser.add_argument("action", choices=["freeze"])
    parser.add_argument("--speculative-delay-ms", default="50", help="a delay in ms, or off")
    parser.add_argument("--node", type=int, default=3, help="the node to freeze (1 to 3)")
    parser.add_argument("--concurrency", type=int, default=6)
    args = parser.parse_args(argv)

    localcluster.start()
    server, keyspace = _serve_on_cluster(args.speculative_delay_ms, Path("bench/results/cluster"))

    async def measure() -> FreezeFigures:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            ids = await create_users(client, 50)
            return await measure_freeze(client, ids, args.node, concurrency=args.concurrency)

    try:
        figures = asyncio.run(measure())
    finally:
        stop(server)
        _drop_keyspace(keyspace)
    print(
        f"speculative execution {args.speculative_delay_ms} ms, node {args.node} frozen {FREEZE_S:.0f} s: {figures.summary()}"
    )


if __name__ == "__main__":
    main()
