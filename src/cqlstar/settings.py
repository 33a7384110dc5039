"""The service's configuration, read from the environment once at start.

Every value has a default that works on a developer machine with the local node; a malformed value
stops the service at start with a message naming the variable, instead of failing at first use;
`python -m cqlstar` reads them before granian starts, and serves on HOST:PORT.
OpenTelemetry is configured by the standard `OTEL_*` variables, which the SDK reads itself (see
`cqlstar.telemetry`).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

import msgspec

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
# A datacenter name as Cassandra's snitches report it (letters, digits, `-`, `_`, `.`).
_DATACENTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The consistency levels a service's reads and writes can use (not the serial ones, not ANY).
CONSISTENCY_LEVELS = frozenset(
    {"ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"}
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A configuration variable holds a value the service cannot use."""


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)
_RATE_WINDOWS_S = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class Rate(msgspec.Struct, frozen=True):
    """At most `limit` events in any `window_s` seconds (a sliding window: see `cqlstar.limits`)."""

    limit: int
    window_s: int

    @classmethod
    def parse(cls, name: str, raw: str) -> Rate | None:
        """`600/minute` (second, minute, hour or day); `0` means no limit, returned as None."""
        if raw.strip() == "0":
            return None
        match = _RATE.match(raw)
        if match is None or int(match[1]) < 1:
            raise SettingsError(
                f"{name}={raw!r}: expected <count>/<second|minute|hour|day>, e.g. 600/minute, "
                "or 0 for no limit"
            )
        return cls(int(match[1]), _RATE_WINDOWS_S[match[2].lower()])

    def __str__(self) -> str:
        unit = {seconds: unit for unit, seconds in _RATE_WINDOWS_S.items()}[self.window_s]
        return f"{self.limit}/{unit}"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1",)
    cassandra_port: int = 9042
    cassandra_keyspace: str = "cqlstar"
    cassandra_local_dc: str | None = None
    cassandra_username: str | None = None
    cassandra_password: str | None = None
    # The replication a missing keyspace is created with: None for one replica (SimpleStrategy, the
    # single local node), else NetworkTopologyStrategy with these (datacenter, replicas) pairs. An
    # existing keyspace is never altered.
    cassandra_replication: tuple[tuple[str, int], ...] | None = None
    # Every statement's consistency unless it says otherwise; conditional writes (lightweight
    # transactions) run their Paxos phase at `cassandra_serial_consistency`.
    cassandra_consistency: str = "LOCAL_QUORUM"
    # An idempotent read without an answer after this many milliseconds is also sent to the next
    # replica, at most `cassandra_speculative_attempts` more times. None: off. Idempotent writes
    # (the conditional inserts) wait far longer before they do the same, so two Paxos rounds of one
    # write never race while the first coordinator is merely slow (`aiocassandra.speculation`).
    # One attempt more: with three replicas that leaves a host of the query plan for a retry when
    # a node dies mid-request (`aiocassandra.cluster` says why that matters).
    cassandra_speculative_delay_ms: float | None = 50.0
    cassandra_speculative_write_delay_ms: float | None = 1000.0
    cassandra_speculative_attempts: int = 1
    # Where `python -m cqlstar` (cqlstar.serving) binds the server.
    host: str = "127.0.0.1"
    port: int = 8000
    # Signs the `page_state` tokens handed to clients. Without a configured secret each process makes
    # its own, so tokens do not survive a restart or travel between replicas: set it in production.
    page_token_secret: bytes = msgspec.field(default_factory=lambda: secrets.token_bytes(32))
    # POST /shutdown stops the process: off unless an operator turns it on.
    shutdown_endpoint_enabled: bool = False
    # Streamed responses (`GET /users/stream`) one worker process serves at once; more answer 503.
    # Each holds a few Cassandra pages however slowly its client reads (cqlstar.users.streaming).
    max_streams: int = 32
    log_level: str = "INFO"
    # The longest a request body may take to arrive, from the request's start (cqlstar.web.request_body).
    request_body_timeout_s: float = 30.0
    # Identity (cqlstar.identity): `oidc` checks a bearer token on every route but the open ones;
    # `disabled` serves every route to anyone and says so at start and in /health.
    auth: Literal["oidc", "disabled"] = "oidc"
    oidc_issuer: str | None = None
    oidc_client_id: str = "cqlstar-api"
    oidc_client_secret: str | None = None
    # The `aud` a token must carry; None means the client id.
    oidc_audience: str | None = None
    # Where the roles are in a token: a dotted path into its claims.
    oidc_roles_claim: str = "realm_access.roles"

    @property
    def audience(self) -> str:
        return self.oidc_audience or self.oidc_client_id

    # Shared state (rate limit windows, WebSocket connection counts, broadcast). None: in-process,
    # which is right for one process only (`python -m cqlstar --workers 2` refuses to start).
    redis_url: str | None = None
    # None turns a limit off (the variable set to 0).
    rate_limit: Rate | None = Rate(600, 60)
    login_rate_limit: Rate | None = Rate(10, 60)
    ws_rate_limit: Rate | None = Rate(100, 60)
    # Open WebSocket connections per principal across all processes; 0 means no limit.
    ws_max_connections: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if hosts := env.get("CASSANDRA_HOSTS", "").strip():
            parsed = tuple(h.strip() for h in hosts.split(",") if h.strip())
            if not parsed:
                raise SettingsError(f"CASSANDRA_HOSTS={hosts!r}: expected host[,host...]")
            values["cassandra_hosts"] = parsed
        if "CASSANDRA_PORT" in env:
            values["cassandra_port"] = _port(env, "CASSANDRA_PORT")
        if "PORT" in env:
            values["port"] = _port(env, "PORT")
        if keyspace := env.get("CASSANDRA_KEYSPACE"):
            if not _IDENTIFIER.match(keyspace):
                raise SettingsError(
                    f"CASSANDRA_KEYSPACE={keyspace!r}: expected a letter then up to 47 letters, "
                    "digits or underscores"
                )
            values["cassandra_keyspace"] = keyspace
        values.update(_replication_and_consistency(env))
        for name in ("CASSANDRA_LOCAL_DC", "CASSANDRA_USERNAME", "CASSANDRA_PASSWORD"):
            if value := env.get(name):
                values[name.lower()] = value
        if bool(env.get("CASSANDRA_USERNAME")) != bool(env.get("CASSANDRA_PASSWORD")):
            raise SettingsError("CASSANDRA_USERNAME and CASSANDRA_PASSWORD go together: set both")
        if host := env.get("HOST"):
            values["host"] = host
        if secret := env.get("CQLSTAR_PAGE_TOKEN_SECRET"):
            if len(secret) < 16:
                raise SettingsError("CQLSTAR_PAGE_TOKEN_SECRET: use at least 16 characters")
            values["page_token_secret"] = secret.encode()
        if "CQLSTAR_ENABLE_SHUTDOWN" in env:
            values["shutdown_endpoint_enabled"] = _flag(env, "CQLSTAR_ENABLE_SHUTDOWN")
        if streams := env.get("CQLSTAR_MAX_STREAMS", "").strip():
            if not streams.isascii() or not streams.isdigit() or not 1 <= int(streams) <= 10_000:
                raise SettingsError(f"CQLSTAR_MAX_STREAMS={streams!r}: expected 1 to 10000")
            values["max_streams"] = int(streams)
        if level := env.get("LOG_LEVEL"):
            if level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
                raise SettingsError(f"LOG_LEVEL={level!r}: expected DEBUG, INFO, WARNING or ERROR")
            values["log_level"] = level.upper()
        values.update(_body_timeout(env))
        values.update(_identity(env))
        values.update(_shared_state_and_limits(env))
        return cls(**values)  # type: ignore[arg-type]

    @property
    def cassandra_serial_consistency(self) -> str:
        """LOCAL_SERIAL under a LOCAL_* consistency (Paxos within the local datacenter), else
        SERIAL (Paxos across every datacenter), so conditional writes promise what plain ones do."""
        return "LOCAL_SERIAL" if self.cassandra_consistency.startswith("LOCAL_") else "SERIAL"


