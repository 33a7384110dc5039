"""What each package does: the same `UserRepository` calls the HTTP routes make.

A handler takes its decoded request and returns the answer's `data` and `meta`, or raises
`PackageFailed` with the status and message the client should see. Failures of Cassandra map to
status 1 with a message that names the kind of failure only (never CQL, values or internals), like
the HTTP error bodies (`cqlstar.web.errors`). A change a handler makes is published to the broadcast
(`UserEvents`) before it answers, like the HTTP routes do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cassandra import InvalidRequest, OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
from cassandra.cluster import NoHostAvailable

from cqlstar.aiocassandra import BudgetExceeded
from cqlstar.database import CassandraUnavailable
from cqlstar.realtime.protocol import (
    CreateUser,
    DeleteUser,
    GetPaginatedUsers,
    GetUser,
    GetUsers,
    PagingMeta,
    Request,
    Status,
    UpdateUser,
    UserEventKind,
)
from cqlstar.users.page_tokens import InvalidPageToken, PageTokenSigner
from cqlstar.users.repository import UserRepository

log = logging.getLogger(__name__)

USER_NOT_FOUND = "User not found"


class PackageFailed(Exception):
    """The request failed in a way the client is told about (`status`, `msg`)."""

    def __init__(self, status: Status, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


# Publishes a user change: (kind, user id, the user or None), see `cqlstar.realtime.broadcast`.
PublishChange = Callable[[UserEventKind, str, Any], Awaitable[None]]


class PackageContext:
    """What the handlers need, resolved once per connection."""

    __slots__ = ("page_tokens", "publish", "repository")

    def __init__(
        self,
        repository: Callable[[], UserRepository],
        page_tokens: PageTokenSigner,
        publish: PublishChange,
    ) -> None:
        self.repository = repository
        self.page_tokens = page_tokens
        self.publish = publish


async def run_package(request: Request, context: PackageContext) -> tuple[Any, Any]:
    """The answer's (data, meta) for `request`; raises PackageFailed for anything else."""
    try:
        return await _dispatch(request, context)
    except PackageFailed:
        raise
    except (CassandraUnavailable, NoHostAvailable, Unavailable):
        raise PackageFailed(Status.ERROR, "Cassandra is unavailable") from None
    except (ReadTimeout, WriteTimeout, OperationTimedOut, BudgetExceeded):
        raise PackageFailed(Status.ERROR, "Timed out") from None
    except InvalidRequest:
        raise PackageFailed(Status.ERROR, "Invalid request for the database") from None
    except Exception as exc:
        log.exception("websocket package failed", extra={"package": type(request).__name__})
        raise PackageFailed(Status.ERROR, f"Failed: {type(exc).__name__}") from None


async def _dispatch(request: Request, context: PackageContext) -> tuple[Any, Any]:
    repository = context.repository()
    match request:
        case GetUser(data=data):
            user = await repository.get(data.user_id)
            if user is None:
                raise PackageFailed(Status.ERROR, USER_NOT_FOUND)
            return user, None
        case GetUsers(data=data):
            return await repository.list_users(data.limit, min_age=data.age_filter), None
        case GetPaginatedUsers(data=data):
            paging_state = None
            if data.page_state is not None:
                try:
                    paging_state = context.page_tokens.open(
                        data.page_state, min_age=data.age_filter, fetch_size=data.fetch_size
                    )
                except InvalidPageToken:
                    raise PackageFailed(
                        Status.INVALID, "data.page_state: not issued for this query"
                    ) from None
            page = await repository.fetch_page(
                fetch_size=data.fetch_size, min_age=data.age_filter, paging_state=paging_state
            )
            token = (
                None
                if page.paging_state is None
                else context.page_tokens.issue(
                    page.paging_state, min_age=data.age_filter, fetch_size=data.fetch_size
                )
            )
            return page.users, PagingMeta(has_more=token is not None, page_state=token)
        case CreateUser(data=data):
            user = await repository.create(data)
            await context.publish(UserEventKind.CREATED, user.id, user)
            return user, None
        case UpdateUser(data=data):
            updated = await repository.update(data.user_id, data)
            if updated is None:
                raise PackageFailed(Status.ERROR, USER_NOT_FOUND)
            await context.publish(UserEventKind.UPDATED, updated.id, updated)
            return updated, None
        case DeleteUser(data=data):
            await repository.delete(data.user_id)
            await context.publish(UserEventKind.DELETED, str(data.user_id), None)
            return None, None
    raise AssertionError(f"no handler for {type(request).__name__}")  # pragma: no cover
