"""What authentication and rate limiting cost `get_user` together, and the limiter alone.

Three configurations of the same app take turns for `BENCH_TRACING_ROUNDS` rounds (this machine's
throughput drifts over minutes by more than what is measured, so they alternate):

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

from typing import Any

from bench.auth import _login, _measure
from bench.harness.server import SERVICE_FACTORY, serve, stop
from bench.run import Run, combine_rounds, say
from cqlstar import localredis
from cqlstar.identity import localkeycloak

# Far above any rate this machine serves, so nothing is refused and every request is checked.
UNREACHED_LIMIT = "100000/second"
CONFIGURATIONS = ("plain", "token", "token_limited")


def limits_phase(run: Run) -> None:
    issuer = localkeycloak.start()
    redis_url = localredis.start()
    rounds = run.config.tracing_rounds
    seconds = max(1, round(run.config.seconds / rounds))
    measured: dict[str, list[dict[str, Any]]] = {mode: [] for mode in CONFIGURATIONS}
    for number in range(1, rounds + 1):
        for mode in CONFIGURATIONS:
            env = {"RATE_LIMIT": "0"}
            if mode != "plain":
                env |= {"CQLSTAR_AUTH": "oidc", "OIDC_ISSUER": issuer}
            if mode == "token_limited":
                env |= {"RATE_LIMIT": UNREACHED_LIMIT, "REDIS_URL": redis_url}
            say(f"limits round {number}/{rounds}: get_user {mode}, {seconds} s")
            server = serve(
                f"service_{mode}",
                SERVICE_FACTORY,
                run.service_env(env),
                run.log_dir,
                workers=run.config.workers,
            )
            try:
                tokens = _login(issuer, run.config.wrk_threads) if mode != "plain" else []
                measured[mode].append(_measure(run, server, mode, seconds, tokens))
            finally:
                stop(server)
    entries = {mode: combine_rounds(results) for mode, results in measured.items()}
    run.scenarios.extend(entries.values())
    plain, token, limited = entries["plain"], entries["token"], entries["token_limited"]

    def rate(entry: dict[str, Any]) -> float:
        return float(entry["requests_per_second"])

    note = (
        f"authentication + rate limits: get_user token_limited / plain = "
        f"{rate(limited) / rate(plain):.3f} req/s, token_limited / token = "
        f"{rate(limited) / rate(token):.3f} ({rate(plain):,.0f} plain, {rate(token):,.0f} token, "
        f"{rate(limited):,.0f} token_limited); service CPU per request "
        f"{plain['service_cpu_us_per_request']} / {token['service_cpu_us_per_request']} / "
        f"{limited['service_cpu_us_per_request']} µs ({rounds} alternating rounds, "
        f"concurrency {run.config.reference_concurrency})"
    )
    run.notes.append(note)
    say(note)
