"""The image with authentication on, against the compose stack's Keycloak service as `compose.yaml`
describes it (`image.stack`): the replicas' settings from the file, Keycloak's command line from the
file. It shows the two agree where they must: the issuer name the replicas are given is the `iss`
Keycloak writes, so a login through the service yields tokens the service accepts, and the role
checks apply. It also runs the Keycloak service's healthcheck command.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from image.containers import IMAGE_TEST_ENABLED, BuiltImage, Container, start_container
from image.podman import Podman
from image.stack import (
    CONTAINER_HTTP_PORT,
    StackKeycloak,
    compose_services,
    environment_of,
    on_port,
)
from served import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.image,
    pytest.mark.skipif(
        not IMAGE_TEST_ENABLED, reason="builds and runs the image with podman: just test-image"
    ),
]


@pytest.fixture(scope="module")
def authenticated_service(
    podman: Podman,
    built_image: BuiltImage,
    container_env: dict[str, str],
    stack_keycloak: StackKeycloak,
) -> Iterator[Container]:
    replica = environment_of(compose_services()["cqlstar"])
    issuer = on_port(replica["OIDC_ISSUER"], stack_keycloak.port)
    env = {
        **container_env,
        "CQLSTAR_AUTH": replica["CQLSTAR_AUTH"],
        "OIDC_ISSUER": issuer,
        "CQLSTAR_PAGE_TOKEN_SECRET": replica["CQLSTAR_PAGE_TOKEN_SECRET"],
    }
    # The issuer's host name (Keycloak's compose service name) is this machine here.
    hostname = urlsplit(issuer).hostname
    container = start_container(
        podman, built_image, env, run_options=("--add-host", f"{hostname}:127.0.0.1")
    )
    yield container
    podman.remove(container.name)


def _healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    test = compose_services()["keycloak"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    script = test[3]
    target = f"/dev/tcp/127.0.0.1/{CONTAINER_HTTP_PORT}"
    assert target in script
    return subprocess.run(
        ["bash", "-c", script.replace(target, f"/dev/tcp/127.0.0.1/{port}")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_keycloak_healthcheck_passes_once_the_realm_answers(stack_keycloak: StackKeycloak) -> None:
    assert _healthcheck(stack_keycloak.port).returncode == 0
    # ... and fails where nothing answers, so its pass above means something.
    assert _healthcheck(free_port()).returncode != 0


def _login(service: Container, username: str) -> str:
    response = httpx.post(
        f"{service.base_url}/login",
        json={"username": username, "password": f"{username}-pass"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def test_login_through_the_image_yields_tokens_it_accepts(authenticated_service: Container) -> None:
    base = authenticated_service.base_url
    health = httpx.get(f"{base}/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["auth"] == "oidc"
    user = {"name": "Stack Auth", "email": f"stack-{uuid.uuid4().hex[:8]}@example.com", "age": 30}
    assert httpx.post(f"{base}/users", json=user, timeout=10).status_code == 401

    alice = {"authorization": f"Bearer {_login(authenticated_service, 'alice')}"}
    bob = {"authorization": f"Bearer {_login(authenticated_service, 'bob')}"}
    created = httpx.post(f"{base}/users", json=user, headers=alice, timeout=10)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    # bob reads (users:read) but may not write.
    read = httpx.get(f"{base}/users/{user_id}", headers=bob, timeout=10)
    assert read.status_code == 200
    assert read.json() == created.json()
    assert httpx.post(f"{base}/users", json=user, headers=bob, timeout=10).status_code == 403
