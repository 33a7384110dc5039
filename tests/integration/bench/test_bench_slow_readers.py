"""The `slow_readers` bench scenario against the test run's served service: it measures what its
report promises (answers, memory before, held and after, pages per stream, `/health`)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from bench.pipeline.markdown import slow_readers_section
from bench.pipeline.slow_readers import SLOW, STALLED, measure_slow_readers

pytestmark = pytest.mark.integration


def test_slow_readers_measure_memory_answers_and_health(live_app: Any) -> None:
    run = uuid.uuid4().hex[:8]
    users = [
        {"name": f"Slow Reader {run} {n}", "email": f"slow-{run}-{n}@example.com", "age": 50}
        for n in range(50)
    ]
    seeded = httpx.post(f"{live_app.base_url}/users/batch", json=users, timeout=30)
    assert seeded.status_code == 201, seeded.text

    result = measure_slow_readers(live_app.base_url, live_app.process.pid, 100, 1.0)

    # Every client got its stream: the service's default cap is above the scenario's clients.
    assert result.statuses == {"200": STALLED + SLOW}
    assert result.held_rss_mb >= result.baseline_rss_mb > 0
    assert result.peak_rss_mb >= result.held_rss_mb
    assert result.page_kib is not None
    assert result.page_kib > 0
    assert result.slow_reader_kib_per_s > 0
    assert result.health_failures == 0
    assert result.health_p50_ms is not None
    section = "\n".join(slow_readers_section(result))
    assert "## Slow and stalled stream readers" in section
    assert f"{STALLED + SLOW} x 200" in section
