"""`just bench` end to end with tiny settings: every phase runs and the report holds real numbers.

One concurrency level, one-second measurements, a few hundred users in this run's own keyspace, the
OTLP sink instead of the collector (whose first build takes minutes); well under a minute in all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.pipeline.report import Report, ScenarioEntry, decode

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bench_keyspace(cassandra: Any, keyspace: str) -> Iterator[str]:
    """A keyspace of the smoke run's own: its seeded users (random ages) must not show up in the
    Users tests, which share this run's keyspace and rely on what they stored themselves."""
    name = f"{keyspace}_bench"
    yield name
    cassandra.drop_keyspace(name)


@pytest.fixture(scope="module")
def smoke_env(
    cassandra: Any, bench_keyspace: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return {
        **os.environ,
        **cassandra.env,
        "BENCH_SECONDS": "1",
        "BENCH_WARMUP": "0",
        "BENCH_CONCURRENCY": "8",
        "BENCH_SCENARIOS": "get_user,stream_users,http_floor,raw_driver,async_layer,tracing",
        "BENCH_ROWS": "300",
        "BENCH_STREAM_ROWS": "300",
        "BENCH_STREAM_FETCH_SIZE": "100",
        "BENCH_TRACING_CONCURRENCY": "8",
        "BENCH_COLLECTOR": "sink",
        "BENCH_LOG_LEVEL": "WARNING",
        # Dropped at the end, never the persistent bench dataset.
        "BENCH_KEYSPACE": bench_keyspace,
        "BENCH_OUTPUT": str(tmp_path_factory.mktemp("bench")),
    }


@pytest.fixture(scope="module")
def smoke_report(smoke_env: dict[str, str]) -> Report:
    output = Path(smoke_env["BENCH_OUTPUT"])
    completed = subprocess.run(
        [sys.executable, "-m", "bench.pipeline"],
        cwd=ROOT,
        env=smoke_env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    # The console shows progress while it runs.
    assert "get_user c=8:" in completed.stdout
    # The report decodes into its types: every field is there, with the type it promises.
    return decode((output / "report.json").read_bytes())


def _scenario(report: Report, name: str) -> ScenarioEntry:
    matches = [s for s in report.scenarios if s.name == name]
    assert len(matches) == 1, [s.name for s in report.scenarios]
    return matches[0]


def test_get_user_has_throughput_latency_and_cpu(smoke_report: Report) -> None:
    entry = _scenario(smoke_report, "get_user")
    assert entry.concurrency == 8
    assert entry.requests_per_second > 0
    assert 0 < entry.p50_ms <= entry.p90_ms <= entry.p99_ms <= entry.max_ms
    assert entry.errors == 0
    assert entry.cpu_seconds["service"] > 0
    assert entry.cpu_seconds["load_generator"] > 0
    assert entry.service_cpu_us_per_request


def test_ceilings_are_measured_at_the_same_concurrency(smoke_report: Report) -> None:
    ceilings = smoke_report.ceilings
    assert ceilings.reference_concurrency == 8
    assert ceilings.raw_driver_reads_per_second
    assert ceilings.async_layer_reads_per_second
    assert ceilings.http_floor_requests_per_second
    assert [e.concurrency for e in ceilings.raw_driver] == [8]
    assert all(e.client_cpu_us_per_read for e in (*ceilings.raw_driver, *ceilings.async_layer))
    ratios = smoke_report.ratios
    assert ratios.get_user_vs_raw_driver
    assert ratios.get_user_vs_http_floor
    assert ratios.async_layer_vs_raw_driver


def test_streaming_reads_every_row_and_samples_memory(smoke_report: Report) -> None:
    stream = smoke_report.streaming
    assert stream is not None
    assert stream.errors == 0
    assert stream.rows_per_second > 0
    assert stream.rows_per_stream == 300
    assert stream.peak_rss_mb >= stream.baseline_rss_mb > 0
    assert stream.rss_after_first_stream_mb > 0
    assert stream.rss_after_last_stream_mb > 0
    assert stream.streams_after_first == stream.streams - 1
    assert smoke_report.ratios.stream_rows_per_second == stream.rows_per_second


def test_tracing_configurations_export_what_they_should(smoke_report: Report) -> None:
    spans = {
        mode: _scenario(smoke_report, f"get_user_tracing_{mode}").spans_received
        for mode in ("off", "default", "on", "sampled")
    }
    assert spans["off"] == 0
    assert spans["default"] == 0  # no exporter configured: no spans made, none sent
    requests_on = _scenario(smoke_report, "get_user_tracing_on").requests
    # At 100% sampling each request exports at least its server span.
    assert (spans["on"] or 0) >= requests_on
    assert (spans["sampled"] or 0) < (spans["on"] or 0)
    assert smoke_report.tracing is not None
    assert [c.name for c in smoke_report.tracing.configurations] == [
        f"get_user_tracing_{mode}" for mode in ("off", "default", "on", "sampled")
    ]
    assert smoke_report.ratios.tracing_on_cost is not None
    assert smoke_report.ratios.tracing_default_cost is not None


def test_report_files_are_written(smoke_report: Report, smoke_env: dict[str, str]) -> None:
    output = Path(smoke_env["BENCH_OUTPUT"])
    markdown = (output / "report.md").read_text()
    assert "BENCH_SECONDS=1" in markdown
    assert "| get_user | 8 |" in markdown
    for section in ("## Against the targets", "## Ceilings", "## Streaming", "## Tracing cost"):
        assert section in markdown
    png = output / "report.png"
    drawing_failed = any("report.png not drawn" in note for note in smoke_report.notes)
    assert png.exists() or drawing_failed
    if png.exists():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert smoke_report.failed_phases == ()


def test_in_process_tool_measures_both_apps_with_tracing_off_and_by_default(
    smoke_env: dict[str, str],
) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.probes.inprocess",
            *("--rounds", "1", "--requests", "160", "--concurrency", "8"),
        ],
        cwd=ROOT,
        env=smoke_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # Each measurement checks in its child that every answer was a 200 and that the metrics counted
    # every request; a failed check exits non-zero.
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert sorted(figures) == [
        "get_user/default",
        "get_user/off",
        "http_floor/default",
        "http_floor/off",
    ]
    for figure in figures.values():
        assert figure["requests"] == 160
        assert figure["cpu_us_per_request"] > 0
