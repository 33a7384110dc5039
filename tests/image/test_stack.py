"""Two replicas of the image configured as `compose.yaml` configures them, against the compose
stack's Keycloak service run as the file describes it (`image.stack`) and a Redis of their own.

It shows the file's parts agree where they must: the issuer name the replicas are given is the `iss`
Keycloak writes, so a login through the service yields tokens both replicas accept and the role checks
apply; and what the replicas share through `REDIS_URL` holds across them: one rate-limit window per
principal, and a user change made on one replica broadcast to a WebSocket reader on the other. It
also runs the Keycloak service's healthcheck command.

The replicas use the file's `CQLSTAR_AUTH`, `OIDC_ISSUER`, `REDIS_URL` and
`CQLSTAR_PAGE_TOKEN_SECRET`, translated to this host's ports, and one change: `RATE_LIMIT` is
lowered so that the shared window fills within a few requests.
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
    with_port,
)
from private_redis import redis_on_a_free_port
from served import free_port
from ws_client import ws_connect

pytestmark = [
    pytest.mark.integration,
    pytest.mark.image,
    pytest.mark.skipif(
        not IMAGE_TEST_ENABLED, reason="builds and runs the image with podman: just test-image"
    ),
]


# Low enough to fill within a test; the replicas share it through Redis, per principal.
RATE_LIMIT_PER_MINUTE = 6


@pytest.fixture(scope="module")
def private_redis() -> Iterator[str]:
    """A Redis of this module's own: its small windows stay out of the run's shared Redis."""
    with redis_on_a_free_port() as instance:
        yield instance.url


@pytest.fixture(scope="module")
def replicas(
    podman: Podman,
    built_image: BuiltImage,
    container_env: dict[str, str],
    stack_keycloak: StackKeycloak,
    private_redis: str,
) -> Iterator[tuple[Container, Container]]:
    replica = environment_of(compose_services()["cqlstar"])
    issuer = on_port(replica["OIDC_ISSUER"], stack_keycloak.port)
    redis_url = with_port(replica["REDIS_URL"], urlsplit(private_redis).port or 0)
    env = {
        **container_env,
        "CQLSTAR_AUTH": replica["CQLSTAR_AUTH"],
        "OIDC_ISSUER": issuer,
        "REDIS_URL": redis_url,
        "CQLSTAR_PAGE_TOKEN_SECRET": replica["CQLSTAR_PAGE_TOKEN_SECRET"],
        "RATE_LIMIT": f"{RATE_LIMIT_PER_MINUTE}/minute",
    }
    # The compose service names (Keycloak's, Redis's) are this machine here.
    hosts: list[str] = []
    for url in (issuer, redis_url):
        hosts += ["--add-host", f"{urlsplit(url).hostname}:127.0.0.1"]
    started: list[Container] = []
    try:
        for _ in range(2):
            started.append(start_container(podman, built_image, env, run_options=tuple(hosts)))
        yield started[0], started[1]
    finally:
        for container in started:
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


def test_login_through_one_replica_yields_tokens_both_accept(
    replicas: tuple[Container, Container],
) -> None:
    first, second = replicas
    for replica in replicas:
        health = httpx.get(f"{replica.base_url}/health", timeout=10)
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "healthy"  # Cassandra, Redis and Keycloak all up
        assert health.json()["auth"] == "oidc"
    user = {"name": "Stack Auth", "email": f"stack-{uuid.uuid4().hex[:8]}@example.com", "age": 30}
    assert httpx.post(f"{first.base_url}/users", json=user, timeout=10).status_code == 401

    alice = {"authorization": f"Bearer {_login(first, 'alice')}"}
    carol = {"authorization": f"Bearer {_login(first, 'carol')}"}
    created = httpx.post(f"{first.base_url}/users", json=user, headers=alice, timeout=10)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    # The token from one replica works on the other; carol, with no role, is refused there.
    read = httpx.get(f"{second.base_url}/users/{user_id}", headers=alice, timeout=10)
    assert read.status_code == 200
    assert read.json() == created.json()
    refused = httpx.get(f"{second.base_url}/users/{user_id}", headers=carol, timeout=10)
    assert refused.status_code == 403


def test_replicas_share_one_rate_limit_window(replicas: tuple[Container, Container]) -> None:
    # bob (users:read) makes no other request in this module, so his window starts empty. Taking
    # turns, each replica alone sees only half the limit go by before refusing.
    bob = {"authorization": f"Bearer {_login(replicas[0], 'bob')}"}
    statuses = []
    for n in range(2 * RATE_LIMIT_PER_MINUTE):
        response = httpx.get(f"{replicas[n % 2].base_url}/users?limit=1", headers=bob, timeout=10)
        assert response.headers.get("x-ratelimit-limit") == str(RATE_LIMIT_PER_MINUTE)
        statuses.append(response.status_code)
    assert statuses == [200] * RATE_LIMIT_PER_MINUTE + [429] * RATE_LIMIT_PER_MINUTE


async def test_a_change_on_one_replica_reaches_a_reader_on_the_other(
    replicas: tuple[Container, Container],
) -> None:
    first, second = replicas
    token = _login(first, "alice")
    user = {"name": "Stack Broadcast", "email": f"b-{uuid.uuid4().hex[:8]}@example.com", "age": 41}
    async with ws_connect(second.base_url, token=token) as reader:
        async with httpx.AsyncClient(base_url=first.base_url, timeout=10) as http:
            created = await http.post(
                "/users", json=user, headers={"authorization": f"Bearer {token}"}
            )
        assert created.status_code == 201, created.text
        event = await reader.event_for(created.json()["id"], "created")
    assert event["data"]["user"] == created.json()
