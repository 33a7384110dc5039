"""The Users resource's request and response bodies.

Validation lives in the types: every constraint the contract states is a `msgspec.Meta` on the field,
so Litestar rejects a bad body (422) before a handler runs, and the same constraints appear in the
OpenAPI document. Unknown fields in request bodies are ignored (msgspec's default), as the contract asks.

Timestamps are handled as Cassandra stores them, whole milliseconds since the Unix epoch (UTC), and
leave the service as strings made by one function from that number (`format_timestamp`), so `POST`
and a later `GET` of the same user produce byte-identical bodies.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Annotated

import msgspec

# Every pattern here means the same to Python's `re` (which msgspec uses to validate) and to an
# ECMA-262 engine (which JSON Schema, and so the OpenAPI document's readers, use): explicit ASCII
# classes and `\uXXXX` escapes only, never `\s`, `\w` or `\d` (whose sets differ between the two),
# and never a bare `$`, which Python also matches before a final newline (`$(?!\n)` ends the text in
# both).

# Pragmatic address syntax: the shape browsers accept for <input type=email> (a dot-atom local part
# of at most 64 characters, so no dot at either edge and no two in a row, an @, and dot-separated
# DNS labels), with at least one dot in the domain. Deliverability is not something syntax can check.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$(?!\n)"

# A name needs one visible character: one that is whitespace in neither dialect. The class lists
# the union of Python's and ECMA-262's whitespace (Python's adds \x1c-\x1f and \x85, ECMA's \ufeff).
NAME_PATTERN = (
    r"[^\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)

Name = Annotated[
    str,
    # At least one visible character: a name made only of spaces is not a name.
    msgspec.Meta(
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
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
        ge=0,
        le=150,
        extra_json_schema={
            "description": "Age in years, 0 to 150",
            "examples": [36],
            # Litestar's schema generator skips a bound of 0 where the field is optional
            # (`UserUpdate.age`); stated again so the document always carries it.
            "extra": {"minimum": 0},
        },
    ),
]
# Text rather than uuid.UUID: rows carry the id as Cassandra formats it (see the repository), and
# building a UUID object only to print it again is a large part of a streamed row's cost.
UserId = Annotated[
    str,
    msgspec.Meta(
        extra_json_schema={
            "examples": ["3f1c1d2e-8a4b-4c5d-9e6f-001122334455"],
            "extra": {"format": "uuid"},
        }
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

    `id` is the UUID's canonical text (lowercase, hyphenated), the same text `str(uuid)` gives.
    `gc=False`: instances hold only strings and ints, never reference cycles, so the garbage
    collector need not track the many short-lived ones a stream creates.
    """

    id: UserId
    name: str
    email: str
    age: int
    created_at: Timestamp
    updated_at: Timestamp


# How many users one batch carries.
MIN_BATCH, MAX_BATCH = 1, 100


class UserBatch(msgspec.Struct, frozen=True):
    """The object form of a batch body: `{"users": [...]}`."""

    users: Annotated[list[UserCreate], msgspec.Meta(min_length=MIN_BATCH, max_length=MAX_BATCH)]


BatchItems = Annotated[list[UserCreate], msgspec.Meta(min_length=MIN_BATCH, max_length=MAX_BATCH)]


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


def utc_now_ms() -> int:
    """Now as Cassandra stores a `timestamp`: whole milliseconds since the Unix epoch, UTC.

    The driver binds an int to a `timestamp` column as exactly this number, and the reads select
    `toUnixTimestamp(...)`, so a new user and the same user read back format identically.
    """
    return time.time_ns() // 1_000_000


_EPOCH = datetime(1970, 1, 1)
# Distinct values remembered before a cache starts over: enough for every timestamp of a few
# 5000-row pages, and a bound on memory (~1 MiB each) however many rows a stream goes through.
_TIMESTAMP_CACHE_SIZE = 8192
# ".000Z" to ".999Z": concatenating a ready suffix costs well under half of formatting `{:03d}`.
_MILLISECOND_SUFFIXES = tuple(f".{millis:03d}Z" for millis in range(1000))


class _TimestampTexts(dict[int, str]):
    """Epoch milliseconds -> RFC 3339 text, remembered.

    Timestamps repeat a lot: `updated_at` equals `created_at` until a user is first updated, a
    batch stamps all its users alike, and rows written close together share their second. A hit is
    one dict lookup in C (`map(texts.__getitem__, column)` formats a page's column without a Python
    frame per hit); a miss joins the second's cached `YYYY-MM-DDTHH:MM:SS` and a ready-made
    `.mmmZ` suffix. Both caches are cleared when full: cheaper than LRU bookkeeping, and the next
    page refills them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._seconds: dict[int, str] = {}

    def __missing__(self, epoch_ms: int) -> str:
        # divmod floors, so a time before 1970 gets a negative second and 0..999 milliseconds.
        seconds, millis = divmod(epoch_ms, 1000)
        prefix = self._seconds.get(seconds)
        if prefix is None:
            if len(self._seconds) >= _TIMESTAMP_CACHE_SIZE:
                self._seconds.clear()
            # A naive datetime without microseconds prints exactly YYYY-MM-DDTHH:MM:SS.
            prefix = self._seconds[seconds] = (_EPOCH + timedelta(seconds=seconds)).isoformat()
        if len(self) >= _TIMESTAMP_CACHE_SIZE:
            self.clear()
        text = self[epoch_ms] = prefix + _MILLISECOND_SUFFIXES[millis]
        return text


# Used from the event loop only; under free-threading or from several threads the worst outcome
# would be formatting one value twice, never a wrong text.
_timestamp_texts = _TimestampTexts()


def format_timestamp(epoch_ms: int) -> str:
    """RFC 3339 in UTC with exactly three fractional digits: `2026-11-22T10:00:00.123Z`."""
    return _timestamp_texts[epoch_ms]


def format_timestamps(column: Iterable[int]) -> Iterator[str]:
    """`format_timestamp` over a column of values, lazily, with no Python call per cached value."""
    return map(_timestamp_texts.__getitem__, column)
