"""What a result or a stream needs from the session that made it, and nothing more.

`AsyncResultSet` and `AsyncStreamingResultSet` fetch further pages after `execute` returned: they
need the session's loop bridge, its query telemetry and keyspace, and (for streams) a way to tell
the session they closed. The session hands them this context instead of itself, so neither reaches
into the session's private attributes, and the session's internals can change without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._bridge import LoopBridge
    from .telemetry import QueryTelemetry


@dataclass(frozen=True, slots=True)
class ResultContext:
    # The bridge for a loop (a session keeps one per loop it is used from).
    bridge_for: Callable[[asyncio.AbstractEventLoop], LoopBridge]
    telemetry: QueryTelemetry
    # The session's current keyspace, read when a page's span starts.
    keyspace: Callable[[], str | None]
    # Called once by a stream when it closes, however it ends.
    stream_closed: Callable[[Any], None]

    def bridge(self) -> LoopBridge:
        return self.bridge_for(asyncio.get_running_loop())
