"""Build and run the project's OpenTelemetry Collector for tests.

A plain module (not a conftest) so any test can import it::

    from otelcol import require_collector_binary, run_collector

    def test_something(tmp_path):
        with run_collector(tmp_path) as col:
            ...  # send OTLP to col.otlp_grpc_endpoint
            spans = col.wait_for_spans(lambda s: len(s) >= 2)

``tests/`` is importable because pytest puts the first directory above a test
file that is not a package on ``sys.path`` (default "prepend" import mode), and
``tests/`` has no ``__init__.py``.

The collector is the real binary built by ``otel/build-collector.sh`` from
``otel/builder-config.yaml``, started with ``otel/collector.yaml`` plus
``otel/collector.test-overlay.yaml``: the production pipelines, but on free
loopback ports and with file exporters instead of Jaeger, so a test can read
back exactly what a backend would have received.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from polling import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
OTEL_DIR = REPO_ROOT / "otel"
BUILD_SCRIPT = OTEL_DIR / "build-collector.sh"
BASE_CONFIG = OTEL_DIR / "collector.yaml"
TEST_OVERLAY = OTEL_DIR / "collector.test-overlay.yaml"

# Point this at an existing collector binary (same release, same components)
# to skip the ocb build entirely.
BINARY_ENV_VAR = "CQLSTAR_OTELCOL_BINARY"

# A cold build downloads and compiles a few hundred modules; on a 2-core
# machine that is minutes, not seconds. Generous so a slow CI box still
# finishes, bounded so a hung download cannot stall the suite forever.
BUILD_TIMEOUT_S = 30 * 60
# How the build script says "no Go toolchain", as opposed to "build failed".
GO_MISSING_EXIT = 127

# OTLP span kinds as they appear (as integers) in the OTLP/JSON files.
SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
SPAN_KIND_PRODUCER = 4
SPAN_KIND_CONSUMER = 5

T = TypeVar("T")


class CollectorBuildError(RuntimeError):
    """otel/build-collector.sh failed although a Go toolchain is present."""


@functools.cache
def collector_binary() -> Path | None:
    """Return the collector binary, building it on first call.

    Returns None when it is not built yet and cannot be because ``go`` is not
    on PATH (callers turn that into a skip). A build that *fails* raises
    CollectorBuildError instead: that is a real problem, not a missing tool.
    The result is cached for the process; the script itself is a no-op once
    the binary is in the user cache.
    """
    override = os.environ.get(BINARY_ENV_VAR)
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            raise CollectorBuildError(f"{BINARY_ENV_VAR}={override} is not an executable file")
        return path
    try:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CollectorBuildError(f"collector build exceeded {BUILD_TIMEOUT_S}s") from exc
    if proc.returncode == GO_MISSING_EXIT:
        return None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-40:])
        raise CollectorBuildError(
            f"{BUILD_SCRIPT.relative_to(REPO_ROOT)} exited {proc.returncode}:\n{tail}"
        )
    lines = proc.stdout.strip().splitlines()
    if not lines or not Path(lines[-1]).is_file():
        raise CollectorBuildError(f"build script printed no binary path: {proc.stdout!r}")
    return Path(lines[-1])


def require_collector_binary() -> Path:
    """Like collector_binary(), but skips the calling test when go is missing."""
    binary = collector_binary()
    if binary is None:
        pytest.skip(
            "go toolchain not on PATH: cannot build the OpenTelemetry Collector "
            f"(otel/build-collector.sh); or set {BINARY_ENV_VAR}"
        )
    return binary


# --------------------------------------------------------------------------
# Reading the file exporter's OTLP/JSON output
# --------------------------------------------------------------------------


def _any_value(value: Mapping[str, Any]) -> Any:
    """Decode an OTLP/JSON AnyValue into a plain Python value."""
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "intValue" in value:
        # 64-bit integers are JSON strings in OTLP/JSON.
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values", []))
    return None  # an empty AnyValue


def _attributes(kvs: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: _any_value(kv.get("value", {})) for kv in kvs or ()}


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield one OTLP export request per complete line.

    The exporter appends whole lines, but a read can race a flush; an
    unterminated last line is left for the next read rather than misparsed.
    """
    try:
        data = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    for line in data.splitlines(keepends=True):
        if line.endswith("\n") and line.strip():
            yield json.loads(line)


