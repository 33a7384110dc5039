"""What a measurement stands on: the Cassandra node, the bench keyspace with its id pool, and the
environment the service is served with.

The node is the local one (`cqlstar.localnode`, started if needed) unless `CASSANDRA_HOSTS` names
others; then its CPU is not measured. wrk is not provisioned here: the `just bench` recipe
installs it, and `bench.harness.wrk.find_wrk` says how when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness.config import BenchConfig
from bench.harness.console import say
from bench.harness.seed import ensure_dataset


@dataclass(frozen=True)
class Dataset:
    """Where the bench's users live and the file of their ids that the load draws from."""

    hosts: tuple[str, ...]
    port: int
    # The local node's process, whose CPU the measurements read; None for a remote cluster.
    cassandra_pid: int | None
    cassandra_version: str
    ids_file: Path
    first_id: str

    def ids(self) -> list[str]:
        return [line for line in self.ids_file.read_text().split("\n") if line]


def provision_dataset(config: BenchConfig, note: Callable[[str], None] | None = None) -> Dataset:
    """The Cassandra node (unless CASSANDRA_HOSTS names one), the bench keyspace and the id pool."""
    cassandra_pid = None
    if hosts_env := os.environ.get("CASSANDRA_HOSTS", "").strip():
        hosts = tuple(h.strip() for h in hosts_env.split(",") if h.strip())
        port = int(os.environ.get("CASSANDRA_PORT", "9042"))
        if note is not None:
            note(f"Cassandra at {hosts_env}:{port} (CASSANDRA_HOSTS): its CPU is not measured")
    else:
        from cqlstar import localnode

        say("starting the local Cassandra node if needed")
        localnode.start()
        hosts, port = ("127.0.0.1",), localnode.CQL_PORT
        cassandra_pid = localnode.running_pid()
    ids_file = config.work_dir / "ids.txt"
    count, version = ensure_dataset(list(hosts), port, config.keyspace, config.rows, ids_file)
    say(f"Cassandra {version}; {count} ids in the pool ({ids_file})")
    first_id = ids_file.read_text().split("\n", 1)[0]
    return Dataset(hosts, port, cassandra_pid, version, ids_file, first_id)


def service_env(
    config: BenchConfig, dataset: Dataset, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The service's environment for a measurement: the bench keyspace, and `extra` on top."""
    return {
        "CASSANDRA_HOSTS": ",".join(dataset.hosts),
        "CASSANDRA_PORT": str(dataset.port),
        "CASSANDRA_KEYSPACE": config.keyspace,
        "LOG_LEVEL": config.log_level,
        # The open scenarios measure the service without token checks; the authenticated ones
        # pass CQLSTAR_AUTH=oidc and the issuer in `extra` (`token_env`).
        "CQLSTAR_AUTH": "disabled",
        # Nor rate limits: with authentication off, every request of the load generator counts
        # in one client address's window, which would answer most of the load 429. The limits
        # phase measures the limits' cost.
        "RATE_LIMIT": "0",
        **(extra or {}),
    }


def token_env(issuer: str) -> dict[str, str]:
    """What turns token checks on against the local Keycloak at `issuer`."""
    return {"CQLSTAR_AUTH": "oidc", "OIDC_ISSUER": issuer}
