"""Nodes die, freeze and come back under a steady HTTP load: no request fails, no write is lost.

Three replicas at LOCAL_QUORUM (see conftest). The load is bench.probes.cluster_load's: concurrent clients
alternating reads of acknowledged users and creates, bounded in count and time. A request fails when
a read does not answer 200 or a create 201. Figures (p99s) are printed, not asserted: the README
quotes them with the command that reproduces them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from bench.probes.cluster import measure_freeze
from bench.probes.cluster_load import LoadResult, create_users, load_during
from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster
from cassandra.query import SimpleStatement

from cqlstar import localcluster
from polling import wait_until
from served import ServedApp

pytestmark = pytest.mark.integration

KILLED_NODE = 3
FROZEN_NODE = 2


def _described(failed: list[Any]) -> str:
    return ", ".join(f"{s.op} -> {s.status}" for s in failed[:10])


@pytest.fixture(scope="module")
def driver(cluster_app: ServedApp, cluster_env: dict[str, str]) -> Iterator[Any]:
    """A plain driver session on the service's keyspace, to read behind the service's back."""
    cluster = Cluster(list(localcluster.ADDRESSES))
    session = cluster.connect(cluster_env["CASSANDRA_KEYSPACE"])
    yield session
    cluster.shutdown()


def _missing_at_all(session: Any, ids: list[str]) -> list[str]:
    """The ids that a read at consistency ALL (every replica answers) does not find."""
    statement = session.prepare("SELECT id, created_at FROM users WHERE id = ?")
    statement.consistency_level = ConsistencyLevel.ALL
    missing = []
    for user_id in ids:
        row = session.execute(statement, (uuid.UUID(user_id),), timeout=15).one()
        if row is None or row.created_at is None:
            missing.append(user_id)
    return missing


@pytest.fixture(scope="module")
def seeded(cluster_app: ServedApp, local_cluster: None) -> list[str]:
    async def seed() -> list[str]:
        async with httpx.AsyncClient(base_url=cluster_app.base_url, timeout=30) as client:
            return await create_users(client, 40)

    localcluster.start()
    return asyncio.run(seed())


@pytest.fixture(scope="module")
def node_killed_under_load(cluster_app: ServedApp, seeded: list[str]) -> tuple[LoadResult, float]:
    """The load for 15 s or 2,400 requests; 1 s in, node 3 is killed (SIGKILL) and stays down.

    Killed early and with room in the request count: on a quiet machine the service answers a few
    hundred requests a second, and a later kill once fell after the load had used up its count."""
    localcluster.start()
    killed_at: dict[str, float] = {}

    async def kill_later() -> None:
        await asyncio.sleep(1)
        await asyncio.to_thread(localcluster.kill, KILLED_NODE)
        killed_at["t"] = time.monotonic()

    async def run() -> LoadResult:
        async with httpx.AsyncClient(base_url=cluster_app.base_url, timeout=30) as client:
            return await load_during(client, seeded, kill_later, seconds=15, max_requests=2400)

    return asyncio.run(run()), killed_at["t"]


def test_1_a_node_killed_under_load_fails_no_request(
    node_killed_under_load: tuple[LoadResult, float], capsys: pytest.CaptureFixture[str]
) -> None:
    result, killed_at = node_killed_under_load
    after = [s for s in result.samples if s.started >= killed_at]
    with capsys.disabled():
        print(
            f"\n[kill] {len(result.samples)} requests, {len(after)} after node {KILLED_NODE} "
            f"was killed, {len(result.acknowledged)} creates acknowledged, "
            f"{len(result.failed())} failed"
        )
    assert result.failed() == [], _described(result.failed())
    assert len(after) >= 50, "the load went on after the kill"
    assert len(result.acknowledged) >= 20


def _pending_hints(session: Any, host_id: uuid.UUID) -> int:
    """Hint files that the other nodes hold for `host_id` (pending_hints is per node); -1 when a
    node could not be asked."""
    total = 0
    for host in session.cluster.metadata.all_hosts():
        if host.host_id == host_id:
            continue
        try:
            rows = session.execute(
                SimpleStatement("SELECT host_id, files FROM system_views.pending_hints"),
                host=host,
                timeout=10,
            )
        except Exception:
            return -1
        total += sum(row.files or 0 for row in rows if row.host_id == host_id)
    return total


def test_3_the_killed_node_rejoins_hints_replay_and_every_acknowledged_write_reads_at_all(
    node_killed_under_load: tuple[LoadResult, float], seeded: list[str], driver: Any
) -> None:
    address = localcluster.ADDRESSES[KILLED_NODE - 1]
    host = next(h for h in driver.cluster.metadata.all_hosts() if h.address == address)
    # Writes acknowledged while the node was down left hints for it on the others.
    wait_until(
        lambda: _pending_hints(driver, host.host_id) > 0,
        timeout=30,
        interval=0.5,
        message=f"hints held for node {KILLED_NODE} while it is down",
    )
    localcluster.start([KILLED_NODE])
    wait_until(
        lambda: host.is_up,
        timeout=60,
        interval=0.5,
        message=f"the driver sees node {KILLED_NODE} up again",
    )
    wait_until(
        lambda: _pending_hints(driver, host.host_id) == 0,
        timeout=90,
        interval=0.5,
        message=f"hints for node {KILLED_NODE} replayed",
    )
    acknowledged = seeded + node_killed_under_load[0].acknowledged
    assert _missing_at_all(driver, acknowledged) == []


def test_2_a_node_frozen_for_20s_fails_no_request(
    whole_cluster: None,
    cluster_app: ServedApp,
    seeded: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def run() -> Any:
        async with httpx.AsyncClient(base_url=cluster_app.base_url, timeout=30) as client:
            return await measure_freeze(client, seeded, FROZEN_NODE, max_requests=400)

    figures = asyncio.run(run())
    with capsys.disabled():
        print(
            f"\n[freeze] node {FROZEN_NODE} frozen 20 s, speculative reads on: {figures.summary()}"
        )
    frozen = figures.during.between(figures.frozen_from, figures.frozen_until)
    assert figures.before.failed() == [], _described(figures.before.failed())
    assert figures.during.failed() == [], _described(figures.during.failed())
    assert sum(s.op == "read" for s in frozen) >= 50, "reads went on during the freeze"
    assert sum(s.op == "write" for s in frozen) >= 10, "creates went on during the freeze"


def test_4_two_nodes_down_answers_503_and_recovers_by_itself(
    whole_cluster: None, cluster_app: ServedApp, seeded: list[str]
) -> None:
    base = cluster_app.base_url
    # A clean stop: the survivor hears at once that its peers left, as after a node's shutdown.
    with ThreadPoolExecutor(2) as pool:  # side by side: each drains before it exits
        list(pool.map(lambda n: localcluster.stop([n]), (2, 3)))
    try:
        wait_until(
            lambda: httpx.get(f"{base}/users/{seeded[0]}", timeout=10).status_code == 503,
            timeout=30,
            interval=0.5,
            message="reads answer 503 with two of three replicas down",
        )
        answers = [httpx.get(f"{base}/users/{seeded[n]}", timeout=10) for n in range(5)] + [
            httpx.post(
                f"{base}/users",
                json={"name": "Nobody", "email": "n@example.com", "age": 1},
                timeout=10,
            )
            for _ in range(3)
        ]
        assert [r.status_code for r in answers] == [503] * len(answers)
        assert all(r.headers.get("Retry-After") for r in answers)
        assert all(r.json() == {"detail": "Cassandra is unavailable"} for r in answers)
        health = httpx.get(f"{base}/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
    finally:
        localcluster.start([2, 3])
    # The same process recovers by itself once the nodes are back.
    wait_until(
        lambda: httpx.get(f"{base}/health", timeout=10).status_code == 200,
        timeout=90,
        interval=0.5,
        message="healthy again",
    )
    wait_until(
        lambda: httpx.get(f"{base}/users/{seeded[0]}", timeout=10).status_code == 200,
        timeout=30,
        interval=0.5,
        message="reads again",
    )
    wait_until(
        lambda: (
            httpx.post(
                f"{base}/users",
                json={"name": "Back", "email": "b@example.com", "age": 2},
                timeout=15,
            ).status_code
            == 201
        ),
        timeout=30,
        interval=0.5,
        message="creates again",
    )
    assert cluster_app.process.poll() is None  # the same process, never restarted


def test_5_an_update_racing_a_delete_never_resurrects_the_user(
    whole_cluster: None, cluster_app: ServedApp, driver: Any
) -> None:
    rounds = 25
    at_once = asyncio.Semaphore(5)  # rounds in flight: the race is within a round, on one user

    async def delete_until_answered(client: httpx.AsyncClient, user_id: str) -> int:
        # A 504 means the delete's outcome is unknown (Paxos contention with the updates ran past
        # its time): a client sends it again, as it is idempotent.
        for _ in range(5):
            status = (await client.delete(f"/users/{user_id}")).status_code
            if status != 504:
                return status
        return status

    async def create(client: httpx.AsyncClient, n: int) -> str:
        # One at a time, before any race, and sent again under the same Idempotency-Key if its
        # outcome is unknown (504): the race is what this test is about.
        body = {"name": f"Race {n}", "email": f"race{n}@example.com", "age": 30}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        for _ in range(3):
            created = await client.post("/users", json=body, headers=headers)
            if created.status_code != 504:
                break
        assert created.status_code == 201, created.text
        user_id: str = created.json()["id"]
        return user_id

    async def race(client: httpx.AsyncClient, n: int, user_id: str) -> tuple[str, list[int], int]:
        async with at_once:
            patches = [
                client.patch(f"/users/{user_id}", json={"name": f"Racer {n}.{k}", "age": 31 + k})
                for k in range(3)
            ]
            answers = await asyncio.gather(*patches, delete_until_answered(client, user_id))
            patch_statuses = [a.status_code for a in answers[:-1]]  # type: ignore[union-attr]
            return user_id, patch_statuses, answers[-1]  # type: ignore[return-value]

    async def run() -> list[tuple[str, list[int], int]]:
        async with httpx.AsyncClient(base_url=cluster_app.base_url, timeout=30) as client:
            ids = [await create(client, n) for n in range(rounds)]
            return await asyncio.gather(*(race(client, n, ids[n]) for n in range(rounds)))

    outcomes = asyncio.run(run())
    statement = driver.prepare("SELECT * FROM users WHERE id = ?")
    statement.consistency_level = ConsistencyLevel.ALL
    for user_id, patch_statuses, delete_status in outcomes:
        # 404: an earlier attempt of the delete did apply.
        assert delete_status in {204, 404}, (user_id, delete_status)
        # 504: an update whose outcome is unknown; whatever it did, the delete came after it.
        assert set(patch_statuses) <= {200, 404, 504}, (user_id, patch_statuses)
        assert httpx.get(f"{cluster_app.base_url}/users/{user_id}", timeout=10).status_code == 404
        # Not even a remnant (updated cells without the user) on any replica.
        assert driver.execute(statement, (uuid.UUID(user_id),), timeout=15).one() is None, user_id
