"""The OpenAPI document states every constraint the Users routes enforce (issue 12, item 7)."""

from __future__ import annotations

from typing import Any

import pytest

from cqlstar.app import create_app
from cqlstar.settings import Settings
from cqlstar.users.schemas import MAX_BATCH, MIN_BATCH


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(Settings(auth="disabled")).openapi_schema.to_schema()
    return schema


def parameter(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
    schema: dict[str, Any] = found["schema"]
    return schema


@pytest.mark.parametrize("path", ["/users/stream", "/users/stream/pages"])
def test_age_filter_is_bounded_below_by_zero(document: dict[str, Any], path: str) -> None:
    schema = parameter(document, path, "age_filter")
    assert schema["minimum"] == 0
    assert schema["maximum"] == 150


def test_update_age_is_bounded_below_by_zero(document: dict[str, Any]) -> None:
    age = document["components"]["schemas"]["UserUpdate"]["properties"]["age"]
    assert age["minimum"] == 0
    assert age["maximum"] == 150


def test_an_update_needs_one_known_field(document: dict[str, Any]) -> None:
    update = document["components"]["schemas"]["UserUpdate"]
    assert update["minProperties"] == 1
    assert update["anyOf"] == [{"required": [f]} for f in ("name", "email", "age")]


def test_both_batch_forms_carry_their_bounds(document: dict[str, Any]) -> None:
    body = document["paths"]["/users/batch"]["post"]["requestBody"]["content"]["application/json"]
    array, wrapped = body["schema"]["oneOf"]
    assert (array["type"], array["minItems"], array["maxItems"]) == ("array", MIN_BATCH, MAX_BATCH)
    assert array["items"] == {"$ref": "#/components/schemas/UserCreate"}
    assert wrapped == {"$ref": "#/components/schemas/UserBatch"}
    users = document["components"]["schemas"]["UserBatch"]["properties"]["users"]
    assert (users["minItems"], users["maxItems"]) == (MIN_BATCH, MAX_BATCH)


@pytest.mark.parametrize("path", ["/performance/async", "/performance/sync"])
def test_performance_routes_document_their_422(document: dict[str, Any], path: str) -> None:
    response = document["paths"][path]["get"]["responses"]["422"]
    schema = response["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ValidationErrorDetail"}


def test_a_body_route_documents_json_only(document: dict[str, Any]) -> None:
    for path, method in [("/users", "post"), ("/users/batch", "post"), ("/users/{user_id}", "put")]:
        assert set(document["paths"][path][method]["requestBody"]["content"]) == {
            "application/json"
        }
