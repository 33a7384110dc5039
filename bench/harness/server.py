"""Serving an ASGI factory for a measurement with `python -m cqlstar`, the way `just serve` does.

The server gets a clean environment for OpenTelemetry (every inherited `OTEL_*` variable is dropped,
then the scenario's own are set), so a developer's shell cannot change what a figure means.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness.config import ROOT
from cqlstar.serving import APP_FACTORY, ServeOptions, serve_command

SERVICE_FACTORY = APP_FACTORY
FLOOR_FACTORY = "bench.harness.http_floor:create_floor_app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def serve_options(factory: str, workers: int) -> ServeOptions:
    """How the bench serves `factory`: as `python -m cqlstar` does, with a deeper accept queue."""
    # Above the highest wrk concurrency: granian's backpressure must not be what limits a figure.
    return ServeOptions(factory=factory, workers=workers, backlog=2048)


def serve(
    name: str,
    factory: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    workers: int = 1,
    ready_path: str = "/health",
    timeout_s: float = 120.0,
) -> Server:
    """Start `python -m cqlstar` with `factory` and return once `ready_path` answers 200."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env = {**clean, "HOST": "127.0.0.1", "PORT": str(port), **env}
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            serve_command(serve_options(factory, workers)),
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout_s
    last_status = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name}: granian exited early:\n{server.log_tail()}")
        try:
            status, body = request(server.base_url + ready_path, timeout_s=3)
            if status == 200:
                return server
            last_status = f"{status} {body[:200]!r}"
        except OSError as exc:
            last_status = str(exc)
        time.sleep(0.25)
    stop(server)
    raise RuntimeError(
        f"{name}: {ready_path} did not answer 200 within {timeout_s:.0f}s "
        f"(last: {last_status}):\n{server.log_tail()}"
    )


def stop(server: Server, timeout_s: float = 20.0) -> None:
    """SIGTERM and wait, so the service drains and flushes its spans; SIGKILL past the timeout."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def request(
    url: str, method: str = "GET", body: bytes | None = None, timeout_s: float = 10.0
) -> tuple[int, bytes]:
    """One plain HTTP/1.1 request to a server on this machine: (status, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s
    )
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, target or "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
