from __future__ import annotations

from typing import Any

from bench.harness.ceiling import CeilingResult
from bench.harness.config import BenchConfig
from bench.harness.machine import Machine
from bench.pipeline.markdown import render_markdown
from bench.pipeline.ratios import ceilings, compute_ratios, evaluate_targets, find
from bench.pipeline.report import (
    AlternatingRounds,
    Ceilings,
    Report,
    ScenarioEntry,
    StreamFigures,
    TracingFigures,
    decode,
    encode,
)


def _entry(name: str, concurrency: int, rps: float, **extra: Any) -> ScenarioEntry:
    fields: dict[str, Any] = {
        "name": name,
        "concurrency": concurrency,
        "requests_per_second": rps,
        "p50_ms": 2.0,
        "p90_ms": 3.0,
        "p99_ms": 5.0,
        "max_ms": 9.0,
        "errors": 0,
        "requests": 1000,
        "duration_s": 1.0,
        "mean_ms": 2.5,
        "status_errors": 0,
        "socket_errors": 0,
        "timeouts": 0,
        "cpu_seconds": {"service": 1.0, "cassandra": 0.5, "load_generator": 0.1},
        "cpu_cores": {},
        "load_generator_cpu_share": 0.06,
        "service_cpu_us_per_request": None,
    }
    return ScenarioEntry(**(fields | extra))


def _ceiling(concurrency: int, rps: float, client_cpu_us: float | None = None) -> CeilingResult:
    return CeilingResult(
        concurrency=concurrency,
        reads=int(rps),
        errors=0,
        duration_s=1.0,
        reads_per_second=rps,
        p50_ms=1.0,
        p90_ms=2.0,
        p99_ms=4.0,
        max_ms=8.0,
        cpu_seconds={"client": 4.0, "cassandra": 3.0},
        client_cpu_us_per_read=client_cpu_us,
    )


SCENARIOS = (
    _entry("get_user", 16, 900.0),
    _entry("get_user", 64, 1000.0),
    _entry("get_user_tracing_off", 64, 1000.0),
    _entry("get_user_tracing_default", 64, 980.0),
    _entry("get_user_tracing_on", 64, 920.0),
    _entry("get_user_tracing_sampled", 64, 990.0),
)
CEILINGS = ceilings(
    64, (_ceiling(64, 2000.0),), (_ceiling(64, 1700.0),), (_entry("http_floor", 64, 4000.0),)
)
STREAM = StreamFigures(
    rows_per_second=150000.0,
    streams_per_second=1.5,
    rows_per_stream=100000,
    fetch_size=5000,
    streams=3,
    p50_ms=600.0,
    p90_ms=700.0,
    p99_ms=700.0,
    max_ms=700.0,
    first_row_ms=4.0,
    errors=0,
    duration_s=2.0,
    baseline_rss_mb=80.0,
    peak_rss_mb=90.0,
    rss_growth_mb_by_rows={"10000": 9.0, "100000": 10.0},
    rss_after_first_stream_mb=88.5,
    rss_after_last_stream_mb=89.0,
    streams_after_first=2,
    cpu_seconds={"service": 1.0},
)


def test_ceilings_are_read_at_the_reference_concurrency() -> None:
    measured = ceilings(64, (_ceiling(16, 500.0), _ceiling(64, 2000.0)), (), ())
    assert measured.raw_driver_reads_per_second == 2000.0
    assert measured.async_layer_reads_per_second is None
    assert measured.http_floor_requests_per_second is None


def test_ratios_are_taken_at_the_reference_concurrency() -> None:
    ratios = compute_ratios(SCENARIOS, CEILINGS, STREAM)
    assert ratios.get_user_vs_raw_driver == 0.5
    assert ratios.get_user_vs_http_floor == 0.25
    assert ratios.async_layer_vs_raw_driver == 0.85
    assert ratios.get_user_p99_over_p50 == 2.5
    assert ratios.tracing_default_cost == 0.02
    assert ratios.tracing_on_cost == 0.08
    assert ratios.tracing_sampled_cost == 0.01
    assert ratios.stream_rows_per_second == 150000.0


def test_cpu_per_request_ratios_compare_like_with_like() -> None:
    scenarios = [
        _entry("get_user", 64, 1000.0, service_cpu_us_per_request=400.0),
        _entry("get_user_tracing_off", 64, 1000.0, service_cpu_us_per_request=400.0),
        _entry("get_user_tracing_on", 64, 1000.0, service_cpu_us_per_request=500.0),
    ]
    measured = ceilings(64, (_ceiling(64, 1.0, 100.0),), (_ceiling(64, 1.0, 125.0),), ())
    ratios = compute_ratios(scenarios, measured)
    assert ratios.get_user_cpu_efficiency_vs_raw_driver == 0.25
    assert ratios.async_layer_cpu_efficiency_vs_raw_driver == 0.8
    assert ratios.tracing_on_cpu_cost == 0.25
    assert ratios.tracing_sampled_cpu_cost is None


