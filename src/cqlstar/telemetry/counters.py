"""Counters of HTTP events that have no span of their own: refused credentials.

HTTP requests and Cassandra queries are counted from their spans (`cqlstar.telemetry.metrics`), and
WebSocket traffic by the WebSocket API itself (`cqlstar.realtime.metrics`). A token refused by the
HTTP token check ends the request before any work, so the identity middleware counts it here, in
`Services.counters`, with `authentication_failed(reason)` (missing, malformed, invalid_token,
revoked, issuer_unavailable); `GET /metrics` exposes the counts.

Labels must come from bounded sets. As a guard, a family keeps at most `MAX_LABEL_VALUES` distinct
label values; anything beyond is counted as `other`, so a bug that passes raw input as a label
cannot grow memory or the exposition.
"""

from __future__ import annotations

from collections import Counter

MAX_LABEL_VALUES = 64
OTHER = "other"


class BoundedCounter:
    """Counts per label value, with at most `MAX_LABEL_VALUES` distinct values."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, ...]] = Counter()

    def add(self, labels: tuple[str, ...], amount: int = 1) -> None:
        if labels not in self.counts and len(self.counts) >= MAX_LABEL_VALUES:
            labels = tuple(OTHER for _ in labels)
        self.counts[labels] += amount

    def snapshot(self) -> dict[tuple[str, ...], int]:
        return dict(self.counts)


class ServiceCounters:
    def __init__(self) -> None:
        # (reason,) -> refused HTTP requests.
        self.authentication_failures = BoundedCounter()

    def authentication_failed(self, reason: str) -> None:
        self.authentication_failures.add((reason,))
