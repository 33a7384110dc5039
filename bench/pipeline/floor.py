"""The HTTP floor: the service's own app answering a constant body (`bench.harness.http_floor`),
under granian and wrk like the service, at every concurrency."""

from __future__ import annotations

from bench.harness.console import say
from bench.harness.http_floor import FLOOR_PATH
from bench.harness.server import FLOOR_FACTORY, serve, stop
from bench.pipeline.context import RunContext
from bench.pipeline.findings import Findings
from bench.pipeline.http import measure_http, probe, scenario_load, warm_up

FLOOR = "http_floor"


def http_floor(ctx: RunContext) -> Findings:
    config = ctx.config
    say("serving the HTTP floor (bench.harness.http_floor:create_floor_app) under granian")
    server = serve(
        FLOOR,
        FLOOR_FACTORY,
        ctx.service_env(),
        config.log_dir,
        workers=config.workers,
        ready_path=FLOOR_PATH,
    )
    try:
        probe(ctx, server, FLOOR)
        warm_up(ctx, server, scenario_load(ctx, FLOOR))
        entries = tuple(
            measure_http(ctx, server, FLOOR, c, label=FLOOR) for c in config.concurrency
        )
    finally:
        stop(server)
    return Findings(http_floor=entries)
