"""The service under granian: its wrk scenarios at every concurrency, then streams and slow readers.

Two phases serve it: `get_user` alone first (what the targets compare with the ceilings, measured
before anything writes), and at the end the rest, on one server: `list_users`, `create_user`,
`update_user`, then `stream_users` and `slow_readers`. Each scenario is attempted on its own, so one
that fails leaves the others' figures in the report.
"""

from __future__ import annotations

from functools import partial

from bench.harness.config import (
    HTTP_SCENARIOS,
    SLOW_READERS_SCENARIO,
    STREAM_SCENARIO,
)
from bench.harness.console import say
from bench.harness.scenarios import READ_BY_KEY
from bench.harness.server import SERVICE_FACTORY, Server, serve, stop
from bench.pipeline.context import RunContext
from bench.pipeline.findings import Findings
from bench.pipeline.http import measure_http, probe, scenario_load, warm_up
from bench.pipeline.report import ScenarioEntry
from bench.pipeline.slow_readers import slow_readers_phase
from bench.pipeline.streams import measure_streams

LATER_SCENARIOS = tuple(name for name in HTTP_SCENARIOS if name != READ_BY_KEY)


def read_by_key(ctx: RunContext) -> Findings:
    return _serve_and_measure(ctx, (READ_BY_KEY,), streams=False)


def later_scenarios(ctx: RunContext) -> Findings:
    return _serve_and_measure(ctx, LATER_SCENARIOS, streams=True)


def _serve_and_measure(ctx: RunContext, names: tuple[str, ...], *, streams: bool) -> Findings:
    """The scenarios `names` (those the configuration wants), then the stream phases if `streams`."""
    config = ctx.config
    wanted = [name for name in names if config.wants(name)]
    slow = streams and config.wants(SLOW_READERS_SCENARIO)
    stream = streams and config.wants(STREAM_SCENARIO)
    if not wanted and not stream and not slow:
        return Findings()
    say("serving the service (cqlstar.app:create_app) under granian")
    server = serve(
        "service", SERVICE_FACTORY, ctx.service_env(), config.log_dir, workers=config.workers
    )
    entries: list[ScenarioEntry] = []
    try:
        for name in wanted:
            ctx.attempt(name, partial(_measure_scenario, ctx, server, name, entries))
        streaming = (
            ctx.attempt(STREAM_SCENARIO, partial(measure_streams, ctx, server)) if stream else None
        )
        slow_readers = (
            ctx.attempt(SLOW_READERS_SCENARIO, partial(slow_readers_phase, ctx, server))
            if slow
            else None
        )
    finally:
        stop(server)
    return Findings(scenarios=tuple(entries), streaming=streaming, slow_readers=slow_readers)


def _measure_scenario(
    ctx: RunContext, server: Server, name: str, entries: list[ScenarioEntry]
) -> None:
    """Every concurrency level in turn; the levels measured before a failure are kept."""
    probe(ctx, server, name)
    warm_up(ctx, server, scenario_load(ctx, name))
    for concurrency in ctx.config.concurrency:
        entries.append(measure_http(ctx, server, name, concurrency))
