"""What the service's app costs without an HTTP server: its ASGI app called in-process.

    uv run python -m bench.probes.inprocess                      # 3 rounds of 20,000 requests each
    uv run python -m bench.probes.inprocess --rounds 5 --requests 40000
    OTEL_SDK_DISABLED=true uv run --with py-spy py-spy record --gil -o get_user.svg -- \
        python -m bench.probes.inprocess --measure get_user --requests 60000

`just bench` reports CPU per request for the service under granian (`get_user`), for the same app
answering a constant body (the HTTP floor) and for the driver and the async layer without HTTP. What
it cannot say is how much of a request's cost is granian's and how much the app's. Here the app
itself (`cqlstar.app:create_app`, and the floor's app) is called as an ASGI application by
`--concurrency` asyncio tasks on uvloop, against the real Cassandra and the bench dataset, so the
CPU per request is Litestar's, the handler's, telemetry's and the Cassandra layer's, and nothing of
an HTTP server or a load generator. Subtracting it from `just bench`'s figure for the same app under
granian leaves what serving HTTP costs.

Four measurements, in this order each round, every one in a fresh process (the SDK reads `OTEL_*`
once): `get_user` and the floor, each with tracing off (`OTEL_SDK_DISABLED=true`) and in the
default configuration (no exporter, so no spans: only the metrics' instrumentation points). Rounds take turns so that the machine's drift
over minutes falls on all four alike; a measurement's figure is its rounds' total CPU over their
total requests. CPU is the whole process's (`time.process_time`: the event loop, the driver's I/O
thread, the log writer), as `just bench` counts the service's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import sys
import time
from typing import Any

import msgspec

from bench.harness.children import run_json_child, without_otel
from bench.harness.config import BenchConfig
from bench.harness.console import say
from bench.harness.http_floor import FLOOR_PATH
from bench.harness.provision import provision_dataset, service_env
from bench.probes.asgi import running
from cqlstar.services import Services

# (app factory, how a request's path is made from an id of the pool)
APPS: dict[str, tuple[str, str]] = {
    "get_user": ("cqlstar.app:create_app", "/users/{id}"),
    "http_floor": ("bench.harness.http_floor:create_floor_app", FLOOR_PATH),
}
TRACING: dict[str, dict[str, str]] = {
    "off": {"OTEL_SDK_DISABLED": "true"},
    "default": {},
}
WARM_UP_REQUESTS = 2_000
CONNECT_TIMEOUT_S = 60.0


class Measurement(msgspec.Struct, frozen=True, kw_only=True):
    """What one child measured, for the parent to check and combine."""

    requests: int
    cpu_seconds: float
    wall_seconds: float
    statuses: dict[str, int]
    requests_counted: int


class Figure(msgspec.Struct, frozen=True, kw_only=True):
    """One app and configuration over all its rounds."""

    requests: int
    cpu_us_per_request: float
    requests_per_second: float


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


async def _wait_connected(app: Any) -> None:
    # Both apps are the service's: they connect to Cassandra in the background after start-up.
    connection = Services.of(app.state).cassandra
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not connection.is_connected:
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not connect to Cassandra")
        await asyncio.sleep(0.05)


async def _measure(app_name: str, ids: list[str], requests: int, concurrency: int) -> Measurement:
    """Run in the configured child: warm up, then CPU per request over `requests` requests."""
    factory, path_pattern = APPS[app_name]
    app = _import(factory)()
    statuses: dict[int, int] = {}
    async with running(app) as client:
        await _wait_connected(app)

        async def load(count: int) -> None:
            for _ in range(count):
                status = await client.get(path_pattern.format(id=random.choice(ids)))
                statuses[status] = statuses.get(status, 0) + 1

        per_client = max(1, requests // concurrency)
        await asyncio.gather(
            *(load(max(1, WARM_UP_REQUESTS // concurrency)) for _ in range(concurrency))
        )
        statuses.clear()
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        await asyncio.gather(*(load(per_client) for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
        # What the metrics counted: every request whatever the tracing, which the parent checks.
        counted = Services.of(app.state).telemetry.metrics.figures().total_requests
    return Measurement(
        requests=per_client * concurrency,
        cpu_seconds=cpu,
        wall_seconds=wall,
        statuses={str(code): count for code, count in statuses.items()},
        requests_counted=counted,
    )


def measure_once(
    app_name: str,
    tracing: str,
    env: dict[str, str],
    *,
    ids_file: str,
    requests: int,
    concurrency: int,
) -> Measurement:
    """One measurement in a fresh process with a clean `OTEL_*` environment."""
    command = [
        *(sys.executable, "-m", "bench.probes.inprocess", "--measure", app_name),
        *("--ids", ids_file, "--requests", str(requests), "--concurrency", str(concurrency)),
    ]
    what = f"{app_name}/{tracing}"
    child_env = without_otel({**env, **TRACING[tracing]})
    result = run_json_child(command, Measurement, what=what, env=child_env)
    if set(result.statuses) != {"200"}:
        raise RuntimeError(f"{what}: answers other than 200: {result.statuses}")
    if result.requests_counted < result.requests:
        raise RuntimeError(f"{what}: the metrics missed requests: {result}")
    return result


def combine(results: list[Measurement]) -> Figure:
    """Rounds of one measurement: CPU per request and requests per second over all of them."""
    requests = sum(r.requests for r in results)
    cpu = sum(r.cpu_seconds for r in results)
    wall = sum(r.wall_seconds for r in results)
    return Figure(
        requests=requests,
        cpu_us_per_request=round(1e6 * cpu / requests, 1),
        requests_per_second=round(requests / wall, 1),
    )


def _measure_here(args: argparse.Namespace) -> None:
    """One measurement in this process, configured by the environment (the parent's child)."""
    # Run by hand (under a profiler), the ids are the bench dataset's: read them from its keyspace.
    os.environ.setdefault("CASSANDRA_KEYSPACE", BenchConfig.from_env().keyspace)
    os.environ.setdefault("CQLSTAR_AUTH", "disabled")
    # One client address sends every request: a rate limit would answer most with 429.
    os.environ.setdefault("RATE_LIMIT", "0")
    with open(args.ids) as pool:
        ids = pool.read().split()
    import uvloop

    result = uvloop.run(_measure(args.measure, ids, args.requests, args.concurrency))
    print(msgspec.json.encode(result).decode())


def _alternate(args: argparse.Namespace, config: BenchConfig) -> dict[str, Figure]:
    """Every app and tracing configuration in turn, `args.rounds` times, in fresh processes."""
    dataset = provision_dataset(config)
    env = service_env(config, dataset)
    measured: dict[tuple[str, str], list[Measurement]] = {
        (app_name, tracing): [] for app_name in APPS for tracing in TRACING
    }
    for number in range(1, args.rounds + 1):
        for (app_name, tracing), results in measured.items():
            say(f"round {number}/{args.rounds}: {app_name}, tracing {tracing}")
            results.append(
                measure_once(
                    app_name,
                    tracing,
                    env,
                    ids_file=str(dataset.ids_file),
                    requests=args.requests,
                    concurrency=args.concurrency,
                )
            )
    return {f"{app}/{tracing}": combine(results) for (app, tracing), results in measured.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20_000, help="per measurement and round")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--measure",
        choices=sorted(APPS),
        help="measure one app in this process, as configured by the environment (for a profiler)",
    )
    parser.add_argument(
        "--ids",
        default=str(BenchConfig().work_dir / "ids.txt"),
        help="with --measure: the id pool (default: the one `just bench` writes)",
    )
    args = parser.parse_args(argv)
    if args.measure:
        _measure_here(args)
        return
    config = BenchConfig.from_env()
    figures = _alternate(args, config)
    print(
        f"\nIn-process, concurrency {args.concurrency}, LOG_LEVEL={config.log_level}, "
        f"{args.rounds} round(s) of {args.requests:,} requests:"
    )
    for name, figure in figures.items():
        print(
            f"  {name:20} {figure.cpu_us_per_request:7.1f} µs CPU per request "
            f"({figure.requests_per_second:,.0f} req/s)"
        )
    print(msgspec.json.encode(figures).decode())


if __name__ == "__main__":
    main()
