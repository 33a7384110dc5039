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
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

PATH = "/context_manager_safety/status"
WARM_UP = 2_000


def _scope(authorization: bytes | None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk")]
    if authorization:
        headers.append((b"authorization", authorization))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _measure(requests: int, rounds: int, token: str | None) -> list[float]:
    """In the child: CPU µs per request for each round."""
    from cqlstar.app import create_app

    # Called as a server calls it, with plain dicts: typed loosely, as bench.probes.inprocess does.
    app: Any = create_app()
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.ensure_future(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            lifespan_in.get,
            lifespan_out.put,
        )
    )
    await lifespan_in.put({"type": "lifespan.startup"})
    if (await lifespan_out.get())["type"] != "lifespan.startup.complete":
        raise RuntimeError("the app did not start")
    statuses: dict[int, int] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    # The header's bytes, as a server hands them over: the middleware decodes them into a new
    # string on every request, so the cache lookup hashes the token each time, as in the service.
    authorization = f"Bearer {token}".encode() if token else None

    async def call(count: int) -> None:
        for _ in range(count):
            await app(_scope(authorization), receive, send)

    await call(WARM_UP)
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected answers: {statuses}")
    results = []
    for _ in range(rounds):
        before = time.process_time()
        await call(requests)
        results.append(1e6 * (time.process_time() - before) / requests)
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await lifespan
    return results


def _child(mode: str, requests: int, rounds: int, issuer: str, token: str) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"LOG_LEVEL": "WARNING", "RATE_LIMIT": "0", "REDIS_URL": ""}
    env |= (
        {"CQLSTAR_AUTH": "oidc", "OIDC_ISSUER": issuer, "CQLSTAR_BENCH_TOKEN": token}
        if mode == "auth"
        else {"CQLSTAR_AUTH": "disabled"}
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.probes.auth_cost", "--measure", str(requests), str(rounds)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} exited {done.returncode}:\n{done.stderr[-3000:]}")
    results: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


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
        print(json.dumps(uvloop.run(_measure(args.measure[0], args.measure[1], token))))
        return

    from cqlstar.identity import localkeycloak

    issuer = localkeycloak.start()
    token = httpx.post(
        f"{issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "cqlstar-api",
            "username": "alice",
            "password": "alice-pass",
        },
        timeout=30,
    ).json()["access_token"]
    # One round at a time per configuration, alternating, so that drift hits both alike.
    measured: dict[str, list[float]] = {"open": [], "auth": []}
    for number in range(1, args.rounds + 1):
        for mode in measured:
            measured[mode] += _child(mode, args.requests, 1, issuer, token)
            print(f"round {number}: {mode} {measured[mode][-1]:.1f} µs/request", file=sys.stderr)
    open_, auth = statistics.median(measured["open"]), statistics.median(measured["auth"])
    print(
        json.dumps(
            {
                "requests_per_round": args.requests,
                "rounds": args.rounds,
                "open_cpu_us_per_request": round(open_, 1),
                "auth_cpu_us_per_request": round(auth, 1),
                "token_check_us_per_request": round(auth - open_, 1),
                "all_rounds": measured,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
