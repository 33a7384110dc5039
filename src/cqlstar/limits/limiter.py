"""The service's rate limits: which window each kind of traffic counts in, and failing open.

`RateLimiter` is the one API the rest of the service calls:

- `check_request(principal_key)`: one HTTP request on a route that needs a token (`RATE_LIMIT`);
- `check_login(client_address, username)`: one `POST /login` or `/login/refresh` attempt
  (`LOGIN_RATE_LIMIT`), counted per client address and username;
- `check_ws_message(subject)`: one WebSocket message (`WS_RATE_LIMIT`).

Each returns the window's `Decision`, or None when that limit is off (its setting is 0) or when the
shared store cannot answer: limits then fail open, so the request is served; the failure is logged
once when it starts (by the window) and every request served that way is counted
(`unavailable_total`), and `/health` reports Redis down.

The three kinds count in separate windows: a WebSocket flood does not use up the HTTP budget, nor
the reverse.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from cqlstar.limits.window import Decision, SlidingWindow, WindowUnavailable
from cqlstar.settings import Rate, Settings

LimitKind = Literal["http", "login", "ws"]


class RateLimiter:
    def __init__(self, window: SlidingWindow, settings: Settings) -> None:
        self.window = window
        self.rates: dict[LimitKind, Rate | None] = {
            "http": settings.rate_limit,
            "login": settings.login_rate_limit,
            "ws": settings.ws_rate_limit,
        }
        # Rejections by kind, and checks answered "unknown" because the store was unavailable.
        self.rejected_total: Counter[LimitKind] = Counter()
        self.unavailable_total = 0

    def enabled(self, kind: LimitKind) -> bool:
        return self.rates[kind] is not None

    async def check(self, kind: LimitKind, key: str) -> Decision | None:
        rate = self.rates[kind]
        if rate is None:
            return None
        try:
            decision = await self.window.hit(f"{kind}:{key}", rate)
        except WindowUnavailable:
            self.unavailable_total += 1
            return None
        if not decision.allowed:
            self.rejected_total[kind] += 1
        return decision

    async def check_request(self, principal_key: str) -> Decision | None:
        return await self.check("http", principal_key)

    async def check_login(self, client_address: str, username: str) -> Decision | None:
        # Usernames are case-insensitive at the issuer: "Alice" and "alice" are one account.
        return await self.check("login", f"{client_address}:{username.strip().lower()}")

    async def check_ws_message(self, subject: str) -> Decision | None:
        return await self.check("ws", subject)

    async def close(self) -> None:
        await self.window.close()
