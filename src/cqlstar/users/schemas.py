"""The Users resource's request and response bodies.

Validation lives in the types: every constraint the contract states is a `msgspec.Meta` on the field,
so Litestar rejects a bad body (422) before a handler runs, and the same constraints appear in the
OpenAPI document. Unknown fields in request bodies are ignored (msgspec's default), as the contract asks.

Timestamps leave the service as strings formatted once from the stored value (see `format_timestamp`),
so `POST` and a later `GET` of the same user produce byte-identical bodies.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import msgspec

# Pragmatic address syntax (the shape browsers accept for <input type=email>, plus a dot in the
# domain): a local part of at most 64 allowed characters, an @, and dot-separated DNS labels.
# Deliverability is not something syntax can check.
EMAIL_PATTERN = (
    r"^(?=[^@]{1,64}@)[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)

Name = Annotated[
    str,
    # At least one visible character: a name made only of spaces is not a name.
    msgspec.Meta(
        min_length=1,
        max_length=100,
        pattern=r"\S",
        extra_json_schema={
            "description": "Display name, 1 to 100 characters",
            "examples": ["Ada Lovelace"],
        },
    ),
]
Email = Annotated[
    str,
    msgspec.Meta(
        max_length=254,
        pattern=EMAIL_PATTERN,
        extra_json_schema={
            "description": "E-mail address (syntax only)",
            "examples": ["ada@example.com"],
            "extra": {"format": "email"},
        },
    ),
]
Age = Annotated[
    int,
    msgspec.Meta(
        ge=0, le=150, extra_json_schema={"description": "Age in years, 0 to 150", "examples": [36]}
    ),
]
Timestamp = Annotated[
    str,
    msgspec.Meta(
        extra_json_schema={
            "description": "RFC 3339 UTC timestamp with millisecond precision",
            "examples": ["2026-11-22T10:00:00.123Z"],
            "extra": {"format": "date-time"},
        }
    ),
]


class UserCreate(msgspec.Struct, frozen=True):
    """A new user, as a client sends it."""

    name: Name
    email: Email
    age: Age


class UserUpdate(msgspec.Struct, frozen=True):
    """Fields to change on an existing user; the ones left out keep their stored values."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType = msgspec.UNSET
    age: Age | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        # No Meta can say "at least one of"; msgspec turns this ValueError into a 422 body error.
        if self.name is msgspec.UNSET and self.email is msgspec.UNSET and self.age is msgspec.UNSET:
            raise ValueError("Provide at least one of name, email, age")


class User(msgspec.Struct, frozen=True, gc=False):
    """A stored user. Field order matches the repository's SELECT column order.

    `gc=False`: instances hold only a UUID, strings and ints, never reference cycles, so the garbage
    collector need not track the many short-lived ones a stream creates.
    """

    id: uuid.UUID
    name: str
    email: str
    age: int
    created_at: Timestamp
    updated_at: Timestamp


class UserBatch(msgspec.Struct, frozen=True):
    """The object form of a batch body: `{"users": [...]}`."""

    users: Annotated[list[UserCreate], msgspec.Meta(min_length=1, max_length=100)]


BatchItems = Annotated[list[UserCreate], msgspec.Meta(min_length=1, max_length=100)]


class BatchCreated(msgspec.Struct, frozen=True):
    created: int
    users: list[User]


class UserPage(msgspec.Struct, frozen=True):
    """One page of `GET /users/stream/pages`; pass `page_state` back for the next one."""

    users: list[User]
    has_more: bool
    page_state: str | None


class StreamMetadata(msgspec.Struct, frozen=True):
    """Trailer of the streamed JSON document, written after the `users` array."""

    total_returned: int
    pages_fetched: int
    fetch_size: int
    streaming_enabled: bool = True


class UserStreamDocument(msgspec.Struct, frozen=True):
    """The shape of the streamed document; documents the route, never built in memory."""

    users: list[User]
    metadata: StreamMetadata


def utc_now_ms() -> datetime:
    """Now, as a naive UTC datetime truncated to Cassandra's millisecond `timestamp` resolution.

    Naive because that is what the driver hands back when reading, so a freshly created user and the
    same user read back format identically.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with exactly three fractional digits; `value` is naive UTC."""
    # isoformat is implemented in C and is faster than attaching a tzinfo and letting msgspec format.
    return value.isoformat(timespec="milliseconds") + "Z"


class ErrorDetail(msgspec.Struct, frozen=True):
    """The body of every error answer except validation failures."""

    detail: str


class ValidationIssue(msgspec.Struct, frozen=True):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorDetail(msgspec.Struct, frozen=True):
    """422: one item per invalid value; `loc` starts with where it came from (body, query)."""

    detail: list[ValidationIssue]
