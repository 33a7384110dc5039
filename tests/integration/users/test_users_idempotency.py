"""`Idempotency-Key` on `POST /users` and `POST /users/batch`, over HTTP against the served service.

The users written here have age 146 (no other suite uses it), and every check counts the rows of
its own unique names straight in the table: a replay must add none.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cassandra.cluster import Session

from cqlstar.users.idempotency import KEY_TTL_S, fingerprint
from cqlstar.users.repository import SETTLE_S
from cqlstar.users.schemas import UserCreate
from served import ServedApp, serve_app, stop_app

pytestmark = pytest.mark.integration

AGE = 146
UserBody = dict[str, Any]


def stored_names(users_table: Session) -> list[str]:
    """Every stored name of age AGE, one entry per row (so duplicates show)."""
    return [
        row.name for row in users_table.execute("SELECT name FROM users WHERE age = %s", (AGE,))
    ]


def key() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def body(user_body: Callable[..., UserBody]) -> Callable[[], UserBody]:
    return lambda: user_body(age=AGE)


async def test_a_retry_returns_the_first_answer_and_writes_nothing(
    http: httpx.AsyncClient, users_table: Session, body: Callable[[], UserBody]
) -> None:
    user, headers = body(), {"Idempotency-Key": key()}
    first = await http.post("/users", json=user, headers=headers)
    assert first.status_code == 201
    assert "idempotency-replayed" not in first.headers

    again = await http.post("/users", json=user, headers=headers)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotency-replayed"] == "true"
    assert stored_names(users_table).count(user["name"]) == 1

    # Without a key, or with another, the same body is a new user.
    assert (await http.post("/users", json=user)).json()["id"] != first.json()["id"]
    other = await http.post("/users", json=user, headers={"Idempotency-Key": key()})
    assert other.json()["id"] != first.json()["id"]
    assert stored_names(users_table).count(user["name"]) == 3


async def test_a_batch_retry_returns_the_same_ids_in_either_body_form(
    http: httpx.AsyncClient, users_table: Session, body: Callable[[], UserBody]
) -> None:
    users, headers = [body() for _ in range(30)], {"Idempotency-Key": key()}
    first = await http.post("/users/batch", json=users, headers=headers)
    assert first.status_code == 201
    # Same users, the object form and insignificant differences (an ignored field, key order):
    # the same request.
    again_users = [{"extra": 1, **dict(reversed(user.items()))} for user in users]
    again = await http.post("/users/batch", json={"users": again_users}, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    names = stored_names(users_table)
    assert all(names.count(user["name"]) == 1 for user in users)


@pytest.mark.parametrize("route", ["/users", "/users/batch"])
async def test_the_same_key_with_another_body_is_refused(
    http: httpx.AsyncClient, users_table: Session, body: Callable[[], UserBody], route: str
) -> None:
    def payload(user: UserBody) -> Any:
        return user if route == "/users" else [user]

    first_user, other_user, headers = body(), body(), {"Idempotency-Key": key()}
    assert (await http.post(route, json=payload(first_user), headers=headers)).status_code == 201

    refused = await http.post(route, json=payload(other_user), headers=headers)
    assert refused.status_code == 422
    [issue] = refused.json()["detail"]
    assert issue["loc"] == ["header", "Idempotency-Key"]
    assert other_user["name"] not in stored_names(users_table)


async def test_keys_are_per_operation(
    http: httpx.AsyncClient, body: Callable[[], UserBody]
) -> None:
    user, headers = body(), {"Idempotency-Key": key()}
    single = await http.post("/users", json=user, headers=headers)
    batch = await http.post("/users/batch", json=[user], headers=headers)
    assert (single.status_code, batch.status_code) == (201, 201)
    assert batch.json()["users"][0]["id"] != single.json()["id"]


@pytest.mark.parametrize("value", ["", "has space", "x" * 256, "caf\u00e9"])
async def test_a_malformed_key_is_refused(
    http: httpx.AsyncClient, users_table: Session, body: Callable[[], UserBody], value: str
) -> None:
    user = body()
    response = await http.post("/users", json=user, headers={"Idempotency-Key": value.encode()})
    assert response.status_code == 422, response.text
    assert user["name"] not in stored_names(users_table)


async def test_concurrent_requests_with_one_key_write_once(
    http: httpx.AsyncClient, users_table: Session, body: Callable[[], UserBody]
) -> None:
    users, headers = [body() for _ in range(20)], {"Idempotency-Key": key()}
    answers = await asyncio.gather(
        *(http.post("/users/batch", json=users, headers=headers) for _ in range(6))
    )
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    for answer in answers:
        if answer.status_code == 409:
            assert int(answer.headers["retry-after"]) >= 1
    assert len({answer.content for answer in answers if answer.status_code == 201}) == 1
    names = stored_names(users_table)
    assert all(names.count(user["name"]) == 1 for user in users)


async def test_a_retry_after_a_timeout_never_duplicates(
    http: httpx.AsyncClient, users_table: Session, body: Callable[[], UserBody]
) -> None:
    """The first attempt runs out of budget mid-batch (504). Retrying with the key until it
    answers 201 leaves each user stored exactly once, whatever the first attempt had written."""
    users, headers = [body() for _ in range(100)], {"Idempotency-Key": key()}
    first = await http.post(
        "/users/batch", json=users, headers={**headers, "X-Request-Timeout": "0.03"}
    )
    assert first.status_code in {201, 504}

    deadline = time.monotonic() + SETTLE_S + 30
    while True:
        retry = await http.post("/users/batch", json=users, headers=headers)
        if retry.status_code != 409:
            break
        assert time.monotonic() < deadline, "the key stayed in use"
        await asyncio.sleep(float(retry.headers["retry-after"]))
    assert retry.status_code == 201
    if first.status_code == 201:
        assert retry.json() == first.json()
    # Past the settling time, a clean-up of the first attempt has run if there was one.
    await asyncio.sleep(SETTLE_S + 1)
    names = stored_names(users_table)
    assert [names.count(user["name"]) for user in users] == [1] * len(users)
    ids = [user["id"] for user in retry.json()["users"]]
    fetched = await asyncio.gather(*(http.get(f"/users/{user_id}") for user_id in ids))
    assert {answer.status_code for answer in fetched} == {200}


async def test_a_key_left_unfinished_by_a_stopped_process_is_taken_over(
    http: httpx.AsyncClient, users_table: Session, body: Callable[[], UserBody]
) -> None:
    """A process that stopped after claiming a key and writing some of the users leaves the
    record `writing`; once its lease is over, a retry finishes the write under the record's ids."""
    users = [body() for _ in range(3)]
    the_key, ids, created = key(), [uuid.uuid4() for _ in users], int(time.time() * 1000) - 120_000
    print_ = fingerprint("create users", [UserCreate(**user) for user in users])
    users_table.execute(
        "INSERT INTO idempotency_keys (operation, principal, key, fingerprint, user_ids, "
        "created_at, state, owner, claimed_at) VALUES (%s, '', %s, %s, %s, %s, 'writing', %s, %s) "
        "IF NOT EXISTS USING TTL %s",
        ("create users", the_key, print_, ids, created, uuid.uuid4(), created, KEY_TTL_S),
    )
    # The stopped process had written the first user.
    users_table.execute(
        "INSERT INTO users (id, name, email, age, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) IF NOT EXISTS",
        (ids[0], users[0]["name"], users[0]["email"], AGE, created, created),
    )

    response = await http.post("/users/batch", json=users, headers={"Idempotency-Key": the_key})
    assert response.status_code == 201, response.text
    assert [user["id"] for user in response.json()["users"]] == [str(i) for i in ids]
    names = stored_names(users_table)
    assert [names.count(user["name"]) for user in users] == [1, 1, 1]
    replay = await http.post("/users/batch", json=users, headers={"Idempotency-Key": the_key})
    assert replay.json() == response.json()


async def test_keys_survive_a_restart_and_work_across_processes(
    live_app: ServedApp,
    app_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    users_table: Session,
    body: Callable[[], UserBody],
) -> None:
    user, headers = body(), {"Idempotency-Key": key()}
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=30) as http:
        first = await http.post("/users", json=user, headers=headers)
    assert first.status_code == 201

    for n in range(2):  # another process, then another again: as after a restart
        other = serve_app(app_env, tmp_path_factory.mktemp("idempotency") / f"server-{n}.log")
        try:
            async with httpx.AsyncClient(base_url=other.base_url, timeout=30) as http:
                again = await http.post("/users", json=user, headers=headers)
        finally:
            stop_app(other)
        assert again.status_code == 201
        assert again.content == first.content
    assert stored_names(users_table).count(user["name"]) == 1
