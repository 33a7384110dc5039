"""The WebSocket figures `/metrics` reports: connections, messages, closes and broadcast.

Plain counters, kept by the event loop that serves the connections (one per process, so no lock):
WebSocket traffic is long-lived connections and many small messages, which per-message spans alone
would not count well (a connection is not a span; its closing code is not a request status). Label
sets stay small: package names and status codes from the protocol's fixed tables, close codes from
`CloseCode`.
"""

from __future__ import annotations

from collections import Counter

import msgspec


class WebSocketFigures(msgspec.Struct, frozen=True, kw_only=True):
    """This process's WebSocket traffic. Counters only grow, except `connections_open`."""

    connections_open: int
    connections_total: int
    # "<PACKAGE NAME>" (or "INVALID" for frames that are no request) -> status code -> count.
    messages: dict[str, dict[int, int]]
    # Close code -> connections the server closed with it.
    closes: dict[int, int]
    broadcast_published: int
    broadcast_publish_failures: int
    broadcast_deliveries: int
    # Events not delivered because the reader's backlog was full (it is then closed with 1013).
    broadcast_drops: int
    # Reads of the broadcast subscription that Redis failed (each is retried; events published
    # while it is down are missed by this process's readers).
    broadcast_subscription_errors: int
    rate_limited: int
    auth_failures: int
    # Connects admitted without checking the connection limit because Redis did not answer.
    slot_failures: int


class WebSocketMetrics:
    def __init__(self) -> None:
        self.connections_open = 0
        self.connections_total = 0
        self.messages: Counter[tuple[str, int]] = Counter()
        self.closes: Counter[int] = Counter()
        self.broadcast_published = 0
        self.broadcast_publish_failures = 0
        self.broadcast_deliveries = 0
        self.broadcast_drops = 0
        self.broadcast_subscription_errors = 0
        self.rate_limited = 0
        self.auth_failures = 0
        self.slot_failures = 0

    def figures(self) -> WebSocketFigures:
        messages: dict[str, dict[int, int]] = {}
        for (package, status), count in sorted(self.messages.items()):
            messages.setdefault(package, {})[status] = count
        return WebSocketFigures(
            connections_open=self.connections_open,
            connections_total=self.connections_total,
            messages=messages,
            closes=dict(sorted(self.closes.items())),
            broadcast_published=self.broadcast_published,
            broadcast_publish_failures=self.broadcast_publish_failures,
            broadcast_deliveries=self.broadcast_deliveries,
            broadcast_drops=self.broadcast_drops,
            broadcast_subscription_errors=self.broadcast_subscription_errors,
            rate_limited=self.rate_limited,
            auth_failures=self.auth_failures,
            slot_failures=self.slot_failures,
        )