def _body_timeout(env: Mapping[str, str]) -> dict[str, object]:
    if not (raw := env.get("CQLSTAR_REQUEST_BODY_TIMEOUT", "").strip()):
        return {}
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0.1 <= seconds <= 600:
        raise SettingsError(f"CQLSTAR_REQUEST_BODY_TIMEOUT={raw!r}: expected seconds, 0.1 to 600")
    return {"request_body_timeout_s": seconds}


def parse_replication(raw: str) -> tuple[tuple[str, int], ...]:
    """`dc1:3,dc2:3` -> (("dc1", 3), ("dc2", 3))."""
    pairs: dict[str, int] = {}
    for item in raw.split(","):
        name, _, factor = item.strip().partition(":")
        name, factor = name.strip(), factor.strip()
        if not _DATACENTER.match(name) or not factor.isdigit() or not 1 <= int(factor) <= 99:
            raise SettingsError(
                f"CASSANDRA_REPLICATION={raw!r}: expected datacenter:replicas[,datacenter:replicas"
                "...], e.g. datacenter1:3 (replicas 1 to 99)"
            )
        if name in pairs:
            raise SettingsError(f"CASSANDRA_REPLICATION={raw!r}: datacenter {name} given twice")
        pairs[name] = int(factor)
    return tuple(pairs.items())


def _speculative_delay(name: str, raw: str) -> float | None:
    if raw.lower() in {"off", "false", "none"}:
        return None
    try:
        delay = float(raw)
    except ValueError:
        delay = -1.0
    if not 0 < delay <= 60_000:
        raise SettingsError(f"{name}={raw!r}: expected milliseconds (0 < ms <= 60000) or off")
    return delay


