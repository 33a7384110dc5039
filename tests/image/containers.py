"""Containers of the project's image for the image test: started on the host's network, each on a
free port of its own, and returned once `/health` answers.

The containers share the host's network (see `containers.conf`), so each one is given its port
through `PORT` and binds it on 127.0.0.1 (`HOST`), and reaches Cassandra where the rest of the suite
does.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

import httpx

from image.podman import Podman
from served import free_port

# `just test-image` sets it; plain `just test` skips the image tests (they need podman and minutes).
IMAGE_TEST_ENABLED = os.environ.get("CQLSTAR_IMAGE_TEST") == "1"
# A base image to build on instead of the stand-in, e.g. python:3.11-slim-bookworm where a registry
# answers.
BASE_OVERRIDE = os.environ.get("CQLSTAR_IMAGE_BASE", "")
IMAGE_TAG = "localhost/cqlstar:test-image"
READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    base: str
    build_log: str


@dataclass(frozen=True)
class Container:
    """One running container of the image, named uniquely for this run."""

    podman: Podman
    name: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.podman.logs(self.name)

    def is_running(self) -> bool:
        return bool(self.podman.inspect(self.name)["State"]["Running"])


def start_container(
    podman: Podman,
    image: BuiltImage,
    env: dict[str, str],
    *,
    ready_statuses: frozenset[int] = frozenset({200}),
    run_options: tuple[str, ...] = (),
) -> Container:
    """Run the image detached and return once `/health` answers one of `ready_statuses`.

    `run_options` go to `podman run` as they are (e.g. `--add-host`)."""
    container = Container(podman, f"cqlstar-image-test-{uuid.uuid4().hex[:10]}", free_port())
    args = ["run", "--detach", "--name", container.name, "--network", "host"]
    args += ["--label", "cqlstar.test=image"]
    for key, value in {**env, "PORT": str(container.port)}.items():
        args += ["--env", f"{key}={value}"]
    podman.run(*args, *run_options, image.tag)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{container.base_url}/health", timeout=3).status_code in ready_statuses:
                return container
        except httpx.HTTPError:
            if not container.is_running():
                logs = container.logs()
                podman.remove(container.name)
                raise RuntimeError(
                    f"the container exited before serving:\n{logs[-4000:]}"
                ) from None
        time.sleep(0.3)
    logs = container.logs()
    podman.remove(container.name)
    raise RuntimeError(f"the container did not become ready:\n{logs[-4000:]}")
