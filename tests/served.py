"""Running the service in a child process, as `python -m cqlstar` serves it (granian, one worker).

Importable from any test (`from served import serve_app`): pytest puts `tests/` on the path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from cqlstar.serving import serve_command

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServedApp:
    """The service running under `python -m cqlstar` in a child process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def serve_app(
    env_overrides: dict[str, str],
    log_path: Path,
    *,
    wait_healthy: bool = True,
    timeout: float = 90.0,
) -> ServedApp:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env_overrides}
    with log_path.open("wb") as out:  # the child holds its own copy of the descriptor
        process = subprocess.Popen(
            serve_command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    served = ServedApp(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    wanted = {200} if wait_healthy else {200, 503}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited early:\n{served.log_text()[-4000:]}")
        try:
            if httpx.get(f"{served.base_url}/health", timeout=3).status_code in wanted:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_app(served)
    raise RuntimeError(f"the service did not become ready:\n{served.log_text()[-4000:]}")


def stop_app(served: ServedApp) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()
