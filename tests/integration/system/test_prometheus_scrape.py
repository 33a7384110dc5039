"""`GET /metrics` as a real Prometheus server scrapes it, and as the text exposition's own parser
reads it.

The scraper is Prometheus itself (Debian's package, unpacked into the cache by
`cqlstar.debpackages`): the same program the compose stack runs against every replica
(`otel/prometheus.yml`), so a target it reports `up`, with the service's series queryable, is the
proof that a real scraper accepts the exposition.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cqlstar import debpackages
from polling import wait_until
from served import ServedApp, free_port

T = TypeVar("T")

pytestmark = pytest.mark.integration

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
def prometheus(live_app: ServedApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus scraping the run's service every second, for one test (then stopped, so its
    scrapes do not add to the counts other tests compare)."""
    if not debpackages.can_fetch():
        pytest.skip("no apt-get here to fetch Debian's prometheus package")
    root = debpackages.unpacked("prometheus-debian", ("prometheus",))
    work = tmp_path_factory.mktemp("prometheus")
    target = live_app.base_url.removeprefix("http://")
    (work / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: cqlstar\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    with (work / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(root / "usr" / "bin" / "prometheus"),
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _unless_refused(probe: Callable[[], T]) -> Callable[[], T | None]:
    """`probe`, answering None while Prometheus refuses connections (it is still starting)."""

    def guarded() -> T | None:
        try:
            return probe()
        except httpx.HTTPError:
            return None

    return guarded


def _query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=5)
    answer.raise_for_status()
    result: list[dict[str, Any]] = answer.json()["data"]["result"]
    return result


def test_prometheus_scrapes_the_service_and_its_series_are_queryable(
    live_app: ServedApp, prometheus: str
) -> None:
    with httpx.Client(base_url=live_app.base_url, timeout=30) as client:
        assert client.get("/users", params={"limit": 1}).status_code == 200
        assert client.get(f"/users/{uuid.uuid4()}").status_code == 404

    def target_up() -> dict[str, Any] | None:
        answer = httpx.get(f"{prometheus}/api/v1/targets", timeout=5)
        if answer.status_code != 200:  # "Service Unavailable" while Prometheus is starting
            return None
        targets = answer.json()["data"]
        active = targets["activeTargets"]
        return active[0] if active and active[0]["health"] == "up" else None

    target = wait_until(
        _unless_refused(target_up),
        timeout=60,
        interval=0.5,
        message="Prometheus reports the service's target up",
    )
    assert target["lastError"] == ""

    requests = wait_until(
        _unless_refused(
            lambda: _query(
                prometheus, 'cqlstar_http_requests_total{route="/users/{user_id}",method="GET"}'
            )
        ),
        timeout=30,
        interval=0.5,
        message="the request series in Prometheus",
    )
    # The run's other tests use this service too: at least our 404 is there, by template.
    assert {series["metric"]["status"] for series in requests} >= {"404"}
    buckets = _query(
        prometheus, 'cqlstar_http_request_duration_seconds_bucket{route="/users",le="+Inf"}'
    )
    assert buckets
    assert float(buckets[0]["value"][1]) >= 1
    queries = _query(prometheus, 'cqlstar_db_queries_total{operation="SELECT",table="users"}')
    assert float(queries[0]["value"][1]) >= 1
    rejections = _query(prometheus, "cqlstar_rate_limit_rejections_total")
    assert {series["metric"]["kind"] for series in rejections} == {"http", "login", "ws"}
    for family in (
        "cqlstar_websocket_connections",
        "cqlstar_broadcast_deliveries_total",
        "cqlstar_cassandra_connections",
        "cqlstar_db_queries_per_second",
    ):
        assert _query(prometheus, family), family
    # Raw paths never become labels: one series per route template.
    routes = {s["metric"]["route"] for s in _query(prometheus, "cqlstar_http_requests_total")}
    assert not any(route.count("-") >= 4 for route in routes), routes


def test_the_text_exposition_parses_and_agrees_with_the_json(live_app: ServedApp) -> None:
    with httpx.Client(base_url=live_app.base_url, timeout=30) as client:
        client.get(f"/users/{uuid.uuid4()}")
        openmetrics = client.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
        # A request that another client (the previous test's scraper, stopping) had in flight can
        # still finish between the two reads: compare again until none did.
        for _ in range(10):
            text = client.get("/metrics", headers={"Accept": "text/plain"})
            as_json = client.get("/metrics").json()
            families = {f.name: f for f in text_string_to_metric_families(text.text)}
            requests = sum(s.value for s in families["cqlstar_http_requests"].samples)
            queries = sum(s.value for s in families["cqlstar_db_queries"].samples)
            # The JSON was read after the text, so it has seen one more request (the text's own).
            if requests + 1 == as_json["total_requests"] and queries == as_json["total_queries"]:
                break
            time.sleep(0.5)
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
    assert requests + 1 == as_json["total_requests"]
    assert queries == as_json["total_queries"]
    assert families["cqlstar_http_request_duration_seconds"].type == "histogram"


def test_a_client_that_names_no_exposition_keeps_the_json(live_app: ServedApp) -> None:
    for accept in ("*/*", "application/json", "text/html,application/xhtml+xml,*/*;q=0.8"):
        answer = httpx.get(live_app.base_url + "/metrics", headers={"Accept": accept}, timeout=10)
        assert answer.headers["content-type"].startswith("application/json"), accept
        assert "total_requests" in answer.json()
