"""The project's image, built from its own Dockerfile with podman and run for real (`just test-image`).

What an operator relies on, checked on a running container against the real Cassandra: it builds;
it serves and reaches Cassandra; a user written through it reads back; two replicas configured as the
compose stack configures them serve one walk of pages between them; it runs as the non-root user;
its HEALTHCHECK passes while it can serve and fails while it cannot; `podman stop` lets a request in
flight finish, and the container exits 0 with a clean shutdown log.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import uuid

import httpx
import pytest

from image.containers import (
    IMAGE_TEST_ENABLED,
    BuiltImage,
    Container,
    start_container,
)
from image.podman import Podman
from served import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.image,
    pytest.mark.skipif(
        not IMAGE_TEST_ENABLED, reason="builds and runs the image with podman: just test-image"
    ),
]

UID = "10001"
STOP_GRACE_S = 30


def test_image_keeps_what_the_dockerfile_declares(podman: Podman, built_image: BuiltImage) -> None:
    [image] = json.loads(podman.run("image", "inspect", built_image.tag).stdout)
    config = image["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["python", "-m", "cqlstar"]
    assert "8000/tcp" in config["ExposedPorts"]
    # Built in the docker format: the OCI format has no HEALTHCHECK and podman drops it silently.
    # (podman reports it beside Config, not in it.)
    healthcheck = image.get("Healthcheck") or {}
    test = healthcheck.get("Test") or []
    assert test[:2] == ["CMD", "python"], healthcheck
    assert "/health" in " ".join(test)


def test_health_reports_cassandra_connected(
    service: Container, container_env: dict[str, str]
) -> None:
    response = httpx.get(f"{service.base_url}/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["cassandra_connected"] is True
    assert body["keyspace"] == container_env["CASSANDRA_KEYSPACE"]


def test_user_created_through_the_image_reads_back(service: Container) -> None:
    email = f"image-{uuid.uuid4().hex[:8]}@example.com"
    created = httpx.post(
        f"{service.base_url}/users",
        json={"name": "Ada Image", "email": email, "age": 36},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert created.headers["location"] == f"/users/{user['id']}"
    read = httpx.get(f"{service.base_url}/users/{user['id']}", timeout=10)
    assert read.status_code == 200
    assert read.json() == user
    assert (user["name"], user["email"], user["age"]) == ("Ada Image", email, 36)


def test_two_replicas_share_the_keyspace_and_page_tokens(
    podman: Podman,
    built_image: BuiltImage,
    container_env: dict[str, str],
    service: Container,
) -> None:
    # What the compose stack's replicas rely on: one keyspace, and one CQLSTAR_PAGE_TOKEN_SECRET so
    # that a page token made by one replica is accepted by the other.
    env = {**container_env, "CQLSTAR_PAGE_TOKEN_SECRET": secrets.token_urlsafe(32)}
    first = start_container(podman, built_image, env)
    try:
        second = start_container(podman, built_image, env)
    except BaseException:
        podman.remove(first.name)
        raise
    try:
        batch = [
            {
                "name": f"Replica {n}",
                "email": f"replica-{uuid.uuid4().hex[:8]}@example.com",
                "age": 40,
            }
            for n in range(12)
        ]
        created = httpx.post(f"{first.base_url}/users/batch", json=batch, timeout=30)
        assert created.status_code == 201, created.text
        made = {user["id"] for user in created.json()["users"]}
        some = next(iter(made))
        assert httpx.get(f"{second.base_url}/users/{some}", timeout=10).status_code == 200

        # A walk of every user that starts on one replica and goes on on the other.
        seen: list[str] = []
        page = httpx.get(f"{first.base_url}/users/stream/pages?fetch_size=10", timeout=10).json()
        seen += [user["id"] for user in page["users"]]
        assert page["has_more"] is True
        token = page["page_state"]
        # The second page from the second replica, then taking turns.
        replicas = itertools.cycle([second, first])
        while page["has_more"]:
            replica = next(replicas)
            response = httpx.get(
                f"{replica.base_url}/users/stream/pages",
                params={"fetch_size": 10, "page_state": page["page_state"]},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [user["id"] for user in page["users"]]
        assert len(seen) == len(set(seen))
        assert made <= set(seen)
    finally:
        podman.remove(first.name)
        podman.remove(second.name)
    # A replica with another secret (the shared `service`, which has its own random one) refuses
    # the same token: the shared secret is what made the walk above work.
    refused = httpx.get(
        f"{service.base_url}/users/stream/pages",
        params={"fetch_size": 10, "page_state": token},
        timeout=10,
    )
    assert refused.status_code == 400
    assert refused.json() == {"detail": "Invalid page_state"}


def test_every_process_runs_as_the_non_root_user(podman: Podman, service: Container) -> None:
    # `podman top` reads the host's /proc: it sees granian's main process and its worker both,
    # without any tool inside the image.
    lines = podman.run("top", service.name, "pid", "huser", "args").stdout.splitlines()[1:]
    processes = [line.split(None, 2) for line in lines if line.strip()]
    assert len(processes) >= 2, lines  # granian's main process and its worker
    for pid, host_user, args in processes:
        assert host_user == UID, (pid, host_user, args)
        assert "python -m cqlstar" in args
    # PID 1 in the container is the server itself (exec form, no shell), with no root id at all.
    status = podman.run("exec", service.name, "cat", "/proc/1/status").stdout
    ids = {line.split(":")[0]: line.split()[1:] for line in status.splitlines() if ":" in line}
    assert ids["Uid"] == [UID] * 4
    assert ids["Gid"] == [UID] * 4


def test_image_healthcheck_passes_while_serving(podman: Podman, service: Container) -> None:
    # `podman healthcheck run` runs the image's HEALTHCHECK command once, now. Only the periodic
    # schedule needs systemd timers, which these machines lack (podman logs an error about them).
    proc = podman.run("healthcheck", "run", service.name, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    health = podman.inspect(service.name)["State"]["Health"]
    assert health["Status"] == "healthy"
    assert health["Log"][-1]["ExitCode"] == 0


def test_image_healthcheck_fails_while_cassandra_is_unreachable(
    podman: Podman, built_image: BuiltImage, container_env: dict[str, str]
) -> None:
    # Nothing listens on this port: the service starts, answers /health with 503, keeps retrying.
    env = {**container_env, "CASSANDRA_HOSTS": "127.0.0.1", "CASSANDRA_PORT": str(free_port())}
    container = start_container(podman, built_image, env, ready_statuses=frozenset({503}))
    try:
        proc = podman.run("healthcheck", "run", container.name, check=False)
        assert proc.returncode != 0
        assert "unhealthy" in proc.stdout
        assert podman.inspect(container.name)["State"]["Health"]["Log"][-1]["ExitCode"] != 0
    finally:
        podman.remove(container.name)


def test_stop_drains_a_request_in_flight_and_exits_cleanly(
    podman: Podman, built_image: BuiltImage, container_env: dict[str, str]
) -> None:
    container = start_container(podman, built_image, container_env)
    answers: list[httpx.Response | BaseException] = []

    def slow_query() -> None:
        try:
            answers.append(httpx.get(f"{container.base_url}/slow_query", timeout=STOP_GRACE_S))
        except BaseException as error:
            answers.append(error)

    client = threading.Thread(target=slow_query)
    try:
        client.start()
        time.sleep(1.0)  # the request is in flight, about 4 s from its answer
        podman.run("stop", "--time", str(STOP_GRACE_S), container.name, timeout=STOP_GRACE_S + 30)
        client.join(timeout=STOP_GRACE_S)
        state = podman.inspect(container.name)["State"]
        logs = container.logs()
    finally:
        podman.remove(container.name)

    [answer] = answers
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 200
    assert answer.json() == {"message": "Slow query completed"}
    # Exit 0 means the process ended by itself: a SIGKILL at the grace period's end gives 137.
    assert state["ExitCode"] == 0, logs[-4000:]
    lines = logs.splitlines()
    shutting_down = _index(lines, "Shutting down granian")
    slow_done = _index(lines, '"route":"/slow_query","status":200')
    completed = _index(lines, "shutdown completed")
    # The request was answered after the shutdown began and before it completed: drained.
    assert shutting_down < slow_done < completed, logs[-4000:]
    assert not [line for line in lines if "Traceback" in line or '"level":"ERROR"' in line], logs[
        -4000:
    ]


def _index(lines: list[str], needle: str) -> int:
    for index, line in enumerate(lines):
        if needle.lower() in line.lower():
            return index
    raise AssertionError(f"no log line contains {needle!r}:\n" + "\n".join(lines[-40:]))
