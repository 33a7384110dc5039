"""Where the tracing scenarios export spans to: the project's OpenTelemetry Collector, or a sink.

The preferred receiver is the real collector binary that `otel/build-collector.sh` builds (once per
machine, cached outside the repository), run with `bench/otelcol.yaml`. When it cannot be had (no Go
toolchain, or `BENCH_COLLECTOR=sink`), `bench.harness.otlp_sink` stands in: a small OTLP/gRPC receiver in
its own process. Either way the harness can ask how many spans have arrived, which proves the
"on" and "sampled" configurations really export.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness.config import BENCH_DIR, ROOT
from bench.harness.server import free_port, request

BUILD_SCRIPT = ROOT / "otel" / "build-collector.sh"
BENCH_CONFIG = BENCH_DIR / "otelcol.yaml"
_DEBUG_SPANS = re.compile(rb'"spans": (\d+)')


class CollectorError(RuntimeError):
    """The receiver could not be started."""


@dataclass
class Receiver:
    kind: str  # "collector" or "sink"
    description: str
    endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path
    count_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def spans_received(self) -> int:
        if self.count_path is not None:
            try:
                return int(self.count_path.read_text().strip() or 0)
            except (OSError, ValueError):
                return 0
        try:
            log = self.log_path.read_bytes()
        except OSError:
            return 0
        return sum(int(count) for count in _DEBUG_SPANS.findall(log))

    def spans_settled(self, quiet_s: float = 1.5, timeout_s: float = 15.0) -> int:
        """The span count once it has stopped moving (the receiver batches before it reports)."""
        deadline = time.monotonic() + timeout_s
        last, last_change = self.spans_received(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = self.spans_received()
            if now != last:
                last, last_change = now, time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                break
        return last

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def resolve_collector_binary(choice: str) -> tuple[Path | None, str]:
    """The collector binary to use, or None with the reason the sink stands in."""
    if choice == "sink":
        return None, "BENCH_COLLECTOR=sink"
    if choice != "auto":
        path = Path(choice)
        if not path.is_file():
            raise CollectorError(f"BENCH_COLLECTOR={choice!r}: no such file")
        return path, "BENCH_COLLECTOR"
    if not shutil.which("go"):
        return None, "no Go toolchain to build the collector with (otel/build-collector.sh)"
    print("[bench] otel/build-collector.sh (returns at once when already built)", flush=True)
    completed = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False, timeout=45 * 60
    )
    if completed.returncode != 0:
        return None, f"otel/build-collector.sh failed: {completed.stderr.strip()[-300:]}"
    return Path(completed.stdout.strip().splitlines()[-1]), "otel/build-collector.sh"


def start_receiver(choice: str, work_dir: Path) -> Receiver:
    work_dir.mkdir(parents=True, exist_ok=True)
    binary, why = resolve_collector_binary(choice)
    grpc_port = free_port()
    endpoint = f"http://127.0.0.1:{grpc_port}"
    log_path = work_dir / ("otelcol.log" if binary else "otlp_sink.log")
    if binary is not None:
        health_port = free_port()
        env = {
            "BENCH_OTELCOL_GRPC_PORT": str(grpc_port),
            "BENCH_OTELCOL_HEALTH_PORT": str(health_port),
            "PATH": "/usr/bin:/bin",
        }
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                [str(binary), "--config", str(BENCH_CONFIG)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        receiver = Receiver(
            "collector", f"OpenTelemetry Collector {binary} ({why})", endpoint, process, log_path
        )
        _wait_ready(receiver, lambda: _http_ok(f"http://127.0.0.1:{health_port}/"))
        return receiver
    count_path = work_dir / "otlp_sink.count"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.harness.otlp_sink",
                "--port",
                str(grpc_port),
                "--count-file",
                str(count_path),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    receiver = Receiver(
        "sink",
        f"bench.harness.otlp_sink, a minimal OTLP/gRPC receiver (the collector was not used: {why})",
        endpoint,
        process,
        log_path,
        count_path,
    )
    _wait_ready(receiver, lambda: b"listening" in log_path.read_bytes())
    return receiver


def _http_ok(url: str) -> bool:
    try:
        return request(url, timeout_s=2)[0] == 200
    except OSError:
        return False


def _wait_ready(receiver: Receiver, ready: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if receiver.process.poll() is not None:
            raise CollectorError(
                f"{receiver.kind} exited early:\n{receiver.log_path.read_text(errors='replace')[-3000:]}"
            )
        if ready():
            return
        time.sleep(0.1)
    receiver.stop()
    raise CollectorError(f"{receiver.kind} did not become ready within {timeout_s:.0f}s")
