"""Fixtures of the image test: the image built from the project's Dockerfile, and containers of it
serving against the Cassandra the rest of the suite uses (the `cassandra` fixture: the local node
unless `CASSANDRA_HOSTS` names another) with this run's own keyspace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from image.containers import (
    BASE_OVERRIDE,
    IMAGE_TAG,
    IMAGE_TEST_ENABLED,
    BuiltImage,
    Container,
    start_container,
)
from image.podman import ROOT, Podman, PodmanError, build, tls_build_mounts
from image.stack import StackKeycloak, launch_stack_keycloak
from image.standin import ensure_standin
from served import free_port

if TYPE_CHECKING:
    from conftest import CassandraTarget


@pytest.fixture(scope="session", autouse=True)
def stack_keycloak_launch(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackKeycloak | Exception | None]:
    """The compose stack's Keycloak, started as the session begins when a collected test needs it:
    it takes a minute or more to start on a busy machine, which the image's build and the other
    checks then overlap instead of waiting for it. A failure to start is kept for the tests that
    need Keycloak to report, so the image checks still run."""
    wanted = any(
        "stack_keycloak" in getattr(item, "fixturenames", ()) for item in request.session.items
    )
    if not IMAGE_TEST_ENABLED or not wanted:
        yield None
        return
    try:
        keycloak = launch_stack_keycloak(free_port(), tmp_path_factory.mktemp("stack-keycloak"))
    except (Exception, SystemExit) as error:  # localkeycloak exits when it cannot fetch
        yield RuntimeError(f"the stack's Keycloak could not start: {error!r}")
        return
    yield keycloak
    keycloak.stop()


@pytest.fixture(scope="session")
def stack_keycloak(stack_keycloak_launch: StackKeycloak | Exception | None) -> StackKeycloak:
    if isinstance(stack_keycloak_launch, Exception):
        raise stack_keycloak_launch
    assert stack_keycloak_launch is not None
    stack_keycloak_launch.wait_ready()
    return stack_keycloak_launch


@pytest.fixture(scope="session")
def podman() -> Podman:
    podman = Podman()
    try:
        podman.run("version", timeout=60)
    except (OSError, PodmanError) as error:
        pytest.fail(f"podman does not run here ({error}); `just test-image` installs it")
    return podman


@pytest.fixture(scope="session")
def built_image(podman: Podman) -> BuiltImage:
    base = BASE_OVERRIDE or ensure_standin(podman)
    previous = podman.run("image", "inspect", "--format", "{{.Id}}", IMAGE_TAG, check=False)
    proc = build(
        podman,
        tag=IMAGE_TAG,
        context=ROOT,
        containerfile=ROOT / "Dockerfile",
        build_args={"PYTHON_IMAGE": base},
        extra=tuple(tls_build_mounts()),
    )
    # The image a previous run built, now untagged: its runtime layers (the whole venv, copied
    # again whenever the project changes) would otherwise pile up run after run. The build cache
    # (the builder stage's layers) stays.
    old_id = previous.stdout.strip()
    current = podman.run("image", "inspect", "--format", "{{.Id}}", IMAGE_TAG).stdout.strip()
    if previous.returncode == 0 and old_id and old_id != current:
        podman.run("rmi", old_id, check=False)
    return BuiltImage(IMAGE_TAG, base, proc.stdout + proc.stderr)


@pytest.fixture(scope="session")
def container_env(cassandra: CassandraTarget, keyspace: str) -> dict[str, str]:
    return {
        **cassandra.env,
        "CASSANDRA_KEYSPACE": keyspace,
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
        # These checks are about the image, not the identity provider or Redis: with authentication
        # on (the default) the service refuses to start without an OIDC_ISSUER, and every route but
        # /health would need a Keycloak token. test_stack.py runs it with authentication on.
        "CQLSTAR_AUTH": "disabled",
    }


@pytest.fixture(scope="module")
def service(
    podman: Podman, built_image: BuiltImage, container_env: dict[str, str]
) -> Iterator[Container]:
    """The image serving against this run's keyspace, shared by the checks that leave it running."""
    container = start_container(podman, built_image, container_env)
    yield container
    podman.remove(container.name)
