"""`get_user` served in several configurations that take turns (the auth and limits phases), and
`get_user` with a bearer token under wrk (the WebSocket phase's HTTP side).

The configurations take turns for `BENCH_TRACING_ROUNDS` rounds of `BENCH_SECONDS / rounds` each,
like the tracing configurations, because this machine's throughput drifts over minutes by more
than the costs measured. Clients reuse their tokens (one per wrk thread, the reader's), as real
clients do, so what is measured is the steady state: the middleware, the verified-token cache,
the revocation lookup and the role guard, not the signature check each token pays once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from bench.harness.console import say
from bench.harness.scenarios import READ_BY_KEY
from bench.harness.server import SERVICE_FACTORY, Server, serve, stop
from bench.harness.tokens import reader_tokens
from bench.pipeline.context import RunContext
from bench.pipeline.http import WrkLoad, combine_rounds, measured_load, warm_up
from bench.pipeline.report import AlternatingRounds, ScenarioEntry


@dataclass(frozen=True)
class Configuration:
    """One way of serving the app: its name, its environment, whether clients send a token."""

    mode: str
    env: dict[str, str]
    with_token: bool


def measure_get_user(
    ctx: RunContext, server: Server, mode: str, seconds: int, tokens: Sequence[str]
) -> ScenarioEntry:
    """`get_user_<mode>` at the reference concurrency, each wrk thread sending one of `tokens`
    (none: no Authorization header). Any failed request fails the measurement."""
    work_dir = ctx.config.work_dir
    tokens_file = work_dir / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    ids = str(ctx.dataset.ids_file)
    load = (
        WrkLoad("get_user_auth.lua", script_args=(ids, str(tokens_file)))
        if tokens
        else WrkLoad("get_user.lua", script_args=(ids,))
    )
    concurrency = ctx.config.reference_concurrency
    warm_up(ctx, server, load)
    label = f"{READ_BY_KEY}_{mode}"
    entry, result = measured_load(ctx, server, load, concurrency, seconds, label=label)
    if result.errors:
        ctx.note(f"{label}: {result.errors} errors of {result.requests}")
        raise RuntimeError(f"{label}: {result.errors} of {result.requests} failed")
    return msgspec.structs.replace(entry, requests_served=entry.requests, spans_received=0)


def alternate(
    ctx: RunContext, phase: str, issuer: str, configurations: Sequence[Configuration]
) -> AlternatingRounds:
    """Every configuration on a fresh server, in turns, combined per configuration."""
    config = ctx.config
    rounds = config.tracing_rounds
    seconds = max(1, round(config.seconds / rounds))
    measured: dict[str, list[ScenarioEntry]] = {c.mode: [] for c in configurations}
    for number in range(1, rounds + 1):
        for configuration in configurations:
            mode = configuration.mode
            say(f"{phase} round {number}/{rounds}: get_user {mode}, {seconds} s")
            server = serve(
                f"service_{mode}",
                SERVICE_FACTORY,
                ctx.service_env(configuration.env),
                config.log_dir,
                workers=config.workers,
            )
            try:
                # Fresh tokens each round: they live 5 minutes at the development realm.
                tokens = (
                    reader_tokens(issuer, config.wrk_threads) if configuration.with_token else []
                )
                measured[mode].append(measure_get_user(ctx, server, mode, seconds, tokens))
            finally:
                stop(server)
    return AlternatingRounds(
        rounds=rounds,
        concurrency=config.reference_concurrency,
        configurations=tuple(combine_rounds(entries) for entries in measured.values()),
    )


def by_mode(figures: AlternatingRounds, mode: str) -> ScenarioEntry:
    name = f"{READ_BY_KEY}_{mode}"
    return next(entry for entry in figures.configurations if entry.name == name)
