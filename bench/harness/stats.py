"""Percentiles over latencies the harness records itself (the ceilings; wrk reports its own)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec


class Latency(msgspec.Struct, frozen=True, kw_only=True):
    """p50/p90/p99/max of a measurement, in milliseconds."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of values already sorted ascending (0 for no values)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_s: Sequence[float]) -> Latency:
    """p50/p90/p99/max in milliseconds of latencies in seconds, in any order."""
    ordered = sorted(latencies_s)
    return Latency(
        p50_ms=round(percentile(ordered, 0.50) * 1000, 3),
        p90_ms=round(percentile(ordered, 0.90) * 1000, 3),
        p99_ms=round(percentile(ordered, 0.99) * 1000, 3),
        max_ms=round((ordered[-1] if ordered else 0.0) * 1000, 3),
    )
