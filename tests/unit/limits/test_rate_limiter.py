"""`RateLimiter`: the kinds count apart, limits set to 0 are off, and an unavailable store fails open."""

from __future__ import annotations

from cqlstar.limits import Decision, InProcessWindow, RateLimiter, WindowUnavailable
from cqlstar.settings import Rate, Settings


class DownWindow:
    async def hit(self, key: str, rate: Rate) -> Decision:
        raise WindowUnavailable

    async def close(self) -> None:
        return None


async def test_kinds_count_in_separate_windows_and_rejections_are_counted() -> None:
    settings = Settings(rate_limit=Rate(1, 60), login_rate_limit=Rate(1, 60), ws_rate_limit=None)
    limiter = RateLimiter(InProcessWindow(), settings)
    first = await limiter.check_request("sub:alice")
    assert first is not None
    assert first.allowed
    second = await limiter.check_request("sub:alice")
    assert second is not None
    assert not second.allowed
    login = await limiter.check_login("127.0.0.1", "Alice")
    assert login is not None
    assert login.allowed
    again = await limiter.check_login("127.0.0.1", " alice ")
    assert again is not None
    assert not again.allowed
    other_address = await limiter.check_login("127.0.0.2", "alice")
    assert other_address is not None
    assert other_address.allowed
    assert await limiter.check_ws_message("alice") is None  # WS_RATE_LIMIT=0: off
    assert limiter.rejected_total == {"http": 1, "login": 1}


async def test_an_unavailable_store_fails_open_and_is_counted() -> None:
    limiter = RateLimiter(DownWindow(), Settings())
    assert await limiter.check_request("sub:alice") is None
    assert await limiter.check_ws_message("alice") is None
    assert limiter.unavailable_total == 2
    assert sum(limiter.rejected_total.values()) == 0


def test_the_limit_and_the_token_check_agree_on_which_routes_are_open() -> None:
    from cqlstar.identity.middleware import OPEN_ROUTE_KEY as TOKEN_CHECK_KEY
    from cqlstar.limits.middleware import OPEN_ROUTE_KEY

    assert OPEN_ROUTE_KEY == TOKEN_CHECK_KEY
