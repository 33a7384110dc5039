"""Create, read, update, delete and list users over HTTP, against the granian-served service."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
NOT_FOUND = {"detail": "User not found"}
BAD_ID = {"detail": "Invalid user ID format"}


def parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def create(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/users", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def wait_until_clock_passes(stamp: str) -> None:
    """Let the wall clock move past a stored millisecond, so a later write gets a later stamp."""
    ahead = (parse_timestamp(stamp) - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(ahead, 0) + 0.002)


async def test_create_answers_201_with_location_and_the_stored_user(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]]
) -> None:
    body = user_body(age=33)
    response = await http.post("/users", json=body)

    assert response.status_code == 201
    user = response.json()
    assert set(user) == {"id", "name", "email", "age", "created_at", "updated_at"}
    assert uuid.UUID(user["id"]).version == 4
    assert response.headers["location"] == f"/users/{user['id']}"
    assert (user["name"], user["email"], user["age"]) == (body["name"], body["email"], 33)
    assert TIMESTAMP.match(user["created_at"]), user["created_at"]
    assert user["created_at"] == user["updated_at"]
    # Created just now, on this machine's clock, in UTC.
    assert abs((datetime.now(UTC) - parse_timestamp(user["created_at"])).total_seconds()) < 60


async def test_get_returns_exactly_the_body_post_returned(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]]
) -> None:
    created = await http.post("/users", json=user_body())
    fetched = await http.get(created.headers["location"])

    assert fetched.status_code == 200
    assert fetched.content == created.content


async def test_server_makes_distinct_ids(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]]
) -> None:
    same = user_body()
    first, second = await create(http, same), await create(http, same)
    assert first["id"] != second["id"]


async def test_get_unknown_user_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/users/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "0f0f0f0f-0f0f-0f0f-0f0f-0f0f0f0f0f0g"])
async def test_malformed_id_is_400_on_every_method(
    http: httpx.AsyncClient, method: str, bad_id: str
) -> None:
    body = {"age": 1} if method in {"PUT", "PATCH"} else None
    response = await http.request(method, f"/users/{bad_id}", json=body)
    assert response.status_code == 400
    assert response.json() == BAD_ID


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_merges_the_fields_sent(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]], method: str
) -> None:
    original = await create(http, user_body(age=20))
    await wait_until_clock_passes(original["created_at"])

    response = await http.request(method, f"/users/{original['id']}", json={"age": 21})

    assert response.status_code == 200
    updated = response.json()
    assert updated["age"] == 21
    assert (updated["id"], updated["name"], updated["email"]) == (
        original["id"],
        original["name"],
        original["email"],
    )
    assert updated["created_at"] == original["created_at"]
    assert parse_timestamp(updated["updated_at"]) > parse_timestamp(original["updated_at"])
    assert TIMESTAMP.match(updated["updated_at"])
    # What the update answered is what is stored.
    assert (await http.get(f"/users/{original['id']}")).json() == updated


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_can_change_every_field_at_once(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]], method: str
) -> None:
    original = await create(http, user_body(age=50))
    change = user_body(age=51)

    updated = (await http.request(method, f"/users/{original['id']}", json=change)).json()

    assert {k: updated[k] for k in change} == change
    assert updated["created_at"] == original["created_at"]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("body", [{}, {"unknown": "field"}], ids=["empty", "only-unknown"])
async def test_update_without_any_field_is_422(
    http: httpx.AsyncClient,
    user_body: Callable[..., dict[str, Any]],
    method: str,
    body: dict[str, Any],
) -> None:
    original = await create(http, user_body())
    response = await http.request(method, f"/users/{original['id']}", json=body)

    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["loc"] == ["body"]
    assert "at least one" in issue["msg"]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_validates_the_fields_sent(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]], method: str
) -> None:
    original = await create(http, user_body(age=40))
    response = await http.request(method, f"/users/{original['id']}", json={"age": 151})

    assert response.status_code == 422
    assert [issue["loc"] for issue in response.json()["detail"]] == [["body", "age"]]
    assert (await http.get(f"/users/{original['id']}")).json() == original


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_of_an_absent_user_is_404_and_creates_nothing(
    http: httpx.AsyncClient, method: str
) -> None:
    user_id = uuid.uuid4()
    response = await http.request(method, f"/users/{user_id}", json={"name": "Ghost"})

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert (await http.get(f"/users/{user_id}")).status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_after_delete_does_not_bring_the_user_back(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]], method: str
) -> None:
    user = await create(http, user_body())
    assert (await http.delete(f"/users/{user['id']}")).status_code == 204

    response = await http.request(method, f"/users/{user['id']}", json={"age": 99})

    assert response.status_code == 404
    assert (await http.get(f"/users/{user['id']}")).status_code == 404


async def test_delete_is_204_with_an_empty_body_and_idempotent(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]]
) -> None:
    user = await create(http, user_body())

    first = await http.delete(f"/users/{user['id']}")
    assert first.status_code == 204
    assert first.content == b""
    assert (await http.get(f"/users/{user['id']}")).status_code == 404

    again = await http.delete(f"/users/{user['id']}")
    assert again.status_code == 204
    assert again.content == b""


async def test_delete_of_a_user_that_never_existed_is_204(http: httpx.AsyncClient) -> None:
    response = await http.delete(f"/users/{uuid.uuid4()}")
    assert response.status_code == 204


async def test_list_defaults_to_10_and_honours_limit(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]]
) -> None:
    for _ in range(11):
        await create(http, user_body())

    default = await http.get("/users")
    three = await http.get("/users", params={"limit": 3})
    hundred = await http.get("/users", params={"limit": 100})

    assert default.status_code == three.status_code == hundred.status_code == 200
    assert len(default.json()) == 10
    assert len(three.json()) == 3
    assert 11 <= len(hundred.json()) <= 100
    for user in hundred.json():
        assert set(user) == {"id", "name", "email", "age", "created_at", "updated_at"}
        assert TIMESTAMP.match(user["created_at"])
    assert len({user["id"] for user in hundred.json()}) == len(hundred.json())


async def test_listed_users_read_back_identically(
    http: httpx.AsyncClient, user_body: Callable[..., dict[str, Any]]
) -> None:
    await create(http, user_body())
    listed = (await http.get("/users", params={"limit": 5})).json()
    assert listed
    for user in listed:
        assert (await http.get(f"/users/{user['id']}")).json() == user


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
async def test_list_limit_out_of_range_is_422(http: httpx.AsyncClient, limit: str) -> None:
    response = await http.get("/users", params={"limit": limit})
    assert response.status_code == 422
    assert [issue["loc"] for issue in response.json()["detail"]] == [["query", "limit"]]
