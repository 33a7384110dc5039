"""Every CQL statement the Users resource runs, prepared once per Cassandra connection.

`UserRepository.prepare` runs from the connection's `on_connect` hook, so handlers never prepare
anything on the request path.

**Every write to a users row is a lightweight transaction** (`INSERT ... IF NOT EXISTS`,
`UPDATE ... IF created_at != null`, `DELETE ... IF EXISTS`), so Paxos serializes all of them per
user. Mixing them with plain writes is what once brought deleted users back: a conditional update
checks its condition in Paxos' read phase and commits later, with a timestamp taken from its ballot;
a plain DELETE is not part of that protocol, so it could land between the check and the commit with
an older timestamp than the commit's, and the update's cells then outlived the delete's tombstone (a
row with `name`/`age`/`updated_at` and no `created_at`). When every write is a Paxos round, a delete
either comes before the update's check (the update then does not apply) or after its commit, with a
later ballot and so a later timestamp. It also keeps plain writes' client-side timestamps, taken on
another machine's clock, out of the ordering altogether. The cost is Paxos' round trips on every
write (README, Performance).

A user exists when its row has `created_at`: only the insert writes it, together with every other
column. Reads skip a row without the required columns (an old remnant of the bug above, or a row
written around the service) and log its id once, rather than failing a list or stream for every
client; `GET` answers 404 for it, updates do not apply to it, and `DELETE` removes it.

The reads are marked idempotent, and so are the insert and the delete: sending either twice does no
harm (a new id only meets its own first attempt, which `_insert_new` recognises; a second delete
finds nothing). That is what lets the driver send them again on another node when the first node
dies with the write in flight (the retry policy), or stays silent (speculative execution): on a
cluster, a lost or frozen coordinator then costs no write (`tests/cluster`). Writes speculate only
after `CASSANDRA_SPECULATIVE_WRITE_DELAY_MS` (1 s by default, against 50 ms for reads), so two Paxos
rounds of one write do not contend while the first coordinator is merely slow. The conditional
update is not marked: a retry could report a misleading `[applied]`. Writes commit at the service's consistency
(`CASSANDRA_CONSISTENCY`, LOCAL_QUORUM by default) and check their condition at its serial one.

No call passes a timeout: the session bounds each query by the caller's time budget
(`cqlstar.aiocassandra.budget`, set per request by the web layer), else the cluster's request timeout.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

import msgspec
from cassandra import ConsistencyLevel
from cassandra.query import UNSET_VALUE

from cqlstar.aiocassandra import (
    AsyncSession,
    AsyncStreamingResultSet,
    StreamConfig,
    outside_budget,
)
from cqlstar.users.schemas import (
    User,
    UserCreate,
    UserUpdate,
    format_timestamp,
    format_timestamps,
    utc_now_ms,
)

log = logging.getLogger(__name__)

# How long after a failed create its clean-up waits: how long a coordinator may still work on a
# write after the client stopped waiting. Cassandra's defaults give a Paxos write at most
# write_request_timeout (2 s) plus cas_contention_timeout (1 s); the rest is margin.
SETTLE_S = 5.0

# Clean-ups in flight: the event loop keeps only weak references to tasks.
_background: set[asyncio.Task[None]] = set()

_INSERT_COLUMNS = (
    "INSERT INTO users (id, name, email, age, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_IF_NOT_EXISTS = f"{_INSERT_COLUMNS} IF NOT EXISTS"
# Every SELECT returns the same columns, in `User`'s field order, so a row becomes a User
# positionally, and in the cheapest shape for the driver to decode. The id comes as text: Cassandra
# prints a UUID for next to nothing, where the driver would build a uuid.UUID per row (a Python
# constructor, the largest single cost of a streamed row) that the response only prints again; the
# text is the same canonical lowercase form `str(uuid)` gives. The timestamps come as epoch
# milliseconds (what Cassandra stores): a bigint decodes far more cheaply than a datetime is built,
# and `format_timestamp` works from the number. (Casting the timestamps to text as well would cost
# Cassandra more than it saves here: its date formatting is slow, and it is on the stream's
# critical path.)
_USER_COLUMNS = (
    "CAST(id AS text) AS id, name, email, age, "
    "toUnixTimestamp(created_at) AS created_at, toUnixTimestamp(updated_at) AS updated_at"
)
# Public: the benchmark's ceilings issue this very statement, so they decode what the service does.
SELECT_USER_BY_ID = f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?"
# Columns bound to UNSET_VALUE are left untouched, so one statement serves every partial update and
# concurrent updates of different fields do not overwrite each other. The condition makes it a
# compare-and-set on the user existing (`created_at` is set by the insert alone, see the module
# docs), so neither a deleted user nor a remnant row missing its columns is ever written to.
_UPDATE_IF_EXISTS = (
    "UPDATE users SET name = ?, email = ?, age = ?, updated_at = ? WHERE id = ? "
    "IF created_at != null"
)
_DELETE_IF_EXISTS = "DELETE FROM users WHERE id = ? IF EXISTS"
_SELECT_ALL = f"SELECT {_USER_COLUMNS} FROM users"
_SELECT_ALL_LIMITED = f"SELECT {_USER_COLUMNS} FROM users LIMIT ?"
# `age >= ?` is answered by the storage-attached index on `age` (no ALLOW FILTERING scan).
_SELECT_MIN_AGE = f"SELECT {_USER_COLUMNS} FROM users WHERE age >= ?"
_SELECT_MIN_AGE_LIMITED = f"SELECT {_USER_COLUMNS} FROM users WHERE age >= ? LIMIT ?"

# A lightweight transaction's condition is checked at a serial quorum, and its commit is written at
# the statement's consistency: a quorum too, so that a later read at a quorum (the update's read-back)
# sees it on a multi-replica cluster.
_READ_YOUR_WRITE = ConsistencyLevel.LOCAL_QUORUM


# One getter per column of a row, in the SELECTs' order (see `users_from_rows`).
_ID, _NAME, _EMAIL, _AGE, _CREATED_AT, _UPDATED_AT = (itemgetter(i) for i in range(6))


def user_from_row(row: Sequence[Any]) -> User | None:
    """Build the response struct straight from a selected row (no dict on the way); None for a row
    that is not a whole user (see the module docs)."""
    user_id, name, email, age, created_at, updated_at = row
    if None in row:
        _report_incomplete([row])
        return None
    return User(
        user_id, name, email, age, format_timestamp(created_at), format_timestamp(updated_at)
    )


def users_from_rows(rows: Sequence[Sequence[Any]]) -> list[User]:
    """A page of rows as Users, column by column.

    A stream turns every row into a User, so this is per-row cost: mapping the User type over
    per-column views of the page runs the loop in C, with a Python frame only for a timestamp that
    is not cached yet (see `format_timestamps`). Column getters rather than `zip(*rows)`: the
    transpose allocates an iterator per row, and such allocations are what wakes the garbage
    collector, which then promotes the page's rows towards the expensive full collections (fewer
    gen-2 collections per stream with the getters; Users themselves are not tracked: `gc=False`).

    Rows without the required columns are left out (see the module docs), for about a fifth more
    per row than building the page blind (35-45 ns against 160, `users_from_rows` on 5000-row pages
    in-process): the text and age columns are taken once, as lists, and tested in C on the way (a
    missing name or email is falsy, `sum` of the ages raises on a missing one, and so does the
    formatting of a missing timestamp). Only a page that has such a row pays for a row-by-row filter.
    """
    names = list(map(_NAME, rows))
    emails = list(map(_EMAIL, rows))
    ages = list(map(_AGE, rows))
    try:
        if all(names) and all(emails):
            sum(ages)
            return list(
                map(
                    User,
                    map(_ID, rows),
                    names,
                    emails,
                    ages,
                    format_timestamps(map(_CREATED_AT, rows)),
                    format_timestamps(map(_UPDATED_AT, rows)),
                )
            )
    except TypeError:
        pass
    return _users_from_complete_rows(_complete_rows(rows))


def _users_from_complete_rows(rows: Sequence[Sequence[Any]]) -> list[User]:
    return list(
        map(
            User,
            map(_ID, rows),
            map(_NAME, rows),
            map(_EMAIL, rows),
            map(_AGE, rows),
            format_timestamps(map(_CREATED_AT, rows)),
            format_timestamps(map(_UPDATED_AT, rows)),
        )
    )


def _complete_rows(rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    complete = [row for row in rows if None not in row]
    if len(complete) < len(rows):
        _report_incomplete([row for row in rows if None in row])
    return complete


# Ids of incomplete rows already logged by this process: a remnant is met by every list and stream
# that passes it, and one line per id says what an operator needs. Bounded, like any cache here.
_reported_incomplete: set[str] = set()
_MAX_REPORTED = 10_000


def _report_incomplete(rows: Sequence[Sequence[Any]]) -> None:
    new = [str(row[0]) for row in rows if row[0] not in _reported_incomplete]
    if not new or len(_reported_incomplete) >= _MAX_REPORTED:
        return
    _reported_incomplete.update(new)
    log.warning(
        "users rows without their required columns are skipped by reads (DELETE removes them)",
        extra={"user_ids": new[:20], "count": len(new)},
    )


class Page(msgspec.Struct, frozen=True):
    """One page read with explicit paging: its users and the driver's state for the next one."""

    users: list[User]
    paging_state: bytes | None


