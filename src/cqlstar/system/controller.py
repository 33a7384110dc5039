"""`GET /`, `GET /health` and `POST /shutdown`."""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import signal
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Litestar, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import OpenAPIMediaType
from litestar.exceptions import PermissionDeniedException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_503_SERVICE_UNAVAILABLE

from cqlstar import __version__
from cqlstar.database import CassandraConnection
from cqlstar.identity import OPEN_ROUTE, Role, requires
from cqlstar.services import Services
from cqlstar.settings import Settings
from cqlstar.system.health import run_checks
from cqlstar.system.schemas import Health, Welcome
from cqlstar.web.schemas import Message

log = logging.getLogger(__name__)


# The document is fixed once the app is built: encoded once per app (a few at most: tests build
# several), as Litestar serves /docs/openapi.json. Built per request it cost about 12 ms, on a route
# that is open and not rate limited.
@functools.lru_cache(maxsize=4)
def _openapi_json(app: Litestar) -> bytes:
    return msgspec.json.encode(app.openapi_schema.to_schema())


class SystemController(Controller):
    tags = ["system"]

    @get(
        "/",
        operation_id="welcome",
        summary="Service name, version and where the docs are",
        opt=OPEN_ROUTE,
    )
    async def welcome(self) -> Welcome:
        return Welcome(message="cqlstar: a Users API over Apache Cassandra", version=__version__)

    @get(
        "/openapi.json",
        include_in_schema=False,
        media_type=OpenAPIMediaType.OPENAPI_JSON,
        opt=OPEN_ROUTE,
    )
    async def openapi_document(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """The OpenAPI 3.1 document at the path clients look for first (also at /docs/openapi.json)."""
        return Response(_openapi_json(request.app), media_type=OpenAPIMediaType.OPENAPI_JSON)

    @get(
        "/health",
        operation_id="health",
        summary="Whether every dependency (Cassandra, Redis, the identity provider) answers now",
        responses={
            HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(
                Health,
                description="Cassandra cannot be reached",
                examples=[Example(value={"status": "unhealthy", "cassandra_connected": False})],
            )
        },
        cache=False,
        opt=OPEN_ROUTE,
    )
    async def health(
        self, state: State, connection: NamedDependency[CassandraConnection]
    ) -> Response[Health]:
        """Asks every dependency at once, each within 1.2 s (`cqlstar.system.health`): Cassandra
        (its release version, and a read at the service's consistency), Redis when configured
        (PING), the identity provider when authentication is on (its JWKS). `healthy` when all
        answer, `degraded` (still 200) when only Redis or the identity provider does not,
        `unhealthy` (503) when Cassandra does not."""
        status, checks = await run_checks(Services.of(state).health_checks)
        cassandra = checks.get("cassandra")
        connected = cassandra is not None and cassandra.status == "up"
        body = Health(
            status=status,
            cassandra_connected=connected,
            cassandra="connected" if connected else "disconnected",
            cassandra_version=cassandra.version if cassandra is not None else None,
            keyspace=connection.settings.cassandra_keyspace,
            timestamp=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            auth=connection.settings.auth,
            checks=checks,
        )
        return Response(
            body, status_code=HTTP_503_SERVICE_UNAVAILABLE if status == "unhealthy" else 200
        )

    @post(
        "/shutdown",
        operation_id="shutdown",
        summary="Drain and stop the process (only when enabled by CQLSTAR_ENABLE_SHUTDOWN)",
        status_code=HTTP_202_ACCEPTED,
        opt=requires(Role.ADMIN),
        responses={403: ResponseSpec(None, description="The shutdown endpoint is disabled")},
    )
    async def shutdown(self, settings: NamedDependency[Settings]) -> Response[Message]:
        """Answers first, then asks the server for a graceful stop (SIGTERM to this process), so
        requests in flight finish and the lifespan closes the Cassandra session."""
        if not settings.shutdown_endpoint_enabled:
            raise PermissionDeniedException(detail="The shutdown endpoint is disabled")
        log.warning("shutdown requested over HTTP")
        return Response(
            Message("Shutdown initiated"),
            status_code=HTTP_202_ACCEPTED,
            background=BackgroundTask(_terminate_self),
        )


async def _terminate_self() -> None:
    await asyncio.sleep(0.1)  # let the 202 reach the client before the server starts draining
    os.kill(_server_pid(), signal.SIGTERM)


def _server_pid() -> int:
    """The process whose SIGTERM drains the whole server.

    Under granian the app runs in a worker process; a worker that stops on its own is an "unexpected
    exit" to granian's main process, which then shuts down with an error status. So the signal goes
    to granian's main process, which drains its workers and exits cleanly. granian starts its
    workers with `multiprocessing`, which records their parent whether granian was started as
    `python -m cqlstar` or as `granian ...`. Under a single-process server (or granian's threaded
    workers) there is no such parent and the app's own process is the server.
    """
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        return parent.pid
    return os.getpid()
