"""Request validation and the generic HTTP errors, as the Users routes answer them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def locs(response: httpx.Response) -> list[list[Any]]:
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    for issue in detail:
        assert set(issue) == {"loc", "msg", "type"}
        assert isinstance(issue["msg"], str)
        assert issue["msg"]
    return [issue["loc"] for issue in detail]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 7}, "name"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "a" * 250 + "@b.io"}, "email"),
        ({"age": -1}, "age"),
        ({"age": 151}, "age"),
        ({"age": "thirty"}, "age"),
        ({"age": 36.5}, "age"),
        ({"age": None}, "age"),
    ],
)
async def test_create_rejects_each_invalid_field_with_its_loc(
    http: httpx.AsyncClient,
    user_body: Callable[..., dict[str, Any]],
    override: dict[str, Any],
    field: str,
) -> None:
    response = await http.post("/users", json=user_body(**override))
    assert response.status_code == 422
    assert locs(response) == [["body", field]]


@pytest.mark.parametrize("missing", ["name", "email", "age"])
async def test_create_requires_every_field(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]], missing: str
) -> None:
    body = user_body()
    del body[missing]
    response = await http.post("/users", json=body)
    assert response.status_code == 422
    assert missing in response.json()["detail"][0]["msg"]


async def test_unknown_fields_are_ignored(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]]
) -> None:
    body = user_body(id="00000000-0000-0000-0000-000000000000", role="admin")
    response = await http.post("/users", json=body)
    assert response.status_code == 201
    user = response.json()
    assert "role" not in user
    assert user["id"] != body["id"]


@pytest.mark.parametrize(
    "raw", [b"{", b'{"name": "x",}', b"not json", b"[1, 2", b'{"name": "\xff"}']
)
async def test_malformed_json_is_422(http: httpx.AsyncClient, raw: bytes) -> None:
    response = await http.post("/users", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert locs(response) == [["body"]]


async def test_a_json_body_of_the_wrong_shape_is_422(http: httpx.AsyncClient) -> None:
    response = await http.post("/users", json=["a", "list"])
    assert response.status_code == 422
    assert locs(response)[0][0] == "body"


async def test_a_body_over_one_mebibyte_is_413(live_app: Any) -> None:
    """Over a raw connection: the server answers from the declared length, before the body is in.

    An HTTP client library that insists on writing the whole body first can see the connection
    reset by the server's early close instead of the answer, so this test reads the answer after
    sending only the start of the body, as a well-behaved streaming client would.
    """
    url = httpx.URL(live_app.base_url)
    declared = 1024 * 1024 + 1
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(
            b"POST /users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % declared
        )
        writer.write(b'{"name": "' + b"x" * 65536)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        body = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
    assert status == 413
    assert body == {"detail": "Request Entity Too Large"}


async def test_a_body_of_exactly_one_mebibyte_is_not_refused_for_size(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]]
) -> None:
    # A valid user padded with an unknown field up to the limit exactly.
    prefix = json.dumps(user_body())[:-1].encode() + b', "padding": "'
    padded = prefix + b"x" * (1024 * 1024 - len(prefix) - 2) + b'"}'
    assert len(padded) == 1024 * 1024
    response = await http.post(
        "/users", content=padded, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201


async def test_unknown_route_is_404_with_detail(http: httpx.AsyncClient) -> None:
    response = await http.get("/users/some/thing/else")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/users"), ("PUT", "/users"), ("GET", "/users/batch"), ("POST", "/users/stream")],
)
async def test_wrong_method_is_405_with_detail(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await http.request(method, path)
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


async def test_openapi_documents_every_users_route(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    paths = document["paths"]
    expected = {
        "/users": {"get", "post"},
        "/users/{user_id}": {"get", "put", "patch", "delete"},
        "/users/batch": {"post"},
        "/users/stream": {"get"},
        "/users/stream/pages": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            operation = paths[path][method]
            assert operation["operationId"]
            assert operation["summary"]
            assert {"422", "503", "504"} & set(operation["responses"]), (path, method)
    assert "400" in paths["/users/{user_id}"]["get"]["responses"]
    assert "404" in paths["/users/{user_id}"]["get"]["responses"]
