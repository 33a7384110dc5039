from __future__ import annotations

from pathlib import Path

import pytest
from bench.harness.config import ALL_SCENARIOS, BenchConfig, BenchConfigError


def test_defaults_give_the_full_run() -> None:
    config = BenchConfig.from_env({})
    assert config.seconds == 30
    assert config.concurrency == (16, 64, 256)
    assert config.scenarios == ALL_SCENARIOS
    assert config.reference_concurrency == 64
    assert config.output.parts[-3:] == ("bench", "results", "latest")


def test_overrides_are_parsed_sorted_and_deduplicated() -> None:
    config = BenchConfig.from_env(
        {
            "BENCH_SECONDS": "5",
            "BENCH_CONCURRENCY": "256, 16,16",
            "BENCH_SCENARIOS": "tracing,get_user",
            "BENCH_OUTPUT": "/tmp/bench-out",
            "BENCH_LOG_LEVEL": "warning",
        }
    )
    assert config.seconds == 5
    assert config.concurrency == (16, 256)
    # The harness's own order, whatever order the variable lists them in.
    assert config.scenarios == ("get_user", "tracing")
    assert config.output == Path("/tmp/bench-out")
    assert config.log_level == "WARNING"
    assert config.wants("get_user")
    assert not config.wants("create_user")


@pytest.mark.parametrize(
    ("levels", "expected"), [("16,256", 16), ("100,256", 100), ("8", 8), ("32,96", 32)]
)
def test_ratios_use_the_concurrency_closest_to_64(levels: str, expected: int) -> None:
    assert BenchConfig.from_env({"BENCH_CONCURRENCY": levels}).reference_concurrency == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BENCH_SECONDS", "0"),
        ("BENCH_SECONDS", "fast"),
        ("BENCH_CONCURRENCY", "16,x"),
        ("BENCH_CONCURRENCY", ","),
        ("BENCH_SCENARIOS", "get_user,nope"),
        ("BENCH_KEYSPACE", "bad-name"),
        ("BENCH_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_malformed_variable_is_named_in_the_error(name: str, value: str) -> None:
    with pytest.raises(BenchConfigError, match=name):
        BenchConfig.from_env({name: value})


def test_wrk_threads_cannot_exceed_the_lowest_concurrency() -> None:
    with pytest.raises(BenchConfigError, match="BENCH_WRK_THREADS"):
        BenchConfig.from_env({"BENCH_WRK_THREADS": "4", "BENCH_CONCURRENCY": "2,64"})