def _replication_and_consistency(env: Mapping[str, str]) -> dict[str, object]:
    """`CASSANDRA_REPLICATION`, `CASSANDRA_CONSISTENCY` and the speculative execution variables."""
    values: dict[str, object] = {}
    if replication := env.get("CASSANDRA_REPLICATION", "").strip():
        values["cassandra_replication"] = parse_replication(replication)
    if consistency := env.get("CASSANDRA_CONSISTENCY", "").strip():
        if consistency.upper() not in CONSISTENCY_LEVELS:
            raise SettingsError(
                f"CASSANDRA_CONSISTENCY={consistency!r}: expected one of "
                f"{', '.join(sorted(CONSISTENCY_LEVELS))}"
            )
        values["cassandra_consistency"] = consistency.upper()
    if delay := env.get("CASSANDRA_SPECULATIVE_DELAY_MS", "").strip():
        values["cassandra_speculative_delay_ms"] = _speculative_delay(
            "CASSANDRA_SPECULATIVE_DELAY_MS", delay
        )
    if write_delay := env.get("CASSANDRA_SPECULATIVE_WRITE_DELAY_MS", "").strip():
        values["cassandra_speculative_write_delay_ms"] = _speculative_delay(
            "CASSANDRA_SPECULATIVE_WRITE_DELAY_MS", write_delay
        )
    if attempts := env.get("CASSANDRA_SPECULATIVE_ATTEMPTS", "").strip():
        if not attempts.isdigit() or not 1 <= int(attempts) <= 5:
            raise SettingsError(f"CASSANDRA_SPECULATIVE_ATTEMPTS={attempts!r}: expected 1 to 5")
        values["cassandra_speculative_attempts"] = int(attempts)
    return values


def _shared_state_and_limits(env: Mapping[str, str]) -> dict[str, object]:
    """`REDIS_URL`, the three rates and `WS_MAX_CONNECTIONS`."""
    values: dict[str, object] = {}
    if url := env.get("REDIS_URL", "").strip():
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                f"REDIS_URL={url!r}: expected redis://host:port/db, rediss://... or unix://..."
            )
        values["redis_url"] = url
    for name in ("RATE_LIMIT", "LOGIN_RATE_LIMIT", "WS_RATE_LIMIT"):
        if name in env:
            values[name.lower()] = Rate.parse(name, env[name])
    if "WS_MAX_CONNECTIONS" in env:
        raw = env["WS_MAX_CONNECTIONS"]
        if not raw.strip().isdigit():
            raise SettingsError(
                f"WS_MAX_CONNECTIONS={raw!r}: expected a whole number (0 for no limit)"
            )
        values["ws_max_connections"] = int(raw)
    return values


def _identity(env: Mapping[str, str]) -> dict[str, object]:
    """The `CQLSTAR_AUTH` and `OIDC_*` variables. Fails closed: `oidc` (the default) without an
    issuer is an error, never an open service."""
    values: dict[str, object] = {}
    auth = env.get("CQLSTAR_AUTH", "oidc").strip().lower() or "oidc"
    if auth not in {"oidc", "disabled"}:
        raise SettingsError(f"CQLSTAR_AUTH={env['CQLSTAR_AUTH']!r}: expected oidc or disabled")
    values["auth"] = auth
    if issuer := env.get("OIDC_ISSUER", "").strip():
        parts = urlsplit(issuer)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise SettingsError(
                f"OIDC_ISSUER={issuer!r}: expected the issuer's URL, e.g. "
                "http://127.0.0.1:8180/realms/cqlstar"
            )
        values["oidc_issuer"] = issuer
    elif auth == "oidc":
        raise SettingsError(
            "OIDC_ISSUER is not set: authentication is on (CQLSTAR_AUTH=oidc, the default), so "
            "name the OpenID Connect issuer (`just serve` starts a local Keycloak and sets it), or "
            "set CQLSTAR_AUTH=disabled to run with every route open"
        )
    for name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_AUDIENCE"):
        if value := env.get(name, "").strip():
            values[name.lower()] = value
    if roles_claim := env.get("OIDC_ROLES_CLAIM", "").strip():
        if not all(roles_claim.split(".")):
            raise SettingsError(
                f"OIDC_ROLES_CLAIM={roles_claim!r}: expected a dotted path such as realm_access.roles"
            )
        values["oidc_roles_claim"] = roles_claim
    return values


def _port(env: Mapping[str, str], name: str) -> int:
    raw = env[name]
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a port number") from None
    if not 0 < port < 65536:
        raise SettingsError(f"{name}={raw!r}: expected a port number between 1 and 65535")
    return port


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env[name].strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name}={env[name]!r}: expected true or false")
