"""Replication, consistency and speculative execution settings, and the keyspace they create."""

from __future__ import annotations

import pytest

from cqlstar.database.schema import replication_map
from cqlstar.settings import Settings, SettingsError


def _settings(env: dict[str, str]) -> Settings:
    # Authentication is beside the point here.
    return Settings.from_env({"CQLSTAR_AUTH": "disabled", **env})


def test_defaults_are_one_replica_local_quorum_and_speculation_on() -> None:
    settings = _settings({})
    assert settings.cassandra_replication is None
    assert settings.cassandra_consistency == "LOCAL_QUORUM"
    assert settings.cassandra_serial_consistency == "LOCAL_SERIAL"
    assert settings.cassandra_speculative_delay_ms == 50.0
    assert settings.cassandra_speculative_write_delay_ms == 1000.0
    assert settings.cassandra_speculative_attempts == 1
    assert replication_map(settings.cassandra_replication) == (
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )


def test_replication_per_datacenter_makes_network_topology() -> None:
    settings = _settings({"CASSANDRA_REPLICATION": " eu-west:3, us.east_1 :2 "})
    assert settings.cassandra_replication == (("eu-west", 3), ("us.east_1", 2))
    assert replication_map(settings.cassandra_replication) == (
        "{'class': 'NetworkTopologyStrategy', 'eu-west': 3, 'us.east_1': 2}"
    )


@pytest.mark.parametrize(
    "raw", ["3", "dc1", "dc1:0", "dc1:x", "dc1:3,dc1:2", "dc'1:3", "dc1:3;DROP", ":3", "dc1:100"]
)
def test_malformed_replication_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="CASSANDRA_REPLICATION"):
        _settings({"CASSANDRA_REPLICATION": raw})


@pytest.mark.parametrize(
    ("consistency", "serial"),
    [
        ("local_quorum", "LOCAL_SERIAL"),
        ("LOCAL_ONE", "LOCAL_SERIAL"),
        ("QUORUM", "SERIAL"),
        ("EACH_QUORUM", "SERIAL"),
        ("ALL", "SERIAL"),
    ],
)
def test_conditional_writes_follow_the_consistency(consistency: str, serial: str) -> None:
    settings = _settings({"CASSANDRA_CONSISTENCY": consistency})
    assert settings.cassandra_consistency == consistency.upper()
    assert settings.cassandra_serial_consistency == serial


@pytest.mark.parametrize("raw", ["SERIAL", "ANY", "quorumm", "2"])
def test_unusable_consistency_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="CASSANDRA_CONSISTENCY"):
        _settings({"CASSANDRA_CONSISTENCY": raw})


def test_speculative_execution_can_be_tuned_or_turned_off() -> None:
    tuned = _settings(
        {"CASSANDRA_SPECULATIVE_DELAY_MS": "12.5", "CASSANDRA_SPECULATIVE_ATTEMPTS": "2"}
    )
    assert (tuned.cassandra_speculative_delay_ms, tuned.cassandra_speculative_attempts) == (12.5, 2)
    assert (
        _settings({"CASSANDRA_SPECULATIVE_DELAY_MS": "off"}).cassandra_speculative_delay_ms is None
    )


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CASSANDRA_SPECULATIVE_DELAY_MS", "0"),
        ("CASSANDRA_SPECULATIVE_DELAY_MS", "-5"),
        ("CASSANDRA_SPECULATIVE_DELAY_MS", "soon"),
        ("CASSANDRA_SPECULATIVE_WRITE_DELAY_MS", "0"),
        ("CASSANDRA_SPECULATIVE_ATTEMPTS", "0"),
        ("CASSANDRA_SPECULATIVE_ATTEMPTS", "6"),
        ("CASSANDRA_SPECULATIVE_ATTEMPTS", "two"),
    ],
)
def test_malformed_speculation_is_refused(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        _settings({name: raw})
