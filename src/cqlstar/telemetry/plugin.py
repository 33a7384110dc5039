"""Wiring telemetry into a Litestar app: logs, span metrics, server spans, flush at shutdown.

Two steps, both in the app factory::

    telemetry = TelemetryPlugin(log_level=settings.log_level)
    app = Litestar(..., plugins=[telemetry])
    return telemetry.instrument(app)

The plugin part (`on_app_init`) installs the JSON log pipeline in place of Litestar's default
logging config, registers the hook that tells the server span which exception caused a 5xx, and adds the outermost lifespan, which flushes
spans and log lines when the app shuts down: a granian worker exits without running atexit hooks,
so nothing else would.

`instrument` wraps the app's whole ASGI handler in `ServerSpanMiddleware`. Litestar's
`middleware=[...]` runs after routing, so it would never see a request for an unknown route or
with the wrong method; the handler Litestar builds around its router does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin

from cqlstar.telemetry.http import ServerSpanMiddleware, record_exception_type
from cqlstar.telemetry.logs import configure_logging
from cqlstar.telemetry.setup import Telemetry, setup_telemetry

log = logging.getLogger(__name__)

SHUTDOWN_FLUSH_TIMEOUT_S = 10.0


class TelemetryPlugin(InitPlugin):
    """Tracing, structured logs and metrics for one app (sharing the process's provider)."""

    def __init__(self, *, log_level: str, telemetry: Telemetry | None = None) -> None:
        self.log_level = log_level
        self.telemetry = telemetry or setup_telemetry()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        self.logs = configure_logging(self.log_level)
        # Litestar would otherwise point the root logger at its own plain-text handler.
        app_config.logging_config = None
        app_config.after_exception.append(record_exception_type)
        # First in the list = entered first, left last: it flushes after the other lifespans (the
        # Cassandra session's close, say) have finished and ended their spans.
        app_config.lifespan.insert(0, self._flush_on_shutdown)
        return app_config

    def instrument(self, app: Litestar) -> Litestar:
        """Wrap the app's ASGI handler (routing included) in the server-span middleware."""
        app.asgi_handler = ServerSpanMiddleware(
            app.asgi_handler,
            self.telemetry.tracer,
            self.telemetry.metrics,
            tracing=self.telemetry.enabled,
        )
        return app

    @asynccontextmanager
    async def _flush_on_shutdown(self, app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # Export is blocking network I/O: keep it off the event loop.
            flushed = await asyncio.to_thread(self.telemetry.flush, SHUTDOWN_FLUSH_TIMEOUT_S)
            if not flushed:
                log.warning(
                    "spans still queued after the shutdown flush timed out",
                    extra={"timeout_s": SHUTDOWN_FLUSH_TIMEOUT_S},
                )
            await asyncio.to_thread(self.logs.flush)
