"""What authentication and rate limiting cost `get_user` together, and the limiter alone.

Three configurations of the same app take turns (see `token_rounds`):

- `plain`: `CQLSTAR_AUTH=disabled`, `RATE_LIMIT=0` (what the other scenarios measure);
- `token`: a bearer token checked on every request (the local Keycloak), limits off;
- `token_limited`: the same, plus the HTTP rate limit in the local Redis (`cqlstar.localredis`),
  one window per principal, checked on every request.

The clients reuse their tokens (bob's, one per wrk thread), so all requests count in one principal's
window: the limit is set far above what the machine can serve (`100000/second`), so none is refused
and the measured work is the full check (one Lua script call per batch of waiting requests, the
headers on every answer). The notes give `token_limited / plain`, the figure the issue bounds (at
most 15% below), and `token_limited / token`, the limiter's own share
(`BENCH_SCENARIOS=limits just bench` for this alone).
"""

from __future__ import annotations

from bench.harness.console import say
from bench.harness.provision import token_env
from bench.pipeline.context import RunContext
from bench.pipeline.findings import Findings
from bench.pipeline.token_rounds import Configuration, alternate, by_mode
from cqlstar import localredis
from cqlstar.identity import localkeycloak

# Far above any rate this machine serves, so nothing is refused and every request is checked.
UNREACHED_LIMIT = "100000/second"


def limits(ctx: RunContext) -> Findings:
    issuer = localkeycloak.start()
    redis_url = localredis.start()
    limited = {"RATE_LIMIT": UNREACHED_LIMIT, "REDIS_URL": redis_url}
    configurations = (
        Configuration("plain", {}, with_token=False),
        Configuration("token", token_env(issuer), with_token=True),
        Configuration("token_limited", token_env(issuer) | limited, with_token=True),
    )
    figures = alternate(ctx, "limits", issuer, configurations)
    plain, token = by_mode(figures, "plain"), by_mode(figures, "token")
    limited_entry = by_mode(figures, "token_limited")
    plain_rps, token_rps = plain.requests_per_second, token.requests_per_second
    limited_rps = limited_entry.requests_per_second
    note = (
        f"authentication + rate limits: get_user token_limited / plain = "
        f"{limited_rps / plain_rps:.3f} req/s, token_limited / token = "
        f"{limited_rps / token_rps:.3f} ({plain_rps:,.0f} plain, {token_rps:,.0f} token, "
        f"{limited_rps:,.0f} token_limited); service CPU per request "
        f"{plain.service_cpu_us_per_request} / {token.service_cpu_us_per_request} / "
        f"{limited_entry.service_cpu_us_per_request} µs ({figures.rounds} alternating rounds, "
        f"concurrency {figures.concurrency})"
    )
    ctx.note(note)
    say(note)
    return Findings(scenarios=figures.configurations, limits=figures)
