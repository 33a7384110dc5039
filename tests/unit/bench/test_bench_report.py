from __future__ import annotations

from typing import Any

from bench.report import compute_ratios, evaluate_targets, find, render_markdown


def _entry(name: str, concurrency: int, rps: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "concurrency": concurrency,
        "requests_per_second": rps,
        "p50_ms": 2.0,
        "p90_ms": 3.0,
        "p99_ms": 5.0,
        "max_ms": 9.0,
        "errors": 0,
        "cpu_seconds": {"service": 1.0, "cassandra": 0.5, "load_generator": 0.1},
        **extra,
    }


SCENARIOS = [
    _entry("get_user", 16, 900.0),
    _entry("get_user", 64, 1000.0),
    _entry("get_user_tracing_off", 64, 1000.0),
    _entry("get_user_tracing_default", 64, 980.0),
    _entry("get_user_tracing_on", 64, 920.0),
    _entry("get_user_tracing_sampled", 64, 990.0),
    _entry("stream_users", 1, 1.5, rows_per_second=150000.0),
]
CEILINGS = {
    "raw_driver_reads_per_second": 2000.0,
    "async_layer_reads_per_second": 1700.0,
    "http_floor_requests_per_second": 4000.0,
}


def test_ratios_are_taken_at_the_reference_concurrency() -> None:
    ratios = compute_ratios(SCENARIOS, CEILINGS, 64)
    assert ratios["get_user_vs_raw_driver"] == 0.5
    assert ratios["get_user_vs_http_floor"] == 0.25
    assert ratios["async_layer_vs_raw_driver"] == 0.85
    assert ratios["get_user_p99_over_p50"] == 2.5
    assert ratios["tracing_default_cost"] == 0.02
    assert ratios["tracing_on_cost"] == 0.08
    assert ratios["tracing_sampled_cost"] == 0.01
    assert ratios["stream_rows_per_second"] == 150000.0


def test_cpu_per_request_ratios_compare_like_with_like() -> None:
    scenarios = [
        _entry("get_user", 64, 1000.0, service_cpu_us_per_request=400.0),
        _entry("get_user_tracing_off", 64, 1000.0, service_cpu_us_per_request=400.0),
        _entry("get_user_tracing_on", 64, 1000.0, service_cpu_us_per_request=500.0),
    ]
    ceilings = {
        "raw_driver": [{"concurrency": 64, "client_cpu_us_per_read": 100.0}],
        "async_layer": [{"concurrency": 64, "client_cpu_us_per_read": 125.0}],
    }
    ratios = compute_ratios(scenarios, ceilings, 64)
    assert ratios["get_user_cpu_efficiency_vs_raw_driver"] == 0.25
    assert ratios["async_layer_cpu_efficiency_vs_raw_driver"] == 0.8
    assert ratios["tracing_on_cpu_cost"] == 0.25
    assert ratios["tracing_sampled_cpu_cost"] is None


def test_what_was_not_measured_stays_none() -> None:
    ratios = compute_ratios([_entry("get_user", 64, 1000.0)], {}, 64)
    assert ratios["get_user_vs_raw_driver"] is None
    assert ratios["tracing_on_cost"] is None
    assert ratios["get_user_p99_over_p50"] == 2.5


def test_targets_say_which_goals_are_met() -> None:
    targets = {t["key"]: t for t in evaluate_targets(compute_ratios(SCENARIOS, CEILINGS, 64))}
    assert targets["get_user_vs_raw_driver"]["met"] is False  # 0.5 < 0.6
    assert targets["async_layer_vs_raw_driver"]["met"] is True
    assert targets["get_user_p99_over_p50"]["met"] is True
    assert targets["tracing_default_cost"]["met"] is True  # 0.02 < 0.05
    assert targets["tracing_sampled_cost"]["met"] is True
    assert targets["stream_rows_per_second"]["met"] is True
    unmeasured = {t["key"]: t for t in evaluate_targets({})}
    assert unmeasured["get_user_vs_raw_driver"]["met"] is None


def test_find_matches_name_and_concurrency() -> None:
    assert find(SCENARIOS, "get_user", 16) is SCENARIOS[0]
    assert find(SCENARIOS, "get_user") is SCENARIOS[0]
    assert find(SCENARIOS, "list_users") is None


def test_markdown_has_the_command_the_tables_and_the_machine() -> None:
    report = {
        "started_at": "2025-01-01T00:00:00+00:00",
        "duration_s": 120.0,
        "command": "BENCH_SECONDS=5 just bench",
        "settings": {
            "seconds": 5,
            "warmup_seconds": 2,
            "wrk_threads": 1,
            "granian_workers": 1,
            "log_level": "INFO",
            "concurrency": [16, 64],
        },
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "memory_gib": 24.0,
            "load_average_at_start": [0.5, 0.4, 0.3],
            "kernel": "6.1",
            "python": "3.11.9",
            "packages": {"litestar": "2.25.0"},
            "git_commit": "abc1234",
        },
        "scenarios": [
            *SCENARIOS[:-1],
            _entry(
                "stream_users",
                1,
                1.5,
                rows_per_second=150000.0,
                rows_per_stream=100000,
                fetch_size=5000,
                streams=3,
                first_row_ms=4.0,
                baseline_rss_mb=80.0,
                peak_rss_mb=90.0,
            ),
        ],
        "ceilings": {
            "reference_concurrency": 64,
            **CEILINGS,
            "raw_driver": [
                {
                    "concurrency": 64,
                    "reads_per_second": 2000.0,
                    "p50_ms": 1.0,
                    "p99_ms": 4.0,
                    "errors": 0,
                    "cpu_seconds": {"client": 4.0, "cassandra": 3.0},
                }
            ],
        },
        "ratios": compute_ratios(SCENARIOS, CEILINGS, 64),
        "targets": evaluate_targets(compute_ratios(SCENARIOS, CEILINGS, 64)),
        "streaming": {
            "rss_growth_mb_by_rows": {"10000": 9.0, "100000": 10.0},
            "rss_after_first_stream_mb": 88.5,
            "rss_after_last_stream_mb": 89.0,
            "streams_after_first": 2,
        },
        "tracing": {
            "receiver": "a test sink",
            "configurations": [
                {**SCENARIOS[2], "environment": "OTEL_SDK_DISABLED=true", "spans_received": 0}
            ],
        },
        "notes": ["a note"],
    }
    text = render_markdown(report)
    assert "    BENCH_SECONDS=5 just bench" in text
    assert "| get_user | 16 | 900.0 | 2.0 | 3.0 | 5.0 | 9.0 | 0 |" in text
    assert "| raw_driver | 64 | 2,000 |" in text
    assert "50% of the raw driver" in text
    assert "at 100% sampling: 8%" in text
    assert "| 100000 | 10.0 |" in text
    assert (
        "RSS after the first of the 3 streams read back to back: 88.5 MiB; after the last: 89.0"
        in text
    )
    assert "| cpu | Test CPU |" in text
    assert "- a note" in text