class IdTaken(Exception):
    """A new user's id holds another user already (a UUID collision: never expected)."""

    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__("a new user's id is already taken")
        self.user_id = user_id


def _not_taken(ids: Sequence[uuid.UUID], failure: BaseException) -> list[uuid.UUID]:
    """The ids a failed create may have written: never one that turned out to be someone else's."""
    return [
        user_id
        for user_id in ids
        if not (isinstance(failure, IdTaken) and failure.user_id == user_id)
    ]


class UserRepository:
    """The Users table, through statements prepared for one session."""

    def __init__(self, session: AsyncSession, statements: dict[str, Any]) -> None:
        self._session = session
        self._insert_if_not_exists = statements["insert_if_not_exists"]
        self._select_by_id = statements["select_by_id"]
        self._update_if_exists = statements["update_if_exists"]
        self._delete_if_exists = statements["delete_if_exists"]
        self._select_all = statements["select_all"]
        self._select_min_age = statements["select_min_age"]
        self._select_all_limited = statements["select_all_limited"]
        self._select_min_age_limited = statements["select_min_age_limited"]

    @classmethod
    async def prepare(cls, session: AsyncSession) -> UserRepository:
        """Prepare every statement on `session`; run once per connection."""
        # (name, CQL, idempotent): the conditional update is not marked (module docs).
        specs = (
            ("insert_if_not_exists", _INSERT_IF_NOT_EXISTS, True),
            ("select_by_id", SELECT_USER_BY_ID, True),
            ("update_if_exists", _UPDATE_IF_EXISTS, False),
            ("delete_if_exists", _DELETE_IF_EXISTS, True),
            ("select_all", _SELECT_ALL, True),
            ("select_min_age", _SELECT_MIN_AGE, True),
            ("select_all_limited", _SELECT_ALL_LIMITED, True),
            ("select_min_age_limited", _SELECT_MIN_AGE_LIMITED, True),
        )
        statements = {
            name: await session.prepare(cql, idempotent=idempotent)
            for name, cql, idempotent in specs
        }
        return cls(session, statements)

    async def create(self, new_user: UserCreate) -> User:
        """Write a new user. If the write fails or is abandoned (the request's budget ran out, the
        client left), whatever may have been written is removed a little later (`remove_later`), so
        a failed create leaves nothing behind and retrying it creates no duplicate."""
        now = utc_now_ms()
        user_id = uuid.uuid4()
        try:
            await self._insert_new((user_id, new_user.name, new_user.email, new_user.age, now, now))
        except BaseException as exc:
            self.remove_later(_not_taken([user_id], exc))
            raise
        stamp = format_timestamp(now)
        return User(str(user_id), new_user.name, new_user.email, new_user.age, stamp, stamp)

    async def create_many(self, new_users: Sequence[UserCreate]) -> list[User]:
        """Write 1..100 users, all or nothing (see `insert_all`, and `remove_later` on failure)."""
        ids = [uuid.uuid4() for _ in new_users]
        try:
            return await self.insert_all(ids, new_users, utc_now_ms())
        except BaseException as exc:
            self.remove_later(_not_taken(ids, exc))
            raise

    async def insert_all(
        self, ids: Sequence[uuid.UUID], new_users: Sequence[UserCreate], now: int
    ) -> list[User]:
        """Write each user under its id, stamped `now`, all at once; the first failure once every
        write has settled (and nothing removed: that is the caller's decision).

        Not a Cassandra batch: a batch cannot hold conditional writes to several partitions, and
        every write of a user is conditional (module docs). Each user is its own lightweight
        transaction, sent concurrently, so the request takes about as long as the slowest one; no
        batch means no batch size limit either (the default fails a batch over 50 KiB, 70 users of
        the longest valid fields, and logs a warning for every batch over 5 KiB). Writing an id that
        already holds the same user succeeds, so a resumed write (`cqlstar.users.idempotency`) can
        send them all again.
        """
        values = [
            (user_id, new_user.name, new_user.email, new_user.age, now, now)
            for user_id, new_user in zip(ids, new_users, strict=True)
        ]
        outcomes = await asyncio.gather(
            *(self._insert_new(row) for row in values), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        stamp = format_timestamp(now)
        return [
            User(str(user_id), new_user.name, new_user.email, new_user.age, stamp, stamp)
            for user_id, new_user in zip(ids, new_users, strict=True)
        ]

    async def _insert_new(self, values: tuple[Any, ...]) -> None:
        result = await self._session.execute(self._insert_if_not_exists, values)
        # Not applied: the id is taken. A random UUID only meets itself: the driver sent the insert
        # again after the first attempt was applied, or a write is being resumed. Anything else is
        # refused loudly.
        if not result.was_applied and not _is_row_of(result.one(), values):
            raise IdTaken(values[0])

    async def remove_all(self, ids: Sequence[uuid.UUID]) -> None:
        """Delete these users (those that exist), all at once; the first failure once all settle."""
        outcomes = await asyncio.gather(
            *(self._session.execute(self._delete_if_exists, (user_id,)) for user_id in ids),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def remove_later(self, ids: Sequence[uuid.UUID]) -> None:
        """Undo a failed create: once Cassandra can no longer be applying its writes, delete them.

        In the background, so a 504 or 503 goes out at once, and outside the request's budget,
        which has often run out already. The wait matters: when the client side stopped waiting
        (budget, driver timeout, client gone), a coordinator may still be retrying a Paxos round,
        and a delete that came first would then be followed by the insert. A delete that comes
        after the write's last round wins (module docs); one that finds an unfinished round
        completes it first, then deletes.
        """
        # The task copies the request's context: its queries stay in the request's trace, and
        # `outside_budget` sets the spent budget aside.
        task = asyncio.get_running_loop().create_task(
            self._remove_after_settling(list(ids)), name="users-remove-failed-create"
        )
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _remove_after_settling(self, ids: list[uuid.UUID]) -> None:
        await asyncio.sleep(SETTLE_S)
        try:
            with outside_budget():
                await self.remove_all(ids)
        except Exception as exc:
            log.exception(
                "a failed create could not be undone: these users may remain",
                extra={"user_ids": [str(user_id) for user_id in ids], "error": type(exc).__name__},
            )

    async def get(self, user_id: uuid.UUID, *, consistency: int | None = None) -> User | None:
        result = await self._session.execute(
            self._select_by_id,
            (user_id,),
            consistency=consistency,
        )
        row = result.one()
        return None if row is None else user_from_row(row)

    async def update(self, user_id: uuid.UUID, changes: UserUpdate) -> User | None:
        """Apply the fields set in `changes`; None when the user does not exist (nothing written)."""
        result = await self._session.execute(
            self._update_if_exists,
            (
                _bound(changes.name),
                _bound(changes.email),
                _bound(changes.age),
                utc_now_ms(),
                user_id,
            ),
            consistency=_READ_YOUR_WRITE,
        )
        if not result.was_applied:
            return None
        # The conditional update does not return the row. Read it back rather than merging locally:
        # another client may have changed the other fields in between, and this shows what is stored.
        return await self.get(user_id, consistency=_READ_YOUR_WRITE)

    async def delete(self, user_id: uuid.UUID) -> None:
        """Remove the user; deleting one that does not exist is not an error (and writes nothing)."""
        await self._session.execute(self._delete_if_exists, (user_id,))

    async def list_users(self, limit: int, *, min_age: int | None = None) -> list[User]:
        statement, parameters = (
            (self._select_all_limited, (limit,))
            if min_age is None
            else (self._select_min_age_limited, (min_age, limit))
        )
        result = await self._session.execute(statement, parameters)
        # LIMIT <= 100 with the default page size of 5000: one page, no further round trips.
        return users_from_rows(result.current_rows)

    async def open_stream(
        self, *, limit: int, fetch_size: int, min_age: int | None
    ) -> AsyncStreamingResultSet:
        """A paged read of at most `limit` users, `fetch_size` rows per Cassandra page.

        The caller owns the stream: enter it with `async with` so it is closed however the caller
        stops (end of data, client gone, error).
        """
        parameters: tuple[int, ...]
        if min_age is None:
            statement, parameters = self._select_all_limited, (limit,)
        else:
            statement, parameters = self._select_min_age_limited, (min_age, limit)
        stream: AsyncStreamingResultSet = await self._session.execute_stream(
            statement, parameters, config=StreamConfig(fetch_size=fetch_size)
        )
        return stream

    async def fetch_page(
        self, *, fetch_size: int, min_age: int | None, paging_state: bytes | None
    ) -> Page:
        """One page of users, resuming at `paging_state` (None for the first page)."""
        parameters: tuple[int, ...]
        if min_age is None:
            statement, parameters = self._select_all, ()
        else:
            statement, parameters = self._select_min_age, (min_age,)
        result = await self._session.execute(
            statement,
            parameters,
            fetch_size=fetch_size,
            paging_state=paging_state,
        )
        # current_rows only: iterating the result would fetch the following pages too.
        users = users_from_rows(result.current_rows)
        return Page(users, result.paging_state if result.has_more_pages else None)


_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)


def _is_row_of(existing: Any, values: tuple[Any, ...]) -> bool:
    """Whether the row a failed `INSERT ... IF NOT EXISTS` found is the one it meant to write."""
    user_id, name, email, age, created_at, _ = values
    stored_at = existing.created_at
    return (
        existing.id == user_id
        and (existing.name, existing.email, existing.age) == (name, email, age)
        and stored_at is not None
        and (stored_at - _EPOCH) // _ONE_MS == created_at
    )


def _bound(value: object) -> object:
    """Leave a column untouched when the client did not send it."""
    return UNSET_VALUE if value is msgspec.UNSET else value
