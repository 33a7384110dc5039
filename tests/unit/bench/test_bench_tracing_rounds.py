"""Tracing configurations measured in rounds: how a configuration's rounds become one entry."""

from __future__ import annotations

import pytest
from bench.pipeline.http import combine_rounds
from bench.pipeline.report import ScenarioEntry


def round_entry(
    requests: int, seconds: float, p50: float, p99: float, service_cpu: float, spans: int
) -> ScenarioEntry:
    return ScenarioEntry(
        name="get_user_tracing_on",
        concurrency=64,
        environment="OTEL_TRACES_SAMPLER=parentbased_always_on",
        requests_per_second=requests / seconds,
        p50_ms=p50,
        p90_ms=p50 * 1.5,
        p99_ms=p99,
        max_ms=p99 * 2,
        mean_ms=p50,
        errors=1,
        status_errors=1,
        socket_errors=0,
        timeouts=0,
        requests=requests,
        duration_s=seconds,
        cpu_seconds={"service": service_cpu, "cassandra": 1.0, "load_generator": 0.25},
        cpu_cores={},
        load_generator_cpu_share=None,
        service_cpu_us_per_request=None,
        requests_served=requests + 100,
        spans_received=spans,
    )


def test_rounds_add_up_to_totals_over_all_rounds() -> None:
    rounds = [
        round_entry(3000, 1.0, 10.0, 40.0, 0.9, 6200),
        round_entry(2000, 1.0, 30.0, 90.0, 0.8, 4200),
        round_entry(4000, 2.0, 20.0, 60.0, 1.2, 8200),
    ]
    combined = combine_rounds(rounds)
    assert combined.rounds == 3
    assert combined.requests == 9000
    assert combined.duration_s == 4.0
    assert combined.requests_per_second == 2250.0  # not the mean of 3000, 2000 and 2000
    assert (combined.p50_ms, combined.p99_ms) == (20.0, 60.0)  # the median round's
    assert combined.max_ms == 180.0
    assert combined.mean_ms == pytest.approx((3000 * 10 + 2000 * 30 + 4000 * 20) / 9000)
    assert (combined.errors, combined.status_errors) == (3, 3)
    assert combined.cpu_seconds == pytest.approx(
        {"service": 2.9, "cassandra": 3.0, "load_generator": 0.75}
    )
    assert combined.cpu_cores == {"service": 0.73, "cassandra": 0.75, "load_generator": 0.19}
    assert combined.service_cpu_us_per_request == pytest.approx(1e6 * 2.9 / 9000, abs=0.05)
    assert combined.load_generator_cpu_share == round(0.75 / 6.65, 3)
    assert combined.spans_received == 18600
    assert combined.spans_per_request == round(18600 / 9300, 3)
    assert combined.environment == rounds[0].environment


def test_one_round_is_that_round() -> None:
    only = round_entry(3000, 1.5, 10.0, 40.0, 0.9, 6200)
    combined = combine_rounds([only])
    assert combined.requests_per_second == only.requests_per_second
    assert (combined.p50_ms, combined.p99_ms, combined.max_ms) == (10.0, 40.0, 80.0)
