"""Response bodies of the system routes."""

from __future__ import annotations

from typing import Literal

import msgspec


class Welcome(msgspec.Struct, frozen=True):
    message: str
    version: str
    docs: str = "/docs"


class Health(msgspec.Struct, frozen=True):
    status: Literal["healthy", "unhealthy"]
    cassandra_connected: bool
    cassandra: Literal["connected", "disconnected"]
    cassandra_version: str | None
    keyspace: str
    # RFC 3339, UTC, milliseconds: the precision every timestamp of the API has.
    timestamp: str
    # "disabled" when CQLSTAR_AUTH=disabled: every route is open.
    auth: Literal["oidc", "disabled"] = "oidc"
