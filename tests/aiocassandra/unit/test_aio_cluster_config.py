"""What AsyncCluster asks of the driver, checked without connecting."""

from __future__ import annotations

import pytest
from cassandra import ProtocolVersion
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.io.libevreactor import LibevConnection
from cassandra.policies import (
    ConstantReconnectionPolicy,
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    FallthroughRetryPolicy,
    TokenAwarePolicy,
)

from cqlstar.aiocassandra import AsyncCluster, IdempotencyAwareRetryPolicy, StreamConfig
from cqlstar.aiocassandra.rows import row_factory


def test_default_policies() -> None:
    cluster = AsyncCluster(["10.0.0.1", "10.0.0.2"], port=9142, local_dc="dc1", max_retries=5)
    driver = cluster.driver_cluster
    profile = driver.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
    assert isinstance(profile.load_balancing_policy, TokenAwarePolicy)
    child = profile.load_balancing_policy._child_policy
    assert isinstance(child, DCAwareRoundRobinPolicy)
    assert child.local_dc == "dc1"
    assert isinstance(profile.retry_policy, IdempotencyAwareRetryPolicy)
    assert profile.retry_policy.max_retries == 5
    assert profile.request_timeout == 10.0
    assert profile.row_factory is row_factory
    assert isinstance(driver.reconnection_policy, ExponentialReconnectionPolicy)
    assert driver.connection_class is LibevConnection
    assert driver.contact_points == ["10.0.0.1", "10.0.0.2"]
    assert driver.port == 9142
    assert driver.auth_provider is None
    assert cluster.request_timeout == 10.0
    assert not cluster.is_closed


def test_protocol_is_negotiated_from_v5_unless_given() -> None:
    negotiated = AsyncCluster().driver_cluster
    assert negotiated.protocol_version == ProtocolVersion.V5
    assert negotiated._protocol_version_explicit is False  # may step down to v4
    pinned = AsyncCluster(protocol_version=4).driver_cluster
    assert pinned.protocol_version == 4
    assert pinned._protocol_version_explicit is True


def test_auth_and_custom_policies() -> None:
    retry = FallthroughRetryPolicy()
    reconnection = ConstantReconnectionPolicy(1.0)
    cluster = AsyncCluster(
        username="cassandra",
        password="secret",
        retry_policy=retry,
        reconnection_policy=reconnection,
        request_timeout=3.0,
        connect_timeout=2.0,
    )
    driver = cluster.driver_cluster
    assert isinstance(driver.auth_provider, PlainTextAuthProvider)
    assert driver.auth_provider.username == "cassandra"
    profile = driver.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
    assert profile.retry_policy is retry
    assert profile.request_timeout == 3.0
    assert driver.reconnection_policy is reconnection
    assert driver.connect_timeout == 2.0


async def test_shutdown_before_connect_is_prompt_and_idempotent() -> None:
    cluster = AsyncCluster()
    await cluster.shutdown()
    await cluster.shutdown()
    assert cluster.is_closed
    from cqlstar.aiocassandra import SessionClosedError

    with pytest.raises(SessionClosedError):
        await cluster.connect()


@pytest.mark.parametrize(
    "kwargs", [{"fetch_size": 0}, {"max_pages": 0}, {"timeout": 0}, {"timeout": -1.0}]
)
def test_stream_config_validation(kwargs: dict[str, int | float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        StreamConfig(**kwargs)  # type: ignore[arg-type]


def test_stream_config_defaults() -> None:
    config = StreamConfig()
    assert (config.fetch_size, config.max_pages, config.page_callback, config.timeout) == (
        1000,
        None,
        None,
        None,
    )


def test_consistency_and_speculative_execution_reach_the_profile() -> None:
    from cassandra import ConsistencyLevel
    from cassandra.policies import NoSpeculativeExecutionPolicy

    from cqlstar.aiocassandra.speculation import ReadWriteSpeculativeExecutionPolicy

    cluster = AsyncCluster(
        ["10.0.0.1"],
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        speculative_delay=0.05,
        speculative_attempts=2,
    )
    profile = cluster.driver_cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
    assert profile.consistency_level == ConsistencyLevel.LOCAL_QUORUM
    assert profile.serial_consistency_level == ConsistencyLevel.LOCAL_SERIAL
    policy = profile.speculative_execution_policy
    assert isinstance(policy, ReadWriteSpeculativeExecutionPolicy)
    assert (policy.read_delay, policy.write_delay, policy.max_attempts) == (0.05, None, 2)

    plain = AsyncCluster(["10.0.0.1"]).driver_cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
    assert plain.consistency_level == ConsistencyLevel.LOCAL_ONE  # the driver's own default
    assert isinstance(plain.speculative_execution_policy, NoSpeculativeExecutionPolicy)
    with pytest.raises(ValueError, match="speculative"):
        AsyncCluster(["10.0.0.1"], speculative_delay=0.05, speculative_attempts=0)
