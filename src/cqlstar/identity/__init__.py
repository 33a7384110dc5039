"""Who is calling: login at the identity provider, local token checks, and roles per route.

What the other concerns use: `Principal` and `Role`; `opt=requires(role)` on a route that needs a
role and `opt=OPEN_ROUTE` on a route anyone may call; `TokenVerifier.verify(token) -> Principal`
(from `Services.identity`) raising `InvalidToken`.
"""

from cqlstar.identity.guards import requires
from cqlstar.identity.middleware import OPEN_ROUTE
from cqlstar.identity.principal import Principal, Role
from cqlstar.identity.tokens import InvalidToken, TokenVerifier

__all__ = ["OPEN_ROUTE", "InvalidToken", "Principal", "Role", "TokenVerifier", "requires"]
