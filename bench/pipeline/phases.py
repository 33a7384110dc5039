"""The phases of `just bench`, in the order they run, each on freshly started servers:

1. `get_user` (the service under granian at every concurrency);
2. the raw-driver and async-layer ceilings, in their own processes;
3. tracing: off, the default (no exporter), every trace and 10% exported, taking turns;
4. the HTTP floor (the same app answering a constant body);
5. auth, limits, the WebSocket API (the local Keycloak and Redis);
6. the service again: list_users, create_user, update_user, then stream_users and slow_readers.

The order keeps what the targets compare together, before anything writes: the node's state drifts
as the write scenarios add rows (memtable flushes, compactions), and on a 2-core machine that moved
a ratio between a measurement before them and one after by more than the effect being measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.harness.config import (
    AUTH,
    LIMITS,
    SLOW_READERS_SCENARIO,
    STREAM_SCENARIO,
    TRACING,
    WEBSOCKET,
    BenchConfig,
)
from bench.harness.scenarios import READ_BY_KEY
from bench.pipeline import auth, ceilings, floor, limits, service, tracing, websocket
from bench.pipeline.context import RunContext
from bench.pipeline.findings import Findings


@dataclass(frozen=True)
class Phase:
    name: str
    # The `BENCH_SCENARIOS` names that call for this phase (any of them).
    scenarios: tuple[str, ...]
    measure: Callable[[RunContext], Findings]

    def wanted(self, config: BenchConfig) -> bool:
        return any(config.wants(name) for name in self.scenarios)


PHASES: tuple[Phase, ...] = (
    Phase(READ_BY_KEY, (READ_BY_KEY,), service.read_by_key),
    Phase("raw_driver", ("raw_driver",), ceilings.raw_driver),
    Phase("async_layer", ("async_layer",), ceilings.async_layer),
    Phase(TRACING, (TRACING,), tracing.tracing),
    Phase(floor.FLOOR, (floor.FLOOR,), floor.http_floor),
    Phase(AUTH, (AUTH,), auth.auth),
    Phase(LIMITS, (LIMITS,), limits.limits),
    Phase(WEBSOCKET, (WEBSOCKET,), websocket.websocket),
    Phase(
        "service",
        (*service.LATER_SCENARIOS, STREAM_SCENARIO, SLOW_READERS_SCENARIO),
        service.later_scenarios,
    ),
)
