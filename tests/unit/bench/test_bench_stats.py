from __future__ import annotations

from bench.harness.stats import Latency, latency_summary, percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.5) == 7.0
    assert percentile([], 0.5) == 0.0


def test_latency_summary_is_in_milliseconds_from_unsorted_seconds() -> None:
    summary = latency_summary([0.003, 0.001, 0.002, 0.010])
    assert summary == Latency(p50_ms=2.0, p90_ms=10.0, p99_ms=10.0, max_ms=10.0)
