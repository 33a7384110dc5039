"""`POST /users/batch`: all or nothing, both body forms, bounds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from cqlstar.users.repository import SETTLE_S

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


def longest_valid(user_body: Callable[..., UserBody], n: int, age: int = 42) -> list[UserBody]:
    """n users with the longest valid name (100) and email (254 characters): the largest rows."""
    bodies = []
    for _ in range(n):
        body = user_body(age=age)
        local = body["email"].split("@")[0]
        body["name"] = body["name"].ljust(100, "x")
        # 64-character local part, then DNS labels of up to 63 characters up to 254 in all.
        local = local.ljust(64, "x")
        labels = ["a" * 63, "b" * 63, "c" * 61]
        body["email"] = f"{local}@{'.'.join(labels)}"[: 254 - 3] + ".co"
        assert len(body["email"]) == 254
        bodies.append(body)
    return bodies


async def test_100_users_of_the_largest_valid_size_are_all_written(
    http: httpx.AsyncClient, user_body: Callable[..., UserBody]
) -> None:
    bodies = longest_valid(user_body, 100)
    response = await http.post("/users/batch", json=bodies)

    assert response.status_code == 201, response.text
    users = response.json()["users"]
    assert [(u["name"], u["email"]) for u in users] == [(b["name"], b["email"]) for b in bodies]
    fetched = await asyncio.gather(*(http.get(f"/users/{user['id']}") for user in users))
    assert [answer.json() for answer in fetched] == users


async def test_batches_do_not_make_cassandra_warn(
    live_app: Any, http: httpx.AsyncClient, user_body: Callable[..., UserBody]
) -> None:
    """Cassandra warns about every batch over 5 KiB (`batch_size_warn_threshold`); the driver logs
    the warnings it sends back, so they would show in the service's log."""
    for size in (1, 20, 70):
        response = await http.post("/users/batch", json=longest_valid(user_body, size))
        assert response.status_code == 201, response.text
    await asyncio.sleep(0.5)  # the log is written by another process
    warnings = [
        line for line in live_app.log_text().splitlines() if "Server warning: Batch" in line
    ]
    assert not warnings


async def test_a_batch_that_times_out_leaves_none_of_its_users(
    http: httpx.AsyncClient, user_body: Callable[..., UserBody]
) -> None:
    """All or nothing when the request's budget runs out mid-batch: the answer is 504, and once the
    clean-up has run (SETTLE_S later) none of the users written before the budget ran out remains."""
    bodies = longest_valid(user_body, 100, age=147)
    names = {body["name"] for body in bodies}
    response = await http.post("/users/batch", json=bodies, headers={"X-Request-Timeout": "0.03"})
    if response.status_code == 201:  # a machine fast enough to write 100 users in 30 ms
        assert names <= await names_stored_with_age_at_least(http, 147)
        return
    assert response.status_code == 504, response.text

    deadline = time.monotonic() + SETTLE_S + 15
    while names & await names_stored_with_age_at_least(http, 147):
        assert time.monotonic() < deadline, "the failed batch's users were not removed"
        await asyncio.sleep(0.5)
