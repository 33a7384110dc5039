"""Mixed HTTP load against the service on the local three-node cluster, and the node-freeze figure.

    uv run python -m bench.probes.cluster freeze                                  (speculative execution on)
    uv run python -m bench.probes.cluster freeze --speculative-delay-ms off       (off)

`freeze` starts the local cluster if it does not answer (`cqlstar.localcluster`), serves the service
on it (three replicas, LOCAL_QUORUM, a keyspace of its own, dropped at the end), then runs the same
bounded load twice: a baseline, and the same load while one node is frozen (SIGSTOP) for 20 s. It
prints the read p99 of each phase, their ratio, and how many requests failed; the figures in
README come from this command. The load is `bench.probes.cluster_load`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.probes.cluster_load import LoadResult, create_users, load_during, percentile, run_load

FREEZE_S = 20.0


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
