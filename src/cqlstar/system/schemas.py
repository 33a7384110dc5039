"""Response bodies of the system routes."""

from __future__ import annotations

from typing import Literal

import msgspec

from cqlstar.system.health import CheckResult


class Welcome(msgspec.Struct, frozen=True):
    message: str
    version: str
    docs: str = "/docs"


class Health(msgspec.Struct, frozen=True):
    # healthy: every dependency up; degraded: only Redis or the identity provider down (the
    # service still serves); unhealthy: Cassandra down (503).
    status: Literal["healthy", "degraded", "unhealthy"]
    cassandra_connected: bool
    cassandra: Literal["connected", "disconnected"]
    cassandra_version: str | None
    keyspace: str
    # RFC 3339, UTC, milliseconds: the precision every timestamp of the API has.
    timestamp: str
    # "disabled" when CQLSTAR_AUTH=disabled: every route is open.
    auth: Literal["oidc", "disabled"] = "oidc"
    # One entry per dependency in use: cassandra, and redis and identity_provider when configured.
    checks: dict[str, CheckResult] = msgspec.field(default_factory=dict)
