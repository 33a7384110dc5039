"""Login attempts: `LOGIN_RATE_LIMIT` per client address and username, for the login routes.

The login routes are open (no token, so no principal), and the username is in the body, so the
check runs in the handler once the body is read, and before the issuer is asked: over the limit the
answer is 429 and the issuer never sees the attempt. One call does it all:

    headers = await check_login_attempt(request, username)

raises the 429 (`{"detail": "Rate limit exceeded"}`, `Retry-After`, the `X-RateLimit-*` headers),
or returns the headers for the route to put on whatever it answers, its own errors included.

The username is the one the client typed, compared case-insensitively: only the issuer knows which
account it names, so where the issuer also takes an account's email address (Keycloak does by
default) that account has two windows per address, `alice` and `alice@example.com`. Accepted: it
doubles the attempts on one account from one address, and closing it would mean asking the issuer.

`POST /login/refresh` carries no username (only the issuer can read its refresh token), so its
attempts count per client address alone, in a window of their own (`username=None`). A body that
cannot be read at all (422) is not counted: there is no username to count it for.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException

from cqlstar.limits.middleware import REJECTED_DETAIL
from cqlstar.services import Services

# A route whose handler calls `check_login_attempt` (its OpenAPI then documents 429).
LOGIN_LIMITED_KEY = "login_rate_limited"
_REFRESH_WINDOW = "\x00refresh"


async def check_login_attempt(
    request: Request[Any, Any, Any], username: str | None
) -> dict[str, str]:
    limiter = Services.of(request.app.state).rate_limiter
    address = request.client.host if request.client else "unknown"
    decision = await limiter.check_login(address, _REFRESH_WINDOW if username is None else username)
    if decision is None:
        return {}
    headers = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_s),
    }
    if not decision.allowed:
        raise TooManyRequestsException(
            detail=REJECTED_DETAIL,
            headers={**headers, "Retry-After": str(decision.retry_after_s)},
        )
    return headers
