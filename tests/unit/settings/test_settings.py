"""Settings come from the environment once; a malformed value names its variable."""

from __future__ import annotations

import pytest

from cqlstar.settings import Rate, Settings, SettingsError

ISSUER = "http://127.0.0.1:8180/realms/cqlstar"


def test_defaults_suit_the_local_node() -> None:
    settings = Settings.from_env({"OIDC_ISSUER": ISSUER})
    assert settings.cassandra_hosts == ("127.0.0.1",)
    assert settings.cassandra_port == 9042
    assert settings.cassandra_keyspace == "cqlstar"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.shutdown_endpoint_enabled is False
    assert settings.max_streams == 32
    assert len(settings.page_token_secret) == 32


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "CASSANDRA_HOSTS": " node1, node2 ,",
            "CASSANDRA_PORT": "9142",
            "CASSANDRA_KEYSPACE": "shop_prod",
            "CASSANDRA_LOCAL_DC": "dc2",
            "CASSANDRA_USERNAME": "svc",
            "CASSANDRA_PASSWORD": "pw",
            "HOST": "0.0.0.0",
            "PORT": "8080",
            "CQLSTAR_PAGE_TOKEN_SECRET": "a-long-enough-secret",
            "CQLSTAR_ENABLE_SHUTDOWN": "true",
            "CQLSTAR_MAX_STREAMS": "5",
            "LOG_LEVEL": "debug",
            "OIDC_ISSUER": "https://id.example.com/realms/prod",
            "OIDC_CLIENT_ID": "shop-api",
            "OIDC_CLIENT_SECRET": "s3cret",
            "OIDC_AUDIENCE": "shop",
            "OIDC_ROLES_CLAIM": "resource_access.shop-api.roles",
        }
    )
    assert settings.cassandra_hosts == ("node1", "node2")
    assert settings.cassandra_port == 9142
    assert settings.cassandra_keyspace == "shop_prod"
    assert settings.cassandra_local_dc == "dc2"
    assert (settings.cassandra_username, settings.cassandra_password) == ("svc", "pw")
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.page_token_secret == b"a-long-enough-secret"
    assert settings.shutdown_endpoint_enabled is True
    assert settings.max_streams == 5
    assert settings.log_level == "DEBUG"
    assert settings.auth == "oidc"
    assert settings.oidc_issuer == "https://id.example.com/realms/prod"
    assert (settings.oidc_client_id, settings.oidc_client_secret) == ("shop-api", "s3cret")
    assert settings.audience == "shop"
    assert settings.oidc_roles_claim == "resource_access.shop-api.roles"


