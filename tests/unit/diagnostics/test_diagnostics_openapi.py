"""Every diagnostics route is documented: operation id, summary, description and its failures."""

from __future__ import annotations

from typing import Any

import pytest

from cqlstar.app import create_app
from cqlstar.settings import Settings

DATA_ROUTES = {
    ("get", "/performance/async"),
    ("get", "/performance/sync"),
    ("get", "/slow_query"),
    ("get", "/long_running_query"),
    ("post", "/context_manager_safety/query_error"),
    ("post", "/context_manager_safety/streaming_error"),
    ("post", "/context_manager_safety/concurrent_streams"),
    ("post", "/context_manager_safety/nested_contexts"),
    ("post", "/context_manager_safety/cancellation"),
}
STATUS_ROUTE = ("get", "/context_manager_safety/status")


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(
        Settings(oidc_issuer="http://127.0.0.1:8180/realms/cqlstar")
    ).openapi_schema.to_schema()
    return schema


def _operation(openapi: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = openapi["paths"][path][method]
    return operation


@pytest.mark.parametrize(("method", "path"), sorted(DATA_ROUTES | {STATUS_ROUTE}))
def test_each_route_has_an_id_a_summary_and_a_description(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    operation = _operation(openapi, method, path)
    assert operation["operationId"]
    assert operation["summary"]
    assert operation["description"]
    assert "200" in operation["responses"]


@pytest.mark.parametrize(("method", "path"), sorted(DATA_ROUTES))
def test_data_routes_document_their_failures(
    openapi: dict[str, Any], method: str, path: str
) -> None:
    documented = set(_operation(openapi, method, path)["responses"])
    assert {"400", "500", "503", "504"} <= documented


def test_operation_ids_are_unique(openapi: dict[str, Any]) -> None:
    ids = [
        _operation(openapi, method, path)["operationId"]
        for method, path in DATA_ROUTES | {STATUS_ROUTE}
    ]
    assert len(set(ids)) == len(ids)


def test_requests_is_bounded_in_the_schema(openapi: dict[str, Any]) -> None:
    for path in ("/performance/async", "/performance/sync"):
        (parameter,) = _operation(openapi, "get", path)["parameters"]
        assert parameter["name"] == "requests"
        assert parameter["schema"]["minimum"] == 1
        assert parameter["schema"]["maximum"] == 1000
        assert parameter["schema"]["default"] == 100
