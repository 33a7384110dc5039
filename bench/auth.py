"""What checking a token costs `get_user`: the same read, open and with a bearer token, in rounds.

Both servers run the same app; one with `CQLSTAR_AUTH=disabled`, the other with `CQLSTAR_AUTH=oidc`
against the local Keycloak (`cqlstar.identity.localkeycloak`, started if needed). The clients reuse
their tokens (one per wrk thread, logged in as `bob`, who holds `users:read`), as real clients do, so
what is measured is the steady state: the middleware, the verified-token cache, the revocation
lookup and the role guard, not the signature check each token pays once.

The two take turns for `BENCH_TRACING_ROUNDS` rounds of `BENCH_SECONDS / rounds` each, like the
tracing configurations, because this machine's throughput drifts over minutes by more than the cost
measured. `auth_phase` adds `get_user_open` and `get_user_auth` to the report and a note with the
ratio (`just bench`, or `BENCH_SCENARIOS=auth just bench` for this alone).
"""

from __future__ import annotations

from typing import Any

import httpx

from bench.harness.procs import CpuMeter
from bench.harness.server import SERVICE_FACTORY, Server, serve, stop
from bench.harness.wrk import compose_script, run_wrk
from bench.run import READ_BY_KEY, Run, combine_rounds, http_entry, say
from cqlstar.identity import localkeycloak

AUTH = "auth"
USERNAME, PASSWORD = "bob", "bob-pass"
CONFIGURATIONS = ("open", "auth")


def _login(issuer: str, count: int) -> list[str]:
    tokens = []
    for _ in range(count):
        answer = httpx.post(
            f"{issuer}/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "cqlstar-api",
                "username": USERNAME,
                "password": PASSWORD,
            },
            timeout=30,
        )
        answer.raise_for_status()
        tokens.append(answer.json()["access_token"])
    return tokens


def _measure(
    run: Run, server: Server, mode: str, seconds: int, tokens: list[str]
) -> dict[str, Any]:
    config = run.config
    tokens_file = run.work_dir / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    # With tokens, each wrk thread sends one (bench.limits measures further configurations).
    script = compose_script("get_user_auth.lua" if tokens else "get_user.lua", run.work_dir)
    args = (str(run.ids_file), str(tokens_file)) if tokens else (str(run.ids_file),)
    concurrency = config.reference_concurrency
    threads = min(config.wrk_threads, concurrency)
    if config.warmup_seconds > 0:
        run_wrk(
            run.wrk,
            server.base_url + "/",
            script,
            connections=concurrency,
            seconds=config.warmup_seconds,
            threads=threads,
            script_args=args,
        )
    meter = CpuMeter({"service": server.pid, "cassandra": run.cassandra_pid})
    meter.start()
    result = run_wrk(
        run.wrk,
        server.base_url + "/",
        script,
        connections=concurrency,
        seconds=seconds,
        threads=threads,
        script_args=args,
    )
    entry = http_entry(f"{READ_BY_KEY}_{mode}", concurrency, result, meter.stop())
    if result.errors:
        run.notes.append(f"{READ_BY_KEY}_{mode}: {result.errors} errors of {result.requests}")
        raise RuntimeError(f"{READ_BY_KEY}_{mode}: {result.errors} of {result.requests} failed")
    entry |= {"requests_served": entry["requests"], "spans_received": 0}
    return entry


def auth_phase(run: Run) -> None:
    issuer = localkeycloak.start()
    rounds = run.config.tracing_rounds
    seconds = max(1, round(run.config.seconds / rounds))
    measured: dict[str, list[dict[str, Any]]] = {mode: [] for mode in CONFIGURATIONS}
    for number in range(1, rounds + 1):
        for mode in CONFIGURATIONS:
            # Rate limits off in both: this measures the token check, not the limiter (whose
            # per-principal window would otherwise answer most of the load 429).
            env = {"RATE_LIMIT": "0"}
            if mode == AUTH:
                env |= {"CQLSTAR_AUTH": "oidc", "OIDC_ISSUER": issuer}
            say(f"auth round {number}/{rounds}: get_user {mode}, {seconds} s")
            server = serve(
                f"service_{mode}",
                SERVICE_FACTORY,
                run.service_env(env),
                run.log_dir,
                workers=run.config.workers,
            )
            try:
                # Fresh tokens each round: they live 5 minutes at the development realm.
                tokens = _login(issuer, run.config.wrk_threads) if mode == AUTH else []
                measured[mode].append(_measure(run, server, mode, seconds, tokens))
            finally:
                stop(server)
    entries = {mode: combine_rounds(results) for mode, results in measured.items()}
    run.scenarios.extend(entries.values())
    open_, auth = entries["open"], entries[AUTH]
    ratio = auth["requests_per_second"] / open_["requests_per_second"]
    note = (
        f"token checks: get_user with a reused bearer token / without authentication = "
        f"{ratio:.3f} req/s ({auth['requests_per_second']:,.0f} vs "
        f"{open_['requests_per_second']:,.0f}); service CPU per request "
        f"{auth['service_cpu_us_per_request']} vs {open_['service_cpu_us_per_request']} µs "
        f"({rounds} alternating rounds, concurrency {run.config.reference_concurrency})"
    )
    run.notes.append(note)
    say(note)
