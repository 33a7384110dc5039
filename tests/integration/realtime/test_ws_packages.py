"""The six packages over a real WebSocket against the granian-served service: each answers like its
HTTP route, through the same repository, and its changes reach readers."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import pytest

from served import ServedApp
from ws_client import ws_connect

pytestmark = pytest.mark.integration

_unique = itertools.count()


def new_user(age: int = 40) -> dict[str, Any]:
    n = next(_unique)
    tag = uuid.uuid4().hex[:8]
    return {"name": f"WS User {tag} {n}", "email": f"ws.{tag}.{n}@example.com", "age": age}


async def test_create_then_get_matches_http(live_app: ServedApp, http: httpx.AsyncClient) -> None:
    async with ws_connect(live_app.base_url) as ws:
        body = new_user()
        created = await ws.request(3, body)
        assert created["status_code"] == 0, created
        assert created["pkg_id"] == 3
        assert created["meta"] is None
        assert created["msg"] is None
        user = created["data"]
        assert {k: user[k] for k in body} == body
        got = await ws.request(4, {"id": user["id"]})
        assert got["status_code"] == 0
        assert got["data"] == user
        # The HTTP route reads the same row, byte for byte the same fields.
        assert (await http.get(f"/users/{user['id']}")).json() == user


async def test_answer_echoes_the_request_id(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        req_id = str(uuid.uuid4()).upper()
        answer = await ws.request(1, {"limit": 1}, req_id=req_id)
        assert answer["req_id"] == req_id
        assert set(answer) == {"pkg_id", "req_id", "status_code", "data", "meta", "msg"}


async def test_get_missing_user_is_status_1(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        answer = await ws.request(4, {"id": str(uuid.uuid4())})
        assert answer["status_code"] == 1
        assert answer["msg"] == "User not found"
        assert answer["data"] is None


async def test_update_changes_only_the_fields_sent(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        user = (await ws.request(3, new_user(age=41)))["data"]
        updated = await ws.request(5, {"id": user["id"], "age": 42})
        assert updated["status_code"] == 0, updated
        assert updated["data"]["age"] == 42
        assert updated["data"]["name"] == user["name"]
        assert updated["data"]["created_at"] == user["created_at"]
        assert (await ws.request(4, {"id": user["id"]}))["data"]["age"] == 42


async def test_update_needs_a_field_and_an_existing_user(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        empty = await ws.request(5, {"id": str(uuid.uuid4())})
        assert empty["status_code"] == 2
        assert empty["msg"].startswith("data:")
        assert "at least one of name, email, age" in empty["msg"]
        missing = await ws.request(5, {"id": str(uuid.uuid4()), "name": "Nobody"})
        assert missing["status_code"] == 1
        assert missing["msg"] == "User not found"


async def test_delete_removes_the_user_and_is_idempotent(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        user = (await ws.request(3, new_user()))["data"]
        deleted = await ws.request(6, {"id": user["id"]})
        assert deleted == {
            "pkg_id": 6,
            "req_id": deleted["req_id"],
            "status_code": 0,
            "data": None,
            "meta": None,
            "msg": None,
        }
        assert (await ws.request(4, {"id": user["id"]}))["status_code"] == 1
        assert (await ws.request(6, {"id": user["id"]}))["status_code"] == 0


async def test_get_users_limit_and_age_filter(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        for _ in range(3):
            assert (await ws.request(3, new_user(age=149)))["status_code"] == 0
        limited = await ws.request(1, {"limit": 2})
        assert limited["status_code"] == 0
        assert len(limited["data"]) == 2
        old = await ws.request(1, {"limit": 100, "age_filter": 149})
        assert old["status_code"] == 0
        assert len(old["data"]) >= 3
        assert all(user["age"] >= 149 for user in old["data"])
        default = await ws.request(1)
        assert default["status_code"] == 0
        assert len(default["data"]) <= 10


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"limit": 0}, "data.limit"),
        ({"limit": 101}, "data.limit"),
        ({"limit": "ten"}, "data.limit"),
        ({"age_filter": 151}, "data.age_filter"),
    ],
)
async def test_get_users_bounds(live_app: ServedApp, data: dict[str, Any], field: str) -> None:
    async with ws_connect(live_app.base_url) as ws:
        answer = await ws.request(1, data)
        assert answer["status_code"] == 2
        assert answer["msg"].startswith(f"{field}:"), answer["msg"]


async def test_paginated_walk_returns_each_user_once(live_app: ServedApp) -> None:
    age = 147
    async with ws_connect(live_app.base_url) as ws:
        mine = set()
        for _ in range(25):
            mine.add((await ws.request(3, new_user(age=age)))["data"]["id"])
        seen: list[str] = []
        page_state = None
        pages = 0
        while True:
            data: dict[str, Any] = {"fetch_size": 10, "age_filter": age}
            if page_state is not None:
                data["page_state"] = page_state
            page = await ws.request(2, data)
            assert page["status_code"] == 0, page
            pages += 1
            seen += [user["id"] for user in page["data"] if user["age"] == age]
            assert set(page["meta"]) == {"has_more", "page_state"}
            if not page["meta"]["has_more"]:
                assert page["meta"]["page_state"] is None
                break
            page_state = page["meta"]["page_state"]
        assert pages >= 3
        assert mine <= set(seen)
        assert len(seen) == len(set(seen))


async def test_page_state_is_bound_to_its_query(live_app: ServedApp) -> None:
    async with ws_connect(live_app.base_url) as ws:
        for _ in range(12):
            await ws.request(3, new_user(age=146))
        first = await ws.request(2, {"fetch_size": 10, "age_filter": 146})
        token = first["meta"]["page_state"]
        assert token is not None
        other = await ws.request(2, {"fetch_size": 11, "age_filter": 146, "page_state": token})
        assert other["status_code"] == 2
        assert other["msg"].startswith("data.page_state:")
        forged = await ws.request(2, {"fetch_size": 10, "page_state": "AAAA"})
        assert forged["status_code"] == 2


async def test_page_tokens_are_the_http_ones(live_app: ServedApp, http: httpx.AsyncClient) -> None:
    async with ws_connect(live_app.base_url) as ws:
        for _ in range(12):
            await ws.request(3, new_user(age=145))
        first = await ws.request(2, {"fetch_size": 10, "age_filter": 145})
        token = first["meta"]["page_state"]
        response = await http.get(
            "/users/stream/pages", params={"fetch_size": 10, "age_filter": 145, "page_state": token}
        )
        assert response.status_code == 200, response.text
        ws_next = await ws.request(2, {"fetch_size": 10, "age_filter": 145, "page_state": token})
        assert [u["id"] for u in ws_next["data"]] == [u["id"] for u in response.json()["users"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "email": "a@example.com", "age": 1}, "data.name"),
        ({"name": "A", "email": "not-an-email", "age": 1}, "data.email"),
        ({"name": "A", "email": "a@example.com", "age": 151}, "data.age"),
        ({"name": "A", "email": "a@example.com"}, "data"),
    ],
)
async def test_create_validation_names_the_field(
    live_app: ServedApp, body: dict[str, Any], field: str
) -> None:
    async with ws_connect(live_app.base_url) as ws:
        answer = await ws.request(3, body)
        assert answer["status_code"] == 2
        assert answer["pkg_id"] == 3
        assert answer["msg"].startswith(f"{field}:"), answer["msg"]
        if field == "data":
            assert "age" in answer["msg"]


async def test_requests_on_one_connection_run_concurrently(live_app: ServedApp) -> None:
    import asyncio

    async with ws_connect(live_app.base_url) as ws:
        user = (await ws.request(3, new_user()))["data"]
        answers = await asyncio.gather(*(ws.request(4, {"id": user["id"]}) for _ in range(50)))
        assert {a["status_code"] for a in answers} == {0}
        assert len({a["req_id"] for a in answers}) == 50
