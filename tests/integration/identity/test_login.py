"""POST /login, /login/refresh and /logout against the real Keycloak: good, bad, malformed, and
the issuer down (503 with Retry-After, nothing of the issuer's answer passed on)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from oidc import bearer, keycloak_login, token_parts
from served import ServedApp, free_port, serve_app, stop_app

pytestmark = pytest.mark.integration


@pytest.fixture
def client(auth_app: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth_app.base_url, timeout=30) as http:
        yield http


def _assert_token_answer(body: dict[str, Any], username: str) -> None:
    assert set(body) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "refresh_expires_in",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["refresh_expires_in"] > 0
    _, claims = token_parts(body["access_token"])
    assert claims["preferred_username"] == username


def test_login_with_json_returns_the_issuers_tokens_which_open_the_users_routes(
    client: httpx.Client,
) -> None:
    answer = client.post("/login", json={"username": "bob", "password": "bob-pass"})
    assert answer.status_code == 200, answer.text
    _assert_token_answer(answer.json(), "bob")
    listed = client.get("/users", headers=bearer(answer.json()["access_token"]))
    assert listed.status_code == 200


def test_login_with_a_form_body_as_the_openapi_ui_sends_it(client: httpx.Client) -> None:
    answer = client.post(
        "/login",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": "alice-pass",
            "scope": "",
            "client_id": "",
        },
    )
    assert answer.status_code == 200, answer.text
    _assert_token_answer(answer.json(), "alice")


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong"), ("nobody-such", "alice-pass"), ("carol", "bob-pass")],
)
def test_wrong_credentials_are_401_with_a_fixed_message(
    client: httpx.Client, username: str, password: str
) -> None:
    answer = client.post("/login", json={"username": username, "password": password})
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Invalid username or password"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "alice"}, "password"),
        ({"password": "alice-pass"}, "username"),
        ({"username": "", "password": "alice-pass"}, "username"),
        ({"username": 7, "password": "alice-pass"}, "username"),
    ],
)
def test_missing_or_malformed_fields_are_422_naming_the_field(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    answer = client.post("/login", json=body)
    assert answer.status_code == 422
    [issue] = answer.json()["detail"]
    assert issue["loc"] == ["body", field]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"username=alice", "application/x-www-form-urlencoded"),
        # Deeper than the parser's recursion allowance: a RecursionError (500) before.
        (b'{"username": "alice", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "application/json"),
    ],
)
def test_undecodable_bodies_are_422(
    client: httpx.Client, content: bytes, content_type: str
) -> None:
    answer = client.post("/login", content=content, headers={"Content-Type": content_type})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][0] == "body"


def test_refresh_returns_fresh_tokens_for_the_same_account(
    client: httpx.Client, keycloak: Any
) -> None:
    first = keycloak_login(keycloak, "bob")
    answer = client.post("/login/refresh", json={"refresh_token": first["refresh_token"]})
    assert answer.status_code == 200, answer.text
    _assert_token_answer(answer.json(), "bob")
    assert answer.json()["access_token"] != first["access_token"]


@pytest.mark.parametrize(
    "refresh_token",
    ["not-a-token", "a.b.c", "eyJhbGciOiJIUzUxMiJ9.e30.c2ln"],
)
def test_a_bad_refresh_token_is_401(client: httpx.Client, refresh_token: str) -> None:
    answer = client.post("/login/refresh", json={"refresh_token": refresh_token})
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Invalid refresh token"}


@pytest.mark.parametrize("body", [{}, {"refresh_token": ""}, {"refresh": "x"}])
def test_a_missing_refresh_token_is_422(client: httpx.Client, body: dict[str, Any]) -> None:
    assert client.post("/login/refresh", json=body).status_code == 422


def test_an_access_token_is_not_a_refresh_token(client: httpx.Client, keycloak: Any) -> None:
    access = keycloak_login(keycloak, "bob")["access_token"]
    answer = client.post("/login/refresh", json={"refresh_token": access})
    assert answer.status_code == 401


def test_logout_ends_the_session_everywhere_until_its_tokens_expire(
    client: httpx.Client, keycloak: Any
) -> None:
    session = keycloak_login(keycloak, "alice")
    refreshed = client.post("/login/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    sibling = refreshed.json()["access_token"]  # another access token of the same session
    access, refresh = session["access_token"], refreshed.json()["refresh_token"]
    assert client.get("/users", headers=bearer(access)).status_code == 200
    assert client.get("/users", headers=bearer(sibling)).status_code == 200

    answer = client.post("/logout", json={"refresh_token": refresh}, headers=bearer(access))
    assert answer.status_code == 204, answer.text

    for token in (access, sibling):
        refused = client.get("/users", headers=bearer(token))
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # The issuer ended the session too: its refresh token no longer works.
    again = client.post("/login/refresh", json={"refresh_token": refresh})
    assert again.status_code == 401
    # A second logout with the same (now refused) token is still 204.
    second = client.post("/logout", json={"refresh_token": refresh}, headers=bearer(access))
    assert second.status_code == 204
    # Another session of the same account is not affected.
    other = keycloak_login(keycloak, "alice")["access_token"]
    assert client.get("/users", headers=bearer(other)).status_code == 200


def test_logout_needs_the_access_token_first(client: httpx.Client) -> None:
    answer = client.post("/logout", content=b"{bad")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_logout_without_a_refresh_token_is_422(client: httpx.Client, keycloak: Any) -> None:
    access = keycloak_login(keycloak, "carol")["access_token"]
    assert client.post("/logout", json={}, headers=bearer(access)).status_code == 422


@pytest.fixture(scope="module")
def app_without_issuer(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The service configured with an issuer nothing listens on: the issuer is down."""
    env = {
        **app_env,
        "CQLSTAR_AUTH": "oidc",
        "OIDC_ISSUER": f"http://127.0.0.1:{free_port()}/realms/cqlstar",
    }
    served = serve_app(env, tmp_path_factory.mktemp("no-issuer") / "server.log")
    yield served
    stop_app(served)


def test_issuer_down_login_and_refresh_are_503_with_retry_after(
    app_without_issuer: ServedApp,
) -> None:
    with httpx.Client(base_url=app_without_issuer.base_url, timeout=30) as http:
        for path, body in (
            ("/login", {"username": "alice", "password": "alice-pass"}),
            ("/login/refresh", {"refresh_token": "whatever"}),
        ):
            answer = http.post(path, json=body)
            assert answer.status_code == 503, answer.text
            assert answer.json() == {"detail": "The identity provider is unavailable"}
            assert int(answer.headers["Retry-After"]) >= 1
            assert "127.0.0.1" not in answer.text


def test_issuer_down_before_any_key_was_fetched_a_token_is_503_not_500(
    app_without_issuer: ServedApp, keycloak: Any
) -> None:
    token = keycloak_login(keycloak, "alice")["access_token"]
    with httpx.Client(base_url=app_without_issuer.base_url, timeout=30) as http:
        answer = http.get("/users", headers=bearer(token))
        assert answer.status_code == 503
        assert "Retry-After" in answer.headers
        # Garbage is still refused as garbage: no key is needed to tell.
        assert http.get("/users", headers=bearer("garbage")).status_code == 401
        assert http.get("/health").status_code == 200
