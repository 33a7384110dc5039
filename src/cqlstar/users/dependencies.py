"""What the Users handlers receive by injection: the repository, the creates that honour
`Idempotency-Key`, and the page-token signer."""

from __future__ import annotations

import functools

from litestar.datastructures import State
from litestar.di import NamedDependency

from cqlstar.aiocassandra import AsyncSession
from cqlstar.database import CassandraUnavailable
from cqlstar.services import Services
from cqlstar.settings import Settings
from cqlstar.users.idempotency import UserCreates
from cqlstar.users.page_tokens import PageTokenSigner
from cqlstar.users.repository import UserRepository


class UserRepositoryHolder:
    """The repository for the current Cassandra connection.

    `prepare` is registered as a `CassandraConnection` on_connect hook, so statements are prepared
    once per connection; until then, `current` raises CassandraUnavailable (503), like the session.
    """

    def __init__(self) -> None:
        self._repository: UserRepository | None = None
        self._creates: UserCreates | None = None

    async def prepare(self, session: AsyncSession) -> None:
        repository = await UserRepository.prepare(session)
        self._creates = await UserCreates.prepare(session, repository)
        self._repository = repository

    @property
    def current(self) -> UserRepository:
        if self._repository is None:
            raise CassandraUnavailable
        return self._repository

    @property
    def creates(self) -> UserCreates:
        if self._creates is None:
            raise CassandraUnavailable
        return self._creates


def provide_user_repository(state: State) -> UserRepository:
    return Services.of(state).user_repository.current


def provide_user_creates(state: State) -> UserCreates:
    return Services.of(state).user_repository.creates


def provide_page_token_signer(settings: NamedDependency[Settings]) -> PageTokenSigner:
    return _page_token_signer(settings.page_token_secret)


# A signer depends on nothing but its secret and keeps no per-request state, so one per secret
# serves every request: keyed by the secret rather than held by the provider, so that apps built
# with other settings in the same process (tests do this) each get theirs. A process runs one
# secret; the bound only caps what a test run could accumulate.
@functools.lru_cache(maxsize=8)
def _page_token_signer(secret: bytes) -> PageTokenSigner:
    return PageTokenSigner(secret)
