"""`POST /users/batch`: all or nothing, both body forms, bounds."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

UserBody = dict[str, Any]


async def names_stored_with_age_at_least(http: httpx.AsyncClient, min_age: int) -> set[str]:
    """Every stored user's name with age >= min_age, read through the NDJSON stream."""
    response = await http.get(
        "/users/stream",
        params={"age_filter": min_age, "limit": 1_000_000, "fetch_size": 1000},
        headers={"Accept": "application/x-ndjson"},
    )
    assert response.status_code == 200
    return {json.loads(line)["name"] for line in response.text.splitlines() if line}


@pytest.mark.parametrize("wrap", [False, True], ids=["array", "object"])
async def test_batch_creates_every_user(
    http: httpx.AsyncClient, user_body: Callable[..., UserBody], wrap: bool
) -> None:
    bodies = [user_body(age=60 + i) for i in range(5)]
    response = await http.post("/users/batch", json={"users": bodies} if wrap else bodies)

    assert response.status_code == 201
    answer = response.json()
    assert answer["created"] == 5
    assert [(u["name"], u["email"], u["age"]) for u in answer["users"]] == [
        (b["name"], b["email"], b["age"]) for b in bodies
    ]
    assert len({u["id"] for u in answer["users"]}) == 5
    for user in answer["users"]:
        assert user["created_at"] == user["updated_at"]
        assert (await http.get(f"/users/{user['id']}")).json() == user


async def test_batch_of_exactly_100_is_accepted(
    http: httpx.AsyncClient, user_body: Callable[..., UserBody]
) -> None:
    response = await http.post("/users/batch", json=[user_body() for _ in range(100)])
    assert response.status_code == 201
    assert response.json()["created"] == 100


@pytest.mark.parametrize("wrap", [False, True], ids=["array", "object"])
async def test_one_invalid_item_rejects_the_whole_batch(
    http: httpx.AsyncClient, user_body: Callable[..., UserBody], wrap: bool
) -> None:
    # A distinctive age range, so the check below reads only a handful of rows.
    bodies = [user_body(age=148) for _ in range(5)]
    bodies[3]["email"] = "not-an-address"
    response = await http.post("/users/batch", json={"users": bodies} if wrap else bodies)

    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["loc"] == (["body", "users", 3, "email"] if wrap else ["body", 3, "email"])

    stored = await names_stored_with_age_at_least(http, 148)
    assert not stored & {body["name"] for body in bodies}


@pytest.mark.parametrize(
    "body",
    [[], {"users": []}, "many", {"users": "many"}, {"people": []}, 7],
    ids=["empty-array", "empty-object", "101-array", "101-object", "wrong-key", "number"],
)
async def test_batch_bounds_and_shape(
    http: httpx.AsyncClient, user_body: Callable[..., UserBody], body: Any
) -> None:
    if body == "many":
        body = [user_body() for _ in range(101)]
    elif body == {"users": "many"}:
        body = {"users": [user_body() for _ in range(101)]}
    response = await http.post("/users/batch", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
