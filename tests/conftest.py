"""Fixtures every test suite shares: one real Cassandra per run, a unique keyspace, and the
service served by granian over real HTTP.

Cassandra is chosen in this order, and the choice is printed:
1. `CASSANDRA_HOSTS` (+ `CASSANDRA_PORT`): that cluster.
2. A Docker engine that answers: a testcontainers Cassandra 5.0 container.
3. Otherwise the project's local node (`python -m cqlstar.localnode start`), started once and left
   running for the next run (it is cheap to keep, slow to start).

Redis: `REDIS_URL` when set, otherwise the project's local Redis (`python -m cqlstar.localredis
start`, 127.0.0.1:6380), shared by the whole run and left running. Tests that stop or freeze Redis
start a private instance of their own instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from served import ServedApp, serve_app, stop_app


@dataclass(frozen=True)
class CassandraTarget:
    hosts: tuple[str, ...]
    port: int
    source: str

    @property
    def env(self) -> dict[str, str]:
        return {"CASSANDRA_HOSTS": ",".join(self.hosts), "CASSANDRA_PORT": str(self.port)}

    def drop_keyspace(self, name: str) -> None:
        """Drop a keyspace a test run made (a run's data goes with it)."""
        from cassandra.cluster import Cluster

        cluster = Cluster(list(self.hosts), port=self.port)
        try:
            cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)
        finally:
            cluster.shutdown()


def _docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def cassandra() -> Iterator[CassandraTarget]:
    if hosts := os.environ.get("CASSANDRA_HOSTS"):
        target = CassandraTarget(
            tuple(h.strip() for h in hosts.split(",") if h.strip()),
            int(os.environ.get("CASSANDRA_PORT", "9042")),
            "CASSANDRA_HOSTS",
        )
        print(f"\n[cassandra] using the cluster named by CASSANDRA_HOSTS: {target.hosts}")
        yield target
        return
    if _docker_engine_answers():
        from testcontainers.cassandra import CassandraContainer

        with CassandraContainer("cassandra:5.0") as container:
            target = CassandraTarget(
                (container.get_container_host_ip(),),
                int(container.get_exposed_port(9042)),
                "testcontainers",
            )
            print(
                f"\n[cassandra] using a testcontainers container at {target.hosts[0]}:{target.port}"
            )
            yield target
        return
    from cqlstar import localnode

    version = localnode.start()
    print(
        f"\n[cassandra] using the local node (Cassandra {version}) on 127.0.0.1:{localnode.CQL_PORT}"
    )
    yield CassandraTarget(("127.0.0.1",), localnode.CQL_PORT, "local node")


@dataclass(frozen=True)
class KeycloakTarget:
    """The identity provider of this run: the project's local Keycloak and its development realm."""

    issuer: str
    base_url: str

    @property
    def env(self) -> dict[str, str]:
        return {"CQLSTAR_AUTH": "oidc", "OIDC_ISSUER": self.issuer}


@pytest.fixture(scope="session")
def keycloak() -> KeycloakTarget:
    """One Keycloak per run, shared by every suite: started if it does not answer, and left running
    for the next run like the Cassandra node (it takes 20 to 50 s to start)."""
    from cqlstar.identity import localkeycloak

    issuer = localkeycloak.start()
    print(f"\n[keycloak] using the local Keycloak, issuer {issuer}")
    return KeycloakTarget(issuer=issuer, base_url=localkeycloak.BASE_URL)


@pytest.fixture(scope="session")
def keyspace(cassandra: CassandraTarget) -> Iterator[str]:
    """A keyspace of this run's own, dropped at the end: runs never see each other's data."""
    name = f"cqlstar_test_{uuid.uuid4().hex[:12]}"
    yield name
    cassandra.drop_keyspace(name)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The run's shared Redis. Keys are namespaced per test where it matters; never flushed."""
    if url := os.environ.get("REDIS_URL"):
        print(f"\n[redis] using the Redis named by REDIS_URL: {url}")
        return url
    from cqlstar import localredis

    return localredis.start()


@pytest.fixture(scope="session")
def app_env(cassandra: CassandraTarget, keyspace: str, redis_url: str) -> dict[str, str]:
    # Suites about other things run with authentication off; tests/integration/identity serves
    # the app with it on, against the real Keycloak (`keycloak` fixture, `KeycloakTarget.env`).
    return {
        **cassandra.env,
        "CASSANDRA_KEYSPACE": keyspace,
        "LOG_LEVEL": "WARNING",
        "CQLSTAR_AUTH": "disabled",
        "REDIS_URL": redis_url,
        # The suite's requests share a few principals (and one address): limits high enough never
        # to get in the way of tests about something else. tests/integration/limits sets its own.
        "RATE_LIMIT": "100000/minute",
        "LOGIN_RATE_LIMIT": "100000/minute",
        "WS_RATE_LIMIT": "100000/minute",
    }


@pytest.fixture(scope="session")
def live_app(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """One granian-served service for the whole run, on this run's keyspace."""
    served = serve_app(app_env, tmp_path_factory.mktemp("granian") / "server.log")
    yield served
    stop_app(served)


@pytest.fixture
async def http(live_app: ServedApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=30) as client:
        yield client
