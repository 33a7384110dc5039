"""The authenticated caller, as every other concern (routes, limits, the WebSocket API) sees it."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Role(StrEnum):
    """The realm roles routes and WebSocket packages require."""

    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    ADMIN = "admin"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """What a verified access token says about its bearer.

    `subject` (the token's `sub`) is the stable key for per-principal limits; `expires_at` (epoch
    seconds, the token's `exp`) tells a long-lived connection when to ask for a fresh token.
    """

    subject: str
    username: str | None = None
    roles: frozenset[str] = frozenset()
    expires_at: float | None = None
    # The issuer's session (`sid`): logging out ends every token of that session.
    session_id: str | None = None

    def has_role(self, role: Role | str) -> bool:
        return role in self.roles
