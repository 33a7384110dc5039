"""`GET /asyncapi.json` describes the protocol the server actually validates."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_asyncapi_document(http: httpx.AsyncClient) -> None:
    response = await http.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["web"]["address"] == "/web"
    operations = document["operations"]
    for name in (
        "GET_USERS",
        "GET_PAGINATED_USERS",
        "CREATE_USER",
        "GET_USER",
        "UPDATE_USER",
        "DELETE_USER",
    ):
        assert operations[name]["action"] == "receive"
        assert "Role:" in operations[name]["description"]
    schemas = document["components"]["schemas"]
    # The create package validates with the HTTP API's UserCreate.
    assert schemas["UserCreate"]["properties"]["age"]["maximum"] == 150
    assert schemas["GetUser"]["properties"]["pkg_id"]["enum"] == [4]
    for code in ("4001", "4002", "1008", "1009", "1013"):
        assert f"`{code}`" in document["info"]["description"]


async def test_asyncapi_is_in_openapi_as_an_open_route(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert "/asyncapi.json" in paths
