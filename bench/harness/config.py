"""What a benchmark run measures and for how long, read from `BENCH_*` environment variables.

Every knob has a default that gives the full run `just bench` promises; a malformed value stops the
run before anything starts, naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[2]
# The data files next to the code: wrk's Lua scripts, the collector's configuration, the GC probe.
BENCH_DIR = ROOT / "bench"

# Everything the harness can measure, in the order it measures them. `BENCH_SCENARIOS` picks a subset.
HTTP_SCENARIOS = ("get_user", "list_users", "create_user", "update_user")
STREAM_SCENARIO = "stream_users"
SLOW_READERS_SCENARIO = "slow_readers"
CEILINGS = ("http_floor", "raw_driver", "async_layer")
TRACING = "tracing"
# get_user open and with a bearer token, in alternating rounds (bench.pipeline.auth).
AUTH = "auth"
# get_user open, with a token, and with a token and rate limits in Redis (bench.pipeline.limits).
LIMITS = "limits"
# The WebSocket API: round trips against HTTP, broadcast fan-out, idle memory (bench.pipeline.websocket).
WEBSOCKET = "websocket"
ALL_SCENARIOS = (
    *HTTP_SCENARIOS,
    STREAM_SCENARIO,
    SLOW_READERS_SCENARIO,
    *CEILINGS,
    TRACING,
    AUTH,
    LIMITS,
    WEBSOCKET,
)

# The ratios the issue asks for are taken at this concurrency (or the measured one closest to it).
REFERENCE_CONCURRENCY = 64


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The knobs a run was measured with, as the report states them."""

    seconds: int
    concurrency: tuple[int, ...]
    scenarios: tuple[str, ...]
    warmup_seconds: int
    keyspace: str
    rows: int
    stream_rows: int
    stream_fetch_size: int
    tracing_concurrency: int
    tracing_rounds: int
    wrk_threads: int
    log_level: str
    collector: str
    granian_workers: int


class BenchConfigError(ValueError):
    """A `BENCH_*` variable holds a value the harness cannot use."""


@dataclass(frozen=True)
class BenchConfig:
    seconds: int = 30
    concurrency: tuple[int, ...] = (16, 64, 256)
    scenarios: tuple[str, ...] = ALL_SCENARIOS
    # Unmeasured load before the first measurement on a freshly started server: imports, prepared
    # statements and Cassandra's caches settle here instead of inside the first figure.
    warmup_seconds: int = 2
    keyspace: str = "cqlstar_bench"
    # The keyspace is reused between runs; it is topped up to at least this many users.
    rows: int = 100_000
    stream_rows: int = 100_000
    stream_fetch_size: int = 5000
    tracing_concurrency: int = REFERENCE_CONCURRENCY
    # The tracing configurations are measured in this many alternating rounds of seconds/rounds each.
    tracing_rounds: int = 3
    wrk_threads: int = 1
    workers: int = 1
    # The service's own log level: INFO is what `just serve` runs with (one line per request).
    log_level: str = "INFO"
    # "auto": the project's collector (otel/build-collector.sh builds it once per machine);
    # "sink": a minimal in-repo OTLP gRPC receiver; anything else: the path of a collector binary.
    collector: str = "auto"
    output: Path = field(default_factory=lambda: ROOT / "bench" / "results" / "latest")

    @property
    def reference_concurrency(self) -> int:
        """The measured concurrency closest to the one the issue's ratios are defined at."""
        return min(self.concurrency, key=lambda c: (abs(c - REFERENCE_CONCURRENCY), c))

    def wants(self, scenario: str) -> bool:
        return scenario in self.scenarios

    @property
    def work_dir(self) -> Path:
        """The id pool, composed wrk scripts, the receiver's files: rewritten every run."""
        return self.output / "work"

    @property
    def log_dir(self) -> Path:
        """The served processes' logs."""
        return self.output / "logs"

    def settings(self) -> Settings:
        # The same names, but for the workers, which the report names after granian.
        same = {name: getattr(self, name) for name in Settings.__struct_fields__[:-1]}
        return Settings(**same, granian_workers=self.workers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BenchConfig:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        ints = {
            "BENCH_SECONDS": ("seconds", 1),
            "BENCH_WARMUP": ("warmup_seconds", 0),
            "BENCH_ROWS": ("rows", 1),
            "BENCH_STREAM_ROWS": ("stream_rows", 1),
            "BENCH_STREAM_FETCH_SIZE": ("stream_fetch_size", 10),
            "BENCH_TRACING_CONCURRENCY": ("tracing_concurrency", 1),
            "BENCH_TRACING_ROUNDS": ("tracing_rounds", 1),
            "BENCH_WRK_THREADS": ("wrk_threads", 1),
            "BENCH_WORKERS": ("workers", 1),
        }
        for name, (attr, minimum) in ints.items():
            if raw := env.get(name, "").strip():
                values[attr] = _int(name, raw, minimum)
        if raw := env.get("BENCH_CONCURRENCY", "").strip():
            levels = tuple(_int("BENCH_CONCURRENCY", part, 1) for part in _split(raw))
            if not levels:
                raise BenchConfigError(f"BENCH_CONCURRENCY={raw!r}: expected e.g. 16,64,256")
            values["concurrency"] = tuple(sorted(set(levels)))
        if raw := env.get("BENCH_SCENARIOS", "").strip():
            chosen = _split(raw)
            unknown = [s for s in chosen if s not in ALL_SCENARIOS]
            if unknown or not chosen:
                raise BenchConfigError(
                    f"BENCH_SCENARIOS={raw!r}: unknown {unknown}; choose from {', '.join(ALL_SCENARIOS)}"
                )
            # Keep the harness's own order whatever order the variable lists them in.
            values["scenarios"] = tuple(s for s in ALL_SCENARIOS if s in chosen)
        if raw := env.get("BENCH_KEYSPACE", "").strip():
            if not (raw[0].isalpha() and raw.replace("_", "").isalnum() and len(raw) <= 48):
                raise BenchConfigError(f"BENCH_KEYSPACE={raw!r}: expected a CQL identifier")
            values["keyspace"] = raw
        if raw := env.get("BENCH_LOG_LEVEL", "").strip():
            if raw.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
                raise BenchConfigError(f"BENCH_LOG_LEVEL={raw!r}: expected INFO, WARNING, ...")
            values["log_level"] = raw.upper()
        if raw := env.get("BENCH_COLLECTOR", "").strip():
            values["collector"] = raw
        if raw := env.get("BENCH_OUTPUT", "").strip():
            values["output"] = Path(raw).resolve()
        config = cls(**values)  # type: ignore[arg-type]
        if config.wrk_threads > min(config.concurrency):
            raise BenchConfigError(
                f"BENCH_WRK_THREADS={config.wrk_threads}: wrk needs at least one connection per "
                f"thread, and the lowest concurrency is {min(config.concurrency)}"
            )
        return config


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BenchConfigError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise BenchConfigError(f"{name}={raw!r}: expected at least {minimum}")
    return value
