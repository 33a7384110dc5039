"""What `GET /health` asks every dependency, and how the answers become one status.

Each dependency the service uses implements `DependencyCheck`: a `name` (the key under `checks`),
whether the service can serve without it (`critical`), and `probe(timeout)`, which asks the
dependency something real and returns what helps an operator (a version, a count) or raises.
`run_checks` runs every probe at once, each bounded by the same budget, so the answer comes within
that budget whatever hangs: a frozen dependency costs its budget once, not once per dependency.

A probe in flight is shared: a request that arrives while a check's probe runs waits for that
probe's result instead of starting another. `/health` is open and not rate limited, so without this
any client could make the service ask its issuer (a JWKS fetch over HTTP), Redis and Cassandra once
per request; now a flood costs each dependency one probe at a time. Nothing is cached: a request
that arrives after a probe ended starts a fresh one.

Status: `healthy` (200) when every check is up; `degraded` (200) when only non-critical ones are
down (Redis, the identity provider: the service still serves, limits fail open and issued tokens
keep working); `unhealthy` (503) when a critical one is down (Cassandra).

The checks of this module: Cassandra (`CassandraCheck`), Redis (`RedisCheck`). The identity
provider's lives with identity (`cqlstar.identity.health`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import msgspec
from redis.asyncio import Redis

from cqlstar.database import CassandraConnection
from cqlstar.limits import RateLimiter, RedisWindow

log = logging.getLogger(__name__)

# The contract promises an answer within 2 s whatever hangs; this leaves room for the rest of
# the request on a busy machine.
CHECK_BUDGET_S = 1.2

HealthStatus = Literal["healthy", "degraded", "unhealthy"]


class DependencyCheck(Protocol):
    name: str
    # Down means the service cannot serve (unhealthy), rather than serving with less (degraded).
    critical: bool

    async def probe(self, timeout: float) -> dict[str, Any]:
        """Ask the dependency something real; return what an operator wants to see, or raise."""
        ...


class CheckResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    status: Literal["up", "down"]
    latency_ms: float
    # The dependency's own version, when it tells it.
    version: str | None = None
    # Down: the kind of failure (an exception class name, or "timeout"), never its message.
    error: str | None = None
    # Anything else the check reports (e.g. the identity provider's key count).
    details: dict[str, Any] | None = None


async def _run(check: DependencyCheck, budget_s: float) -> CheckResult:
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    try:
        async with asyncio.timeout(budget_s):
            report = await check.probe(budget_s)
    except TimeoutError:
        outcome = CheckResult(status="down", latency_ms=elapsed_ms(), error="timeout")
    except Exception as error:  # any failure is "down"; the kind is reported, the text logged
        log.info("health check failed", extra={"check": check.name, "error": repr(error)})
        outcome = CheckResult(status="down", latency_ms=elapsed_ms(), error=type(error).__name__)
    else:
        version = report.pop("version", None)
        outcome = CheckResult(
            status="up",
            latency_ms=elapsed_ms(),
            version=None if version is None else str(version),
            details=report or None,
        )
    return outcome


# The probe of each check now in flight, shared by the requests that arrive while it runs.
_in_flight: dict[DependencyCheck, asyncio.Task[CheckResult]] = {}


async def _shared_run(check: DependencyCheck, budget_s: float) -> CheckResult:
    loop = asyncio.get_running_loop()
    task = _in_flight.get(check)
    if task is None or task.done() or task.get_loop() is not loop:
        task = loop.create_task(_run(check, budget_s))
        _in_flight[check] = task

        def forget(done: asyncio.Task[CheckResult]) -> None:
            if _in_flight.get(check) is done:
                del _in_flight[check]

        task.add_done_callback(forget)
    # Shielded: a request that goes away (its client disconnected) leaves the probe to the others.
    return await asyncio.shield(task)


async def run_checks(
    checks: Sequence[DependencyCheck], budget_s: float = CHECK_BUDGET_S
) -> tuple[HealthStatus, dict[str, CheckResult]]:
    results = await asyncio.gather(*(_shared_run(check, budget_s) for check in checks))
    by_name = {check.name: result for check, result in zip(checks, results, strict=True)}
    down = [check for check, result in zip(checks, results, strict=True) if result.status == "down"]
    if any(check.critical for check in down):
        return "unhealthy", by_name
    return ("degraded" if down else "healthy"), by_name


class CassandraCheck:
    name = "cassandra"
    critical = True

    def __init__(self, connection: CassandraConnection) -> None:
        self.connection = connection

    async def probe(self, timeout: float) -> dict[str, Any]:
        # Raises CassandraUnavailable while not connected.
        version = await self.connection.health_probe(timeout=timeout)
        return {"version": version, "keyspace": self.connection.settings.cassandra_keyspace}


class RedisCheck:
    """PING and the server's version; also whether the rate limits are enforced right now."""

    name = "redis"
    critical = False

    def __init__(self, redis: Redis, limiter: RateLimiter | None = None) -> None:
        self.redis = redis
        self.limiter = limiter

    async def probe(self, timeout: float) -> dict[str, Any]:
        await self.redis.ping()
        server = await self.redis.info("server")
        report: dict[str, Any] = {"version": server.get("redis_version")}
        if self.limiter is not None and isinstance(self.limiter.window, RedisWindow):
            # The limiter notices an outage (and its end) on its own schedule: say what it does.
            report["rate_limits"] = "enforced" if self.limiter.window.available else "failing open"
        return report