@dataclass(frozen=True)
class ExportedSpan:
    """One span as the collector exported it (IDs are lowercase hex)."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status_code: int  # 0 unset, 1 ok, 2 error
    start_unix_nano: int
    end_unix_nano: int


@dataclass(frozen=True)
class MetricPoint:
    """One data point of one metric.

    ``value`` is set for sums and gauges; ``count``/``sum``/``bucket_counts``/
    ``explicit_bounds`` for explicit-bucket histograms.
    """

    name: str
    type: str  # "sum", "gauge", "histogram", "exponentialHistogram", "summary"
    unit: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    time_unix_nano: int
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()


def read_spans(path: Path) -> list[ExportedSpan]:
    """All spans in a file exporter output file, in export order."""
    spans: list[ExportedSpan] = []
    for request in _json_lines(path):
        for rs in request.get("resourceSpans", []):
            resource = _attributes(rs.get("resource", {}).get("attributes"))
            for ss in rs.get("scopeSpans", []):
                scope = ss.get("scope", {}).get("name", "")
                for s in ss.get("spans", []):
                    spans.append(
                        ExportedSpan(
                            name=s["name"],
                            kind=int(s.get("kind", 0)),
                            trace_id=s["traceId"],
                            span_id=s["spanId"],
                            parent_span_id=s.get("parentSpanId", ""),
                            attributes=_attributes(s.get("attributes")),
                            resource=resource,
                            scope=scope,
                            status_code=int(s.get("status", {}).get("code", 0)),
                            start_unix_nano=int(s.get("startTimeUnixNano", 0)),
                            end_unix_nano=int(s.get("endTimeUnixNano", 0)),
                        )
                    )
    return spans


def _number(point: Mapping[str, Any]) -> float | None:
    if "asInt" in point:
        return float(point["asInt"])
    if "asDouble" in point:
        return float(point["asDouble"])
    return None


def read_metric_points(path: Path) -> list[MetricPoint]:
    """All metric data points in a file exporter output file, in export order.

    Cumulative metrics are re-exported on every flush, so the same series
    appears many times; the last occurrence is the current value.
    """
    points: list[MetricPoint] = []
    for request in _json_lines(path):
        for rm in request.get("resourceMetrics", []):
            resource = _attributes(rm.get("resource", {}).get("attributes"))
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
                        if kind in m:
                            break
                    else:
                        continue
                    for dp in m[kind].get("dataPoints", []):
                        is_hist = kind == "histogram"
                        points.append(
                            MetricPoint(
                                name=m["name"],
                                type=kind,
                                unit=m.get("unit", ""),
                                attributes=_attributes(dp.get("attributes")),
                                resource=resource,
                                time_unix_nano=int(dp.get("timeUnixNano", 0)),
                                value=None if is_hist else _number(dp),
                                count=int(dp.get("count", 0)) if is_hist else None,
                                sum=float(dp["sum"]) if is_hist and "sum" in dp else None,
                                bucket_counts=tuple(int(c) for c in dp.get("bucketCounts", ())),
                                explicit_bounds=tuple(
                                    float(b) for b in dp.get("explicitBounds", ())
                                ),
                            )
                        )
    return points


# --------------------------------------------------------------------------
# Running the collector
# --------------------------------------------------------------------------


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago.

    There is a window before the collector binds it; run_collector retries
    with fresh ports if the collector dies with "address already in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningCollector:
    """Handle on a collector started by run_collector()."""

    process: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    health_port: int
    prometheus_port: int
    traces_file: Path
    metrics_file: Path
    logs_file: Path
    log_file: Path  # the collector's own stdout+stderr
    _stopped: bool = field(default=False, repr=False)

    @property
    def otlp_grpc_endpoint(self) -> str:
        """For OTLP/gRPC exporters; the http scheme means plaintext."""
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """Base URL for OTLP/HTTP; signal paths (/v1/traces...) go after it."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/"

    @property
    def prometheus_url(self) -> str:
        """Scrape URL of the prometheus exporter (span metrics + OTLP metrics)."""
        return f"http://127.0.0.1:{self.prometheus_port}/metrics"

    def otel_env(self, protocol: str = "grpc") -> dict[str, str]:
        """Standard OTEL_* variables that point an SDK at this collector.

        Handy with monkeypatch.setenv for code that configures itself from
        the environment, like the service's own tracing setup.
        """
        if protocol == "grpc":
            endpoint = self.otlp_grpc_endpoint
        elif protocol == "http/protobuf":
            endpoint = self.otlp_http_endpoint
        else:
            raise ValueError(f"unsupported OTLP protocol {protocol!r}")
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }

    def spans(self) -> list[ExportedSpan]:
        return read_spans(self.traces_file)

    def metric_points(self, name: str | None = None) -> list[MetricPoint]:
        points = read_metric_points(self.metrics_file)
        return points if name is None else [p for p in points if p.name == name]

    def wait_for_spans(
        self, predicate: Callable[[list[ExportedSpan]], bool], timeout: float = 20.0
    ) -> list[ExportedSpan]:
        """Poll the traces file until ``predicate(all_spans)`` holds."""

        def probe() -> list[ExportedSpan] | None:
            spans = self.spans()
            return spans if predicate(spans) else None

        return self.wait_for(probe, timeout, "expected spans in the traces file")

    def wait_for_metrics(
        self, predicate: Callable[[list[MetricPoint]], bool], timeout: float = 20.0
    ) -> list[MetricPoint]:
        """Poll the metrics file until ``predicate(all_points)`` holds."""

        def probe() -> list[MetricPoint] | None:
            points = self.metric_points()
            return points if predicate(points) else None

        return self.wait_for(probe, timeout, "expected metrics in the metrics file")

    def scrape(self) -> str:
        """Body of the prometheus exporter's /metrics page."""
        with urllib.request.urlopen(self.prometheus_url, timeout=5) as resp:
            body: bytes = resp.read()
        return body.decode("utf-8")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait, so exporters flush and files are complete.

        Idempotent; returns the exit code. A collector that ignores SIGTERM
        past ``timeout`` is killed.
        """
        if not self._stopped:
            self._stopped = True
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        return int(self.process.returncode)

    def wait_for(self, probe: Callable[[], T | None], timeout: float, what: str) -> T:
        """Poll ``probe`` until truthy; fail fast (with the log) if the collector dies."""

        def guarded() -> T | None:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"collector exited with {self.process.returncode} while waiting: {what}\n"
                    f"{self.log_tail()}"
                )
            return probe()

        try:
            return wait_until(guarded, timeout=timeout, message=what)  # type: ignore[return-value]
        except AssertionError as exc:
            if "collector exited" in str(exc):
                raise
            raise AssertionError(f"{exc}\n--- collector log ---\n{self.log_tail()}") from None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _start_once(
    binary: Path,
    workdir: Path,
    configs: Sequence[str | Path],
    extra_env: Mapping[str, str] | None,
    spanmetrics_flush_interval: str,
    startup_timeout: float,
) -> RunningCollector | None:
    """Start one collector; None if it lost a port race (caller retries)."""
    grpc_port, http_port, health_port, prometheus_port = (free_port() for _ in range(4))
    traces_file = workdir / "traces.jsonl"
    metrics_file = workdir / "metrics.jsonl"
    logs_file = workdir / "logs.jsonl"
    log_file = workdir / "otelcol.log"
    env = {
        **os.environ,
        "OTELCOL_OTLP_GRPC_PORT": str(grpc_port),
        "OTELCOL_OTLP_HTTP_PORT": str(http_port),
        "OTELCOL_HEALTH_PORT": str(health_port),
        "OTELCOL_PROMETHEUS_PORT": str(prometheus_port),
        "OTELCOL_TRACES_FILE": str(traces_file),
        "OTELCOL_METRICS_FILE": str(metrics_file),
        "OTELCOL_LOGS_FILE": str(logs_file),
        "SPANMETRICS_FLUSH_INTERVAL": spanmetrics_flush_interval,
        **(extra_env or {}),
    }
    args = [str(binary)]
    for config in configs:
        args += ["--config", str(config)]
    with log_file.open("wb") as log:
        process = subprocess.Popen(args, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    col = RunningCollector(
        process=process,
        grpc_port=grpc_port,
        http_port=http_port,
        health_port=health_port,
        prometheus_port=prometheus_port,
        traces_file=traces_file,
        metrics_file=metrics_file,
        logs_file=logs_file,
        log_file=log_file,
    )
    deadline = time.monotonic() + startup_timeout
    while not _healthy(col.health_url):
        if col.process.poll() is not None:
            if "address already in use" in col.log_tail(200):
                return None
            raise AssertionError(
                f"collector exited with {col.process.returncode} during startup:\n{col.log_tail()}"
            )
        if time.monotonic() >= deadline:
            col.stop()
            raise AssertionError(
                f"collector not healthy after {startup_timeout}s:\n{col.log_tail()}"
            )
        time.sleep(0.1)
    return col


@contextlib.contextmanager
def run_collector(
    workdir: Path,
    *,
    binary: Path | None = None,
    configs: Sequence[str | Path] = (BASE_CONFIG, TEST_OVERLAY),
    extra_env: Mapping[str, str] | None = None,
    spanmetrics_flush_interval: str = "1s",
    startup_timeout: float = 30.0,
) -> Iterator[RunningCollector]:
    """Run the collector until the block exits, then stop it gracefully.

    ``workdir`` (usually ``tmp_path``) receives the output files and the
    collector's log. ``binary`` defaults to require_collector_binary(), which
    skips the test when go is missing. ``configs`` are passed as repeated
    ``--config`` flags, merged in order; append e.g. a ``"yaml:..."`` URI to
    tweak one setting. Yields once the health_check extension reports ready,
    i.e. every pipeline has started.
    """
    binary = binary or require_collector_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):
        col = _start_once(
            binary, workdir, configs, extra_env, spanmetrics_flush_interval, startup_timeout
        )
        if col is not None:
            break
    else:
        raise AssertionError("collector could not bind free loopback ports in 3 attempts")
    try:
        yield col
    finally:
        col.stop()
