"""podman as `just test-image` runs it: the private configuration, the build, and the containers.

Every podman call goes through `Podman`, which points `CONTAINERS_CONF` at `containers.conf` beside
this file (host network, cgroupfs, file events and logs, runc, the host's ulimits) and never sets
`DOCKER_HOST`: the rest of the test suite reads a Docker engine there as a reason to start a
testcontainers Cassandra, which needs an image registry these machines do not reach.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONTAINERS_CONF = HERE / "containers.conf"
BUILD_MOUNTS = HERE / "build-mounts"
# Where the host keeps its CA bundle (Debian's path; SSL_CERT_FILE where a machine says otherwise).
HOST_CA_BUNDLE = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
# The path pip.conf and uv.toml in build-mounts/ name, inside the build's containers.
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class PodmanError(RuntimeError):
    """A podman command failed; the message carries its command line and the end of its output."""


@dataclass(frozen=True)
class Podman:
    executable: str = "podman"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
        # A DOCKER_HOST meant for another engine must not leak into podman's view either.
        env.pop("DOCKER_HOST", None)
        return env

    def run(
        self, *args: str, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        command = [self.executable, *args]
        proc = subprocess.run(
            command,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            output = (proc.stdout + proc.stderr)[-6000:]
            raise PodmanError(f"{' '.join(command)} exited {proc.returncode}:\n{output}")
        return proc

    def image_exists(self, reference: str) -> bool:
        return self.run("image", "exists", reference, check=False).returncode == 0

    def inspect(self, name: str) -> dict[str, Any]:
        [info] = json.loads(self.run("inspect", name).stdout)
        assert isinstance(info, dict)
        return info

    def logs(self, name: str) -> str:
        """The container's output, stdout and stderr in the order they were written."""
        proc = subprocess.run(
            [self.executable, "logs", name],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )
        return proc.stdout

    def remove(self, name: str) -> None:
        # -t 0: a container left running by a failed test is not drained, only removed.
        self.run("rm", "--force", "--time", "0", name, check=False)


def tls_build_mounts() -> list[str]:
    """`-v` options that let the build's RUN steps verify TLS against the host's CA bundle.

    Where package traffic passes a TLS proxy with a private CA, pip's and uv's own root stores
    reject it; the host's bundle trusts it. Mounted for the build only, so no image carries the
    host's CA or this configuration. Nothing is mounted where the host has no bundle.
    """
    if not HOST_CA_BUNDLE.is_file():
        return []
    mounts = {
        HOST_CA_BUNDLE: IMAGE_CA_BUNDLE,
        BUILD_MOUNTS / "pip.conf": "/etc/pip.conf",
        BUILD_MOUNTS / "uv.toml": "/etc/uv/uv.toml",
    }
    options: list[str] = []
    for source, target in mounts.items():
        options += ["--volume", f"{source}:{target}:ro"]
    return options


def build(
    podman: Podman,
    *,
    tag: str,
    context: Path,
    containerfile: Path,
    build_args: dict[str, str],
    extra: tuple[str, ...] = (),
    timeout: float = 900.0,
) -> subprocess.CompletedProcess[str]:
    """`podman build` as every build here needs it.

    `--format docker`: the OCI image format has no HEALTHCHECK, and podman drops it silently.
    `--network=host`: no container network is ever created.
    """
    args = ["build", "--format", "docker", "--network", "host", "--tag", tag]
    args += ["--file", str(containerfile)]
    for name, value in build_args.items():
        args += ["--build-arg", f"{name}={value}"]
    return podman.run(*args, *extra, str(context), timeout=timeout)
