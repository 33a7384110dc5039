"""`GET /users/stream/pages`: walking the pages, and signed, query-bound page tokens."""

from __future__ import annotations

import base64
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from integration.users.conftest import SeedUsers


pytestmark = pytest.mark.integration

# The page tests own ages 130..139 (see conftest).
PAGES_AGE = 130
INVALID = {"detail": "Invalid page_state"}
UserBody = dict[str, Any]


async def first_token(http: httpx.AsyncClient, params: dict[str, Any]) -> str:
    page = (await http.get("/users/stream/pages", params=params)).json()
    assert page["has_more"] is True
    token: str = page["page_state"]
    return token


async def test_walking_every_page_returns_each_user_once(
    http: httpx.AsyncClient, seed_users: SeedUsers
) -> None:
    # Three ages >= PAGES_AGE, so the filter spans several index values.
    mine = set()
    for offset in range(3):
        mine |= await seed_users(12, PAGES_AGE + offset)
    params: dict[str, Any] = {"age_filter": PAGES_AGE, "fetch_size": 10}

    seen: Counter[str] = Counter()
    pages = 0
    while True:
        response = await http.get("/users/stream/pages", params=params)
        assert response.status_code == 200
        page = response.json()
        pages += 1
        assert set(page) == {"users", "has_more", "page_state"}
        assert len(page["users"]) <= 10
        assert all(user["age"] >= PAGES_AGE for user in page["users"])
        seen.update(user["id"] for user in page["users"])
        if not page["has_more"]:
            assert page["page_state"] is None
            break
        assert re.fullmatch(r"[A-Za-z0-9_-]+", page["page_state"])
        params["page_state"] = page["page_state"]
        assert pages < 1000, "the walk never ends"

    assert mine <= set(seen)
    assert max(seen.values()) == 1
    assert pages >= 4  # 36 of our own users at 10 a page


async def test_first_page_without_state(http: httpx.AsyncClient) -> None:
    response = await http.get("/users/stream/pages", params={"fetch_size": 10})
    assert response.status_code == 200
    page = response.json()
    assert len(page["users"]) <= 10
    assert page["has_more"] is (page["page_state"] is not None)


@pytest.mark.parametrize(
    "forged",
    [
        "AAAA",
        "bm90IGEgcmVhbCBzdGF0ZQ",
        "!!!",
        "x" * 200,
        base64.urlsafe_b64encode(b"\x01" * 40).decode(),
    ],
)
async def test_forged_page_state_is_400(http: httpx.AsyncClient, forged: str) -> None:
    response = await http.get(
        "/users/stream/pages", params={"page_state": forged, "age_filter": PAGES_AGE}
    )
    assert response.status_code == 400
    assert response.json() == INVALID


async def test_tampered_page_state_is_400(http: httpx.AsyncClient, seed_users: SeedUsers) -> None:
    await seed_users(12, PAGES_AGE + 5)
    params = {"age_filter": PAGES_AGE + 5, "fetch_size": 10}
    token = await first_token(http, params)
    tampered = token[:8] + ("A" if token[8] != "A" else "B") + token[9:]

    response = await http.get("/users/stream/pages", params={**params, "page_state": tampered})
    assert response.status_code == 400
    assert response.json() == INVALID


@pytest.mark.parametrize(
    "changed",
    [{"age_filter": PAGES_AGE + 7}, {"age_filter": None}, {"fetch_size": 11}],
    ids=["other-age", "no-age", "other-fetch-size"],
)
async def test_page_state_is_bound_to_its_query(
    http: httpx.AsyncClient, seed_users: SeedUsers, changed: dict[str, Any]
) -> None:
    await seed_users(12, PAGES_AGE + 6)
    params = {"age_filter": PAGES_AGE + 6, "fetch_size": 10}
    token = await first_token(http, params)
    # The same token still works for its own query...
    assert (
        await http.get("/users/stream/pages", params={**params, "page_state": token})
    ).status_code == 200

    reused = {k: v for k, v in {**params, **changed, "page_state": token}.items() if v is not None}
    response = await http.get("/users/stream/pages", params=reused)
    assert response.status_code == 400
    assert response.json() == INVALID


@pytest.mark.parametrize(
    ("params", "loc"),
    [({"fetch_size": 9}, ["query", "fetch_size"]), ({"age_filter": 151}, ["query", "age_filter"])],
)
async def test_page_parameters_out_of_range_are_422(
    http: httpx.AsyncClient, params: dict[str, Any], loc: list[str]
) -> None:
    response = await http.get("/users/stream/pages", params=params)
    assert response.status_code == 422
    assert [issue["loc"] for issue in response.json()["detail"]] == [loc]
