"""HTTP routes of the Users resource. Thin on purpose: parse, call the repository, shape the answer.

Validation is declared on the types (`cqlstar.users.schemas`, query `Parameter`s) and failures become
responses in `cqlstar.web.errors`; Cassandra access lives in `cqlstar.users.repository`.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Reference, Schema
from litestar.params import Body, JSONBody, Parameter
from litestar.response import Stream
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_503_SERVICE_UNAVAILABLE,
    HTTP_504_GATEWAY_TIMEOUT,
)

from cqlstar.identity import Role, requires
from cqlstar.services import Services
from cqlstar.users.dependencies import (
    provide_page_token_signer,
    provide_user_creates,
    provide_user_repository,
)
from cqlstar.users.idempotency import (
    REPLAYED_HEADER,
    IdempotencyKeyHeader,
    UserCreates,
    principal_of,
)
from cqlstar.users.page_tokens import InvalidPageToken, PageTokenSigner
from cqlstar.users.repository import UserRepository
from cqlstar.users.schemas import (
    MAX_BATCH,
    MIN_BATCH,
    BatchCreated,
    BatchItems,
    User,
    UserBatch,
    UserCreate,
    UserPage,
    UserStreamDocument,
    UserUpdate,
)
from cqlstar.users.streaming import (
    NDJSON_MEDIA_TYPE,
    json_document,
    ndjson_lines,
    start_stream,
)
from cqlstar.web.schemas import ErrorDetail, ValidationErrorDetail

USER_NOT_FOUND = "User not found"

_INVALID = ResponseSpec(ValidationErrorDetail, description="The request does not validate")
_BAD_ID = ResponseSpec(ErrorDetail, description="The user id is not a UUID")
_NOT_FOUND = ResponseSpec(ErrorDetail, description="No user has this id")
_UNAVAILABLE = ResponseSpec(
    ErrorDetail, description="Cassandra cannot be reached (a Retry-After header says when to retry)"
)
_STREAM_UNAVAILABLE = ResponseSpec(
    ErrorDetail,
    description=(
        "Cassandra cannot be reached, or this worker serves its maximum of streams already "
        "(a Retry-After header says when to retry)"
    ),
)
_TIMED_OUT = ResponseSpec(ErrorDetail, description="Cassandra or the request budget timed out")
_COMMON: dict[int, ResponseSpec] = {
    HTTP_503_SERVICE_UNAVAILABLE: _UNAVAILABLE,
    HTTP_504_GATEWAY_TIMEOUT: _TIMED_OUT,
}
_BY_ID: dict[int, ResponseSpec] = {HTTP_400_BAD_REQUEST: _BAD_ID, **_COMMON}
# Routes with a body answer 415 to one that is not JSON (`cqlstar.web.inputs`).
_NOT_JSON: dict[int, ResponseSpec] = {
    HTTP_415_UNSUPPORTED_MEDIA_TYPE: ResponseSpec(
        ErrorDetail, description="The body is not `application/json` (or Content-Type is missing)"
    )
}
_CREATE_RESPONSES: dict[int, ResponseSpec] = {
    **_NOT_JSON,
    HTTP_409_CONFLICT: ResponseSpec(
        ErrorDetail,
        description=(
            "Another request with this Idempotency-Key is in progress "
            "(a Retry-After header says when to retry)"
        ),
    ),
    HTTP_422_UNPROCESSABLE_ENTITY: ResponseSpec(
        ValidationErrorDetail,
        description="The request does not validate, or its Idempotency-Key was used with another",
    ),
    **_COMMON,
}

ListLimit = Annotated[
    int, Parameter(ge=1, le=100, description="How many users to return (1 to 100)")
]
StreamLimit = Annotated[
    int, Parameter(ge=1, le=1_000_000, description="The most users to stream (1 to 1,000,000)")
]
FetchSize = Annotated[
    int,
    Parameter(
        ge=10,
        le=5000,
        description="Rows per Cassandra page (10 to 5000): what the server holds at a time",
    ),
]
# The id is taken as a plain string and parsed by `parse_user_id`: Litestar's `uuid` path converter
# answers 404 for a malformed id, while the contract says 400 with a specific message. Parsing in the
# handler rather than in a dependency provider also keeps these routes at one dependency, which
# Litestar resolves inline instead of in a task group per request (measured: ~55 µs per request).
UserIdPath = Annotated[
    str,
    Parameter(
        description="The user's id: a UUID in its canonical 8-4-4-4-12 form",
        schema_extra={"format": "uuid"},
    ),
]
MinAge = Annotated[
    int | None,
    Parameter(
        ge=0,
        le=150,
        description="Only users with age >= this value (0 to 150)",
        # Litestar's schema generator skips a bound of 0 on an optional parameter: state it again.
        schema_extra={"minimum": 0},
    ),
]


BATCH_BODY_FORMS = [
    Schema(
        type=OpenAPIType.ARRAY,
        items=Reference(ref="#/components/schemas/UserCreate"),
        min_items=MIN_BATCH,
        max_items=MAX_BATCH,
    ),
    Reference(ref="#/components/schemas/UserBatch"),
]

# "At least one of name, email, age" (`UserUpdate.__post_init__`) has no msgspec constraint that
# Litestar could document, so the request body schema states it: `minProperties` and one `required`
# field out of the three.
UpdateBody = Annotated[
    UserUpdate,
    Body(
        media_type=RequestEncodingType.JSON,
        schema_extra={
            "minProperties": 1,
            "anyOf": [Schema(required=[field]) for field in ("name", "email", "age")],
        },
    ),
]


# PUT and PATCH are one operation (README, API): one route declaration, two methods.
_UPDATE_ROUTE: dict[str, Any] = {
    "path": "/{user_id:str}",
    "responses": {
        HTTP_404_NOT_FOUND: _NOT_FOUND,
        HTTP_422_UNPROCESSABLE_ENTITY: _INVALID,
        **_NOT_JSON,
        **_BY_ID,
    },
    "opt": {**requires(Role.USERS_WRITE), "operation": "update user"},
}


class UserController(Controller):
    path = "/users"
    tags = ["users"]
    dependencies = {
        "repository": Provide(provide_user_repository, sync_to_thread=False),
        "creates": Provide(provide_user_creates, sync_to_thread=False),
        "page_tokens": Provide(provide_page_token_signer, sync_to_thread=False),
    }

    @post(
        operation_id="createUser",
        summary="Create a user",
        status_code=HTTP_201_CREATED,
        responses=_CREATE_RESPONSES,
        opt={**requires(Role.USERS_WRITE), "operation": "create user"},
    )
    async def create_user(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[UserCreate],
        creates: NamedDependency[UserCreates],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[User]:
        """Stores a new user under a server-generated UUID; `created_at` equals `updated_at`.

        The `Location` header points at the new user. With an `Idempotency-Key`, a retry with the
        same key and body answers the first answer and writes nothing more."""
        user, replayed = await creates.create(
            data, key=idempotency_key, principal=principal_of(request.scope.get("user"))
        )
        headers = {"Location": f"/users/{user.id}"}
        if replayed:
            headers[REPLAYED_HEADER] = "true"
        else:
            await _publish(request.app.state, "created", user.id, user)
        return Response(user, status_code=HTTP_201_CREATED, headers=headers)

    @get(
        operation_id="listUsers",
        summary="List users",
        responses={HTTP_422_UNPROCESSABLE_ENTITY: _INVALID, **_COMMON},
        opt={**requires(Role.USERS_READ), "operation": "list users"},
    )
    async def list_users(
        self, repository: NamedDependency[UserRepository], limit: ListLimit = 10
    ) -> list[User]:
        """Up to `limit` users, in Cassandra's storage (token) order. For more, use the stream
        routes."""
        return await repository.list_users(limit)

    @get(
        "/{user_id:str}",
        operation_id="getUser",
        summary="Get a user",
        responses={HTTP_404_NOT_FOUND: _NOT_FOUND, **_BY_ID},
        opt={**requires(Role.USERS_READ), "operation": "get user"},
    )
    async def get_user(
        self, user_id: UserIdPath, repository: NamedDependency[UserRepository]
    ) -> User:
        """The user with this id."""
        user = await repository.get(parse_user_id(user_id))
        if user is None:
            raise NotFoundException(detail=USER_NOT_FOUND)
        return user

    @put(**_UPDATE_ROUTE, operation_id="replaceUser", summary="Update a user")
    async def put_user(
        self,
        user_id: UserIdPath,
        data: UpdateBody,
        repository: NamedDependency[UserRepository],
        state: State,
    ) -> User:
        """Same as PATCH: the fields sent replace the stored ones, the others are kept (at least one
        field is required). `updated_at` moves, `created_at` does not. A user deleted meanwhile is
        never re-created: the answer is then 404."""
        return await _update(repository, parse_user_id(user_id), data, state)

    @patch(**_UPDATE_ROUTE, operation_id="updateUser", summary="Partially update a user")
    async def patch_user(
        self,
        user_id: UserIdPath,
        data: UpdateBody,
        repository: NamedDependency[UserRepository],
        state: State,
    ) -> User:
        """Changes the fields sent (at least one) and keeps the others. `updated_at` moves,
        `created_at` does not. A user deleted meanwhile is never re-created: the answer is then
        404."""
        return await _update(repository, parse_user_id(user_id), data, state)

    @delete(
        "/{user_id:str}",
        operation_id="deleteUser",
        summary="Delete a user",
        responses=_BY_ID,
        opt={**requires(Role.USERS_WRITE), "operation": "delete user"},
    )
    async def delete_user(
        self, user_id: UserIdPath, repository: NamedDependency[UserRepository], state: State
    ) -> None:
        """Idempotent: deleting a user that does not exist also answers 204."""
        parsed = parse_user_id(user_id)
        await repository.delete(parsed)
        await _publish(state, "deleted", str(parsed), None)

    @post(
        "/batch",
        operation_id="createUsers",
        summary="Create up to 100 users at once",
        status_code=HTTP_201_CREATED,
        responses=_CREATE_RESPONSES,
        opt={**requires(Role.USERS_WRITE), "operation": "create users"},
    )
    async def create_users(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[
            BatchItems | UserBatch,
            Body(
                description='1 to 100 users: a JSON array, or an object `{"users": [...]}`',
                # Litestar leaves the array form's bounds out of the document; state them.
                schema_extra={"oneOf": BATCH_BODY_FORMS},
            ),
        ],
        creates: NamedDependency[UserCreates],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[BatchCreated]:
        """The body is a JSON array of users, or `{"users": [...]}`; 1 to 100 of them. If any item
        is invalid the answer is 422 (its `loc` names the item's index) and nothing is written.
        All or nothing: if writing any of them fails, the ones written are deleted again shortly
        after the error answer."""
        new_users = data.users if isinstance(data, UserBatch) else data
        created, replayed = await creates.create_many(
            new_users, key=idempotency_key, principal=principal_of(request.scope.get("user"))
        )
        if not replayed:
            for user in created:
                await _publish(request.app.state, "created", user.id, user)
        return Response(
            BatchCreated(created=len(created), users=created),
            status_code=HTTP_201_CREATED,
            headers={REPLAYED_HEADER: "true"} if replayed else None,
        )

    @get(
        "/stream",
        operation_id="streamUsers",
        summary="Stream many users",
        responses={
            HTTP_200_OK: ResponseSpec(
                UserStreamDocument,
                description=(
                    "A JSON document sent while it is read, the metadata last; with "
                    "`Accept: application/x-ndjson`, one user per line instead"
                ),
            ),
            HTTP_422_UNPROCESSABLE_ENTITY: _INVALID,
            **_COMMON,
            HTTP_503_SERVICE_UNAVAILABLE: _STREAM_UNAVAILABLE,
        },
        opt={**requires(Role.USERS_READ), "operation": "stream users"},
    )
    async def stream_users(
        self,
        request: Request[Any, Any, Any],
        repository: NamedDependency[UserRepository],
        limit: StreamLimit = 1000,
        fetch_size: FetchSize = 100,
        age_filter: MinAge = None,
    ) -> Stream:
        """Reads Cassandra page by page (`fetch_size` rows each) and sends each page as it arrives,
        at the pace the client reads: the server's memory stays bounded however many users are
        streamed. A client that disconnects stops the read. Each worker serves a bounded number of
        streams at once (`CQLSTAR_MAX_STREAMS`); beyond it the answer is 503 with Retry-After."""
        # JSON first: a client that accepts anything (`*/*`, or no Accept header) gets the document.
        ndjson = (
            request.accept.best_match(["application/json", NDJSON_MEDIA_TYPE]) == NDJSON_MEDIA_TYPE
        )
        # A slot first (503 when the process streams its maximum already), then the stream, opened
        # and its first page encoded before the status line, so that a failure there is still
        # answered with an error status; the response then owns both and lets them go when it is
        # over, even if the body is never read (see `cqlstar.users.streaming`).
        slot = Services.of(request.app.state).stream_slots.take()
        try:
            stream = await repository.open_stream(
                limit=limit, fetch_size=fetch_size, min_age=age_filter
            )
        except BaseException:
            slot.release()
            raise
        if ndjson:
            return await start_stream(
                stream, ndjson_lines(stream), slot=slot, media_type=NDJSON_MEDIA_TYPE
            )
        return await start_stream(
            stream,
            json_document(stream, fetch_size=fetch_size),
            slot=slot,
            media_type="application/json",
        )

    @get(
        "/stream/pages",
        operation_id="pageUsers",
        summary="Read users one page at a time",
        responses={
            HTTP_400_BAD_REQUEST: ResponseSpec(
                ErrorDetail, description="`page_state` was not issued for this query"
            ),
            HTTP_422_UNPROCESSABLE_ENTITY: _INVALID,
            **_COMMON,
        },
        opt={**requires(Role.USERS_READ), "operation": "page users"},
    )
    async def page_users(
        self,
        repository: NamedDependency[UserRepository],
        page_tokens: NamedDependency[PageTokenSigner],
        fetch_size: FetchSize = 100,
        age_filter: MinAge = None,
        page_state: Annotated[
            str | None,
            Parameter(
                max_length=4096,
                description="The `page_state` of the previous page, to get the next one",
            ),
        ] = None,
    ) -> UserPage:
        """One page of at most `fetch_size` users. Pass `page_state` back, with the same
        `fetch_size` and `age_filter`, for the next page; walking every page returns each user
        exactly once. The token is signed and bound to its query."""
        paging_state = None
        if page_state is not None:
            try:
                paging_state = page_tokens.open(
                    page_state, min_age=age_filter, fetch_size=fetch_size
                )
            except InvalidPageToken:
                raise ClientException(detail="Invalid page_state") from None
        page = await repository.fetch_page(
            fetch_size=fetch_size, min_age=age_filter, paging_state=paging_state
        )
        next_token = (
            None
            if page.paging_state is None
            else page_tokens.issue(page.paging_state, min_age=age_filter, fetch_size=fetch_size)
        )
        return UserPage(users=page.users, has_more=next_token is not None, page_state=next_token)


async def _update(
    repository: NamedDependency[UserRepository],
    user_id: uuid.UUID,
    changes: UserUpdate,
    state: State,
) -> User:
    user = await repository.update(user_id, changes)
    if user is None:
        raise NotFoundException(detail=USER_NOT_FOUND)
    await _publish(state, "updated", user.id, user)
    return user


UserChange = Literal["created", "updated", "deleted"]


async def _publish(state: State, kind: UserChange, user_id: str, user: User | None) -> None:
    """Every change is broadcast to the WebSocket readers (`cqlstar.realtime.broadcast`); a
    replayed create changed nothing and publishes nothing."""
    realtime = Services.of(state).realtime
    if realtime is not None:
        await realtime.publish_user_change(kind, user_id, user)


# The canonical text form only (RFC 9562: 8-4-4-4-12 hex digits, either case). `uuid.UUID` alone
# also takes no hyphens, braces, a `urn:uuid:` prefix and non-ASCII digits, which would give one
# user many URLs.
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def parse_user_id(user_id: str) -> uuid.UUID:
    if not _CANONICAL_UUID.fullmatch(user_id):
        raise ClientException(detail="Invalid user ID format")
    return uuid.UUID(user_id)
