"""Fixtures of the three-node cluster suite (`just test-cluster`; plain `just test` skips this folder).

The suite runs against the project's local cluster (`cqlstar.localcluster`, 127.0.0.2-4): it starts
it when it does not answer and stops it at the end if it started it, and restores it (every node
running, thawed, and seen up by every other) before each test that asks for `whole_cluster`. The
service is served once for the whole suite, with three replicas at LOCAL_QUORUM, on a keyspace of the
run's own.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cqlstar import localcluster, localnode
from served import ServedApp, serve_app, stop_app

pytestmark = pytest.mark.integration

# The load generator is bench.probes.cluster_load's (the README's figures come from it): `bench/` lives at the
# repository root, outside the installed package.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def _all_answer() -> bool:
    return all(
        localnode.cql_answers(spec.address, spec.cql_port, timeout=3)
        for spec in localcluster.nodes()
    )


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[None]:
    started_here = not _all_answer()
    began = time.monotonic()
    localcluster.start()
    print(
        f"\n[cluster] three nodes on {localcluster.HOSTS_ENV}, whole after {time.monotonic() - began:.0f} s"
    )
    yield
    for number in range(1, localcluster.NODE_COUNT + 1):
        localcluster.thaw(number)
    if started_here:
        localcluster.stop()
    else:  # leave it as it was found: whole (the last test leaves a node dead)
        localcluster.start()


@pytest.fixture
def whole_cluster(local_cluster: None) -> None:
    """Every node running and seen up by every other, whatever the previous test left."""
    for number in range(1, localcluster.NODE_COUNT + 1):
        localcluster.thaw(number)
    localcluster.start()


@pytest.fixture(scope="session")
def cluster_keyspace(local_cluster: None) -> Iterator[str]:
    name = f"cqlstar_cluster_{uuid.uuid4().hex[:10]}"
    yield name
    from cassandra.cluster import Cluster

    cluster = Cluster(list(localcluster.ADDRESSES))
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def cluster_env(cluster_keyspace: str) -> dict[str, str]:
    return {
        "CASSANDRA_HOSTS": localcluster.HOSTS_ENV,
        "CASSANDRA_REPLICATION": localcluster.REPLICATION_ENV,
        "CASSANDRA_CONSISTENCY": "LOCAL_QUORUM",
        "CASSANDRA_KEYSPACE": cluster_keyspace,
        "CQLSTAR_AUTH": "disabled",
        "LOG_LEVEL": "WARNING",
        # The load comes from one address and one principal: limits high enough never to get in
        # the way (the limits have their own tests).
        "RATE_LIMIT": "100000/minute",
        "LOGIN_RATE_LIMIT": "100000/minute",
        "WS_RATE_LIMIT": "100000/minute",
    }


@pytest.fixture(scope="session")
def cluster_app(
    local_cluster: None, cluster_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The service on the cluster, served by granian for the whole suite."""
    served = serve_app(cluster_env, tmp_path_factory.mktemp("cluster") / "server.log")
    yield served
    stop_app(served)
