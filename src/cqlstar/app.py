"""The application factory, which `python -m cqlstar` serves under granian (`cqlstar.serving`).

Wiring only. Routes live with their domain (`cqlstar.users`, `cqlstar.diagnostics`,
`cqlstar.system`); Cassandra access lives in `cqlstar.database` and `cqlstar.aiocassandra`;
HTTP plumbing in `cqlstar.web`; tracing, logs and metrics in `cqlstar.telemetry`.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from cqlstar import __version__
from cqlstar.database import CassandraConnection
from cqlstar.diagnostics import DIAGNOSTICS_CONTROLLERS, prepare_diagnostics
from cqlstar.identity.guards import SECURITY_COMPONENTS, document_access
from cqlstar.identity.health import IdentityProviderCheck
from cqlstar.identity.middleware import OPEN_ROUTE
from cqlstar.identity.setup import IDENTITY_ROUTE_HANDLERS, build_identity, warn_auth_disabled
from cqlstar.limits import create_rate_limiter
from cqlstar.limits.middleware import HttpRateLimitMiddleware
from cqlstar.limits.openapi import document_rate_limits
from cqlstar.realtime import Realtime, RealtimePlugin
from cqlstar.redisclient import connect_redis
from cqlstar.services import Services
from cqlstar.settings import Settings
from cqlstar.system.controller import SystemController
from cqlstar.system.health import CassandraCheck, DependencyCheck, RedisCheck
from cqlstar.system.metrics import MetricsController
from cqlstar.telemetry import Telemetry, TelemetryPlugin
from cqlstar.users import UserController, UserRepositoryHolder
from cqlstar.users.streaming import StreamSlots
from cqlstar.web.deadline import RequestBudgetMiddleware
from cqlstar.web.dependencies import provide_connection, provide_session, provide_settings
from cqlstar.web.errors import EXCEPTION_HANDLERS
from cqlstar.web.inputs import JSONBodyRequest, RequestInputsMiddleware
from cqlstar.web.methods import MethodsMiddleware, allowed_methods
from cqlstar.web.request_body import RequestBodyMiddleware

MAX_BODY_BYTES = 1024 * 1024

# The cyclic garbage collector's first generation runs every 700 net allocations by default. A
# request allocates hundreds of short-lived containers (rows, structs, span attributes), so it ran
# several times per request and scanned rows that are about to be freed anyway by reference
# counting. A larger threshold trades a few MiB of RSS for ~15% less CPU per `get_user` and ~25%
# less per streamed row (measured with `just bench`; see README, Performance).
GC_THRESHOLDS = (10_000, 10, 10)


def tune_garbage_collector() -> None:
    """Once per server process, after start-up allocations: freeze them out of future scans."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings | None = None, tracing: Telemetry | None = None) -> Litestar:
    """The service's app; `tracing` defaults to the process's, from the `OTEL_*` variables."""
    settings = settings or Settings.from_env()
    telemetry = TelemetryPlugin(log_level=settings.log_level, telemetry=tracing)
    user_repository = UserRepositoryHolder()
    connection = CassandraConnection(
        settings,
        on_connect=[prepare_diagnostics, user_repository.prepare],
        query_listener=telemetry.telemetry.metrics.query_ended,
    )
    redis = connect_redis(settings.redis_url) if settings.redis_url else None
    identity = build_identity(settings, redis)
    rate_limiter = create_rate_limiter(settings, redis)
    health_checks: list[DependencyCheck] = [CassandraCheck(connection)]
    if redis is not None:
        health_checks.append(RedisCheck(redis, rate_limiter))
    if identity is not None:
        health_checks.append(IdentityProviderCheck(identity.provider))
    realtime = Realtime(
        settings=settings,
        user_repository=user_repository,
        rate_limiter=rate_limiter,
        verifier=identity.verifier if identity else None,
        redis=redis,
    )

    @asynccontextmanager
    async def cassandra_lifespan(app: Litestar) -> AsyncIterator[None]:
        tune_garbage_collector()
        connection.start()
        try:
            yield
        finally:
            await connection.close()
            await rate_limiter.close()
            if redis is not None:
                await redis.aclose()

    app = Litestar(
        route_handlers=[
            SystemController,
            UserController,
            *DIAGNOSTICS_CONTROLLERS,
            MetricsController,
            *(IDENTITY_ROUTE_HANDLERS if identity else ()),
        ],
        state=Services(
            settings=settings,
            cassandra=connection,
            user_repository=user_repository,
            stream_slots=StreamSlots(settings.max_streams),
            identity=identity.verifier if identity else None,
            identity_provider=identity.provider if identity else None,
            redis=redis,
            rate_limiter=rate_limiter,
            health_checks=tuple(health_checks),
            realtime=realtime,
            telemetry=telemetry.telemetry,
        ).state(),
        lifespan=[cassandra_lifespan, identity.lifespan if identity else warn_auth_disabled],
        dependencies={
            "connection": Provide(provide_connection, sync_to_thread=False),
            "session": Provide(provide_session, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
        },
        # Authentication first: a request without a valid token does nothing else, and the rate
        # limit counts in the window of the principal it found.
        middleware=[
            *([identity.middleware()] if identity else []),
            DefineMiddleware(HttpRateLimitMiddleware, limiter=rate_limiter),
            RequestBudgetMiddleware,
            DefineMiddleware(RequestBodyMiddleware, timeout_s=settings.request_body_timeout_s),
            RequestInputsMiddleware,
        ],
        request_class=JSONBodyRequest,
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="cqlstar",
            version=__version__,
            path="/docs",
            # The docs are open: the UI logs in through POST /login, then calls protected routes.
            openapi_router=Router(
                "/docs", route_handlers=[], include_in_schema=False, opt=OPEN_ROUTE
            ),
            components=SECURITY_COMPONENTS if identity else [],
            render_plugins=[SwaggerRenderPlugin(path="/")],
            use_handler_docstrings=True,  # a handler's docstring is its operation's description
        ),
        # The channels plugin before the realtime one, whose lifespan subscribes to it.
        plugins=[telemetry, realtime.channels, RealtimePlugin(realtime)],
        debug=False,
    )
    if identity:
        document_access(app)
    if settings.rate_limit is not None or settings.login_rate_limit is not None:
        document_rate_limits(app)
    # Around routing: HEAD is routed as GET, and OPTIONS answers list every method (web.methods).
    app.asgi_handler = MethodsMiddleware(app.asgi_handler, allowed_methods(app))
    # Around routing, so requests for unknown routes and wrong methods are traced too.
    return telemetry.instrument(app)
