"""The OpenAPI document says what the guards enforce: the contract's role table, exactly.

Also the check on `cqlstar.identity.guards.document_access`, the one place that edits route
handlers after registration: every route is either open or carries the role the contract gives it,
so a new route cannot slip in undocumented.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.handlers.http_handlers import HTTPRouteHandler

from cqlstar.app import create_app
from cqlstar.identity.guards import is_protected, required_role
from cqlstar.settings import Settings

ISSUER = "http://127.0.0.1:8180/realms/cqlstar"
READ, WRITE, ADMIN = "users:read", "users:write", "admin"
ROLE_TABLE = {
    ("get", "/users"): READ,
    ("get", "/users/{user_id}"): READ,
    ("get", "/users/stream"): READ,
    ("get", "/users/stream/pages"): READ,
    ("post", "/users"): WRITE,
    ("put", "/users/{user_id}"): WRITE,
    ("patch", "/users/{user_id}"): WRITE,
    ("delete", "/users/{user_id}"): WRITE,
    ("post", "/users/batch"): WRITE,
    ("get", "/performance/async"): ADMIN,
    ("get", "/performance/sync"): ADMIN,
    ("get", "/slow_query"): ADMIN,
    ("get", "/long_running_query"): ADMIN,
    ("post", "/context_manager_safety/query_error"): ADMIN,
    ("post", "/context_manager_safety/streaming_error"): ADMIN,
    ("post", "/context_manager_safety/concurrent_streams"): ADMIN,
    ("post", "/context_manager_safety/nested_contexts"): ADMIN,
    ("post", "/context_manager_safety/cancellation"): ADMIN,
    ("get", "/context_manager_safety/status"): ADMIN,
    ("post", "/shutdown"): ADMIN,
}
TOKEN_ONLY = {("post", "/logout")}
OPEN = {
    ("get", "/"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("post", "/login"),
    ("post", "/login/refresh"),
}
# Open routes of other concerns, which may or may not be on this branch yet.
OPEN_ELSEWHERE = {("get", "/asyncapi.json")}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(Settings(oidc_issuer=ISSUER)).openapi_schema.to_schema()
    return schema


def _operations(openapi: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_the_document_has_the_bearer_and_password_schemes(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearer"]["description"],
    }
    assert schemes["login"]["type"] == "oauth2"
    assert schemes["login"]["flows"]["password"]["tokenUrl"] == "/login"


def test_every_operation_is_open_or_in_the_role_table(openapi: dict[str, Any]) -> None:
    documented = set(_operations(openapi))
    assert documented - OPEN_ELSEWHERE == set(ROLE_TABLE) | TOKEN_ONLY | OPEN


@pytest.mark.parametrize(("method", "path"), sorted(ROLE_TABLE))
def test_protected_operations_carry_security_role_and_401_403(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    operation = _operations(openapi)[(method, path)]
    assert operation["security"] == [{"login": []}, {"bearer": []}]
    assert operation["description"].startswith(f"Requires the `{ROLE_TABLE[(method, path)]}` role.")
    assert {"401", "403"} <= set(operation["responses"])
    assert len(operation["description"]) > len("Requires the `admin` role.")  # docstring kept


def test_logout_needs_a_token_and_no_role(openapi: dict[str, Any]) -> None:
    operation = _operations(openapi)[("post", "/logout")]
    assert operation["security"] == [{"login": []}, {"bearer": []}]
    assert operation["description"].startswith("Requires an access token (no role).")


@pytest.mark.parametrize(("method", "path"), sorted(OPEN))
def test_open_operations_have_no_security(openapi: dict[str, Any], method: str, path: str) -> None:
    operation = _operations(openapi)[(method, path)]
    assert "security" not in operation
    assert "403" not in operation["responses"]


def test_login_documents_both_body_encodings(openapi: dict[str, Any]) -> None:
    content = _operations(openapi)[("post", "/login")]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    assert content["application/json"]["schema"]["required"] == ["username", "password"]


def test_guards_match_the_role_table_at_runtime() -> None:
    """The handlers' metadata the middleware checks, not only the document."""
    app = create_app(Settings(oidc_issuer=ISSUER))
    seen: dict[tuple[str, str], str | None] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            if not is_protected(handler):
                continue
            role = required_role(handler)
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                key = (method.lower(), route.path.replace("{user_id:str}", "{user_id}"))
                seen[key] = role.value if role else None
    expected = {**ROLE_TABLE, **dict.fromkeys(TOKEN_ONLY)}
    assert seen == expected


def test_with_authentication_disabled_nothing_claims_security() -> None:
    schema = create_app(Settings(auth="disabled")).openapi_schema.to_schema()
    assert "securitySchemes" not in schema.get("components", {})
    assert all("security" not in op for op in _operations(schema).values())
    assert ("post", "/login") not in _operations(schema)
