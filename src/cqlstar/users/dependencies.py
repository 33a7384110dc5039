"""What the Users handlers receive by injection: the repository and the parsed user id."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.params import Parameter

from cqlstar.aiocassandra import AsyncSession
from cqlstar.database import CassandraUnavailable
from cqlstar.settings import Settings
from cqlstar.users.page_tokens import PageTokenSigner
from cqlstar.users.repository import UserRepository


class UserRepositoryHolder:
    """The repository for the current Cassandra connection.

    `prepare` is registered as a `CassandraConnection` on_connect hook, so statements are prepared
    once per connection; until then, `current` raises CassandraUnavailable (503), like the session.
    """

    def __init__(self) -> None:
        self._repository: UserRepository | None = None

    async def prepare(self, session: AsyncSession) -> None:
        self._repository = await UserRepository.prepare(session)

    @property
    def current(self) -> UserRepository:
        if self._repository is None:
            raise CassandraUnavailable
        return self._repository


def provide_user_repository(state: State) -> UserRepository:
    holder: UserRepositoryHolder = state.user_repository
    return holder.current


def provide_page_token_signer(settings: NamedDependency[Settings]) -> PageTokenSigner:
    return PageTokenSigner(settings.page_token_secret)


def provide_user_uuid(
    user_id: Annotated[
        str, Parameter(description="The user's id (a UUID)", schema_extra={"format": "uuid"})
    ],
) -> uuid.UUID:
    """Parse the `{user_id}` path segment.

    The path takes the id as a plain string on purpose: Litestar's `uuid` converter answers 404 for a
    malformed id, while the contract says 400 with a specific message.
    """
    try:
        return uuid.UUID(user_id)
    except ValueError:
        raise ClientException(detail="Invalid user ID format") from None
