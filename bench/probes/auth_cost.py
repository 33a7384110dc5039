"""What the token check alone costs per request, in process: the service's app with and without it.

    uv run python -m bench.probes.auth_cost                  # 20,000 requests per round, 5 rounds each
    uv run python -m bench.probes.auth_cost --requests 50000 --rounds 3

The app is the service's own (`create_app`), called as an ASGI application with no server, on a
protected route that makes no query (`GET /context_manager_safety/status`, `admin`), so what differs
between the two configurations is the authentication middleware alone:

- `open`: `CQLSTAR_AUTH=disabled`, no middleware;
- `auth`: `CQLSTAR_AUTH=oidc` against the local Keycloak (started if needed), every request with
  the same access token of `alice`, as a client that reuses its token sends it: after the first
  request, the verified-token cache, the revocation lookup and the role check.

The two take turns in rounds (in one process each, so both pay the same caches and allocator), and
the figure is the process's CPU time per request. The difference is the token check's cost per
request; divided by `get_user`'s CPU per request in the whole service (`just bench`,
`service_cpu_us_per_request`), it is the share of `get_user` throughput the check costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import msgspec

from bench.harness.children import run_json_child, without_otel
from bench.harness.tokens import WRITER, password_token
from bench.probes.asgi import running

PATH = "/context_manager_safety/status"
WARM_UP = 2_000


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """What the probe prints."""

    requests_per_round: int
    rounds: int
    # The medians of the rounds' CPU per request, and their difference: the token check's cost.
    open_cpu_us_per_request: float
    auth_cpu_us_per_request: float
    token_check_us_per_request: float
    all_rounds: dict[str, list[float]]


async def _measure(requests: int, rounds: int, token: str | None) -> list[float]:
    """In the child: CPU µs per request for each round."""
    from cqlstar.app import create_app

    # The header's bytes, as a server hands them over: the middleware decodes them into a new
    # string on every request, so the cache lookup hashes the token each time, as in the service.
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    statuses: dict[int, int] = {}
    async with running(create_app()) as client:

        async def call(count: int) -> None:
            for _ in range(count):
                status = await client.get(PATH, headers)
                statuses[status] = statuses.get(status, 0) + 1

        await call(WARM_UP)
        if set(statuses) != {200}:
            raise RuntimeError(f"unexpected answers: {statuses}")
        results = []
        for _ in range(rounds):
            before = time.process_time()
            await call(requests)
            results.append(1e6 * (time.process_time() - before) / requests)
    return results


def _child(mode: str, requests: int, rounds: int, issuer: str, token: str) -> list[float]:
    env = without_otel({"LOG_LEVEL": "WARNING", "RATE_LIMIT": "0", "REDIS_URL": ""})
    env |= (
        {"CQLSTAR_AUTH": "oidc", "OIDC_ISSUER": issuer, "CQLSTAR_BENCH_TOKEN": token}
        if mode == "auth"
        else {"CQLSTAR_AUTH": "disabled"}
    )
    command = [
        sys.executable,
        "-m",
        "bench.probes.auth_cost",
        "--measure",
        str(requests),
        str(rounds),
    ]
    return run_json_child(command, list[float], what=mode, env=env)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per configuration")
    parser.add_argument("--measure", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        import uvloop

        token = os.environ.get("CQLSTAR_BENCH_TOKEN") or None
        results = uvloop.run(_measure(args.measure[0], args.measure[1], token))
        print(msgspec.json.encode(results).decode())
        return

    from cqlstar.identity import localkeycloak

    issuer = localkeycloak.start()
    token = password_token(issuer, WRITER)
    # One round at a time per configuration, alternating, so that drift hits both alike.
    measured: dict[str, list[float]] = {"open": [], "auth": []}
    for number in range(1, args.rounds + 1):
        for mode in measured:
            measured[mode] += _child(mode, args.requests, 1, issuer, token)
            print(f"round {number}: {mode} {measured[mode][-1]:.1f} µs/request", file=sys.stderr)
    open_, auth = statistics.median(measured["open"]), statistics.median(measured["auth"])
    figures = Figures(
        requests_per_round=args.requests,
        rounds=args.rounds,
        open_cpu_us_per_request=round(open_, 1),
        auth_cpu_us_per_request=round(auth, 1),
        token_check_us_per_request=round(auth - open_, 1),
        all_rounds=measured,
    )
    print(msgspec.json.format(msgspec.json.encode(figures), indent=2).decode())


if __name__ == "__main__":
    main()
