"""The compose stack's Keycloak service, run here as `compose.yaml` describes it.

No registry serves `quay.io/keycloak/keycloak` here, but Maven Central serves the same release's
distribution (`cqlstar.identity.localkeycloak`, pinned to the image's tag by a static test), and
the image's entrypoint is that distribution's `kc.sh`. So the service's own `command`, `environment`
and realm mount from `compose.yaml` are run with it, on a private copy (starting Keycloak writes
into its folder, and the local Keycloak of `just keycloak` must not be disturbed).

One translation, because every process here shares the host's network: a container's port becomes
a free port on 127.0.0.1 (Keycloak's 8080 in its `--hostname` and in the replicas' `OIDC_ISSUER`
alike; Redis's in `REDIS_URL`), and the service names `keycloak` and `redis` are mapped to
127.0.0.1 in the containers that use them (`--add-host`). Everything else is the file's own text.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from image.podman import ROOT

COMPOSE = ROOT / "compose.yaml"
CONTAINER_HTTP_PORT = 8080
START_TIMEOUT_S = 300.0


def compose_services() -> dict[str, dict[str, Any]]:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    assert isinstance(services, dict)
    return services


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, with `${VAR:-default}` taken as compose would without VAR set."""
    env = service.get("environment") or {}
    out = {}
    for key, value in env.items():
        text = str(value)
        if text.startswith("${") and ":-" in text and text.endswith("}"):
            name, _, default = text[2:-1].partition(":-")
            text = os.environ.get(name) or default
        out[str(key)] = text
    return out


def with_port(url: str, port: int) -> str:
    """`url` with its port replaced by `port`: a container's port becomes a free one of the host."""
    parts = urlsplit(url)
    assert parts.hostname, f"{url} names no host"
    assert parts.port, f"{url} names no port"
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


def on_port(url: str, port: int) -> str:
    """A URL of Keycloak's container port (8080) moved to `port`."""
    assert urlsplit(url).port == CONTAINER_HTTP_PORT, f"{url} is not on {CONTAINER_HTTP_PORT}"
    return with_port(url, port)


@dataclass
class StackKeycloak:
    """compose.yaml's `keycloak` service, running from the distribution on `port`."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    home: Path

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/realms/cqlstar/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Keycloak exited {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=3) as response:
                    json.loads(response.read())
                    return
            except (OSError, ValueError, urllib.error.URLError):
                time.sleep(1.0)
        raise RuntimeError(f"Keycloak did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def _realm_mounts(service: dict[str, Any], home: Path) -> None:
    """Put each bind-mounted file where the service's volume puts it in the image."""
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        prefix = "/opt/keycloak/"  # the distribution's folder in the official image
        assert target.startswith(prefix), f"{target} is outside the distribution"
        destination = home / target.removeprefix(prefix)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / source, destination)


def launch_stack_keycloak(port: int, workdir: Path) -> StackKeycloak:
    """Start it in the background; `StackKeycloak.wait_ready` waits for the realm to answer."""
    from cqlstar.identity import localkeycloak

    service = compose_services()["keycloak"]
    home = workdir / "keycloak"
    shutil.copytree(localkeycloak.ensure_distribution(), home, symlinks=True)
    for stale in (home / "data" / "import").glob("*.json"):
        stale.unlink()
    _realm_mounts(service, home)
    command = [
        "--hostname=" + on_port(a.removeprefix("--hostname="), port)
        if a.startswith("--hostname=")
        else a
        for a in service["command"]
    ]
    env = {
        **os.environ,
        "JAVA_HOME": localkeycloak.java_home(),
        # The same first-tier JIT as the local Keycloak: it shares two cores with everything else.
        "JAVA_OPTS_APPEND": localkeycloak.JIT_OPTIONS,
        **environment_of(service),
    }
    log_path = workdir / "keycloak.log"
    with log_path.open("wb") as log:
        # Where the container would listen is the host's network here: loopback, a free port.
        listen = ["--http-host=127.0.0.1", f"--http-port={port}"]
        process = subprocess.Popen(
            ["bash", str(home / "bin" / "kc.sh"), *command, *listen],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return StackKeycloak(port, process, log_path, home)
