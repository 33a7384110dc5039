"""A local three-node Apache Cassandra cluster for the failure tests and the cluster benchmark.

Developer tooling, like `cqlstar.localnode` (whose jars, `cassandra.yaml` template and JVM command it
reuses through `NodeSpec`): `just cluster` starts it, `just cluster-stop` stops it, `just
test-cluster` runs the tests that kill, freeze and restart its nodes. The single development node on
127.0.0.1 is a different cluster (another name, no common seed) and is never touched.

Layout: node N (1, 2, 3) listens on 127.0.0.(N+1), CQL on 9042 and inter-node traffic on 7000 of its
own address (Linux routes all of 127.0.0.0/8 to loopback, no set-up needed), JMX on 127.0.0.1:720N
(JMX always binds 127.0.0.1, so each node needs its own port, away from the single node's 7199 and
the outage test's 7299), and keeps its files in ``<cache>/cluster/nodeN/``. The service and the
tests reach it with ``CASSANDRA_HOSTS=127.0.0.2,127.0.0.3,127.0.0.4`` and, for three replicas,
``CASSANDRA_REPLICATION=datacenter1:3`` (SimpleSnitch names the one datacenter `datacenter1`).

How it forms quickly (about a minute on two cores, all three JVMs starting side by side):

* every node is a seed and `auto_bootstrap` is off: a seed never bootstraps, so the three start at
  once instead of one after the other, and an empty cluster has nothing to stream anyway;
* `num_tokens: 1` with evenly spaced `initial_token`s: no token allocation, a ring of three ranges;
* ``-Dcassandra.skip_wait_for_gossip_to_settle=0``: do not wait for gossip to be quiet before
  opening CQL;
* ``-Dcassandra.ring_delay_ms=1000``: the pause for gossip to spread ring state at start (30 s by
  default); one second is plenty on one machine;
* ``-Dcassandra.load_ring_state=false`` (every local node): do not trust the ring saved by a previous
  run, learn it from gossip;
* a 640 MiB heap and 64 MiB memtables per node: three fit next to the single node, the service and
  the load generator on a 24 GiB, 2-core machine.

`start` returns once every node, as coordinator, reads at consistency ALL (`sees_all_replicas`), so
a keyspace with three replicas can be written at any consistency right away.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence

from cqlstar import localnode
from cqlstar.localnode import NodeSpec

NODE_COUNT = 3
ADDRESSES = tuple(f"127.0.0.{n + 1}" for n in range(1, NODE_COUNT + 1))
CQL_PORT = 9042
STORAGE_PORT = 7000
HEAP = os.environ.get("CQLSTAR_CLUSTER_HEAP", "640M")
# SimpleSnitch puts every node in this datacenter.
DATACENTER = "datacenter1"
# What the service and the tests set to use the cluster with three replicas.
HOSTS_ENV = ",".join(ADDRESSES)
REPLICATION_ENV = f"{DATACENTER}:{NODE_COUNT}"
START_TIMEOUT_S = float(os.environ.get("CQLSTAR_CLUSTER_START_TIMEOUT", "300"))

# Hints are what a node that was down gets back: keep them on (the default), with a window far longer
# than any outage the tests make. A failed node is convicted by gossip's failure detector; the
# default threshold is kept so what the tests show is what a real cluster does.
#
# Server-side timeouts a little above Cassandra's defaults (read 5 s, write 2 s, Paxos contention
# 1 s): three JVMs share two cores with the service and the load, and a write that times out only
# because the machine was busy says nothing about the cluster. The client's own budget (the
# driver's 10 s) still bounds every request. For the same reason the failure detector is made less
# jumpy (phi 12 instead of 8): a node starved of CPU for a few seconds is not declared dead, which
# would make its peers refuse quorum requests. A killed node is still convicted within seconds, and
# a stopped one announces its own shutdown.
_CLUSTER_YAML = """\
auto_bootstrap: false
hinted_handoff_enabled: true
max_hint_window: 3h
read_request_timeout: 5000ms
write_request_timeout: 5000ms
cas_contention_timeout: 3000ms
phi_convict_threshold: 12
"""

_CLUSTER_JVM_FLAGS = (
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.ring_delay_ms=1000",
)


def _token(index: int) -> int:
    """Node `index`'s (0-based) token: the Murmur3 ring split into equal thirds."""
    return -(2**63) + index * (2**64 // NODE_COUNT)


def node(number: int) -> NodeSpec:
    """The spec of node `number` (1, 2 or 3)."""
    if not 1 <= number <= NODE_COUNT:
        raise ValueError(f"node number {number}: expected 1 to {NODE_COUNT}")
    index = number - 1
    return NodeSpec(
        directory=localnode.cache_root() / "cluster" / f"node{number}",
        address=ADDRESSES[index],
        cql_port=CQL_PORT,
        storage_port=STORAGE_PORT,
        jmx_port=7200 + number,
        heap=HEAP,
        cluster_name="cqlstar-cluster",
        seeds=tuple(f"{address}:{STORAGE_PORT}" for address in ADDRESSES),
        initial_token=_token(index),
        memtable="64MiB",
        extra_yaml=_CLUSTER_YAML,
        extra_jvm_flags=_CLUSTER_JVM_FLAGS,
    )


def nodes() -> list[NodeSpec]:
    return [node(n) for n in range(1, NODE_COUNT + 1)]


def pid(number: int) -> int | None:
    return localnode.node_pid(node(number))


def start(numbers: Sequence[int] | None = None, timeout: float = START_TIMEOUT_S) -> None:
    """Start the given nodes (default: all) unless alive; return once the cluster is whole.

    Whole: every node, as coordinator, reads at ALL (see `sees_all_replicas`).
    """
    specs = nodes() if numbers is None else [node(n) for n in numbers]
    pids = {spec.address: localnode.launch(spec) for spec in specs}
    deadline = time.monotonic() + timeout
    for spec in specs:
        localnode.wait_ready(spec, pids[spec.address], max(1.0, deadline - time.monotonic()))
    wait_whole(max(1.0, deadline - time.monotonic()))


def sees_all_replicas(address: str) -> bool:
    """Whether the node at `address`, as coordinator, reads a partition at ALL.

    `system_distributed` has three replicas on any cluster of three or more nodes, so on this one
    every node holds every partition of it: the read succeeds only if the coordinator answers CQL,
    believes both other nodes up (else it refuses with Unavailable) and both answer in time.
    """
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy
    from cassandra.query import SimpleStatement

    cluster = Cluster(
        [address],
        port=CQL_PORT,
        connect_timeout=3,
        control_connection_timeout=3,
        execution_profiles={
            EXEC_PROFILE_DEFAULT: ExecutionProfile(
                load_balancing_policy=WhiteListRoundRobinPolicy([address]),
                request_timeout=5,
                consistency_level=ConsistencyLevel.ALL,
            )
        },
        protocol_version=5,
    )
    try:
        session = cluster.connect()
        session.execute(
            SimpleStatement(
                "SELECT host_id FROM system_distributed.view_build_status "
                "WHERE keyspace_name = 'cqlstar' AND view_name = 'probe'"
            )
        )
        return True
    except Exception:  # any failure: not whole (yet)
        return False
    finally:
        cluster.shutdown()


def wait_whole(timeout: float) -> None:
    """Wait until each node sees all the others up; exit with the nodes' logs otherwise."""
    deadline = time.monotonic() + timeout
    missing: list[str] = []
    while time.monotonic() < deadline:
        missing = [address for address in ADDRESSES if not sees_all_replicas(address)]
        if not missing:
            localnode._log(f"cluster of {NODE_COUNT} nodes up on {HOSTS_ENV} (CQL port {CQL_PORT})")
            return
        time.sleep(1)
    raise SystemExit(
        f"the local cluster did not form within {timeout:.0f}s (not yet reading at ALL as "
        f"coordinator: {', '.join(missing)}). Logs: {localnode.cache_root() / 'cluster'}/node*/logs/system.log; "
        "`just cluster-reset` wipes the cluster's data."
    )


def kill(number: int) -> int:
    """SIGKILL node `number` (a crash: no drain, no goodbye to gossip); return its pid."""
    node_pid = pid(number)
    if node_pid is None:
        raise RuntimeError(f"node {number} is not running")
    os.kill(node_pid, signal.SIGKILL)
    while localnode.alive(node_pid):
        time.sleep(0.05)
    node(number).pid_file.unlink(missing_ok=True)
    localnode._log(f"killed node {number} (pid {node_pid})")
    return node_pid


def freeze(number: int) -> None:
    """SIGSTOP node `number`: its sockets stay open and nothing answers (a hung JVM, a long GC)."""
    node_pid = pid(number)
    if node_pid is None:
        raise RuntimeError(f"node {number} is not running")
    os.kill(node_pid, signal.SIGSTOP)


def thaw(number: int) -> None:
    """SIGCONT node `number` (harmless on a running node)."""
    node_pid = pid(number)
    if node_pid is not None:
        os.kill(node_pid, signal.SIGCONT)


def stop(numbers: Sequence[int] | None = None) -> None:
    """Stop the given nodes (default: all) cleanly: a drained node tells its peers it is leaving."""
    for spec in nodes() if numbers is None else [node(n) for n in numbers]:
        localnode.stop_node(spec)


def reset() -> None:
    stop()
    shutil.rmtree(localnode.cache_root() / "cluster", ignore_errors=True)
    localnode._log("local cluster data removed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cqlstar-cluster", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status", "reset"])
    action = parser.parse_args(argv).action
    if action == "start":
        start()
        print(f"CASSANDRA_HOSTS={HOSTS_ENV} CASSANDRA_REPLICATION={REPLICATION_ENV}")
    elif action == "stop":
        stop()
    elif action == "reset":
        reset()
    else:
        up = 0
        for number, spec in enumerate(nodes(), start=1):
            version = localnode.cql_answers(spec.address, spec.cql_port, timeout=3)
            state = f"Cassandra {version}" if version else "not answering"
            print(f"node {number} {spec.where}: {state} (pid {pid(number)})")
            up += version is not None
        sys.exit(0 if up == NODE_COUNT else 1)


if __name__ == "__main__":
    main()
