"""The development realm file is the contract's, and the local Keycloak is started as documented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cqlstar.identity import localkeycloak

ROOT = Path(__file__).resolve().parents[3]
CONTRACT_ACCOUNTS = {
    "alice": ("alice-pass", {"users:read", "users:write", "admin"}),
    "bob": ("bob-pass", {"users:read"}),
    "carol": ("carol-pass", set()),
}


@pytest.fixture(scope="module")
def realm() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "deploy/keycloak/cqlstar-realm.json").read_text())
    return data


def test_the_provisioning_imports_the_repositorys_realm_file() -> None:
    assert localkeycloak.REALM_FILE == ROOT / "deploy" / "keycloak" / "cqlstar-realm.json"


def test_realm_roles_are_exactly_the_contracts(realm: dict[str, Any]) -> None:
    assert realm["realm"] == "cqlstar"
    assert realm["enabled"] is True
    assert {role["name"] for role in realm["roles"]["realm"]} == {
        "users:read",
        "users:write",
        "admin",
    }


def test_the_client_is_public_allows_the_password_grant_and_puts_itself_in_aud(
    realm: dict[str, Any],
) -> None:
    [client] = realm["clients"]
    assert client["clientId"] == "cqlstar-api"
    assert client["publicClient"] is True
    assert client["directAccessGrantsEnabled"] is True
    [mapper] = client["protocolMappers"]
    assert mapper["protocolMapper"] == "oidc-audience-mapper"
    assert mapper["config"]["included.client.audience"] == "cqlstar-api"
    assert mapper["config"]["access.token.claim"] == "true"


def test_accounts_passwords_and_roles_are_the_contracts(realm: dict[str, Any]) -> None:
    users = {user["username"]: user for user in realm["users"]}
    assert set(users) == set(CONTRACT_ACCOUNTS)
    for username, (password, roles) in CONTRACT_ACCOUNTS.items():
        user = users[username]
        assert user["enabled"] is True
        [credential] = user["credentials"]
        assert (credential["type"], credential["value"], credential["temporary"]) == (
            "password",
            password,
            False,
        )
        assert set(user["realmRoles"]) - {"default-roles-cqlstar"} == roles


def test_keycloak_starts_in_dev_mode_on_loopback_with_its_hostname_and_a_memory_database() -> None:
    command = localkeycloak.command(Path("/kc"))
    assert command[:3] == ["bash", "/kc/bin/kc.sh", "start-dev"]
    assert "--http-host=127.0.0.1" in command
    assert "--http-port=8180" in command
    assert "--hostname=http://127.0.0.1:8180" in command
    assert "--db=dev-mem" in command
    assert "--import-realm" in command
    env = localkeycloak.environment()
    assert env["JAVA_OPTS_KC_HEAP"] == "-Xms64m -Xmx256m"
    assert env["JAVA_OPTS_APPEND"] == "-XX:TieredStopAtLevel=1 -XX:CICompilerCount=1"
    assert localkeycloak.ISSUER == "http://127.0.0.1:8180/realms/cqlstar"
    assert localkeycloak.KEYCLOAK_ARTIFACT == "org.keycloak:keycloak-quarkus-dist:26.7.3:zip"
