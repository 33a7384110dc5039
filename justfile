# cqlstar: `just --list` shows this menu.

set dotenv-load := false

# Show the menu.
default:
    @just --list --unsorted

# Install the locked dependencies into .venv (the other recipes do it for you).
[group("setup")]
sync:
    uv sync --frozen

# Start Cassandra, Redis and Keycloak if needed, then serve the API: `python -m cqlstar` on HOST:PORT (args: e.g. --workers 2).
[group("run")]
serve *args: sync _ensure-cassandra
    #!/usr/bin/env bash
    set -euo pipefail
    if [ "${CQLSTAR_AUTH:-oidc}" = "oidc" ] && [ -z "${OIDC_ISSUER:-}" ]; then
        OIDC_ISSUER="$(uv run --frozen python -m cqlstar.identity.localkeycloak start)"
        export OIDC_ISSUER
        echo "[keycloak] OIDC_ISSUER=${OIDC_ISSUER} (development realm: see README, Identity)" >&2
    fi
    if [ -z "${REDIS_URL:-}" ]; then
        uv run --frozen python -m cqlstar.localredis start
        export REDIS_URL="$(uv run --frozen python -m cqlstar.localredis url)"
    fi
    exec uv run --frozen python -m cqlstar {{args}}

# Start the local Cassandra node in the background; returns once CQL answers (idempotent).
[group("cassandra")]
cassandra: sync
    uv run --frozen python -m cqlstar.localnode start

# Stop the local Cassandra node.
[group("cassandra")]
cassandra-stop: sync
    uv run --frozen python -m cqlstar.localnode stop

# Stop the local node and delete its data.
[group("cassandra")]
cassandra-reset: sync
    uv run --frozen python -m cqlstar.localnode reset

# Start the local three-node cluster (127.0.0.2-4:9042) in the background; returns once it is whole.
[group("cassandra")]
cluster: sync
    uv run --frozen python -m cqlstar.localcluster start

# Stop the local three-node cluster (its data is kept).
[group("cassandra")]
cluster-stop: sync
    uv run --frozen python -m cqlstar.localcluster stop

# Stop the local three-node cluster and delete its data.
[group("cassandra")]
cluster-reset: sync
    uv run --frozen python -m cqlstar.localcluster reset

# Start the local Keycloak (realm from deploy/keycloak/cqlstar-realm.json); returns once it answers (idempotent).
[group("keycloak")]
keycloak: sync
    uv run --frozen python -m cqlstar.identity.localkeycloak start

# Stop the local Keycloak (its database is in memory: nothing to reset).
[group("keycloak")]
keycloak-stop: sync
    uv run --frozen python -m cqlstar.identity.localkeycloak stop

# Start the local Redis (Debian's redis-server 7.0, fetched once) on 127.0.0.1:6380 (idempotent).
[group("redis")]
redis: sync
    uv run --frozen python -m cqlstar.localredis start

# Stop the local Redis.
[group("redis")]
redis-stop: sync
    uv run --frozen python -m cqlstar.localredis stop

# Run the whole test suite against real Cassandra (starts the local node if needed).
[group("check")]
test *args: sync _wrk
    uv run --frozen pytest {{args}}

# The three-node cluster tests (tests/cluster): nodes killed, frozen, restarted under load; starts the cluster if needed.
[group("check")]
test-cluster *args: sync
    uv run --frozen pytest tests/cluster {{args}}

# Only the unit tests: no database, seconds.
[group("check")]
test-unit *args: sync
    uv run --frozen pytest -m "not integration" {{args}}

# Build the Dockerfile with podman (on a stand-in base without a registry) and check the running image.
[group("check")]
test-image *args: sync
    bash tests/image/install-tools.sh
    cd tests && uv run --frozen python -m image.standin
    CQLSTAR_IMAGE_TEST=1 uv run --frozen pytest tests/image {{args}}

# Lint and type-check.
[group("check")]
lint: sync
    uv run --frozen ruff check src tests bench
    uv run --frozen ruff format --check src tests bench
    uv run --frozen mypy

# Apply the linter's fixes and format the code.
[group("check")]
fmt: sync
    uv run --frozen ruff check --fix src tests bench
    uv run --frozen ruff format src tests bench

# Benchmark the service and its ceilings into bench/results/latest/ (BENCH_SECONDS, BENCH_CONCURRENCY...).
[group("bench")]
bench: sync _wrk
    uv run --frozen python -m bench.pipeline

# get_user and create_user against the local three-node cluster, three replicas at LOCAL_QUORUM (not part of `just bench`).
[group("bench")]
bench-cluster: sync _wrk cluster
    CASSANDRA_HOSTS=127.0.0.2,127.0.0.3,127.0.0.4 CASSANDRA_REPLICATION=datacenter1:3 \
    CASSANDRA_CONSISTENCY=LOCAL_QUORUM BENCH_SCENARIOS=get_user,create_user \
    BENCH_KEYSPACE="${BENCH_KEYSPACE:-bench_cluster}" BENCH_ROWS="${BENCH_ROWS:-20000}" \
    uv run --frozen python -m bench.pipeline

# Use CASSANDRA_HOSTS when set, otherwise the local node.
_ensure-cassandra:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -n "${CASSANDRA_HOSTS:-}" ]; then
        echo "[cassandra] using the cluster named by CASSANDRA_HOSTS: ${CASSANDRA_HOSTS}:${CASSANDRA_PORT:-9042}" >&2
    else
        uv run --frozen python -m cqlstar.localnode start
    fi

# wrk, the benchmark's load generator (Debian's package), installed when missing and run as root.
_wrk:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v wrk >/dev/null && exit 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "[bench] wrk is missing: apt-get install -y wrk" >&2
        export DEBIAN_FRONTEND=noninteractive
        # A fresh machine may have no package lists yet.
        apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
    else
        echo "[bench] wrk is missing (the benchmark's tests skip or fail): sudo apt-get install -y wrk" >&2
    fi
