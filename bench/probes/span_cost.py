"""What tracing alone costs per request: the service's own instrumentation, without HTTP or Cassandra.

    uv run python -m bench.probes.span_cost                 # every configuration, 30,000 requests each
    uv run python -m bench.probes.span_cost --requests 100000

A `get_user` request makes two spans: the SERVER span of `cqlstar.telemetry.http` and the CLIENT
span of `cqlstar.aiocassandra`. Here the real middleware wraps an ASGI app that only does what the
handler does to tracing (a query span started and ended with an answer's attributes) and sends an
empty 200, so the CPU per request is the instrumentation's and nothing else's:

- `off`: `OTEL_SDK_DISABLED=true`, the baseline (the middleware and the metrics still run, as in
  the service);
- `default`: no exporter configured, so no spans are made at all (the `just serve` default);
- `exported_10pct`: spans for 10% of traces (`parentbased_traceidratio`, 0.1), encoded and queued
  for OTLP export;
- `exported`: every trace's spans encoded and queued for export.

Export goes to an endpoint nothing listens on, with a queue too large to fill and a schedule too
long to fire, so the export thread never runs and only the request's own share is counted.

Each configuration runs in its own process (the SDK reads its variables once); the figure is the
event-loop thread's CPU time per request after a warm-up. In the whole service the same code costs
more per request than here (roughly twice as much; caches shared with everything else), so compare
these figures with each other, and the service's with `just bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from types import SimpleNamespace
from typing import Any

import msgspec

from bench.harness.children import run_json_child, without_otel

_QUIET_EXPORT = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    "OTEL_BSP_MAX_QUEUE_SIZE": "100000000",
    "OTEL_BSP_SCHEDULE_DELAY": "100000000",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100000000",
}
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "off": {"OTEL_SDK_DISABLED": "true"},
    "default": {},
    "exported_10pct": {
        **_QUIET_EXPORT,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    "exported": _QUIET_EXPORT,
}
WARM_UP_REQUESTS = 3_000


class SpanCost(msgspec.Struct, frozen=True, kw_only=True):
    """One configuration's child: its cost, and what it turned on and counted."""

    us_per_request: float
    recording: bool
    exporting: bool
    requests_counted: int
    queries_counted: int


async def _measure(requests: int) -> SpanCost:
    """µs of this thread's CPU per request through the middleware (run in a configured process),
    with what the configuration turned on, so the parent can check it got what it asked for."""
    # Imported here, in the configured child, like everything that reads OTEL_* at import.
    from cqlstar.aiocassandra.cql import summarize
    from cqlstar.aiocassandra.telemetry import QueryTelemetry
    from cqlstar.telemetry.http import ServerSpanMiddleware
    from cqlstar.telemetry.setup import setup_telemetry

    telemetry = setup_telemetry()
    queries = QueryTelemetry(listener=telemetry.metrics.query_ended)
    summary = summarize("SELECT name FROM users WHERE id = ?")
    statement = SimpleNamespace(is_idempotent=True)
    # What the query span reads from a driver ResponseFuture once the answer is in.
    coordinator = SimpleNamespace(
        host_id=uuid.uuid4(),
        datacenter="datacenter1",
        endpoint=SimpleNamespace(address="127.0.0.1", port=9042),
    )
    answered = SimpleNamespace(
        message=SimpleNamespace(consistency_level=1, fetch_size=5000),
        coordinator_host=coordinator,
    )

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        query = queries.start(summary, "cqlstar", statement)
        if query is not None:
            queries.succeed(query, answered, 1)
        scope["path_template"] = "/users/{user_id}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    middleware = ServerSpanMiddleware(
        handler, telemetry.tracer, telemetry.metrics, tracing=telemetry.enabled
    )
    request = {
        "type": "http",
        "method": "GET",
        "path": "/users/00000000-0000-0000-0000-000000000001",
        "scheme": "http",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk")],
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    for _ in range(WARM_UP_REQUESTS):
        await middleware(dict(request), receive, send)  # type: ignore[arg-type]
    started = time.thread_time()
    for _ in range(requests):
        await middleware(dict(request), receive, send)  # type: ignore[arg-type]
    return SpanCost(
        us_per_request=(time.thread_time() - started) / requests * 1e6,
        recording=telemetry.enabled,
        exporting=telemetry.export_processor is not None,
        requests_counted=telemetry.metrics.figures().total_requests,
        queries_counted=telemetry.metrics.figures().total_queries,
    )


# What each configuration must turn on: (spans made, spans exported).
EXPECTED = {
    "off": (False, False),
    "default": (False, False),
    "exported_10pct": (True, True),
    "exported": (True, True),
}


def run_configuration(name: str, requests: int) -> float:
    """µs per request for one configuration, measured in a fresh process."""
    command = [sys.executable, "-m", "bench.probes.span_cost", "--measure"]
    command += ["--requests", str(requests)]
    env = without_otel({**CONFIGURATIONS[name], "LOG_LEVEL": "WARNING"})
    result = run_json_child(command, SpanCost, what=f"configuration {name!r}", env=env)
    recording, exporting = EXPECTED[name]
    counted = WARM_UP_REQUESTS + requests  # the metrics count every request, traced or not
    if (
        result.recording,
        result.exporting,
        result.requests_counted,
        result.queries_counted,
    ) != (recording, exporting, counted, counted):
        raise RuntimeError(f"configuration {name!r} did not trace as intended: {result}")
    return result.us_per_request


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # the child: one configuration, already in the environment
        print(msgspec.json.encode(asyncio.run(_measure(args.requests))).decode())
        return
    figures = {name: run_configuration(name, args.requests) for name in CONFIGURATIONS}
    baseline = figures["off"]
    for name, cost in figures.items():
        extra = "" if name == "off" else f" (+{cost - baseline:.1f} over off)"
        print(f"{name:9} {cost:6.1f} µs of event-loop CPU per request{extra}")


if __name__ == "__main__":
    main()
