"""The app's long-lived services: built once by `create_app`, one typed home for all of them.

Dependency providers read what they hand to handlers from here (`Services.of(state)`), so a new
service is a new typed field rather than another string key in Litestar's `State` that the factory
and every provider must spell alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from litestar.datastructures import State
from redis.asyncio import Redis

from cqlstar.telemetry.counters import ServiceCounters

if TYPE_CHECKING:
    # Imported for the annotations only: the domains import this module to read their services,
    # so a runtime import back into them would be a cycle.
    from cqlstar.database import CassandraConnection
    from cqlstar.identity.issuer import IssuerClient
    from cqlstar.identity.tokens import TokenVerifier
    from cqlstar.limits import RateLimiter
    from cqlstar.realtime.runtime import Realtime
    from cqlstar.settings import Settings
    from cqlstar.system.health import DependencyCheck
    from cqlstar.telemetry import Telemetry
    from cqlstar.users.dependencies import UserRepositoryHolder
    from cqlstar.users.streaming import StreamSlots

_STATE_KEY = "services"


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    settings: Settings
    cassandra: CassandraConnection
    user_repository: UserRepositoryHolder
    # How many streamed responses may be in progress at once (CQLSTAR_MAX_STREAMS).
    stream_slots: StreamSlots
    # Token checks (`identity.verify(token) -> Principal`) and the issuer's grants; both None when
    # CQLSTAR_AUTH=disabled.
    identity: TokenVerifier | None = None
    identity_provider: IssuerClient | None = None
    # The shared Redis (`REDIS_URL`), None when state is in-process (`cqlstar.redisclient`).
    redis: Redis | None
    # Every rate limit of the service: HTTP per principal, login, WebSocket messages.
    rate_limiter: RateLimiter
    # What GET /health asks, one per dependency in use (`cqlstar.system.health`).
    health_checks: tuple[DependencyCheck, ...] = ()
    # The WebSocket API's shared state; the users routes publish their changes through it. None
    # in apps built without the WebSocket API (unit tests of other concerns): nothing to publish to.
    realtime: Realtime | None = None
    # Refused credentials on HTTP, for GET /metrics (`cqlstar.telemetry.counters`).
    counters: ServiceCounters = field(default_factory=ServiceCounters)
    # The tracer and the metrics every instrumentation point feeds (`GET /metrics` reads them).
    telemetry: Telemetry

    def state(self) -> State:
        """The app's `State`, holding these services under the one key `of` reads."""
        return State({_STATE_KEY: self})

    @staticmethod
    def of(state: State) -> Services:
        services: Services = state[_STATE_KEY]
        return services