def test_what_was_not_measured_stays_none() -> None:
    ratios = compute_ratios([_entry("get_user", 64, 1000.0)], ceilings(64, (), (), ()))
    assert ratios.get_user_vs_raw_driver is None
    assert ratios.tracing_on_cost is None
    assert ratios.stream_rows_per_second is None
    assert ratios.auth_token_vs_open is None
    assert ratios.get_user_p99_over_p50 == 2.5


def test_alternating_rounds_give_their_ratios() -> None:
    auth = AlternatingRounds(
        rounds=3,
        concurrency=64,
        configurations=(_entry("get_user_open", 64, 1000.0), _entry("get_user_auth", 64, 950.0)),
    )
    limits = AlternatingRounds(
        rounds=3,
        concurrency=64,
        configurations=(
            _entry("get_user_plain", 64, 1000.0),
            _entry("get_user_token", 64, 900.0),
            _entry("get_user_token_limited", 64, 810.0),
        ),
    )
    ratios = compute_ratios([], ceilings(64, (), (), ()), auth=auth, limits=limits)
    assert ratios.auth_token_vs_open == 0.95
    assert ratios.limits_token_limited_vs_plain == 0.81
    assert ratios.limits_token_limited_vs_token == 0.9


def test_targets_say_which_goals_are_met() -> None:
    targets = {t.key: t for t in evaluate_targets(compute_ratios(SCENARIOS, CEILINGS, STREAM))}
    assert targets["get_user_vs_raw_driver"].met is False  # 0.5 < 0.6
    assert targets["async_layer_vs_raw_driver"].met is True
    assert targets["get_user_p99_over_p50"].met is True
    assert targets["tracing_default_cost"].met is True  # 0.02 < 0.05
    assert targets["tracing_sampled_cost"].met is True
    assert targets["stream_rows_per_second"].met is True
    unmeasured = {t.key: t for t in evaluate_targets(compute_ratios([], ceilings(64, (), (), ())))}
    assert unmeasured["get_user_vs_raw_driver"].met is None


def test_find_matches_name_and_concurrency() -> None:
    assert find(SCENARIOS, "get_user", 16) is SCENARIOS[0]
    assert find(SCENARIOS, "get_user") is SCENARIOS[0]
    assert find(SCENARIOS, "list_users") is None


def _report() -> Report:
    ratios = compute_ratios(SCENARIOS, CEILINGS, STREAM)
    config = BenchConfig.from_env({"BENCH_SECONDS": "5", "BENCH_CONCURRENCY": "16,64"})
    return Report(
        started_at="2025-01-01T00:00:00+00:00",
        duration_s=120.0,
        command="BENCH_SECONDS=5 just bench",
        settings=config.settings(),
        machine=Machine(
            cpu="Test CPU",
            cores=2,
            memory_gib=24.0,
            load_average_at_start=(0.5, 0.4, 0.3),
            kernel="6.1",
            python="3.11.9",
            packages={"litestar": "2.25.0"},
            git_commit="abc1234",
        ),
        cassandra_version="5.0.9",
        load_generator="wrk 4.1.0",
        scenarios=SCENARIOS,
        ceilings=CEILINGS,
        ratios=ratios,
        targets=evaluate_targets(ratios),
        streaming=STREAM,
        tracing=TracingFigures(
            receiver="a test sink",
            rounds=1,
            configurations=(_entry("get_user_tracing_off", 64, 1000.0, environment="X=1"),),
        ),
        notes=("a note",),
    )


def test_markdown_has_the_command_the_tables_and_the_machine() -> None:
    text = render_markdown(_report())
    assert "    BENCH_SECONDS=5 just bench" in text
    assert "| get_user | 16 | 900.0 | 2.0 | 3.0 | 5.0 | 9.0 | 0 |" in text
    assert "| raw_driver | 64 | 2,000 |" in text
    assert "| http_floor | 64 | 4,000 |" in text
    assert "50% of the raw driver" in text
    assert "at 100% sampling: 8%" in text
    assert "| 100000 | 10.0 |" in text
    assert (
        "RSS after the first of the 3 streams read back to back: 88.5 MiB; after the last: 89.0"
        in text
    )
    assert "| get_user_tracing_off | `X=1` |" in text
    assert "| cpu | Test CPU |" in text
    assert "| load generator | wrk 4.1.0 |" in text
    assert "- a note" in text
    assert "## Slow and stalled stream readers" not in text  # not measured, no section


def test_the_report_decodes_to_what_was_encoded() -> None:
    report = _report()
    data = encode(report)
    assert decode(data) == report
    # Fields that do not apply are left out, not written as null.
    assert b'"rounds"' not in data.split(b'"tracing"')[0]
    assert b'"websocket":' not in data
    assert isinstance(decode(data).ceilings, Ceilings)
