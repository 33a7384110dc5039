"""What checking a token costs `get_user`: the same read, open and with a bearer token, in rounds.

Both servers run the same app; one with `CQLSTAR_AUTH=disabled`, the other with `CQLSTAR_AUTH=oidc`
against the local Keycloak (`cqlstar.identity.localkeycloak`, started if needed), clients logged in
as `bob`, who holds `users:read` (see `token_rounds`). Rate limits are off in both: this measures
the token check, not the limiter (whose per-principal window would answer most of the load 429).
The report gets `get_user_open` and `get_user_auth`, the ratio, and a note
(`BENCH_SCENARIOS=auth just bench` for this alone).
"""

from __future__ import annotations

from bench.harness.console import say
from bench.harness.provision import token_env
from bench.pipeline.context import RunContext
from bench.pipeline.findings import Findings
from bench.pipeline.token_rounds import Configuration, alternate, by_mode
from cqlstar.identity import localkeycloak


def auth(ctx: RunContext) -> Findings:
    issuer = localkeycloak.start()
    configurations = (
        Configuration("open", {}, with_token=False),
        Configuration("auth", token_env(issuer), with_token=True),
    )
    figures = alternate(ctx, "auth", issuer, configurations)
    open_, auth = by_mode(figures, "open"), by_mode(figures, "auth")
    ratio = auth.requests_per_second / open_.requests_per_second
    note = (
        f"token checks: get_user with a reused bearer token / without authentication = "
        f"{ratio:.3f} req/s ({auth.requests_per_second:,.0f} vs "
        f"{open_.requests_per_second:,.0f}); service CPU per request "
        f"{auth.service_cpu_us_per_request} vs {open_.service_cpu_us_per_request} µs "
        f"({figures.rounds} alternating rounds, concurrency {figures.concurrency})"
    )
    ctx.note(note)
    say(note)
    return Findings(scenarios=figures.configurations, auth=figures)