def test_each_process_makes_its_own_secret_when_none_is_configured() -> None:
    env = {"CQLSTAR_AUTH": "disabled"}
    assert Settings.from_env(env).page_token_secret != Settings.from_env(env).page_token_secret


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CASSANDRA_PORT": "ninety"}, "CASSANDRA_PORT"),
        ({"CASSANDRA_PORT": "70000"}, "CASSANDRA_PORT"),
        ({"PORT": "0"}, "PORT"),
        ({"CASSANDRA_HOSTS": " , "}, "CASSANDRA_HOSTS"),
        ({"CASSANDRA_KEYSPACE": "drop table; --"}, "CASSANDRA_KEYSPACE"),
        ({"CASSANDRA_KEYSPACE": "1starts_with_digit"}, "CASSANDRA_KEYSPACE"),
        ({"CASSANDRA_USERNAME": "only-user"}, "CASSANDRA_USERNAME"),
        ({"CQLSTAR_PAGE_TOKEN_SECRET": "short"}, "CQLSTAR_PAGE_TOKEN_SECRET"),
        ({"CQLSTAR_ENABLE_SHUTDOWN": "maybe"}, "CQLSTAR_ENABLE_SHUTDOWN"),
        ({"CQLSTAR_MAX_STREAMS": "0"}, "CQLSTAR_MAX_STREAMS"),
        ({"CQLSTAR_MAX_STREAMS": "-3"}, "CQLSTAR_MAX_STREAMS"),
        ({"CQLSTAR_MAX_STREAMS": "many"}, "CQLSTAR_MAX_STREAMS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_malformed_values_are_refused_by_name(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_authentication_is_on_by_default_and_fails_closed_without_an_issuer() -> None:
    with pytest.raises(SettingsError, match="OIDC_ISSUER"):
        Settings.from_env({})
    settings = Settings.from_env({"OIDC_ISSUER": ISSUER})
    assert settings.auth == "oidc"
    assert (settings.oidc_client_id, settings.audience) == ("cqlstar-api", "cqlstar-api")
    assert settings.oidc_roles_claim == "realm_access.roles"


def test_authentication_can_be_disabled_without_an_issuer() -> None:
    settings = Settings.from_env({"CQLSTAR_AUTH": "Disabled"})
    assert (settings.auth, settings.oidc_issuer) == ("disabled", None)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"CQLSTAR_AUTH": "maybe", "OIDC_ISSUER": ISSUER}, "CQLSTAR_AUTH"),
        ({"OIDC_ISSUER": "127.0.0.1:8180/realms/cqlstar"}, "OIDC_ISSUER"),
        ({"OIDC_ISSUER": "ftp://id.example.com"}, "OIDC_ISSUER"),
        ({"OIDC_ISSUER": ISSUER, "OIDC_ROLES_CLAIM": "realm_access..roles"}, "OIDC_ROLES_CLAIM"),
    ],
)
def test_malformed_identity_settings_name_their_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_shared_state_and_limits_default_to_the_contracts_values() -> None:
    settings = Settings.from_env({"CQLSTAR_AUTH": "disabled"})
    assert settings.redis_url is None
    assert settings.rate_limit == Rate(600, 60)
    assert settings.login_rate_limit == Rate(10, 60)
    assert settings.ws_rate_limit == Rate(100, 60)
    assert settings.ws_max_connections == 5


def test_rates_and_redis_are_read() -> None:
    settings = Settings.from_env(
        {
            "CQLSTAR_AUTH": "disabled",
            "REDIS_URL": "redis://127.0.0.1:6380/1",
            "RATE_LIMIT": "20/second",
            "LOGIN_RATE_LIMIT": "5 / Hours",
            "WS_RATE_LIMIT": "0",
            "WS_MAX_CONNECTIONS": "0",
        }
    )
    assert settings.redis_url == "redis://127.0.0.1:6380/1"
    assert settings.rate_limit == Rate(20, 1)
    assert str(settings.rate_limit) == "20/second"
    assert settings.login_rate_limit == Rate(5, 3600)
    assert settings.ws_rate_limit is None
    assert settings.ws_max_connections == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATE_LIMIT", "600"),
        ("RATE_LIMIT", "600/fortnight"),
        ("LOGIN_RATE_LIMIT", "-1/minute"),
        ("WS_RATE_LIMIT", "0/minute"),
        ("WS_MAX_CONNECTIONS", "five"),
        ("WS_MAX_CONNECTIONS", "-1"),
        ("REDIS_URL", "127.0.0.1:6379"),
    ],
)
def test_malformed_limits_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}="):
        Settings.from_env({"CQLSTAR_AUTH": "disabled", name: value})


def test_request_body_timeout_defaults_to_thirty_seconds_and_is_bounded() -> None:
    assert Settings.from_env({"CQLSTAR_AUTH": "disabled"}).request_body_timeout_s == 30.0
    env = {"CQLSTAR_AUTH": "disabled", "CQLSTAR_REQUEST_BODY_TIMEOUT": "2.5"}
    assert Settings.from_env(env).request_body_timeout_s == 2.5
    for bad in ("0", "-1", "601", "soon", "nan"):
        with pytest.raises(SettingsError, match="CQLSTAR_REQUEST_BODY_TIMEOUT"):
            Settings.from_env({"CQLSTAR_AUTH": "disabled", "CQLSTAR_REQUEST_BODY_TIMEOUT": bad})
