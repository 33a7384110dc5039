"""Many clients at once: every acknowledged create is stored and readable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_200_concurrent_creates_are_all_readable(
    live_app: Any, user_body: Callable[..., dict[str, Any]]
) -> None:
    bodies = [user_body(age=i % 100) for i in range(200)]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=60, limits=limits) as http:
        created = await asyncio.gather(*(http.post("/users", json=body) for body in bodies))
        assert [response.status_code for response in created] == [201] * 200
        users = [response.json() for response in created]
        assert len({user["id"] for user in users}) == 200
        assert [user["email"] for user in users] == [body["email"] for body in bodies]

        fetched = await asyncio.gather(*(http.get(f"/users/{user['id']}") for user in users))
        assert [response.json() for response in fetched] == users
