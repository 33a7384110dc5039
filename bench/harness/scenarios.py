"""The HTTP scenarios wrk drives: each one's Lua script, URL path and a request that proves the
route answers before it is measured. `just bench` measures them; `bench.probes.profile` samples
the service under one of them."""

from __future__ import annotations

from dataclasses import dataclass

from bench.harness.http_floor import FLOOR_PATH

# The scenario the targets compare with the ceilings and measure tracing with.
READ_BY_KEY = "get_user"


@dataclass(frozen=True)
class HttpScenario:
    """How wrk drives one scenario: its script, the URL path, and whether it needs the id pool."""

    script: str
    path: str
    needs_ids: bool
    # A request the harness sends once before measuring, to fail fast on a route that is missing:
    # (method, path or None for "an id from the pool", body, expected status).
    probe: tuple[str, str | None, bytes | None, int]


SCENARIOS: dict[str, HttpScenario] = {
    "get_user": HttpScenario("get_user.lua", "/", True, ("GET", None, None, 200)),
    "list_users": HttpScenario(
        "plain_get.lua", "/users?limit=100", False, ("GET", "/users?limit=100", None, 200)
    ),
    "create_user": HttpScenario(
        "create_user.lua",
        "/",
        False,
        ("POST", "/users", b'{"name":"Bench Probe","email":"probe@example.com","age":30}', 201),
    ),
    "update_user": HttpScenario("update_user.lua", "/", True, ("PATCH", None, b'{"age":31}', 200)),
    "http_floor": HttpScenario("plain_get.lua", FLOOR_PATH, False, ("GET", FLOOR_PATH, None, 200)),
}
