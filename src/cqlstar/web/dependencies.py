"""Dependency providers: what handlers may ask for by name."""

from __future__ import annotations

from litestar.datastructures import State

from cqlstar.aiocassandra import AsyncSession
from cqlstar.database import CassandraConnection
from cqlstar.services import Services
from cqlstar.settings import Settings


def provide_connection(state: State) -> CassandraConnection:
    return Services.of(state).cassandra


def provide_session(state: State) -> AsyncSession:
    """The live session; raises CassandraUnavailable (503) while the service is still connecting."""
    return provide_connection(state).session


def provide_settings(state: State) -> Settings:
    return Services.of(state).settings
